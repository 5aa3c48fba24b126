"""Methods (central, complex step with validation, Richardson), float32 judgement and probing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from verigrad.check import check_gradients, check_params


def test_complex_step_used_when_valid_and_exact():
    x = np.random.default_rng(0).standard_normal(6)
    rep = check_gradients(lambda z: np.sum(np.sin(z) * z ** 2), lambda z: np.cos(z) * z ** 2 + 2 * z * np.sin(z), x)
    assert rep.method == "complex"
    exact = np.cos(x) * x ** 2 + 2 * x * np.sin(x)
    assert np.max(np.abs(rep.numerical - exact)) <= 4 * np.finfo(float).eps * np.max(np.abs(exact))


@pytest.mark.parametrize("fn,grad", [
    (lambda z: np.var(z), lambda z: 2 * (z - z.mean()) / z.size),
    (lambda z: np.sum(np.abs(z) ** 3), lambda z: 3 * z * np.abs(z)),
    (lambda z: np.sum(np.real(z) ** 2), lambda z: 2 * z),
    (lambda z: np.sum(np.asarray(z, dtype=np.float64) ** 2), lambda z: 2 * z),
    (lambda z: np.sum(z * np.conj(z)), lambda z: 2 * z),
], ids=["var", "abs", "real", "cast", "conj"])
def test_complex_step_rejected_where_it_would_be_wrong(fn, grad):
    x = np.random.default_rng(1).standard_normal(5) + 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = check_gradients(fn, grad, x, method="auto", probe=False)
    assert rep.method == "central"
    assert rep.passed, str(rep)
    bad = check_gradients(fn, lambda z: 1.1 * grad(z), x, method="auto", probe=False)
    assert not bad.passed and bad.diagnosis.kind == "scale"


def test_explicit_complex_falls_back_with_a_note():
    x = np.linspace(0.1, 1, 4)
    rep = check_gradients(lambda z: np.sum(np.abs(z)), np.ones(4), x, method="complex")
    assert rep.method == "central" and rep.passed
    assert any("complex step not used" in n for n in rep.notes)


def test_richardson_is_more_accurate_and_reports_error_estimate():
    x = np.linspace(-2, 2, 7)
    exact = np.exp(x) * (1 + x)
    fn = lambda z: z * np.exp(z)  # noqa: E731
    rich = check_gradients(fn, exact, x, np.ones(7), method="richardson")
    cen = check_gradients(fn, exact, x, np.ones(7), method="central")
    assert rich.passed and cen.passed and rich.method == "richardson"
    err_r = np.max(np.abs(rich.numerical - exact))
    err_c = np.max(np.abs(cen.numerical - exact))
    assert err_r < err_c
    assert np.all(np.isfinite(rich.error_estimate))
    assert np.all(np.abs(rich.numerical - exact) <= rich.error_estimate + 1e-12)


def test_explicit_tolerance_semantics_seed000():
    x = np.linspace(-1, 1, 5)
    g = np.cos(x) + 1e-3  # abs error 1e-3 everywhere
    assert check_gradients(np.sin, g, x, np.ones(5), atol=2e-3).passed
    assert not check_gradients(np.sin, g, x, np.ones(5), atol=1e-4, rtol=1e-5).passed
    assert check_gradients(np.sin, g, x, np.ones(5), rtol=5e-2).passed
    # automatic tolerance: 1e-3 is far beyond float64 round-off
    assert not check_gradients(np.sin, g, x, np.ones(5)).passed


def test_explicit_eps_is_the_step():
    x = np.array([0.3, 1.2])
    rep = check_gradients(np.exp, np.exp(x), x, np.ones(2), eps=1e-2, method="central", atol=1e-3)
    # central difference at step 1e-2: error h^2/6 * exp(x)
    assert np.allclose(rep.numerical, np.exp(x) * np.sinh(1e-2) / 1e-2, rtol=1e-9)


def test_float32_promotion_to_float64_evaluation():
    X = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    calls = []

    def fn(x):
        calls.append(x.dtype)
        return np.tanh(x)

    g = (1 - np.tanh(X) ** 2).astype(np.float32)
    rep = check_gradients(fn, g, X, np.ones((4, 3), np.float32))
    assert rep.passed
    assert np.float64 in calls  # the numerical side ran in float64
    assert rep.diagnosis.kind == "precision"  # float32 analytic: differences beyond float64 round-off
    bad = check_gradients(fn, g * np.float32(1.01), X, np.ones((4, 3), np.float32))
    assert not bad.passed


def test_float64_params_float32_grads_judged_by_coarser_dtype():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 3))
    P = {"W": rng.standard_normal((3, 2))}

    def loss():  # float32 computation on float64 parameters (like the torch adapter)
        return float(np.sum(np.tanh(X.astype(np.float32) @ P["W"].astype(np.float32))))

    g = (X.astype(np.float32).T @ (1 - np.tanh(X.astype(np.float32) @ P["W"].astype(np.float32)) ** 2))
    rep = check_params(loss, P, {"W": g.astype(np.float32)})
    assert rep.passed, str(rep)
    assert not check_params(loss, P, {"W": (g * 1.01).astype(np.float32)}).passed


def test_probe_skips_points_where_fn_fails():
    x = np.array([0.2, 0.5, 0.7])

    def fn(z):
        if np.any(np.abs(z) > 5):
            raise ValueError("out of domain")
        return np.sum(np.log(z))

    rep = check_gradients(fn, lambda z: 1 / z, x)
    assert rep.passed, str(rep)
    labels = {p["label"]: p for p in rep.probes}
    assert "skipped" in labels["x*10"] and "out of domain" in labels["x*10"]["skipped"]
    assert "skipped" in labels["-x"]  # log of negatives is NaN: not finite, skipped
    assert labels["x*0.1"]["passed"]


def test_probe_overflow_is_silent():
    x = np.array([50.0, 80.0, -3.0])

    def fn(z):
        return np.sum(np.exp(z))  # overflows at x*10

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = check_gradients(fn, lambda z: np.exp(z), x)
    assert rep.passed
    assert any("skipped" in p for p in rep.probes if p["label"] == "x*10")


def test_kink_that_is_wrong_outside_hull_fails():
    x = np.array([0.0, 1.0, -1.0])
    dy = np.array([1.0, 1.0, 1.0])
    rep = check_gradients(lambda z: np.maximum(z, 0), np.array([2.0, 1.0, 0.0]), x, dy)
    assert not rep.passed
    assert rep.worst.index == (0,)
    for sub in (0.0, 0.3, 1.0):  # any value between the one-sided derivatives is a valid subgradient
        ok = check_gradients(lambda z: np.maximum(z, 0), np.array([sub, 1.0, 0.0]), x, dy)
        assert ok.passed and ok.kinks == [(0,)] and ok.diagnosis.kind == "kink"
    assert "(0,)" in ok.diagnosis.message


def test_nonfinite_loss_near_domain_edge_uses_smaller_step():
    p = np.array([1e-12, 0.5, 1 - 1e-10])
    rep = check_gradients(lambda q: np.sum(np.log(q) + np.log1p(-q)), 1 / p - 1 / (1 - p), p, method="central")
    assert rep.passed, str(rep)


def test_scalar_and_zero_d_inputs_with_probes():
    assert check_gradients(lambda x: x ** 2, lambda x: 2 * x, 3.0).passed
    rep = check_gradients(lambda x: float(np.sum(x ** 2)), lambda x: 2 * x, np.array(3.0))
    assert rep.passed and rep.shape == ()
    assert all(p.get("passed") for p in rep.probes)
    assert not check_gradients(lambda x: x ** 2, lambda x: 3 * x, 3.0).passed


def test_long_double_is_not_mistaken_for_nondeterminism():
    x = np.linspace(0.1, 1, 3).astype(np.longdouble)
    rep = check_gradients(np.sin, np.cos(x), x, np.ones(3))
    assert rep.passed and rep.diagnosis.kind == "ok"


def test_three_d_tensor_partial_entries():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    g = np.cos(x)
    g[1, 2, :] *= 2
    rep = check_gradients(np.sin, g, x, np.ones((2, 3, 4)))
    assert rep.diagnosis.kind == "partial"
    assert sorted(rep.diagnosis.details["entries"]) == [(1, 2, j) for j in range(4)]


@pytest.mark.parametrize("mode", ["full", "fast", "sample"])
def test_modes_on_relu_with_kinks_and_factor_two(mode):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 6))
    x[0, 0], x[1, 1] = 0.0, 1e-8
    dy = rng.standard_normal((5, 6))
    ok = check_gradients(lambda z: np.maximum(z, 0), (x > 0) * dy, x, dy, mode=mode, k=8)
    assert ok.passed, str(ok)
    bad = check_gradients(lambda z: np.maximum(z, 0), 2 * (x > 0) * dy, x, dy, mode=mode, k=8)
    assert not bad.passed
    assert bad.diagnosis.kind == "scale" and bad.diagnosis.details["factor"] == pytest.approx(2.0, rel=1e-6)
    if mode == "fast":
        assert ok.n_evals < bad.n_evals


# ------------------------------------------------------------------------------------------------
# kinks of the second derivative and multi-kinks (several units on their kinks at once)
# ------------------------------------------------------------------------------------------------
def test_jump_of_the_second_derivative_is_extrapolated_to_first_order():
    # relu(b) ** 2 scaled small next to a large smooth part: L'' jumps at b = 0, so the central
    # difference errs linearly in the step; the h**2 extrapolation would leave a residue above rounding
    rng = np.random.default_rng(5)
    A = rng.standard_normal((30, 4))
    b = np.zeros(4)

    def loss():
        return float(np.sum(np.log1p(np.exp(A + 1.0))) + 40.0 * np.sum(np.maximum(b, 0.0) ** 2) + b @ A[0])

    def grad(scale=1.0):
        return {"b": scale * A[0] + 80.0 * np.maximum(b, 0.0)}

    ok = check_params(loss, {"b": b}, grad())
    assert ok.passed, str(ok)
    bad = check_params(loss, {"b": b}, {"b": grad()["b"] * (1 + 1e-6)})
    assert not bad.passed


def _multikink_net(seed: int):
    """A 2-8-3 ReLU network whose batch holds the origin twice, with zero biases: every hidden unit of
    those rows sits on its kink. Backprop (relu'(0) = 0) returns 0 for their input gradient, which is
    not between the one-sided derivatives. Returns (arrays, loss, grads(bug))."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, 2))
    X[1] = 0.0
    X[4] = 0.0
    y = np.array([0, 2, 1, 0, 1, 2])
    arrays = {"W1": rng.standard_normal((2, 8)), "b1": np.zeros(8), "W2": rng.standard_normal((8, 3)),
              "b2": np.zeros(3), "input": X}

    def forward():
        p = arrays
        z = p["input"] @ p["W1"] + p["b1"]
        hdn = np.maximum(z, 0.0)
        o = hdn @ p["W2"] + p["b2"]
        o = o - o.max(axis=1, keepdims=True)
        e = np.exp(o)
        return z, hdn, e / e.sum(axis=1, keepdims=True)

    def loss():
        _, _, prob = forward()
        return float(-np.mean(np.log(prob[np.arange(6), y])))

    def grads(bug: str = "none"):
        p = arrays
        z, hdn, prob = forward()
        do = prob.copy()
        do[np.arange(6), y] -= 1.0
        do /= 6
        dh = do @ p["W2"].T
        dz = dh * (z > 0)
        g = {"W1": p["input"].T @ dz, "b1": dz.sum(0), "W2": hdn.T @ do, "b2": do.sum(0), "input": dz @ p["W1"].T}
        if bug == "sign":
            g["input"] = -g["input"]
        elif bug == "scale2":
            g["input"] = 2.0 * g["input"]
        return g

    return arrays, loss, grads


def _judge_with_regrad(arrays, loss, grads, bug="none", regrad=True):
    from verigrad.check.engine import EPS64, FAIL, Context, Objective, Target, judge_entries

    g0 = grads(bug)
    targets = [Target(k, v, g0[k], EPS64, EPS64) for k, v in arrays.items()]
    before = {k: v.copy() for k, v in arrays.items()}
    obj = Objective(loss)
    L0 = obj()
    ctx = Context(obj, L0, abs(L0), gscale=max(float(np.max(np.abs(g))) for g in g0.values()),
                  regrad=(lambda: grads(bug)) if regrad else None, targets=targets)
    out = {t.name: judge_entries(t, ctx, np.arange(t.live.size)) for t in targets}
    for k, v in arrays.items():
        assert v.tobytes() == before[k].tobytes()  # restored bit for bit
    return {k: r.status.reshape(arrays[k].shape) for k, r in out.items()}, FAIL, out


@pytest.mark.parametrize("seed", [0, 1, 4, 6])
def test_multikink_passes_when_verified_at_nearby_points(seed):
    arrays, loss, grads = _multikink_net(seed)
    status, FAIL, out = _judge_with_regrad(arrays, loss, grads, regrad=False)
    # without the nearby test, the correct backprop value at the multi-kink is outside the hull
    assert (status["input"][[1, 4]] == FAIL).any()
    assert not (status["input"][[0, 2, 3, 5]] == FAIL).any()
    status, FAIL, out = _judge_with_regrad(arrays, loss, grads)
    for k, st_ in status.items():
        assert not (st_ == FAIL).any(), (k, st_, out[k].notes)
    assert any("multi-kink" in note for note in out["input"].notes)


@pytest.mark.parametrize("bug", ["sign", "scale2"])
def test_bug_at_a_multikink_still_fails(bug):
    arrays, loss, grads = _multikink_net(4)
    status, FAIL, out = _judge_with_regrad(arrays, loss, grads, bug=bug)
    assert (status["input"][[1, 4]] == FAIL).any()  # the multi-kink rows too, not only the others
    assert (status["input"][[0, 2, 3, 5]] == FAIL).all()
