"""What :func:`verigrad.torch.check` adds to the checker's report.

:func:`_annotate` attaches the torch facts (title naming ``fn``, numerical dtype, notes);
:func:`_mutation_report` marks a report failed when the forward or backward wrote into its inputs,
parameters or ``grad_output``.
"""

from __future__ import annotations

from typing import Any

import torch


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
