"""Tensor helpers of :func:`verigrad.torch.check`.

Comparison and NumPy conversion of tensors (:func:`_same_values`, :func:`_to_numpy`, :func:`_grad_numpy`,
bfloat16 included), the copies the numerical side perturbs (:func:`_numeric_copy`, :func:`_fresh`,
:func:`_call_args`), ``fn``'s outputs (:func:`_selecting`, :func:`_outputs`, :func:`_flatten`) and their
upstream gradients (:func:`_make_dLdf`, :func:`_make_dLdfs`), the float64 torch function mode
(:class:`_Upcast`), torch's vector-Jacobian product (:func:`_vjp`), the :class:`_Target` record and
:class:`TorchCheckError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


class TorchCheckError(RuntimeError):
    """Raised when ``fn`` cannot be checked at all (e.g. it fails in float64 and ``double=True``)."""


def _describe(t: torch.Tensor) -> str:
    return f"tensor of shape {tuple(t.shape)} and dtype {t.dtype}"


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when ``a`` and ``b`` hold the same values (NaN equal to NaN)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    with torch.no_grad():
        a = a.detach().cpu()
        b = b.detach().cpu()
        if a.is_floating_point() or a.is_complex():
            same = (a == b) | (torch.isnan(a) & torch.isnan(b))
        else:
            same = a == b
        return bool(same.all())


def _max_change(before: torch.Tensor, after: torch.Tensor) -> float:
    with torch.no_grad():
        if before.shape != after.shape:
            return math.inf
        d = (after.detach().cpu().double() - before.detach().cpu().double()).abs()
        return float(d.max()) if d.numel() else 0.0


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    """A fresh NumPy copy of ``t``, never aliasing it (bfloat16, which NumPy lacks, becomes float32).

    Also the conversion of every output the numerical side evaluates: no call is made that is not needed.
    """
    t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.float()
    if t.device.type != "cpu":
        t = t.cpu()
    if t.is_conj() or t.is_neg():
        t = t.resolve_conj().resolve_neg()
    return t.numpy().copy()


def _grad_numpy(g: torch.Tensor | None, like: torch.Tensor, name: str, notes: list[str]) -> np.ndarray:
    """The analytic gradient as a NumPy array in its own dtype (zeros when autograd returned None).

    NumPy has no bfloat16: a bfloat16 gradient becomes float16 when that is exact (same values, so the
    checker judges it against a 16-bit round-off), else float32 (judged more strictly than bfloat16
    deserves; noted in the report).
    """
    g = torch.zeros_like(like.detach()) if g is None else g.detach()
    g = g.cpu()
    if g.dtype == torch.bfloat16:
        g32 = g.float()
        g16 = g.to(torch.float16)
        if bool((g16.float() == g32).all()):
            return g16.numpy().copy()
        notes.append(f"the bfloat16 gradient of {name} is judged as float32 (NumPy has no bfloat16)")
        return g32.numpy().copy()
    return g.resolve_conj().resolve_neg().numpy().copy()


def _numeric_copy(t: torch.Tensor, double: bool) -> torch.Tensor:
    """A fresh CPU copy of ``t`` (floating tensors cast to float64 when ``double``), never sharing storage."""
    t = t.detach()
    if double and t.is_floating_point():
        return t.to(device="cpu", dtype=torch.float64, copy=True).contiguous()
    if t.dtype == torch.bfloat16:
        # NumPy has no bfloat16: the native-dtype fallback computes in float32 instead.
        return t.to(device="cpu", dtype=torch.float32, copy=True).contiguous()
    return t.to(device="cpu", copy=True).resolve_conj().resolve_neg().contiguous()


def _call(fn: Callable[..., Any], args: Sequence[torch.Tensor]) -> Any:
    return fn(*args)


def _selecting(fn: Callable[..., Any], output: int | Callable[[Any], Any] | None) -> Callable[..., Any]:
    """``fn`` followed by the ``output`` selector (index into a tuple result, or a callable)."""
    if output is None:
        return fn

    def run(*args: Any) -> Any:
        res = fn(*args)
        if callable(output):
            return output(res)
        try:
            return res[output]
        except (IndexError, TypeError, KeyError) as exc:
            raise TypeError(
                f"output={output!r} cannot select from fn's result, a {type(res).__name__}: {exc}"
            ) from exc

    return run


def _validate_output(out: Any, where: str, complex_ok: bool = False) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        if not (out.is_floating_point() or (complex_ok and out.is_complex())):
            raise TypeError(
                f"fn must return a floating-point torch.Tensor; {where} it returned a "
                f"{_describe(out)}. Integer, boolean and complex outputs have no real gradient to check."
            )
        return out
    raise TypeError(
        f"fn must return a torch.Tensor (or a tuple, list or dict of them); {where} it returned a "
        f"{type(out).__name__}."
    )


def _make_dLdf(
    dLdf: Any, out: torch.Tensor, rng: np.random.Generator
) -> np.ndarray:
    """The upstream gradient as float64 values exactly representable in ``out.dtype``."""
    shape = tuple(out.shape)
    if dLdf is None:
        if out.dim() == 0:
            g = np.ones(shape, dtype=np.float64)
        else:
            g = rng.standard_normal(shape)
    else:
        if isinstance(dLdf, torch.Tensor):
            g = _to_numpy(dLdf).astype(np.float64)
        else:
            try:
                g = np.asarray(dLdf, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"dLdf must be a tensor, an array or a number, got {type(dLdf).__name__}"
                ) from exc
        if g.ndim == 0 and len(shape) > 0:
            g = np.full(shape, float(g))
        if g.shape != shape:
            raise ValueError(
                f"dLdf has shape {g.shape} but fn's output has shape {shape}; "
                "dLdf must have exactly the output's shape (or be a scalar)"
            )
        if not np.all(np.isfinite(g)):
            raise ValueError("dLdf contains NaN or infinite values")
    # Round to the output dtype so the analytic (original dtype) and numerical (float64) sides use the
    # very same upstream gradient.
    g_t = torch.from_numpy(np.array(g, dtype=np.float64, order="C")).to(out.dtype)
    return g_t.to(torch.float64).numpy().copy()


_COARSE_FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def _upcast(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.double() if obj.dtype in _COARSE_FLOATS else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(_upcast(o) for o in obj) if not hasattr(obj, "_fields") else type(obj)(*map(_upcast, obj))
    if isinstance(obj, dict):
        return {k: _upcast(v) for k, v in obj.items()}
    return obj


class _Upcast(torch.overrides.TorchFunctionMode):
    """Every torch function called inside sees float64 instead of float32/16 tensors."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        return func(*_upcast(args), **_upcast(kwargs or {}))


def _upcasting(fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> Any:
        with _Upcast():
            return fn(*args)

    return run


def _checker():  # noqa: ANN202 - the checker entry point and report class, imported lazily
    from verigrad.check import check_gradients
    from verigrad.check.report import ModelReport

    return check_gradients, ModelReport


def _flatten(res: Any, path: str = "") -> list[tuple[str, Any]]:
    """The leaves of nested tuples, lists and dicts with their paths (``"[1][0]"``, ``"['logits']"``)."""
    if isinstance(res, (tuple, list)):
        out: list[tuple[str, Any]] = []
        for k, r in enumerate(res):
            out.extend(_flatten(r, f"{path}[{k}]"))
        return out
    if isinstance(res, dict):
        out = []
        for k, r in res.items():
            out.extend(_flatten(r, f"{path}[{k!r}]"))
        return out
    return [(path, res)]


def _outputs(res: Any, where: str, complex_ok: bool = False) -> tuple[list[torch.Tensor], list[str]]:
    """The checked outputs of ``fn``: the tensor it returns, or the floating-point tensors of its tuple.

    Several outputs are checked together: the checked scalar is :math:`\\sum_k \\sum f_k \\odot G_k`.
    Returns the tensors and notes on what was skipped. ``complex_ok``: complex outputs count as
    floating point (evaluations at the checker's complex-step points).
    """
    if not isinstance(res, (tuple, list, dict)):
        return [_validate_output(res, where, complex_ok)], []
    leaves = _flatten(res)
    outs = [o for _, o in leaves
            if isinstance(o, torch.Tensor) and (o.is_floating_point() or (complex_ok and o.is_complex()))]
    if not outs:
        kinds = ", ".join(
            f"result{p}: {_describe(o) if isinstance(o, torch.Tensor) else type(o).__name__}" for p, o in leaves
        )
        raise TypeError(
            f"fn must return a floating-point torch.Tensor or a tuple, list or dict holding some; {where} it returned a "
            f"{type(res).__name__} without any ({kinds or 'empty'})"
        )
    notes = []
    if len(leaves) > 1:
        skipped = [
            f"result{p} ({_describe(o) if isinstance(o, torch.Tensor) else type(o).__name__})"
            for p, o in leaves if not (isinstance(o, torch.Tensor) and o.is_floating_point())
        ]
        notes.append(
            f"fn returns a {type(res).__name__} of {len(leaves)} items: its {len(outs)} floating-point "
            "tensor(s) are checked together, L = sum_k sum(f_k * dLdf_k) (check one with output=index or "
            "output=callable)" + (f"; not differentiable, skipped: {', '.join(skipped)}" if skipped else "")
        )
    return outs, notes


def _make_dLdfs(dLdf: Any, outs: list[torch.Tensor], rng: np.random.Generator) -> list[np.ndarray]:
    """One upstream gradient per checked output (see :func:`_make_dLdf`)."""
    if len(outs) == 1:
        return [_make_dLdf(dLdf, outs[0], rng)]
    if dLdf is None:
        return [_make_dLdf(None, o, rng) for o in outs]
    if not isinstance(dLdf, (tuple, list)) or len(dLdf) != len(outs):
        raise ValueError(
            f"fn returns {len(outs)} floating-point outputs of shapes {[tuple(o.shape) for o in outs]}: dLdf "
            f"must be a tuple of {len(outs)} upstream gradients, one per output (or None), got "
            f"{type(dLdf).__name__}" + (f" of length {len(dLdf)}" if isinstance(dLdf, (tuple, list)) else "")
        )
    return [_make_dLdf(d, o, rng) for d, o in zip(dLdf, outs)]


def _concat(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Arrays flattened into one vector, in the coarsest floating dtype among them (its round-off rules)."""
    dts = [np.dtype(a.dtype) for a in arrays if np.dtype(a.dtype).kind == "f"]
    dt = min(dts, key=lambda d: d.itemsize) if dts else np.dtype(np.float64)
    return np.concatenate([np.asarray(a, dtype=dt).ravel() for a in arrays])


def _fresh(args: Sequence[Any]) -> list[Any]:
    """Copies of the tensor arguments (other arguments as they are)."""
    return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]


def _call_args(leaves: Sequence[Any]) -> list[Any]:
    """The arguments ``fn`` receives: non-leaf copies of the leaves that require grad."""
    return [a.clone() if isinstance(a, torch.Tensor) and a.requires_grad else a for a in leaves]


def _vjp(res: Any, leaf: torch.Tensor, g_ts: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """torch's vector-Jacobian product of ``fn``'s result ``res`` with respect to ``leaf``."""
    outs, _ = _outputs(res, "at a probe point")
    live = [(o, g) for o, g in zip(outs, g_ts) if o.requires_grad]
    if not live:
        return None
    (g,) = torch.autograd.grad([o for o, _ in live], [leaf], grad_outputs=[g for _, g in live],
                               allow_unused=True)
    return g


@dataclass
class _Target:
    """One tensor whose gradient is checked."""

    name: str
    original: torch.Tensor  # the caller's tensor (never written)
    analytic: torch.Tensor  # the copy autograd differentiates (original dtype)
