"""verigrad.nn._fast: the finiteness screen and the cached 0-d scalars of the training hot path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verigrad.nn._fast import all_finite, scalar_like


@settings(derandomize=True, max_examples=60)
@given(n=st.integers(1, 70), pos=st.integers(0, 69), bad=st.sampled_from([np.nan, np.inf, -np.inf]),
       dtype=st.sampled_from([np.float16, np.float32, np.float64, np.complex128]), seed=st.integers(0, 10**6))
def test_all_finite_equals_the_exact_check(n, pos, bad, dtype, seed):
    a = (np.random.default_rng(seed).standard_normal(n) * 10).astype(dtype)
    assert all_finite(a)
    a[pos % n] = bad
    assert not all_finite(a)
    assert not all_finite(a[::-1].reshape(1, n))  # non-contiguous / other shapes too


def test_all_finite_overflowing_squares_and_other_kinds():
    assert all_finite(np.array([1e200, -1e200]))  # vdot overflows: the exact check decides
    assert all_finite(np.array([60000.0, 1.0], dtype=np.float16))
    assert all_finite(np.arange(5)) and all_finite(np.array([True, False]))
    assert all_finite(np.zeros((0, 3)))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_scalar_like_products_equal_python_float_products(dtype):
    g = np.random.default_rng(1).standard_normal((7, 3)).astype(dtype)
    for v in (0.01, 1 / 3, 3.0, 1e-5):
        s = scalar_like(v, dtype)
        assert s.shape == () and s.dtype == dtype and not s.flags.writeable
        np.testing.assert_array_equal(s * g, v * g)
        assert (s * g).dtype == (v * g).dtype == dtype
    assert scalar_like(0.01, dtype) is scalar_like(0.01, np.dtype(dtype))  # cached


def test_scalar_like_cache_stays_bounded():
    for i in range(3000):
        scalar_like(float(i), np.float64)
    from verigrad.nn import _fast

    assert len(_fast._SCALARS) <= 1025
    assert scalar_like(2999.0, np.float64) == 2999.0
