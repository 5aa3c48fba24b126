"""Reports of a gradient check: one tensor (:class:`GradientReport`), a model (:class:`ModelReport`),
a layer-by-layer check (:class:`LayersReport`), and :class:`GradientCheckError`.

Renderings: ``str`` (compact text table), ``_repr_html_`` (Jupyter), ``__rich__`` (rich, imported
lazily), ``to_dict`` (JSON-serialisable).
"""

from __future__ import annotations

import html
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from verigrad.check.diagnosis import Diagnosis, jsonable

_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "kink": "#9a6700", "precision": "#9a6700"}


class GradientCheckError(AssertionError):
    """Raised by ``raise_on_failure=True`` / ``report.raise_if_failed()``; its message is the report.

    Attributes
    ----------
    report : GradientReport or ModelReport or LayersReport
    """

    def __init__(self, report: Any) -> None:
        super().__init__(str(report))
        self.report = report


@dataclass(frozen=True)
class WorstEntry:
    """The entry with the largest error relative to its tolerance.

    Attributes
    ----------
    index : tuple of int
        Index into the checked tensor.
    analytic, numerical : float
    abs_error : float
        ``|analytic - numerical|``.
    rel_error : float
        ``|analytic - numerical| / (|analytic| + |numerical|)``.
    tolerance : float
        The entry's tolerance.
    """

    index: tuple[int, ...]
    analytic: float
    numerical: float
    abs_error: float
    rel_error: float
    tolerance: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return jsonable({
            "index": list(self.index), "analytic": self.analytic, "numerical": self.numerical,
            "abs_error": self.abs_error, "rel_error": self.rel_error, "tolerance": self.tolerance,
        })

    def describe(self) -> str:
        return (f"worst entry {self.index}: analytic {self.analytic:.6g}, numerical {self.numerical:.6g}, "
                f"abs err {self.abs_error:.3g}, rel err {self.rel_error:.3g}")


def _per_entry_rel(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(a - n)
        return np.where(d == 0, 0.0, d / (np.abs(a) + np.abs(n)))


def _number(other: Any) -> Optional[float]:
    """``other`` as a float for the rich comparisons of reports (numbers and reports), else None."""
    if isinstance(other, bool):
        return None
    if isinstance(other, (int, float, np.integer, np.floating)):
        return float(other)
    if isinstance(other, (GradientReport, ModelReport)):
        return float(other)
    return None


def _compare(op: Callable[[float, float], bool]) -> Callable[[Any, Any], Any]:
    """A rich comparison ``op(float(self), other)`` against numbers and reports (NotImplemented otherwise)."""
    def method(self: Any, other: Any) -> Any:
        o = _number(other)
        return NotImplemented if o is None else op(float(self), o)

    method.__name__ = f"__{op.__name__}__"
    return method


class _Ordered:
    """``<``, ``<=``, ``>``, ``>=`` against numbers via ``float(report)`` (seed 002: ``check_gradients(...) < 1e-8``).

    Equality is left alone (a :class:`ModelReport` compares as a mapping).
    """

    __lt__ = _compare(operator.lt)
    __le__ = _compare(operator.le)
    __gt__ = _compare(operator.gt)
    __ge__ = _compare(operator.ge)


def _e(x: Optional[float]) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    return f"{x:.2e}"


class GradientReport(_Ordered):
    """Result of checking the gradient of one tensor.

    ``float(report)`` is :attr:`rel_error`; ``report < 1e-8`` (and ``<=``, ``>``, ``>=``) compares it
    with a number, as seed 002 compares the float its ``check_gradients`` returns.

    Attributes
    ----------
    name : str
    passed : bool
    verdict : str
        ``"pass"`` or ``"fail"``.
    rel_error : float
        ``||a - n|| / (||a|| + ||n||)`` over the evaluated entries (0 when both are 0). ``float(report)``.
    max_abs_error, max_rel_error : float
        Largest per-entry errors (evaluated entries).
    diagnosis : Diagnosis
    worst : WorstEntry or None
        None when nothing was checked entry-wise.
    analytic : ndarray of float64, shape ``shape``
    numerical : ndarray of float64, shape ``shape``
        NaN where an entry was not evaluated (sample/fast modes).
    tolerance : ndarray
        Per-entry tolerance (NaN where not evaluated).
    error_estimate : ndarray
        Per-entry estimated error of the numerical value (rounding, plus the measured spread between
        step sizes where it was measured; for ``method="richardson"`` the extrapolation's own estimate).
    status : ndarray of int8
        Per-entry status: 0 ok, 1 precision, 2 kink, 3 fail, -1 not evaluated.
    kinks : list of tuple
        Indices classified as kinks.
    method, mode : str
    n_evals : int
        Function evaluations used.
    shape : tuple of int
    dtype : str
        Dtype of the checked array (``analytic_dtype``: of the claimed gradient).
    probes : list of dict
        Extra points checked (``label``, ``passed`` or ``skipped`` with the reason).
    notes : list of str
    """

    def __init__(
        self,
        name: str,
        analytic: np.ndarray,
        numerical: np.ndarray,
        tolerance: np.ndarray,
        status: np.ndarray,
        diagnosis: Diagnosis,
        *,
        method: str,
        mode: str,
        n_evals: int,
        dtype: str,
        analytic_dtype: str = "float64",
        notes: Optional[list[str]] = None,
        directional: Optional[dict[str, Any]] = None,
    ) -> None:
        self.name = name
        self.analytic = analytic
        self.numerical = numerical
        self.tolerance = tolerance
        self.status = status
        self.diagnosis = diagnosis
        self.method = method
        self.mode = mode
        self.n_evals = int(n_evals)
        self.shape = tuple(int(s) for s in analytic.shape)
        self.dtype = dtype
        self.analytic_dtype = analytic_dtype
        self.notes = list(notes or [])
        self.probes: list[dict[str, Any]] = []
        self.directional = directional
        self.error_estimate = np.broadcast_to(np.float64(np.nan), self.shape)
        ev = np.isfinite(numerical)
        from verigrad.check.engine import finite_max, rel_error

        self.worst: Optional[WorstEntry] = None
        if not ev.any():
            # nothing evaluated entry by entry (fast mode): no per-entry errors, no kinks, no worst entry
            self.kinks: list[tuple[int, ...]] = []
            self.rel_error = float(directional.get("rel_error", 0.0)) if directional is not None else 0.0
            self.max_abs_error = self.max_rel_error = float("nan")
            return
        self.kinks = [tuple(int(v) for v in row) for row in np.argwhere(status == 2)]
        self.rel_error = rel_error(analytic, numerical)
        with np.errstate(invalid="ignore"):
            absd = np.where(ev, np.abs(analytic - numerical), np.nan)
        reld = np.where(ev, _per_entry_rel(analytic, numerical), np.nan)
        self.max_abs_error = finite_max(absd)
        self.max_rel_error = finite_max(reld)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(ev, absd / np.maximum(tolerance, np.finfo(float).tiny), -np.inf)
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        flat = int(np.argmax(ratio))
        ix = np.unravel_index(flat, self.shape) if self.shape else ()
        self.worst = WorstEntry(
            tuple(int(i) for i in ix), float(analytic.flat[flat]), float(numerical.flat[flat]),
            float(absd.flat[flat]), float(reld.flat[flat]), float(np.asarray(tolerance).flat[flat]),
        )

    # --- verdict --------------------------------------------------------------------------------
    @property
    def passed(self) -> bool:
        return self.diagnosis.passed

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    @property
    def failures(self) -> dict[str, GradientReport]:
        """``{name: self}`` when failed, else empty (same shape as :attr:`ModelReport.failures`)."""
        return {} if self.passed else {self.name: self}

    def raise_if_failed(self) -> GradientReport:
        """Raise :class:`GradientCheckError` when the check failed; return ``self`` otherwise."""
        if not self.passed:
            raise GradientCheckError(self)
        return self

    def __float__(self) -> float:
        return float(self.rel_error)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """``np.asarray(report)`` is the 0-d :attr:`rel_error` (``np.isclose(report, 0, atol=1e-8)`` works)."""
        return np.asarray(float(self), dtype=dtype)

    def __bool__(self) -> bool:
        return self.passed

    def __format__(self, spec: str) -> str:
        if spec:
            return format(float(self), spec)
        return str(self)

    # --- renderings -----------------------------------------------------------------------------
    def row(self) -> list[str]:
        """The cells of this report's row in a table (see :data:`COLUMNS`)."""
        w = self.worst
        return [
            self.name, str(self.shape), _e(self.max_abs_error), _e(self.max_rel_error),
            _e(self.rel_error), str(w.index) if w is not None else "-", self.verdict, self.diagnosis.kind,
        ]

    def detail_lines(self) -> list[str]:
        out = []
        if not self.passed:
            if self.worst is not None:
                out.append(f"{self.name}: {self.worst.describe()}")
            out.append(f"{self.name}: {self.diagnosis.kind}: {self.diagnosis.message}")
        elif self.diagnosis.kind in ("kink", "precision"):
            out.append(f"{self.name}: {self.diagnosis.kind}: {self.diagnosis.message}")
        for p in self.probes:
            if p.get("skipped"):
                out.append(f"{self.name}: probe {p['label']} skipped ({p['skipped']})")
            elif not p.get("passed", True):
                out.append(f"{self.name}: probe {p['label']} failed: {p.get('message', '')}")
        return out

    def __str__(self) -> str:
        head = (f"gradient check of {self.name}: {self.verdict.upper()} (rel error {self.rel_error:.3e}; "
                f"{self.method}, {self.mode} mode, {self.n_evals} evaluations)")
        return "\n".join([head, format_table([self.row()])] + self.detail_lines()
                         + [f"note: {n}" for n in self.notes])

    def __repr__(self) -> str:
        return (f"<GradientReport {self.name} {self.verdict} kind={self.diagnosis.kind} "
                f"rel_error={self.rel_error:.3e}>")

    def to_dict(self, arrays: bool = False) -> dict[str, Any]:
        """JSON-serialisable summary; ``arrays=True`` also includes analytic/numerical/tolerance."""
        d: dict[str, Any] = {
            "name": self.name, "passed": self.passed, "verdict": self.verdict,
            "rel_error": self.rel_error, "max_abs_error": self.max_abs_error,
            "max_rel_error": self.max_rel_error, "diagnosis": self.diagnosis.to_dict(),
            "worst": self.worst.to_dict() if self.worst is not None else None,
            "kinks": [list(k) for k in self.kinks], "method": self.method, "mode": self.mode,
            "n_evals": self.n_evals, "shape": list(self.shape), "dtype": self.dtype,
            "analytic_dtype": self.analytic_dtype, "probes": jsonable(self.probes),
            "notes": list(self.notes),
        }
        if self.directional is not None:
            d["directional"] = jsonable(self.directional)
        if arrays:
            d["analytic"] = jsonable(self.analytic)
            d["numerical"] = jsonable(self.numerical)
            d["tolerance"] = jsonable(np.broadcast_to(self.tolerance, self.shape))
        return jsonable(d)

    def _repr_html_(self) -> str:
        return html_table([self], f"Gradient check of {self.name}")

    def __rich__(self) -> Any:
        return rich_table([self], f"gradient check of {self.name}")


COLUMNS = ["name", "shape", "max abs err", "max rel err", "rel error", "worst index", "verdict", "diagnosis"]


def format_table(rows: list[list[str]]) -> str:
    """Plain-text table with :data:`COLUMNS`."""
    cells = [COLUMNS] + rows
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def _verdict_colour(rep: GradientReport) -> str:
    if not rep.passed:
        return _COLOURS["fail"]
    return _COLOURS.get(rep.diagnosis.kind, _COLOURS["pass"])


def html_table(reports: list[GradientReport], title: str, extra: Optional[list[str]] = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for rep in reports:
        cells = rep.row()
        tds = "".join(f"<td>{html.escape(c)}</td>" for c in cells[:6])
        col = _verdict_colour(rep)
        tds += f'<td style="color:{col};font-weight:bold">{html.escape(cells[6])}</td>'
        tds += f'<td title="{html.escape(rep.diagnosis.message)}">{html.escape(cells[7])}</td>'
        body.append(f"<tr>{tds}</tr>")
    notes = []
    for rep in reports:
        notes += rep.detail_lines()
    notes += extra or []
    foot = "".join(f"<li>{html.escape(x)}</li>" for x in notes)
    return (f"<div><b>{html.escape(title)}</b><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>" + (f"<ul>{foot}</ul>" if foot else "") + "</div>")


def rich_table(reports: list[GradientReport], title: str, extra: Optional[list[str]] = None) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for c in COLUMNS:
        table.add_column(c, justify="right" if "err" in c else "left")
    for rep in reports:
        cells = rep.row()
        style = "green" if rep.passed and rep.diagnosis.kind == "ok" else ("yellow" if rep.passed else "bold red")
        table.add_row(*cells[:6], Text(cells[6], style=style), cells[7])
    lines = []
    for rep in reports:
        lines += rep.detail_lines()
    lines += extra or []
    if not lines:
        return table
    return Group(table, *[Text(x) for x in lines])


class ModelReport(_Ordered, Mapping[str, GradientReport]):
    """Reports of several tensors (the parameters of a model, and ``"input"``), indexable by name.

    ``float(report)`` is the largest relative error; ``report < 1e-8`` compares it with a number.

    Attributes
    ----------
    passed : bool
        Every tensor passed and no global problem (mutated input, nondeterminism) was found.
    failures : dict of str to GradientReport
        The failing tensors.
    worst : GradientReport or None
        The failing tensor with the largest relative error, else the tensor with the largest one.
    diagnosis : Diagnosis
        A global problem if any, else the first failing tensor's diagnosis, else ok/kink/precision.
    n_evals : int
        Objective evaluations used in all.
    method, mode : str
    """

    def __init__(self, reports: dict[str, GradientReport], *, method: str, mode: str, n_evals: int,
                 global_diagnosis: Optional[Diagnosis] = None, title: str = "gradient check",
                 notes: Optional[list[str]] = None) -> None:
        self._reports = dict(reports)
        self.method = method
        self.mode = mode
        self.n_evals = int(n_evals)
        self.global_diagnosis = global_diagnosis
        self.title = title
        self.notes = list(notes or [])

    def __getitem__(self, key: str) -> GradientReport:
        try:
            return self._reports[key]
        except KeyError:
            raise KeyError(f"no tensor named {key!r} in this report; names: {list(self._reports)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._reports)

    def __len__(self) -> int:
        return len(self._reports)

    @property
    def passed(self) -> bool:
        if self.global_diagnosis is not None and not self.global_diagnosis.passed:
            return False
        return all(r.passed for r in self._reports.values())

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    @property
    def failures(self) -> dict[str, GradientReport]:
        return {k: r for k, r in self._reports.items() if not r.passed}

    @property
    def worst(self) -> Optional[GradientReport]:
        pool = list(self.failures.values()) or list(self._reports.values())
        if not pool:
            return None
        return max(pool, key=lambda r: (r.rel_error if np.isfinite(r.rel_error) else np.inf))

    @property
    def diagnosis(self) -> Diagnosis:
        if self.global_diagnosis is not None and not self.global_diagnosis.passed:
            return self.global_diagnosis
        for r in self._reports.values():
            if not r.passed:
                return r.diagnosis
        kinds = [r.diagnosis for r in self._reports.values()]
        for k in ("kink", "precision"):
            for d in kinds:
                if d.kind == k:
                    return d
        return Diagnosis("ok", "every gradient agrees with its numerical estimate", {})

    @property
    def rel_error(self) -> float:
        """Largest relative error over the tensors."""
        vals = [r.rel_error for r in self._reports.values()]
        return max(vals) if vals else 0.0

    def __float__(self) -> float:
        return float(self.rel_error)

    def __bool__(self) -> bool:
        return self.passed

    def raise_if_failed(self) -> ModelReport:
        """Raise :class:`GradientCheckError` when the check failed; return ``self`` otherwise."""
        if not self.passed:
            raise GradientCheckError(self)
        return self

    def _extra(self) -> list[str]:
        out = []
        if self.global_diagnosis is not None and not self.global_diagnosis.passed:
            out.append(f"{self.global_diagnosis.kind}: {self.global_diagnosis.message}")
        return out + self.notes

    def __str__(self) -> str:
        head = (f"{self.title}: {self.verdict.upper()} ({len(self)} tensors; {self.method}, {self.mode} mode, "
                f"{self.n_evals} evaluations)")
        lines = [head, format_table([r.row() for r in self._reports.values()])]
        lines += self._extra()
        for r in self._reports.values():
            lines += r.detail_lines()
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ModelReport {self.verdict} tensors={list(self._reports)} kind={self.diagnosis.kind}>"

    def __format__(self, spec: str) -> str:
        return format(float(self), spec) if spec else str(self)

    def to_dict(self, arrays: bool = False) -> dict[str, Any]:
        return jsonable({
            "passed": self.passed, "verdict": self.verdict, "method": self.method, "mode": self.mode,
            "n_evals": self.n_evals, "diagnosis": self.diagnosis.to_dict(),
            "worst": self.worst.name if self.worst is not None else None,
            "failures": list(self.failures), "notes": self.notes,
            "tensors": {k: r.to_dict(arrays) for k, r in self._reports.items()},
        })

    def _repr_html_(self) -> str:
        return html_table(list(self._reports.values()), self.title, self._extra())

    def __rich__(self) -> Any:
        return rich_table(list(self._reports.values()), self.title, self._extra())


class LayersReport:
    """Result of :func:`verigrad.check.check_layers`: one :class:`ModelReport` per layer.

    Attributes
    ----------
    layers : list of (int, str, ModelReport)
        Layer index, layer class name, and the report of its parameters and input gradient.
    first_faulty : int or None
        Index of the first layer whose check failed.
    passed : bool
    """

    def __init__(self, layers: list[tuple[int, str, ModelReport]]) -> None:
        self.layers = layers
        self.first_faulty: Optional[int] = next((i for i, _, r in layers if not r.passed), None)

    @property
    def passed(self) -> bool:
        return self.first_faulty is None

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"

    @property
    def n_evals(self) -> int:
        return sum(r.n_evals for _, _, r in self.layers)

    def __getitem__(self, i: int) -> ModelReport:
        for j, _, r in self.layers:
            if j == i:
                return r
        raise KeyError(f"no layer {i}; layers: {[j for j, _, _ in self.layers]}")

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[tuple[int, str, ModelReport]]:
        return iter(self.layers)

    def __bool__(self) -> bool:
        return self.passed

    def raise_if_failed(self) -> LayersReport:
        if not self.passed:
            raise GradientCheckError(self)
        return self

    def summary(self) -> str:
        """One line naming the first faulty layer (``layer 2 (Dense): W wrong, ...``)."""
        if self.first_faulty is None:
            return f"all {len(self.layers)} layers pass"
        _, cls, rep = next(x for x in self.layers if x[0] == self.first_faulty)
        parts = []
        for name, r in rep.failures.items():
            parts.append(f"{name} wrong ({r.diagnosis.kind}: {r.diagnosis.message})")
        if not parts:
            d = rep.diagnosis
            parts.append(f"{d.kind}: {d.message}")
        return f"layer {self.first_faulty} ({cls}): " + ", ".join(parts)

    def __str__(self) -> str:
        lines = [f"layer-by-layer gradient check: {self.verdict.upper()}: {self.summary()}"]
        rows = []
        for i, cls, rep in self.layers:
            for r in rep.values():
                row = r.row()
                row[0] = f"{i}:{cls}.{r.name}"
                rows.append(row)
        lines.append(format_table(rows))
        for i, cls, rep in self.layers:
            for line in rep._extra():
                lines.append(f"layer {i} ({cls}): {line}")
            for r in rep.values():
                lines += [f"layer {i} ({cls}) {x}" for x in r.detail_lines()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<LayersReport {self.verdict} first_faulty={self.first_faulty}>"

    def to_dict(self, arrays: bool = False) -> dict[str, Any]:
        return jsonable({
            "passed": self.passed, "first_faulty": self.first_faulty, "summary": self.summary(),
            "layers": [{"index": i, "layer": cls, "report": r.to_dict(arrays)} for i, cls, r in self.layers],
        })

    def _repr_html_(self) -> str:
        parts = [f"<p><b>{html.escape(self.summary())}</b></p>"]
        for i, cls, rep in self.layers:
            parts.append(html_table(list(rep.values()), f"layer {i} ({cls})", rep._extra()))
        return "<div>" + "".join(parts) + "</div>"

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        items: list[Any] = [Text(self.summary(), style="green" if self.passed else "bold red")]
        for i, cls, rep in self.layers:
            items.append(rich_table(list(rep.values()), f"layer {i} ({cls})", rep._extra()))
        return Group(*items)
