"""Every layer against its NumPy formula (written here independently) and against central differences."""

from __future__ import annotations

import numpy as np
import pytest
from _fd import numerical_grad, rel_error
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from verigrad.nn.activations import (
    ACTIVATIONS,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    SoftMax,
    Tanh,
    TanH,
)
from verigrad.nn.layers import Dense, FullyConnected

TOL = 1e-7


def _ref_softmax(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        e = np.exp(x[i] - x[i].max())
        out[i] = e / e.sum()
    return out


# name -> (factory, independent reference formula, whether the op has a kink at 0)
OPS = {
    "identity": (Identity, lambda x: x.copy(), False),
    "sigmoid": (Sigmoid, lambda x: np.exp(x) / (1.0 + np.exp(x)), False),
    "tanh": (Tanh, lambda x: np.sinh(x) / np.cosh(x), False),
    "relu": (ReLU, lambda x: x * (x > 0), True),
    "leaky_relu": (lambda: LeakyReLU(alpha=0.1), lambda x: np.where(x >= 0, x, 0.1 * x), True),
    "softmax": (Softmax, _ref_softmax, False),
}


def _values(kink: bool):
    floats = st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False)
    if kink:
        floats = floats.filter(lambda v: abs(v) > 1e-3)  # stay off the kink for finite differences
    return floats


@st.composite
def op_input(draw, kink: bool):
    n = draw(st.integers(1, 5))
    d = draw(st.integers(1, 5))
    x = draw(hnp.arrays(np.float64, (n, d), elements=_values(kink)))
    dy = draw(hnp.arrays(np.float64, (n, d), elements=st.floats(-2.0, 2.0)))
    return x, dy


def test_table_covers_every_activation():
    assert set(OPS) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(OPS))
@given(data=st.data())
def test_activation_forward_and_backward(name, data):
    factory, reference, kink = OPS[name]
    x, dy = data.draw(op_input(kink))
    layer = factory()
    y = layer.forward(x)
    np.testing.assert_allclose(y, reference(x), rtol=1e-12, atol=1e-15)
    dx = layer.backward(dy)
    assert dx.shape == x.shape
    xw = x.copy()
    num = numerical_grad(lambda: np.sum(layer.apply(xw) * dy), xw)
    assert rel_error(dx, num) < TOL or np.abs(dx - num).max() < 1e-9
    # seed-002 form: derivative evaluated at x
    np.testing.assert_array_equal(layer.backward(x, dy), dx)


@pytest.mark.parametrize("name", sorted(OPS))
def test_activation_backward_two_argument_form_uses_given_x(name):
    """backward(x, dy) evaluates at x, not at the cached input of the last forward."""
    factory, _, _ = OPS[name]
    rng = np.random.default_rng(1)
    x1 = rng.uniform(0.5, 2.0, (3, 4))
    x2 = -x1 if name != "identity" else x1 * 3
    dy = rng.standard_normal((3, 4))
    a, b = factory(), factory()
    a.forward(x1)
    b.forward(x2)
    np.testing.assert_array_equal(a.backward(x2, dy), b.backward(dy))


def test_softmax_backward_is_full_jacobian_product():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5))
    dy = rng.standard_normal((3, 5))
    layer = Softmax()
    s = layer.forward(x)
    dx = layer.backward(dy)
    for i in range(3):
        jac = np.diag(s[i]) - np.outer(s[i], s[i])
        np.testing.assert_allclose(dx[i], jac.T @ dy[i], rtol=1e-12, atol=1e-15)


def test_relu_derivative_at_zero_is_zero_leaky_is_alpha():
    x = np.array([[0.0, -1.0, 2.0]])
    dy = np.ones((1, 3))
    r = ReLU()
    r.forward(x)
    np.testing.assert_array_equal(r.backward(dy), [[0.0, 0.0, 1.0]])
    lr = LeakyReLU(alpha=0.25)
    lr.forward(x)
    np.testing.assert_array_equal(lr.backward(dy), [[0.25, 0.25, 1.0]])


def test_sigmoid_extremes_no_overflow():
    x = np.array([[-1000.0, -40.0, 0.0, 40.0, 1000.0]])
    layer = Sigmoid()
    y = layer.forward(x)  # RuntimeWarnings are errors in this test suite
    assert y[0, 0] == 0.0 and y[0, -1] == 1.0 and y[0, 2] == 0.5
    assert y[0, 1] > 0 and np.isclose(y[0, 1], np.exp(-40.0), rtol=1e-12)  # full relative precision
    g = layer.backward(np.ones_like(x))
    assert np.all(np.isfinite(g)) and g[0, 0] == 0.0 and g[0, -1] == 0.0


def test_softmax_extremes():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    s = Softmax().forward(x)
    np.testing.assert_allclose(s, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-15)


def test_aliases():
    assert TanH is Tanh and SoftMax is Softmax and FullyConnected is Dense


def test_activations_on_stacked_arrays():
    """apply works on (K, n, d) stacks (softmax over the last axis), as the fast checker uses it."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 5))
    for name, (factory, reference, _) in OPS.items():
        out = factory().apply(x)
        expected = np.stack([reference(xi) for xi in x])
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-15, err_msg=name)


# ------------------------------------------------------------------------------------------------
# Dense
# ------------------------------------------------------------------------------------------------
DENSE_ACTS = [None, "identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]


@pytest.mark.parametrize("activation", DENSE_ACTS)
@given(n=st.integers(1, 4), n_in=st.integers(1, 4), n_out=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_dense_forward_and_backward(activation, n, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    layer = Dense(n_in, n_out, activation=activation, rng=rng)
    layer.params["b"][:] = rng.standard_normal(n_out)  # biases start at zero; make them matter
    x = rng.standard_normal((n, n_in))
    dy = rng.standard_normal((n, n_out))
    W, b = layer.params["W"], layer.params["b"]
    z = np.einsum("ni,io->no", x, W) + b[None, :]
    kink = activation in ("relu", "leaky_relu")
    if kink and np.min(np.abs(z)) < 1e-3:
        return  # too close to the kink for a finite-difference comparison (rare)
    if activation in (None, "identity"):
        ref = z
    elif activation == "leaky_relu":  # default alpha of the fused activation
        ref = np.where(z >= 0, z, 0.01 * z)
    else:
        ref = OPS[activation][1](z)
    y = layer.forward(x)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-14)
    dx = layer.backward(dy)
    assert set(layer.grads) == {"W", "b"}
    xw = x.copy()
    loss = lambda: np.sum(layer.forward(xw) * dy)  # noqa: E731
    for arr, analytic in ((xw, dx), (W, layer.grads["W"]), (b, layer.grads["b"])):
        num = numerical_grad(loss, arr)
        assert rel_error(analytic, num) < TOL or np.abs(analytic - num).max() < 1e-9


def test_dense_grads_overwrite_not_accumulate():
    rng = np.random.default_rng(4)
    layer = Dense(3, 2, rng=rng)
    x = rng.standard_normal((5, 3))
    dy = rng.standard_normal((5, 2))
    layer.forward(x)
    layer.backward(dy)
    first = {k: v.copy() for k, v in layer.grads.items()}
    layer.forward(x)
    layer.backward(dy)
    for k in first:
        np.testing.assert_array_equal(layer.grads[k], first[k])
    np.testing.assert_allclose(layer.grads["W"], x.T @ dy, rtol=1e-14)
    np.testing.assert_allclose(layer.grads["b"], dy.sum(0), rtol=1e-14)


def test_dense_lazy_build_and_seed002_api():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((2, 3))
    dLdY = rng.standard_normal((2, 4))
    fc = FullyConnected(n_out=4, activation="identity", seed=0)
    assert fc.params == {} and not fc.built
    out = fc.forward(X)
    assert out.shape == (2, 4) and fc.n_in == 3
    assert fc.params["W"].shape == (3, 4) and fc.params["b"].shape == (4,)
    fc.backward(dLdY)
    assert fc.parameters is fc.params and fc.gradients is fc.grads
    for param in fc.parameters:
        f = fc.forward_with_param(param, X)
        live = fc.parameters[param]
        num = numerical_grad(lambda: np.sum(f(live) * dLdY), live)
        assert rel_error(fc.gradients[param], num) < TOL
    # positional lazy form
    assert Dense(4).n_out == 4 and Dense(4).n_in is None


def test_forward_with_param_restores_even_on_error():
    layer = Dense(3, 2, seed=0)
    W = layer.params["W"]
    f = layer.forward_with_param("W", np.ones((2, 3)))
    out = f(np.zeros((3, 2)))
    np.testing.assert_array_equal(out, np.zeros((2, 2)))
    assert layer.params["W"] is W
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        f(np.zeros((2, 3)))
    assert layer.params["W"] is W
    g = layer.forward_with_param("W", np.ones((2, 5)))  # wrong input width: forward raises
    with pytest.raises(ValueError):
        g(np.zeros((3, 2)))
    assert layer.params["W"] is W
    with pytest.raises(KeyError, match="'Q'"):
        layer.forward_with_param("Q", np.ones((2, 3)))


def test_dense_float32_stays_float32():
    layer = Dense(3, 2, dtype=np.float32, seed=0)
    assert layer.params["W"].dtype == np.float32 and layer.params["b"].dtype == np.float32
    x = np.ones((4, 3), dtype=np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32
    dx = layer.backward(np.ones((4, 2), dtype=np.float32))
    assert dx.dtype == np.float32 and layer.grads["W"].dtype == np.float32


def test_dense_rng_reproducible_and_independent_of_global_state():
    a = Dense(4, 3, seed=7).params["W"]
    np.random.seed(0)
    b = Dense(4, 3, seed=7).params["W"]
    c = Dense(4, 3, rng=np.random.default_rng(7)).params["W"]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, Dense(4, 3, seed=8).params["W"])


def test_dense_repr():
    assert repr(Dense(5, 7)) == "Dense(5, 7)"
    assert repr(Dense(n_out=4)) == "Dense(n_out=4)"
    assert repr(Dense(2, 3, activation="relu")) == "Dense(2, 3, activation='relu')"


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------
def test_dense_wrong_width_names_layer():
    layer = Dense(5, 7)
    layer.index = 2
    with pytest.raises(ValueError) as err:
        layer.forward(np.ones((6, 4)))
    assert str(err.value) == "Dense layer 2 (Dense(5, 7)) expected input of shape (n_samples, 5), got (6, 4)"
    with pytest.raises(ValueError, match=r"reshape\(1, -1\)"):
        layer.forward(np.ones(5))


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        ({"n_in": 3, "n_out": 2, "init": "bogus"}, ValueError, "xavier.*he_uniform"),
        ({"n_in": 3, "n_out": 2, "activation": "swish"}, ValueError, "leaky_relu.*softmax"),
        ({"n_in": 3, "n_out": 0}, ValueError, "n_out"),
        ({"n_in": 2.5, "n_out": 2}, TypeError, "n_in"),
        ({"n_in": 3, "n_out": 2, "dtype": np.int64}, TypeError, "dtype"),
        ({"n_in": 3, "n_out": 2, "rng": 0}, TypeError, "Generator"),
        ({"n_in": 3, "n_out": 2, "rng": np.random.default_rng(0), "seed": 1}, ValueError, "not both"),
        ({}, TypeError, "n_out"),
    ],
)
def test_dense_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        Dense(**kwargs)


def test_backward_before_forward_and_bad_dy():
    layer = Dense(3, 2)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 2)))
    layer.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        layer.backward(np.ones((4, 3)))
    act = Tanh()
    with pytest.raises(RuntimeError, match="before forward"):
        act.backward(np.ones((1, 2)))
    act.forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        act.backward(np.ones((3, 2)))


def test_leaky_relu_bad_alpha():
    with pytest.raises(TypeError, match="alpha"):
        LeakyReLU(alpha="0.1")
    with pytest.raises(ValueError, match="alpha"):
        LeakyReLU(alpha=float("nan"))


def test_get_activation_forms():
    from verigrad.nn.activations import get_activation

    assert get_activation(None) is None
    inst = Tanh()
    assert get_activation(inst) is inst
    assert isinstance(get_activation(ReLU), ReLU)
    assert isinstance(get_activation("SIGMOID"), Sigmoid)
    leaky = get_activation({"name": "leaky_relu", "alpha": 0.3})
    assert isinstance(leaky, LeakyReLU) and leaky.alpha == 0.3
    with pytest.raises(ValueError, match="unknown activation 'gelu'; valid names are: identity, leaky_relu"):
        get_activation("gelu")
    with pytest.raises(TypeError, match="activation must be"):
        get_activation(3)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softmax", "relu"])
def test_float32_extremes_no_warnings(name):
    x = np.array([[-1000.0, -88.0, 0.0, 88.0, 1000.0]], dtype=np.float32)
    layer = OPS[name][0]()
    y = layer.forward(x)
    assert y.dtype == np.float32 and np.all(np.isfinite(y))
    g = layer.backward(np.ones_like(x))
    assert g.dtype == np.float32 and np.all(np.isfinite(g))
