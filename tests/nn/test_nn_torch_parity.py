"""Parity with PyTorch in float64: same weights give the same outputs, gradients and optimizer steps."""

from __future__ import annotations

import numpy as np
import pytest

from verigrad.nn.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from verigrad.nn.layers import Dense
from verigrad.nn.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from verigrad.nn.network import NeuralNetwork
from verigrad.nn.optim import SGD, Adam

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = 1e-10


def T(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


ACTS = {
    "identity": (Identity, lambda t: t),
    "sigmoid": (Sigmoid, torch.sigmoid),
    "tanh": (Tanh, torch.tanh),
    "relu": (ReLU, torch.relu),
    "leaky_relu": (lambda: LeakyReLU(0.05), lambda t: F.leaky_relu(t, 0.05)),
    "softmax": (Softmax, lambda t: torch.softmax(t, dim=-1)),
}


@pytest.mark.parametrize("name", sorted(ACTS))
def test_activation_parity(name):
    ours, theirs = ACTS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5)) * 3
    x[0, 0] = 0.0  # torch's choice at the kink: relu'(0) = 0, leaky'(0) = alpha
    dy = rng.standard_normal((6, 5))
    layer = ours()
    y = layer.forward(x)
    dx = layer.backward(dy)
    xt = T(x, True)
    yt = theirs(xt)
    yt.backward(T(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=TOL, atol=1e-15)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=TOL, atol=1e-15)


@pytest.mark.parametrize("activation", [None, "sigmoid", "tanh", "relu", "softmax"])
def test_dense_parity(activation):
    rng = np.random.default_rng(1)
    layer = Dense(4, 3, activation=activation, rng=rng)
    layer.params["b"][:] = rng.standard_normal(3)
    x = rng.standard_normal((5, 4))
    dy = rng.standard_normal((5, 3))
    y = layer.forward(x)
    dx = layer.backward(dy)
    xt, Wt, bt = T(x, True), T(layer.params["W"], True), T(layer.params["b"], True)
    zt = xt @ Wt + bt
    yt = zt if activation is None else ACTS[activation][1](zt)
    yt.backward(T(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=TOL, atol=1e-15)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=TOL, atol=1e-14)
    np.testing.assert_allclose(layer.grads["W"], Wt.grad.numpy(), rtol=TOL, atol=1e-14)
    np.testing.assert_allclose(layer.grads["b"], bt.grad.numpy(), rtol=TOL, atol=1e-14)


def _loss_cases(rng):
    n, c = 6, 4
    z = rng.standard_normal((n, c)) * 2
    labels = rng.integers(0, c, n)
    soft = rng.dirichlet(np.ones(c), n)
    probs = rng.uniform(0.01, 0.99, (n, c))
    targets01 = rng.uniform(0, 1, (n, c))
    reg = rng.standard_normal((n, c))
    return [
        ("mse", MSELoss(), z, reg, lambda p, y: F.mse_loss(p, y)),
        ("mse_sum", MSELoss("sum"), z, reg, lambda p, y: F.mse_loss(p, y, reduction="sum")),
        ("ce_labels", CrossEntropyLoss(), z, labels, lambda p, y: F.cross_entropy(p, torch.tensor(labels))),
        ("ce_soft", CrossEntropyLoss(), z, soft, lambda p, y: F.cross_entropy(p, y)),
        ("ce_extreme", CrossEntropyLoss(), z * 5e3, labels, lambda p, y: F.cross_entropy(p, torch.tensor(labels))),
        ("bce", BCELoss(), probs, targets01, lambda p, y: F.binary_cross_entropy(p, y)),
        ("bce_logits", BCEWithLogitsLoss(), z, targets01, lambda p, y: F.binary_cross_entropy_with_logits(p, y)),
        (
            "bce_logits_extreme",
            BCEWithLogitsLoss(),
            z * 5e3,
            targets01,
            lambda p, y: F.binary_cross_entropy_with_logits(p, y),
        ),
    ]


@pytest.mark.parametrize("case", range(8))
def test_loss_parity(case):
    name, loss, pred, y, torch_fn = _loss_cases(np.random.default_rng(2))[case]
    value = loss.forward(pred, y)
    grad = loss.backward(pred, y)
    pt = T(pred, True)
    yt = T(y) if y.dtype.kind == "f" else None
    lt = torch_fn(pt, yt)
    lt.backward()
    assert value == pytest.approx(lt.item(), rel=TOL, abs=1e-14), name
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=TOL, atol=1e-15, err_msg=name)


def test_bce_parity_at_zero_and_one():
    p = np.array([[0.0, 1.0, 0.0, 1.0, 0.3]])
    y = np.array([[1.0, 0.0, 0.0, 1.0, 0.5]])
    loss = BCELoss()
    pt = T(p, True)
    lt = F.binary_cross_entropy(pt, T(y))
    lt.backward()
    assert loss(p, y) == pytest.approx(lt.item(), rel=TOL)
    np.testing.assert_allclose(loss.backward(p, y), pt.grad.numpy(), rtol=TOL)


def _torch_mlp(model):
    W0, b0, W2, b2 = (T(p, True) for p in model.params().values())
    return [W0, b0, W2, b2], lambda X: torch.tanh(X @ W0 + b0) @ W2 + b2


def test_mlp_parity():
    rng = np.random.default_rng(3)
    model = NeuralNetwork([Dense(5, 8, rng=rng), Tanh(), Dense(8, 3, rng=rng)])
    for p in model.params().values():
        p[...] = rng.standard_normal(p.shape) * 0.5
    X = rng.standard_normal((7, 5))
    y = rng.integers(0, 3, 7)
    loss = CrossEntropyLoss()
    pred = model.forward(X)
    value = loss.forward(pred, y)
    model.backward(loss.backward(pred, y))
    params, f = _torch_mlp(model)
    lt = F.cross_entropy(f(T(X)), torch.tensor(y))
    lt.backward()
    assert value == pytest.approx(lt.item(), rel=TOL)
    for (name, g), pt in zip(model.grads().items(), params):
        np.testing.assert_allclose(g, pt.grad.numpy(), rtol=TOL, atol=1e-15, err_msg=name)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda p: SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
        (lambda p: SGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
        (
            lambda p: SGD(p, lr=0.05, momentum=0.8, weight_decay=0.01, nesterov=True),
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, weight_decay=0.01, nesterov=True),
        ),
        (lambda p: Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
        (
            lambda p: Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
            lambda p: torch.optim.Adam(p, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        ),
    ],
)
def test_optimizer_steps_match_torch(ours, theirs):
    """Three training steps (momentum buffers and Adam bias correction matter after the first)."""
    rng = np.random.default_rng(4)
    model = NeuralNetwork([Dense(4, 6, rng=rng), Tanh(), Dense(6, 2, rng=rng)])
    params_t, f = _torch_mlp(model)
    opt, opt_t = ours(model.params()), theirs(params_t)
    loss = CrossEntropyLoss()
    for step in range(3):
        X = rng.standard_normal((5, 4))
        y = rng.integers(0, 2, 5)
        pred = model.forward(X)
        model.backward(loss.backward(pred, y))
        opt.step(model.grads())
        opt_t.zero_grad()
        F.cross_entropy(f(T(X)), torch.tensor(y)).backward()
        opt_t.step()
        for (name, p), pt in zip(model.params().items(), params_t):
            np.testing.assert_allclose(p, pt.detach().numpy(), rtol=TOL, atol=1e-14, err_msg=f"{name} step {step}")
