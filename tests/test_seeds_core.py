"""The seed notebooks' training exercises, end to end with verigrad.nn + verigrad.data + verigrad.train.

* Seed 004 (MLPy session 3): a 2-16-2 ReLU MLP trained with SGD (lr 0.1, batch 32, 30 epochs) on two
  Gaussian clouds of 400 points; its exercises: learning-rate pathology and forgetting zero_grad().
* Seed 001: the 2-5-1 sigmoid regression network with L = 1/N sum 1/2 (y - y_hat)^2 on
  y = x1^2 + x2^2, x ~ U(-1, 1)^2.
* Seed 003: watch the gradient norms layer by layer (vanishing / exploding).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from verigrad.data import DataLoader, make_blobs, make_quadratic
from verigrad.nn import Adam, CrossEntropyLoss, Dense, MSELoss, NeuralNetwork, ReLU, SGD, Sigmoid
from verigrad.train import evaluate, fit, predict


def seed004_run(seed: int = 0, lr: float = 0.1, zero_grad: bool = True, epochs: int = 30, **kw):
    X, y = make_blobs(400, seed=seed)
    model = NeuralNetwork([Dense(2, 16, seed=seed + 1), ReLU(), Dense(16, 2, seed=seed + 2)])
    loss = CrossEntropyLoss()
    hist = fit(model, loss, SGD(model.params(), lr=lr), DataLoader(X, y, batch_size=32, seed=seed + 3),
               epochs=epochs, progress=False, zero_grad=zero_grad, **kw)
    return model, hist, X, y


@pytest.mark.parametrize("seed", [0, 1])
def test_seed004_two_clouds_reach_95_percent(seed):
    model, hist, X, y = seed004_run(seed)
    assert len(hist.loss) == 30 and not hist.diverged
    assert hist.metrics["accuracy"][-1] >= 0.95
    assert evaluate(model, CrossEntropyLoss(), X, y)["accuracy"] >= 0.95
    # accuracy recomputed by hand from the trained network's outputs
    assert np.mean(np.argmax(predict(model, X), axis=1) == y) >= 0.95
    assert hist.loss[-1] < 0.5 * hist.loss[0]


def test_seed004_is_deterministic_for_a_fixed_seed():
    m1, h1, _, _ = seed004_run(0)
    m2, h2, _, _ = seed004_run(0)
    assert h1.loss == h2.loss
    assert h1.metrics == h2.metrics
    for k, v in m1.params().items():
        assert np.array_equal(v, m2.params()[k])
    _, h3, _, _ = seed004_run(5)
    assert h3.loss != h1.loss


def test_seed004_exercise_forgetting_zero_grad_changes_training():
    # exercise 4: without zero_grad() the update uses the sum of every gradient so far
    _, ok, _, _ = seed004_run(0, record_grad_norms=True)
    _, acc, _, _ = seed004_run(0, zero_grad=False, record_grad_norms=True)
    assert acc.loss != ok.loss
    # the accumulated "gradient" does not shrink as training converges, the true one does
    assert ok.grad_norms["W_0"][-1] < 0.5 * ok.grad_norms["W_0"][0]
    assert acc.grad_norms["W_0"][-1] > 2.0 * ok.grad_norms["W_0"][-1]


def test_seed004_exercise_learning_rate_pathology_does_not_crash():
    # exercise 3: lr = 1.0 and much larger must train or report divergence, never raise
    for lr in (1.0, 100.0):
        _, hist, _, _ = seed004_run(0, lr=lr, epochs=10)
        if hist.diverged:
            assert not math.isfinite(hist.loss[-1]) and hist.diverged_epoch == len(hist.loss)
        else:
            assert all(math.isfinite(v) for v in hist.loss) and len(hist.loss) == 10
    # lr = 0.001 learns slowly: far from the lr = 0.1 loss after the same epochs
    _, slow, _, _ = seed004_run(0, lr=0.001, epochs=10)
    _, normal, _, _ = seed004_run(0, lr=0.1, epochs=10)
    assert slow.loss[-1] > 2.0 * normal.loss[-1]


def seed001_model(seed: int = 0) -> NeuralNetwork:
    return NeuralNetwork([Dense(2, 5, seed=seed), Sigmoid(), Dense(5, 1, seed=seed + 1)])


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adam"])
def test_seed001_sigmoid_regression_loss_falls_tenfold(optimizer):
    X, y = make_quadratic(20, seed=0)
    model = seed001_model(0)
    loss = MSELoss(reduction="half")
    opt = (SGD(model.params(), lr=0.5, momentum=0.9) if optimizer == "sgd_momentum"
           else Adam(model.params(), lr=0.05))
    initial = loss.forward(predict(model, X), y)
    hist = fit(model, loss, opt, DataLoader(X, y, batch_size=20, seed=0), epochs=500, progress=False)
    assert hist.metrics == {}  # regression: no accuracy
    assert not hist.diverged
    # full-batch: the first epoch's loss is the loss at the initial parameters
    assert hist.loss[0] == pytest.approx(initial, rel=1e-12)
    final = loss.forward(predict(model, X), y)
    assert final <= initial / 10.0
    # the seed's formula, written out: 1/N sum 1/2 (y_hat - y)^2
    y_hat = predict(model, X)
    assert final == pytest.approx(float(np.sum(0.5 * (y_hat - y) ** 2) / len(y)), rel=1e-12)


def test_seed001_divergence_with_a_huge_learning_rate():
    X, y = make_quadratic(20, seed=42)
    model = seed001_model(0)
    hist = fit(model, MSELoss(reduction="half"), SGD(model.params(), lr=50.0),
               DataLoader(X, y, batch_size=4, seed=0), epochs=200, progress=False)
    assert hist.diverged and hist.diverged_epoch is not None and hist.diverged_epoch < 200
    assert not math.isfinite(hist.loss[-1])


def test_seed003_layer_norms_show_vanishing_gradients_in_a_deep_sigmoid_net():
    # seed 003: sigmoid derivatives <= 1/4 shrink the gradient towards the input layers
    X, y = make_blobs(128, seed=0)
    layers = []
    for i in range(6):
        layers += [Dense(2 if i == 0 else 16, 16, seed=i, init="xavier"), Sigmoid()]
    layers.append(Dense(16, 2, seed=99))
    model = NeuralNetwork(layers)
    hist = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.01), DataLoader(X, y, batch_size=32, seed=0),
               epochs=2, progress=False, record_grad_norms=True)
    by_layer = hist.grad_norms_by_layer()
    dense_idx = sorted(k for k in by_layer if isinstance(k, int))
    assert dense_idx == [0, 2, 4, 6, 8, 10, 12]
    first_epoch = [by_layer[i][0] for i in dense_idx]
    assert first_epoch[0] < first_epoch[-1] / 100.0
    # deeper (closer to the input) layers get smaller gradients through the hidden stack
    assert all(a < b for a, b in zip(first_epoch[:-1], first_epoch[1:]))
