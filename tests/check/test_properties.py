"""Properties over drawn shapes and values: correct ops are never flagged; simple bugs always are."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from verigrad.check import check_gradients, check_params

shapes = st.tuples(st.integers(1, 5), st.integers(1, 5))
values = st.floats(-4, 4, allow_nan=False, allow_infinity=False, width=64)


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ELEMENTWISE = {
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1 - _sigmoid(z))),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "softplus": (lambda z: np.logaddexp(0.0, z), _sigmoid),
    "sin": (np.sin, np.cos),
    "square": (np.square, lambda z: 2 * z),
}


@given(st.sampled_from(sorted(ELEMENTWISE)), shapes.flatmap(lambda s: arrays(np.float64, s, elements=values)),
       st.integers(0, 2**31 - 1))
def test_correct_elementwise_never_flagged(name, x, seed):
    f, df = ELEMENTWISE[name]
    dy = np.random.default_rng(seed).standard_normal(x.shape)
    rep = check_gradients(f, df(x) * dy, x, dy, probe=False)
    assert rep.passed, str(rep)


kinky = st.one_of(st.sampled_from([0.0, 1e-7, -1e-7, 1e-6, -1e-6, 3e-9, -1e-12]), values)


@given(shapes.flatmap(lambda s: arrays(np.float64, s, elements=kinky)), st.sampled_from([0.0, 0.01, 0.2]),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_correct_relu_leaky_never_flagged_even_at_kinks(x, slope, geq, seed):
    dy = np.random.default_rng(seed).standard_normal(x.shape)
    pos = (x >= 0) if geq else (x > 0)
    rep = check_gradients(lambda z: np.where(z > 0, z, slope * z), np.where(pos, 1.0, slope) * dy, x, dy)
    assert rep.passed, str(rep)


@given(shapes.flatmap(lambda s: arrays(np.float64, s, elements=kinky)), st.integers(0, 2**31 - 1))
def test_wrong_relu_derivative_near_kinks_fails(x, seed):
    dy = np.random.default_rng(seed).standard_normal(x.shape) + 3.0  # keep dy away from 0
    wrong = np.where(x > 0, 1.5, -0.5) * dy  # outside the one-sided hull [0, 1] everywhere
    rep = check_gradients(lambda z: np.maximum(z, 0.0), wrong, x, dy)
    assert not rep.passed


@given(st.integers(1, 5), st.integers(1, 4), st.integers(1, 4), st.sampled_from([np.float64, np.float32]),
       st.integers(0, 2**31 - 1))
def test_correct_dense_never_flagged(n, i, o, dtype, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, i)).astype(dtype)
    dY = rng.standard_normal((n, o)).astype(dtype)
    P = {"W": rng.standard_normal((i, o)).astype(dtype), "b": rng.standard_normal(o).astype(dtype)}

    def loss():
        return np.sum(np.tanh(X @ P["W"] + P["b"]) * dY)

    d = (1 - np.tanh(X @ P["W"] + P["b"]) ** 2) * dY
    rep = check_params(loss, P, {"W": X.T @ d, "b": d.sum(0)})
    assert rep.passed, str(rep)


@given(st.integers(1, 4), st.integers(2, 5), st.floats(0.1, 5), st.integers(0, 2**31 - 1))
def test_correct_cross_entropy_from_logits_never_flagged(n, c, scale, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, c)) * scale
    lab = rng.integers(0, c, n)

    def ce(logits):
        m = logits.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.sum(np.exp(logits - m), axis=1))
        return np.mean(lse - logits[np.arange(n), lab])

    g = _softmax(z)
    g[np.arange(n), lab] -= 1
    rep = check_gradients(ce, g / n, z)
    assert rep.passed, str(rep)


@given(shapes.flatmap(lambda s: arrays(np.float64, s, elements=st.floats(0.2, 3))),
       st.sampled_from([-1.0, 2.0, 0.5, 1.05, 0.0]), st.integers(0, 2**31 - 1))
def test_scaled_gradient_always_caught_with_kind(x, c, seed):
    dy = np.random.default_rng(seed).uniform(0.5, 1.5, x.shape)
    rep = check_gradients(np.sin, c * np.cos(x) * dy, x, dy, probe=False)
    assert not rep.passed
    expected = {-1.0: "sign", 0.0: "zero"}.get(c, "scale")
    if x.size > 1 or c in (-1.0, 0.0):
        assert rep.diagnosis.kind == expected, str(rep)


@given(st.sampled_from(["tanh", "sigmoid"]), shapes, st.sampled_from([1.0, 3.0, 8.0]), st.integers(0, 2**31 - 1))
def test_float32_activations_never_flagged_and_one_percent_caught(name, shape, scale, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    f, df = ELEMENTWISE[name]
    g = (df(x) * dy).astype(np.float32)  # float32 backward code, saturated units included
    rep = check_gradients(f, g, x, dy, probe=False)
    assert rep.passed, str(rep)
    bad = check_gradients(f, g * np.float32(1.01), x, dy, probe=False)
    if np.max(np.abs(g)) > 1e-3 * np.max(np.abs(dy)):  # a 1% error must be visible above float32 round-off
        assert not bad.passed, str(bad)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_lowest_bit_divides_the_value_and_scalar_form_agrees(v):
    from verigrad.check.engine import lowest_bit
    from verigrad.check.modes import _lowest_bit

    b = float(lowest_bit(np.array([v]))[0])
    assert b == _lowest_bit(v)
    if v == 0:
        assert b == 0
    else:
        q = abs(v) / b  # exact: b is a power of two
        assert q == int(q) and int(q) % 2 == 1


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(8, 400))
def test_cancelling_sum_rounding_is_explained_and_a_small_error_still_caught(seed, n):
    # L = sum(x * dy): |L| can be far below the partial sums; correct entries pass, one entry off by a
    # relative 1e-6 is caught
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * 3
    dy = rng.standard_normal(n)
    loss = lambda: float(np.sum(np.maximum(x, 0.0) * dy))  # noqa: E731
    assert check_params(loss, {"x": x}, {"x": dy * (x > 0)}).passed
    g = dy * (x > 0)
    j = int(np.argmax(np.abs(g)))
    if abs(g[j]) < 1e-3:
        return  # every x below the kink (or dy tiny there): no entry to perturb meaningfully
    g[j] *= 1 + 1e-6
    rep = check_params(loss, {"x": x}, {"x": g})
    assert not rep.passed and rep["x"].status[j] == 3


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(ELEMENTWISE)), arrays(np.float64, shapes, elements=values), st.integers(0, 2**31 - 1))
def test_small_relative_error_in_one_entry_is_caught(name, x, seed):
    # the linear (first-order) extrapolation, the value resolution and the noise measurement must not
    # absorb a 1e-6 relative error in float64 on smooth functions
    f, df = ELEMENTWISE[name]
    dy = np.random.default_rng(seed).uniform(0.5, 1.5, x.shape)
    g = df(x) * dy
    j = int(np.argmax(np.abs(g)))
    if abs(g.flat[j]) < 1e-3:
        return  # nothing large enough to perturb meaningfully
    g.flat[j] *= 1 + 1e-6
    rep = check_gradients(f, g, x, dy, method="central", probe=False)
    assert not rep.passed and rep.status.flat[j] == 3


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 40), st.integers(2, 12))
def test_linear_loss_never_takes_the_linear_extrapolation(seed, n, m):
    # L = sum((X @ W) * dy) is linear in W: its one-sided gaps are pure rounding, so the first-order
    # model (for a jump of L'') must never be chosen, and the check passes
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 8)) * rng.uniform(0.1, 10)
    W = rng.standard_normal((8, m))
    dy = rng.standard_normal((n, m))
    rep = check_params(lambda: float(np.sum((X @ W) * dy)), {"W": W}, {"W": X.T @ dy})
    assert rep.passed, str(rep)
    assert not any("first-order" in note for note in rep["W"].notes)
