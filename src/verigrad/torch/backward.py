"""Backward passes that torch refuses or that return another input's gradient.

* :func:`_invalid_gradient` / :func:`_gradient_slots` - torch rejected the shapes a custom Function's
  backward returned: recover those gradients and say which is wrong (wrong order, wrong shape);
* :func:`_grads_by_backward` / :func:`_graph_leaves` - gradients through ``torch.autograd.backward``
  for code that ``torch.autograd.grad`` refuses (reentrant checkpoint), every ``.grad`` restored;
* :func:`_swapped` - a failing gradient that equals another tensor's numerical gradient (swapped
  return values, wrong ``needs_input_grad`` branch).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from verigrad.torch.safety import _held_grad_tensors
from verigrad.torch.tensors import TorchCheckError, _Target


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
    held = list(_held_grad_tensors(fn).values())
    leaves = _graph_leaves(outs) + [t.analytic for t in targets] + held
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
