"""``verigrad.check.testing.assert_gradients`` in the forms third-party code takes."""

from __future__ import annotations

import numpy as np
import pytest

from verigrad.check import GradientCheckError
from verigrad.check.testing import assert_gradients


class Net:
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.W1 = rng.standard_normal((3, 2))
        self.X = rng.standard_normal((5, 3))

    def loss(self):
        self.out = np.tanh(self.X @ self.W1)
        return float(np.sum(self.out ** 2))

    def backward(self, factor=1.0):
        out = np.tanh(self.X @ self.W1)
        self.dW1 = factor * self.X.T @ (2 * out * (1 - out ** 2))


class Layer:
    def __init__(self):
        self.parameters = {"W": np.random.default_rng(1).standard_normal((3, 2))}
        self.gradients = {"W": np.zeros((3, 2))}

    def forward(self, X):
        self.X = X
        return X @ self.parameters["W"]

    def backward(self, d):
        self.gradients["W"] += self.X.T @ d
        return d @ self.parameters["W"].T


def test_function_form_with_tuple_output():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    assert assert_gradients(lambda v: (np.sin(v), "cache"), np.cos(x), x, np.ones((2, 3))).passed


def test_object_list_and_dict_forms():
    net = Net()
    net.backward()
    assert assert_gradients(net.loss, net, net).passed
    assert assert_gradients(net.loss, [net.W1], [net.dW1]).passed
    assert assert_gradients(net.loss, {"W1": net.W1}, {"dW1": net.dW1}).passed
    net.backward(factor=2.0)
    with pytest.raises(GradientCheckError) as err:
        assert_gradients(net.loss, net, net)
    assert err.value.report.diagnosis.kind == "scale" and "W1" in str(err.value)


def test_model_form_with_parameters_dicts_and_a_loss_function():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    rep = assert_gradients(Layer(), X, y, lambda p, t: (0.5 * np.sum((p - t) ** 2), p - t))
    assert set(rep) == {"W", "input"}
