"""Every bad argument raises a specific error naming the argument, what was received and what was expected."""

from __future__ import annotations

import numpy as np
import pytest

from verigrad.check import check_gradients, check_layers, check_params, gradient_check

X = np.arange(6, dtype=float).reshape(2, 3) / 7
SIN = np.sin


def test_grad_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"grad has shape \(3, 3\) but x has shape \(2, 3\)"):
        check_gradients(SIN, np.ones((3, 3)), X, np.ones((2, 3)))


def test_transposed_grad_of_non_square_x_is_a_transpose_diagnosis_not_an_error():
    W = np.random.default_rng(0).standard_normal((3, 5))
    A = np.random.default_rng(1).standard_normal((4, 3))
    dY = np.random.default_rng(2).standard_normal((4, 5))
    rep = check_gradients(lambda w: A @ w, (A.T @ dY).T, W, dY)
    assert not rep.passed
    assert rep.diagnosis.kind == "transpose"
    assert rep.diagnosis.details["transpose_matches"] is True
    assert "(5, 3)" in rep.diagnosis.message and "(3, 5)" in rep.diagnosis.message


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x(bad):
    x = X.copy()
    x[1, 2] = bad
    with pytest.raises(ValueError, match=r"x contains non-finite values \(first at index \(1, 2\)\)"):
        check_gradients(SIN, np.cos(X), x, np.ones((2, 3)))


def test_non_finite_grad():
    g = np.cos(X)
    g[0, 0] = np.nan
    with pytest.raises(ValueError, match="grad contains non-finite"):
        check_gradients(SIN, g, X, np.ones((2, 3)))


def test_non_finite_params():
    P = {"W": np.array([1.0, np.inf])}
    with pytest.raises(ValueError, match=r"params\['W'\] contains non-finite"):
        check_params(lambda: float(np.sum(P["W"])), P, {"W": np.ones(2)})


def test_integer_x():
    with pytest.raises(TypeError, match=r"x must be a floating-point array; got dtype int"):
        check_gradients(SIN, np.ones((2, 3)), np.ones((2, 3), dtype=int), np.ones((2, 3)))


def test_fn_returning_non_array():
    with pytest.raises(TypeError, match="fn must return a NumPy array or a scalar; got str"):
        check_gradients(lambda x: "hello", np.ones((2, 3)), X, np.ones((2, 3)))
    with pytest.raises(TypeError, match="fn must return a NumPy array or a scalar; got NoneType"):
        check_gradients(lambda x: None, np.ones((2, 3)), X, np.ones((2, 3)))


def test_fn_not_callable():
    with pytest.raises(TypeError, match="fn must be callable"):
        check_gradients(3, np.ones((2, 3)), X)


def test_dldf_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"dLdf has shape \(3, 2\) but fn\(x\) has shape \(2, 3\)"):
        check_gradients(SIN, np.cos(X), X, np.ones((3, 2)))


def test_missing_dldf_for_array_output():
    with pytest.raises(ValueError, match=r"fn returns an array of shape \(2, 3\), not a scalar: pass dLdf"):
        check_gradients(SIN, np.cos(X), X)


def test_scalar_dldf_broadcasts():
    rep = check_gradients(SIN, np.cos(X), X, 1)
    assert rep.passed
    rep = check_gradients(SIN, 2 * np.cos(X), X, 2.0)
    assert rep.passed


@pytest.mark.parametrize("opt,val,match", [
    ("method", "forward", r"method='forward' is not valid; choose one of \['auto', 'central', 'complex', 'richardson'\]"),
    ("mode", "quick", r"mode='quick' is not valid; choose one of \['full', 'sample', 'fast'\]"),
    ("eps", 0.0, r"eps must be finite and > 0; got 0.0"),
    ("eps", -1e-3, r"eps must be finite and > 0"),
    ("atol", -1.0, r"atol must be finite and >= 0"),
    ("k", 0, r"k must be a positive integer"),
])
def test_bad_options(opt, val, match):
    with pytest.raises(ValueError, match=match):
        check_gradients(SIN, np.cos(X), X, np.ones((2, 3)), **{opt: val})


def test_unknown_option_lists_valid_ones():
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['tolerance'\]; valid options: \[.*'atol'"):
        check_gradients(SIN, np.cos(X), X, np.ones((2, 3)), tolerance=1e-3)


def test_rng_must_be_generator():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        check_gradients(SIN, np.cos(X), X, np.ones((2, 3)), rng=np.random.RandomState(0))


def test_check_params_name_mismatch():
    P = {"W": np.ones(2), "b": np.ones(1)}
    with pytest.raises(ValueError, match=r"grads has no entry for \['b'\]"):
        check_params(lambda: 0.0, P, {"W": np.ones(2)})
    with pytest.raises(ValueError, match=r"grads has entries \['c'\] that are not in params"):
        check_params(lambda: 0.0, P, {"W": np.ones(2), "b": np.ones(1), "c": np.ones(1)})


def test_check_params_requires_live_arrays():
    with pytest.raises(TypeError, match=r"params\['W'\] must be a live NumPy array"):
        check_params(lambda: 0.0, {"W": [1.0, 2.0]}, {"W": np.ones(2)})


def test_check_params_grad_shape():
    with pytest.raises(ValueError, match=r"grads\['W'\] has shape \(3,\) but params\['W'\] has shape \(2,\)"):
        check_params(lambda: 0.0, {"W": np.ones(2)}, {"W": np.ones(3)})


def test_loss_must_return_scalar():
    P = {"W": np.ones(2)}
    with pytest.raises(TypeError, match=r"loss must return a scalar; got an array of shape \(2,\)"):
        check_params(lambda: P["W"] * 2, P, {"W": np.ones(2)})


def test_model_protocol_errors():
    with pytest.raises(TypeError, match=r"model must have methods \['forward', 'backward', 'params', 'grads'\]"):
        gradient_check(object(), X, None, object())

    class M:
        def forward(self, X, training=True):
            return X

        def backward(self, g):
            return g

        def params(self):
            return {}

        def grads(self):
            return {}

    with pytest.raises(TypeError, match=r"loss_fn must have methods \['forward', 'backward'\]"):
        gradient_check(M(), X, None, object())


def test_check_layers_needs_layers():
    with pytest.raises(TypeError, match="model must have a 'layers' list"):
        check_layers(object(), X)
