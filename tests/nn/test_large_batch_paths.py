"""The large-array paths of the training step: Dense's np.matmul products and ReLU's cached mask.

Both must give the values of the plain formulas (``x @ W + b``, ``x.T @ dz``, ``dz @ W.T``,
``dy * (x > 0)``) and keep the layer contract (forward caches, backward fills grads and returns
dx; outputs handed out are never overwritten by a later call).
"""

from __future__ import annotations

import numpy as np
import pytest

from verigrad.nn import CrossEntropyLoss, Dense, NeuralNetwork, ReLU
from verigrad.nn import layers as layers_module


def _large_dense(dtype, seed: int) -> tuple[Dense, np.ndarray, np.ndarray]:
    """A Dense layer whose products are above the np.matmul threshold, a batch and an upstream gradient."""
    rng = np.random.default_rng(seed)
    n, n_in, n_out = 64, 80, 64
    assert n * n_in * n_out >= layers_module._MATMUL_MIN_WORK
    layer = Dense(n_in, n_out, seed=seed, dtype=dtype)
    layer.params["b"][...] = rng.standard_normal(n_out).astype(dtype)
    x = rng.standard_normal((n, n_in)).astype(dtype)
    dy = rng.standard_normal((n, n_out)).astype(dtype)
    return layer, x, dy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_large_products_match_plain_formulas(dtype) -> None:
    layer, x, dy = _large_dense(dtype, seed=3)
    W, b = layer.params["W"], layer.params["b"]
    y = layer.forward(x)
    dx = layer.backward(dy)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, np.dot(x, W) + b, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(layer.grads["W"], np.dot(x.T, dy), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(layer.grads["b"], dy.sum(axis=0), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dx, np.dot(dy, W.T), rtol=rtol, atol=rtol)
    assert y.dtype == dx.dtype == layer.grads["W"].dtype == dtype
    assert layer.grads["W"].flags.c_contiguous  # SGD's blocked update needs C order
    assert layer.backward(dy, input_grad=False) is None


def test_dense_large_and_small_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same layer computed above and below the threshold (np.matmul vs np.dot) agrees to rounding."""
    layer, x, dy = _large_dense(np.float64, seed=5)
    big = (layer.forward(x), layer.backward(dy), layer.grads["W"].copy(), layer.grads["b"].copy())
    monkeypatch.setattr(layers_module, "_MATMUL_MIN_WORK", 1 << 62)  # every product through np.dot
    small = (layer.forward(x), layer.backward(dy), layer.grads["W"].copy(), layer.grads["b"].copy())
    for a, c in zip(big, small):
        np.testing.assert_allclose(a, c, rtol=1e-13, atol=1e-13)


def test_dense_outputs_are_fresh_arrays() -> None:
    """An output kept by the caller is not overwritten by the next forward (no buffer reuse)."""
    layer, x, dy = _large_dense(np.float64, seed=7)
    y1 = layer.forward(x)
    keep = y1.copy()
    dx1 = layer.backward(dy)
    keep_dx = dx1.copy()
    layer.forward(2 * x)
    layer.backward(3 * dy)
    np.testing.assert_array_equal(y1, keep)
    np.testing.assert_array_equal(dx1, keep_dx)


def _relu_input(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Normal entries, a tenth of them set to exactly 0 (the kink: derivative 0, as torch)."""
    x = rng.standard_normal(shape).astype(dtype)
    x[rng.random(shape) < 0.1] = 0
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 8), (96, 100), (3, 50, 70)])
def test_relu_backward_equals_vjp_bit_for_bit(dtype, shape) -> None:
    rng = np.random.default_rng(11)
    x = _relu_input(rng, shape, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    relu = ReLU()
    y = relu.forward(x)
    got = relu.backward(dy)
    want = relu.vjp(x, y, dy)
    assert got.dtype == want.dtype
    assert got.tobytes() == want.tobytes()
    np.testing.assert_array_equal(got, dy * (x > 0))
    assert (relu._mask is not None) == (x.size > ReLU._MASK_MIN_SIZE)


def test_relu_mask_follows_the_last_forward_and_the_two_argument_form_ignores_it() -> None:
    rng = np.random.default_rng(12)
    relu = ReLU()
    x1 = _relu_input(rng, (100, 100), np.float64)
    x2 = _relu_input(rng, (100, 100), np.float64)
    dy = rng.standard_normal((100, 100))
    relu.forward(x1)
    relu.forward(x2)
    np.testing.assert_array_equal(relu.backward(dy), dy * (x2 > 0))
    np.testing.assert_array_equal(relu.backward(x1, dy), dy * (x1 > 0))  # seed 002: derivative at x1
    small = _relu_input(rng, (3, 4), np.float64)
    relu.forward(small)  # a small input drops the large mask
    assert relu._mask is None
    np.testing.assert_array_equal(relu.backward(np.ones((3, 4))), (small > 0).astype(float))


def test_relu_backward_shape_error_with_a_cached_mask() -> None:
    relu = ReLU()
    relu.forward(np.ones((100, 100)))
    with pytest.raises(ValueError, match=r"dy has shape \(100, 99\), expected the shape of the input \(100, 100\)"):
        relu.backward(np.ones((100, 100))[:, :99])


def test_relu_failed_forward_leaves_no_mask() -> None:
    relu = ReLU()
    relu.forward(np.ones((100, 100)))

    class Boom:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        relu.forward(Boom())
    assert relu._mask is None
    # whatever input the cache still holds, backward(dy) is the plain vjp on it
    dy = np.full((100, 100), 2.0)
    np.testing.assert_array_equal(relu.backward(dy), relu.vjp(relu._x, relu._y, dy))


def test_network_step_on_large_layers_keeps_gradients_and_outputs() -> None:
    """A whole step above both thresholds: gradients equal the hand-written formulas (float64)."""
    rng = np.random.default_rng(13)
    model = NeuralNetwork([Dense(80, 72, seed=0), ReLU(), Dense(72, 64, seed=1), ReLU(), Dense(64, 5, seed=2)])
    X = rng.standard_normal((64, 80))
    y = rng.integers(0, 5, size=64)
    loss = CrossEntropyLoss()
    pred = model.forward(X)
    kept = pred.copy()
    model.backward(loss.backward(pred, y))
    W0, b0 = model.layers[0].params["W"], model.layers[0].params["b"]
    W2, b2 = model.layers[2].params["W"], model.layers[2].params["b"]
    W4, b4 = model.layers[4].params["W"], model.layers[4].params["b"]
    z0 = X @ W0 + b0
    a0 = np.maximum(z0, 0)
    z2 = a0 @ W2 + b2
    a2 = np.maximum(z2, 0)
    z4 = a2 @ W4 + b4
    e = np.exp(z4 - z4.max(axis=1, keepdims=True))
    d4 = e / e.sum(axis=1, keepdims=True)
    d4[np.arange(64), y] -= 1
    d4 /= 64
    d2 = (d4 @ W4.T) * (z2 > 0)
    d0 = (d2 @ W2.T) * (z0 > 0)
    grads = model.grads()
    for name, want in [("W_4", a2.T @ d4), ("W_2", a0.T @ d2), ("W_0", X.T @ d0), ("b_0", d0.sum(0))]:
        np.testing.assert_allclose(grads[name], want, rtol=1e-10, atol=1e-13, err_msg=name)
    np.testing.assert_allclose(model.input_grad, d0 @ W0.T, rtol=1e-10, atol=1e-13)
    model.forward(X + 1)
    np.testing.assert_array_equal(pred, kept)
