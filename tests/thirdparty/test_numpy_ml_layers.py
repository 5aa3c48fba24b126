"""Third-party style: numpy-ml-like layer objects.

Each layer keeps ``self.parameters`` and ``self.gradients`` dicts (not ``params()``/``grads()`` methods),
``forward(X)`` caches its input, ``backward(dLdy)`` *accumulates* into ``self.gradients`` (``+=``) and
returns ``dL/dX``; the loss is a pair of static functions ``loss(y, y_pred)``/``grad(y, y_pred)``. Natural
checks: ``gradient_check(layer, X, y, lambda pred, y: (loss(y, pred), grad(y, pred)))`` for one layer,
``check_layers(model, X)`` for a stack.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

from verigrad.check import check_layers, gradient_check


class FullyConnected:
    def __init__(self, n_in: int, n_out: int, seed: int = 0, bug: Optional[str] = None,
                 dtype: type = np.float64) -> None:
        rng = np.random.default_rng(seed)
        self.parameters = {"W": (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype),
                           "b": (0.1 * rng.standard_normal((1, n_out))).astype(dtype)}
        self.gradients = {k: np.zeros_like(v) for k, v in self.parameters.items()}
        self.X: list[np.ndarray] = []
        self.bug = bug

    def forward(self, X: np.ndarray, retain_derived: bool = True) -> np.ndarray:
        Z = X @ self.parameters["W"] + self.parameters["b"]
        if retain_derived:
            self.X = [X]
        return np.tanh(Z)

    def backward(self, dLdy: np.ndarray, retain_grads: bool = True) -> np.ndarray:
        X = self.X[-1]
        W, b = self.parameters["W"], self.parameters["b"]
        Z = X @ W + b
        if self.bug == "act_grad_of_z":
            dZ = dLdy * (1 - Z ** 2)
        else:
            dZ = dLdy * (1 - np.tanh(Z) ** 2)
        dX = dZ @ W.T
        dW = X.T @ dZ
        dB = dZ.sum(axis=0, keepdims=True)
        if self.bug == "dW_transposed":
            dW = dZ.T @ X
        if self.bug == "dB_mean":
            dB = dZ.mean(axis=0, keepdims=True)
        if retain_grads:
            if self.bug == "dW_transposed":
                self.gradients["W"] = dW
            else:
                self.gradients["W"] += dW
            self.gradients["b"] += dB
        return dX

    def flush_gradients(self) -> None:
        for v in self.gradients.values():
            v[...] = 0


class SquaredError:
    @staticmethod
    def loss(y: np.ndarray, y_pred: np.ndarray) -> float:
        return 0.5 * np.linalg.norm(y_pred - y) ** 2

    @staticmethod
    def grad(y: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return y_pred - y


def sq_loss(pred, y):
    return SquaredError.loss(y, pred), SquaredError.grad(y, pred)


class Stack:
    def __init__(self, layers: list) -> None:
        self.layers = layers


def _data(seed=0, n=6, d=4, k=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.standard_normal((n, k)).astype(dtype)


def test_layer_with_parameters_gradients_dicts_and_a_loss_function():
    X, y = _data()
    layer = FullyConnected(4, 3)
    W0 = layer.parameters["W"].copy()
    rep = gradient_check(layer, X, y, sq_loss)
    assert rep.passed, str(rep)
    assert set(rep) == {"W", "b", "input"}
    assert np.array_equal(W0, layer.parameters["W"])


def test_float32_layer_passes():
    X, y = _data(seed=1, dtype=np.float32)
    layer = FullyConnected(4, 3, seed=1, dtype=np.float32)
    rep = gradient_check(layer, X, y, sq_loss)
    assert rep.passed, str(rep)


def test_a_loss_function_returning_only_the_loss_gets_a_specific_error():
    X, y = _data(seed=2)
    with pytest.raises(TypeError, match=r"needs dL/dpred too: pass a function returning \(loss, dloss_dpred\)"):
        gradient_check(FullyConnected(4, 3), X, y, lambda pred, y: SquaredError.loss(y, pred))


@pytest.mark.parametrize("bug,name,kind", [
    ("act_grad_of_z", "W", "mismatch"),
    ("dW_transposed", "W", "transpose"),
    ("dB_mean", "b", "scale"),
])
def test_seeded_bugs(bug, name, kind):
    X, y = _data(seed=3)
    layer = FullyConnected(4, 3, seed=3, bug=bug)
    rep = gradient_check(layer, X, y, sq_loss)
    assert not rep.passed
    assert name in rep.failures
    assert rep[name].diagnosis.kind == kind, str(rep)
    if bug == "dB_mean":
        assert rep[name].diagnosis.details["factor_name"] == "1/N=1/6"


def test_gradients_accumulated_over_two_backward_calls_is_a_factor_two():
    """The user ran a backward pass before the check and never flushed: gradients accumulate."""
    X, y = _data(seed=4)
    layer = FullyConnected(4, 3, seed=4)
    layer.backward(SquaredError.grad(y, layer.forward(X)))   # a stale first backward, not flushed
    rep = gradient_check(layer, X, y, sq_loss)
    assert rep["W"].diagnosis.kind == "scale" and rep["W"].diagnosis.details["factor_name"] == "2"
    layer.flush_gradients()
    assert gradient_check(layer, X, y, sq_loss).passed


def test_check_layers_reads_parameters_and_gradients_dicts():
    X, _ = _data(seed=5)
    model = Stack([FullyConnected(4, 5, seed=5), FullyConnected(5, 3, seed=6, bug="act_grad_of_z")])
    rep = check_layers(model, X)
    assert not rep.passed and rep.first_faulty == 1
    assert set(rep[0]) == {"W", "b", "input"} and rep[0].passed
    assert not rep[1]["W"].passed


def test_check_layers_on_a_plain_list_of_layers():
    X, _ = _data(seed=6)
    rep = check_layers([FullyConnected(4, 5, seed=7), FullyConnected(5, 3, seed=8, bug="dB_mean")], X)
    assert rep.first_faulty == 1 and rep[1]["b"].diagnosis.kind == "scale"


def test_float32_saturated_tanh_passes_and_one_percent_is_caught():
    """(1 - tanh(z)**2) * dy of saturated float32 units carries the absolute round-off of dy (|dy| ~ 3)."""
    X, y = _data(seed=15, dtype=np.float32)
    X = X * np.float32(10)
    assert gradient_check(FullyConnected(4, 3, seed=15, dtype=np.float32), X, y, sq_loss).passed

    class OnePercent(FullyConnected):
        def backward(self, dLdy, retain_grads=True):
            dX = super().backward(dLdy, retain_grads)
            self.gradients["W"] *= np.float32(1.01)
            return dX

    rep = gradient_check(OnePercent(4, 3, seed=15, dtype=np.float32), X, y, sq_loss)
    assert rep["W"].diagnosis.kind == "scale" and not rep.passed
