"""Keep the caller's modules intact during :func:`verigrad.torch.check`.

A module passed as ``fn`` is deep-copied (:func:`_deepcopy_module`). Modules that ``fn`` merely holds
(a bound method's owner, closures, globals its code uses, :func:`functools.partial` arguments) are found
by :func:`_held_modules`; their parameters, buffers and ``.grad`` fields are saved
(:func:`_module_state`) and written back afterwards (:func:`_restore_module_state`).
:func:`_held_grad_tensors` names tensors requiring grad that ``fn`` uses without receiving them.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import torch

from verigrad.torch.tensors import _same_values


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


def _held_grad_tensors(fn: Any) -> dict[str, torch.Tensor]:
    """The tensors requiring grad that ``fn`` uses without receiving them, by name: its closure variables
    and the global names its code uses (``lambda x: x @ W`` with a global ``W``). They are not checked."""
    code = getattr(fn, "__code__", None)
    if code is None or isinstance(fn, torch.nn.Module):
        return {}
    found: dict[str, torch.Tensor] = {}
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, torch.Tensor) and value.requires_grad:
            found[name] = value
    glob = getattr(fn, "__globals__", None)
    if isinstance(glob, dict):
        for name in code.co_names:
            value = glob.get(name)
            if isinstance(value, torch.Tensor) and value.requires_grad and name not in found:
                found[name] = value
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


def _deepcopy_module(module: torch.nn.Module) -> torch.nn.Module:
    try:
        return copy.deepcopy(module)
    except Exception as exc:  # noqa: BLE001 - any deepcopy failure gets the same explanation
        raise TypeError(
            f"fn ({type(module).__name__}) cannot be deep-copied ({type(exc).__name__}: {exc}); "
            "verigrad.torch.check works on copies of the module so that yours is never modified"
        ) from exc
