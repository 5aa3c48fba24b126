"""Third-party style: a student's model object following verigrad's protocol loosely.

``forward(X)`` (no ``training`` flag), ``backward(dout)``, ``params()`` returning ``{"W1": ..}`` and
``grads()`` returning ``{"dW1": ..}``; float32 weights and data, integer labels, a cross-entropy loss
object with ``forward(scores, y)``/``backward(scores, y)``. Natural check: ``gradient_check(model, X, y,
loss)``. Seeded bugs include the model-level ones: normalising ``X`` in place, dropout left on, a lagging
cache.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

from verigrad.check import gradient_check


class SoftmaxCrossEntropy:
    def forward(self, scores, y):
        z = scores - scores.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(y)), y].mean()

    def backward(self, scores, y):
        z = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1
        return p / len(y)


class StudentMLP:
    def __init__(self, d, h, k, seed=0, dtype=np.float32, bug: Optional[str] = None):
        rng = np.random.default_rng(seed)
        self.W1 = (rng.standard_normal((d, h)) / np.sqrt(d)).astype(dtype)
        self.b1 = np.zeros(h, dtype=dtype)
        self.W2 = (rng.standard_normal((h, k)) / np.sqrt(h)).astype(dtype)
        self.b2 = np.zeros(k, dtype=dtype)
        self.bug = bug
        self.rng = np.random.default_rng(seed + 1)
        self._prev_h: Optional[np.ndarray] = None

    def forward(self, X):
        if self.bug == "normalise_in_place":
            X -= X.mean(axis=0)                   # mutates the caller's data
        self.X = X
        self.z1 = X @ self.W1 + self.b1
        self.h = np.maximum(self.z1, 0)
        if self.bug == "dropout_on":
            self.h = self.h * (self.rng.uniform(size=self.h.shape) > 0.2) / 0.8
        if self.bug == "lagging_cache":           # returns the hidden layer of the previous call
            h, self._prev_h = (self._prev_h if self._prev_h is not None else self.h), self.h
            self.h = h
        return self.h @ self.W2 + self.b2

    def backward(self, dout):
        self.dW2 = self.h.T @ dout
        self.db2 = dout.sum(axis=0)
        dh = dout @ self.W2.T
        dz1 = dh * (self.z1 > 0)
        if self.bug == "relu_mask_of_output":
            dz1 = dh * (self.h > 1)               # wrong threshold
        self.dW1 = self.X.T @ dz1
        self.db1 = dz1.sum(axis=0)
        if self.bug == "dW1_one_row":
            self.dW1[2] *= 3
        return dz1 @ self.W1.T

    def params(self):
        return {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}

    def grads(self):
        return {"dW1": self.dW1, "db1": self.db1, "dW2": self.dW2, "db2": self.db2}


def _data(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((10, 4)).astype(dtype)
    y = rng.integers(0, 3, size=10)
    return X, y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_student_model_passes(dtype):
    X, y = _data(dtype=dtype)
    model = StudentMLP(4, 6, 3, dtype=dtype)
    rep = gradient_check(model, X, y, SoftmaxCrossEntropy())
    assert rep.passed, str(rep)
    assert set(rep) == {"W1", "b1", "W2", "b2", "input"}


def test_relu_pre_activation_exactly_zero_passes():
    X, y = _data(seed=1, dtype=np.float64)
    model = StudentMLP(4, 6, 3, seed=1, dtype=np.float64)
    model.b1[2] = -(X @ model.W1)[0, 2]             # sample 0 sits exactly on unit 2's kink
    assert (X @ model.W1 + model.b1)[0, 2] == 0
    rep = gradient_check(model, X, y, SoftmaxCrossEntropy())
    assert rep.passed, str(rep)
    assert rep["W1"].kinks


def test_relu_all_units_of_a_sample_exactly_zero_passes():
    # several ReLU kinks crossed by one perturbation: relu'(0)=0 gives a dL/dX outside the one-sided hull
    # (an element of the chain-rule set, not a subgradient); the model's backward is verified at nearby
    # points (the multi-kink test) and the entry passes as a kink
    X, y = _data(seed=1, dtype=np.float64)
    model = StudentMLP(4, 6, 3, seed=1, dtype=np.float64)
    model.b1[:] = -(X @ model.W1)[0]               # sample 0 sits exactly on every unit's kink
    assert np.all((X @ model.W1 + model.b1)[0] == 0)
    rep = gradient_check(model, X, y, SoftmaxCrossEntropy())
    assert rep.passed, str(rep)


class ScaledInputGrad(StudentMLP):
    """A backward pass whose dL/dX is off by a constant factor (everywhere, not only at the kinks)."""

    factor = 2.0

    def backward(self, dout):
        return self.factor * super().backward(dout)


@pytest.mark.parametrize("factor", [2.0, -1.0])
def test_wrong_input_gradient_at_a_multikink_still_fails(factor):
    X, y = _data(seed=1, dtype=np.float64)
    model = ScaledInputGrad(4, 6, 3, seed=1, dtype=np.float64)
    model.factor = factor
    model.b1[:] = -(X @ model.W1)[0]               # sample 0 sits exactly on every unit's kink
    rep = gradient_check(model, X, y, SoftmaxCrossEntropy())
    assert not rep["input"].passed, str(rep["input"])
    assert rep["W1"].passed and rep["W2"].passed


def test_zero_initialised_relu_layer_passes():
    # every pre-activation at exactly 0: relu'(0)=0 gives dW1 = 0, outside the one-sided hull of each
    # entry; verified at nearby points (the multi-kink test)
    X, y = _data(seed=3, dtype=np.float64)
    model = StudentMLP(4, 6, 3, seed=3, dtype=np.float64)
    model.W1[:] = 0.0
    rep = gradient_check(model, X, y, SoftmaxCrossEntropy())
    assert rep.passed, str(rep)


@pytest.mark.parametrize("bug,first,kind", [
    ("relu_mask_of_output", "W1", "mismatch"),
    ("dW1_one_row", "W1", "partial"),
    ("normalise_in_place", None, "mutates_input"),
    ("dropout_on", None, "nondeterministic"),
    ("lagging_cache", None, "nondeterministic"),
])
def test_seeded_bugs(bug, first, kind):
    X, y = _data(seed=2)
    X0 = X.copy()
    model = StudentMLP(4, 6, 3, seed=2, bug=bug)
    rep = gradient_check(model, X, y, SoftmaxCrossEntropy())
    assert not rep.passed
    assert rep.diagnosis.kind == kind, str(rep)
    assert np.array_equal(X, X0)
    if first is not None:
        assert first in rep.failures and rep[first].worst is not None
    if bug == "dW1_one_row":
        assert rep["W1"].diagnosis.details["rows"] == [2]
    if bug == "normalise_in_place":
        assert rep.diagnosis.details["argument"] == "X"


class LossReturningPair(SoftmaxCrossEntropy):
    """A loss object whose forward returns (loss, probabilities)."""

    def forward(self, scores, y):
        z = scores - scores.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return super().forward(scores, y), p


def test_loss_object_whose_forward_returns_a_tuple():
    X, y = _data(seed=7, dtype=np.float64)
    model = StudentMLP(4, 6, 3, seed=7, dtype=np.float64)
    assert gradient_check(model, X, y, LossReturningPair()).passed
    bad = gradient_check(StudentMLP(4, 6, 3, seed=7, dtype=np.float64, bug="dW1_one_row"), X, y, LossReturningPair())
    assert bad.diagnosis.kind == "partial"
