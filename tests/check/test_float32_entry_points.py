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
