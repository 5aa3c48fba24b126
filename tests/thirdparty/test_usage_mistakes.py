"""Mistakes users make when *calling* the checker on third-party code, and what verigrad says.

A lambda that ignores its argument, a parameter dict holding copies, a memoised forward, the whole
``(dx, dw, db)`` tuple passed as ``grad``, a scalar function of a Python float.
"""

from __future__ import annotations

import numpy as np
import pytest

from verigrad.check import check_gradients, check_params


def _affine(x, w, b):
    return x @ w + b, (x, w, b)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2),
            rng.standard_normal((4, 2)))


def test_lambda_ignoring_its_argument_is_explained():
    x, w, b, dout = _data()
    w_copy = w.copy()                       # the point is a copy: the lambda reads w, not its argument
    rep = check_gradients(lambda v: _affine(x, w, b)[0], x.T @ dout, w_copy, dout, name="w")
    assert not rep.passed and rep.diagnosis.kind == "mismatch"
    assert rep.diagnosis.details["independent"] is True
    assert "does not change when w is perturbed" in rep.diagnosis.message


def test_lambda_reading_the_checked_array_itself_is_checked_in_place():
    x, w, b, dout = _data(5)
    w0 = w.copy()
    rep = check_gradients(lambda v: _affine(x, w, b)[0], x.T @ dout, w, dout, name="w")   # v unused, w live
    assert rep.passed, str(rep)
    assert any("perturbed in place and restored" in n for n in rep.notes)
    assert np.array_equal(w, w0)
    bad = check_gradients(lambda v: _affine(x, w, b)[0], 2 * x.T @ dout, w, dout, name="w")
    assert bad.diagnosis.kind == "scale"
    assert np.array_equal(w, w0)


def test_params_dict_of_copies_is_explained():
    x, w, b, dout = _data(1)
    w32 = w.astype(np.float32)

    def loss():
        return float(np.sum(_affine(x, w32, b)[0] * dout))

    rep = check_params(loss, {"w": w32.astype(np.float64)}, {"w": x.T @ dout})    # a float64 copy
    assert not rep.passed and rep.diagnosis.details.get("independent") is True
    assert "copy" in rep.diagnosis.message
    assert check_params(loss, {"w": w32}, {"w": x.T @ dout}).passed


def test_memoised_forward_keyed_on_the_input_is_explained():
    """A cache keyed on id(X) never sees the in-place perturbation of W: a stale cache."""
    x, w, b, dout = _data(2)
    memo = {}

    def forward(X):
        if id(X) not in memo:
            memo[id(X)] = _affine(X, w, b)[0]
        return memo[id(X)]

    rep = check_params(lambda: float(np.sum(forward(x) * dout)), {"w": w}, {"w": x.T @ dout})
    assert not rep.passed
    assert "stale cache" in rep.diagnosis.message


def test_whole_backward_tuple_as_grad_names_the_item_to_pass():
    x, w, b, dout = _data(3)
    grads = (dout @ w.T, x.T @ dout, dout.sum(axis=0))
    with pytest.raises(TypeError, match=r"grad is a tuple of 3 arrays.*item 1 has the shape of x: pass grad\[1\]"):
        check_gradients(lambda v: _affine(x, v, b)[0], grads, w, dout)


def test_wrong_tuple_item_for_dldf_is_named():
    x, w, b, dout = _data(4)

    def two(v):
        return v @ w, np.sin(v)          # shapes (4, 2) and (4, 3)

    with pytest.raises(ValueError, match=r"first item.*has shape \(4, 2\) but dLdf has shape \(4, 3\); item 1"):
        check_gradients(two, np.cos(x), x, np.ones((4, 3)))


def test_scalar_python_float_point_and_0d_output():
    rep = check_gradients(lambda v: np.asarray(np.sum(v ** 3)), 3 * 1.5 ** 2, 1.5)
    assert rep.passed and rep.shape == ()
    bad = check_gradients(lambda v: float(v ** 3), 2 * 1.5 ** 2, 1.5)
    assert not bad.passed and bad.diagnosis.kind in ("scale", "mismatch")


def test_python_list_output_is_an_array():
    x = np.array([0.3, -1.2])
    dout = np.array([1.0, 2.0])
    rep = check_gradients(lambda v: [float(np.sin(v[0])), float(v[0] * v[1])],
                          np.array([np.cos(0.3) + 2 * -1.2, 2 * 0.3]), x, dout)
    assert rep.passed, str(rep)


def test_column_output_with_a_flat_upstream_gradient():
    x = np.linspace(-1, 1, 4)
    rep = check_gradients(lambda v: np.tanh(v)[:, None], (1 - np.tanh(x) ** 2) * 2.0, x, np.full(4, 2.0))
    assert rep.passed, str(rep)
