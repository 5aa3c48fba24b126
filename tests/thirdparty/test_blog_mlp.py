"""Third-party style: the "neural network from scratch" blog MLP with ``self.W1``, ``self.b1`` attributes.

``forward`` stores ``self.z1, self.a1, ...``; ``backward(X, y)`` stores ``self.dW1, self.db1, ...``. The
natural checks: pass the object itself (``check_params(loss, net, net)``: ``W1`` pairs with ``dW1``; the
forward caches ``z1, a1`` are recognised as such and left out), or dicts with ``dW1``-style keys.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

from verigrad.check import check_params


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_derivative(s: np.ndarray) -> np.ndarray:
    """Derivative of the sigmoid written in terms of its *output* ``s``."""
    return s * (1 - s)


class NeuralNetwork:
    def __init__(self, n_in: int, n_hidden: int, n_out: int, seed: int = 0, bug: Optional[str] = None) -> None:
        rng = np.random.default_rng(seed)
        self.W1 = rng.standard_normal((n_in, n_hidden))
        self.b1 = 0.1 * rng.standard_normal((1, n_hidden))
        self.W2 = rng.standard_normal((n_hidden, n_out))
        self.b2 = 0.1 * rng.standard_normal((1, n_out))
        self.learning_rate = np.array([0.1])   # a float array that is not a parameter
        self.bug = bug

    def forward(self, X: np.ndarray) -> np.ndarray:
        self.z1 = X @ self.W1 + self.b1
        self.a1 = sigmoid(self.z1)
        self.z2 = self.a1 @ self.W2 + self.b2
        self.a2 = sigmoid(self.z2)
        return self.a2

    def loss(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(np.sum((self.forward(X) - y) ** 2, axis=1)))

    def backward(self, X: np.ndarray, y: np.ndarray) -> None:
        m = X.shape[0]
        bug = self.bug
        da2 = 2 * (self.a2 - y) if bug == "missing_1/m" else 2 * (self.a2 - y) / m
        dz2 = da2 * sigmoid_derivative(self.a2)
        self.dW2 = self.a1.T @ dz2
        self.db2 = np.sum(dz2, axis=0, keepdims=True)
        da1 = dz2 @ self.W2.T
        if bug == "derivative_of_z":   # sigmoid_derivative applied to z1 instead of a1
            dz1 = da1 * sigmoid_derivative(self.z1)
        else:
            dz1 = da1 * sigmoid_derivative(self.a1)
        self.dW1 = X.T @ dz1
        self.db1 = np.sum(dz1, axis=0)    # no keepdims: shape (H,) for a (1, H) bias, harmless
        if bug == "one_column":
            self.dW1[:, 0] = 0.0
        if bug == "dW2_factor2":
            self.dW2 = 2 * self.dW2


def _setup(bug=None, seed=0):
    rng = np.random.default_rng(seed + 50)
    X = rng.standard_normal((8, 3))
    y = rng.uniform(size=(8, 2))
    net = NeuralNetwork(3, 5, 2, seed=seed, bug=bug)
    net.forward(X)
    net.backward(X, y)
    return net, X, y


def test_object_attributes_as_params_and_grads():
    net, X, y = _setup()
    W1 = net.W1.copy()
    rep = check_params(lambda: net.loss(X, y), net, net)
    assert rep.passed, str(rep)
    assert set(rep) == {"W1", "b1", "W2", "b2"}
    assert any("z1" in n and "caches" in n for n in rep.notes)
    assert np.array_equal(W1, net.W1)


def test_dicts_with_d_prefixed_gradient_names():
    net, X, y = _setup(seed=1)
    params = {"W1": net.W1, "b1": net.b1, "W2": net.W2, "b2": net.b2}
    grads = {"dW1": net.dW1, "db1": net.db1, "dW2": net.dW2, "db2": net.db2}
    rep = check_params(lambda: net.loss(X, y), params, grads)
    assert rep.passed, str(rep)
    assert list(rep) == ["W1", "b1", "W2", "b2"]


def test_a_list_of_arrays_pairs_in_order():
    net, X, y = _setup(seed=2)
    rep = check_params(lambda: net.loss(X, y), [net.W1, net.b1, net.W2, net.b2],
                       [net.dW1, net.db1, net.dW2, net.db2])
    assert rep.passed, str(rep)
    assert list(rep) == ["params[0]", "params[1]", "params[2]", "params[3]"]


def test_unknown_gradient_names_get_a_specific_error():
    net, X, y = _setup(seed=3)
    with pytest.raises(ValueError, match=r"grads has no entry for \['W2'\]; grads has entries \['weights2'\]"):
        check_params(lambda: net.loss(X, y), {"W1": net.W1, "W2": net.W2}, {"dW1": net.dW1, "weights2": net.dW2})


@pytest.mark.parametrize("bug,first,kind", [
    ("missing_1/m", "W1", "scale"),
    ("derivative_of_z", "W1", "mismatch"),
    ("one_column", "W1", "partial"),
    ("dW2_factor2", "W2", "scale"),
])
def test_seeded_bugs(bug, first, kind):
    net, X, y = _setup(bug=bug, seed=4)
    rep = check_params(lambda: net.loss(X, y), net, net, batch_size=X.shape[0])
    assert not rep.passed
    assert first in rep.failures
    assert rep[first].diagnosis.kind == kind, str(rep)
    assert rep[first].worst is not None
    if bug == "missing_1/m":
        assert set(rep.failures) == {"W1", "b1", "W2", "b2"}
        assert rep.diagnosis.details["factor_name"] == "N=8"
    if bug == "one_column":
        assert rep["W1"].diagnosis.details["columns"] == [0]
    if bug == "dW2_factor2":
        assert set(rep.failures) == {"W2"} and rep["W2"].diagnosis.details["factor_name"] == "2"


def test_stale_forward_cache_in_backward_is_caught():
    """backward() run after a forward() on other data (validation batch) uses the wrong activations."""
    net, X, y = _setup(seed=5)
    X_val = np.random.default_rng(9).standard_normal((8, 3))
    net.forward(X)
    net.forward(X_val)        # e.g. a validation pass between forward and backward
    net.backward(X, y)        # reads self.a1/self.a2 of X_val
    rep = check_params(lambda: net.loss(X, y), net, net)
    assert not rep.passed
    assert rep.worst is not None and rep.worst.worst is not None
