"""Third-party style: "Neural Networks and Deep Learning" ``network.py`` (lists of weights and biases).

``net.weights[l]`` has shape ``(n_out, n_in)``, ``net.biases[l]`` is a column ``(n_out, 1)``; inputs are
column vectors; ``backprop(x, y)`` returns ``(nabla_b, nabla_w)`` lists for the quadratic cost
``0.5 * ||a - y||^2``. Natural check: ``check_params(cost, net.weights + net.biases, nabla_w + nabla_b)``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

from verigrad.check import check_params


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    return sigmoid(z) * (1 - sigmoid(z))


class Network:
    def __init__(self, sizes: list[int], seed: int = 0, bug: Optional[str] = None) -> None:
        rng = np.random.default_rng(seed)
        self.num_layers = len(sizes)
        self.sizes = sizes
        self.biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
        self.weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
        self.bug = bug

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def backprop(self, x, y):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        if self.bug == "nabla_w_transposed":
            nabla_w[-1] = np.dot(activations[-2], delta.transpose())
        for layer in range(2, self.num_layers):
            z = zs[-layer]
            sp = sigmoid_prime(activations[-layer]) if self.bug == "sigmoid_prime_of_activation" else sigmoid_prime(z)
            delta = np.dot(self.weights[-layer + 1].transpose(), delta) * sp
            nabla_b[-layer] = delta
            nabla_w[-layer] = np.dot(delta, activations[-layer - 1].transpose())
        if self.bug == "one_bias_row":
            nabla_b[0][1] = 0.0
        return nabla_b, nabla_w

    def cost_derivative(self, output_activations, y):
        if self.bug == "sign":
            return y - output_activations
        return output_activations - y


def _setup(bug=None, seed=0):
    rng = np.random.default_rng(seed + 20)
    net = Network([3, 4, 2], seed=seed, bug=bug)
    x = rng.standard_normal((3, 1))
    y = rng.uniform(size=(2, 1))
    return net, x, y


def _cost(net, x, y):
    return 0.5 * np.sum((net.feedforward(x) - y) ** 2)


def test_lists_of_weights_and_biases_pass():
    net, x, y = _setup()
    nabla_b, nabla_w = net.backprop(x, y)
    w0 = [w.copy() for w in net.weights]
    rep = check_params(lambda: _cost(net, x, y), net.weights + net.biases, nabla_w + nabla_b)
    assert rep.passed, str(rep)
    assert len(rep) == 4
    assert all(np.array_equal(a, b) for a, b in zip(w0, net.weights))


def test_lists_of_different_lengths_get_a_specific_error():
    net, x, y = _setup(seed=1)
    nabla_b, nabla_w = net.backprop(x, y)
    with pytest.raises(ValueError, match=r"params has 4 arrays but grads has 2; they must pair up in order"):
        check_params(lambda: _cost(net, x, y), net.weights + net.biases, nabla_w)


@pytest.mark.parametrize("bug,index,kind", [
    ("sign", 0, "sign"),
    ("nabla_w_transposed", 1, "transpose"),
    ("sigmoid_prime_of_activation", 0, "mismatch"),
    ("one_bias_row", 2, "partial"),
])
def test_seeded_bugs(bug, index, kind):
    net, x, y = _setup(bug=bug, seed=2)
    nabla_b, nabla_w = net.backprop(x, y)
    rep = check_params(lambda: _cost(net, x, y), net.weights + net.biases, nabla_w + nabla_b)
    name = f"params[{index}]"
    assert not rep.passed and name in rep.failures
    assert rep[name].diagnosis.kind == kind, str(rep)
    if bug == "one_bias_row":
        assert set(rep.failures) == {name}
        assert rep[name].worst.index == (1, 0)
