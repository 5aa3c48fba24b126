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

from verigrad.check import (
    Diagnosis,
    GradientCheckError,
    GradientReport,
    ModelReport,
    check_gradients,
    check_layers,
    check_params,
    gradient_check,
)
from verigrad.check.diagnosis import jsonable, name_factor
from verigrad.check.engine import FAIL, KINK, PRECISION, finite_max, rel_error
from verigrad.data import DataLoader, make_blobs, make_moons, make_quadratic, make_spirals, one_hot, train_test_split
from verigrad.nn import CrossEntropyLoss, Dense, MSELoss, NeuralNetwork, SGD, Sigmoid, Tanh
from verigrad.train import History, accuracy, evaluate, fit, mean_squared_error


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


def test_finite_max_ignores_non_finite_values():
    """Seeded bug: ``finite_max`` returning the minimum."""
    assert finite_max(np.array([np.nan, 3.0, -5.0, np.inf, 1.0])) == 3.0
    assert math.isnan(finite_max(np.array([np.nan, np.inf])))


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


# ---------------------------------------------------------------------------------------------
# second round of seeded bugs
# ---------------------------------------------------------------------------------------------
def test_moons_odd_count_both_arcs_span_zero_to_pi():
    """Seeded bug: the inner arc spaced for ``n0`` points and truncated to ``n1`` (stops short of pi)."""
    X, y = make_moons(11, noise=0.0, seed=0)
    inner = X[y == 1]
    assert inner.shape == (5, 2)
    np.testing.assert_allclose(inner[0], [0.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(inner[-1], [2.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(X[y == 0][-1], [-1.0, 0.0], atol=1e-12)


def test_one_hot_dtype_and_boolean_labels():
    """Seeded bugs: ``dtype`` ignored; boolean labels rejected."""
    Y = one_hot(np.array([2, 0]), 3, dtype=np.float32)
    assert Y.dtype == np.float32 and Y.tolist() == [[0, 0, 1], [1, 0, 0]]
    assert one_hot(np.array([True, False])).tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_split_draws_from_the_callers_generator():
    """Seeded bug: ``rng=`` ignored by train_test_split (an unseeded Generator used instead)."""
    X = np.arange(30.0)[:, None]
    y = np.arange(30)
    a = train_test_split(X, y, rng=np.random.default_rng(5))
    b = train_test_split(X, y, rng=np.random.default_rng(5))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert np.array_equal(a[3], train_test_split(X, y, seed=5)[3])


def test_stratify_by_label_column_and_shuffled_test_part():
    """Seeded bugs: an (n, 1) label column read as one-hot (one class); test part left sorted by class."""
    y = np.repeat([0, 1, 2], [30, 20, 10])
    X = np.arange(60.0)[:, None]
    for seed in range(3):
        _, _, ytr, yte = train_test_split(X, y[:, None], test_size=0.3, seed=seed, stratify=True)
        assert np.bincount(yte[:, 0]).tolist() == [9, 6, 3]
        assert np.bincount(ytr[:, 0]).tolist() == [21, 14, 7]
        assert np.any(np.diff(yte[:, 0]) < 0)  # not ordered by class
        assert np.any(np.diff(ytr[:, 0]) < 0)


def test_loader_accepts_a_tensor_dataset_style_pair():
    """Seeded bug: ``DataLoader((X, y))`` not unpacked into inputs and targets."""
    X = np.arange(12.0).reshape(6, 2)
    y = np.arange(6)
    batches = list(DataLoader((X, y), batch_size=4, shuffle=False))
    assert len(batches) == 2
    xb, yb = batches[0]
    assert np.array_equal(xb, X[:4]) and np.array_equal(yb, y[:4])


def test_metrics_are_nan_in_the_epoch_that_diverged():
    """Seeded bug: the diverged epoch's metric averaged over its finite batches as if nothing happened."""
    X, y = make_quadratic(20, seed=0)
    model = NeuralNetwork([Dense(2, 5, seed=0), Sigmoid(), Dense(5, 1, seed=1)])
    h = fit(model, MSELoss(reduction="half"), SGD(model.params(), lr=50.0), DataLoader(X, y, batch_size=4, seed=0),
            epochs=100, progress=False, metrics=("mae",))
    assert h.diverged and 1 < len(h.epochs) < 100
    assert math.isnan(h.metrics["mae"][-1]) and not math.isfinite(h.loss[-1])
    assert all(math.isfinite(v) for v in h.metrics["mae"][:-1])


class _DictModel:
    """Model stub holding its parameters and gradients in the dicts ``self.p`` and ``self.g``."""

    p: dict
    g: dict

    def params(self):
        return self.p

    def grads(self):
        return self.g


class _BufferModel(_DictModel):
    """Seed 001 style model: gradients written in place into persistent buffers (``self.dW[...] = ...``)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.p = {"W_0": rng.standard_normal((2, 3))}
        self.g = {"W_0": np.zeros((2, 3))}

    def forward(self, X, training=True):
        self.X = X
        return X @ self.p["W_0"]

    def backward(self, grad):
        self.g["W_0"][...] = self.X.T @ grad
        return None


class _ConsumingOptimizer:
    """Records the gradients it receives, then clears them in place (as a grad-consuming optimizer may)."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def step(self, grads):
        self.seen.append(grads["W_0"].copy())
        for g in grads.values():
            g[...] = 0.0


def test_zero_grad_false_running_sum_is_private():
    """Seeded bugs: the running sum aliasing the model's gradient buffers, or handed to the optimizer itself."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 2))
    y = rng.standard_normal((6, 3))
    model = _BufferModel()
    opt = _ConsumingOptimizer()
    fit(model, MSELoss(), opt, DataLoader(X, y, batch_size=2, shuffle=False), epochs=1, progress=False,
        metrics=None, zero_grad=False)
    # the weights never change (the optimizer does not update them): reference sums by hand
    W = model.p["W_0"]
    loss = MSELoss()
    running = np.zeros_like(W)
    for i, seen in enumerate(opt.seen):
        xb, yb = X[2 * i:2 * i + 2], y[2 * i:2 * i + 2]
        running = running + xb.T @ loss.backward(xb @ W, yb)
        np.testing.assert_allclose(seen, running, rtol=1e-12, atol=1e-15)
    assert len(opt.seen) == 3


def test_history_to_dict_keeps_every_field():
    """Seeded bug: ``to_dict`` forgetting a field (``diverged_step``)."""
    h = History(loss=[1.0, float("nan")], epochs=[1, 2], n_steps=7, diverged=True, diverged_epoch=2,
                diverged_step=8)
    d = h.to_dict()
    assert {"loss", "metrics", "val_loss", "val_metrics", "grad_norms", "grad_norms_by_layer", "epochs", "n_steps",
            "diverged", "diverged_epoch", "diverged_step", "stopped_early"} <= set(d)
    assert (d["n_steps"], d["diverged"], d["diverged_epoch"], d["diverged_step"]) == (7, True, 2, 8)


def test_epoch_end_logs_include_validation_results():
    """Seeded bug: ``val_loss`` missing from the logs passed to a progress callable's ``epoch_end``."""
    X, y = make_blobs(20, seed=0)
    model = _mlp(6)
    logs_seen: list[dict] = []

    class Progress:
        def __call__(self, *args):
            pass

        def epoch_end(self, epoch, n_epochs, logs):
            logs_seen.append(dict(logs))

    h = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.1), DataLoader(X, y, batch_size=10, seed=0),
            epochs=2, progress=Progress(), validation_data=(X, y))
    assert len(logs_seen) == 2
    for e, logs in enumerate(logs_seen):
        assert logs["loss"] == h.loss[e] and logs["val_loss"] == h.val_loss[e]
        assert logs["accuracy"] == h.metrics["accuracy"][e] and logs["val_accuracy"] == h.val_metrics["accuracy"][e]


def test_regression_metrics_refuse_mismatched_first_axes():
    """Seeded bug: any two arrays of the same size paired up (``(2, 3)`` against ``(3, 2)``)."""
    with pytest.raises(ValueError, match="same shape"):
        mean_squared_error(np.zeros((2, 3)), np.zeros((3, 2)))
    assert mean_squared_error(np.array([[1.0], [3.0]]), np.array([0.0, 1.0])) == pytest.approx(2.5)


def test_half_bad_column_is_named_and_partial_factor_only_when_consistent():
    """Seeded bugs: a column with exactly half its entries wrong not named (``> 0.5``); a factor reported
    for scattered wrong entries that share none; ``batch_size`` missing from a scale diagnosis."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 1.5, size=(4, 4))
    g = np.cos(x)
    g[0, 2] += 3.0
    g[1, 2] -= 2.0
    rep = check_gradients(np.sin, g, x, np.ones((4, 4)))
    assert rep.diagnosis.kind == "partial" and rep.diagnosis.details.get("columns") == [2]

    v = rng.uniform(0.5, 1.5, 12)
    g = np.cos(v)
    g[[1, 4, 7]] += np.array([5.0, -3.0, 7.0])
    d = check_gradients(np.sin, g, v, np.ones(12)).diagnosis
    assert d.kind == "partial" and "factor" not in d.details
    g = np.cos(v)
    g[[1, 4, 7]] *= 3.0
    d = check_gradients(np.sin, g, v, np.ones(12)).diagnosis
    assert d.kind == "partial" and d.details["factor"] == pytest.approx(3.0, rel=1e-6)

    xs = np.linspace(-1, 1, 8)
    d = check_gradients(np.sin, np.cos(xs) * 8, xs, np.ones(8), batch_size=8).diagnosis
    assert d.kind == "scale" and d.details["batch_size"] == 8 and d.details["factor_name"] == "N=8"


def test_tiny_consistent_factor_is_not_called_a_scale():
    """Seeded bug: a failing factor within 0.1% of 1 reported as a 'scale' mistake."""
    x = np.linspace(0.5, 1.5, 6)
    d = check_gradients(np.sin, np.cos(x) * 1.0005, x, np.ones(6)).diagnosis
    assert not d.passed and d.kind == "mismatch"


def test_report_accessors():
    """Seeded bugs: GradientReport.failures / ModelReport.raise_if_failed inverted; abs and rel columns
    swapped in the table row; the worst entry carrying another entry's tolerance."""
    x = np.linspace(-1, 1, 6)
    good = check_gradients(np.sin, np.cos(x), x, np.ones(6), name="good")
    bad = check_gradients(np.sin, -np.cos(x), x, np.ones(6), name="bad")
    assert good.failures == {} and bad.failures == {"bad": bad}
    row = bad.row()
    assert row[2] == f"{bad.max_abs_error:.2e}" and row[3] == f"{bad.max_rel_error:.2e}"
    w = bad.worst
    assert w.tolerance == bad.tolerance[w.index]
    assert bad.tolerance[0] != bad.tolerance[w.index] or w.index == (0,)

    rng = np.random.default_rng(4)
    W = rng.standard_normal(3)

    def loss():
        return float(np.sum(np.sin(W)))

    ok = check_params(loss, {"W": W}, {"W": np.cos(W)})
    assert ok.raise_if_failed() is ok
    wrong = check_params(loss, {"W": W}, {"W": 2 * np.cos(W)})
    with pytest.raises(GradientCheckError):
        wrong.raise_if_failed()


def test_layers_report_counts_all_evaluations_and_fast_path_counts_every_loss():
    """Seeded bugs: LayersReport.n_evals as the largest layer's count; the model fast path counting one
    evaluation per entry instead of one per loss value."""
    X, y = make_blobs(6, seed=0)
    net = NeuralNetwork([Dense(2, 4, seed=0), Tanh(), Dense(4, 3, seed=1)])
    layers = check_layers(net, X)
    assert layers.passed and len(layers) == 3
    assert layers.n_evals == sum(r.n_evals for _, _, r in layers)
    loss = CrossEntropyLoss()
    via_model = gradient_check(net, X, y, loss)
    net.backward(loss.backward(net.forward(X), y))
    grads = {k: v.copy() for k, v in net.grads().items()}
    via_params = check_params(lambda: loss.forward(net.forward(X), y), net.params(), grads)
    assert via_model.passed and via_params.passed
    for k in ("W_0", "b_0", "W_2", "b_2"):
        assert via_model[k].n_evals == via_params[k].n_evals >= 2 * net.params()[k].size


def test_float32_gradient_round_off_is_judged_against_the_largest_entry():
    """A small float32 entry computed with cancellation against a large one is round-off, not an error
    (the analytic tolerance ``C * eps * (|n_i| + ||n||_inf)``). Dropping ``||n||_inf`` from the first-stage
    tolerance is masked by the later stages (it only costs evaluations); this pins the verdict."""
    x = np.array([0.3, 0.7])
    c = np.array([1000.0, 1e-3])
    g32 = np.array([1000.0, (np.float32(1000.0) + np.float32(1e-3)) - np.float32(1000.0)], dtype=np.float32)
    assert abs(float(g32[1]) - 1e-3) > 1e-5  # a float32 round-off of the size eps32 * 1000
    rep = check_gradients(lambda v: v * c, g32, x, np.ones(2))
    assert rep.passed and rep.diagnosis.kind == "precision"
    # the same error in a float64 gradient is a real error
    assert not check_gradients(lambda v: v * c, g32.astype(np.float64), x, np.ones(2)).passed


# ---------------------------------------------------------------------------------------------
# third round
# ---------------------------------------------------------------------------------------------
def test_blobs_reject_non_finite_centres():
    """Seeded bug: the finiteness check of ``centers`` dropped (NaN clouds returned silently)."""
    with pytest.raises(ValueError, match="finite"):
        make_blobs(10, centers=[[0.0, np.nan], [1.0, 1.0]], seed=0)
    with pytest.raises(ValueError, match="finite"):
        make_blobs(10, centers=[[np.inf, 0.0]], seed=0)


class _Float32Model(_DictModel):
    """One float32 parameter whose gradient is huge (its squares overflow float32)."""

    def __init__(self) -> None:
        self.p = {"W_0": np.ones((2, 2), dtype=np.float32)}
        self.g = {"W_0": np.full((2, 2), 3e20, dtype=np.float32)}

    def forward(self, X, training=True):
        return np.asarray(X, dtype=np.float32) @ self.p["W_0"]

    def backward(self, grad):
        return None


class _NoOpOptimizer:
    def step(self, grads):
        pass


def test_grad_norms_are_accumulated_in_float64():
    """Seeded bug: the gradient norm computed in the gradient's float32 (``(3e20)**2`` overflows to inf)."""
    X = np.zeros((4, 2))
    y = np.zeros((4, 2))
    h = fit(_Float32Model(), MSELoss(), _NoOpOptimizer(), DataLoader(X, y, batch_size=4, shuffle=False), epochs=1,
            progress=False, metrics=None, record_grad_norms=True)
    assert h.grad_norms["W_0"][0] == pytest.approx(2 * float(np.float32(3e20)), rel=1e-12)
    assert h.grad_norms_by_layer()[0][0] == pytest.approx(2 * float(np.float32(3e20)), rel=1e-12)


def test_diagnosis_to_dict_is_plain_json():
    """Seeded bug: ``Diagnosis.to_dict`` leaving NumPy scalars / tuples / NaN in ``details``."""
    d = Diagnosis("scale", "m", {"factor": np.float64(2.0), "entries": [(1, 2)], "n": np.int64(3),
                                 "x": float("nan")})
    out = d.to_dict()
    assert out == {"kind": "scale", "message": "m", "details": {"factor": 2.0, "entries": [[1, 2]], "n": 3,
                                                                "x": None}}
    assert type(out["details"]["factor"]) is float and type(out["details"]["n"]) is int
    json.dumps(out, allow_nan=False)


def test_passing_kink_report_explains_itself_in_text():
    """Seeded bug: the detail line of a passing ``kink`` verdict dropped from ``str(report)``."""
    x = np.array([-1.0, 0.0, 0.5, 2.0])
    rep = check_gradients(lambda v: np.maximum(v, 0.0), (x > 0).astype(float), x, np.ones(4), name="relu")
    assert rep.passed and rep.diagnosis.kind == "kink" and rep.kinks == [(1,)]
    assert "relu: kink:" in str(rep)
