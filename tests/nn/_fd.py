"""A small central-difference helper for the verigrad.nn tests (independent of verigrad.check)."""

from __future__ import annotations

from typing import Callable

import numpy as np


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Fourth-order central differences for every entry of ``x``:

    ``(-f(x + 2h e_i) + 8 f(x + h e_i) - 8 f(x - h e_i) + f(x - 2h e_i)) / (12 h)``

    (truncation error O(h**4) ~ 1e-16, round-off ~ |f| 1e-16 / h ~ 1e-12), accurate enough to
    demand a relative error below 1e-7 even where derivatives are small. ``x`` is perturbed in place
    (and restored), so ``f`` must read the live array.
    """
    assert x.dtype == np.float64, "finite differences here are for float64 arrays"
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        vals = []
        for k in (2, 1, -1, -2):
            x[idx] = old + k * eps
            vals.append(float(f()))
        x[idx] = old
        g[idx] = (-vals[0] + 8 * vals[1] - 8 * vals[2] + vals[3]) / (12 * eps)
    return g


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """``||a - b|| / max(||a||, ||b||)`` (0 when both are zero)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    den = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if den == 0 else float(np.linalg.norm(a - b) / den)
