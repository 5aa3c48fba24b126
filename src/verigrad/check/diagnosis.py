"""Diagnosis: say *what* is wrong with a claimed gradient, from the analytic and numerical arrays.

Kinds (``Diagnosis.kind``):

========================  ==========================================================  =======
kind                      meaning                                                     passes
========================  ==========================================================  =======
``ok``                    every entry agrees within the error estimate                 yes
``kink``                  some entries sit at kinks; the analytic value is a valid     yes
                          subgradient (between the one-sided derivatives), or at a
                          multi-kink the code is verified at nearby points
``precision``             differences explained by the dtype's round-off only          yes
``scale``                 ``a ~ c * n`` for one factor ``c`` (``N``, ``1/N``, 2, 1/2)  no
``sign``                  ``a ~ -n``                                                   no
``transpose``             ``a ~ n.T`` (or the claimed gradient has the transposed      no
                          shape of a non-square ``x``)
``zero``                  ``a`` is ~0 where ``n`` is not                               no
``partial``               errors confined to some rows / columns / entries             no
``mutates_input``         the function changed its input (or the model its X/params)   no
``nondeterministic``      the same input gave different outputs                        no
``mismatch``              wrong, with no simple pattern                                no
========================  ==========================================================  =======
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from verigrad.check.engine import FAIL, KINK, NOT_EVALUATED, PRECISION

KINDS = (
    "ok", "scale", "sign", "transpose", "zero", "partial", "kink", "precision",
    "mutates_input", "nondeterministic", "mismatch",
)
PASSING_KINDS = frozenset({"ok", "kink", "precision"})

#: largest relative residual ``||a - c n|| / ||a||`` for a consistent factor
SCALE_RESIDUAL = 0.02


@dataclass(frozen=True)
class Diagnosis:
    """What the checker concluded.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    message : str
        One human sentence.
    details : dict
        Kind-specific facts (``factor`` for ``scale``, ``columns``/``rows``/``entries`` for ``partial``,
        ``kinks`` for ``kink``, ``argument`` for ``mutates_input``...). JSON-serialisable.
    """

    kind: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True for the verdicts that pass: ``ok``, ``kink``, ``precision``."""
        return self.kind in PASSING_KINDS

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "details": jsonable(self.details)}


def jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples inside ``obj`` to plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def name_factor(c: float, batch_size: Optional[int]) -> tuple[str, str]:
    """Name a scale factor: returns (label, explanation)."""
    cands: list[tuple[float, str, str]] = []
    if batch_size and batch_size > 1:
        nb = int(batch_size)
        cands += [
            (float(nb), f"N={nb}", f"analytic is N={nb} times the numerical gradient: missing 1/N (batch mean)?"),
            (1.0 / nb, f"1/N=1/{nb}",
             f"analytic is 1/N = 1/{nb} of the numerical gradient: divided by the batch size N={nb} twice?"),
            (-float(nb), f"-N=-{nb}",
             f"analytic is -N = -{nb} times the numerical gradient: sign flipped and missing 1/N?"),
        ]
    cands += [
        (2.0, "2", "analytic is 2 times the numerical gradient: a spurious factor 2 "
                   "(derivative of x**2 applied twice, or the 1/2 of the loss forgotten)?"),
        (0.5, "1/2", "analytic is 1/2 of the numerical gradient: missing factor 2 "
                     "(derivative of a square)?"),
        (-2.0, "-2", "analytic is -2 times the numerical gradient: sign flip and a factor 2?"),
        (-0.5, "-1/2", "analytic is -1/2 of the numerical gradient: sign flip and a missing factor 2?"),
    ]
    for val, label, msg in cands:
        if abs(c - val) <= 0.01 * abs(val):
            return label, msg
    return _fmt(c), f"analytic is {_fmt(c)} times the numerical gradient (one consistent factor over all entries)"


def _list(ix: np.ndarray, cap: int = 12) -> str:
    vals = [int(i) for i in ix[:cap]]
    more = "" if len(ix) <= cap else f", ... ({len(ix)} in all)"
    return "[" + ", ".join(map(str, vals)) + more + "]"


def diagnose(
    a: np.ndarray,
    n: np.ndarray,
    tol: np.ndarray,
    status: np.ndarray,
    *,
    batch_size: Optional[int] = None,
    full: bool = True,
) -> Diagnosis:
    """Classify the agreement between ``a`` (analytic) and ``n`` (numerical).

    Parameters
    ----------
    a, n : ndarray of the checked tensor's shape
        ``n`` is NaN where an entry was not evaluated.
    tol : ndarray of the same shape
        Per-entry tolerance (NaN where not evaluated).
    status : ndarray of int8, same shape
        Per-entry status from :func:`verigrad.check.engine.judge_entries` (``-1`` not evaluated).
    batch_size : int, optional
        Lets a factor ``N`` or ``1/N`` be named as a batch-mean mistake.
    full : bool
        Whether every entry was evaluated (a transpose can only be recognised then).

    Returns
    -------
    Diagnosis
    """
    evald = status != NOT_EVALUATED
    bad = status == FAIL
    if not bad.any():
        kinks = np.argwhere(status == KINK)
        if kinks.size:
            ix = [tuple(int(v) for v in row) for row in kinks]
            shown = ", ".join(str(i) for i in ix[:8]) + (" ..." if len(ix) > 8 else "")
            return Diagnosis(
                "kink",
                f"{len(ix)} entr{'y' if len(ix) == 1 else 'ies'} at a kink (non-differentiable point: "
                f"{shown}); the analytic value lies between the one-sided derivatives, a valid subgradient "
                "(or, where several units sit on their kinks at once, the gradient code was verified at "
                "nearby points: see the notes)",
                {"kinks": ix},
            )
        if (status == PRECISION).any():
            return Diagnosis(
                "precision",
                "differences are larger than float64 round-off but explained by the dtype's round-off",
                {"n_entries": int((status == PRECISION).sum())},
            )
        return Diagnosis("ok", "analytic and numerical gradients agree", {})

    # entries at kinks passed on their own terms; the pattern is read from the others
    use = evald & (status != KINK)
    av = a[use].astype(np.float64)
    nv = n[use].astype(np.float64)
    tv = tol[use].astype(np.float64)
    finite = np.isfinite(nv)
    if not finite.all():
        return Diagnosis("mismatch", "the loss was not finite at some perturbed points", {})
    na = float(np.linalg.norm(av))
    nn = float(np.linalg.norm(nv))

    # transpose (square 2-D, everything evaluated)
    if full and a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] > 1:
        if np.all(np.abs(a.T - n) <= tol) and not np.all(np.abs(a - n) <= tol):
            return Diagnosis(
                "transpose",
                "analytic is the transpose of the numerical gradient (e.g. dW = dY.T @ X instead of X.T @ dY)",
                {},
            )
    # zero
    if nn > 0 and np.all(np.abs(av) <= np.maximum(tv, 1e-6 * nn)):
        return Diagnosis(
            "zero",
            "analytic gradient is ~0 everywhere but the numerical one is not: gradient never written, "
            "reset, or a stale cached value?",
            {"numerical_norm": nn},
        )
    # consistent factor
    if nn > 0 and na > 0:
        c = float(av @ nv) / float(nv @ nv)
        resid = float(np.linalg.norm(av - c * nv))
        if c != 0 and resid <= SCALE_RESIDUAL * na and not abs(c - 1) <= 1e-3:
            if abs(c + 1) <= 0.01:
                return Diagnosis(
                    "sign",
                    "analytic has the opposite sign of the numerical gradient (a = -n): sign flip, "
                    "e.g. (y - pred) instead of (pred - y)?",
                    {"factor": c},
                )
            label, msg = name_factor(c, batch_size)
            det: dict[str, Any] = {"factor": c, "factor_name": label}
            if batch_size:
                det["batch_size"] = int(batch_size)
            return Diagnosis("scale", msg, det)
    # partial: errors confined to a subset
    det = _partial(bad, evald, a.shape)
    if det is not None:
        msg = det.pop("message")
        ab, nb = a[bad].astype(np.float64), n[bad].astype(np.float64)
        if float(nb @ nb) > 0 and len(ab) >= 1:
            c = float(ab @ nb) / float(nb @ nb)
            if np.linalg.norm(ab - c * nb) <= SCALE_RESIDUAL * np.linalg.norm(ab) and c != 0:
                det["factor"] = c
                msg += f"; there the analytic is {_fmt(c)} times the numerical gradient"
        return Diagnosis("partial", msg, det)
    return Diagnosis(
        "mismatch",
        "analytic and numerical gradients disagree with no simple pattern (wrong derivative formula?)",
        {"n_bad": int(bad.sum()), "n_checked": int(evald.sum())},
    )


def _partial(bad: np.ndarray, evald: np.ndarray, shape: tuple[int, ...]) -> Optional[dict[str, Any]]:
    n_bad = int(bad.sum())
    n_ev = int(evald.sum())
    if n_bad == 0 or n_ev < 2:
        return None
    if len(shape) == 2 and min(shape) > 1:
        cols = np.flatnonzero(bad.any(axis=0))
        rows = np.flatnonzero(bad.any(axis=1))
        # a column is "wrong" when most of its checked entries are bad
        ev_cols = np.flatnonzero(evald.any(axis=0))
        ev_rows = np.flatnonzero(evald.any(axis=1))
        if len(cols) <= max(1, len(ev_cols) // 2) and len(cols) < len(ev_cols):
            frac = bad[:, cols].sum() / max(1, evald[:, cols].sum())
            if frac >= 0.5:
                word = "column" if len(cols) == 1 else "columns"
                where = str(int(cols[0])) if len(cols) == 1 else _list(cols)
                return {"message": f"{word} {where} wrong (the other columns are correct)",
                        "axis": 1, "columns": [int(c) for c in cols], "n_bad": n_bad}
        if len(rows) <= max(1, len(ev_rows) // 2) and len(rows) < len(ev_rows):
            frac = bad[rows, :].sum() / max(1, evald[rows, :].sum())
            if frac >= 0.5:
                word = "row" if len(rows) == 1 else "rows"
                where = str(int(rows[0])) if len(rows) == 1 else _list(rows)
                return {"message": f"{word} {where} wrong (the other rows are correct)",
                        "axis": 0, "rows": [int(r) for r in rows], "n_bad": n_bad}
    if n_bad <= max(1, n_ev // 4):
        ix = [tuple(int(v) for v in row) for row in np.argwhere(bad)]
        shown = ", ".join(str(i) for i in ix[:8]) + (" ..." if len(ix) > 8 else "")
        return {"message": f"{n_bad} of {n_ev} checked entries wrong: {shown} (the others are correct)",
                "entries": ix[:100], "n_bad": n_bad}
    return None


def special(kind: str, message: str, **details: Any) -> Diagnosis:
    """A diagnosis that does not come from comparing numbers (mutates_input, nondeterministic)."""
    return Diagnosis(kind, message, dict(details))
