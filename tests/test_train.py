"""Tests for verigrad.train: fit / History / evaluate / predict / accuracy / metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from verigrad.data import DataLoader, make_blobs, make_quadratic, one_hot
from verigrad.nn import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dense,
    MSELoss,
    NeuralNetwork,
    SGD,
    Sigmoid,
    Tanh,
)
from verigrad.train import (
    METRICS,
    History,
    accuracy,
    evaluate,
    fit,
    get_metric,
    mean_absolute_error,
    mean_squared_error,
    predict,
    predict_classes,
)


def mlp(seed: int = 0, dtype=np.float64) -> NeuralNetwork:
    return NeuralNetwork([Dense(2, 8, seed=seed, dtype=dtype), Tanh(), Dense(8, 3, seed=seed + 1, dtype=dtype)])


# ---------------------------------------------------------------------------------------------
# accuracy and metrics
# ---------------------------------------------------------------------------------------------
labels_and_scores = st.integers(1, 30).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.int64, n, elements=st.integers(0, 3)),
        hnp.arrays(np.float64, (n, 4), elements=st.floats(-5, 5), unique=False),
    )
)


@given(labels_and_scores)
def test_accuracy_scores_labels_and_one_hot_agree(data):
    y, scores = data
    # reference: count by hand the rows whose largest score is at the true label
    # (ties resolved like argmax: first maximum)
    expected = sum(int(list(row).index(max(row)) == t) for row, t in zip(scores.tolist(), y.tolist())) / len(y)
    assert accuracy(scores, y) == pytest.approx(expected, abs=1e-15)
    assert accuracy(scores, one_hot(y, 4)) == accuracy(scores, y)
    assert accuracy(scores, y.reshape(-1, 1).astype(float)) == accuracy(scores, y)
    assert accuracy(one_hot(y, 4), y) == 1.0
    assert accuracy(y, y) == 1.0  # predicted labels


def test_accuracy_probability_column_and_vector():
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.1, 0.9, 0.4, 0.6, 0.51])  # correct: 0, 1, 4 -> 3 / 5
    assert accuracy(p, y) == pytest.approx(0.6)
    assert accuracy(p.reshape(-1, 1), y.reshape(-1, 1).astype(float)) == pytest.approx(0.6)
    # exactly 0 and 1 probabilities
    assert accuracy(np.array([0.0, 1.0]), np.array([0, 1])) == 1.0


def test_accuracy_logits_need_threshold():
    y = np.array([0, 1, 1])
    z = np.array([[-2.3], [0.7], [3.1]])
    with pytest.raises(ValueError, match="threshold=0.0"):
        accuracy(z, y)
    assert accuracy(z, y, threshold=0.0) == 1.0


def test_accuracy_float_labels_outside_unit_interval():
    assert accuracy(np.array([0.0, 2.0, 1.0]), np.array([0, 2, 2])) == pytest.approx(2 / 3)


def test_accuracy_errors():
    with pytest.raises(ValueError, match="same number of samples"):
        accuracy(np.zeros((3, 2)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="regression"):
        accuracy(np.zeros((3, 2)), np.array([0.5, 1.0, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        accuracy(np.zeros((3, 2, 2)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="empty"):
        accuracy(np.zeros((0, 2)), np.zeros(0, dtype=int))


@given(hnp.arrays(np.float64, (6, 2), elements=st.floats(-100, 100)),
       hnp.arrays(np.float64, (6, 2), elements=st.floats(-100, 100)))
def test_mse_mae_formulas(p, t):
    diffs = [a - b for a, b in zip(p.ravel().tolist(), t.ravel().tolist())]
    assert mean_squared_error(p, t) == pytest.approx(sum(d * d for d in diffs) / 12, rel=1e-12, abs=1e-300)
    assert mean_absolute_error(p, t) == pytest.approx(sum(abs(d) for d in diffs) / 12, rel=1e-12, abs=1e-300)


def test_metrics_at_extremes_do_not_warn():
    big = np.array([[1e200], [-1e200]])
    assert mean_squared_error(big, np.zeros((2, 1))) == math.inf
    assert mean_absolute_error(np.array([1e308, -1e308]), np.array([-1e308, 1e308])) == math.inf
    assert accuracy(np.array([[np.inf, 0.0], [np.nan, 1.0]]), np.array([0, 1])) == 0.5  # argmax picks the NaN
    assert accuracy(np.array([1e-300, 1.0 - 1e-16]), np.array([0, 1])) == 1.0


def test_mse_accepts_flat_targets_and_rejects_mismatch():
    assert mean_squared_error(np.array([[1.0], [3.0]]), np.array([0.0, 1.0])) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="same shape"):
        mean_squared_error(np.zeros((2, 2)), np.zeros(3))


def test_metric_table():
    assert set(METRICS) == {"accuracy", "mse", "mae"}
    assert get_metric("mae") == ("mae", mean_absolute_error)
    with pytest.raises(ValueError, match=r"\['accuracy', 'mae', 'mse'\]"):
        get_metric("f1")

    def my_metric(p, y):
        return 0.0

    assert get_metric(my_metric) == ("my_metric", my_metric)


# ---------------------------------------------------------------------------------------------
# fit: bookkeeping against protocol stand-ins
# ---------------------------------------------------------------------------------------------
class ConstModel:
    """Network-protocol stand-in: output is the input's first column; one parameter never used."""

    def __init__(self):
        self.p = {"w_0": np.zeros(1)}
        self.g = {"w_0": np.zeros(1)}

    def forward(self, X, training=True):
        return np.asarray(X, dtype=float)[:, :1]

    def backward(self, d):
        self.g["w_0"] = np.array([float(np.sum(d))])
        return d

    def params(self):
        return self.p

    def grads(self):
        return self.g


class BatchSizeLoss:
    """Loss whose value is the batch size: exposes how fit weights the batches."""

    def forward(self, pred, y):
        return float(len(pred))

    def backward(self, pred, y):
        return np.ones_like(pred)


class NoOpOptimizer:
    def __init__(self):
        self.calls = 0

    def step(self, grads):
        self.calls += 1


def test_fit_skips_input_gradient_when_the_model_allows_it():
    class Recorder(ConstModel):
        def __init__(self):
            super().__init__()
            self.flags = []

        def backward(self, d, *, input_grad=True):
            self.flags.append(input_grad)
            return super().backward(d) if input_grad else None

    model = Recorder()
    X = np.zeros((6, 1))
    fit(model, BatchSizeLoss(), NoOpOptimizer(), DataLoader(X, np.zeros(6), batch_size=3, seed=0), epochs=2,
        metrics=(), progress=False)
    assert model.flags == [False] * 4
    # a model without the keyword is called with the gradient only (ConstModel.backward(d))
    h = fit(ConstModel(), BatchSizeLoss(), NoOpOptimizer(), DataLoader(X, np.zeros(6), batch_size=3, seed=0),
            epochs=1, metrics=(), progress=False)
    assert h.n_steps == 2


def test_epoch_loss_is_batch_size_weighted_mean():
    X = np.zeros((10, 1))
    opt = NoOpOptimizer()
    h = fit(ConstModel(), BatchSizeLoss(), opt, DataLoader(X, np.zeros(10), batch_size=4, seed=0),
            epochs=3, metrics=(), progress=False)
    # batches of 4, 4, 2: (4*4 + 4*4 + 2*2) / 10
    assert h.loss == [pytest.approx(3.6)] * 3
    assert h.epochs == [1, 2, 3] and h.n_steps == 9 and opt.calls == 9
    assert not h.diverged and not h.stopped_early


def test_progress_callable_receives_every_batch():
    calls = []
    X, y = make_blobs(50, seed=0)
    model = mlp()
    h = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.1), DataLoader(X, y, batch_size=16, seed=0),
            epochs=2, progress=lambda *a: calls.append(a))
    assert [(c[0], c[1], c[2], c[3]) for c in calls] == [(e, 2, b, 4) for e in (1, 2) for b in (1, 2, 3, 4)]
    # the running loss after the last batch of an epoch is that epoch's loss
    assert calls[3][4] == pytest.approx(h.loss[0], rel=1e-12)
    assert calls[7][4] == pytest.approx(h.loss[1], rel=1e-12)


def test_progress_object_hooks_called():
    class Recorder:
        def __init__(self):
            self.batches, self.ends, self.closed = 0, [], False

        def __call__(self, *args):
            self.batches += 1

        def epoch_end(self, epoch, n_epochs, logs):
            self.ends.append((epoch, dict(logs)))

        def close(self):
            self.closed = True

    X, y = make_blobs(40, seed=0)
    model = mlp()
    rec = Recorder()
    h = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.1), DataLoader(X, y, batch_size=20, seed=0),
            epochs=3, progress=rec, validation_data=(X, y))
    assert rec.batches == 6 and rec.closed
    assert [e for e, _ in rec.ends] == [1, 2, 3]
    assert rec.ends[-1][1]["loss"] == h.loss[-1] and rec.ends[-1][1]["val_accuracy"] == h.val_metrics["accuracy"][-1]


def test_progress_true_plain_text(monkeypatch, capsys):
    import verigrad.display as display

    monkeypatch.setattr(display, "rich_available", lambda: False)
    X, y = make_blobs(40, seed=0)
    model = mlp()
    h = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.1), DataLoader(X, y, batch_size=20, seed=0),
            epochs=2, progress=True)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[1].startswith("epoch 2/2")
    assert f"loss {h.loss[1]:.4f}" in err[1]


def test_progress_true_rich(capsys):
    pytest.importorskip("rich")
    X, y = make_blobs(40, seed=0)
    model = mlp()
    h = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.1), DataLoader(X, y, batch_size=20, seed=0),
            epochs=2, progress=True)
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "4/4" in out and f"{h.metrics['accuracy'][-1]:.4f}" in out


def test_callbacks_stop_early():
    X, y = make_blobs(40, seed=0)
    model = mlp()
    seen = []

    def stop_at_3(epoch, history):
        seen.append((epoch, len(history.loss)))
        return epoch == 3

    h = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.1), DataLoader(X, y, seed=0), epochs=10,
            progress=False, callbacks=[stop_at_3])
    assert h.stopped_early and h.epochs == [1, 2, 3] and seen == [(1, 1), (2, 2), (3, 3)]


# ---------------------------------------------------------------------------------------------
# fit: numerics
# ---------------------------------------------------------------------------------------------
def _linear_reference(X, y, W, b, lr, epochs, batch, accumulate):
    """Hand-written SGD on a linear model with MSE(mean), optionally never zeroing the gradients."""
    W, b = W.copy(), b.copy()
    accW, accb = np.zeros_like(W), np.zeros_like(b)
    for _ in range(epochs):
        for s in range(0, len(X), batch):
            xb, yb = X[s:s + batch], y[s:s + batch]
            d = 2.0 * (xb @ W + b - yb) / yb.size
            gW, gb = xb.T @ d, d.sum(axis=0)
            if accumulate:
                accW, accb = accW + gW, accb + gb
                gW, gb = accW, accb
            W, b = W - lr * gW, b - lr * gb
    return W, b


@pytest.mark.parametrize("zero_grad", [True, False])
def test_zero_grad_false_accumulates_running_sum(zero_grad):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))
    y = rng.standard_normal((6, 2))
    model = NeuralNetwork([Dense(3, 2, seed=5)])
    W0, b0 = model.params()["W_0"].copy(), model.params()["b_0"].copy()
    h = fit(model, MSELoss(), SGD(model.params(), lr=0.05), DataLoader(X, y, batch_size=2, shuffle=False),
            epochs=3, metrics=(), progress=False, zero_grad=zero_grad)
    W, b = _linear_reference(X, y, W0, b0, 0.05, 3, 2, accumulate=not zero_grad)
    np.testing.assert_allclose(model.params()["W_0"], W, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.params()["b_0"], b, rtol=1e-12, atol=1e-14)
    other = _linear_reference(X, y, W0, b0, 0.05, 3, 2, accumulate=zero_grad)
    assert not np.allclose(model.params()["W_0"], other[0])
    assert h.n_steps == 9


def test_grad_norms_per_parameter_layer_and_epoch():
    X, y = make_blobs(64, seed=1)
    model = mlp(3)
    twin = mlp(3)
    loss = CrossEntropyLoss()
    # the first epoch's single full-batch step uses the gradient at the initial parameters
    twin.backward(loss.backward(twin.forward(X), y))
    expected = {k: float(np.linalg.norm(g)) for k, g in twin.grads().items()}
    h = fit(model, loss, SGD(model.params(), lr=0.1), DataLoader(X, y, batch_size=64, shuffle=False),
            epochs=4, progress=False, record_grad_norms=True)
    assert set(h.grad_norms) == {"W_0", "b_0", "W_2", "b_2"}
    assert all(len(v) == 4 for v in h.grad_norms.values())
    for k, v in expected.items():
        assert h.grad_norms[k][0] == pytest.approx(v, rel=1e-10)
    layers = h.grad_norms_by_layer()
    assert set(layers) == {0, 2} and all(len(v) == 4 for v in layers.values())
    assert layers[0][0] == pytest.approx(math.hypot(expected["W_0"], expected["b_0"]), rel=1e-10)
    for e in range(4):
        assert layers[2][e] >= max(h.grad_norms["W_2"][e], h.grad_norms["b_2"][e])


def test_grad_norms_by_layer_groups_seed001_style_names():
    class Seed001Model:
        """Seed 001's hand-written MLP: parameters W1, b1, W2, b2 (no underscore)."""

        def __init__(self):
            rng = np.random.default_rng(0)
            self.p = {"W1": rng.standard_normal((2, 5)), "b1": np.zeros(5),
                      "W2": rng.standard_normal((5, 1)), "b2": np.zeros(1), "scale": np.ones(1)}
            self.g = {k: np.ones_like(v) for k, v in self.p.items()}

        def forward(self, X, training=True):
            return X @ self.p["W1"] @ self.p["W2"]

        def backward(self, d):
            return None

        def params(self):
            return self.p

        def grads(self):
            return self.g

    X, y = make_quadratic(8, seed=0)
    h = fit(Seed001Model(), MSELoss(), NoOpOptimizer(), DataLoader(X, y, batch_size=8, shuffle=False), epochs=1,
            progress=False, record_grad_norms=True)
    layers = h.grad_norms_by_layer()
    assert set(layers) == {1, 2, "scale"}
    assert layers[1][0] == pytest.approx(math.sqrt(10 + 5)) and layers[2][0] == pytest.approx(math.sqrt(6))
    assert layers["scale"][0] == pytest.approx(1.0)


def test_grad_norms_not_recorded_by_default():
    X, y = make_blobs(32, seed=1)
    model = mlp()
    h = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.1), DataLoader(X, y, seed=0), epochs=1,
            progress=False)
    assert h.grad_norms == {} and h.grad_norms_by_layer() == {}


def test_divergence_sets_flag_without_raising():
    X, y = make_quadratic(20, seed=0)
    model = NeuralNetwork([Dense(2, 5, seed=0), Sigmoid(), Dense(5, 1, seed=1)])
    h = fit(model, MSELoss(reduction="half"), SGD(model.params(), lr=50.0), DataLoader(X, y, batch_size=4, seed=0),
            epochs=100, progress=False, record_grad_norms=True, validation_data=(X, y))
    assert h.diverged and "DIVERGED" in repr(h)
    assert h.diverged_epoch == h.epochs[-1] < 100
    assert not math.isfinite(h.loss[-1]) and all(math.isfinite(v) for v in h.loss[:-1])
    assert h.diverged_step == h.n_steps + 1
    assert not math.isfinite(h.val_loss[-1])
    # evaluate on the diverged model reports a non-finite loss instead of raising
    assert not math.isfinite(evaluate(model, MSELoss(reduction="half"), X, y)["loss"])


@pytest.mark.parametrize("epochs", [1, 2])
def test_divergence_flagged_when_params_blow_up(epochs):
    class InfOptimizer:
        def __init__(self, params):
            self.params = params
            self.n = 0

        def step(self, grads):
            self.n += 1
            if self.n == 2:
                self.params["W_0"][...] = np.inf

    X, y = make_blobs(20, seed=0)
    model = mlp()
    h = fit(model, CrossEntropyLoss(), InfOptimizer(model.params()), DataLoader(X, y, batch_size=10, seed=0),
            epochs=epochs, progress=False)
    # epochs=1: caught by the final parameter check; epochs=2: the loss rejects the NaN predictions of step 3
    assert h.diverged and h.diverged_epoch == epochs and h.diverged_step == epochs + 1
    assert h.n_steps == 2 and len(h.loss) == epochs


def test_validation_matches_evaluate_and_default_metric_rules():
    X, y = make_blobs(60, seed=2)
    model = mlp()
    loss = CrossEntropyLoss()
    h = fit(model, loss, SGD(model.params(), lr=0.1), DataLoader(X, y, batch_size=16, seed=0), epochs=3,
            progress=False, validation_data=(X[:20], y[:20]))
    res = evaluate(model, loss, X[:20], y[:20])
    assert set(res) == {"loss", "accuracy"}
    assert h.val_loss[-1] == pytest.approx(res["loss"], rel=1e-12)
    assert h.val_metrics["accuracy"][-1] == res["accuracy"]
    assert len(h.val_loss) == len(h.metrics["accuracy"]) == 3

    Xq, yq = make_quadratic(20, seed=0)
    reg = NeuralNetwork([Dense(2, 5, seed=0), Sigmoid(), Dense(5, 1, seed=1)])
    hq = fit(reg, MSELoss(), SGD(reg.params(), lr=0.1), DataLoader(Xq, yq, seed=0), epochs=2, progress=False)
    assert hq.metrics == {}  # default accuracy dropped for regression targets
    hq = fit(reg, MSELoss(), SGD(reg.params(), lr=0.1), DataLoader(Xq, yq, seed=0), epochs=2, progress=False,
             metrics=("mse", "mae"))
    assert set(hq.metrics) == {"mse", "mae"}
    assert hq.metrics["mse"][-1] == pytest.approx(hq.loss[-1], rel=1e-12)  # MSELoss(mean) is the mse
    assert set(evaluate(reg, MSELoss(), Xq, yq)) == {"loss"}
    with pytest.raises(ValueError, match="regression"):
        fit(reg, MSELoss(), SGD(reg.params(), lr=0.1), DataLoader(Xq, yq, seed=0), epochs=1, progress=False,
            metrics=("accuracy",))


def test_binary_logits_accuracy_uses_zero_threshold():
    X, y = make_blobs(200, seed=0)
    yf = y.reshape(-1, 1).astype(np.float64)
    model = NeuralNetwork([Dense(2, 1, seed=0)])
    h = fit(model, BCEWithLogitsLoss(), SGD(model.params(), lr=0.5), DataLoader(X, yf, batch_size=20, seed=0),
            epochs=10, progress=False)
    ref = np.mean((predict(model, X)[:, 0] > 0.0) == y)
    assert h.metrics["accuracy"][-1] > 0.9
    assert evaluate(model, BCEWithLogitsLoss(), X, yf)["accuracy"] == pytest.approx(ref)
    assert np.array_equal(predict_classes(model, X, threshold=0.0), (predict(model, X)[:, 0] > 0).astype(int))


def test_predict_batched_equals_full_and_evaluate_batched():
    X, y = make_blobs(50, seed=0)
    model = mlp()
    full = predict(model, X)
    np.testing.assert_allclose(predict(model, X, batch_size=7), full, rtol=1e-13, atol=1e-15)
    assert np.array_equal(predict_classes(model, X), full.argmax(axis=1))
    a = evaluate(model, CrossEntropyLoss(), X, y)
    b = evaluate(model, CrossEntropyLoss(), X, y, batch_size=7)
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-12) and b["accuracy"] == pytest.approx(a["accuracy"])
    with pytest.raises(ValueError, match="batch_size"):
        predict(model, X, batch_size=0)
    with pytest.raises(ValueError, match="same number of samples"):
        evaluate(model, CrossEntropyLoss(), X, y[:3])


def test_float32_training_keeps_dtype():
    X, y = make_blobs(64, seed=0)
    model = mlp(dtype=np.float32)
    h = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.1), DataLoader(X.astype(np.float32), y, seed=0),
            epochs=3, progress=False, record_grad_norms=True)
    assert all(p.dtype == np.float32 for p in model.params().values())
    assert h.loss[-1] < h.loss[0] and all(math.isfinite(v) for v in h.grad_norms["W_0"])


def test_to_dict_is_json_serialisable():
    X, y = make_blobs(32, seed=0)
    model = mlp()
    h = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.1), DataLoader(X, y, seed=0), epochs=2,
            progress=False, record_grad_norms=True)
    d = json.loads(json.dumps(h.to_dict()))
    assert d["loss"] == h.loss and d["grad_norms_by_layer"]["2"] == h.grad_norms_by_layer()[2]
    assert d["diverged"] is False and d["epochs"] == [1, 2]
    assert isinstance(h, History) and h.final_loss == h.loss[-1]
    text = repr(h)
    assert text.startswith("History(epochs=2") and f"{h.loss[-1]:.4g}" in text and "DIVERGED" not in text
    assert repr(History()) == "History(epochs=0)"


# ---------------------------------------------------------------------------------------------
# fit: bad input
# ---------------------------------------------------------------------------------------------
def test_fit_argument_errors():
    X, y = make_blobs(20, seed=0)
    model = mlp()
    opt = SGD(model.params(), lr=0.1)
    loss = CrossEntropyLoss()
    with pytest.raises(ValueError, match="epochs"):
        fit(model, loss, opt, DataLoader(X, y), epochs=0, progress=False)
    with pytest.raises(TypeError, match="DataLoader"):
        fit(model, loss, opt, (X, y), progress=False)
    with pytest.raises(TypeError, match=r"\(xb, yb\) pairs"):
        fit(model, loss, opt, DataLoader(X), progress=False)
    with pytest.raises(ValueError, match="valid metrics"):
        fit(model, loss, opt, DataLoader(X, y), metrics=("f1",), progress=False)
    with pytest.raises(TypeError, match="lacks backward"):
        fit(object.__new__(type("M", (), {"forward": lambda s, x: x, "params": dict, "grads": dict})),
            loss, opt, DataLoader(X, y), progress=False)
    with pytest.raises(TypeError, match="optimizer"):
        fit(model, loss, object(), DataLoader(X, y), progress=False)
    with pytest.raises(ValueError, match="no batches"):
        fit(model, loss, opt, [], progress=False)
    with pytest.raises(TypeError, match="progress"):
        fit(model, loss, opt, DataLoader(X, y), progress="yes")
    with pytest.raises(ValueError, match="only once"):
        fit(model, loss, opt, iter(list(DataLoader(X, y, seed=0))), epochs=2, progress=False)
    with pytest.raises(ValueError, match="validation_data"):
        fit(model, loss, opt, DataLoader(X, y), progress=False, validation_data=(X, y[:3]))


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("c", [2, 3, 7])
def test_accuracy_fast_path_equals_the_definition(label_dtype, c):
    """Scores (n, C) with integer labels (the case fit meets every batch) against a plain loop."""
    rng = np.random.default_rng(c)
    for n in (1, 5, 40):
        pred = rng.standard_normal((n, c))
        pred[0, :] = 0.0  # a tie: argmax takes the first class
        y = rng.integers(0, c, n).astype(label_dtype)
        expected = sum(int(np.argmax(pred[i]) == y[i]) for i in range(n)) / n
        assert accuracy(pred, y) == expected
        assert accuracy(pred.astype(np.float32), y) == expected
    bad = y.astype(np.int64)
    bad[-1] = c
    with pytest.raises(ValueError, match=rf"label {c} but pred has {c} columns"):
        accuracy(pred, bad)
    bad[-1] = -1
    with pytest.raises(ValueError, match=rf"label -1 but pred has {c} columns"):
        accuracy(pred, bad)
