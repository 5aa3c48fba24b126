"""Judging targets and assembling reports, shared by every entry point.

* :func:`_reports` - judge a list of :class:`~verigrad.check.engine.Target` in the requested mode
  (full, sample, fast) and build one :class:`GradientReport` each (:func:`_tensor_report`);
* :func:`_live_check` - judge live arrays against ``loss()``, detect mutation and nondeterminism, build
  the :class:`ModelReport`; :func:`_check_live_params` - the same for :func:`check_params`'s dicts;
* :func:`_finish` - ``error_cutoff`` (:func:`_apply_cutoff`), ``verbose`` and ``raise_on_failure``.
"""

from __future__ import annotations

from dataclasses import replace
from collections.abc import Mapping
from typing import Any, Callable, Optional

import numpy as np

from verigrad.check import modes as _modes
from verigrad.check.adapters import _LossValue
from verigrad.check.arrays import _grad_array, _grad_eps, _Restorer
from verigrad.check.diagnosis import Diagnosis, diagnose, special
from verigrad.check.engine import (
    EPS64,
    FAIL,
    NOT_EVALUATED,
    Context,
    EntryResult,
    NonScalarObjective,
    Objective,
    Target,
    coarser_dtype,
    eps_of,
    judge_entries,
)
from verigrad.check.options import Options
from verigrad.check.report import GradientReport, ModelReport


def _reports(targets: list[Target], ctx: Context, opts: Options, transposed: Optional[set[str]] = None,
             dtypes: Optional[dict[str, str]] = None) -> tuple[dict[str, GradientReport], list[str]]:
    rng = opts.generator()
    obj = ctx.objective
    out: dict[str, GradientReport] = {}
    notes: list[str] = []
    transposed = transposed or set()
    if opts.mode == "fast":
        fast = _modes.fast_check(targets, ctx, rng, opts.directions, opts.use_fast_path)
        share = obj.n_evals
        for t in targets:
            res, dirs = fast[t.name]
            directional = {
                "n_directions": len(dirs),
                "passed": all(d.passed for d in dirs),
                "rel_error": max((d.rel_error for d in dirs), default=0.0),
                "numerical": [d.numerical for d in dirs], "analytic": [d.analytic for d in dirs],
            }
            out[t.name] = _tensor_report(t, res, ctx, opts, directional=directional,
                                         transposed=t.name in transposed, dtype=(dtypes or {}).get(t.name))
        per = share // max(len(targets), 1)
        for r in out.values():
            r.n_evals = per
        return out, notes
    if opts.mode == "sample":
        chosen = _modes.sample_indices(targets, opts.k, rng)
    else:
        chosen = {t.name: np.arange(t.live.size) for t in targets}
    for t in targets:
        before = obj.n_evals
        res = judge_entries(t, ctx, chosen[t.name], opts.use_fast_path)
        rep = _tensor_report(t, res, ctx, opts, transposed=t.name in transposed,
                             dtype=(dtypes or {}).get(t.name))
        rep.n_evals = obj.n_evals - before
        out[t.name] = rep
    return out, notes


def _tensor_report(t: Target, res: Optional[EntryResult], ctx: Context, opts: Options, *,
                   directional: Optional[dict[str, Any]] = None, transposed: bool = False,
                   dtype: Optional[str] = None) -> GradientReport:
    shape = t.analytic.shape
    notes: list[str] = []
    if res is None:
        # nothing evaluated entry by entry (fast mode): read-only all-NaN views, no per-entry work
        numerical = tolerance = estimate = np.broadcast_to(np.float64(np.nan), shape)
        status = np.broadcast_to(np.int8(NOT_EVALUATED), shape)
    else:
        numerical = np.full(shape, np.nan)
        tolerance = np.full(shape, np.nan)
        status = np.full(shape, NOT_EVALUATED, dtype=np.int8)
        estimate = np.full(shape, np.nan)
        estimate.flat[res.index] = res.error_estimate
        numerical.flat[res.index] = res.numerical
        tolerance.flat[res.index] = res.tolerance
        status.flat[res.index] = res.status
        notes += res.notes
    full = res is not None and len(res.index) == t.analytic.size
    if res is not None:
        diag = diagnose(t.analytic, numerical, tolerance, status, batch_size=opts.batch_size, full=full)
    elif directional is not None and not directional["passed"]:
        diag = Diagnosis("mismatch", "random directional derivatives disagree with the analytic gradient", {})
    elif directional is not None:
        diag = Diagnosis("ok", f"{directional['n_directions']} random +-1 directional derivatives agree", {})
    else:
        diag = Diagnosis("ok", "nothing to check", {})
    if not diag.passed and diag.kind not in ("zero", "transpose") and res is not None:
        ev = status != NOT_EVALUATED
        if ev.any() and np.all(numerical[ev] == 0) and np.any(np.abs(t.analytic[ev]) > tolerance[ev]):
            diag = Diagnosis(
                "mismatch",
                f"the objective does not change when {t.name} is perturbed (numerical gradient exactly 0 "
                f"everywhere) but the claimed gradient is not 0: the function ignores this argument (a lambda "
                f"using a captured variable instead of its parameter?), the array checked is a copy of the one "
                f"the loss reads (e.g. made by astype or np.array), or the loss reads a stale cache",
                dict(diag.details, independent=True))
    if transposed:
        agree = res is not None and not (status == FAIL).any()
        diag = Diagnosis(
            "transpose",
            f"the claimed gradient has shape {shape[::-1]}, the transpose of {t.name}'s shape {shape}"
            + ("; its transpose matches the numerical gradient (return dW.T, or X.T @ dY instead of dY.T @ X)"
               if agree else ""),
            {"claimed_shape": list(shape[::-1]), "expected_shape": list(shape), "transpose_matches": agree},
        )
    if diag.kind == "precision":
        dts = sorted({f"evaluation {_dtname(t.eval_eps)}", f"analytic {t.analytic_dtype}"})
        diag = Diagnosis("precision", f"differences exceed float64 round-off but are explained by the "
                         f"round-off of the dtypes involved ({', '.join(dts)})", diag.details)
    method = ctx.method
    mode = opts.mode
    rep = GradientReport(
        t.name, np.asarray(t.analytic, dtype=np.float64).reshape(shape), numerical, tolerance, status, diag,
        method=method, mode=mode, n_evals=0, dtype=dtype or str(t.live.dtype),
        analytic_dtype=t.analytic_dtype, notes=notes, directional=directional,
    )
    rep.error_estimate = estimate
    return rep


def _dtname(eps: float) -> str:
    for dt in (np.float16, np.float32, np.float64):
        if eps_of(dt) == eps:
            return np.dtype(dt).name
    return f"eps={eps:.1e}"


def _apply_cutoff(report: Any, cutoff: float) -> None:
    """Judge each tensor by ``rel_error <= error_cutoff`` (seed 001's criterion), an explicit user tolerance.

    A tensor above the cutoff fails (its automatic diagnosis is kept when it already failed); a tensor
    at or below it passes even where the per-entry analysis failed (the message keeps what that analysis
    found). Global failures (mutated input, nondeterminism) are never overridden.
    """
    reps = [report] if isinstance(report, GradientReport) else list(report.values())
    for r in reps:
        d = r.diagnosis
        if d.kind in ("mutates_input", "nondeterministic"):
            continue
        details = {"error_cutoff": cutoff, "rel_error": r.rel_error, "automatic": d.kind}
        if not r.rel_error <= cutoff:
            if d.passed:
                r.diagnosis = Diagnosis(
                    "mismatch", f"relative error ||a-n||/(||a||+||n||) = {r.rel_error:.3e} exceeds error_cutoff="
                    f"{cutoff:g} (the automatic per-entry analysis alone found: {d.kind})", details)
        elif not d.passed:
            r.diagnosis = Diagnosis(
                "ok", f"relative error {r.rel_error:.3e} <= error_cutoff={cutoff:g} (explicit tolerance); without "
                f"it the check fails: {d.kind}: {d.message}", details)
    note = (f"error_cutoff={cutoff:g}: each tensor passes if and only if its relative error "
            "||a-n||/(||a||+||n||) is <= error_cutoff (replaces the automatic per-entry verdict)")
    report.notes.append(note)


def _finish(report: Any, opts: Options) -> Any:
    """Apply ``error_cutoff``, print with ``verbose=True``, raise with ``raise_on_failure=True``."""
    if opts.error_cutoff is not None:
        _apply_cutoff(report, float(opts.error_cutoff))
    if opts.verbose:
        print(report)  # the one place verigrad prints: the user asked for it with verbose=True
    if opts.raise_on_failure:
        report.raise_if_failed()
    return report


def _flag(reports: dict[str, GradientReport], diag: Diagnosis) -> None:
    """Make every report fail with a global diagnosis (mutated input, nondeterminism)."""
    for r in reports.values():
        r.diagnosis = diag


def _live_check(targets: list[Target], loss: Callable[[], Any], opts: Options, *, title: str,
                mutated: Optional[str], batch_size: Optional[int],
                transposed: set[str], what: str = "loss", upstream: float = 0.0,
                regrad: Optional[Callable[[], Optional[Mapping[str, np.ndarray]]]] = None,
                lscale: float = 0.0) -> ModelReport:
    """Judge live targets against ``loss()``; detect nondeterminism; build the :class:`ModelReport`.

    ``upstream`` is the largest upstream gradient the backward pass started from (``|dL/dpred|`` of
    :func:`gradient_check`): like ``|dLdf|`` for :func:`check_gradients`, it scales the round-off of
    the analytic side (``(1 - tanh(z)**2) * dy`` of a saturated float32 unit carries ``dy``'s error).

    ``lscale`` is the scale of the terms the loss sums (``sum |out * dy|`` of :func:`check_layers`, as
    :func:`check_gradients` uses): the rounding of ``L`` is that of its partial sums, not of ``|L|``.

    ``regrad`` recomputes the claimed gradients (name -> array of the target's shape, float64) at the
    current contents of the live arrays: it enables the multi-kink test (``engine.verify_nearby``, which
    moves every target by a small random offset and re-judges the entry there). It is not used when
    the objective mutates the live arrays. When it ran, it is run once more at ``x`` after the judgement,
    so that whatever the backward pass caches describes ``x`` again.

    The caller owns the safety net (copies of every live array restored in ``finally``, the model's
    gradient arrays too: ``regrad`` overwrites them).
    """
    if mutated is not None:
        # the objective itself writes into the live arrays: undo that after every evaluation
        inner = loss

        def loss() -> Any:  # noqa: F811 - deliberate wrapper
            keep = [t.live.copy() for t in targets]
            try:
                return inner()
            finally:
                for t, k in zip(targets, keep):
                    np.copyto(t.live, k)

    obj = Objective(loss, what)
    L0 = obj()
    if not np.isfinite(L0):
        raise ValueError(f"the {what} is not finite at the starting point ({L0}); expected a finite scalar")
    eval_dt = coarser_dtype(obj.value_dtype)
    for t in targets:
        t.eval_eps = max(t.eval_eps, eps_of(eval_dt))
    method = opts.method
    if method in ("auto", "complex"):
        method = "central"
    ctx = Context(obj, L0, max(abs(L0), lscale, np.finfo(np.float64).tiny), method, opts.eps, opts.atol, opts.rtol)
    amax = [float(np.max(np.abs(t.analytic))) for t in targets if t.analytic.size]
    ctx.gscale = max(float(np.max(amax)) if amax else 0.0, upstream if np.isfinite(upstream) else 0.0)
    regrad_calls = [0]
    if regrad is not None and mutated is None:
        def counted() -> Optional[Mapping[str, np.ndarray]]:
            regrad_calls[0] += 1
            return regrad()

        ctx.regrad = counted
        ctx.targets = targets
    opts = replace(opts, batch_size=opts.batch_size or batch_size)
    reps, notes = _reports(targets, ctx, opts, transposed=transposed)
    if regrad_calls[0] and regrad is not None:
        try:  # the backward pass ran at nearby points: leave its caches describing x (live arrays restored)
            regrad()
        except Exception:  # noqa: BLE001 - it already failed at a nearby point; nothing to put back
            pass
    if opts.method == "complex":
        notes.append("complex step needs fn(x) on complex input: use check_gradients; central used here")
    L_end = obj()
    glob: Optional[Diagnosis] = None
    if mutated is not None:
        glob = special("mutates_input", f"the {what} modified {mutated} during evaluation", argument=mutated)
    elif not (L_end == L0 or (np.isnan(L_end) and np.isnan(L0))):
        glob = special(
            "nondeterministic",
            f"the {what} gave different values for the same parameters ({L0!r} at the start, {L_end!r} "
            "at the end of the check): stale cache, hidden state or randomness (dropout in training mode?)",
            first=L0, last=L_end)
    if glob is not None:
        _flag(reps, glob)
    return ModelReport(reps, method=method, mode=opts.mode, n_evals=obj.n_evals, global_diagnosis=glob,
                       title=title, notes=notes)


def _check_live_params(params: dict[str, np.ndarray], grads: dict[str, Any], loss_value: _LossValue,
                       opts: Options, notes: list[str], eval64: frozenset = frozenset(),
                       regrad: Optional[Callable[[], Optional[Mapping[str, np.ndarray]]]] = None) -> ModelReport:
    """Judge the live ``params`` against ``loss_value()``; ``eval64``: names evaluated in float64 (upcast).

    ``regrad``: the claimed gradients recomputed at the current live arrays (see :func:`_live_check`).
    """
    targets = []
    transposed: set[str] = set()
    for nm, p in params.items():
        g, tr = _grad_array(grads[nm], f"grads[{nm!r}]", p.shape, f"params[{nm!r}]")
        if tr:
            transposed.add(nm)
        eg, gdt = _grad_eps(grads[nm])
        if nm in eval64:
            targets.append(Target(nm, p, g, EPS64, eg, analytic_dtype=gdt))
        else:
            e = max(eps_of(p.dtype), eg)
            targets.append(Target(nm, p, g, e, e, analytic_dtype=gdt))
    guard = _Restorer([t.live for t in targets])
    try:
        probe_obj = Objective(loss_value)
        probe_obj()
        if getattr(regrad, "needs_loss_tuple", False) and loss_value.note is None:
            regrad = None  # loss() returns no (loss, grads): the gradients cannot be recomputed
        changed = guard.changed()
        mutated = None
        if changed:
            mutated = "params " + ", ".join(repr(targets[i].name) for i in changed)
            guard.restore()
        report = _live_check(targets, loss_value, opts, title="gradient check", mutated=mutated,
                             batch_size=None, transposed=transposed, regrad=regrad)
        report.notes += notes + ([loss_value.note] if loss_value.note else [])
    except NonScalarObjective as exc:
        raise TypeError(str(exc)) from None
    finally:
        guard.restore()
    return report
