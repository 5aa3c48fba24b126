"""Every entry point passes the claimed gradient at nearby points to the multi-kink test (Context.regrad).

Where several ReLU units sit on their kinks at once, backprop's ``relu'(0) = 0`` may lie outside the
one-sided hull of an entry; the entry passes as a kink when the gradient code, re-run at nearby points,
is right there. A wrong gradient (scale 2, sign flip) still fails.
"""

from __future__ import annotations

import numpy as np
import pytest

from verigrad import nn
from verigrad.check import check_gradients, check_layers, check_params


def _multi(rep) -> bool:
    return any("multi-kink" in note for note in rep.notes)


class Scaled:
    """A layer whose input gradient is ``factor`` times the wrapped layer's."""

    def __init__(self, inner, factor: float) -> None:
        self.inner, self.factor = inner, factor
        self.params, self.grads = inner.params, inner.grads

    def forward(self, x, training=True):
        return self.inner.forward(x, training=training)

    def backward(self, dy):
        return self.factor * self.inner.backward(dy)


def _dense_relu_rows_at_zero():
    X = np.random.default_rng(0).standard_normal((12, 3))
    X[:3] = 0.0  # zero biases: every unit of these rows sits on its kink
    return X, nn.Dense(3, 6, activation="relu", seed=1), nn.Dense(6, 2, seed=2)


def test_check_layers_verifies_a_multikink_nearby():
    X, first, second = _dense_relu_rows_at_zero()
    rep = check_layers(nn.NeuralNetwork([first, second]), X, seed=0)
    assert rep.passed, str(rep)
    layer0 = rep.layers[0][2]
    assert _multi(layer0["input"]), layer0["input"].notes


@pytest.mark.parametrize("factor", [2.0, -1.0])
def test_check_layers_wrong_input_gradient_at_a_multikink_fails(factor):
    X, first, second = _dense_relu_rows_at_zero()
    rep = check_layers([Scaled(first, factor), second], X, seed=0)
    assert rep.first_faulty == 0, str(rep)
    assert not rep.layers[0][2]["input"].passed


def _mlp_at_zero(seed: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, 3))
    X[:2] = 0.0
    W1, b1, W2 = rng.standard_normal((3, 5)), np.zeros(5), rng.standard_normal((5, 1))
    return X, W1, b1, W2


def _mlp_grad_x(X, W1, b1, W2, factor=1.0):
    Z = X @ W1 + b1
    return factor * ((Z > 0) * W2.T) @ W1.T


def test_check_gradients_callable_grad_verifies_a_multikink_nearby():
    X, W1, b1, W2 = _mlp_at_zero()

    def f(x):
        return float(np.sum(np.maximum(x @ W1 + b1, 0.0) @ W2))

    rep = check_gradients(f, lambda x: _mlp_grad_x(x, W1, b1, W2), X, probe=False)
    assert rep.passed, str(rep)
    assert _multi(rep), rep.notes
    for factor in (2.0, -1.0):
        bad = check_gradients(f, lambda x, c=factor: _mlp_grad_x(x, W1, b1, W2, c), X, probe=False)
        assert not bad.passed, str(bad)


def test_check_gradients_fixed_array_grad_cannot_be_verified_nearby():
    # no callable: the gradient at nearby points is unknown, the multi-kink entry fails
    X, W1, b1, W2 = _mlp_at_zero()
    rep = check_gradients(lambda x: float(np.sum(np.maximum(x @ W1 + b1, 0.0) @ W2)),
                          _mlp_grad_x(X, W1, b1, W2), X)
    assert not rep.passed


@pytest.mark.parametrize("form", ["tuple", "callable"])
def test_check_params_verifies_a_multikink_nearby(form):
    X0, W1, b1, W2 = _mlp_at_zero()
    P = {"X": X0.copy()}
    snap = P["X"].copy()

    def grads(factor=1.0):
        return {"X": _mlp_grad_x(P["X"], W1, b1, W2, factor)}

    def value():
        return float(np.sum(np.maximum(P["X"] @ W1 + b1, 0.0) @ W2))

    for factor, ok in ((1.0, True), (2.0, False), (-1.0, False)):
        if form == "tuple":
            rep = check_params(lambda c=factor: (value(), grads(c)), P, grads(factor))
        else:
            rep = check_params(value, P, lambda c=factor: grads(c))
        assert rep.passed == ok, (factor, str(rep))
        if ok:
            assert _multi(rep["X"]), rep["X"].notes
        assert P["X"].tobytes() == snap.tobytes()
