"""Third-party style: CS231n-assignment layer functions checked with verigrad.

The code under test is written the way the assignment's ``layers.py`` is: ``*_forward`` returns
``(out, cache)``, ``*_backward(dout, cache)`` returns the input gradients, losses return ``(loss, dx)``.
The user checks them the natural way: ``check_gradients(lambda x: layer_forward(x, w, b)[0], dx, x, dout)``
(or without the ``[0]``: verigrad takes the first item of an ``(out, cache)`` tuple).
Each seeded bug is a one-line mistake students make; the checker must name its kind.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pytest

from verigrad.check import check_gradients

# ------------------------------------------------------------------------------------------------
# the third-party code (``bug`` selects a seeded mistake; None is the correct version)
# ------------------------------------------------------------------------------------------------


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    N = x.shape[0]
    out = x.reshape(N, -1).dot(w) + b
    return out, (x, w, b)


def affine_backward(dout: np.ndarray, cache: tuple, bug: Optional[str] = None) -> tuple:
    x, w, b = cache
    N = x.shape[0]
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(N, -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    if bug == "dw_transposed":
        dw = dout.T.dot(x.reshape(N, -1))
    elif bug == "dx_sign":
        dx = -dx
    elif bug == "dw_factor2":
        dw = 2 * dw
    elif bug == "db_mean":
        db = np.mean(dout, axis=0)
    elif bug == "dw_one_column":
        dw[:, 2] = 0.5 * dw[:, 2] + 1.0
    elif bug == "db_no_sum":
        db = dout
    return dx, dw, db


def relu_forward(x: np.ndarray, bug: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
    if bug == "inplace":
        x[x < 0] = 0  # the classic in-place "optimisation": the caller's x is changed
        return x, x
    return np.maximum(0, x), x


def relu_backward(dout: np.ndarray, cache: np.ndarray, bug: Optional[str] = None) -> np.ndarray:
    x = cache
    if bug == "derivative_is_x":
        return dout * np.maximum(0, x)
    if bug == "leaky_mask":
        return dout * np.where(x > 0, 1.0, 0.1)
    return dout * (x > 0)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    out = 1.0 / (1.0 + np.exp(-x))
    return out, (x, out)


def sigmoid_backward(dout: np.ndarray, cache: tuple, bug: Optional[str] = None) -> np.ndarray:
    x, out = cache
    if bug == "wrong_cache":  # s(1-s) evaluated on the input instead of the output
        return dout * x * (1 - x)
    if bug == "derivative_is_s":
        return dout * out
    return dout * out * (1 - out)


def softmax_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    s = e / e.sum(axis=1, keepdims=True)
    return s, s


def softmax_backward(dout: np.ndarray, cache: np.ndarray, bug: Optional[str] = None) -> np.ndarray:
    s = cache
    if bug == "diagonal_only":
        return dout * s * (1 - s)
    return s * (dout - np.sum(dout * s, axis=1, keepdims=True))


def softmax_loss(x: np.ndarray, y: np.ndarray, bug: Optional[str] = None) -> tuple[float, np.ndarray]:
    shifted = x - np.max(x, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    if bug == "plus_one":
        dx[np.arange(N), y] += 1
    else:
        dx[np.arange(N), y] -= 1
    if bug != "missing_1/N":
        dx /= N
    return loss, dx


def svm_loss(x: np.ndarray, y: np.ndarray, bug: Optional[str] = None) -> tuple[float, np.ndarray]:
    N = x.shape[0]
    correct = x[np.arange(N), y]
    margins = np.maximum(0, x - correct[:, None] + 1.0)
    margins[np.arange(N), y] = 0
    loss = np.sum(margins) / N
    num_pos = np.sum(margins > 0, axis=1)
    dx = np.zeros_like(x)
    dx[margins > 0] = 1
    if bug != "no_correct_class_term":
        dx[np.arange(N), y] -= num_pos
    dx /= N
    if bug == "sign":
        dx = -dx
    return loss, dx


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _caught(rep: Any, kind: str) -> None:
    assert not rep.passed
    assert rep.diagnosis.kind == kind, (rep.diagnosis.kind, rep.diagnosis.message)
    w = rep.worst
    assert w is not None and w.abs_error > 0 and len(w.index) == rep.shape.__len__()


def _affine_data(seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 2, 3))
    w = rng.standard_normal((6, 5))
    b = rng.standard_normal(5)
    dout = rng.standard_normal((4, 5))
    return x, w, b, dout


# ------------------------------------------------------------------------------------------------
# affine
# ------------------------------------------------------------------------------------------------


def test_affine_correct_passes_for_x_w_b():
    x, w, b, dout = _affine_data()
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    assert check_gradients(lambda x: affine_forward(x, w, b)[0], dx, x, dout).passed
    assert check_gradients(lambda w: affine_forward(x, w, b)[0], dw, w, dout).passed
    assert check_gradients(lambda b: affine_forward(x, w, b)[0], db, b, dout).passed


def test_affine_forward_returning_out_cache_tuple_is_accepted():
    x, w, b, dout = _affine_data(1)
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    rep = check_gradients(lambda w: affine_forward(x, w, b), dw, w, dout)
    assert rep.passed
    assert any("first item" in n for n in rep.notes)
    bad = check_gradients(lambda w: affine_forward(x, w, b), 2 * dw, w, dout)
    assert bad.diagnosis.kind == "scale"


@pytest.mark.parametrize("bug,arg,kind", [
    ("dw_transposed", "w", "transpose"),
    ("dx_sign", "x", "sign"),
    ("dw_factor2", "w", "scale"),
    ("db_mean", "b", "scale"),
    ("dw_one_column", "w", "partial"),
])
def test_affine_seeded_bugs(bug, arg, kind):
    x, w, b, dout = _affine_data(2)
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache, bug=bug)
    fn = {"x": lambda v: affine_forward(v, w, b)[0], "w": lambda v: affine_forward(x, v, b)[0],
          "b": lambda v: affine_forward(x, w, v)[0]}[arg]
    grad = {"x": dx, "w": dw, "b": db}[arg]
    point = {"x": x, "w": w, "b": b}[arg]
    rep = check_gradients(fn, grad, point, dout, name=arg, batch_size=x.shape[0])
    _caught(rep, kind)
    assert rep.name == arg
    if bug == "db_mean":
        assert rep.diagnosis.details["factor_name"] == "1/N=1/4"
    if bug == "dw_factor2":
        assert rep.diagnosis.details["factor_name"] == "2"
    if bug == "dw_one_column":
        assert rep.diagnosis.details["columns"] == [2]
        assert rep.worst.index[1] == 2


def test_affine_db_without_batch_sum_gets_a_specific_error():
    x, w, b, dout = _affine_data(3)
    _, cache = affine_forward(x, w, b)
    _, _, db = affine_backward(dout, cache, bug="db_no_sum")
    with pytest.raises(ValueError, match=r"grad has shape \(4, 5\).*\(5,\).*sum over axis 0"):
        check_gradients(lambda v: affine_forward(x, w, v)[0], db, b, dout)


# ------------------------------------------------------------------------------------------------
# relu, sigmoid, softmax layers
# ------------------------------------------------------------------------------------------------


def test_relu_correct_passes_with_exact_zeros():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 6))
    x[0, :3] = 0.0          # exactly at the kink
    x[1, 0] = 1e-9          # within a step of it
    dout = rng.standard_normal(x.shape)
    dx = relu_backward(dout, relu_forward(x)[1])
    rep = check_gradients(lambda v: relu_forward(v)[0], dx, x, dout)
    assert rep.passed, str(rep)
    assert rep.diagnosis.kind == "kink" and (0, 0) in rep.kinks
    # relu'(0) = 1 (a ">= 0" mask) is as valid a subgradient as relu'(0) = 0
    rep = check_gradients(lambda v: relu_forward(v)[0], dout * (x >= 0), x, dout)
    assert rep.passed, str(rep)


@pytest.mark.parametrize("bug,kind", [("derivative_is_x", "mismatch"), ("leaky_mask", "mismatch")])
def test_relu_seeded_bugs(bug, kind):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 6))
    dout = rng.standard_normal(x.shape)
    dx = relu_backward(dout, x, bug=bug)
    _caught(check_gradients(lambda v: relu_forward(v)[0], dx, x, dout), kind)


def test_relu_forward_mutating_its_input_is_caught_and_x_is_untouched():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 4))
    x0 = x.copy()
    dout = rng.standard_normal(x.shape)
    dx = relu_backward(dout, x.copy())
    rep = check_gradients(lambda v: relu_forward(v, bug="inplace")[0], dx, x, dout)
    assert rep.diagnosis.kind == "mutates_input" and not rep.passed
    assert np.array_equal(x, x0)


@pytest.mark.parametrize("bug,kind", [(None, "ok"), ("wrong_cache", "mismatch"), ("derivative_is_s", "mismatch")])
def test_sigmoid_layer(bug, kind):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 5)) * 2
    dout = rng.standard_normal(x.shape)
    dx = sigmoid_backward(dout, sigmoid_forward(x)[1], bug=bug)
    rep = check_gradients(lambda v: sigmoid_forward(v)[0], dx, x, dout)
    if bug is None:
        assert rep.passed, str(rep)
    else:
        _caught(rep, kind)


@pytest.mark.parametrize("bug,kind", [(None, "ok"), ("diagonal_only", "mismatch")])
def test_softmax_layer(bug, kind):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 5))
    dout = rng.standard_normal(x.shape)
    dx = softmax_backward(dout, softmax_forward(x)[1], bug=bug)
    rep = check_gradients(lambda v: softmax_forward(v)[0], dx, x, dout)
    if bug is None:
        assert rep.passed, str(rep)
    else:
        _caught(rep, kind)


# ------------------------------------------------------------------------------------------------
# losses returning (loss, dx)
# ------------------------------------------------------------------------------------------------


def test_softmax_loss_correct_passes_with_int_labels_and_tuple_output():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, 4))
    y = rng.integers(0, 4, size=6)
    loss, dx = softmax_loss(x, y)
    assert check_gradients(lambda v: softmax_loss(v, y)[0], dx, x).passed
    rep = check_gradients(lambda v: softmax_loss(v, y), dx, x)   # (loss, dx) tuple: loss is used
    assert rep.passed


@pytest.mark.parametrize("bug,kind", [("missing_1/N", "scale"), ("plus_one", "partial")])
def test_softmax_loss_seeded_bugs(bug, kind):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((6, 4))
    y = rng.integers(0, 4, size=6)
    _, dx = softmax_loss(x, y, bug=bug)
    rep = check_gradients(lambda v: softmax_loss(v, y)[0], dx, x, batch_size=6)
    _caught(rep, kind)
    if bug == "missing_1/N":
        assert rep.diagnosis.details["factor_name"] == "N=6"
    else:
        bad = {tuple(e) for e in rep.diagnosis.details["entries"]}
        assert bad == {(i, int(y[i])) for i in range(6)}


def test_svm_loss_correct_passes_at_exact_zero_margins():
    rng = np.random.default_rng(11)
    # quarter-integers: margins s_j - s_y + 1 that are exactly 0 are representable
    x = rng.integers(-8, 8, size=(5, 4)) / 4.0
    y = rng.integers(0, 4, size=5)
    x[0, (y[0] + 1) % 4] = x[0, y[0]] - 1.0   # one margin exactly at its kink
    _, dx = svm_loss(x, y)
    rep = check_gradients(lambda v: svm_loss(v, y)[0], dx, x)
    assert rep.passed, str(rep)


@pytest.mark.parametrize("bug,kind", [("no_correct_class_term", "partial"), ("sign", "sign")])
def test_svm_loss_seeded_bugs(bug, kind):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 5))
    y = rng.integers(0, 5, size=6)
    _, dx = svm_loss(x, y, bug=bug)
    _caught(check_gradients(lambda v: svm_loss(v, y)[0], dx, x), kind)


def test_float32_layer_code_passes_and_a_one_percent_error_fails():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((8, 2, 3)).astype(np.float32)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    dout = rng.standard_normal((8, 5)).astype(np.float32)
    _, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    assert dw.dtype == np.float32
    assert check_gradients(lambda v: affine_forward(x, v, b)[0], dw, w, dout).passed
    assert check_gradients(lambda v: affine_forward(v, w, b)[0], dx, x, dout).passed
    rep = check_gradients(lambda v: affine_forward(x, v, b)[0], dw * np.float32(1.01), w, dout)
    assert rep.diagnosis.kind == "scale"
