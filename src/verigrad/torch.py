"""PyTorch interop: check any torch backward pass with verigrad, and compare a verigrad network with torch.

This module is an optional extra: ``import verigrad`` never imports it, and importing it without PyTorch
raises an :class:`ImportError` that names the extra (``pip install "verigrad[torch]"``).

Two entry points:

``check(fn, *inputs, dLdf=None, **options)``
    Verify the gradients torch autograd computes for ``fn`` (any differentiable torch callable, the
    ``.apply`` of a custom :class:`torch.autograd.Function`, or an :class:`torch.nn.Module`) against finite
    differences, with the same methods, modes, diagnoses (scale, sign, transpose, one column wrong, kink,
    float32 round-off, ...) and worst-entry report as the NumPy checker :mod:`verigrad.check`. Custom
    Functions are checked as they are written: non-tensor arguments (``MulConstant.apply(x, 2.5)``,
    ``LinearFunction.apply(x, W, None)``), several outputs (``setup_context`` style included),
    in-place Functions with ``ctx.mark_dirty``; backward-specific bugs get their own findings (gradients
    returned in the wrong order or of the wrong shape, ``None`` from a wrong ``needs_input_grad`` index,
    ``grad_output`` modified in place).

``parity(numpy_model, torch_module, X, y, loss)``
    Copy the weights of a verigrad ``NeuralNetwork`` into an equivalent torch module (built when not
    given), run both, and compare outputs, losses and every gradient, with torch autograd as the
    reference.

How ``check`` works. With an upstream gradient :math:`G` (``dLdf``; random normal by default, ``1`` for a
scalar output) the checked quantity is the scalar

.. math:: L(\\theta) = \\sum_{ij\\ldots} f(\\theta)_{ij\\ldots} \\, G_{ij\\ldots}

whose gradient with respect to every input and parameter :math:`\\theta` is exactly the vector-Jacobian
product torch's backward computes. The analytic side runs torch autograd on copies of the caller's
tensors in their *original* dtype (so a float32 backward is judged as float32); the numerical side
evaluates :math:`f` on float64 copies, one checked tensor at a time, through
:func:`verigrad.check.check_gradients` (which perturbs its own NumPy copy of that tensor and judges the
differences against float64 round-off and the analytic gradient against its own dtype's). The caller's
tensors, parameters, buffers and ``.grad`` fields are never written (the state of modules ``fn`` merely
holds, e.g. a lambda calling ``model``, is written back after the check).
"""

from __future__ import annotations

import copy
import functools
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

try:
    import torch
except ImportError as _exc:  # pragma: no cover - exercised only without torch installed
    raise ImportError(
        "verigrad.torch needs PyTorch, which is an optional extra of verigrad. "
        'Install it with: pip install "verigrad[torch]"'
    ) from _exc

if TYPE_CHECKING:  # pragma: no cover
    from verigrad.check.report import ModelReport

__all__ = [
    "PARITY_TOLERANCES",
    "TorchCheckError",
    "check",
    "ParityEntry",
    "ParityReport",
    "parity",
    "to_torch",
]


class TorchCheckError(RuntimeError):
    """Raised when ``fn`` cannot be checked at all (e.g. it fails in float64 and ``double=True``)."""


# ----------------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------------


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
    """A NumPy copy of ``t`` (bfloat16, which NumPy lacks, becomes float32)."""
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.resolve_conj().resolve_neg().numpy().copy()


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


def _out_numpy(f: torch.Tensor) -> np.ndarray:
    """A fresh NumPy copy of the output (never aliasing an input the checker perturbs)."""
    f = f.detach()
    if f.dtype == torch.bfloat16:
        f = f.float()
    if f.device.type != "cpu":
        f = f.cpu()
    if f.is_conj() or f.is_neg():
        f = f.resolve_conj().resolve_neg()
    return f.numpy().copy()


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


_INVALID_GRADIENT = re.compile(
    r"Function (\w+) returned an invalid gradient at index (\d+) - got \[([\d, ]*)\] but expected shape "
    r"compatible with \[([\d, ]*)\]"
)


def _shape_of(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.replace(" ", "").split(",") if s)


def _invalid_gradient(
    exc: RuntimeError,
    fn: Any,
    outs: list[torch.Tensor],
    g_ts: list[torch.Tensor],
    inputs: Sequence[Any],
    checked: list[int],
    targets: list[_Target],
    input_names: list[str],
) -> tuple[list[torch.Tensor | None], dict[str, Any]]:
    """torch refused the gradients a backward returned: recover them (for ``Function.apply`` called
    directly) and say what is wrong with each, or raise :class:`TorchCheckError` explaining it."""
    m = _INVALID_GRADIENT.search(str(exc))
    if m is None:
        raise TorchCheckError(f"torch's backward of fn raised: {type(exc).__name__}: {exc}") from exc
    node, index, got_shape, expected = m.group(1), int(m.group(2)), _shape_of(m.group(3)), _shape_of(m.group(4))
    shapes = {input_names[i]: tuple(x.shape) for i, x in enumerate(inputs) if isinstance(x, torch.Tensor)}
    owners = [n for n, s in shapes.items() if s == got_shape]
    hint = (f"; {got_shape} is the shape of {', '.join(owners)}: the gradients look returned in the wrong "
            "order" if owners else "")
    rule = ("backward must return one gradient per forward argument, in the order of forward's arguments, each "
            "of that argument's shape (None for non-tensor arguments)")
    node_fn = outs[0].grad_fn if len(outs) == 1 else None
    if node_fn is None or type(node_fn).__name__ != node:
        raise TorchCheckError(
            f"the backward of {node} returns at position {index} a gradient of shape {got_shape} for a forward "
            f"argument of shape {expected}{hint}; {rule}"
        ) from exc
    from verigrad.check.diagnosis import special

    with torch.no_grad():
        raw = node_fn.apply(g_ts[0])  # the Function's own backward, unvalidated
    raw = tuple(raw) if isinstance(raw, (tuple, list)) else (raw,)
    got: list[torch.Tensor | None] = []
    forced: dict[str, Any] = {}
    slot = _gradient_slots(fn, node_fn, raw, inputs, checked, targets, input_names)
    if slot is None:
        raise TorchCheckError(
            f"the backward of {node} returns at position {index} a gradient of shape {got_shape} for a forward "
            f"argument of shape {expected}{hint}; {rule}"
        ) from exc
    for t in targets:
        i = slot[t.name]
        r = raw[i] if i < len(raw) else None
        shape = tuple(t.analytic.shape)
        if not isinstance(r, torch.Tensor) or tuple(r.shape) == shape:
            got.append(r)
            continue
        rs = tuple(r.shape)
        if len(shape) == 2 and rs == shape[::-1]:
            got.append(r)  # the checker diagnoses a gradient of the transposed shape as "transpose"
            continue
        try:
            got.append(r.sum_to_size(shape))  # what torch does with a broadcastable gradient
            continue
        except RuntimeError:
            pass
        got.append(None)
        others = [n for n, s in shapes.items() if s == rs and n != t.name]
        forced[t.name] = special(
            "mismatch",
            f"the backward of {node} returns for {t.name} (position {i}) a gradient of shape {rs}, but "
            f"{t.name} has shape {shape}"
            + (f"; {rs} is the shape of {', '.join(others)}: gradients returned in the wrong order?" if others
               else "")
            + f". {rule[0].upper()}{rule[1:]}",
            argument=t.name, returned_shape=list(rs), expected_shape=list(shape), shape_of=others,
        )
    return got, forced


def _gradient_slots(
    fn: Any,
    node_fn: Any,
    raw: tuple,
    inputs: Sequence[Any],
    checked: list[int],
    targets: list[_Target],
    input_names: list[str],
) -> dict[str, int] | None:
    """Which of the gradients a Function's backward returned belongs to which checked tensor.

    ``fn`` is the Function's ``apply``: by input position. Otherwise (a module or function whose output
    is the Function's): by following the node's inputs (through ``clone``) to the checked leaves, when
    every checked tensor is reached that way; None when it cannot be told.
    """
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, torch.autograd.Function):
        return {input_names[i]: i for i in checked}
    nexts = node_fn.next_functions
    if len(nexts) != len(raw):
        return None
    by_id = {id(t.analytic): t.name for t in targets}
    slot: dict[str, int] = {}
    for k, (nxt, _) in enumerate(nexts):
        while nxt is not None and type(nxt).__name__.startswith("CloneBackward") and len(nxt.next_functions) == 1:
            nxt = nxt.next_functions[0][0]
        var = getattr(nxt, "variable", None)
        if var is not None and id(var) in by_id:
            slot[by_id[id(var)]] = k
    return slot if len(slot) == len(targets) else None

def _graph_leaves(outs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The leaf tensors autograd would accumulate into from ``outs`` (AccumulateGrad nodes of the graph)."""
    seen: set[int] = set()
    leaves: list[torch.Tensor] = []
    stack = [o.grad_fn for o in outs if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        var = getattr(node, "variable", None)
        if isinstance(var, torch.Tensor):
            leaves.append(var)
        stack.extend(n for n, _ in node.next_functions)
    return leaves


def _grads_by_backward(outs: list[torch.Tensor], g_ts: list[torch.Tensor], targets: list[_Target],
                       fn: Any) -> list[torch.Tensor | None]:
    """The gradients of ``targets`` by ``torch.autograd.backward`` (for code ``torch.autograd.grad`` refuses),
    with the ``.grad`` of every leaf it may write into (the graph's, the tensors ``fn`` holds) restored."""
    glob = getattr(fn, "__globals__", None) or {}
    cells = {}
    code = getattr(fn, "__code__", None)
    if code is not None:
        for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
            try:
                cells[name] = cell.cell_contents
            except ValueError:
                pass
    held = [cells.get(n, glob.get(n)) for n in _held_grad_tensors(fn)]
    leaves = _graph_leaves(outs) + [t.analytic for t in targets] + [h for h in held if isinstance(h, torch.Tensor)]
    saved = {id(v): (v, v.grad) for v in leaves}
    try:
        for v, _ in saved.values():
            v.grad = None
        torch.autograd.backward(outs, grad_tensors=g_ts)
        return [None if t.analytic.grad is None else t.analytic.grad.detach().clone() for t in targets]
    finally:
        for v, g in saved.values():
            v.grad = g

def _swapped(reports: dict[str, Any]) -> None:
    """Rename the diagnosis of a failing gradient that matches another tensor's numerical gradient.

    ``a_i`` within the tolerance of ``n_j`` everywhere (and not of ``n_i``): the backward returned the
    gradient of ``j`` in the place of ``i`` (swapped return values, wrong ``needs_input_grad`` branch).
    """
    from verigrad.check.diagnosis import special

    names = list(reports)
    for a in names:
        ra = reports[a]
        if ra.passed or ra.diagnosis.kind in ("mutates_input", "nondeterministic"):
            continue
        for b in names:
            rb = reports[b]
            if a == b or rb.shape != ra.shape or not np.all(np.isfinite(rb.numerical)):
                continue
            if not np.any(rb.numerical):
                continue
            tol = np.asarray(rb.tolerance, dtype=np.float64)
            if tol.shape != rb.numerical.shape or not np.all(np.isfinite(tol)):
                continue
            if np.max(np.abs(rb.numerical)) <= 10 * np.max(tol):  # b's gradient is ~0: nothing to recognise
                continue
            if np.all(np.abs(ra.analytic - rb.numerical) <= tol):
                both = not rb.passed and np.all(np.abs(rb.analytic - ra.numerical) <= np.asarray(ra.tolerance))
                msg = (f"the gradient returned for {a} is the gradient of {b}"
                       + (f" and the one for {b} is that of {a}: swapped" if both else "")
                       + ": return the gradients in the order of the forward's arguments")
                ra.diagnosis = special("mismatch", msg, argument=a, gradient_of=b, swapped=bool(both))
                break



def _held_modules(fn: Any, depth: int = 0) -> list[torch.nn.Module]:
    """The ``nn.Module`` objects ``fn`` runs on without verigrad copying them: the owner of a bound method,
    modules in the closure cells of a function or in the global names its code uses (and so on in the
    functions found there, three levels deep), the function and arguments of a :func:`functools.partial`.
    (A module passed as ``fn`` itself is deep-copied instead.)"""
    found: list[Any] = []
    if depth > 3 or isinstance(fn, torch.nn.Module):
        return []

    def visit(obj: Any) -> None:
        if isinstance(obj, torch.nn.Module):
            found.append(obj)
        elif isinstance(obj, (list, tuple)) and len(obj) <= 64:
            for o in obj:
                if isinstance(o, torch.nn.Module):
                    found.append(o)
        elif isinstance(obj, dict) and len(obj) <= 64:
            for o in obj.values():
                if isinstance(o, torch.nn.Module):
                    found.append(o)
        elif callable(obj) and not isinstance(obj, type):
            found.extend(_held_modules(obj, depth + 1))

    visit(getattr(fn, "__self__", None))
    code, glob = getattr(fn, "__code__", None), getattr(fn, "__globals__", None)
    if code is not None and isinstance(glob, dict):
        for name in code.co_names:  # the global names fn's code uses (a notebook's `model`)
            if name in glob:
                visit(glob[name])
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            visit(cell.cell_contents)
        except ValueError:  # an empty cell
            pass
    if isinstance(fn, functools.partial):
        visit(fn.func)
        for a in list(fn.args) + list(fn.keywords.values()):
            visit(a)
    unique: dict[int, torch.nn.Module] = {}
    for m in found:
        unique.setdefault(id(m), m)
    return list(unique.values())


def _held_grad_tensors(fn: Any) -> list[str]:
    """Names of the tensors requiring grad that ``fn`` uses without receiving them: its closure variables
    and the global names its code uses (``lambda x: x @ W`` with a global ``W``). They are not checked."""
    code = getattr(fn, "__code__", None)
    if code is None or isinstance(fn, torch.nn.Module):
        return []
    found = []
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, torch.Tensor) and value.requires_grad:
            found.append(name)
    glob = getattr(fn, "__globals__", None)
    if isinstance(glob, dict):
        for name in code.co_names:
            value = glob.get(name)
            if isinstance(value, torch.Tensor) and value.requires_grad and name not in found:
                found.append(name)
    return found

def _module_state(modules: list[torch.nn.Module]) -> list[dict[str, torch.Tensor | None]]:
    """Copies of every parameter, buffer and ``.grad`` of ``modules``."""
    states = []
    for m in modules:
        st: dict[str, torch.Tensor | None] = {}
        for n, p in m.named_parameters():
            st["p:" + n] = p.detach().clone()
            st["g:" + n] = None if p.grad is None else p.grad.detach().clone()
        for n, b in m.named_buffers():
            st["b:" + n] = None if b is None else b.detach().clone()
        states.append(st)
    return states


def _restore_module_state(modules: list[torch.nn.Module], states: list[dict[str, torch.Tensor | None]]) -> list[str]:
    """Write back what changed; return descriptions of the restored tensors."""
    restored: list[str] = []
    for m, st in zip(modules, states):
        params = dict(m.named_parameters())
        buffers = dict(m.named_buffers())
        with torch.no_grad():
            for key, saved in st.items():
                kind, n = key[0], key[2:]
                if kind == "p" and n in params and not _same_values(params[n].detach(), saved):
                    params[n].copy_(saved)
                    restored.append(f"{type(m).__name__}.{n}")
                elif kind == "g" and n in params:
                    p = params[n]
                    if saved is None and p.grad is not None:
                        p.grad = None
                        restored.append(f"{type(m).__name__}.{n}.grad")
                    elif saved is not None and (p.grad is None or not _same_values(p.grad, saved)):
                        p.grad = saved
                        restored.append(f"{type(m).__name__}.{n}.grad")
                elif kind == "b" and n in buffers and saved is not None and buffers[n] is not None:
                    if not _same_values(buffers[n], saved):
                        buffers[n].copy_(saved)
                        restored.append(f"{type(m).__name__}.{n}")
    return restored


# ----------------------------------------------------------------------------------------------------
# check
# ----------------------------------------------------------------------------------------------------


@dataclass
class _Target:
    """One tensor whose gradient is checked."""

    name: str
    original: torch.Tensor  # the caller's tensor (never written)
    analytic: torch.Tensor  # the copy autograd differentiates (original dtype)


def _deepcopy_module(module: torch.nn.Module) -> torch.nn.Module:
    try:
        return copy.deepcopy(module)
    except Exception as exc:  # noqa: BLE001 - any deepcopy failure gets the same explanation
        raise TypeError(
            f"fn ({type(module).__name__}) cannot be deep-copied ({type(exc).__name__}: {exc}); "
            "verigrad.torch.check works on copies of the module so that yours is never modified"
        ) from exc


def _input_names(n: int, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [f"input{i}" for i in range(n)]
    if isinstance(names, str) or len(names) != n:
        raise ValueError(
            f"names must be a sequence of {n} strings (one per input), got {names!r}"
        )
    out = [str(s) for s in names]
    if len(set(out)) != n:
        raise ValueError(f"names must be distinct, got {out!r}")
    return out


def check(
    fn: Callable[..., torch.Tensor],
    *inputs: torch.Tensor,
    dLdf: Any = None,
    seed: int | None = 0,
    rng: np.random.Generator | None = None,
    wrt: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    double: bool | None = None,
    method: str = "central",
    num_threads: int | None = 1,
    probe: bool = False,
    output: int | Callable[[Any], torch.Tensor] | None = None,
    **options: Any,
) -> ModelReport:
    """Check the gradients torch autograd computes for ``fn`` against finite differences.

    Every input tensor with ``requires_grad=True`` is checked and, when ``fn`` is a
    :class:`torch.nn.Module`, every trainable parameter. With the upstream gradient :math:`G` = ``dLdf``
    the checked scalar is :math:`L = \\sum f(\\text{inputs}) \\odot G`, so the analytic gradient of an
    input :math:`x` is torch's vector-Jacobian product :math:`G^\\top \\partial f / \\partial x`.

    Parameters
    ----------
    fn : callable
        A differentiable torch callable: a function of tensors, a custom Function's ``.apply``, or an
        ``nn.Module``. It returns one floating-point tensor ``f`` of any shape, or a (nested) tuple,
        list or dict of tensors: its floating-point tensors :math:`f_1, f_2, \\ldots` are then checked
        together, :math:`L = \\sum_k \\sum f_k \\odot G_k` (integer outputs such as indices are skipped;
        select a single output with ``output``).
    *inputs : torch.Tensor or any
        The positional arguments of ``fn``. Tensors with ``requires_grad=True`` are checked (see
        ``wrt``); other arguments (a constant, ``None`` for an optional bias, a flag) are passed to every
        call unchanged, as ``Function.apply`` receives them. NumPy arrays are refused (convert them with
        ``torch.from_numpy``). A checked tensor reaches ``fn`` as a non-leaf copy, so a Function that
        writes into its input and declares it (``ctx.mark_dirty``) is checked like any other.
    dLdf : tensor, ndarray or float, or a tuple of them, optional
        Upstream gradient :math:`G` of the same shape as ``f`` (a scalar is broadcast); one per output
        when ``fn`` returns several. By default a standard normal draw from ``rng`` (``1`` when ``f`` is
        a scalar, e.g. a loss), rounded to the output's dtype.
    seed : int or None, default 0
        Seed of the default ``rng`` and of the checker's sampling.
    rng : numpy.random.Generator, optional
        Generator for the random ``dLdf`` (default ``np.random.default_rng(seed)``).
    wrt : sequence of int, optional
        Positions of the inputs to check, overriding ``requires_grad``. They must be floating point.
    names : sequence of str, optional
        Names of the inputs in the report (default ``"input0"``, ``"input1"``, ...). Module parameters
        are named as ``named_parameters()`` names them.
    double : bool or None, default None
        Where the numerical side computes. ``True``: on float64 copies; if ``fn`` raises there (typically
        because it mixes the inputs with float32 tensors it closes over: data, labels, weights), again
        with every float32/16 tensor inside ``fn`` upcast to float64 (a torch function mode, noted in
        the report); :class:`TorchCheckError` if that fails too. ``False``: on copies in the original
        dtype (float32 finite differences are much less accurate). ``None``: as ``True``, then falling
        back to the original dtype with a :class:`UserWarning`; the report's ``torch_numeric_dtype``
        attribute says which was used.
    method : {"central", "richardson", "auto", "complex"}, default "central"
        Finite-difference method of :func:`verigrad.check.check_gradients`. Complex step needs ``fn``
        to accept complex tensors and be complex-analytic, which torch code rarely is: the checker
        validates it first and falls back to central differences (with a note).
    num_threads : int or None, default 1
        torch intra-op threads while the finite differences run (restored afterwards). Each evaluation
        is small, and on a busy machine handing a 1000-entry op to a second thread costs more than the
        op (measured: ``tanh`` of 40x30 float64 takes 14 us on one thread, 80-200 us on two). ``None``
        keeps torch's setting (better for a large module, where every evaluation is heavy).
    output : int or callable, optional
        Selects the checked tensor when ``fn`` returns several (``nn.LSTM`` returns
        ``(out, (h, c))``): an index (``output=0``) or a callable applied to the result
        (``output=lambda r: r[1][0]``). The module's parameters are still checked.
    probe : bool, default False
        Also check each tensor at the checker's probe points (the tensor scaled by 10 and by 0.1,
        shifted by 1, negated), recomputing torch's analytic gradient there: catches backward passes
        that are wrong only for large or negative inputs (a "saturated, return 0" shortcut). About 5
        times the work.
    **options
        Passed to :func:`verigrad.check.check_gradients` for every tensor: ``mode`` (``"full"``,
        ``"sample"``, ``"fast"``), ``k``, ``eps``, ``atol``, ``rtol``, ``batch_size`` (names a scale
        factor N in the diagnosis; default: the leading dimension of the first input with 2 or more
        dimensions, when larger than 2; pass ``batch_size=None`` to disable). ``raise_on_failure=True``
        raises :class:`verigrad.check.GradientCheckError` after the whole report is built. ``name`` is not
        supported (see ``names``).

    Returns
    -------
    ModelReport
        One entry per checked tensor, named ``input0``... and by parameter name. ``report.passed``,
        ``report.diagnosis.kind`` (``ok``, ``scale``, ``sign``, ``transpose``, ``partial``, ``zero``,
        ``kink``, ``precision``, ``mutates_input``, ``nondeterministic``, ``mismatch``), ``str(report)``.
        A backward returning the gradients in the wrong order is diagnosed ``mismatch`` with a message
        naming the swap (``details["gradient_of"]``, or ``details["returned_shape"]`` when torch refused
        the shape); a backward returning ``None`` for a checked input is judged as zeros, with a note.
        Extra attributes: ``torch_numeric_dtype`` (``"float64"`` or the original dtype) and
        ``torch_notes`` (list of str: fallbacks and mutation findings).

    Raises
    ------
    TypeError
        ``fn`` not callable, an input a NumPy array, no tensor input at all, a checked input not floating
        point, ``fn`` not returning a floating-point tensor (or a tuple holding one).
    TorchCheckError
        ``fn`` cannot be evaluated on the float64 copies (``double=True``), or its backward raised (e.g.
        a gradient of the wrong shape somewhere inside ``fn``; the message says which and why).
    ValueError
        Nothing to check (no input requires grad and no trainable parameter), bad ``wrt``/``names``/
        ``dLdf``.

    Notes
    -----
    The caller's tensors and module are left bit-identical, ``.grad`` fields included: autograd runs
    on detached copies (a deep copy for a module) and gradients are taken with
    :func:`torch.autograd.grad`, which never accumulates into ``.grad``. A module that ``fn`` runs
    without being it (``lambda x: model(x)``, ``model.forward``, a :func:`functools.partial`, a module
    in a closure or a global name ``fn`` uses) is evaluated in place, so its parameters, buffers (BatchNorm
    running statistics, ``num_batches_tracked``) and ``.grad`` fields are saved first and written back
    afterwards, also when ``fn`` raises (noted in the report when something changed). A ``fn`` whose
    forward or backward writes into its inputs, parameters or incoming gradient (``grad_output``)
    without telling autograd is reported as ``mutates_input``; one whose output changes between
    identical calls (dropout in training mode, unseeded noise) as ``nondeterministic``.

    Each tensor is checked by its own :func:`verigrad.check.check_gradients` call, so that the
    evaluation precision (float64) and the analytic gradient's precision (e.g. float32) are judged
    separately: a float32 backward is held to float32 round-off while the finite differences use
    float64-sized steps, which do not cross a ReLU kink that float32 round-off merely brushes.

    Examples
    --------
    >>> import torch
    >>> import verigrad.torch as vt
    >>> class Square(torch.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return g * x          # bug: the derivative of x**2 is 2x
    >>> x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    >>> report = vt.check(Square.apply, x)
    >>> report.passed, report.diagnosis.kind
    (False, 'scale')
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    >>> vt.check(model, torch.randn(8, 3)).passed      # float32 module, every parameter checked
    True
    """
    held = _held_modules(fn)
    saved = _module_state(held)
    try:
        report = _check(fn, inputs, dLdf, seed, rng, wrt, names, double, method, num_threads, probe, output, options)
    finally:
        restored = _restore_module_state(held, saved)
    if restored:
        note = (
            f"fn runs module(s) it holds ({', '.join(restored)}) whose state changed during the check "
            "(e.g. BatchNorm running statistics in training mode): restored"
        )
        report.torch_notes.append(note)
        if isinstance(getattr(report, "notes", None), list):
            report.notes.append(note)
    return report


def _check(fn: Callable[..., Any], inputs: tuple[Any, ...], dLdf: Any, seed: int | None,  # noqa: PLR0913
           rng: np.random.Generator | None, wrt: Sequence[int] | None, names: Sequence[str] | None,
           double: bool | None, method: str, num_threads: int | None, probe: bool,
           output: int | Callable[[Any], torch.Tensor] | None, options: dict[str, Any]) -> ModelReport:
    """:func:`check` (same arguments, ``options`` as a dict) without the protection of the modules ``fn``
    holds."""
    if not callable(fn):
        raise TypeError(f"fn must be callable (a function, Function.apply or nn.Module), got {type(fn).__name__}")
    if rng is None:
        rng = np.random.default_rng(seed)
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if double not in (None, True, False):
        raise TypeError(f"double must be True, False or None, got {double!r}")
    if output is not None and not callable(output) and (
        isinstance(output, bool) or not isinstance(output, (int, np.integer))
    ):
        raise TypeError(f"output must be an index or a callable, got {output!r}")
    if num_threads is not None and (
        isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1
    ):
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    input_names = _input_names(len(inputs), names)
    is_tensor = [isinstance(x, torch.Tensor) for x in inputs]
    for i, x in enumerate(inputs):
        if isinstance(x, np.ndarray) or (not any(is_tensor) and i == 0):
            raise TypeError(
                f"input {i} ({input_names[i]}, positional argument {i + 1} after fn) is a {type(x).__name__}, "
                "expected a torch.Tensor"
                + (": convert it with torch.from_numpy(...)" if isinstance(x, np.ndarray) else
                   ": tensors inside a container are not checked, pass them as separate inputs, e.g. "
                   "check(lambda a, b: torch.cat([a, b]), a, b)"
                   if any(isinstance(o, torch.Tensor) for _, o in _flatten(x)) else
                   ": fn needs at least one tensor input to check")
                + " (numbers, None and other non-tensor arguments are passed to fn unchanged)"
            )

    # ---- which inputs are checked
    if wrt is None:
        checked = [i for i, x in enumerate(inputs) if is_tensor[i] and x.requires_grad]
    else:
        if isinstance(wrt, int):
            wrt = [wrt]
        checked = []
        for i in wrt:
            if not isinstance(i, (int, np.integer)) or isinstance(i, bool) or not -len(inputs) <= i < len(inputs):
                raise ValueError(
                    f"wrt must hold input positions in range(0, {len(inputs)}), got {i!r}"
                )
            i = int(i) % len(inputs)
            if not is_tensor[i]:
                raise TypeError(
                    f"wrt names input {i} ({input_names[i]}), a {type(inputs[i]).__name__}: only tensors have "
                    "gradients to check (other arguments are passed to fn unchanged)"
                )
            if i not in checked:
                checked.append(i)
    for i in checked:
        x = inputs[i]
        if not x.is_floating_point():
            hint = (
                "complex gradients (Wirtinger calculus) are not supported; check the real and "
                "imaginary parts as two real inputs"
                if x.is_complex()
                else "integer and boolean inputs such as class labels have no gradient: leave them out of wrt"
            )
            raise TypeError(
                f"input {i} ({input_names[i]}) has dtype {x.dtype}: only floating-point tensors have "
                f"gradients to check; {hint}"
            )

    module = fn if isinstance(fn, torch.nn.Module) else None
    param_names: list[str] = []
    if module is not None:
        for pname, p in module.named_parameters():
            if not p.requires_grad:
                continue
            if not p.is_floating_point():
                raise TypeError(f"parameter {pname!r} has dtype {p.dtype}: only floating-point parameters can be checked")
            if pname in input_names:
                raise ValueError(f"parameter name {pname!r} collides with an input name; pass names=")
            param_names.append(pname)
    held = _held_grad_tensors(fn)
    held += [
        f"inside {input_names[i]}, a {type(x).__name__}" for i, x in enumerate(inputs)
        if not is_tensor[i] and any(isinstance(o, torch.Tensor) and o.requires_grad for _, o in _flatten(x))
    ]
    held_hint = (
        f"fn uses tensor(s) requiring grad that are not among its inputs ({'; '.join(held)}): they are not "
        "checked; pass them as inputs to check them, e.g. check(lambda x, W: ..., x, W) or "
        "check(lambda a, b: torch.cat([a, b]), a, b)"
    ) if held else ""
    if not checked and not param_names:
        what = "fn is not an nn.Module" if module is None else "the module has no trainable parameter"
        n_t = f"{sum(is_tensor)} tensor" if not all(is_tensor) else f"{len(inputs)}"
        raise ValueError(
            f"nothing to check: none of the {n_t} inputs requires grad and {what}. "
            "Call x.requires_grad_() on the inputs to check, or pass wrt=[positions]."
            + (f" Note: {held_hint}." if held else "")
        )

    notes: list[str] = [held_hint] if held else []
    owner = getattr(fn, "__self__", None)
    if module is None and isinstance(owner, torch.nn.Module):
        notes.append(
            f"fn is a method of a {type(owner).__name__} module: only the inputs are checked, not its "
            "parameters; pass the module itself to check them"
        )

    # ---- analytic side: torch autograd on copies in the original dtypes
    a_inputs = [
        x.detach().clone().requires_grad_(i in checked) if is_tensor[i] else x for i, x in enumerate(inputs)
    ]
    a_module = _deepcopy_module(module) if module is not None else None
    a_fn = _selecting(a_module if a_module is not None else fn, output)
    a_params = dict(a_module.named_parameters()) if a_module is not None else {}
    orig_params = dict(module.named_parameters()) if module is not None else {}
    targets = [_Target(input_names[i], inputs[i], a_inputs[i]) for i in checked]
    targets += [_Target(n, orig_params[n], a_params[n]) for n in param_names]
    # fn receives non-leaf copies of the checked leaves, as inside a network: an in-place Function
    # (ctx.mark_dirty) or op may write into them, which torch refuses on a leaf that requires grad
    with torch.enable_grad():
        passed = _call_args(a_inputs)
    before_nodes = [a.grad_fn if isinstance(a, torch.Tensor) else None for a in passed]

    def mutated(stage: str, reference: list[Any], param_reference: dict[str, torch.Tensor]) -> list[str]:
        found = []
        for i, x in enumerate(reference):
            if is_tensor[i] and not _same_values(passed[i].detach(), x.detach()):
                if stage == "forward" and passed[i].requires_grad and passed[i].grad_fn is not before_nodes[i]:
                    notes.append(
                        f"fn writes into its argument {input_names[i]} in place, telling autograd "
                        "(ctx.mark_dirty or an in-place torch op): every evaluation gets a fresh copy"
                    )
                    found.append("declared")
                    continue
                if stage == "forward" and not passed[i].requires_grad:
                    notes.append(
                        f"fn writes into its argument {input_names[i]} in place (max change "
                        f"{_max_change(x, passed[i]):.3g}; e.g. nn.ReLU(inplace=True) on the input); it needs no "
                        "gradient, so this is no gradient bug, but your tensor changes when you call fn: every "
                        "evaluation here gets a fresh copy"
                    )
                    found.append("declared")
                    continue
                found.append(
                    f"the {stage} of fn writes into its argument {input_names[i]} in place "
                    f"(max change {_max_change(x, passed[i]):.3g})"
                )
        for n, p in a_params.items():
            if not _same_values(p.detach(), param_reference[n].detach()):
                found.append(
                    f"the {stage} of fn writes into parameter {n} in place "
                    f"(max change {_max_change(param_reference[n], p):.3g})"
                )
        return found

    with torch.enable_grad():
        outs, out_notes = _outputs(_call(a_fn, passed), "called on the inputs")
        notes.extend(out_notes)
        for k, out in enumerate(outs):
            finite = torch.isfinite(out.detach())
            if not bool(finite.all()):
                first = tuple(int(i) for i in torch.nonzero(~finite)[0]) if out.dim() else ()
                which = "" if len(outs) == 1 else f" {k}"
                raise ValueError(
                    f"fn's output{which} is not finite at the given inputs (first NaN/inf at index {first}); "
                    "a gradient check needs a finite output"
                )
        forward_found = mutated("forward", list(inputs), orig_params)
        mutation_notes = [n for n in forward_found if n != "declared"]
        after_forward = [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in passed]
        params_after_forward = {n: p.detach().clone() for n, p in a_params.items()}
        g_list = _make_dLdfs(dLdf, outs, rng)
        g_ts = [torch.tensor(g, dtype=o.dtype, device=o.device) for g, o in zip(g_list, outs)]  # copies
        g_before = [g.clone() for g in g_ts]
        live = [k for k, o in enumerate(outs) if o.requires_grad]
        forced: dict[str, Any] = {}
        if live:
            try:
                got = list(torch.autograd.grad(
                    [outs[k] for k in live], [t.analytic for t in targets],
                    grad_outputs=[g_ts[k] for k in live], allow_unused=True,
                ))
            except RuntimeError as exc:
                if "incompatible with .grad()" in str(exc):  # reentrant torch.utils.checkpoint
                    got = _grads_by_backward([outs[k] for k in live], [g_ts[k] for k in live], targets, fn)
                    notes.append(
                        "fn uses torch.utils.checkpoint(use_reentrant=True), which torch.autograd.grad refuses: "
                        "gradients taken with .backward() on the copies (every .grad written is restored)"
                        + ("; probe points skipped" if probe else "")
                    )
                    probe = False
                else:
                    got, forced = _invalid_gradient(exc, fn, outs, g_ts, inputs, checked, targets, input_names)
                    if probe:
                        probe = False  # torch refuses this backward's gradients at every point
                        notes.append("probe points skipped: torch refuses the gradients this backward returns")
        else:
            notes.append("fn's output does not depend on any checked tensor in torch's graph (no grad_fn)")
            got = [None] * len(targets)
        if live:
            for t, g in zip(targets, got):
                if g is None and t.name not in forced:
                    notes.append(
                        f"torch's backward returned no gradient (None) for {t.name}, judged as zeros: a "
                        "custom backward returning None for an input that requires grad (check the "
                        "ctx.needs_input_grad indices and the order of the returned gradients), or an "
                        "output that does not depend on it"
                    )
    mutation_notes += mutated("backward", after_forward, params_after_forward)
    for k, (g, g0) in enumerate(zip(g_ts, g_before)):
        if not _same_values(g, g0):
            which = "" if len(outs) == 1 else f" of output {k}"
            mutation_notes.append(
                f"the backward of fn writes into its incoming gradient{which} (grad_output) in place "
                f"(max change {_max_change(g0, g):.3g}): autograd may share that tensor with other branches "
                "of the graph; clone it first"
            )
    fresh = bool(forward_found)

    grads: dict[str, np.ndarray] = {}
    for t, g in zip(targets, got):
        grads[t.name] = _grad_numpy(g, t.analytic, t.name, notes)
        bad = ~np.isfinite(grads[t.name])
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
            raise ValueError(
                f"torch's backward returned {int(bad.sum())} non-finite value(s) (NaN or inf) in the gradient "
                f"of {t.name}, first at index {first}: {grads[t.name][first]}; the output is finite, so a "
                "correct backward must be finite too (a division by zero or log(0) in the backward?)"
            )

    # ---- numerical side: float64 copies; the checker perturbs one tensor at a time
    def build(double_: bool):
        n_inputs = [_numeric_copy(x, double_) if is_tensor[i] else x for i, x in enumerate(inputs)]
        if module is not None:
            n_module = _deepcopy_module(module).cpu()
            if double_:
                n_module = n_module.double()
            elif any(p.dtype == torch.bfloat16 for p in n_module.parameters()):
                n_module = n_module.float()
            return n_module, n_inputs, dict(n_module.named_parameters())
        return fn, n_inputs, {}

    out_shapes = [tuple(o.shape) for o in outs]
    numeric_dtype = "float64"
    # tiers: float64 copies; float64 copies with every coarser float tensor inside fn upcast (fn closes
    # over float32 data or weights); the original dtypes
    tiers = {True: ["float64", "upcast"], False: ["native"], None: ["float64", "upcast", "native"]}[double]
    failures: list[str] = []
    for tier in tiers:
        n_fn, n_inputs, n_params = build(tier != "native")
        n_fn = _selecting(n_fn, output)
        if tier == "upcast":
            n_fn = _upcasting(n_fn)
        where = "on native-dtype copies" if tier == "native" else "on the float64 copies"
        try:
            with torch.no_grad():
                trial = n_fn(*_fresh(n_inputs))
            if isinstance(trial, (torch.Tensor, tuple, list, dict)):
                trial_outs, _ = _outputs(trial, where)
                if [tuple(o.shape) for o in trial_outs] != out_shapes:
                    raise ValueError(
                        f"fn's output has shape(s) {out_shapes} on the original inputs but "
                        f"{[tuple(o.shape) for o in trial_outs]} on the copies"
                    )
        except Exception as exc:  # noqa: BLE001 - any failure of user code in float64 triggers the fallback
            failures.append(f"{type(exc).__name__}: {exc}")
            if tier != tiers[-1]:
                continue
            where = "native-dtype" if tier == "native" else "float64"
            raise TorchCheckError(
                f"fn raised when evaluated on {where} copies of its inputs: {failures[0]}"
            ) from exc
        _outputs(trial, where)
        if tier == "upcast":
            notes.append(
                "fn mixes the checked tensors with float32 tensors it holds (data or weights it closes over: "
                f"{failures[0]}); evaluated in float64 by upcasting every float tensor inside fn"
            )
        if tier == "native":
            dtypes = sorted({str(n_inputs[i].dtype).replace("torch.", "") for i in checked}
                            | {str(n_params[n].dtype).replace("torch.", "") for n in param_names})
            numeric_dtype = "/".join(dtypes)
            if double is None:
                msg = (
                    f"fn cannot run in float64 ({failures[0]}); finite differences computed in the "
                    f"original dtype {numeric_dtype}, which is much less accurate"
                )
                notes.append(msg)
                warnings.warn("verigrad.torch.check: " + msg, UserWarning, stacklevel=2)
        break

    multi = len(outs) > 1

    def out_np(res: Any) -> np.ndarray:
        got_outs, _ = _outputs(res, "at a perturbed point", complex_ok=True)
        if not multi:
            return _out_numpy(got_outs[0])
        return _concat([_out_numpy(o) for o in got_outs])

    g_np = _concat(g_list) if multi else g_list[0]

    def for_input(i: int) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
        def f_np(w: np.ndarray) -> np.ndarray:
            args = _fresh(n_inputs) if fresh else list(n_inputs)
            args[i] = torch.from_numpy(w.copy() if fresh else w)
            return out_np(n_fn(*args))

        return f_np, n_inputs[i].numpy().copy()

    def for_param(name: str) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
        p = n_params[name]

        def f_np(w: np.ndarray) -> np.ndarray:
            p.copy_(torch.from_numpy(w))
            args = _fresh(n_inputs) if fresh else n_inputs
            return out_np(n_fn(*args))

        return f_np, p.detach().numpy().copy()

    def analytic_at(name: str) -> Callable[[np.ndarray], np.ndarray]:
        """The torch analytic gradient of ``name`` at another point (for the checker's probes)."""
        def grad_at(w: np.ndarray) -> np.ndarray:
            with torch.enable_grad():
                args = [x.detach().clone() if is_tensor[j] else x for j, x in enumerate(inputs)]
                if name in positions:
                    i = positions[name]
                    leaf = torch.from_numpy(np.asarray(w)).to(dtype=inputs[i].dtype, device=inputs[i].device)
                    leaf.requires_grad_(True)
                    args[i] = leaf.clone()
                    return _grad_numpy(_vjp(a_fn(*args), leaf, g_ts), leaf, name, [])
                leaf = a_params[name]
                saved = leaf.detach().clone()
                try:
                    with torch.no_grad():
                        leaf.copy_(torch.from_numpy(np.asarray(w)).to(dtype=leaf.dtype, device=leaf.device))
                    return _grad_numpy(_vjp(a_fn(*args), leaf, g_ts), leaf, name, [])
                finally:
                    with torch.no_grad():
                        leaf.copy_(saved)

        return grad_at

    check_gradients, ModelReport = _checker()
    positions = {input_names[i]: i for i in checked}
    if options.get("name"):
        raise TypeError(
            f"option name={options['name']!r} is not supported by verigrad.torch.check (tensors are named "
            "by names= and by the module's parameter names)"
        )
    options.pop("name", None)
    options.setdefault("seed", seed)
    if "batch_size" not in options:
        # the conventional batch axis: lets the diagnosis name a factor N ("missing 1/N")
        lead = [int(x.shape[0]) for i, x in enumerate(inputs) if is_tensor[i] and x.dim() >= 2]
        if lead and lead[0] > 2:
            options["batch_size"] = lead[0]
    if numeric_dtype != "float64":
        options["promote"] = False  # fn cannot run in float64: do not let the checker try
    raise_on_failure = bool(options.pop("raise_on_failure", False))
    reports: dict[str, Any] = {}
    n_evals = 0
    threads_before = torch.get_num_threads()
    try:
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        with torch.no_grad():
            for t in targets:
                if t.name in positions:
                    f_np, x0 = for_input(positions[t.name])
                else:
                    f_np, x0 = for_param(t.name)
                claimed = analytic_at(t.name) if probe and t.name not in forced else grads[t.name]
                rep = check_gradients(f_np, claimed, x0, dLdf=g_np, method=method, name=t.name,
                                      probe=probe and t.name not in forced, **options)
                if t.name not in positions:
                    n_params[t.name].copy_(torch.from_numpy(x0))
                if t.name in forced:
                    rep.diagnosis = forced[t.name]
                reports[t.name] = rep
                n_evals += rep.n_evals
    finally:
        if torch.get_num_threads() != threads_before:
            torch.set_num_threads(threads_before)
    _swapped(reports)
    first = next(iter(reports.values()))
    report = ModelReport(reports, method=first.method, mode=first.mode, n_evals=n_evals,
                         title="gradient check", notes=[])
    if not report.passed and report.diagnosis.kind == "nondeterministic":
        training = [m for m in ([module] if module is not None else _held_modules(fn)) if m.training]
        if training:
            notes.append(
                f"{', '.join(type(m).__name__ for m in training)} is in training mode, where Dropout, "
                "spectral_norm's power iteration and the like change the output at every call: check "
                "model.eval() for the gradients of the deterministic function"
            )
    _annotate(report, fn, numeric_dtype, notes)
    if mutation_notes:
        report = _mutation_report(report, mutation_notes)
    if raise_on_failure and not report.passed:
        from verigrad.check.report import GradientCheckError

        raise GradientCheckError(report)
    return report


def _fn_name(fn: Any) -> str:
    if isinstance(fn, torch.nn.Module):
        return type(fn).__name__
    owner = getattr(fn, "__self__", None)  # Function.apply is a classmethod bound to the Function class
    if isinstance(owner, type):
        return f"{owner.__name__}.apply"
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def _annotate(report: Any, fn: Any, numeric_dtype: str, notes: list[str]) -> None:
    """Attach the torch facts to the checker's report (title, notes, numerical dtype)."""
    try:
        report.torch_numeric_dtype = numeric_dtype
        report.torch_notes = list(notes)
        if hasattr(report, "title"):
            report.title = f"gradient check of {_fn_name(fn)} (torch, numerical side in {numeric_dtype})"
        if isinstance(getattr(report, "notes", None), list):
            # in-place writes are reported by the mutates_input diagnosis, not repeated as notes
            report.notes.extend(n for n in notes if n not in report.notes and " in place " not in n)
    except (AttributeError, TypeError):  # a frozen or slotted report: the warning already told the user
        pass


def _mutation_report(report: Any, mutation_notes: list[str]) -> Any:
    """Mark ``report`` failed with a ``mutates_input`` diagnosis naming what was written."""
    from verigrad.check.diagnosis import special

    first = mutation_notes[0]
    argument = first.split(" in place")[0].rsplit(" ", 1)[-1]
    message = "; ".join(mutation_notes) + (
        " (the caller's tensors are untouched: the check ran on copies); a backward must not write into "
        "saved tensors or inputs, clone them first"
    )
    diag = special("mutates_input", message, argument=argument, findings=list(mutation_notes))
    if hasattr(report, "global_diagnosis"):
        current = report.global_diagnosis
        if current is None or current.passed:
            report.global_diagnosis = diag
    else:  # pragma: no cover - depends on the checker's report class
        report.diagnosis = diag
    return report


# ----------------------------------------------------------------------------------------------------
# parity: a verigrad NeuralNetwork against the same network in torch
# ----------------------------------------------------------------------------------------------------

#: default (rtol, atol) of :func:`parity` by the dtype of the network.
PARITY_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-12),
    "float32": (1e-4, 1e-7),
    "float16": (1e-2, 1e-3),
}


@dataclass(frozen=True)
class ParityEntry:
    """One compared quantity of :func:`parity`.

    Attributes
    ----------
    name : str
        verigrad name: ``"output"``, ``"loss"``, ``"W_0"``, ``"b_0"``, ..., ``"dL/dX"``.
    torch_name : str
        The torch counterpart, e.g. ``"0.weight.T"`` (a verigrad ``W`` of shape (n_in, n_out) is the
        transpose of ``nn.Linear.weight``).
    shape : tuple of int
    max_abs : float
        ``max |v - t|`` over the entries (``v`` verigrad, ``t`` torch).
    max_rel : float
        ``max |v - t| / max |t|``: the largest difference relative to the size of the torch tensor
        (0 when both are all zeros; inf when only the torch one is).
    passed : bool
        ``max_abs <= atol + rtol * max |t|``.
    """

    name: str
    torch_name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    passed: bool


@dataclass
class ParityReport:
    """Result of :func:`parity`: one :class:`ParityEntry` per compared quantity.

    Attributes
    ----------
    entries : list of ParityEntry
        ``output``, ``loss``, every parameter gradient (``W_0``, ``b_0``, ...) and ``dL/dX``.
    dtype : str
        dtype both sides computed in.
    rtol, atol : float
        Tolerances used.
    torch_module : torch.nn.Module
        The torch network holding the verigrad weights (built, or a copy of the one given).
    torch_loss : callable
        The torch loss used.
    """

    entries: list[ParityEntry]
    dtype: str
    rtol: float
    atol: float
    torch_module: Any = field(repr=False, default=None)
    torch_loss: Any = field(repr=False, default=None)

    @property
    def passed(self) -> bool:
        """True when every entry passed."""
        return all(e.passed for e in self.entries)

    @property
    def failed(self) -> list[ParityEntry]:
        """The entries that did not pass."""
        return [e for e in self.entries if not e.passed]

    @property
    def worst(self) -> ParityEntry:
        """The entry with the largest relative difference."""
        return max(self.entries, key=lambda e: (not e.passed, e.max_rel))

    def __getitem__(self, name: str) -> ParityEntry:
        for e in self.entries:
            if e.name == name or e.torch_name == name:
                return e
        raise KeyError(f"no parity entry named {name!r}; entries are {[e.name for e in self.entries]}")

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for JSON)."""
        return {
            "passed": self.passed,
            "dtype": self.dtype,
            "rtol": self.rtol,
            "atol": self.atol,
            "entries": [
                {"name": e.name, "torch_name": e.torch_name, "shape": list(e.shape),
                 "max_abs": e.max_abs, "max_rel": e.max_rel, "passed": e.passed}
                for e in self.entries
            ],
        }

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else f"FAILED ({', '.join(e.name for e in self.failed)})"
        head = f"parity verigrad vs torch ({self.dtype}, rtol={self.rtol:g}, atol={self.atol:g}): {verdict}"
        rows = [("quantity", "torch", "shape", "max |diff|", "max rel diff", "verdict")]
        for e in self.entries:
            rows.append((e.name, e.torch_name, "x".join(map(str, e.shape)) or "scalar",
                         f"{e.max_abs:.3e}", f"{e.max_rel:.3e}", "ok" if e.passed else "FAIL"))
        widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
        lines = [head]
        for k, r in enumerate(rows):
            lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython plain display
        p.text(str(self))

    def _repr_html_(self) -> str:  # Jupyter
        import html

        verdict = "PASSED" if self.passed else "FAILED"
        colour = "#1a7f37" if self.passed else "#cf222e"
        head = "".join(f"<th>{c}</th>" for c in ("quantity", "torch", "shape", "max |diff|", "max rel diff", "verdict"))
        rows = []
        for e in self.entries:
            c = "#1a7f37" if e.passed else "#cf222e"
            rows.append(
                "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in (
                    e.name, e.torch_name, "x".join(map(str, e.shape)) or "scalar", f"{e.max_abs:.3e}",
                    f"{e.max_rel:.3e}"))
                + f'<td style="color:{c};font-weight:bold">{"ok" if e.passed else "FAIL"}</td></tr>'
            )
        return (f"<div><b>parity verigrad vs torch ({html.escape(self.dtype)}, rtol={self.rtol:g}, "
                f'atol={self.atol:g}): <span style="color:{colour}">{verdict}</span></b>'
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _nn_classes():  # noqa: ANN202
    from verigrad.nn import activations as act
    from verigrad.nn import losses as vl
    from verigrad.nn.layers import Dense

    return act, vl, Dense


def _torch_activation(a: Any, where: str) -> torch.nn.Module:
    act, _, _ = _nn_classes()
    if isinstance(a, act.LeakyReLU):
        return torch.nn.LeakyReLU(negative_slope=a.alpha)
    table = {
        act.Identity: torch.nn.Identity,
        act.ReLU: torch.nn.ReLU,
        act.Tanh: torch.nn.Tanh,
        act.Sigmoid: torch.nn.Sigmoid,
    }
    for cls, tcls in table.items():
        if type(a) is cls:
            return tcls()
    if isinstance(a, act.Softmax):
        return torch.nn.Softmax(dim=-1)
    raise TypeError(
        f"{where} ({type(a).__name__}) has no torch equivalent known to verigrad.torch.to_torch; "
        "build the torch module yourself and pass it as torch_module="
    )


def _check_network(model: Any) -> None:
    if not hasattr(model, "layers") or not callable(getattr(model, "params", None)):
        raise TypeError(
            "numpy_model must be a verigrad NeuralNetwork (with .layers and .params()), got "
            f"{type(model).__name__}"
        )


def _network_dtype(model: Any) -> np.dtype:
    dts = {np.asarray(p).dtype for p in model.params().values()}
    if not dts:
        return np.dtype(np.float64)
    if len(dts) > 1:
        raise TypeError(f"numpy_model mixes parameter dtypes {sorted(map(str, dts))}; parity needs one dtype")
    return dts.pop()


_TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16}


def to_torch(numpy_model: Any) -> torch.nn.Sequential:
    """Build the ``torch.nn.Sequential`` equivalent of a verigrad ``NeuralNetwork``, weights copied.

    ``Dense`` becomes ``nn.Linear`` with ``weight = W.T`` (``W`` has shape (n_in, n_out)) and
    ``bias = b`` (followed by its fused activation, if any); ``ReLU``, ``Tanh``, ``Sigmoid``,
    ``Identity``, ``LeakyReLU(alpha)`` and ``Softmax`` become ``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``,
    ``nn.Identity``, ``nn.LeakyReLU(alpha)`` and ``nn.Softmax(dim=-1)``. The module has the network's
    dtype. Lazy ``Dense`` layers must be built (run one forward first).

    Parameters
    ----------
    numpy_model : verigrad.nn.NeuralNetwork

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    TypeError
        A layer without torch equivalent (the message names its index and type).
    ValueError
        An unbuilt lazy ``Dense`` layer.
    """
    _check_network(numpy_model)
    act, _, Dense = _nn_classes()
    dtype = _TORCH_DTYPES.get(str(_network_dtype(numpy_model)))
    if dtype is None:
        raise TypeError(f"numpy_model has dtype {_network_dtype(numpy_model)}; torch parity supports {sorted(_TORCH_DTYPES)}")
    mods: list[torch.nn.Module] = []
    for i, layer in enumerate(numpy_model.layers):
        where = f"layer {i}"
        if isinstance(layer, Dense):
            if "W" not in layer.params:
                raise ValueError(f"{where} (Dense) is not built yet (lazy n_in): run numpy_model.forward(X) first")
            W, b = layer.params["W"], layer.params["b"]
            lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
            mods.append(lin)
            if layer.activation is not None and not isinstance(layer.activation, act.Identity):
                mods.append(_torch_activation(layer.activation, f"{where}'s fused activation"))
        elif isinstance(layer, act.Activation):
            mods.append(_torch_activation(layer, where))
        else:
            raise TypeError(
                f"{where} ({type(layer).__name__}) has no torch equivalent known to verigrad.torch.to_torch; "
                "build the torch module yourself and pass it as torch_module="
            )
    return torch.nn.Sequential(*mods)


def _pair_linear(numpy_model: Any, module: torch.nn.Module) -> list[tuple[int, str, torch.nn.Linear]]:
    """Pair the network's Dense layers, in order, with the module's nn.Linear submodules, in order."""
    _, _, Dense = _nn_classes()
    dense = [(i, layer) for i, layer in enumerate(numpy_model.layers) if layer.params]
    for i, layer in dense:
        if not isinstance(layer, Dense):
            raise TypeError(
                f"layer {i} ({type(layer).__name__}) has parameters {sorted(layer.params)} but is not a Dense "
                "layer: parity only maps Dense layers to nn.Linear"
            )
    linears = [(n, m) for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)]
    if len(linears) != len(dense):
        raise ValueError(
            f"numpy_model has {len(dense)} Dense layers but torch_module has {len(linears)} nn.Linear "
            f"modules ({[n for n, _ in linears]}); they are paired in order and must match"
        )
    pairs = []
    for (i, layer), (tname, lin) in zip(dense, linears):
        W = layer.params["W"]
        if tuple(lin.weight.shape) != (W.shape[1], W.shape[0]) or lin.bias is None:
            raise ValueError(
                f"layer {i} has W of shape {W.shape} but torch module {tname!r} is {lin} "
                f"(expected nn.Linear({W.shape[0]}, {W.shape[1]}) with bias)"
            )
        pairs.append((i, tname, lin))
    return pairs


def _torch_loss(loss: Any, y: np.ndarray, n: int) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], str]:
    """The torch loss with verigrad's conventions, and a description."""
    _, vl, _ = _nn_classes()
    F = torch.nn.functional
    if isinstance(loss, vl.CrossEntropyLoss):
        if loss.from_logits:
            return torch.nn.CrossEntropyLoss(), "nn.CrossEntropyLoss()"
        if y.ndim == 1:
            return (lambda p, t: F.nll_loss(torch.log(p).clamp_min(-100.0), t)), "nll_loss(log(p))"
        return (lambda p, t: -(t * torch.log(p).clamp_min(-100.0)).sum() / p.shape[0]), "-sum(y log p)/N"
    if isinstance(loss, vl.MSELoss):
        if loss.reduction == "mean":
            return torch.nn.MSELoss(), "nn.MSELoss()"
        if loss.reduction == "sum":
            return torch.nn.MSELoss(reduction="sum"), "nn.MSELoss(reduction='sum')"
        return (lambda p, t: 0.5 * F.mse_loss(p, t, reduction="sum") / p.shape[0]), "0.5*MSE sum/N"
    if isinstance(loss, vl.BCEWithLogitsLoss):
        return torch.nn.BCEWithLogitsLoss(), "nn.BCEWithLogitsLoss()"
    if isinstance(loss, vl.BCELoss):
        return torch.nn.BCELoss(), "nn.BCELoss()"
    raise TypeError(
        f"loss {type(loss).__name__} has no torch equivalent known to verigrad.torch.parity "
        "(CrossEntropyLoss, MSELoss, BCELoss, BCEWithLogitsLoss); pass torch_loss= yourself"
    )


def _compare(name: str, tname: str, v: np.ndarray, t: np.ndarray, rtol: float, atol: float) -> ParityEntry:
    v = np.asarray(v, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if v.shape != t.shape:
        return ParityEntry(name, tname, tuple(v.shape), math.inf, math.inf, False)
    if v.size == 0:
        return ParityEntry(name, tname, tuple(v.shape), 0.0, 0.0, True)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(v - t)
        same_nonfinite = (v == t) | (np.isnan(v) & np.isnan(t))
        diff = np.where(same_nonfinite, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff)
    max_abs = float(diff.max())
    finite_t = np.abs(t[np.isfinite(t)])
    scale = float(finite_t.max()) if finite_t.size else 0.0
    if max_abs == 0.0:
        max_rel = 0.0
    elif scale == 0.0:
        max_rel = math.inf
    else:
        max_rel = max_abs / scale
    return ParityEntry(name, tname, tuple(v.shape), max_abs, max_rel, bool(max_abs <= atol + rtol * scale))


def parity(
    numpy_model: Any,
    torch_module: torch.nn.Module | None = None,
    X: Any = None,
    y: Any = None,
    loss: Any = None,
    *,
    torch_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> ParityReport:
    """Run a verigrad network and the same network in torch; compare outputs, losses and gradients.

    torch autograd is the reference. The weights of ``numpy_model`` are copied into ``torch_module``
    (a deep copy of it: the module passed is not modified) or into one built by :func:`to_torch`. Then
    verigrad computes ``pred = model.forward(X)``, ``L = loss.forward(pred, y)`` and its backward, torch
    computes the same with autograd, and every quantity is compared: ``output``, ``loss``, each parameter
    gradient (``W_i`` against ``weight.T`` of the paired ``nn.Linear``, ``b_i`` against ``bias``) and
    ``dL/dX``.

    Parameters
    ----------
    numpy_model : verigrad.nn.NeuralNetwork
        Its ``grads()`` are overwritten by the backward pass this function runs.
    torch_module : torch.nn.Module, optional
        An equivalent torch network. Its ``nn.Linear`` modules are paired, in registration order, with
        the network's ``Dense`` layers. Default: built by :func:`to_torch`.
    X : array_like of shape (n_samples, n_features)
    y : array_like
        Targets in the loss's convention: integer labels of shape (n_samples,) or targets of the output's
        shape.
    loss : verigrad loss
        ``CrossEntropyLoss`` (from logits: ``nn.CrossEntropyLoss``, integer labels or probability
        targets; from probabilities: ``nll_loss(log(p).clamp_min(-100))``, which torch differentiates to
        NaN where a target class has probability exactly 0 while verigrad's gradient stays finite:
        parity then reports that difference), ``MSELoss``
        (``"mean"``: ``nn.MSELoss()``; ``"half"``: ``0.5 * sum / N``; ``"sum"``), ``BCELoss``
        (``nn.BCELoss``), ``BCEWithLogitsLoss`` (``nn.BCEWithLogitsLoss``).
    torch_loss : callable, optional
        ``torch_loss(output, target) -> scalar tensor`` to use instead of the translation of ``loss``.
    rtol, atol : float, optional
        An entry passes when ``max |v - t| <= atol + rtol * max |t|``. Defaults by dtype
        (:data:`PARITY_TOLERANCES`): float64 ``(1e-7, 1e-12)``, float32 ``(1e-4, 1e-7)``.

    Returns
    -------
    ParityReport
        ``.passed``, ``.entries`` (:class:`ParityEntry`: ``max_abs``, ``max_rel``, ``passed``),
        ``report["W_0"]``, ``str(report)`` (a table).

    Raises
    ------
    TypeError
        ``numpy_model`` not a network, ``torch_module`` not a module, a layer or loss without torch
        equivalent.
    ValueError
        Missing ``X``/``y``/``loss``, Dense/Linear layers that do not pair up.

    Examples
    --------
    >>> import numpy as np
    >>> from verigrad.nn import Dense, NeuralNetwork, Tanh, CrossEntropyLoss
    >>> import verigrad.torch as vt
    >>> model = NeuralNetwork([Dense(4, 8, seed=0), Tanh(), Dense(8, 3, seed=1)])
    >>> X = np.random.default_rng(0).standard_normal((16, 4))
    >>> y = np.arange(16) % 3
    >>> report = vt.parity(model, X=X, y=y, loss=CrossEntropyLoss())
    >>> report.passed, report["W_0"].torch_name
    (True, '0.weight.T')
    """
    _check_network(numpy_model)
    if torch_module is not None and not isinstance(torch_module, torch.nn.Module):
        raise TypeError(
            f"torch_module must be a torch.nn.Module or None, got {type(torch_module).__name__}; "
            "call parity(model, X=X, y=y, loss=loss) or parity(model, None, X, y, loss)"
        )
    for arg, val in (("X", X), ("y", y), ("loss", loss)):
        if val is None:
            raise ValueError(f"parity needs {arg}: call parity(model, torch_module=None, X=X, y=y, loss=loss)")
    X = np.asarray(X)
    y = np.asarray(y)
    if X.dtype.kind not in "fiu":
        raise TypeError(f"X must be a real numeric array, got dtype {X.dtype}")

    # verigrad side (builds lazy layers)
    pred = np.array(numpy_model.forward(X, training=True), copy=True)
    L_v = float(loss.forward(pred, y))
    dpred = loss.backward(pred, y)
    dX_v = np.array(numpy_model.backward(dpred), copy=True)
    grads_v = {k: np.array(v, copy=True) for k, v in numpy_model.grads().items()}

    ndt = _network_dtype(numpy_model)
    if str(ndt) not in _TORCH_DTYPES:
        raise TypeError(f"numpy_model has dtype {ndt}; torch parity supports {sorted(_TORCH_DTYPES)}")
    tdt = _TORCH_DTYPES[str(ndt)]
    d_rtol, d_atol = PARITY_TOLERANCES[str(ndt)]
    rtol = d_rtol if rtol is None else float(rtol)
    atol = d_atol if atol is None else float(atol)

    if torch_module is None:
        module = to_torch(numpy_model)
    else:
        module = copy.deepcopy(torch_module).to(dtype=tdt)
    pairs = _pair_linear(numpy_model, module)
    with torch.no_grad():
        for i, _tname, lin in pairs:
            layer = numpy_model.layers[i]
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.params["W"].T)))
            lin.bias.copy_(torch.from_numpy(np.ascontiguousarray(layer.params["b"])))

    if torch_loss is None:
        t_loss, _desc = _torch_loss(loss, y, X.shape[0])
    else:
        if not callable(torch_loss):
            raise TypeError(f"torch_loss must be callable, got {type(torch_loss).__name__}")
        t_loss = torch_loss
    Xt = torch.from_numpy(np.array(X, dtype=ndt, copy=True)).requires_grad_(True)
    if y.dtype.kind in "iu" and y.ndim == 1 and isinstance(loss, _nn_classes()[1].CrossEntropyLoss):
        yt = torch.from_numpy(y.astype(np.int64))
    else:
        yt = torch.from_numpy(np.array(y, dtype=ndt, copy=True))

    module.train()
    params_t = dict(module.named_parameters())
    with torch.enable_grad():
        out = module(Xt)
        L_t = t_loss(out, yt)
        targets = [Xt] + [lin.weight for _, _, lin in pairs] + [lin.bias for _, _, lin in pairs]
        got = torch.autograd.grad(L_t, targets, allow_unused=True)
    del params_t
    k = len(pairs)
    g_X = got[0]
    g_W = got[1:1 + k]
    g_b = got[1 + k:]

    def np_(t: torch.Tensor | None, like: np.ndarray) -> np.ndarray:
        return np.zeros_like(like) if t is None else t.detach().numpy()

    entries = [
        _compare("output", "output", pred, out.detach().numpy(), rtol, atol),
        _compare("loss", "loss", np.asarray(L_v), np.asarray(float(L_t.detach())), rtol, atol),
    ]
    for (i, tname, _lin), gw, gb in zip(pairs, g_W, g_b):
        W_name, b_name = f"W_{i}", f"b_{i}"
        entries.append(_compare(W_name, f"{tname}.weight.T", grads_v[W_name], np_(gw, grads_v[W_name].T).T, rtol, atol))
        entries.append(_compare(b_name, f"{tname}.bias", grads_v[b_name], np_(gb, grads_v[b_name]), rtol, atol))
    entries.append(_compare("dL/dX", "input.grad", dX_v, np_(g_X, dX_v), rtol, atol))
    return ParityReport(entries, str(ndt), rtol, atol, torch_module=module, torch_loss=t_loss)
