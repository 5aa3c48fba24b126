"""Cost of the checker on failing checks: gross errors are settled cheaply, without changing any verdict.

Evaluation counts (``report.n_evals``) are deterministic, so they are asserted exactly or bounded; no
test here measures time.

Before the two-stage analysis, every failing entry cost about 37 evaluations (steps 2h and h/2, a
24-point noise measurement, a 7-point kink ladder): 1110 for the 30-entry sign flip below, 888 for the
24-entry missing 1/N. A gross error now costs 4 evaluations per entry (steps h and 2h) plus one noise
screen per tensor (12 evaluations, 12 more when ``L`` stays bit-identical).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from verigrad.check import check_gradients, check_params, gradient_check

#: evaluations of the noise screen of one tensor at most (2 spacings + 2 plateau spacings, 6 points each)
SCREEN = 24


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def _dsigmoid(z):
    s = _sigmoid(z)
    return s * (1 - s)


def test_gross_sign_flip_costs_at_most_four_evaluations_per_entry():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5))
    dy = rng.standard_normal((6, 5))
    rep = check_gradients(_sigmoid, -_dsigmoid(x) * dy, x, dy, method="central", probe=False)
    assert not rep.passed and rep.diagnosis.kind == "sign"
    assert (rep.status == 3).all()
    # the old analysis needed 1110 evaluations here (37 per entry)
    assert rep.n_evals <= 4 * x.size + SCREEN
    assert rep.n_evals < 8 * x.size


def test_gross_missing_mean_in_a_scalar_loss_is_cheap_and_named():
    rng = np.random.default_rng(1)
    p = rng.standard_normal((8, 3))
    y = rng.standard_normal((8, 3))

    def mse(q):
        return 0.5 * np.sum((q - y) ** 2) / q.shape[0]

    rep = check_gradients(mse, p - y, p, method="central", batch_size=8, probe=False)
    assert rep.diagnosis.kind == "scale"
    assert rep.diagnosis.details["factor"] == pytest.approx(8.0, rel=1e-6)
    assert rep.n_evals <= 4 * p.size + SCREEN  # was 888


def test_correct_check_still_costs_two_evaluations_per_entry():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 5))
    dy = rng.standard_normal((4, 5))
    rep = check_gradients(_sigmoid, _dsigmoid(x) * dy, x, dy, method="central", probe=False)
    assert rep.passed
    assert rep.n_evals == 2 * x.size


def test_gross_errors_are_noted_and_keep_their_numerical_values():
    rng = np.random.default_rng(3)
    x = rng.uniform(0.2, 2.0, (3, 4))
    exact = np.cos(x)
    rep = check_gradients(np.sin, 2 * exact, x, np.ones_like(x), method="central", probe=False)
    assert rep.diagnosis.kind == "scale" and rep.diagnosis.details["factor"] == pytest.approx(2.0, rel=1e-8)
    assert any("wrong by far more" in note for note in rep.notes)
    # the Richardson estimate from steps h and 2h is what the diagnosis reads
    assert np.max(np.abs(rep.numerical - exact)) <= 1e-8 * np.max(np.abs(exact))
    assert rep.worst is not None and rep.worst.abs_error > 0.1


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 5)), elements=st.floats(-3, 3)),
       st.sampled_from([-1.0, 0.0, 2.0, 0.5, 10.0]), st.integers(0, 2**31 - 1))
def test_gross_bugs_cost_is_bounded_and_kind_unchanged(x, c, seed):
    dy = np.random.default_rng(seed).uniform(0.5, 1.5, x.shape)
    rep = check_gradients(np.tanh, c * (1 - np.tanh(x) ** 2) * dy, x, dy, method="central", probe=False)
    assert not rep.passed
    expected = {-1.0: "sign", 0.0: "zero"}.get(c, "scale")
    if x.size > 1 or c in (-1.0, 0.0):
        assert rep.diagnosis.kind == expected, str(rep)
    assert rep.n_evals <= 4 * x.size + SCREEN


def test_kink_entries_still_get_the_full_analysis():
    # exactly at 0, within 1e-6 of 0, and away from it; the correct (sub)gradient passes, a wrong
    # derivative near the kink fails and is named from the small-step values
    x = np.array([[0.0, 1e-7, -1e-7, 1e-6], [-1e-6, 0.5, -0.5, 3e-9]])
    dy = np.array([[1.3, -0.7, 0.4, 2.0], [0.9, -1.1, 0.6, 1.5]])
    ok = check_gradients(lambda z: np.maximum(z, 0.0), (x > 0) * dy, x, dy, method="central")
    assert ok.passed and ok.diagnosis.kind == "kink" and (0, 0) in ok.kinks
    bad = check_gradients(lambda z: np.maximum(z, 0.0), 2 * (x > 0) * dy, x, dy, method="central")
    assert not bad.passed
    assert bad.diagnosis.kind == "scale" and bad.diagnosis.details["factor"] == pytest.approx(2.0, rel=1e-6)
    assert bad.status[1, 1] == 3 and bad.status[0, 1] == 3  # 1e-7 and 0.5: wrong
    assert bad.numerical[0, 1] == pytest.approx(dy[0, 1], rel=1e-6)  # not the kink-straddling value


def test_staircase_of_rounding_is_not_taken_for_a_gross_error():
    # L = (1e3 + small) - 1e3 is rounded at the scale of 1e3: its values form a staircase whose steps
    # (~1e-13) are far above eps * |L|; at some entries the staircase looks regular at steps h and 2h.
    # The noise screen must see it, so that the differences are judged against the measured noise.
    x = np.random.default_rng(1).uniform(-1, 1, 6)
    w = 1e-6

    def f(z):
        return (1e3 + w * np.sum(np.sin(z))) - 1e3

    rep = check_gradients(f, 1.03 * w * np.cos(x), x, method="central")
    assert not any("wrong by far more" in note for note in rep.notes), rep.notes
    assert np.all(rep.tolerance >= 1e-2 * w * np.abs(np.cos(x)))


def test_plateau_is_not_taken_for_a_gross_error():
    # the loss does not change at all at the step h (its change is below its own resolution)
    x = np.linspace(-1, 1, 5)

    def f(z):
        return (1e8 + 1e-9 * np.sum(np.sin(z))) - 1e8

    rep = check_gradients(f, 1e-9 * np.cos(x), x, method="central")
    assert not any("wrong by far more" in note for note in rep.notes)
    assert rep.n_evals > 4 * x.size + SCREEN  # analysed in full (noise measurement, kink ladder)


def test_model_fast_path_used_in_chunks_on_a_gross_failure():
    nn = pytest.importorskip("verigrad.nn")
    rng = np.random.default_rng(4)
    X = rng.standard_normal((8, 5))
    y = rng.integers(0, 3, 8)
    model = nn.NeuralNetwork([nn.Dense(5, 6, seed=1), nn.Tanh(), nn.Dense(6, 3, seed=2)])
    loss = nn.CrossEntropyLoss()

    class HalfGradient:  # a loss whose backward forgot a factor 2
        def forward(self, pred, target):
            return loss.forward(pred, target)

        def backward(self, pred, target):
            return 0.5 * loss.backward(pred, target)

    calls: list[tuple[str, int, int]] = []
    original = model.perturbed_losses

    def spy(name, flat_index, steps, *args):
        calls.append((name, len(flat_index), steps.shape[1]))
        return original(name, flat_index, steps, *args)

    model.perturbed_losses = spy
    rep = gradient_check(model, X, y, HalfGradient())
    assert not rep.passed
    assert rep.diagnosis.kind == "scale" and rep.diagnosis.details["factor"] == pytest.approx(0.5, rel=1e-6)
    params = model.params()
    # every parameter went through the fast hook: whole tensors at once for the first estimate
    assert {c[0] for c in calls} == set(params)
    for nm, p in params.items():
        assert (nm, p.size, 2) in calls
    n_entries = sum(p.size for p in params.values()) + X.size
    assert rep.n_evals <= 4 * n_entries + SCREEN * (len(params) + 1) + 4
    generic = gradient_check(model, X, y, HalfGradient(), use_fast_path=False)
    assert generic.diagnosis.kind == "scale"
    for nm in rep:
        assert np.array_equal(rep[nm].status, generic[nm].status)


def test_float32_one_percent_error_still_caught():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((8, 5)).astype(np.float32)
    dY = rng.standard_normal((8, 4)).astype(np.float32)
    P = {"W": rng.standard_normal((5, 4)).astype(np.float32)}

    def loss():
        return np.sum(np.tanh(X @ P["W"]) * dY)

    g = X.T @ ((1 - np.tanh(X @ P["W"]) ** 2) * dY)
    assert check_params(loss, P, {"W": g.astype(np.float32)}).passed
    bad = check_params(loss, P, {"W": (1.01 * g).astype(np.float32)})
    assert not bad.passed and bad.diagnosis.kind == "scale"


FUNCTIONS = {
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "sigmoid": (_sigmoid, _dsigmoid),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float)),
    "leaky": (lambda z: np.where(z > 0, z, 0.1 * z), lambda z: np.where(z > 0, 1.0, 0.1)),
    "square": (np.square, lambda z: 2 * z),
}
near_kinks = st.one_of(st.sampled_from([0.0, 1e-7, -1e-7, 1e-6, -3e-9]), st.floats(-3, 3))


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(FUNCTIONS)),
       arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 4)), elements=near_kinks),
       st.sampled_from([1.0, -1.0, 0.0, 2.0, 1.005, 1.3]), st.booleans(), st.integers(0, 2**31 - 1))
def test_gross_shortcut_never_changes_a_verdict(name, x, c, one_entry, seed):
    # the same check with the gross-error shortcut disabled (every failing entry analysed in full:
    # step h/2, noise measurement, kink analysis) gives the same statuses and the same diagnosis
    from verigrad.check import engine

    f, df = FUNCTIONS[name]
    dy = np.random.default_rng(seed).uniform(0.5, 1.5, x.shape)
    g = df(x) * dy
    if one_entry:
        g.flat[seed % x.size] *= c
    else:
        g = c * g
    fast = check_gradients(f, g, x, dy, method="central", probe=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "GROSS_FACTOR", np.inf)
        full = check_gradients(f, g, x, dy, method="central", probe=False)
    assert np.array_equal(fast.status, full.status), (fast.status, full.status)
    assert fast.diagnosis.kind == full.diagnosis.kind
    assert fast.n_evals <= full.n_evals + SCREEN  # the noise screen is the shortcut's only extra cost


@pytest.mark.parametrize("act", ["ReLU", "Tanh"])
@pytest.mark.parametrize("fac,where", [(0.5, None), (3.0, (1, 2)), (1.02, (0, 0))])
def test_gross_shortcut_never_changes_a_model_verdict(act, fac, where):
    nn = pytest.importorskip("verigrad.nn")
    from verigrad.check import engine

    rng = np.random.default_rng(7)
    X = rng.standard_normal((8, 5))
    y = rng.integers(0, 3, 8)
    model = nn.NeuralNetwork([nn.Dense(5, 6, seed=3), getattr(nn, act)(), nn.Dense(6, 3, seed=4)])
    loss = nn.CrossEntropyLoss()

    class Buggy:
        def forward(self, pred, target):
            return loss.forward(pred, target)

        def backward(self, pred, target):
            g = np.array(loss.backward(pred, target), dtype=np.float64)
            if where is None:
                return fac * g
            g[where] *= fac
            return g

    fast = gradient_check(model, X, y, Buggy())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "GROSS_FACTOR", np.inf)
        full = gradient_check(model, X, y, Buggy())
    assert not fast.passed
    assert fast.diagnosis.kind == full.diagnosis.kind
    for name in fast:
        assert np.array_equal(fast[name].status, full[name].status), name


# ------------------------------------------------------------------------------------------------
# fast mode: whole-array directional tests (flat views, no per-entry indexing)
# ------------------------------------------------------------------------------------------------
def _tanh_params(dtype, seed, transpose=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, 5)).astype(dtype)
    W = rng.standard_normal((5, 7)).astype(dtype)
    if transpose:  # a non-contiguous live array (a transposed view)
        W = np.ascontiguousarray(W.T).T
    b = rng.standard_normal(7).astype(dtype)
    G = rng.standard_normal((6, 7))

    def loss():
        return float(np.sum(np.tanh(X @ W + b).astype(np.float64) * G))

    def grads(scale_w=1.0):
        t = np.tanh((X @ W + b).astype(np.float64))
        dz = (1 - t * t) * G
        return {"W": scale_w * X.astype(np.float64).T @ dz, "b": dz.sum(0)}

    return loss, {"W": W, "b": b}, grads


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("transpose", [False, True])
def test_fast_mode_passes_correct_restores_bits_and_catches_scale(dtype, transpose):
    loss, params, grads = _tanh_params(dtype, 3, transpose)
    before = {k: v.copy() for k, v in params.items()}
    rep = check_params(loss, params, grads(), mode="fast", seed=0)
    assert rep.passed, rep
    assert rep.n_evals <= 10
    for k, v in params.items():
        assert v.tobytes() == before[k].tobytes()
    bad = check_params(loss, params, grads(scale_w=1.02), mode="fast", seed=0)
    assert not bad.passed
    assert not bad["W"].passed and bad["b"].passed
    for k, v in params.items():
        assert v.tobytes() == before[k].tobytes()


def test_fast_mode_restores_bits_when_the_loss_raises():
    loss, params, grads = _tanh_params(np.float64, 4)
    before = {k: v.copy() for k, v in params.items()}
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] == 3:  # inside the first directional test
            raise RuntimeError("boom")
        return loss()

    with pytest.raises(RuntimeError, match="boom"):
        check_params(flaky, params, grads(), mode="fast", seed=0)
    for k, v in params.items():
        assert v.tobytes() == before[k].tobytes()
