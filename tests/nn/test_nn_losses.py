"""Losses: NumPy formulas written independently, central differences, forward_batch, extremes, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _fd import numerical_grad, rel_error
from hypothesis import given
from hypothesis import strategies as st

from verigrad.nn.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

TOL = 1e-7


# ---- independent references (plain loops, no shared helpers with the library) ------------------
def ref_mse_mean(p, y):
    return sum((a - b) ** 2 for a, b in zip(p.ravel(), y.ravel())) / p.size


def ref_mse_half(p, y):
    n = p.shape[0]
    return sum(0.5 * np.sum((p[i] - y[i]) ** 2) for i in range(n)) / n


def ref_mse_sum(p, y):
    return float(np.sum((p - y) ** 2))


def ref_ce_logits_labels(z, labels):
    total = 0.0
    for row, c in zip(z, labels):
        total += -(row[c] - math.log(sum(math.exp(v) for v in row)))
    return total / z.shape[0]


def ref_ce_logits_targets(z, t):
    total = 0.0
    for row, trow in zip(z, t):
        lse = math.log(sum(math.exp(v) for v in row))
        total += -sum(tc * (v - lse) for v, tc in zip(row, trow))
    return total / z.shape[0]


def ref_ce_probs_targets(p, t):
    return -sum(tc * math.log(pc) for prow, trow in zip(p, t) for pc, tc in zip(prow, trow)) / p.shape[0]


def ref_ce_probs_labels(p, labels):
    return -sum(math.log(p[i, c]) for i, c in enumerate(labels)) / p.shape[0]


def ref_bce(p, y):
    vals = [-(b * math.log(a) + (1 - b) * math.log(1 - a)) for a, b in zip(p.ravel(), y.ravel())]
    return sum(vals) / len(vals)


def ref_bce_logits(z, y):
    # log sigmoid(a) = -log1p(exp(-a)) and log(1 - sigmoid(a)) = log sigmoid(-a) = -log1p(exp(a)):
    # the naive log(1 - s) loses ~10 digits when s is near 1 (a of about 9, as drawn here)
    vals = []
    for a, b in zip(z.ravel(), y.ravel()):
        vals.append(b * math.log1p(math.exp(-a)) + (1 - b) * math.log1p(math.exp(a)))
    return sum(vals) / len(vals)


def _onehot(labels, c):
    t = np.zeros((labels.size, c))
    t[np.arange(labels.size), labels] = 1
    return t


# name -> (loss factory, reference, maker(rng, n, c) -> (pred, y))
CASES = {
    "mse_mean": (MSELoss, ref_mse_mean, lambda r, n, c: (r.standard_normal((n, c)), r.standard_normal((n, c)))),
    "mse_half": (lambda: MSELoss("half"), ref_mse_half, lambda r, n, c: (r.standard_normal((n, c)), r.standard_normal((n, c)))),
    "mse_sum": (lambda: MSELoss("sum"), ref_mse_sum, lambda r, n, c: (r.standard_normal((n, c)), r.standard_normal((n, c)))),
    "ce_logits_labels": (
        CrossEntropyLoss,
        ref_ce_logits_labels,
        lambda r, n, c: (r.standard_normal((n, c)) * 3, r.integers(0, c, n)),
    ),
    "ce_logits_onehot": (
        CrossEntropyLoss,
        ref_ce_logits_targets,
        lambda r, n, c: (r.standard_normal((n, c)) * 3, _onehot(r.integers(0, c, n), c)),
    ),
    "ce_logits_soft": (
        CrossEntropyLoss,
        ref_ce_logits_targets,
        lambda r, n, c: (r.standard_normal((n, c)), r.dirichlet(np.ones(c), n)),
    ),
    "ce_probs_onehot": (
        lambda: CrossEntropyLoss(from_logits=False),
        ref_ce_probs_targets,
        # probabilities off the simplex on purpose (never renormalised)
        lambda r, n, c: (r.uniform(0.05, 1.5, (n, c)), _onehot(r.integers(0, c, n), c)),
    ),
    "ce_probs_labels": (
        lambda: CrossEntropyLoss(from_logits=False),
        ref_ce_probs_labels,
        lambda r, n, c: (r.uniform(0.05, 1.5, (n, c)), r.integers(0, c, n)),
    ),
    "bce": (BCELoss, ref_bce, lambda r, n, c: (r.uniform(0.05, 0.95, (n, c)), r.uniform(0, 1, (n, c)))),
    "bce_with_logits": (
        BCEWithLogitsLoss,
        ref_bce_logits,
        lambda r, n, c: (r.standard_normal((n, c)) * 3, r.integers(0, 2, (n, c)).astype(float)),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
@given(n=st.integers(1, 6), c=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_loss_formula_gradient_and_batch(name, n, c, seed):
    factory, reference, maker = CASES[name]
    rng = np.random.default_rng(seed)
    pred, y = maker(rng, n, c)
    loss = factory()
    value = loss.forward(pred, y)
    assert isinstance(value, float)
    assert value == pytest.approx(reference(pred, y), rel=1e-12, abs=1e-14)
    assert loss(pred, y) == value
    grad = loss.backward(pred, y)
    assert grad.shape == pred.shape
    p = pred.copy()
    num = numerical_grad(lambda: loss.forward(p, y), p)
    assert rel_error(grad, num) < TOL or np.abs(grad - num).max() < 1e-9
    # forward_batch equals the loop over forward to rounding
    k = 3
    preds = np.stack([maker(rng, n, c)[0] for _ in range(k)])
    batch = loss.forward_batch(preds, y)
    assert batch.shape == (k,)
    np.testing.assert_allclose(batch, [loss.forward(q, y) for q in preds], rtol=1e-12, atol=1e-14)


def test_ce_backward_after_inplace_change_of_pred_is_not_stale():
    """backward must use the values of pred now, even if forward saw the same array before an edit."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 3))
    y = np.array([0, 2, 1, 1])
    loss = CrossEntropyLoss()
    loss.forward(z, y)
    z[1, 2] += 0.5  # in place, as a gradient checker does
    g = loss.backward(z, y)
    fresh = CrossEntropyLoss().backward(z.copy(), y)
    np.testing.assert_array_equal(g, fresh)
    loss.forward(z, y)
    np.testing.assert_array_equal(loss.backward(z, y), fresh)


def test_mse_reductions_relate():
    rng = np.random.default_rng(1)
    p, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    s = MSELoss("sum")(p, y)
    assert MSELoss("mean")(p, y) == pytest.approx(s / 15, rel=1e-14)
    assert MSELoss("half")(p, y) == pytest.approx(s / (2 * 5), rel=1e-14)
    np.testing.assert_allclose(MSELoss("half").backward(p, y), (p - y) / 5, rtol=1e-14)


def test_seed001_half_mse_value():
    """Seed 001: L = 1/N sum 1/2 (yhat - y)^2 with gradient (yhat - y)/N."""
    yhat = np.array([[1.0], [2.0], [4.0]])
    y = np.array([[0.0], [2.0], [2.0]])
    assert MSELoss("half")(yhat, y) == pytest.approx((0.5 * 1 + 0 + 0.5 * 4) / 3, rel=1e-15)
    np.testing.assert_allclose(MSELoss("half").backward(yhat, y), [[1 / 3], [0.0], [2 / 3]], rtol=1e-15)


def test_seed003_bce_values():
    """Seed 003: BCE(sigmoid(0) = 0.5, 1) = log 2 and dL/da = -2."""
    loss = BCELoss()
    a = np.array([[0.5]])
    assert loss(a, np.array([[1.0]])) == pytest.approx(math.log(2), rel=1e-15)
    np.testing.assert_allclose(loss.backward(a, np.array([[1.0]])), [[-2.0]], rtol=1e-15)
    np.testing.assert_allclose(BCEWithLogitsLoss().backward(np.array([[0.0]]), np.array([[1.0]])), [[-0.5]])


# ---- extremes ---------------------------------------------------------------------------------
def test_ce_logits_extremes_finite_and_exact():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]])
    y = np.array([1, 0])
    loss = CrossEntropyLoss()
    v = loss(z, y)
    assert v == pytest.approx((2e4 + (1e4 + math.log(2) + 1e4)) / 2, rel=1e-12)
    g = loss.backward(z, y)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [[0.5, -0.5, 0.0], [-0.5, 0.25, 0.25]], atol=1e-15)
    b = loss.forward_batch(np.stack([z, -z]), y)
    assert np.all(np.isfinite(b)) and b[0] == pytest.approx(v, rel=1e-14)


def test_bce_with_logits_extremes():
    z = np.array([[1e4, -1e4, 1e4, -1e4]])
    y = np.array([[1.0, 0.0, 0.0, 1.0]])
    loss = BCEWithLogitsLoss()
    assert loss(z, y) == pytest.approx((0 + 0 + 1e4 + 1e4) / 4, rel=1e-14)
    np.testing.assert_allclose(loss.backward(z, y), [[0.0, 0.0, 0.25, -0.25]], atol=1e-15)


def test_probability_losses_at_zero_and_one():
    p = np.array([[0.0, 1.0], [1.0, 0.0]])
    t = np.array([[1.0, 0.0], [1.0, 0.0]])
    bce = BCELoss()
    v = bce(p, t)
    assert v == pytest.approx((100 + 100 + 0 + 0) / 4)  # log clamped at -100, as torch
    g = bce.backward(p, t)
    assert np.all(np.isfinite(g))
    ce = CrossEntropyLoss(from_logits=False)
    assert ce(p, t) == pytest.approx((100 + 0) / 2)
    assert np.all(np.isfinite(ce.backward(p, t)))
    assert ce(p, np.array([0, 0])) == pytest.approx(50.0)
    assert np.all(np.isfinite(ce.backward(p, np.array([0, 0]))))


# ---- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "loss, pred, y, exc, pattern",
    [
        (CrossEntropyLoss(), np.zeros((3, 4)), np.array([0, 4, 1]), ValueError, r"label 4 .*\[0, 3\]"),
        (CrossEntropyLoss(), np.zeros((3, 4)), np.array([0, -1, 1]), ValueError, r"label -1 .*\[0, 3\]"),
        (CrossEntropyLoss(), np.zeros((3, 4)), np.array([0.0, 1.0, 1.0]), ValueError, r"integer dtype.*float64"),
        (CrossEntropyLoss(), np.zeros((3, 4)), np.array([0, 1]), ValueError, r"\(3, 4\).*\(2,\)"),
        (CrossEntropyLoss(), np.zeros((3, 4)), np.zeros((3, 5)), ValueError, r"\(3, 4\).*\(3, 5\)"),
        (CrossEntropyLoss(), np.zeros((0, 4)), np.zeros(0, int), ValueError, "empty batch"),
        (CrossEntropyLoss(), np.zeros(4), np.array([1]), ValueError, r"\(n_samples, n_classes\)"),
        (CrossEntropyLoss(), np.array([[0.0, np.nan]]), np.array([1]), ValueError, "NaN or inf.*allow_nonfinite"),
        (CrossEntropyLoss(), np.array([[0.0, 1.0]]), np.array([[np.inf, 0.0]]), ValueError, "y contains NaN or inf"),
        (CrossEntropyLoss(from_logits=False), np.array([[-0.1, 1.0]]), np.array([1]), ValueError, r"pred.*>= 0"),
        (MSELoss(), np.zeros((3, 1)), np.zeros(3), ValueError, r"\(3, 1\).*\(3,\).*reshape"),
        (MSELoss(), np.zeros((0, 2)), np.zeros((0, 2)), ValueError, "empty batch"),
        (MSELoss(), np.array([[np.inf]]), np.zeros((1, 1)), ValueError, "pred contains NaN or inf"),
        (BCELoss(), np.array([[1.2]]), np.array([[1.0]]), ValueError, r"pred.*\[0, 1\]"),
        (BCELoss(), np.array([[0.2]]), np.array([[1.5]]), ValueError, r"targets y .*\[0, 1\]"),
        (BCEWithLogitsLoss(), np.array([[3.0]]), np.array([[-1.0]]), ValueError, r"targets y .*\[0, 1\]"),
        (BCEWithLogitsLoss(), np.zeros((2, 2)), np.zeros((2, 3)), ValueError, r"\(2, 2\).*\(2, 3\)"),
    ],
)
def test_loss_bad_input(loss, pred, y, exc, pattern):
    with pytest.raises(exc, match=pattern):
        loss.forward(pred, y)
    with pytest.raises(exc, match=pattern):
        loss.backward(pred, y)


def test_allow_nonfinite_skips_check():
    loss = MSELoss(allow_nonfinite=True)
    assert math.isnan(loss(np.array([[np.nan]]), np.zeros((1, 1))))
    ce = CrossEntropyLoss(allow_nonfinite=True)
    assert math.isnan(ce(np.array([[np.nan, 0.0]]), np.array([1])))


def test_mse_bad_reduction():
    with pytest.raises(ValueError, match="reduction.*'avg'"):
        MSELoss("avg")


def test_forward_batch_bad_shapes():
    with pytest.raises(ValueError, match=r"\(K, n_samples, n_classes\)"):
        CrossEntropyLoss().forward_batch(np.zeros((3, 4)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 2\)"):
        MSELoss().forward_batch(np.zeros((5, 2, 3)), np.zeros((2, 2)))


def test_ce_backward_after_inplace_change_of_labels_is_not_stale():
    z = np.random.default_rng(1).standard_normal((3, 4))
    y = np.array([0, 1, 2])
    loss = CrossEntropyLoss()
    loss.forward(z, y)
    y[0] = 3
    np.testing.assert_array_equal(loss.backward(z, y), CrossEntropyLoss().backward(z, y.copy()))


# ---- caches of the fast cross-entropy path (labels, exponentials) are never stale ------------------
def _ce_reference_grad(z, labels):
    """(softmax(z) - onehot) / N by plain loops in float64."""
    n, c = z.shape
    g = np.zeros((n, c))
    for i in range(n):
        row = [math.exp(v - max(z[i])) for v in z[i]]
        s = sum(row)
        for j in range(c):
            g[i, j] = (row[j] / s - (1.0 if j == labels[i] else 0.0)) / n
    return g


@pytest.mark.parametrize("c", [1, 2, 3, 10])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ce_repeated_calls_with_inplace_edits_follow_the_values(c, dtype):
    """forward/backward pairs on the same arrays, edited in place between and within the pairs."""
    rng = np.random.default_rng(c)
    z = rng.standard_normal((7, c)).astype(dtype)
    y = rng.integers(0, c, 7)
    loss = CrossEntropyLoss()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for step in range(4):
        v = loss.forward(z, y)
        assert v == pytest.approx(ref_ce_logits_labels(z.astype(np.float64), y), rel=tol, abs=tol)
        if step == 1:
            z[3] *= -2.0  # pred edited between forward and backward
        if step == 2:
            y[[0, 5]] = (y[[0, 5]] + 1) % c  # labels edited between forward and backward
        g = loss.backward(z, y)
        assert g.dtype == dtype and g.shape == z.shape
        np.testing.assert_allclose(g, _ce_reference_grad(z.astype(np.float64), y), rtol=tol, atol=tol)
        g[...] = 7.0  # the caller owns the returned array: editing it changes nothing for the next call
        np.testing.assert_allclose(loss.backward(z, y), _ce_reference_grad(z.astype(np.float64), y),
                                   rtol=tol, atol=tol)
        z += dtype(0.25) * rng.standard_normal(z.shape).astype(dtype)  # as an optimizer step would


def test_ce_new_arrays_with_the_same_values_give_the_same_results():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((6, 4))
    y = np.array([0, 1, 2, 3, 0, 1])
    loss = CrossEntropyLoss()
    v = loss.forward(z, y)
    g = loss.backward(z, y)
    other = CrossEntropyLoss()
    assert other.forward(z.copy(), y.copy()) == v
    np.testing.assert_array_equal(other.backward(z.copy(), y.copy()), g)
    np.testing.assert_array_equal(loss.backward(np.asfortranarray(z), y), g)


def test_ce_labels_edited_out_of_range_after_a_valid_call_still_raise():
    """The label check is remembered only for byte-identical labels."""
    z = np.zeros((3, 4))
    y = np.array([0, 1, 2])
    loss = CrossEntropyLoss()
    loss.forward(z, y)
    loss.backward(z, y)
    y[1] = 4
    with pytest.raises(ValueError, match=r"label 4 .*\[0, 3\]"):
        loss.forward(z, y)
    with pytest.raises(ValueError, match=r"label 4 .*\[0, 3\]"):
        loss.backward(z, y)
    with pytest.raises(ValueError, match=r"label 3 .*\[0, 2\]"):
        loss.forward(np.zeros((3, 3)), np.array([0, 1, 3]))  # same labels bytes earlier, fewer classes


def test_ce_pred_edited_to_nonfinite_after_a_valid_call_still_raises():
    z = np.zeros((3, 4))
    y = np.array([0, 1, 2])
    loss = CrossEntropyLoss()
    loss.forward(z, y)
    z[2, 1] = -np.inf  # not the row maximum: the softmax alone would hide it
    with pytest.raises(ValueError, match=r"pred contains NaN or inf \(first at index \(2, 1\)"):
        loss.backward(z, y)
    with pytest.raises(ValueError, match=r"pred contains NaN or inf \(first at index \(2, 1\)"):
        loss.forward(z, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (33, 17)])
def test_nonfinite_detected_at_every_position(bad, shape):
    """The vdot screen of _all_finite misses no position (SIMD tails included), for both dtypes."""
    for dtype in (np.float64, np.float32):
        z = np.zeros(shape, dtype)
        y = np.zeros(shape[0], dtype=np.int64)
        for flat in range(z.size):
            z.flat[flat] = bad
            with pytest.raises(ValueError, match="pred contains NaN or inf"):
                CrossEntropyLoss().forward(z, y)
            z.flat[flat] = 0


def test_ce_large_finite_logits_whose_squares_overflow_are_accepted():
    """A non-finite vdot screen (squares overflowing) falls back to the exact check, not an error."""
    z = np.array([[2e19, 1.9e19], [1.0, 2.0]], dtype=np.float32)  # squares overflow float32
    y = np.array([0, 1])
    loss = CrossEntropyLoss()
    assert math.isfinite(loss.forward(z, y))
    assert np.all(np.isfinite(loss.backward(z, y)))


def test_ce_beyond_the_remembered_size_recomputes_correctly():
    """pred and labels larger than the byte guard are validated and computed on every call."""
    rng = np.random.default_rng(5)
    n, c = 9000, 3  # labels of 72 kB: not remembered
    z = rng.standard_normal((n, c))
    y = rng.integers(0, c, n)
    loss = CrossEntropyLoss()
    v = loss.forward(z, y)
    z[:10, 0] += 1.0
    g = loss.backward(z, y)
    fresh = CrossEntropyLoss()
    np.testing.assert_array_equal(g, fresh.backward(z.copy(), y.copy()))
    assert v != fresh.forward(z, y)
    y[0] = c
    with pytest.raises(ValueError, match=rf"label {c} out of range"):
        loss.forward(z, y)
