"""Arrays the user passes to the checker: validation, comparison and restoration.

* :func:`_float_array` - a point or a parameter (finite, real floating point);
* :func:`_grad_array` - a claimed gradient (shape checks, transposed shape, per-sample gradients);
* :func:`_output`, :func:`_dldf` - ``fn``'s output and the upstream gradient of ``L = sum(fn(x) * dLdf)``;
* :func:`_is_number`, :func:`_array_like` - what counts as a scalar or an array;
* :func:`_same_bits`, :class:`_Restorer` - bit-for-bit comparison, and putting live arrays back;
* :func:`_nudged` - a value with one entry of a live array moved (does the code read that array?).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from verigrad.check.engine import EPS64, eps_of


def _float_array(x: Any, arg: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        raise TypeError(f"{arg} must be a real floating-point array; got complex dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        raise TypeError(
            f"{arg} must be a floating-point array; got dtype {arr.dtype} "
            f"(convert with {arg}.astype(np.float64): finite differences need real numbers)"
        )
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0]) if arr.ndim else ()
        raise ValueError(f"{arg} contains non-finite values (first at index {bad}); expected finite numbers")
    return arr


def _grad_array(g: Any, arg: str, shape: tuple[int, ...], what: str) -> tuple[np.ndarray, bool]:
    """Validate a claimed gradient; return (array as float64, transposed?)."""
    if isinstance(g, (tuple, list)) and any(isinstance(v, np.ndarray) for v in g):
        shapes = [tuple(np.shape(v)) for v in g]
        same = [i for i, sh in enumerate(shapes) if sh == shape]
        hint = (f"; item {same[0]} has the shape of {what}: pass {arg}[{same[0]}]" if len(same) == 1 else
                f"; items {same} have the shape of {what}: pass the one for {what}" if same else "")
        raise TypeError(
            f"{arg} is a {type(g).__name__} of {len(g)} arrays with shapes {shapes} (like a backward pass's "
            f"(dx, dw, db)); expected one array of shape {shape}, the gradient of {what}{hint}")
    try:
        arr = np.asarray(g)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(f"{arg} must be an array; got {type(g).__name__}") from exc
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{arg} must be a real numeric array; got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{arg} contains non-finite values (NaN or inf); expected finite numbers")
    if arr.shape == shape:
        return arr.astype(np.float64), False
    if len(shape) == 2 and arr.shape == shape[::-1] and shape[0] != shape[1]:
        return arr.astype(np.float64).T, True
    if arr.size == int(np.prod(shape)) and tuple(d for d in arr.shape if d != 1) == tuple(d for d in shape if d != 1):
        # the same entries in the same order, only axes of length 1 differ ((1, D) bias vs (D,) gradient)
        return arr.astype(np.float64).reshape(shape), False
    hint = ""
    if arr.ndim == len(shape) + 1 and arr.shape[1:] == shape and arr.shape[0] > 1:
        hint = (f": it looks like one gradient per sample (axis 0 of length {arr.shape[0]}); sum over axis 0 "
                f"(the batch), e.g. np.sum(..., axis=0)")
    elif (arr.ndim == len(shape) and arr.ndim >= 1 and shape[0] == 1 and arr.shape[0] > 1
          and arr.shape[1:] == shape[1:]):
        hint = (f": it looks like one gradient per sample (axis 0 of length {arr.shape[0]}); sum over axis 0 "
                f"(the batch), e.g. np.sum(..., axis=0, keepdims=True)")
    raise ValueError(
        f"{arg} has shape {arr.shape} but {what} has shape {shape}: the gradient must have the shape of {what}"
        + hint
    )


def _grad_eps(g: Any) -> tuple[float, str]:
    dt = getattr(g, "dtype", None)
    if dt is not None and np.dtype(dt).kind == "f":
        return eps_of(dt), str(np.dtype(dt))
    return EPS64, "float64"


def _output(out: Any, where: str) -> np.ndarray:
    if isinstance(out, (np.ndarray, np.generic, int, float)) and not isinstance(out, bool):
        arr = np.asarray(out)
    elif hasattr(out, "__array__") and not isinstance(out, (str, bytes)):
        arr = np.asarray(out)
    else:
        raise TypeError(f"fn must return a NumPy array or a scalar; got {type(out).__name__} {where}")
    if arr.dtype.kind not in "fciu":
        raise TypeError(f"fn must return a numeric array or scalar; got dtype {arr.dtype} {where}")
    return arr


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float, np.number)) and not isinstance(v, bool)) or (
        isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "fciu")


def _array_like(v: Any) -> bool:
    """An ndarray, a NumPy or Python scalar, or an object with ``__array__`` (not a tuple/list/str)."""
    return _is_number(v) or isinstance(v, np.ndarray) or (
        hasattr(v, "__array__") and not isinstance(v, (str, bytes, tuple, list)))


def _dldf(dLdf: Any, out_shape: tuple[int, ...]) -> np.ndarray:
    if dLdf is None:
        if int(np.prod(out_shape)) != 1:
            raise ValueError(
                f"fn returns an array of shape {out_shape}, not a scalar: pass dLdf (the upstream "
                f"gradient, same shape {out_shape}) so that L = sum(fn(x) * dLdf)"
            )
        return np.ones(out_shape)
    g = np.asarray(dLdf)
    if g.dtype.kind not in "fiu":
        raise TypeError(f"dLdf must be a real numeric array or scalar; got dtype {g.dtype}")
    if not np.all(np.isfinite(g)):
        raise ValueError("dLdf contains non-finite values; expected finite numbers")
    if g.ndim == 0 or g.size == 1 and int(np.prod(out_shape)) == 1:
        return np.full(out_shape, float(g.reshape(())) if g.ndim == 0 else float(g.ravel()[0]))
    if g.shape != tuple(out_shape) and g.size == int(np.prod(out_shape)) and (
            tuple(d for d in g.shape if d != 1) == tuple(d for d in out_shape if d != 1)):
        g = g.reshape(out_shape)  # (N,) upstream for an (N, 1) output: the same entries in the same order
    if g.shape != tuple(out_shape):
        raise ValueError(f"dLdf has shape {g.shape} but fn(x) has shape {tuple(out_shape)}; they must match")
    return g.astype(np.float64)


def _same_bits(a: Any, b: Any) -> bool:
    """Bit-for-bit equality (value equality for long double, whose padding bytes are undefined)."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "fc" and a.dtype.itemsize > 8 and a.dtype != np.complex128:
        return bool(np.array_equal(a, b, equal_nan=True)) and bool(
            np.array_equal(np.signbit(np.real(a)), np.signbit(np.real(b))))
    return a.tobytes() == b.tobytes()


class _Restorer:
    """Copies of arrays, put back bit for bit with ``np.copyto``."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.pairs = [(a, a.copy()) for a in arrays]

    def changed(self) -> list[int]:
        return [i for i, (a, c) in enumerate(self.pairs) if not _same_bits(a, c)]

    def restore(self) -> None:
        for a, c in self.pairs:
            np.copyto(a, c)


def _nudged(arr: np.ndarray, i: int, evaluate: Callable[[], Any]) -> Any:
    """``evaluate()`` with ``arr.flat[i]`` moved by ``1e-3 * max(1, |arr.flat[i]|)``, put back afterwards.

    Tells whether the code reads the array ``arr``: the upcast copies must be the arrays the loss reads;
    ``fn`` that ignores its argument may read the caller's ``x`` itself. Returns ``evaluate()``'s value.
    """
    old = arr.flat[i]
    arr.flat[i] = old + 1e-3 * max(1.0, abs(float(old)))
    try:
        return evaluate()
    finally:
        arr.flat[i] = old
