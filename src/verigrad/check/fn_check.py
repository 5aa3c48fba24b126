"""The core of :func:`verigrad.check.check_gradients`: judge ``fn``'s claimed gradient at one point.

:func:`_check_fn_once` chooses the evaluation precision (float64 when ``fn`` computes in float64 on
float64 input), validates and uses the complex step or falls back to central differences, judges every
entry, and detects a ``fn`` that mutates its input or is nondeterministic. :func:`_probe` repeats it at
rescaled copies of ``x`` (:func:`_probe_points`), for backward passes wrong only for large or negative
inputs.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from verigrad.check.adapters import _TupleOutput
from verigrad.check.arrays import _dldf, _grad_array, _grad_eps, _output, _same_bits
from verigrad.check.assembly import _reports
from verigrad.check.complex_step import _complex_derivative, _complex_valid, _ComplexFailed
from verigrad.check.diagnosis import Diagnosis, special
from verigrad.check.engine import Context, Objective, Target, coarser_dtype, eps_of
from verigrad.check.options import Options
from verigrad.check.report import GradientReport


def _probe_points(x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    with np.errstate(all="ignore"):
        pts = [("x*10", x * 10), ("x*0.1", x * 0.1), ("x+1", x + 1), ("-x", -x)]
    return [(label, np.array(p, dtype=x.dtype)) for label, p in pts]


def _probe(report: GradientReport, fn: Callable, grad: Any, x: np.ndarray, dLdf: Any, opts: Options) -> None:
    sub_opts = replace(opts, probe=False, raise_on_failure=False)
    for label, p in _probe_points(x):
        if p.dtype.kind != "f" or not np.all(np.isfinite(p)):
            report.probes.append({"label": label, "skipped": "the probe point is not finite"})
            continue
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                sub = _check_fn_once(fn, grad, p, dLdf, sub_opts)
        except Exception as exc:  # noqa: BLE001 - a probe point where fn fails is skipped, not failed
            report.probes.append({"label": label, "skipped": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        report.n_evals += sub.n_evals
        entry = {"label": label, "passed": sub.passed, "kind": sub.diagnosis.kind,
                 "rel_error": sub.rel_error, "message": sub.diagnosis.message,
                 "worst": sub.worst.to_dict() if sub.worst is not None else None}
        report.probes.append(entry)
        if not sub.passed and report.passed:
            d = sub.diagnosis
            report.diagnosis = Diagnosis(
                d.kind, f"at probe point {label} (x rescaled): {d.message}", dict(d.details, probe=label))
            report.worst = sub.worst


def _check_fn_once(fn: Callable, grad: Any, x: np.ndarray, dLdf: Any, opts: Options) -> GradientReport:
    name = opts.name or "x"
    x = np.array(x, copy=True)  # always a private, writeable ndarray (also for 0-d input)
    g_raw = grad(x.copy()) if callable(grad) else grad
    analytic, transposed = _grad_array(g_raw, "grad", x.shape, "x")
    eps_a, a_dtype = _grad_eps(g_raw)

    # choose the evaluation precision: float64 when fn computes in float64 on float64 input
    work = x.copy()
    first_in = work.copy()
    out0 = None
    if opts.promote and x.dtype != np.float64 and x.dtype.itemsize < 8:
        try:
            x64 = x.astype(np.float64)
            trial_in = x64.copy()
            trial = _output(fn(trial_in), "")
            if trial.dtype == np.float64:
                work, first_in, out0 = x64, trial_in, trial
        except Exception:  # noqa: BLE001 - fn refuses float64: evaluate in x's dtype
            out0 = None
    if out0 is None:
        out0 = _output(fn(first_in), "at x")
    if out0.dtype.kind == "c":
        raise TypeError("fn returned a complex array for real input; expected a real array or scalar")
    mutated = not _same_bits(first_in, work)
    if not np.all(np.isfinite(out0)):
        raise ValueError("fn(x) is not finite at x; expected finite values to check a gradient")
    G = _dldf(fn.upstream() if isinstance(fn, _TupleOutput) else dLdf, out0.shape)
    eval_eps = eps_of(coarser_dtype(out0.dtype if out0.dtype.kind == "f" else None, work.dtype))

    def lfun(out: Any) -> float:
        o = _output(out, "at a perturbed point")
        if o.shape != G.shape:
            raise ValueError(f"fn returned shape {o.shape} at a perturbed point but {G.shape} at x")
        return float(np.sum(np.real(o).astype(np.float64) * G))

    if mutated:
        obj = Objective(lambda: lfun(fn(work.copy())), "fn")
    else:
        obj = Objective(lambda: lfun(fn(work)), "fn")
    with np.errstate(over="ignore", invalid="ignore"):
        terms = out0.astype(np.float64) * G
        L0 = float(np.sum(terms))
        lscale = max(float(np.sum(np.abs(terms))), abs(L0), np.finfo(np.float64).tiny)

    method = opts.method
    complex_note = None
    target = Target(name, work, analytic, eval_eps, eps_a, analytic_dtype=a_dtype)
    if method in ("auto", "complex") and not mutated:
        ok, why = _complex_valid(fn, work, G, obj, lscale, eval_eps, opts.generator())
        if ok:
            target.complex_derivative = _complex_derivative(fn, work, G, obj)
            method = "complex"
        else:
            complex_note = f"complex step not used: {why}"
            method = "central"
    elif method == "complex":
        method = "central"
        complex_note = "complex step not used: fn mutates its input"
    elif method == "auto":
        method = "central"
    ctx = Context(obj, L0, lscale, method, opts.eps, opts.atol, opts.rtol)
    if callable(grad) and not mutated:
        def regrad() -> dict[str, np.ndarray]:
            # the claimed gradient at the current point (the multi-kink test's nearby points), called on
            # a copy in x's dtype as at x
            return {name: _grad_array(grad(work.astype(x.dtype)), "grad", x.shape, "x")[0]}

        ctx.regrad = regrad
        ctx.targets = [target]
    # round-off of the analytic side scales with the upstream gradient too (e.g. (1 - tanh**2) * dLdf
    # of a saturated unit in float32 keeps the absolute error of dLdf's scale)
    ctx.gscale = max(float(np.max(np.abs(analytic))) if analytic.size else 0.0,
                     float(np.max(np.abs(G))) if G.size else 0.0)
    try:
        reps, _ = _reports([target], ctx, opts, transposed={name} if transposed else set(),
                           dtypes={name: str(x.dtype)})
    except _ComplexFailed as exc:
        ctx = replace(ctx, method="central")
        complex_note = f"complex step abandoned: {exc}"
        reps, _ = _reports([target], ctx, opts, transposed={name} if transposed else set(),
                           dtypes={name: str(x.dtype)})
    report = reps[name]
    report.n_evals = obj.n_evals
    if complex_note and opts.method in ("complex", "auto"):
        report.notes.append(complex_note)
    out_end = fn(work.copy())
    if mutated:
        report.diagnosis = special(
            "mutates_input", "fn modified its input array x in place (the checker passed it a copy)",
            argument="x")
    elif not _same_bits(np.asarray(out_end), out0):
        report.diagnosis = special(
            "nondeterministic",
            "fn gave different outputs for the same input (evaluated at x at the start and the end of "
            "the check): stale cache, hidden state or randomness",
            max_difference=float(np.max(np.abs(np.asarray(out_end) - out0)))
            if np.asarray(out_end).shape == out0.shape and np.asarray(out_end).dtype.kind in "fciu" else None)
    return report
