"""The complex-step derivative for :func:`verigrad.check.check_gradients`.

:func:`_complex_valid` validates the complex step on ``fn`` (two random directions, compared with
central differences at two steps); :func:`_complex_derivative` then gives the engine the per-entry
derivatives ``Im L(x + i h e_j) / h``. :class:`_ComplexFailed` is raised when ``fn`` stops supporting
complex input mid-check (the caller falls back to central differences).
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from verigrad.check.engine import C_ROUND, EPS64, Objective


class _ComplexFailed(RuntimeError):
    pass


def _complex_call(fn: Callable, xc: np.ndarray, G: np.ndarray) -> complex:
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        out = fn(xc)
    arr = np.asarray(out)
    if arr.dtype.kind != "c":
        raise _ComplexFailed(f"fn returned dtype {arr.dtype} for complex input")
    if arr.shape != G.shape:
        raise _ComplexFailed(f"fn returned shape {arr.shape} for complex input")
    return complex(np.sum(arr * G))


def _complex_valid(fn: Callable, work: np.ndarray, G: np.ndarray, obj: Objective, lscale: float,
                   eval_eps: float, rng: np.random.Generator) -> tuple[bool, str]:
    """Validate complex step on ``fn``: 2 random directions, complex vs central (two steps)."""
    xc = work.astype(np.complex128)
    if eval_eps > EPS64 * 2:
        return False, "fn evaluates below float64 precision"
    try:
        with np.errstate(all="ignore"):
            for _ in range(2):
                v = rng.choice(np.array([-1.0, 1.0]), size=work.shape)
                hc = 1e-20
                lc = _complex_call(fn, xc + 1j * hc * v, G)
                obj.n_evals += 1
                if not np.isfinite(lc.imag):
                    return False, "non-finite complex-step derivative"
                dc = lc.imag / hc
                xs = float(np.max(np.abs(work))) if work.size else 1.0
                h = eval_eps ** (1 / 3) * max(1.0, xs) / np.sqrt(max(work.size, 1))
                est = []
                for hh in (h, 2 * h):
                    save = work.copy()
                    try:
                        np.copyto(work, save + hh * v)
                        lp = obj()
                        np.copyto(work, save - hh * v)
                        lm = obj()
                    finally:
                        np.copyto(work, save)
                    est.append((lp - lm) / (2 * hh))
                err = abs(est[0] - est[1]) + C_ROUND * eval_eps * lscale / h + 1e-8 * abs(est[0])
                if not abs(dc - est[0]) <= 3 * err:
                    return False, "complex-step and central directional derivatives disagree"
    except _ComplexFailed as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - fn does not support complex input
        return False, f"fn does not accept complex input ({type(exc).__name__})"
    return True, ""


def _complex_derivative(fn: Callable, work: np.ndarray, G: np.ndarray, obj: Objective) -> Callable:
    def derivative(idx: np.ndarray, h: np.ndarray) -> np.ndarray:
        xc = work.astype(np.complex128)
        out = np.empty(len(idx))
        try:
            with np.errstate(all="ignore"):
                for i, (j, hj) in enumerate(zip(idx, h)):
                    old = xc.flat[j]
                    xc.flat[j] = old + 1j * hj
                    obj.n_evals += 1
                    out[i] = _complex_call(fn, xc, G).imag / hj
                    xc.flat[j] = old
        except _ComplexFailed:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _ComplexFailed(f"{type(exc).__name__}: {exc}") from exc
        return out

    return derivative
