"""verigrad.torch.check on custom autograd Functions and nn.Modules: correct ones pass, wrong ones are
caught with the right diagnosis, the caller's tensors are untouched."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import vg_torch_functions as F  # noqa: E402  (tests/torch/vg_torch_functions.py)

import verigrad.torch as vt  # noqa: E402

PASSING = {"ok", "kink", "precision"}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _t(seed, *shape, dtype=torch.float64, scale=1.0, grad=True):
    return (scale * torch.randn(*shape, generator=_gen(seed), dtype=dtype)).requires_grad_(grad)


def _linear_inputs(dtype=torch.float64, seed=0):
    return _t(seed, 6, 4, dtype=dtype), _t(seed + 1, 4, 3, dtype=dtype), _t(seed + 2, 3, dtype=dtype)


# ------------------------------------------------------------------------------------ correct code passes

CORRECT = [
    ("linear", F.Linear.apply, lambda: _linear_inputs()),
    ("sigmoid", F.Sigmoid.apply, lambda: (_t(1, 5, 4, scale=3.0),)),
    ("sigmoid_extreme", F.Sigmoid.apply, lambda: (torch.tensor([-1000.0, -40.0, 0.0, 40.0, 1000.0],
                                                             dtype=torch.float64, requires_grad=True),)),
    ("tanh", F.Tanh.apply, lambda: (_t(2, 5, 4),)),
    ("softmax", F.Softmax.apply, lambda: (_t(3, 4, 5, scale=2.0),)),
    ("leaky_relu", F.LeakyReLU.apply, lambda: (_t(4, 5, 4),)),
    ("matmul", F.Matmul.apply, lambda: (_t(9, 6, 4), _t(10, 4, 3))),
    ("mean_square", F.MeanSquare.apply, lambda: (_t(5, 6, 3), _t(6, 6, 3, grad=False))),
    ("torch_builtin", lambda x, w: torch.tanh(x @ w).pow(2), lambda: (_t(7, 4, 3), _t(8, 3, 2))),
]


@pytest.mark.parametrize("name,fn,make", CORRECT, ids=[c[0] for c in CORRECT])
def test_correct_functions_pass(name, fn, make):
    inputs = make()
    report = vt.check(fn, *inputs)
    assert report.passed, str(report)
    assert report.diagnosis.kind in PASSING
    expected = [f"input{i}" for i, x in enumerate(inputs) if x.requires_grad]
    assert list(report) == expected
    assert report.torch_numeric_dtype == "float64"


def _relu_inputs(dtype=torch.float64):
    x = torch.randn(5, 4, generator=_gen(11), dtype=dtype)
    x[0, :] = 0.0  # exactly at the kink
    x[1, :] = torch.tensor([1e-7, -1e-7, 5e-7, -9e-7], dtype=dtype)  # within 1e-6 of it
    return x.requires_grad_(True)


@pytest.mark.parametrize("fn", [F.ReLU.apply, torch.relu, F.LeakyReLU.apply], ids=["ReLU", "torch.relu", "LeakyReLU"])
def test_kinks_at_and_near_zero_are_not_bugs(fn):
    x = _relu_inputs()
    report = vt.check(fn, x)
    assert report.passed, str(report)
    kinks = report["input0"].kinks
    assert kinks, "entries at exactly 0 must be classified as kinks"
    assert all(i in (0, 1) for i, _ in kinks)  # only the entries at or next to 0
    assert report.diagnosis.kind == "kink"


def test_float32_function_is_judged_against_float32_roundoff():
    x, W, b = _linear_inputs(torch.float32)
    report = vt.check(F.Linear.apply, x, W, b)
    assert report.passed, str(report)
    assert report["input1"].analytic_dtype == "float32"
    # the numerical side really ran in float64 (float32 finite differences would be ~1e-3 off)
    assert report["input1"].max_abs_error < 1e-4


def test_float32_module_all_parameters_named_and_checked():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    X = torch.randn(6, 4, generator=_gen(3))
    report = vt.check(model, X)
    assert report.passed, str(report)
    assert list(report) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name, p in model.named_parameters():
        assert report[name].shape == tuple(p.shape)
    # with the input requiring grad it is checked too, first
    report = vt.check(model, X.clone().requires_grad_(True))
    assert list(report)[0] == "input0" and report.passed


def test_module_frozen_parameters_are_skipped_and_names_option():
    model = torch.nn.Linear(3, 2).double()
    model.bias.requires_grad_(False)
    report = vt.check(model, _t(1, 4, 3), names=["x"])
    assert list(report) == ["x", "weight"]
    assert report.passed, str(report)


def test_explicit_dLdf_is_used():
    x = _t(2, 4)
    dLdf = np.array([1.0, -2.0, 0.5, 3.0])
    report = vt.check(lambda a: 3.0 * a, x, dLdf=dLdf)
    np.testing.assert_allclose(report["input0"].analytic, 3.0 * dLdf, rtol=1e-15)
    # scalar output: dLdf defaults to 1, so the analytic gradient is the plain gradient
    report = vt.check(lambda a: (a ** 2).sum(), x)
    np.testing.assert_allclose(report["input0"].analytic, 2.0 * x.detach().numpy(), rtol=1e-15)


# ------------------------------------------------------------------------------------ wrong code is caught


def test_sign_flip():
    report = vt.check(F.SigmoidSignFlip.apply, _t(1, 5, 4))
    assert not report.passed
    assert report.diagnosis.kind == "sign"


def test_scale_by_two():
    report = vt.check(F.TanhTimesTwo.apply, _t(2, 5, 4))
    assert not report.passed
    d = report["input0"].diagnosis
    assert d.kind == "scale"
    assert d.details["factor"] == pytest.approx(2.0, rel=1e-3)


def test_missing_one_over_N():
    N = 8
    report = vt.check(F.MeanSquareNoN.apply, _t(3, N, 3), _t(4, N, 3, grad=False))
    assert not report.passed
    d = report["input0"].diagnosis
    assert d.kind == "scale"
    assert d.details["factor"] == pytest.approx(N, rel=1e-3)
    assert "missing 1/N" in d.message  # the batch size is taken from the first input's leading axis
    assert list(report) == ["input0"]  # the target does not require grad and is not checked


def test_transposed_weight_gradient():
    report = vt.check(F.MatmulTransposed.apply, _t(5, 6, 4), _t(6, 4, 4))
    assert not report.passed
    assert report["input0"].passed  # dx is right
    assert report["input1"].diagnosis.kind == "transpose"


def test_one_column_wrong_is_partial():
    report = vt.check(F.LinearOneColumnWrong.apply, *_linear_inputs())
    assert not report.passed
    assert set(report.failures) == {"input1"}
    d = report["input1"].diagnosis
    assert d.kind == "partial"
    assert list(d.details.get("columns", [])) == [0], d.message
    assert report["input1"].worst.index[1] == 0


def test_zero_gradient():
    report = vt.check(F.LinearZeroGradW.apply, *_linear_inputs())
    assert set(report.failures) == {"input1"}
    assert report["input1"].diagnosis.kind == "zero"


def test_softmax_diagonal_only_fails():
    report = vt.check(F.SoftmaxDiagonal.apply, _t(6, 4, 5, scale=2.0))
    assert not report.passed
    assert report.diagnosis.kind not in PASSING


def test_backward_mutating_its_input_is_reported_and_caller_untouched():
    x = _t(7, 5, 3)
    before = x.detach().clone()
    report = vt.check(F.SigmoidMutatesSaved.apply, x)
    assert not report.passed
    assert report.diagnosis.kind == "mutates_input"
    assert "input0" in report.diagnosis.message and "backward" in report.diagnosis.message
    assert torch.equal(x, before)


def test_nondeterministic_forward():
    gen = torch.Generator().manual_seed(0)

    def noisy(x):  # fresh noise at every call
        return x * (1 + 0.1 * torch.rand(x.shape, generator=gen, dtype=x.dtype))

    report = vt.check(noisy, _t(8, 4, 3))
    assert not report.passed
    assert report.diagnosis.kind == "nondeterministic"


def test_dropout_in_training_mode_is_nondeterministic_and_eval_passes():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Dropout(0.5), torch.nn.Linear(6, 2)).double()
    X = _t(9, 5, 4, grad=False)
    report = vt.check(model, X)
    assert report.diagnosis.kind == "nondeterministic"
    assert any("Sequential is in training mode" in n and "model.eval()" in n for n in report.torch_notes)
    assert vt.check(model.eval(), X).passed


def test_raise_on_failure():
    from verigrad.check.report import GradientCheckError

    with pytest.raises(GradientCheckError, match="sign"):
        vt.check(F.SigmoidSignFlip.apply, _t(1, 3, 2), raise_on_failure=True)
    with pytest.raises(GradientCheckError, match="mutates_input"):
        vt.check(F.SigmoidMutatesSaved.apply, _t(1, 3, 2), raise_on_failure=True)


# ------------------------------------------------------------------------------------ caller untouched


def _snapshot(tensors):
    return [(t.detach().clone(), None if t.grad is None else t.grad.clone(), t._version) for t in tensors]


def _assert_same(tensors, snap):
    for t, (data, grad, version) in zip(tensors, snap):
        assert torch.equal(t.detach(), data)
        assert (t.grad is None and grad is None) or torch.equal(t.grad, grad)
        assert t._version == version


def test_caller_module_and_inputs_bit_identical_grad_untouched():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.BatchNorm1d(5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    X = torch.randn(6, 3, requires_grad=True)
    model(X).sum().backward()  # pre-existing .grad fields
    params = list(model.parameters()) + [X]
    snap = _snapshot(params)
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    report = vt.check(model, X)
    assert report.passed, str(report)
    _assert_same(params, snap)
    for k, v in model.named_buffers():  # BatchNorm running statistics untouched
        assert torch.equal(v, buffers[k]), k
    assert model[0].weight.dtype == torch.float32


@pytest.mark.parametrize("n_ok", [0, 1, 3, 20])
def test_caller_untouched_when_fn_raises_on_the_nth_call(n_ok):
    calls = {"n": 0}

    def flaky(x, w):
        calls["n"] += 1
        if calls["n"] > n_ok:
            raise RuntimeError(f"boom at call {calls['n']}")
        return torch.tanh(x @ w)

    x, w = _t(1, 4, 3), _t(2, 3, 2)
    w.grad = torch.ones_like(w)
    snap = _snapshot([x, w])
    with pytest.raises(Exception, match="boom"):
        vt.check(flaky, x, w, double=True)
    _assert_same([x, w], snap)


# ------------------------------------------------------------------------------------ float64 fallback


class Float32Only(F.Tanh):
    """A correct tanh that refuses anything but float32 (like a kernel with one dtype)."""

    @staticmethod
    def forward(ctx, x):
        if x.dtype != torch.float32:
            raise TypeError(f"Float32Only: expected float32, got {x.dtype}")
        return F.Tanh.forward(ctx, x)


def test_function_that_cannot_run_in_float64_falls_back_with_a_warning():
    x = _t(3, 4, 3, dtype=torch.float32)
    with pytest.warns(UserWarning, match="cannot run in float64"):
        report = vt.check(Float32Only.apply, x)
    assert report.torch_numeric_dtype == "float32"
    assert any("cannot run in float64" in n for n in report.torch_notes)
    assert report.passed, str(report)
    with pytest.raises(vt.TorchCheckError, match="float64"):
        vt.check(Float32Only.apply, x, double=True)


def test_wrong_float32_only_function_still_caught_in_fallback():
    class Bad(Float32Only):
        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return -g * (1 - y * y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        report = vt.check(Bad.apply, _t(4, 4, 3, dtype=torch.float32))
    assert report.diagnosis.kind == "sign"


# ------------------------------------------------------------------------------------ gradcheck comparison


def test_gradcheck_fails_where_verigrad_rightly_passes():
    """The point of the tool: torch.autograd.gradcheck rejects a correct float32 function and a correct
    ReLU at 0; verigrad passes both (float32 round-off and kinks are not bugs)."""
    x32, W32, b32 = _linear_inputs(torch.float32)
    x0 = _relu_inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not torch.autograd.gradcheck(F.Linear.apply, (x32, W32, b32), raise_exception=False)
        assert not torch.autograd.gradcheck(F.ReLU.apply, (x0,), raise_exception=False)
    assert vt.check(F.Linear.apply, x32, W32, b32).passed
    assert vt.check(F.ReLU.apply, x0).passed
    # and both agree on a real bug
    x = _t(5, 4, 3)
    assert not torch.autograd.gradcheck(F.SigmoidSignFlip.apply, (x,), raise_exception=False)
    assert not vt.check(F.SigmoidSignFlip.apply, x).passed


# ------------------------------------------------------------------------------------ properties


@settings(max_examples=12)
@given(
    n=st.integers(1, 5), i=st.integers(1, 4), o=st.integers(1, 4), seed=st.integers(0, 2**16),
    f32=st.booleans(),
)
def test_property_correct_linear_tanh_passes_for_any_shape(n, i, o, seed, f32):
    dtype = torch.float32 if f32 else torch.float64
    x, W = _t(seed, n, i, dtype=dtype), _t(seed + 1, i, o, dtype=dtype)
    b = _t(seed + 2, o, dtype=dtype)
    report = vt.check(lambda x, W, b: F.Tanh.apply(F.Linear.apply(x, W, b)), x, W, b, seed=seed)
    assert report.passed, str(report)
    assert [report[k].shape for k in report] == [(n, i), (i, o), (o,)]


@settings(max_examples=12)
@given(n=st.integers(2, 5), c=st.integers(2, 5), seed=st.integers(0, 2**16), factor=st.sampled_from([-1.0, 2.0, 0.5]))
def test_property_scaled_softmax_gradient_always_fails(n, c, seed, factor):
    class Scaled(F.Softmax):
        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return factor * y * (g - (g * y).sum(-1, keepdim=True))

    report = vt.check(Scaled.apply, _t(seed, n, c, scale=2.0), seed=seed)
    assert not report.passed
    assert report.diagnosis.kind == ("sign" if factor == -1.0 else "scale")


# ------------------------------------------------------------------------------------ the seed notebooks


def test_seed_003_single_sigmoid_neuron_with_bce():
    """Seed 003: x (1, 2), W (1, 2), b (1,), a = sigmoid(x W^T + b), BCE against y = 1 (float32)."""
    x = torch.tensor([[2.0, 1.0]])
    y = torch.tensor([[1.0]])
    W = torch.tensor([[0.5, -1.0]], requires_grad=True)
    b = torch.tensor([0.0], requires_grad=True)
    bce = torch.nn.BCELoss()
    report = vt.check(lambda W, b: bce(torch.sigmoid(x @ W.T + b), y), W, b, names=["W", "b"])
    assert report.passed, str(report)
    assert list(report) == ["W", "b"]
    # the notebook's printed values: dL/dW = [[-1.0, -0.5]], dL/db = [-0.5] (dLdf = 1 for a scalar loss)
    np.testing.assert_allclose(report["W"].analytic, [[-1.0, -0.5]], rtol=1e-6)
    np.testing.assert_allclose(report["b"].analytic, [-0.5], rtol=1e-6)
    assert W.grad is None and b.grad is None


def test_seed_004_explicit_parameters_two_layer_net():
    """Seed 004: W1, b1, W2, b2 as explicit tensors, ReLU hidden layer, cross-entropy on logits."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(32, 2, generator=gen)
    y = (X[:, 0] > 0).long()
    W1 = (0.1 * torch.randn(2, 16, generator=gen)).requires_grad_()
    b1 = torch.zeros(16, requires_grad=True)
    W2 = (0.1 * torch.randn(16, 2, generator=gen)).requires_grad_()
    b2 = torch.zeros(2, requires_grad=True)

    def loss(W1, b1, W2, b2):
        return torch.nn.functional.cross_entropy(torch.relu(X @ W1 + b1) @ W2 + b2, y)

    report = vt.check(loss, W1, b1, W2, b2, names=["W1", "b1", "W2", "b2"])
    assert report.passed, str(report)
    assert [report[k].shape for k in report] == [(2, 16), (16,), (16, 2), (2,)]
