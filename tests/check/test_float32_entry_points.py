"""Float32 models and layers: the entry points judge them at the precision actually evaluated.

* ``check_layers`` takes the evaluation dtype from the layer run on the (promoted) input it perturbs,
  and the rounding scale from ``sum |out * dy|`` (R2, R3);
* ``gradient_check`` bounds the float32 round-off of ``dL/dpred`` by the size of ``pred`` and ``y``,
  not only by ``|dL/dpred|`` (which is small when ``pred - y`` cancels) (R4).

A 1% error in a float32 gradient is still caught.
"""

from __future__ import annotations

import numpy as np
import pytest

from verigrad import nn
from verigrad.check import check_layers


class OffByOnePercent:
    """A layer whose input gradient is 1% too large."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.params, self.grads = inner.params, inner.grads

    def forward(self, x, training=True):
        return self.inner.forward(x, training=training)

    def backward(self, dy):
        return 1.01 * self.inner.backward(dy)


def _small_float32_inputs(seed: int) -> np.ndarray:
    X = (np.random.default_rng(seed).standard_normal((20, 6)) * 1e-3).astype(np.float32)
    X[:, 0] *= 1000  # one column at the usual scale
    return X


@pytest.mark.parametrize("seed", range(3))
def test_float32_relu_layer_near_its_kinks_passes(seed):
    # ReLU computes in float64 on the promoted input: float32-sized steps (~5e-3 |x|) crossed the kinks of
    # entries of size 1e-3 and the layer was failed ('partial')
    X = _small_float32_inputs(seed)
    rep = check_layers([nn.ReLU()], X, seed=seed)
    assert rep.passed, str(rep)


@pytest.mark.parametrize("seed", range(3))
def test_float32_layers_one_percent_error_caught(seed):
    X = _small_float32_inputs(seed)
    dense = nn.Dense(6, 4, activation="tanh", seed=seed, dtype=np.float32)
    assert check_layers([dense], X, seed=seed).passed
    rep = check_layers([OffByOnePercent(dense)], X, seed=seed)
    assert rep.first_faulty == 0 and not rep.layers[0][2]["input"].passed, str(rep)
    rep = check_layers([OffByOnePercent(nn.ReLU())], X, seed=seed)
    assert rep.first_faulty == 0, str(rep)


class ScaledGrad:
    """A model whose claimed gradient of one parameter is ``factor`` times the true one."""

    def __init__(self, model, name: str, factor: float) -> None:
        self.model, self.name, self.factor = model, name, factor

    def forward(self, X, training=True):
        return self.model.forward(X, training=training)

    def backward(self, d):
        return self.model.backward(d)

    def params(self):
        return self.model.params()

    def grads(self):
        g = dict(self.model.grads())
        g[self.name] = g[self.name] * self.factor
        return g


def _seed317():
    import os
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "benchmarks"))
    import false_alarms

    return false_alarms.build(false_alarms.draw_case(317))


def test_float32_mse_with_cancelling_residual_passes_and_one_percent_error_fails():
    # sweep seed 317: float32 2-16-2 sigmoid, MSE on one row; 2 (pred - y) cancels, so |dL/dpred| understated
    # the float32 round-off the backward pass carries into b_0 and b_2 (relative errors 5.8e-6 were flagged)
    from verigrad.check import gradient_check

    model, X, y, loss = _seed317()
    assert X.dtype == np.float32 and X.shape[0] == 1
    rep = gradient_check(model, X, y, loss, seed=317)
    assert rep.passed, str(rep)
    for name in ("b_2", "W_0"):
        bad = gradient_check(ScaledGrad(model, name, 1.01), X, y, loss, seed=317)
        assert not bad[name].passed, str(bad)
