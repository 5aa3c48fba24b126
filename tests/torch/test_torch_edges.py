"""verigrad.torch.check at the edges: odd shapes and dtypes, extreme values, options, seeds."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import vg_torch_functions as F  # noqa: E402  (tests/torch/vg_torch_functions.py)

import verigrad.torch as vt  # noqa: E402

PASSING = {"ok", "kink", "precision"}


def _t(seed, *shape, dtype=torch.float64, scale=1.0, grad=True):
    x = scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x.to(dtype).requires_grad_(grad)


def test_zero_dimensional_input():
    x = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    report = vt.check(lambda a: torch.sin(a) * a, x)
    assert report.passed, str(report)
    assert report["input0"].shape == ()
    # d/da (a sin a) = sin a + a cos a, with dLdf = 1 for a scalar output
    assert float(report["input0"].analytic) == pytest.approx(np.sin(0.7) + 0.7 * np.cos(0.7), rel=1e-14)


def test_cross_entropy_with_integer_labels_and_extreme_logits():
    labels = torch.tensor([0, 3, 1, 2, 2])
    F = torch.nn.functional
    for scale in (1.0, 1e4):
        z = _t(1, 5, 4, scale=scale)
        report = vt.check(F.cross_entropy, z, labels)
        assert report.passed, str(report)
        assert list(report) == ["input0"]
    z = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=torch.float64, requires_grad=True)
    assert vt.check(F.cross_entropy, z, torch.tensor([1, 0])).passed


def test_output_detached_from_the_inputs_is_a_zero_gradient():
    report = vt.check(lambda a: a.detach() * 2, _t(2, 3, 4))
    assert not report.passed
    assert report.diagnosis.kind == "zero"
    assert any("no grad_fn" in n for n in report.torch_notes)


def test_fn_computing_in_float32_internally_is_judged_in_float32():
    report = vt.check(lambda a: torch.tanh(a.float() * 3), _t(3, 4, 5))
    assert report.passed, str(report)
    assert report.diagnosis.kind in PASSING


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    x = _t(4, 3, 4, dtype=dtype)
    report = vt.check(torch.tanh, x)
    assert report.passed, str(report)

    wrong = vt.check(F.TanhTimesTwo.apply, x)  # a backward twice too large
    assert wrong.diagnosis.kind == "scale"


def test_forward_writing_into_its_input():
    def fn(a):
        a.detach().add_(1.0)  # sneaky in-place write through a detached view
        return a * 2

    x = _t(5, 3, 2)
    before = x.detach().clone()
    report = vt.check(fn, x)
    assert report.diagnosis.kind == "mutates_input"
    assert "forward" in report.diagnosis.message
    assert torch.equal(x.detach(), before)


def test_same_tensor_passed_twice_is_two_inputs():
    x = _t(6, 4)
    report = vt.check(lambda a, b: a * b.exp(), x, x)
    assert list(report) == ["input0", "input1"]
    assert report.passed, str(report)


def test_wrt_overrides_requires_grad():
    x, w = _t(7, 3, 2, grad=False), _t(8, 2, grad=True)
    report = vt.check(lambda a, b: a * b, x, w, wrt=[0])
    assert list(report) == ["input0"]
    report = vt.check(lambda a, b: a * b, x, w, wrt=[-1, 0])
    assert list(report) == ["input0", "input1"] or list(report) == ["input1", "input0"]
    assert set(report) == {"input0", "input1"}


def test_modes_are_passed_to_the_checker():
    x = _t(9, 40, 30)
    sample = vt.check(torch.tanh, x, mode="sample", k=10)
    fast = vt.check(torch.tanh, x, mode="fast")
    full = vt.check(torch.tanh, x)
    assert sample.mode == "sample" and fast.mode == "fast" and full.mode == "full"
    assert sample.passed and fast.passed and full.passed
    assert sample.n_evals < full.n_evals and fast.n_evals < full.n_evals


def test_dLdf_seed_and_rng():
    x = _t(10, 3, 4)
    a1 = vt.check(torch.sin, x, seed=1)["input0"].analytic
    a2 = vt.check(torch.sin, x, seed=1)["input0"].analytic
    a3 = vt.check(torch.sin, x, seed=2)["input0"].analytic
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, a3)
    G = np.random.default_rng(5).standard_normal((3, 4))
    a4 = vt.check(torch.sin, x, rng=np.random.default_rng(5))["input0"].analytic
    np.testing.assert_allclose(a4, G * np.cos(x.detach().numpy()), rtol=1e-14)
    dLdf = torch.full((3, 4), 2.0)
    a5 = vt.check(torch.sin, x, dLdf=dLdf)["input0"].analytic
    np.testing.assert_allclose(a5, 2.0 * np.cos(x.detach().numpy()), rtol=1e-14)


def test_float32_output_dLdf_is_rounded_to_float32():
    # the upstream gradient is exactly representable in the output dtype, so both sides use the same G
    x = _t(11, 5, dtype=torch.float32)
    report = vt.check(lambda a: a * 1.0, x, rng=np.random.default_rng(0))
    g = report["input0"].analytic
    assert np.array_equal(g.astype(np.float32).astype(np.float64), g)
    assert report.passed


def test_module_with_batchnorm_eval_names_every_parameter():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Sigmoid()).eval()
    report = vt.check(model, _t(12, 5, 3, dtype=torch.float32, grad=False))
    assert list(report) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert report.passed, str(report)


def test_report_title_names_the_function():
    report = vt.check(F.MulConstant.apply, _t(13, 3), 2.0)
    assert str(report).splitlines()[0].startswith("gradient check of MulConstant.apply (torch")


def test_infinite_output_is_refused_clearly():
    with pytest.raises(ValueError, match=r"output is not finite at the given inputs \(first NaN/inf at index \(0, 0\)\)"):
        vt.check(lambda a: a * torch.inf, _t(14, 6, 5))


def test_called_under_no_grad_and_thread_count_restored():
    threads = torch.get_num_threads()
    with torch.no_grad():
        report = vt.check(torch.tanh, _t(15, 4, 3))
    assert report.passed, str(report)
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="num_threads must be a positive integer"):
        vt.check(torch.tanh, _t(15, 4, 3), num_threads=0)


def test_module_method_checks_inputs_only_and_says_so():
    lin = torch.nn.Linear(3, 2).double()
    report = vt.check(lin.forward, _t(16, 4, 3))
    assert list(report) == ["input0"] and report.passed
    assert any("pass the module itself" in n for n in report.torch_notes)


def test_module_that_cannot_be_copied():
    import threading

    class Locked(torch.nn.Linear):
        def __init__(self):
            super().__init__(3, 2)
            self.lock = threading.Lock()

    with pytest.raises(TypeError, match="cannot be deep-copied"):
        vt.check(Locked(), _t(17, 4, 3, dtype=torch.float32))


def test_methods_complex_step_and_richardson():
    x = _t(18, 4, 3)
    for method in ("complex", "richardson"):
        report = vt.check(torch.tanh, x, method=method)
        assert report.passed, str(report)
        assert report.method == method
        # a stop-gradient on a term that depends on the input: autograd misses 2a
        wrong = vt.check(lambda a: torch.tanh(a) + (a * a).detach(), x, method=method)
        assert not wrong.passed
    # complex step impossible (clamp on complex raises): the checker falls back to central differences
    report = vt.check(torch.relu, _t(19, 4, 3), method="complex")
    assert report.passed and report.method == "central"


def test_unsupported_options():
    calls = []

    def fn(a):
        calls.append(1)
        return torch.tanh(a)

    with pytest.raises(TypeError, match="name='x' is not supported"):
        vt.check(fn, _t(20, 3), name="x")
    assert calls == []  # refused with the other arguments, before fn runs
    with pytest.raises(TypeError, match="unknown option"):
        vt.check(torch.tanh, _t(20, 3), tolerance=1e-3)


def test_probe_catches_a_backward_wrong_only_for_large_inputs():
    x = _t(21, 6, 5, scale=0.5)  # all |x| < 3: the shortcut never fires here
    assert vt.check(F.SigmoidSaturationShortcut.apply, x).passed
    report = vt.check(F.SigmoidSaturationShortcut.apply, x, probe=True)
    assert not report.passed
    assert "x*10" in report.diagnosis.message
    labels = [p["label"] for p in report["input0"].probes]
    assert labels == ["x*10", "x*0.1", "x+1", "-x"]


def test_probe_passes_correct_module_parameters_and_leaves_them_untouched():
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = vt.check(model, _t(22, 5, 3, dtype=torch.float32), probe=True)
    assert report.passed, str(report)
    assert all(len(report[k].probes) == 4 for k in report)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_fn_closing_over_float32_tensors_still_evaluated_in_float64():
    torch.manual_seed(4)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())  # float32, held by the closure
    data = torch.randn(5, 3)
    x = _t(23, 5, 3, dtype=torch.float32)
    report = vt.check(lambda a: model(a + data), x)
    assert report.passed, str(report)
    assert report.torch_numeric_dtype == "float64"
    assert any("upcasting" in n for n in report.torch_notes)
    # accuracy of float64 finite differences (float32 ones would be ~1e-3 off)
    assert report["input0"].max_abs_error < 1e-5

    class Bad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * data

        @staticmethod
        def backward(ctx, g):
            return g * data * 2

    assert vt.check(Bad.apply, x).diagnosis.kind == "scale"


def test_output_selector_for_modules_with_tuple_results():
    torch.manual_seed(5)
    lstm = torch.nn.LSTM(3, 4, batch_first=True)
    x = _t(24, 2, 5, 3, dtype=torch.float32)
    # the whole result (out, (h, c)): its three tensors are checked together
    joint = vt.check(lstm, x, mode="sample", k=8)
    assert joint.passed, str(joint)
    assert any("3 floating-point tensor(s) are checked together" in n for n in joint.torch_notes)
    report = vt.check(lstm, x, output=0)
    assert report.passed, str(report)
    assert list(report) == ["input0", "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    report = vt.check(lstm, x, output=lambda r: r[1][1], mode="sample", k=8)  # the final cell state
    assert report.passed, str(report)
    with pytest.raises(TypeError, match="output=5 cannot select"):
        vt.check(lstm, x, output=5)
    with pytest.raises(TypeError, match="output must be an index or a callable"):
        vt.check(lstm, x, output="h")
