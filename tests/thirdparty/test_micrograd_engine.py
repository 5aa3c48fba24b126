"""Third-party style: a micrograd-like scalar autograd engine (``Value`` with ``.data``, ``.grad``).

The parameters are Python floats inside ``Value`` objects. Natural check: gather them into a vector,
``fn(w)`` writes ``w`` into the ``.data`` fields and returns ``loss.data`` (a Python float), the claimed
gradient is ``[p.grad for p in params]`` after ``loss.backward()``.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pytest

from verigrad.check import check_gradients

BUG: dict[str, Optional[str]] = {"kind": None}


class Value:
    def __init__(self, data, _children=(), _op=""):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            if BUG["kind"] == "mul_assign":       # '=' instead of '+=': a reused node loses gradient
                self.grad = other.data * out.grad
                other.grad = self.data * out.grad
            else:
                self.grad += other.data * out.grad
                other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, k):
        out = Value(self.data ** k, (self,), f"**{k}")

        def _backward():
            if BUG["kind"] == "pow_no_exponent":
                self.grad += self.data ** (k - 1) * out.grad
            else:
                self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward():
            if BUG["kind"] == "tanh_derivative":
                self.grad += (1 - t) * out.grad
            else:
                self.grad += (1 - t ** 2) * out.grad
        out._backward = _backward
        return out

    def relu(self):
        out = Value(self.data if self.data > 0 else 0.0, (self,), "relu")

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward
        return out

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def backward(self):
        topo, visited = [], set()

        def build(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build(child)
                topo.append(v)
        build(self)
        self.grad = 1.0
        for v in reversed(topo):
            v._backward()


class Neuron:
    def __init__(self, nin, rng, act="tanh"):
        self.w = [Value(float(rng.uniform(-1, 1))) for _ in range(nin)]
        self.b = Value(float(rng.uniform(-0.5, 0.5)))
        self.act = act

    def __call__(self, x):
        s = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return s.tanh() if self.act == "tanh" else (s.relu() if self.act == "relu" else s)

    def parameters(self):
        return self.w + [self.b]


class MLP:
    def __init__(self, nin, nouts, seed=0, act="tanh"):
        rng = np.random.default_rng(seed)
        sz = [nin] + nouts
        self.layers = [[Neuron(sz[i], rng, act if i < len(nouts) - 1 else "linear") for _ in range(sz[i + 1])]
                       for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = [n(x) for n in layer]
        return x[0] if len(x) == 1 else x

    def parameters(self):
        return [p for layer in self.layers for n in layer for p in n.parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0.0


XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
YS = [1.0, -1.0, -1.0, 1.0]


def _loss(model):
    return sum(((model(x) - y) ** 2 for x, y in zip(XS, YS)), Value(0.0))


def _check(model, backward_twice=False):
    params = model.parameters()
    model.zero_grad()
    loss = _loss(model)
    loss.backward()
    if backward_twice:                    # zero_grad forgotten between two backward passes
        _loss(model).backward()
    grad = np.array([p.grad for p in params])
    w = np.array([p.data for p in params])

    def fn(v: np.ndarray) -> float:
        for p, vi in zip(params, v):
            p.data = float(vi)
        return _loss(model).data          # a Python float

    try:
        return check_gradients(fn, grad, w, name="parameters")
    finally:
        for p, wi in zip(params, w):
            p.data = float(wi)


@pytest.fixture(autouse=True)
def _no_bug():
    BUG["kind"] = None
    yield
    BUG["kind"] = None


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_correct_engine_passes(act):
    rep = _check(MLP(3, [4, 1], seed=0, act=act))
    assert rep.passed, str(rep)
    assert rep.shape == (21,)


def test_relu_at_exactly_zero_passes():
    model = MLP(3, [4, 1], seed=1, act="relu")
    n = model.layers[0][0]
    x0 = XS[0]
    for wi, v in zip(n.w, (0.5, -0.25, 0.75)):      # dyadic weights: the sum below is exact
        wi.data = v
    n.b.data = -sum(wi.data * xi for wi, xi in zip(n.w, x0))    # pre-activation exactly 0 on sample 0
    pre = sum((wi.data * xi for wi, xi in zip(n.w, x0)), n.b.data)
    assert pre == 0.0
    rep = _check(model)
    assert rep.passed, str(rep)
    assert rep.diagnosis.kind == "kink" and (0,) in rep.kinks


@pytest.mark.parametrize("bug,kind", [
    ("tanh_derivative", "mismatch"),
    ("pow_no_exponent", "scale"),
    ("mul_assign", "mismatch"),
    ("twice", "scale"),
])
def test_seeded_engine_bugs(bug, kind):
    BUG["kind"] = bug if bug != "twice" else None
    rep = _check(MLP(3, [4, 1], seed=2), backward_twice=bug == "twice")
    assert not rep.passed
    assert rep.diagnosis.kind == kind, str(rep)
    assert rep.worst is not None and 0 <= rep.worst.index[0] < 21
    if bug == "pow_no_exponent":
        assert rep.diagnosis.details["factor_name"] == "1/2"
    if bug == "twice":
        assert rep.diagnosis.details["factor_name"] == "2"
