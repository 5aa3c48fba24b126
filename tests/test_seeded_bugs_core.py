"""Focused tests for bugs a careless edit could seed into data.py, train.py and verigrad.check's
diagnosis / report / engine formulas (mutation testing, task M / core2).

Each test pins one behaviour that the rest of the suite left unchecked: it fails on the seeded bug
named in its docstring and passes on the real code. All data are seeded; nothing here is slow.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from verigrad.check import Diagnosis, GradientReport, ModelReport, check_gradients, check_params
from verigrad.check.diagnosis import jsonable, name_factor
from verigrad.check.engine import FAIL, KINK, PRECISION, finite_max, isclose_rel, rel_error
from verigrad.data import DataLoader, make_blobs, make_quadratic, make_spirals, train_test_split
from verigrad.nn import CrossEntropyLoss, Dense, MSELoss, NeuralNetwork, SGD, Sigmoid, Tanh
from verigrad.train import accuracy, evaluate, fit


# ---------------------------------------------------------------------------------------------
# data.py
# ---------------------------------------------------------------------------------------------
def test_quadratic_inputs_cover_both_signs_in_unit_square():
    """Seeded bug: ``uniform(0, 1)`` instead of ``uniform(-1, 1)`` (seed 001's inputs)."""
    X, y = make_quadratic(200, seed=0)
    assert X.min() >= -1.0 and X.max() <= 1.0
    assert (X < -0.5).mean(axis=0).min() > 0.1  # about a quarter of each column below -0.5
    assert np.allclose(y[:, 0], X[:, 0] ** 2 + X[:, 1] ** 2, rtol=0, atol=1e-15)


def test_spiral_arms_are_rotated_by_4_radians_per_class():
    """Seeded bug: the class offset ``4 k`` dropped from ``theta`` (every arm on top of the others)."""
    n, k = 30, 3
    X, y = make_spirals(n, n_classes=k, noise=0.0, seed=0)
    for cls in range(k):
        pts = X[y == cls]
        r = np.linspace(0.0, 1.0, pts.shape[0])
        theta = 4.0 * cls + 4.0 * r
        expected = np.column_stack([r * np.sin(theta), r * np.cos(theta)])
        np.testing.assert_allclose(pts, expected, rtol=0, atol=1e-12)
    # and the arms really are different point sets
    assert not np.allclose(X[y == 0], X[y == 1])


def test_stratified_split_draws_test_rows_at_random_within_each_class():
    """Seeded bug: no permutation inside a class, so the test part is always each class's first rows."""
    X = np.arange(40, dtype=np.float64).reshape(-1, 1)  # row i holds i: recovers the indices
    y = np.repeat([0, 1], 20)
    firsts = {0: set(range(5)), 1: set(range(20, 25))}
    seen = []
    for seed in range(4):
        _, X_te, _, y_te = train_test_split(X, y, test_size=0.25, seed=seed, stratify=True)
        idx = X_te[:, 0].astype(int)
        assert np.array_equal(y[idx], y_te)
        assert np.bincount(y_te).tolist() == [5, 5]
        seen.append(frozenset(idx.tolist()))
        # not simply the first five rows of each class
        assert set(idx.tolist()) != firsts[0] | firsts[1]
    assert len(set(seen)) == len(seen)  # different seeds, different test rows


# ---------------------------------------------------------------------------------------------
# train.py: metrics
# ---------------------------------------------------------------------------------------------
def test_probability_threshold_is_strict():
    """Seeded bug: ``p >= 0.5`` instead of ``p > 0.5`` (documented: ``label = pred > threshold``)."""
    p = np.array([0.5, 0.5, 0.75, 0.25])
    assert accuracy(p, np.array([0, 0, 1, 0])) == 1.0
    assert accuracy(p.reshape(-1, 1), np.array([1, 1, 1, 0])) == 0.5
    assert accuracy(np.array([0.0, -0.1, 0.2]), np.array([0, 1, 1]), threshold=0.0) == 2 / 3


# ---------------------------------------------------------------------------------------------
# train.py: fit
# ---------------------------------------------------------------------------------------------
def _mlp(seed: int = 0) -> NeuralNetwork:
    return NeuralNetwork([Dense(2, 6, seed=seed), Tanh(), Dense(6, 3, seed=seed + 1)])


class _RecordingSGD:
    """SGD that also records the norm of every gradient it is given."""

    def __init__(self, params: dict, lr: float) -> None:
        self.inner = SGD(params, lr=lr)
        self.norms: list[dict[str, float]] = []

    def step(self, grads: dict) -> None:
        self.norms.append({k: float(np.linalg.norm(g)) for k, g in grads.items()})
        self.inner.step(grads)


def test_grad_norms_are_the_mean_over_the_epochs_steps():
    """Seeded bug: the per-epoch sum of the step norms instead of their mean (``denom = 1``)."""
    X, y = make_blobs(50, seed=3)
    model = _mlp(1)
    opt = _RecordingSGD(model.params(), lr=0.1)
    loader = DataLoader(X, y, batch_size=16, seed=0)  # 4 steps per epoch, the last one of 2 samples
    h = fit(model, CrossEntropyLoss(), opt, loader, epochs=2, progress=False, record_grad_norms=True)
    steps = len(loader)
    assert steps == 4 and len(opt.norms) == 2 * steps
    for e in range(2):
        per_step = opt.norms[e * steps:(e + 1) * steps]
        for k in ("W_0", "b_0", "W_2", "b_2"):
            assert h.grad_norms[k][e] == pytest.approx(np.mean([s[k] for s in per_step]), rel=1e-10)
        layer0 = np.mean([math.hypot(s["W_0"], s["b_0"]) for s in per_step])
        assert h.grad_norms_by_layer()[0][e] == pytest.approx(layer0, rel=1e-10)


class _ModeSensitive:
    """A network whose training-mode output differs from its inference output (as with dropout)."""

    def __init__(self) -> None:
        self.net = _mlp(4)

    def forward(self, X, training=True):
        out = self.net.forward(X, training=training)
        return out + 3.0 * np.array([1.0, -1.0, 0.0]) if training else out

    def backward(self, grad):
        return self.net.backward(grad)

    def params(self):
        return self.net.params()

    def grads(self):
        return self.net.grads()


def test_validation_is_evaluated_in_inference_mode():
    """Seeded bug: the validation pass calls ``forward(X_val, training=True)``."""
    X, y = make_blobs(40, seed=5)
    model = _ModeSensitive()
    loss = CrossEntropyLoss()
    h = fit(model, loss, SGD(model.params(), lr=0.05), DataLoader(X, y, batch_size=20, seed=1), epochs=2,
            progress=False, validation_data=(X, y))
    res = evaluate(model, loss, X, y)
    assert h.val_loss[-1] == pytest.approx(res["loss"], rel=1e-12)
    train_mode = loss.forward(model.forward(X, training=True), y)
    assert abs(train_mode - res["loss"]) > 1e-3  # the two modes really differ here


def test_fractional_regression_targets_in_unit_interval_drop_default_accuracy():
    """Seeded bug: targets in [0, 1] taken for class labels (``0 <= y <= 1`` instead of ``y in {0, 1}``)."""
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, size=(30, 2))
    y = rng.uniform(0.05, 0.95, size=(30, 1))
    model = NeuralNetwork([Dense(2, 4, seed=0), Sigmoid(), Dense(4, 1, seed=1)])
    h = fit(model, MSELoss(), SGD(model.params(), lr=0.1), DataLoader(X, y, batch_size=10, seed=0), epochs=2,
            progress=False, validation_data=(X, y))
    assert h.metrics == {} and h.val_metrics == {}
    assert set(evaluate(model, MSELoss(), X, y)) == {"loss"}
    # genuine 0/1 targets keep the accuracy
    yb = (y > 0.5).astype(np.float64)
    assert set(evaluate(model, MSELoss(), X, yb)) == {"loss", "accuracy"}


class _PoisonLastStep:
    """SGD that writes one NaN into ``W_0`` on its ``at``-th step (the loss of that step was finite)."""

    def __init__(self, params: dict, at: int) -> None:
        self.params, self.at, self.n = params, at, 0

    def step(self, grads: dict) -> None:
        self.n += 1
        for k, g in grads.items():
            self.params[k] -= 0.01 * g
        if self.n == self.at:
            self.params["W_0"][0, 0] = np.nan


def test_one_non_finite_final_parameter_is_a_divergence():
    """Seeded bug: final parameters flagged only when *all* their entries are non-finite."""
    X, y = make_blobs(20, seed=0)
    model = _mlp(2)
    h = fit(model, CrossEntropyLoss(), _PoisonLastStep(model.params(), at=2), DataLoader(X, y, batch_size=10,
            shuffle=False), epochs=1, progress=False)
    assert h.n_steps == 2 and np.isfinite(h.loss[-1])
    assert h.diverged and h.diverged_epoch == 1 and h.diverged_step == 2


def test_any_callback_asking_to_stop_stops_training():
    """Seeded bug: training stops only when *every* callback asks to (``all`` instead of ``any``)."""
    X, y = make_blobs(20, seed=0)
    model = _mlp(3)
    calls: list[int] = []

    def keep_going(epoch, hist):
        calls.append(epoch)
        return False

    def stop_at_2(epoch, hist):
        return epoch >= 2

    h = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.1), DataLoader(X, y, batch_size=10, seed=0),
            epochs=5, progress=False, callbacks=[keep_going, stop_at_2])
    assert h.stopped_early and h.epochs == [1, 2] and calls == [1, 2]


# ---------------------------------------------------------------------------------------------
# check/engine.py formulas
# ---------------------------------------------------------------------------------------------
def test_rel_error_formula():
    """Seeded bugs: denominator ``||n||`` alone or ``max(||a||, ||n||)`` instead of ``||a|| + ||n||``."""
    n = np.array([1.0, -2.0, 2.0])
    assert rel_error(2 * n, n) == pytest.approx(1 / 3, rel=1e-14)
    assert rel_error(np.zeros(3), n) == pytest.approx(1.0, rel=1e-14)
    a = np.array([3.0, 0.0, 4.0])
    b = np.array([0.0, 1.0, 0.0])
    assert rel_error(a, b) == pytest.approx(math.sqrt(26) / 6, rel=1e-14)
    # NaN (not evaluated) entries are ignored
    assert rel_error(np.array([2.0, 7.0]), np.array([1.0, np.nan])) == pytest.approx(1 / 3, rel=1e-14)


def test_report_rel_error_is_computed_from_its_arrays():
    """The same formula on a real failing check (a = 2 n: rel error exactly 1/3 up to the estimate)."""
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    rep = check_gradients(np.sin, 2 * np.cos(x), x, np.ones((2, 3)))
    a, n = rep.analytic, rep.numerical
    assert not rep.passed
    expected = np.linalg.norm(a - n) / (np.linalg.norm(a) + np.linalg.norm(n))
    assert float(rep) == pytest.approx(expected, rel=1e-12)
    assert float(rep) == pytest.approx(1 / 3, rel=1e-6)


def test_finite_max_and_isclose_rel():
    """Seeded bugs: ``finite_max`` returning the minimum; ``isclose_rel`` with an absolute tolerance."""
    assert finite_max(np.array([np.nan, 3.0, -5.0, np.inf, 1.0])) == 3.0
    assert math.isnan(finite_max(np.array([np.nan, np.inf])))
    assert isclose_rel(1000.5, 1000.0, 1e-3)
    assert not isclose_rel(0.0105, 0.01, 1e-2)
    assert not isclose_rel(float("nan"), 1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# check/report.py
# ---------------------------------------------------------------------------------------------
def test_report_max_errors_follow_their_definitions_in_sample_mode():
    """Seeded bugs: per-entry relative error over ``|n|`` only; max abs error as a mean; NaNs not skipped."""
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, size=(6, 5))
    g = np.cos(x) * (1 + rng.uniform(0.5, 1.5, size=x.shape))  # wrong everywhere, by varying factors
    rep = check_gradients(np.sin, g, x, np.ones(x.shape), mode="sample", k=10, seed=0)
    ev = np.isfinite(rep.numerical)
    assert 0 < ev.sum() < x.size
    a, n = rep.analytic[ev], rep.numerical[ev]
    assert rep.max_abs_error == pytest.approx(np.max(np.abs(a - n)), rel=1e-12)
    assert rep.max_rel_error == pytest.approx(np.max(np.abs(a - n) / (np.abs(a) + np.abs(n))), rel=1e-12)
    w = rep.worst
    assert w.rel_error == pytest.approx(abs(w.analytic - w.numerical) / (abs(w.analytic) + abs(w.numerical)),
                                        rel=1e-12)


def test_worst_entry_is_largest_error_relative_to_its_tolerance():
    """Seeded bug: the worst entry chosen by absolute error, ignoring the per-entry tolerance."""
    scale = np.array([1e6, 1.0, 1.0, 1.0])
    x = np.array([1.0, 0.9, 1.1, 1.2])
    g = scale.copy()
    g[0] += 4e-4  # largest absolute error, but small against the tolerance of a 1e6 entry
    g[1] += 3e-4
    rep = check_gradients(lambda v: v * scale, g, x, np.ones(4))
    absd = np.abs(rep.analytic - rep.numerical)
    ratio = absd / rep.tolerance
    assert int(np.argmax(absd)) == 0 and int(np.argmax(ratio)) == 1  # the case really separates the two
    assert rep.worst.index == (1,)


def _report(name: str, a, n, kind: str, status: int) -> GradientReport:
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    return GradientReport(name, a, n, np.full(a.shape, 1e-8), np.full(a.shape, status, dtype=np.int8),
                          Diagnosis(kind, kind, {}), method="central", mode="full", n_evals=2 * a.size,
                          dtype="float64")


def test_model_report_aggregates():
    """Seeded bugs: ModelReport.rel_error as the min; worst among all tensors; global problem ignored;
    ``precision`` preferred over ``kink`` for the passing diagnosis."""
    passing_big = _report("A", [2.0, 4.0], [1.0, 2.0], "precision", PRECISION)  # rel error 1/3
    failing_small = _report("B", [1.0, 1.0], [1.0, 1.02], "mismatch", FAIL)  # rel error ~0.0071
    kink = _report("C", [0.5, 1.0], [0.5, 1.0], "kink", KINK)
    rep = ModelReport({"A": passing_big, "B": failing_small, "C": kink}, method="central", mode="full", n_evals=12)
    assert float(rep) == pytest.approx(max(passing_big.rel_error, failing_small.rel_error), rel=1e-15)
    assert float(rep) == pytest.approx(1 / 3, rel=1e-12)
    assert rep.worst is failing_small  # failures come first, even with a smaller error
    assert not rep.passed and rep.diagnosis.kind == "mismatch"

    ok = ModelReport({"A": passing_big, "C": kink}, method="central", mode="full", n_evals=8)
    assert ok.passed and ok.worst is passing_big
    assert ok.diagnosis.kind == "kink"  # a kink is named before a precision note

    mutated = ModelReport({"C": kink}, method="central", mode="full", n_evals=4,
                          global_diagnosis=Diagnosis("mutates_input", "loss changed params", {}))
    assert not mutated.passed and not bool(mutated)
    assert mutated.diagnosis.kind == "mutates_input"


def test_report_ordering_is_strict_at_equality():
    """Seeded bug: ``report < x`` implemented as ``<=``."""
    rep = _report("A", [2.0, 4.0], [1.0, 2.0], "precision", PRECISION)
    r = float(rep)
    assert not (rep < r) and rep <= r and not (rep > r) and rep >= r
    assert rep < r * 1.01 and rep > r * 0.99


def test_check_params_model_report_rel_error_is_the_largest():
    """The aggregate on a real check: one exact tensor, one wrong one."""
    rng = np.random.default_rng(2)
    W = rng.standard_normal((3, 2))
    b = rng.standard_normal(2)
    X = rng.standard_normal((4, 3))

    def loss():
        return float(np.sum(np.tanh(X @ W + b) ** 2))

    t = np.tanh(X @ W + b)
    dz = 2 * t * (1 - t ** 2)
    rep = check_params(loss, {"W": W, "b": b}, {"W": X.T @ dz, "b": 1.5 * dz.sum(axis=0)})
    assert rep["W"].passed and not rep["b"].passed
    assert float(rep) == rep["b"].rel_error > rep["W"].rel_error


# ---------------------------------------------------------------------------------------------
# check/diagnosis.py
# ---------------------------------------------------------------------------------------------
def test_scale_factor_names():
    """Seeded bugs: the ``1/N`` candidate given the wrong value; an absolute instead of relative 1% match."""
    assert name_factor(1 / 32, 32)[0] == "1/N=1/32"
    assert name_factor(32.0, 32)[0] == "N=32"
    assert name_factor(100.5, 100)[0] == "N=100"  # within 1% of N
    assert name_factor(0.105, 10)[0] != "1/N=1/10"  # 5% away from 1/N
    assert name_factor(0.5, None)[0] == "1/2" and name_factor(-2.0, None)[0] == "-2"


def test_check_names_a_double_division_by_the_batch_size():
    """The same through the checker: analytic = numerical / N with ``batch_size=N``."""
    x = np.linspace(-1, 1, 8).reshape(2, 4)
    rep = check_gradients(np.sin, np.cos(x) / 16, x, np.ones((2, 4)), batch_size=16)
    assert rep.diagnosis.kind == "scale"
    assert rep.diagnosis.details["factor_name"] == "1/N=1/16"


def test_scattered_errors_are_partial_up_to_a_quarter_of_the_entries():
    """Seeded bug: the 'partial' threshold raised from a quarter to a half of the checked entries."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, 12)
    offsets = np.array([5.0, -3.0, 7.0, 2.0])
    kinds = {}
    for n_bad in (3, 4):
        g = np.cos(x)
        g[[1, 4, 7, 10][:n_bad]] += offsets[:n_bad]
        kinds[n_bad] = check_gradients(np.sin, g, x, np.ones(12)).diagnosis
    assert kinds[3].kind == "partial" and kinds[3].details["entries"] == [(1,), (4,), (7,)]
    assert kinds[4].kind == "mismatch"


def test_jsonable_maps_non_finite_floats_to_none():
    """Seeded bug: NaN / inf kept, so ``json.dumps(report.to_dict(), allow_nan=False)`` fails."""
    out = jsonable({"a": float("nan"), "b": (1.0, float("inf")), "c": np.float64(2.5), 3: np.arange(2)})
    assert out == {"a": None, "b": [1.0, None], "c": 2.5, "3": [0, 1]}
    x = np.linspace(-1, 1, 6)
    rep = check_gradients(np.sin, np.cos(x), x, np.ones(6), mode="sample", k=2, seed=0)
    json.dumps(rep.to_dict(arrays=True), allow_nan=False)  # NaN where not evaluated -> null
