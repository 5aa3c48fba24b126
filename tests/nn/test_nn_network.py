"""NeuralNetwork: naming, liveness, whole-network gradients, intermediate gradients, custom layers, errors."""

from __future__ import annotations

import numpy as np
import pytest
from _fd import numerical_grad, rel_error
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from verigrad.nn.activations import ReLU, Sigmoid, Softmax, Tanh
from verigrad.nn.base import Layer
from verigrad.nn.layers import Dense
from verigrad.nn.losses import BCELoss, CrossEntropyLoss, MSELoss
from verigrad.nn.network import NeuralNetwork, Sequential

TOL = 1e-7
FD_STEP = 1e-4  # the step h of numerical_grad


def _mlp(seed=0):
    return NeuralNetwork([Dense(5, 7, seed=seed), ReLU(), Dense(7, 3, seed=seed + 1)])


def test_param_names_match_seed000():
    model = _mlp()
    assert list(model.params()) == ["W_0", "b_0", "W_2", "b_2"]
    X = np.random.default_rng(0).standard_normal((6, 5))
    y = np.array([0, 1, 2, 1, 0, 2])
    loss = CrossEntropyLoss()
    model.backward(loss.backward(model.forward(X), y))
    assert list(model.grads()) == ["W_0", "b_0", "W_2", "b_2"]
    assert {k: v.shape for k, v in model.grads().items()} == {k: v.shape for k, v in model.params().items()}
    assert model.n_params == 5 * 7 + 7 + 7 * 3 + 3
    assert Sequential is NeuralNetwork


def test_params_are_live():
    model = _mlp()
    X = np.random.default_rng(1).standard_normal((4, 5))
    before = model(X).copy()
    p = model.params()
    assert p["W_0"] is model.layers[0].params["W"]
    p["b_2"][1] += 10.0
    after = model(X)
    np.testing.assert_allclose(after[:, 1] - before[:, 1], 10.0, rtol=1e-12)
    np.testing.assert_array_equal(after[:, [0, 2]], before[:, [0, 2]])


@pytest.mark.parametrize(
    "act, loss, targets",
    [
        (Tanh, MSELoss(), "reg"),
        (Sigmoid, MSELoss("half"), "reg"),
        (ReLU, CrossEntropyLoss(), "labels"),
        (Tanh, CrossEntropyLoss(), "onehot"),
    ],
)
@settings(derandomize=True)  # a fixed sequence of draws: the same examples on every run
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5))
def test_whole_network_gradients_match_finite_differences(act, loss, targets, seed, n):
    rng = np.random.default_rng(seed)
    model = NeuralNetwork([Dense(3, 4, rng=rng), act(), Dense(4, 3, rng=rng)])
    for p in model.params().values():
        p[...] = rng.standard_normal(p.shape)
    X = rng.standard_normal((n, 3))
    if targets == "reg":
        y = rng.standard_normal((n, 3))
    elif targets == "labels":
        y = rng.integers(0, 3, n)
    else:
        y = np.eye(3)[rng.integers(0, 3, n)]
    if act is ReLU:
        # Keep every pre-activation z = X @ W0 + b0 off the kink by more than the finite differences
        # move it: a step of 2h on one entry of W0, b0 or X shifts z by at most 2h * max(1, |X|, |W0|).
        z = model.layers[0].forward(X)
        reach = 2 * FD_STEP * max(1.0, np.abs(X).max(), np.abs(model.layers[0].params["W"]).max())
        assume(np.abs(z).min() > max(1e-3, 4 * reach))
    pred = model.forward(X)
    dX = model.backward(loss.backward(pred, y))
    f = lambda: loss.forward(model.forward(Xw), y)  # noqa: E731
    Xw = X.copy()
    for name, p in model.params().items():
        num = numerical_grad(f, p, eps=FD_STEP)
        assert rel_error(model.grads()[name], num) < TOL or np.abs(model.grads()[name] - num).max() < 1e-9, name
    num_x = numerical_grad(f, Xw, eps=FD_STEP)
    assert rel_error(dX, num_x) < TOL or np.abs(dX - num_x).max() < 1e-9
    assert model.input_grad is dX


def test_intermediate_gradients_seed003():
    """Seed 003: one sigmoid neuron, BCE; dL/dz = -0.5, dL/da = -2, dW = [-1, -0.5], db = -0.5."""
    dense = Dense(2, 1)
    dense.params["W"][:] = np.array([[0.5], [-1.0]])
    model = NeuralNetwork([dense, Sigmoid()])
    x = np.array([[2.0, 1.0]])
    y = np.array([[1.0]])
    loss = BCELoss()
    a = model.forward(x)
    assert loss(a, y) == pytest.approx(np.log(2), rel=1e-15)
    model.backward(loss.backward(a, y))
    np.testing.assert_allclose(model.output_grads[0], [[-0.5]], rtol=1e-15)  # dL/dz
    np.testing.assert_allclose(model.output_grads[1], [[-2.0]], rtol=1e-15)  # dL/da
    np.testing.assert_allclose(model.grads()["W_0"], [[-1.0], [-0.5]], rtol=1e-15)
    np.testing.assert_allclose(model.grads()["b_0"], [-0.5], rtol=1e-15)
    np.testing.assert_allclose(model.outputs[0], [[0.0]])
    np.testing.assert_allclose(model.outputs[1], [[0.5]])
    np.testing.assert_allclose(model.input_grad, [[-0.25, 0.5]], rtol=1e-15)


class Square(Layer):
    """A user's own layer: y = x * x * scale, with a parameter."""

    def __init__(self, width):
        super().__init__()
        self.params = {"scale": np.full(width, 1.5)}
        self.grads = {"scale": np.zeros(width)}

    def forward(self, x, training=True):
        self.x = x
        return x * x * self.params["scale"]

    def backward(self, dy):
        self.grads["scale"] = (dy * self.x * self.x).sum(0)
        return dy * 2 * self.x * self.params["scale"]


class Bare:
    """A layer that does not derive from Layer at all (duck typing)."""

    def __init__(self):
        self.params = {}
        self.grads = {}

    def forward(self, x, training=True):
        return 3.0 * x

    def backward(self, dy):
        return 3.0 * dy


def test_custom_user_layers_in_network():
    rng = np.random.default_rng(3)
    model = NeuralNetwork([Dense(3, 4, rng=rng), Square(4), Bare(), Dense(4, 2, rng=rng)])
    assert list(model.params()) == ["W_0", "b_0", "scale_1", "W_3", "b_3"]
    X = rng.standard_normal((5, 3))
    y = rng.standard_normal((5, 2))
    loss = MSELoss()
    model.backward(loss.backward(model.forward(X), y))
    f = lambda: loss.forward(model.forward(X), y)  # noqa: E731
    for name, p in model.params().items():
        assert rel_error(model.grads()[name], numerical_grad(f, p)) < TOL, name


def test_custom_layer_returning_wrong_shape_is_named():
    class Broken(Bare):
        def backward(self, dy):
            return dy[:, :1]

    model = NeuralNetwork([Dense(3, 2, seed=0), Broken()])
    model.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"layer 1 .*\(4, 1\).*expected \(4, 2\)"):
        model.backward(np.ones((4, 2)))


def test_zero_grad_and_flat_params_roundtrip():
    model = _mlp()
    X = np.random.default_rng(4).standard_normal((3, 5))
    model.backward(np.ones_like(model.forward(X)))
    assert any(np.any(g != 0) for g in model.grads().values())
    fg = model.flat_grads()
    assert fg.shape == (model.n_params,)
    np.testing.assert_array_equal(fg, np.concatenate([g.ravel() for g in model.grads().values()]))
    model.zero_grad()
    assert all(np.all(g == 0) for g in model.grads().values())
    v = model.flat_params()
    assert v.shape == (model.n_params,)
    orig = model.params()["W_0"].flat[0]
    v[0] += 1.0  # a copy: the model is unchanged
    assert model.params()["W_0"].flat[0] == orig
    W0 = model.params()["W_0"]
    new = np.arange(model.n_params, dtype=float)
    model.set_flat_params(new)
    np.testing.assert_array_equal(model.flat_params(), new)
    assert model.params()["W_0"] is W0  # written in place
    with pytest.raises(ValueError, match=rf"\({model.n_params},\).*\(3,\)"):
        model.set_flat_params(np.zeros(3))


def test_lazy_layers_in_network():
    model = NeuralNetwork([Dense(4, seed=0), Tanh(), Dense(2, seed=1)])
    assert model.params() == {} and model.n_params == 0
    out = model.forward(np.ones((3, 6)))
    assert out.shape == (3, 2)
    assert {k: v.shape for k, v in model.params().items()} == {"W_0": (6, 4), "b_0": (4,), "W_2": (4, 2), "b_2": (2,)}


def test_fused_softmax_dense_with_probability_ce():
    """Seed 002 style: Dense(activation='softmax') then CE on probabilities, equal to CE on logits."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((4, 3))
    y = np.array([0, 2, 1, 2])
    fused = NeuralNetwork([Dense(3, 3, activation="softmax", seed=0)])
    plain = NeuralNetwork([Dense(3, 3, seed=0)])
    lp, ll = CrossEntropyLoss(from_logits=False), CrossEntropyLoss()
    pf, pl = fused.forward(X), plain.forward(X)
    assert lp(pf, y) == pytest.approx(ll(pl, y), rel=1e-12)
    fused.backward(lp.backward(pf, y))
    plain.backward(ll.backward(pl, y))
    for k in plain.grads():
        np.testing.assert_allclose(fused.grads()[k], plain.grads()[k], rtol=1e-10, atol=1e-14)


def test_network_errors():
    model = _mlp()
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(np.ones((2, 3)))
    with pytest.raises(ValueError, match="empty batch"):
        model.forward(np.zeros((0, 5)))
    X = np.ones((2, 5))
    X[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf .*\(1, 3\).*allow_nonfinite"):
        model.forward(X)
    assert np.isnan(NeuralNetwork(model.layers, allow_nonfinite=True).forward(X)).any()
    model.forward(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"\(2, 4\).*expected \(2, 3\)"):
        model.backward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"Dense layer 2 \(Dense\(6, 3\)\) expected input of shape \(n_samples, 6\), got \(2, 7\)"):
        NeuralNetwork([Dense(5, 7), ReLU(), Dense(6, 3)]).forward(np.ones((2, 5)))
    with pytest.raises(TypeError, match="layer 1 .*missing"):
        NeuralNetwork([Dense(2, 2), object()])
    with pytest.raises(TypeError, match=r"ReLU\(\.\.\.\)"):
        NeuralNetwork([Dense(2, 2), ReLU])


def test_summary_and_repr():
    model = _mlp()
    s = model.summary()
    assert "66 parameters" in s and "W (5, 7)" in s and "Dense(7, 3)" in s and "ReLU()" in s
    r = repr(model)
    assert "(0): Dense(5, 7)" in r and "(1): ReLU()" in r and "66 parameters" in r


def test_float32_network_stays_float32():
    model = NeuralNetwork([Dense(3, 4, dtype=np.float32, seed=0), Softmax()])
    y = model.forward(np.ones((2, 3), dtype=np.float32))
    assert y.dtype == np.float32
    dX = model.backward(np.ones((2, 4), dtype=np.float32))
    assert dX.dtype == np.float32
    assert all(g.dtype == np.float32 for g in model.grads().values())


def test_perturbed_losses_delegates_when_available():
    perturb = pytest.importorskip("verigrad.nn.perturb")
    assert hasattr(perturb, "perturbed_losses")
    rng = np.random.default_rng(6)
    model = NeuralNetwork([Dense(3, 4, rng=rng), Tanh(), Dense(4, 2, rng=rng)])
    X, y = rng.standard_normal((5, 3)), np.array([0, 1, 1, 0, 1])
    loss = CrossEntropyLoss()
    steps = np.array([[1e-3, -1e-3], [2e-3, 0.0]])
    out = model.perturbed_losses("W_0", np.array([0, 5]), steps, X, y, loss)
    W = model.params()["W_0"]
    for i, idx in enumerate([0, 5]):
        for j in range(2):
            old = W.flat[idx]
            W.flat[idx] = old + steps[i, j]
            expected = loss.forward(model.forward(X), y)
            W.flat[idx] = old
            assert out[i, j] == pytest.approx(expected, rel=1e-12, abs=1e-14)


def test_backward_without_input_grad_gives_same_param_grads():
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
    loss = CrossEntropyLoss()
    a, b = _mlp(), _mlp()
    ga = a.backward(loss.backward(a.forward(X), y))
    gb = b.backward(loss.backward(b.forward(X), y), input_grad=False)
    assert ga.shape == X.shape and gb is None and b.input_grad is None
    for k in a.grads():
        np.testing.assert_array_equal(a.grads()[k], b.grads()[k])
    for u, v in zip(a.output_grads, b.output_grads):
        np.testing.assert_array_equal(u, v)
    # a first layer that is not a Dense still returns dX
    c = NeuralNetwork([Tanh(), Dense(5, 2, seed=0)])
    assert c.backward(np.ones_like(c.forward(X)), input_grad=False).shape == X.shape


def test_input_edited_to_nonfinite_after_a_checked_forward_still_raises():
    """The finite check of a small input is remembered only while the array is byte for byte the same."""
    model = _mlp()
    X = np.random.default_rng(2).standard_normal((4, 5))
    model.forward(X)
    model.forward(X)
    X[3, 4] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(first at index \(3, 4\)"):
        model.forward(X)
    X[3, 4] = 1.0
    model.forward(X)
    big = np.random.default_rng(3).standard_normal((300, 5))  # beyond the remembered size
    model.forward(big)
    big[299, 0] = -np.inf
    with pytest.raises(ValueError, match=r"X contains NaN or inf \(first at index \(299, 0\)"):
        model.forward(big)


def test_params_and_grads_names_follow_edits_of_the_layers_list():
    model = _mlp()
    assert list(model.params()) == ["W_0", "b_0", "W_2", "b_2"]
    model.layers.append(Dense(3, 2, seed=5))
    assert list(model.params()) == ["W_0", "b_0", "W_2", "b_2", "W_3", "b_3"]
    model.forward(np.ones((2, 5)))
    model.backward(np.ones((2, 2)))
    assert list(model.grads()) == ["W_0", "b_0", "W_2", "b_2", "W_3", "b_3"]


def test_backward_after_a_failed_forward_does_not_use_the_earlier_forward():
    """A forward that raised leaves no cache from an earlier forward that backward could silently use."""
    model = _mlp()
    model.forward(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"expected input of shape \(n_samples, 5\), got \(4, 6\)"):
        model.forward(np.ones((4, 6)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward(np.ones((4, 3)))
    layer = model.layers[0]
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones((4, 7)))
