"""verigrad.torch.check on custom Functions written as people write them (tests/torch/vg_torch_functions.py):
the messages of each diagnosis, non-tensor arguments, several outputs, in-place Functions, odd layouts, and
the safety of the caller's modules (BatchNorm running statistics, ``.grad``) also when ``fn`` raises."""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import vg_torch_functions as F  # noqa: E402  (tests/torch/vg_torch_functions.py)

import verigrad.torch as vt  # noqa: E402

PASSING = {"ok", "kink", "precision"}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _t(seed, *shape, dtype=torch.float64, grad=True):
    return F.t(_gen(seed), *shape, dtype=dtype, grad=grad)


# ------------------------------------------------------------------------------------ arguments


def test_non_tensor_arguments_are_passed_unchanged():
    x = _t(0, 5, 4)
    G = np.random.default_rng(0).standard_normal((5, 4))
    report = vt.check(F.MulConstant.apply, x, 2.5, dLdf=G)
    assert report.passed and list(report) == ["input0"]
    np.testing.assert_allclose(report["input0"].analytic, 2.5 * G, rtol=1e-15)
    np.testing.assert_allclose(report["input0"].numerical, 2.5 * G, rtol=1e-8)
    x, W, b = F.docs_linear_inputs(_gen(1))
    report = vt.check(F.DocsLinear.apply, x, W, None)  # the optional bias left out explicitly
    assert report.passed and list(report) == ["input0", "input1"]
    wrong = vt.check(F.MulConstantForgetsConstant.apply, x, 4.0)
    assert wrong.diagnosis.kind == "scale"
    assert wrong["input0"].diagnosis.details["factor"] == pytest.approx(0.25, rel=1e-3)


def test_non_tensor_argument_errors():
    x = _t(2, 3)
    with pytest.raises(TypeError, match=r"wrt names input 1 \(input1\), a float: only tensors have gradients"):
        vt.check(F.MulConstant.apply, x, 2.0, wrt=[0, 1])
    with pytest.raises(TypeError, match=r"input 1 \(input1, positional argument 2 after fn\) is a ndarray.*torch.from_numpy"):
        vt.check(F.MulConstant.apply, x, np.ones(3))
    with pytest.raises(ValueError, match="none of the 1 tensor inputs requires grad"):
        vt.check(F.MulConstant.apply, x.detach(), 2.0)


# ------------------------------------------------------------------------------------ several outputs


def test_two_outputs_checked_together_with_given_dLdf():
    x = _t(3, 5, 3)
    ga, gb = np.full((5, 3), 2.0), np.full((5, 3), -1.0)
    report = vt.check(F.MyCube.apply, x, dLdf=(ga, gb))
    assert report.passed, str(report)
    xv = x.detach().numpy()
    np.testing.assert_allclose(report["input0"].analytic, 2.0 * 3 * xv ** 2 - 1.0 * 6 * xv, rtol=1e-12)
    assert any("2 floating-point tensor(s) are checked together" in n for n in report.torch_notes)
    with pytest.raises(ValueError, match=r"fn returns 2 floating-point outputs of shapes \[\(5, 3\), \(5, 3\)\]: dLdf must be a tuple of 2"):
        vt.check(F.MyCube.apply, x, dLdf=ga)
    # one output selected: the bug in the gradient of the second output is invisible through the first
    assert vt.check(F.MyCubeIgnoresSecondOutput.apply, x, output=0).passed
    assert not vt.check(F.MyCubeIgnoresSecondOutput.apply, x, output=1).passed


def test_integer_outputs_are_skipped_with_a_note():
    x = _t(4, 4, 5)
    report = vt.check(lambda a: torch.max(a, dim=1), x)  # (values, indices)
    assert report.passed, str(report)
    assert any("not differentiable, skipped" in n and "torch.int64" in n for n in report.torch_notes)


# ------------------------------------------------------------------------------------ diagnoses


def test_swapped_gradients_of_same_shape_are_named():
    x, y = _t(5, 5, 4), _t(6, 5, 4)
    report = vt.check(F.MulAddSwapped.apply, x, y)
    d = report["input0"].diagnosis
    assert d.kind == "mismatch"
    assert d.details["gradient_of"] == "input1" and d.details["swapped"]
    assert "swapped" in d.message and "order of the forward's arguments" in d.message
    assert report["input1"].diagnosis.details["gradient_of"] == "input0"
    assert vt.check(F.MulAdd.apply, x, y).passed


def test_gradients_of_the_wrong_shape_are_recovered_and_explained():
    x, W = _t(7, 6, 4), _t(8, 4, 3)
    report = vt.check(F.MatmulGradsSwapped.apply, x, W)
    assert not report.passed
    d = report["input0"].diagnosis
    assert d.details["returned_shape"] == [4, 3] and d.details["shape_of"] == ["input1"]
    assert "(4, 3) is the shape of input1: gradients returned in the wrong order?" in d.message
    # transposed shape: the checker's transpose diagnosis, also inside a module
    x, W, b = F.docs_linear_inputs(_gen(9))
    assert vt.check(F.DocsLinearWeightTransposed.apply, x, W, b)["input1"].diagnosis.kind == "transpose"
    module = F.CustomLinear(5, 3, F.DocsLinearWeightTransposed)
    report = vt.check(module, x)
    assert report["weight"].diagnosis.kind == "transpose"
    assert report["input0"].passed and report["bias"].passed


def test_wrong_number_of_gradients_is_a_clear_error():
    x, W, b = F.docs_linear_inputs(_gen(10))
    with pytest.raises(vt.TorchCheckError, match="backward of fn raised.*incorrect number of gradients"):
        vt.check(F.DocsLinearTooFewGradients.apply, x, W, b)
    before = (x.detach().clone(), W.detach().clone())
    assert torch.equal(x, before[0]) and torch.equal(W, before[1]) and x.grad is None


def test_needs_input_grad_gate_on_the_wrong_index():
    x, W, b = F.docs_linear_inputs(_gen(11), weight_grad=False)
    report = vt.check(F.DocsLinearGateIndex.apply, x, W, b)
    assert report["input0"].diagnosis.kind == "zero"
    assert report["input2"].passed
    assert any("returned no gradient (None) for input0" in n and "needs_input_grad" in n for n in report.torch_notes)
    # with every input requiring grad the gate is open and the bug does not show
    x2, W2, b2 = F.docs_linear_inputs(_gen(11))
    assert vt.check(F.DocsLinearGateIndex.apply, x2, W2, b2).passed


def test_backward_writing_into_grad_output():
    (x,) = F.relu_inputs(_gen(12))
    report = vt.check(F.TutorialReLUInplaceGrad.apply, x)
    assert report.diagnosis.kind == "mutates_input"
    assert "incoming gradient (grad_output) in place" in report.diagnosis.message
    assert vt.check(F.TutorialReLU.apply, x).passed


# ------------------------------------------------------------------------------------ in place, layouts


def test_in_place_function_with_mark_dirty_checked_directly_on_a_leaf():
    x = _t(13, 5, 4)
    before = x.detach().clone()
    G = np.random.default_rng(1).standard_normal((5, 4))
    report = vt.check(F.ScaleInplace.apply, x, dLdf=G)  # torch itself refuses ScaleInplace.apply(leaf)
    assert report.passed, str(report)
    assert any("mark_dirty" in n for n in report.torch_notes)
    assert torch.equal(x.detach(), before) and x._version == 0
    np.testing.assert_allclose(report["input0"].numerical, 3.0 * G, rtol=1e-8)  # fresh copy at every call
    wrong = vt.check(F.ScaleInplaceForgetsFactor.apply, x)
    assert wrong.diagnosis.kind == "scale"
    assert wrong["input0"].diagnosis.details["factor"] == pytest.approx(1 / 3, rel=1e-3)


def test_non_contiguous_and_expanded_inputs():
    base = _t(14, 5, 8, grad=False)
    xt = base.t().requires_grad_(True)  # (8, 5), not contiguous
    assert not xt.is_contiguous()
    _, W, b = F.docs_linear_inputs(_gen(15))
    report = vt.check(F.DocsLinear.apply, xt, W, b)
    assert report.passed, str(report)
    assert report["input0"].shape == (8, 5)
    row = _t(16, 1, 5)
    xe = row.expand(8, 5)  # every row the same memory: checked as 40 independent entries
    report = vt.check(F.DocsLinear.apply, xe, W, b)
    assert report.passed and report["input0"].shape == (8, 5)
    wrong = vt.check(F.DocsLinearWeightTransposed.apply, xt, W, b)
    assert wrong["input1"].diagnosis.kind == "transpose"


def test_float32_module_with_custom_function_and_frozen_parameter():
    block = F.NormedBlock(dtype=torch.float32).eval()
    x = _t(17, 8, 4, dtype=torch.float32)
    report = vt.check(block, x)
    assert report.passed, str(report)
    assert list(report) == ["input0", "lin.weight", "lin.bias", "norm.weight", "norm.bias"]  # gain is frozen
    assert report.torch_numeric_dtype == "float64"
    assert report["lin.weight"].analytic_dtype == "float32"


# ------------------------------------------------------------------------------------ safety


def _module_state(m):
    return {k: v.detach().clone() for k, v in list(m.named_parameters()) + list(m.named_buffers())}


def _same_module_state(m, st):
    return all(torch.equal(v.detach(), st[k]) for k, v in list(m.named_parameters()) + list(m.named_buffers()))


@pytest.mark.parametrize("how", ["lambda", "method", "partial", "closure"])
def test_batchnorm_running_statistics_of_a_held_module_are_restored(how):
    block = F.NormedBlock()
    assert block.training
    st = _module_state(block)
    block.lin.weight.grad = torch.ones_like(block.lin.weight)
    x = _t(18, 8, 4)

    def make():
        inner = block

        def closure(a):
            return inner(a)

        return closure

    fn = {"lambda": lambda a: block(a), "method": block.forward,
          "partial": functools.partial(torch.nn.Module.__call__, block), "closure": make()}[how]
    report = vt.check(fn, x)
    assert report.passed, str(report)
    assert _same_module_state(block, st)
    assert int(block.norm.num_batches_tracked) == 0
    assert torch.equal(block.lin.weight.grad, torch.ones_like(block.lin.weight))
    assert block.lin.bias.grad is None
    assert any("restored" in n and "running_mean" in n for n in report.torch_notes)


class _FailsAtCall(torch.nn.Module):
    """Wraps a module; raises at the n-th forward counted over all its deep copies (class attribute)."""

    calls = 0
    fail_at = 10

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        type(self).calls += 1
        if type(self).calls == type(self).fail_at:
            raise RuntimeError(f"boom at call {type(self).calls}")
        return self.inner(x)


@pytest.mark.parametrize("held", [False, True], ids=["module", "lambda over module"])
def test_fn_raising_on_its_tenth_call_leaves_everything_as_it_was(held):
    model = _FailsAtCall(F.NormedBlock())
    _FailsAtCall.calls = 0
    x = _t(19, 8, 4)
    x.grad = torch.full_like(x, 7.0)
    model.inner.lin.weight.grad = torch.ones_like(model.inner.lin.weight)
    st, xv, xg, version = _module_state(model), x.detach().clone(), x.grad.clone(), x._version
    with pytest.raises(Exception, match="boom at call 10"):
        vt.check((lambda a: model(a)) if held else model, x, double=True)
    assert _FailsAtCall.calls >= 10
    assert _same_module_state(model, st)
    assert torch.equal(x.detach(), xv) and torch.equal(x.grad, xg) and x._version == version
    assert torch.equal(model.inner.lin.weight.grad, torch.ones_like(model.inner.lin.weight))
    assert model.inner.lin.bias.grad is None


# ------------------------------------------------------------------------------------ more styles

W_GLOBAL = F.t(_gen(20), 3, 2)  # requires grad, used by a lambda without being its input


def test_tensors_fn_closes_over_are_named_as_unchecked():
    x = _t(21, 4, 3)
    report = vt.check(lambda a: a @ W_GLOBAL, x)
    assert report.passed and list(report) == ["input0"]
    assert any("not among its inputs (W_GLOBAL)" in n for n in report.torch_notes)
    V = W_GLOBAL.detach().clone().requires_grad_(True)
    with pytest.raises(ValueError, match=r"nothing to check.*not among its inputs \(V\)"):
        vt.check(lambda a: a @ V, x.detach())
    assert vt.check(lambda a, W: a @ W, x, V).passed  # the remedy the message gives


class _NumpyTanh(torch.autograd.Function):
    """Forward and backward in NumPy (the "Extending PyTorch" use case), once_differentiable."""

    @staticmethod
    def forward(ctx, x):
        y = torch.from_numpy(np.tanh(x.detach().cpu().numpy()))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return torch.from_numpy(g.numpy() * (1 - y.numpy() ** 2))


class _Gather(torch.autograd.Function):
    """x.gather(1, idx) with an integer index tensor (no gradient) and a scatter-add backward."""

    @staticmethod
    def forward(ctx, x, idx):
        ctx.save_for_backward(idx)
        ctx.n = x.shape[1]
        return x.gather(1, idx)

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        out = torch.zeros(g.shape[0], ctx.n, dtype=g.dtype)
        return out.scatter_add_(1, idx, g), None


def test_numpy_function_float64_and_float32():
    for dtype in (torch.float64, torch.float32):
        report = vt.check(_NumpyTanh.apply, _t(22, 4, 3, dtype=dtype))
        assert report.passed, str(report)
        assert report.torch_numeric_dtype == "float64"


def test_integer_index_argument_and_repeated_indices():
    idx = torch.tensor([[0, 2], [1, 1], [2, 0], [0, 0]])  # repeated: the scatter must add
    report = vt.check(_Gather.apply, _t(23, 4, 3), idx)
    assert report.passed and list(report) == ["input0"]

    class GatherOverwrites(_Gather):
        """Bug: scatter_ (overwrite) instead of scatter_add_: repeated indices lose gradient."""

        @staticmethod
        def backward(ctx, g):
            (idx,) = ctx.saved_tensors
            return torch.zeros(g.shape[0], ctx.n, dtype=g.dtype).scatter_(1, idx, g), None

    wrong = vt.check(GatherOverwrites.apply, _t(23, 4, 3), idx)
    assert not wrong.passed
    bad_rows = {i for i, _ in [tuple(ix) for ix in np.argwhere(wrong["input0"].status == 3)]}
    assert bad_rows <= {1, 3}  # only the rows with a repeated index


def test_tensors_inside_a_list_argument_are_named():
    a, b = _t(24, 2, 3), _t(25, 2, 3)
    with pytest.raises(TypeError, match=r"input 0 \(input0, positional argument 1 after fn\) is a list.*tensors inside "
                                        r"a container are not checked.*torch.cat\(\[a, b\]\), a, b"):
        vt.check(torch.cat, [a, b])
    report = vt.check(lambda x, parts: x * torch.cat(parts).sum(), a, [a, b])
    assert list(report) == ["input0"]
    assert any("inside input1, a list" in n for n in report.torch_notes)
    assert vt.check(lambda p, q: torch.cat([p, q]), a, b).passed


def test_dict_outputs_are_checked_together():
    x = _t(26, 4, 3)

    def heads(a):  # a model returning named outputs
        return {"logits": a.tanh(), "aux": (a * a).sum(), "ids": a.argmax(dim=1)}

    report = vt.check(heads, x)
    assert report.passed, str(report)
    assert any("2 floating-point tensor(s)" in n and "result['ids']" in n for n in report.torch_notes)
    wrong = vt.check(lambda a: {"logits": a.tanh(), "aux": (a * a).detach().sum()}, x)
    assert not wrong.passed


class _Checkpointed(torch.nn.Module):
    """A block run through torch.utils.checkpoint (reentrant: torch.autograd.grad refuses it)."""

    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        self.lin = F.CustomLinear(3, 4, seed=2)
        self.reentrant = reentrant

    def forward(self, x):
        return torch.utils.checkpoint.checkpoint(lambda a: F.Legendre3.apply(self.lin(a)), x,
                                                 use_reentrant=self.reentrant)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpointed_module_and_grad_fields_untouched(reentrant):
    block = _Checkpointed(reentrant)
    x = _t(27, 5, 3)
    x.grad = torch.full_like(x, 3.0)
    report = vt.check(block, x)
    assert report.passed, str(report)
    assert list(report) == ["input0", "lin.weight", "lin.bias"]
    assert reentrant == any("use_reentrant=True" in n for n in report.torch_notes)
    # held by a lambda, with a tensor requiring grad from the closure: every .grad is left as it was
    W = _t(28, 3, 3)
    report = vt.check(lambda a: block(a @ W), x)
    assert report.passed, str(report)
    assert torch.equal(x.grad, torch.full_like(x, 3.0))
    assert W.grad is None and block.lin.weight.grad is None and block.lin.bias.grad is None


def test_in_place_first_layer_on_an_input_without_grad_is_no_bug():
    model = torch.nn.Sequential(torch.nn.ReLU(inplace=True), F.CustomLinear(4, 3, seed=3))
    X = _t(29, 5, 4, grad=False)
    before = X.clone()
    report = vt.check(model, X)
    assert report.passed, str(report)
    assert list(report) == ["1.weight", "1.bias"]
    assert any("nn.ReLU(inplace=True)" in n and "no gradient bug" in n for n in report.torch_notes)
    assert torch.equal(X, before)
    # the same write into an input that requires grad, behind autograd's back, is a bug
    report = vt.check(lambda a: a.detach().clamp_(min=0).mul(1) + a, _t(29, 5, 4))
    assert report.diagnosis.kind == "mutates_input"
