"""Third-party style: a small NumPy autograd framework with ``Parameter`` objects (``.data``, ``.grad``).

``model.parameters()`` returns the Parameter objects; ``loss.backward()``-style code fills ``p.grad``.
Natural check: ``check_params(lambda: model.loss(X, y), model.parameters())``: the ``.data`` arrays are
perturbed in place and ``.grad`` is the claim.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

from verigrad.check import check_params


class Parameter:
    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.grad: Optional[np.ndarray] = None


class Linear:
    def __init__(self, n_in, n_out, rng):
        self.weight = Parameter(rng.standard_normal((n_out, n_in)) / np.sqrt(n_in))   # torch layout
        self.bias = Parameter(0.1 * rng.standard_normal(n_out))

    def __call__(self, x):
        self.x = x
        return x @ self.weight.data.T + self.bias.data

    def backward(self, d, bug=None):
        self.weight.grad = d.T @ self.x if bug != "weight_not_transposed" else self.x.T @ d
        self.bias.grad = d.sum(axis=0)
        return d @ self.weight.data


class MLP:
    def __init__(self, seed=0, bug=None):
        rng = np.random.default_rng(seed)
        self.l1, self.l2 = Linear(4, 5, rng), Linear(5, 3, rng)
        self.bug = bug

    def parameters(self):
        return [self.l1.weight, self.l1.bias, self.l2.weight, self.l2.bias]

    def named_parameters(self):
        return {"l1.weight": self.l1.weight, "l1.bias": self.l1.bias,
                "l2.weight": self.l2.weight, "l2.bias": self.l2.bias}

    def loss(self, X, y):
        self.h = np.tanh(self.l1(X))
        out = self.l2(self.h)
        return 0.5 * np.mean(np.sum((out - y) ** 2, axis=1)), out

    def backward(self, X, y):
        _, out = self.loss(X, y)
        d = (out - y) / len(X)
        dh = self.l2.backward(d, bug=self.bug)
        self.l1.backward(dh * (1 - self.h ** 2) if self.bug != "tanh_grad_of_output" else dh * (1 - self.h))


def _setup(bug=None, seed=0):
    rng = np.random.default_rng(seed + 7)
    X, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    m = MLP(seed, bug)
    m.backward(X, y)
    return m, X, y


def test_parameter_objects_without_grads_argument():
    m, X, y = _setup()
    rep = check_params(lambda: m.loss(X, y), m.parameters())
    assert rep.passed, str(rep)
    assert len(rep) == 4
    rep = check_params(lambda: m.loss(X, y), m.named_parameters())
    assert rep.passed and list(rep) == ["l1.weight", "l1.bias", "l2.weight", "l2.bias"]


def test_missing_grad_is_named():
    m = MLP(1)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    with pytest.raises(ValueError, match=r"have no \.grad \(None\): run the backward pass"):
        check_params(lambda: m.loss(X, y), m.parameters())


@pytest.mark.parametrize("bug,name,kind", [
    ("tanh_grad_of_output", "l1.weight", "mismatch"),
])
def test_seeded_bugs(bug, name, kind):
    m, X, y = _setup(bug=bug, seed=2)
    rep = check_params(lambda: m.loss(X, y), m.named_parameters())
    assert not rep.passed and rep[name].diagnosis.kind == kind, str(rep)


def test_weight_gradient_in_the_wrong_layout_is_a_transpose():
    m, X, y = _setup(bug="weight_not_transposed", seed=3)
    rep = check_params(lambda: m.loss(X, y), m.named_parameters())
    assert rep["l2.weight"].diagnosis.kind == "transpose" and not rep.passed
