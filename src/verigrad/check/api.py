"""Entry points of the gradient checker.

* :func:`check_gradients` - a function ``fn(x)`` and its claimed gradient (seed 002's signature);
* :func:`check_params` - a hand-written model: ``loss()`` reading live parameter arrays (seed 001);
* :func:`gradient_check` - any model following the network protocol (seed 000);
* :func:`check_layers` - each layer of ``model.layers`` in isolation: localise the first faulty layer.

Nothing here imports ``verigrad.nn``: models and layers are used through their protocol only.
After any check, every checked array (parameters, inputs) is bit-identical to before, also when the
user's code raises or the check is interrupted; a model's ``grads()`` arrays are restored too.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

import numpy as np

from verigrad.check import modes as _modes
from verigrad.check.diagnosis import Diagnosis, diagnose, special
from verigrad.check.engine import (
    C_ROUND,
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
    to_scalar,
)
from verigrad.check.report import GradientReport, LayersReport, ModelReport

METHODS = ("auto", "central", "complex", "richardson")
MODES = ("full", "sample", "fast")

__all__ = ["check_gradients", "check_params", "gradient_check", "check_layers", "METHODS", "MODES"]


@dataclass(frozen=True)
class Options:
    """Options shared by every entry point (see :func:`check_gradients` for their meaning)."""

    method: str = "auto"
    mode: str = "full"
    eps: Optional[float] = None
    atol: Optional[float] = None
    rtol: Optional[float] = None
    k: int = 64
    seed: Optional[int] = None
    rng: Optional[np.random.Generator] = None
    probe: Optional[bool] = None
    raise_on_failure: bool = False
    batch_size: Optional[int] = None
    use_fast_path: bool = True
    directions: int = 3
    training: bool = True
    check_input: bool = True
    promote: bool = True
    upcast: bool = False
    name: Optional[str] = None
    error_cutoff: Optional[float] = None
    verbose: bool = False

    def generator(self) -> np.random.Generator:
        if self.rng is not None:
            return self.rng
        return np.random.default_rng(0 if self.seed is None else self.seed)


_OPTION_NAMES = tuple(Options.__dataclass_fields__)


#: other spellings of ``eps``: ``epsilon`` (seed 001), ``h`` (seed 002's original package)
_EPS_ALIASES = ("epsilon", "h")


def _options(options: dict[str, Any], **fixed: Any) -> Options:
    options = dict(options)
    for alias in _EPS_ALIASES:
        if alias in options:
            if "eps" in options or fixed.get("eps") is not None:
                raise TypeError(f"{alias}= is another name for eps= (the finite-difference step); give only one of them")
            options["eps"] = options.pop(alias)
    unknown = sorted(set(options) - set(_OPTION_NAMES))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; valid options: {list(_OPTION_NAMES)}")
    merged = dict(options)
    merged.update({k: v for k, v in fixed.items() if v is not None})
    opts = Options(**merged)
    if opts.method not in METHODS:
        raise ValueError(f"method={opts.method!r} is not valid; choose one of {list(METHODS)}")
    if opts.mode not in MODES:
        raise ValueError(f"mode={opts.mode!r} is not valid; choose one of {list(MODES)}")
    for nm in ("eps", "atol", "rtol", "error_cutoff"):
        v = getattr(opts, nm)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise TypeError(f"{nm} must be a number; got {type(v).__name__}")
        if not np.isfinite(v) or (v <= 0 if nm == "eps" else v < 0):
            expected = "> 0" if nm == "eps" else ">= 0"
            raise ValueError(f"{nm} must be finite and {expected}; got {v!r}")
    if isinstance(opts.k, bool) or not isinstance(opts.k, (int, np.integer)) or opts.k < 1:
        raise ValueError(f"k must be a positive integer (entries to sample); got {opts.k!r}")
    if isinstance(opts.directions, bool) or not isinstance(opts.directions, (int, np.integer)) or opts.directions < 1:
        raise ValueError(f"directions must be a positive integer; got {opts.directions!r}")
    if opts.rng is not None and not isinstance(opts.rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator; got {type(opts.rng).__name__}")
    if opts.batch_size is not None and (not isinstance(opts.batch_size, (int, np.integer)) or opts.batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer; got {opts.batch_size!r}")
    return opts


# ---------------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------------
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


class _TupleOutput:
    """Adapt ``fn`` when it returns a tuple (CS231n's ``(out, cache)``, ``(loss, dx)``, or several outputs).

    * ``dLdf`` a tuple/list with one entry per output item (``None`` for items such as a cache): the
      outputs are concatenated, flattened, so that ``L = sum_i sum(out_i * dLdf_i)``;
    * otherwise the first item is the output (``(out, cache)``, ``(loss, grads)``), when it is an array
      or a scalar; a note says so.

    A list of plain numbers is an array, not a tuple of outputs. The decision is taken at the first
    call and kept (a different structure at a later call is an error naming both).
    """

    def __init__(self, fn: Callable[[np.ndarray], Any], dLdf: Any) -> None:
        self.fn = fn
        self.dLdf = dLdf
        self.kind: Optional[str] = None  # "plain", "first" or "multi"
        self.n_items = 0
        self.shapes: list[tuple[int, ...]] = []
        self.note: Optional[str] = None

    def _decide(self, out: Any) -> None:
        if not isinstance(out, (tuple, list)) or (isinstance(out, list) and all(_is_number(v) for v in out)):
            self.kind = "plain"
            return
        k = len(out)
        if k == 0:
            raise TypeError("fn returned an empty tuple; expected an array or a scalar")
        d = self.dLdf
        if isinstance(d, (tuple, list)) and len(d) == k and not _plain_numeric(d, out[0]):
            used = [i for i in range(k) if d[i] is not None]
            if not used:
                raise ValueError(f"dLdf is a tuple of {k} None: give the upstream gradient of at least one of "
                                 f"fn's {k} outputs")
            for i in used:
                if not _array_like(out[i]):
                    raise TypeError(f"fn returned a tuple whose item {i} is a {type(out[i]).__name__}, but dLdf[{i}] "
                                    f"is not None: give dLdf[{i}]=None for items that are not outputs (e.g. a cache)")
                shp = np.shape(out[i])
                gi = np.asarray(d[i])
                if gi.ndim and gi.shape != shp:
                    raise ValueError(f"dLdf[{i}] has shape {gi.shape} but fn(x)[{i}] has shape {shp}; they must match")
            self.kind = "multi"
            self.used = used
            self.shapes = [tuple(np.shape(out[i])) for i in used]
            self.n_items = k
            return
        if not _array_like(out[0]):
            raise TypeError(
                f"fn returned a {type(out).__name__} of {k} items whose first item is a {type(out[0]).__name__}; "
                "expected an array or a scalar: pass lambda x: fn(x)[i] for the output to check, or dLdf as a "
                f"tuple of {k} upstream gradients (None for items that are not outputs)")
        if d is not None and not isinstance(d, (tuple, list)):
            want = np.shape(d)
            got = np.shape(out[0])
            if want != got and int(np.prod(want)) > 1:
                match = [i for i in range(1, k) if _array_like(out[i]) and np.shape(out[i]) == want]
                hint = (f"; item {match[0]} has that shape: pass lambda x: fn(x)[{match[0]}]" if match else "")
                raise ValueError(f"fn returned a tuple of {k} items; its first item, taken as the output, has shape "
                                 f"{got} but dLdf has shape {want}{hint}")
        self.kind = "first"
        self.n_items = k
        self.note = (f"fn returned a {type(out).__name__} of {k} items (like (out, cache) or (loss, grad)): its first "
                     f"item was checked as the output; pass lambda x: fn(x)[0] to make this explicit")

    def __call__(self, x: np.ndarray) -> Any:
        out = self.fn(x)
        if self.kind is None:
            self._decide(out)
        is_tuple = isinstance(out, (tuple, list)) and not (
            isinstance(out, list) and all(_is_number(v) for v in out))
        if self.kind == "plain":
            if is_tuple:
                raise TypeError(f"fn returned a {type(out).__name__} at a perturbed point but an array at x")
            return np.asarray(out) if isinstance(out, list) else out
        if not is_tuple or len(out) != self.n_items:
            raise TypeError(f"fn returned {type(out).__name__} at a perturbed point but a tuple of "
                            f"{self.n_items} items at x")
        if self.kind == "first":
            return out[0]
        parts = [np.asarray(out[i]) for i in self.used]
        for i, p, shp in zip(self.used, parts, self.shapes):
            if p.shape != shp:
                raise ValueError(f"fn(x)[{i}] has shape {p.shape} at a perturbed point but {shp} at x")
        return np.concatenate([p.ravel() for p in parts])

    def upstream(self) -> Any:
        """``dLdf`` for the adapted output (flattened and concatenated for several outputs)."""
        if self.kind != "multi":
            return self.dLdf
        parts = []
        for i, shp in zip(self.used, self.shapes):
            g = np.asarray(self.dLdf[i])
            if g.dtype.kind not in "fiu":
                raise TypeError(f"dLdf[{i}] must be a real numeric array or scalar; got dtype {g.dtype}")
            parts.append(np.broadcast_to(g.astype(np.float64), shp).ravel() if g.ndim == 0 else
                         g.astype(np.float64).ravel())
        return np.concatenate(parts)


def _plain_numeric(d: Any, first: Any) -> bool:
    """Whether a tuple/list ``dLdf`` is one numeric array with the shape of the first output item."""
    try:
        arr = np.asarray(d)
    except Exception:  # noqa: BLE001 - ragged: several upstream gradients
        return False
    return arr.dtype.kind in "fiu" and _array_like(first) and arr.shape == np.shape(first)


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


# ---------------------------------------------------------------------------------------------------
# core: judge a list of targets and build reports
# ---------------------------------------------------------------------------------------------------
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
    numerical = np.full(shape, np.nan)
    tolerance = np.full(shape, np.nan)
    status = np.full(shape, NOT_EVALUATED, dtype=np.int8)
    notes: list[str] = []
    estimate = np.full(shape, np.nan)
    if res is not None:
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


# ---------------------------------------------------------------------------------------------------
# check_gradients
# ---------------------------------------------------------------------------------------------------
def check_gradients(fn: Callable[[np.ndarray], Any], grad: Any, x: Any, dLdf: Any = None,
                    **options: Any) -> GradientReport:
    """Check the claimed gradient of ``L = sum(fn(x) * dLdf)`` with respect to ``x``.

    Parameters
    ----------
    fn : callable, ndarray of shape ``x.shape`` -> ndarray or scalar
        The function being checked. It is called on private copies of ``x`` (float64 when ``x`` is
        float32 and ``fn`` computes in float64 on float64 input, for an accurate numerical side).
        A tuple output counts as its first item (``(out, cache)``, ``(loss, dx)``), unless ``dLdf`` is
        a tuple with one upstream gradient per item (``None`` for items that are not outputs): then
        ``L = sum_i sum(fn(x)[i] * dLdf[i])``. A list of numbers is an array.
    grad : ndarray of shape ``x.shape``, or callable ``grad(x)``
        The claimed ``dL/dx``. A non-square 2-D ``grad`` with the transposed shape is diagnosed as
        ``transpose``. With a callable, extra probe points are checked by default.
    x : ndarray of float
        The point. Never modified, with one exception: when ``fn`` ignores its argument and reads
        ``x`` itself (CS231n's ``f = lambda W: net.loss(X, y)[0]`` with ``x = net.params["W1"]``), which
        is found out when the private copies leave ``fn`` unchanged, ``x`` is perturbed in place like a
        :func:`check_params` parameter and restored bit for bit (a note says so).
    dLdf : ndarray of ``fn(x)``'s shape, or scalar, optional
        The upstream gradient. Omitted: ``fn`` must return a scalar.
    **options
        ``method`` ("auto", "central", "complex", "richardson"; auto uses the complex step when it is
        validated on ``fn``, central differences otherwise), ``mode`` ("full", "sample", "fast"), ``k``
        (entries for sample mode), ``seed``/``rng``, ``eps`` (absolute step; default chosen per entry),
        ``atol``/``rtol`` (explicit tolerance: an entry passes if ``|a-n| <= atol`` or
        ``|a-n|/(|a|+|n|) <= rtol``), ``probe`` (check rescaled copies of ``x`` too; default: ``grad``
        is callable), ``batch_size`` (to name a factor N), ``raise_on_failure``, ``name``, ``h`` or
        ``epsilon`` (other names for ``eps``), ``error_cutoff`` (explicit threshold on the relative
        error: pass if and only if ``rel_error <= error_cutoff``), ``verbose`` (print the report).

    Returns
    -------
    GradientReport
        ``float(report)`` is ``||a - n|| / (||a|| + ||n||)``; ``report.passed``, ``report.diagnosis``.

    Raises
    ------
    TypeError, ValueError
        Bad arguments (each message names the argument, what was received and what was expected).
    GradientCheckError
        With ``raise_on_failure=True`` when the check fails.
    """
    opts = _options(options)
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__}")
    x_arr = _float_array(x, "x")
    probe = opts.probe if opts.probe is not None else callable(grad)
    fn = _TupleOutput(fn, dLdf)
    report = _check_fn_once(fn, grad, x_arr, dLdf, opts)
    if report.diagnosis.details.get("independent") and isinstance(x, np.ndarray):
        live = _check_live_x(fn, grad, x, opts, report)
        if live is not None:
            report, probe = live, False
    if fn.note:
        report.notes.append(fn.note)
    if probe:
        _probe(report, fn, grad, x_arr, dLdf, opts)
    return _finish(report, opts)


def _check_live_x(fn: "_TupleOutput", grad: Any, x: np.ndarray, opts: Options,
                  report: GradientReport) -> Optional[GradientReport]:
    """Re-check when ``fn`` ignores its argument but reads the caller's array ``x`` itself.

    CS231n's idiom ``f = lambda W: net.loss(X, y)[0]`` with ``x = net.params["W1"]`` relies on the
    checker perturbing ``x`` in place. When the private copies left ``fn`` unchanged (numerical gradient
    exactly 0) and perturbing ``x`` itself changes ``fn``'s output, ``x`` is checked in place like a
    :func:`check_params` parameter (restored bit for bit, also on errors). Returns None otherwise.
    """
    if x.dtype.kind != "f" or not x.flags.writeable or x.size == 0:
        return None
    keep = x.copy()
    a = np.abs(np.nan_to_num(report.analytic))
    i = int(np.argmax(a)) if a.size else 0
    try:
        base = np.asarray(fn(keep.copy()))
        x.flat[i] = x.flat[i] + np.asarray(1e-3 * max(1.0, abs(float(x.flat[i]))), dtype=x.dtype)
        moved = np.asarray(fn(keep.copy()))
    except Exception:  # noqa: BLE001 - could not tell: keep the first report
        return None
    finally:
        np.copyto(x, keep)
    if moved.shape == base.shape and _same_bits(moved, base):
        return None
    G = _dldf(fn.upstream(), base.shape)
    name = report.name

    def loss() -> float:
        o = _output(fn(keep.copy()), "")
        return float(np.sum(np.real(o).astype(np.float64) * G))

    g = grad(keep.copy()) if callable(grad) else grad
    sub = {f: getattr(opts, f) for f in ("method", "mode", "eps", "atol", "rtol", "k", "seed", "rng",
                                           "batch_size", "directions")}
    rep = check_params(loss, {name: x}, {name: g}, **sub)[name]
    rep.notes.append(
        f"fn ignores its argument and reads the array {name} itself (like lambda W: net.loss(X, y)[0]): "
        f"{name} was perturbed in place and restored bit for bit")
    return rep


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


class _ComplexFailed(RuntimeError):
    pass


def _complex_call(fn: Callable, xc: np.ndarray, G: np.ndarray) -> complex:
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        out = fn(xc)
    arr = np.asarray(out)
    if arr.dtype.kind != "c":
        raise _ComplexFailed(f"fn returned dtype {arr.dtype} for complex input")
    if arr.shape != G.shape:
        raise _ComplexFailed(f"fn returned shape {arr.shape} for complex input")
    return complex(np.sum(arr * G))


def _complex_valid(fn: Callable, work: np.ndarray, G: np.ndarray, obj: Objective, lscale: float,
                   eval_eps: float, rng: np.random.Generator) -> tuple[bool, str]:
    """Validate complex step on ``fn``: 2 random directions, complex vs central (two steps)."""
    xc = work.astype(np.complex128)
    if eval_eps > EPS64 * 2:
        return False, "fn evaluates below float64 precision"
    try:
        with np.errstate(all="ignore"):
            for _ in range(2):
                v = rng.choice(np.array([-1.0, 1.0]), size=work.shape)
                hc = 1e-20
                lc = _complex_call(fn, xc + 1j * hc * v, G)
                obj.n_evals += 1
                if not np.isfinite(lc.imag):
                    return False, "non-finite complex-step derivative"
                dc = lc.imag / hc
                xs = float(np.max(np.abs(work))) if work.size else 1.0
                h = eval_eps ** (1 / 3) * max(1.0, xs) / np.sqrt(max(work.size, 1))
                est = []
                for hh in (h, 2 * h):
                    save = work.copy()
                    try:
                        np.copyto(work, save + hh * v)
                        lp = obj()
                        np.copyto(work, save - hh * v)
                        lm = obj()
                    finally:
                        np.copyto(work, save)
                    est.append((lp - lm) / (2 * hh))
                err = abs(est[0] - est[1]) + C_ROUND * eval_eps * lscale / h + 1e-8 * abs(est[0])
                if not abs(dc - est[0]) <= 3 * err:
                    return False, "complex-step and central directional derivatives disagree"
    except _ComplexFailed as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - fn does not support complex input
        return False, f"fn does not accept complex input ({type(exc).__name__})"
    return True, ""


def _complex_derivative(fn: Callable, work: np.ndarray, G: np.ndarray, obj: Objective) -> Callable:
    def derivative(idx: np.ndarray, h: np.ndarray) -> np.ndarray:
        xc = work.astype(np.complex128)
        out = np.empty(len(idx))
        try:
            with np.errstate(all="ignore"):
                for i, (j, hj) in enumerate(zip(idx, h)):
                    old = xc.flat[j]
                    xc.flat[j] = old + 1j * hj
                    obj.n_evals += 1
                    out[i] = _complex_call(fn, xc, G).imag / hj
                    xc.flat[j] = old
        except _ComplexFailed:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _ComplexFailed(f"{type(exc).__name__}: {exc}") from exc
        return out

    return derivative


# ---------------------------------------------------------------------------------------------------
# live-array checks (check_params, gradient_check, check_layers)
# ---------------------------------------------------------------------------------------------------
class _Restorer:
    """Copies of arrays, put back bit for bit with ``np.copyto``."""

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.pairs = [(a, a.copy()) for a in arrays]

    def changed(self) -> list[int]:
        return [i for i, (a, c) in enumerate(self.pairs) if not _same_bits(a, c)]

    def restore(self) -> None:
        for a, c in self.pairs:
            np.copyto(a, c)


def _live_check(targets: list[Target], loss: Callable[[], Any], opts: Options, *, title: str,
                mutated: Optional[str], batch_size: Optional[int],
                transposed: set[str], what: str = "loss", upstream: float = 0.0) -> ModelReport:
    """Judge live targets against ``loss()``; detect nondeterminism; build the :class:`ModelReport`.

    ``upstream`` is the largest upstream gradient the backward pass started from (``|dL/dpred|`` of
    :func:`gradient_check`): like ``|dLdf|`` for :func:`check_gradients`, it scales the round-off of
    the analytic side (``(1 - tanh(z)**2) * dy`` of a saturated float32 unit carries ``dy``'s error).

    The caller owns the safety net (copies of every live array restored in ``finally``).
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
    ctx = Context(obj, L0, max(abs(L0), np.finfo(np.float64).tiny), method, opts.eps, opts.atol, opts.rtol)
    amax = [float(np.max(np.abs(t.analytic))) for t in targets if t.analytic.size]
    ctx.gscale = max(float(np.max(amax)) if amax else 0.0, upstream if np.isfinite(upstream) else 0.0)
    opts = replace(opts, batch_size=opts.batch_size or batch_size)
    reps, notes = _reports(targets, ctx, opts, transposed=transposed)
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


_GRAD_PATTERNS = ("{}", "d{}", "d_{}", "grad_{}", "grad{}", "{}_grad", "{}grad", "dL_d{}", "dLd{}", "dL/d{}",
                  "g{}", "g_{}", "delta_{}", "nabla_{}")


def _grad_names(name: str) -> list[str]:
    """Names under which the gradient of parameter ``name`` may be stored (``W1``: ``dW1``, ``grad_W1``...)."""
    out = []
    for pat in _GRAD_PATTERNS:
        cand = pat.format(name)
        if cand not in out:
            out.append(cand)
    return out


class _LossValue:
    """Wrap ``loss()`` so that a ``(loss, grads)`` tuple (CS231n's ``model.loss(X, y)``) counts as its loss."""

    def __init__(self, loss: Callable[[], Any]) -> None:
        self.loss = loss
        self.note: Optional[str] = None

    def __call__(self) -> Any:
        v = self.loss()
        if isinstance(v, (tuple, list)) and len(v) >= 1 and _is_number(v[0]):
            if self.note is None:
                self.note = (f"loss() returned a {type(v).__name__} of {len(v)} items (like (loss, grads)): its "
                             "first item was used as the loss")
            return v[0]
        return v


def _params_mapping(params: Any, loss: Callable[[], Any]) -> tuple[dict[str, Any], str, list[str]]:
    """Normalise ``params`` to an ordered dict name -> array; return (dict, form, notes).

    Forms: ``"mapping"``; ``"sequence"`` (a list/tuple of arrays, named ``params[i]``); ``"object"`` (the
    float ndarray attributes of an object, e.g. ``net.W1``; attributes that ``loss()`` replaces by new
    arrays are forward caches, not parameters, and are left out: this costs one call of ``loss()``).
    """
    if isinstance(params, Mapping):
        return dict(params), "mapping", []
    if isinstance(params, np.ndarray):
        return {"param": params}, "single", []
    if isinstance(params, (list, tuple)):
        if not params:
            raise ValueError("params is empty: nothing to check")
        return {f"params[{i}]": p for i, p in enumerate(params)}, "sequence", []
    attrs = getattr(params, "__dict__", None)
    if not isinstance(attrs, dict):
        raise TypeError(
            f"params must be a mapping name -> ndarray, a list of arrays or an object with array attributes; "
            f"got {type(params).__name__}")
    arrays = {k: v for k, v in attrs.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"}
    if not arrays:
        dicts = [k for k, v in attrs.items() if isinstance(v, Mapping) and v
                 and all(isinstance(a, np.ndarray) for a in v.values())]
        hint = f" (it has dicts of arrays: pass one of them, e.g. params=obj.{dicts[0]})" if dicts else ""
        raise ValueError(f"params is a {type(params).__name__} object with no floating-point ndarray attributes"
                         f"{hint}; pass a dict name -> live array instead")
    grad_like = {pat.format(o) for o in arrays for pat in _GRAD_PATTERNS[1:]}
    arrays = {k: v for k, v in arrays.items() if k not in grad_like}
    before = {k: id(v) for k, v in arrays.items()}
    keep = {k: v.copy() for k, v in arrays.items()}
    try:
        loss()
    finally:
        for k, v in arrays.items():
            np.copyto(v, keep[k])
    now = getattr(params, "__dict__", {})
    live = {k: v for k, v in arrays.items() if id(now.get(k)) == before[k]}
    notes = []
    cached = sorted(set(arrays) - set(live))
    if cached:
        notes.append(f"attributes {cached} of the {type(params).__name__} object are recomputed by loss() (forward "
                     "caches), not parameters: not checked")
    return live, "object", notes


def _grads_lookup(grads: Any, names: list[str], form: str, same_object: bool) -> tuple[dict[str, Any], list[str]]:
    """Find the claimed gradient of each parameter in ``grads`` (mapping, sequence or object).

    Returns (name -> gradient, notes). Names are matched exactly first (not when ``grads`` is the
    parameter object itself), then by the usual spellings (``dW1``, ``grad_W1``, ``W1_grad``...). When
    the parameters are an object's attributes, those without a gradient are left out with a note.
    """
    notes: list[str] = []
    if isinstance(grads, (list, tuple)):
        if form != "sequence":
            raise TypeError(
                f"grads is a {type(grads).__name__} of arrays but params is not: give both as lists in the same "
                "order, or both as dicts with the same names")
        if len(grads) != len(names):
            raise ValueError(f"params has {len(names)} arrays but grads has {len(grads)}; they must pair up in order")
        return dict(zip(names, grads)), notes
    if form == "single":
        return {names[0]: grads}, notes
    if form == "sequence":
        raise TypeError(f"params is a list of arrays but grads is a {type(grads).__name__}: give grads as a list "
                        "of arrays in the same order")
    if isinstance(grads, Mapping):
        table: dict[str, Any] = dict(grads)
        where = "grads"
    else:
        attrs = getattr(grads, "__dict__", None)
        if not isinstance(attrs, dict):
            raise TypeError(f"grads must be a mapping name -> ndarray (or a list, or an object with gradient "
                            f"attributes); got {type(grads).__name__}")
        table = {k: v for k, v in attrs.items() if isinstance(v, np.ndarray) or _is_number(v)}
        where = f"the {type(grads).__name__} object"
    found: dict[str, Any] = {}
    used: set[str] = set()
    missing = []
    for nm in names:
        cands = _grad_names(nm)[1:] if same_object else _grad_names(nm)
        hit = next((c for c in cands if c in table and c not in used), None)
        if hit is None:
            missing.append(nm)
        else:
            found[nm] = table[hit]
            used.add(hit)
    optional = form == "object" or not isinstance(grads, Mapping)
    extra = [k for k in table if k not in used] if isinstance(grads, Mapping) else []
    if (missing and not optional) or extra:
        parts = []
        if missing and not optional:
            parts.append(f"grads has no entry for {missing}")
        if extra:
            parts.append(f"grads has entries {extra} that are not in params")
        raise ValueError("params and grads must have the same names: " + "; ".join(parts)
                         + " (the gradient of 'W' may also be named 'dW', 'grad_W' or 'W_grad')")
    if missing:
        if not found:
            raise ValueError(f"no gradient found in {where} for any of the parameters {names} (looked for the same "
                             "names and d<name>, grad_<name>, <name>_grad)")
        notes.append(f"no gradient given for {missing}: not checked")
    return found, notes


def _check_live_params(params: dict[str, np.ndarray], grads: dict[str, Any], loss_value: "_LossValue",
                       opts: Options, notes: list[str], eval64: frozenset = frozenset()) -> ModelReport:
    """Judge the live ``params`` against ``loss_value()``; ``eval64``: names evaluated in float64 (upcast)."""
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
        changed = guard.changed()
        mutated = None
        if changed:
            mutated = "params " + ", ".join(repr(targets[i].name) for i in changed)
            guard.restore()
        report = _live_check(targets, loss_value, opts, title="gradient check", mutated=mutated,
                             batch_size=opts.batch_size, transposed=transposed)
        report.notes += notes + ([loss_value.note] if loss_value.note else [])
    except NonScalarObjective as exc:
        raise TypeError(str(exc)) from None
    finally:
        guard.restore()
    return report


def _check_params_upcast(container: Any, form: str, params: dict[str, np.ndarray], grads: dict[str, Any],
                         loss_value: "_LossValue", opts: Options, notes: list[str]) -> Optional[ModelReport]:
    """Re-check failing float32 parameters with float64 copies put into the user's dict or object.

    A float32 loss cannot resolve small gradients with small steps, and large float32 steps cross
    ReLU kinks (CS231n's TwoLayerNet at ``std=1e-4``): the numerical side is then wrong, not the code.
    When the parameters live in a dict (``net.params``) or as attributes that ``loss()`` reads at every
    call, float64 copies are put in their place, validated (each copy must be read: perturbing it
    changes the loss; the loss must not come back in float32), checked, and the float32 originals are
    put back in ``finally``. Returns None when that is not possible (the float32 report stands).
    """
    if form == "mapping" and not isinstance(container, dict):
        return None
    low = [k for k, p in params.items() if p.dtype.itemsize < 8]
    swaps: list[tuple[str, np.ndarray]] = []

    def put(k: str, arr: np.ndarray) -> None:
        if form == "mapping":
            container[k] = arr
        else:
            setattr(container, k, arr)

    try:
        for k in low:
            if (container.get(k) if form == "mapping" else getattr(container, k, None)) is not params[k]:
                return None
            swaps.append((k, params[k]))
            put(k, params[k].astype(np.float64))
        live = {k: (container[k] if form == "mapping" else getattr(container, k)) if k in low else p
                for k, p in params.items()}
        base, dt = to_scalar(loss_value(), "loss")
        if dt is not None and np.dtype(dt).itemsize < 8:
            return None
        for k in low:
            arr = live[k]
            g = np.abs(np.asarray(grads[k], dtype=np.float64)).ravel()
            i = int(np.argmax(g)) if g.size else 0
            old = arr.flat[i]
            arr.flat[i] = old + 1e-3 * max(1.0, abs(float(old)))
            try:
                moved = to_scalar(loss_value(), "loss")[0]
            finally:
                arr.flat[i] = old
            if moved == base:
                return None
        report = _check_live_params(live, grads, loss_value, opts, notes, eval64=frozenset(low))
        where = "dict" if form == "mapping" else f"{type(container).__name__} object"
        report.notes.append(
            f"the float32 check of {low} failed, and a float32 loss cannot tell why (its rounding hides small "
            f"gradients; float32-sized steps cross kinks): float64 copies were put into the {where} for the "
            "numerical side (the analytic gradients are judged as float32 code) and the originals put back")
        return report
    except Exception:  # noqa: BLE001 - the loss refuses float64 parameters: keep the float32 report
        return None
    finally:
        for k, orig in swaps:
            put(k, orig)


def _required_args(fn: Callable) -> list[str]:
    """Names of the positional parameters ``fn`` requires (empty when unknown)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in sig.parameters.values() if p.kind in kinds and p.default is inspect.Parameter.empty]


def _tensor_like(v: Any) -> bool:
    """An object holding its values in ``.data`` (an ndarray) and its gradient in ``.grad``."""
    return not isinstance(v, np.ndarray) and isinstance(getattr(v, "data", None), np.ndarray)


def _unwrap_tensors(params: Any, grads: Any) -> tuple[Any, Any, Optional[str]]:
    """Parameter objects with ``.data``/``.grad`` (a NumPy autograd framework's ``Parameter``): their
    ``.data`` arrays are the live parameters and, when ``grads`` is omitted, ``.grad`` the gradients."""
    if isinstance(params, Mapping):
        items = list(params.items())
    elif isinstance(params, (list, tuple)):
        items = list(enumerate(params))
    else:
        items = []
    if not items or not all(_tensor_like(v) for _, v in items):
        if grads is None:
            raise TypeError("grads is missing: pass the claimed gradients in the form of params (a dict with the "
                            "same names, a list in the same order); it may be omitted only when params holds "
                            "parameter objects with .data and .grad")
        return params, grads, None
    from_grad = grads is None
    if from_grad:
        missing = [k for k, v in items if getattr(v, "grad", None) is None]
        if missing:
            raise ValueError(f"params {missing} have no .grad (None): run the backward pass before checking")
        g = {k: v.grad for k, v in items}
        grads = g if isinstance(params, Mapping) else [g[k] for k, _ in items]
    data = {k: v.data for k, v in items}
    params = data if isinstance(params, Mapping) else [data[k] for k, _ in items]
    return params, grads, "parameter objects: their .data arrays were checked" + (
        " against their .grad" if from_grad else "")


def check_params(loss: Callable[[], Any], params: Any, grads: Any = None, **options: Any) -> ModelReport:
    """Check the claimed gradients of a hand-written model.

    Parameters
    ----------
    loss : callable () -> scalar
        Reads the live arrays in ``params`` and returns the loss (a Python float, a NumPy scalar or a
        0-d array). A ``(loss, grads)`` tuple, as CS231n's ``model.loss(X, y)`` returns, counts as its
        first item.
    params : mapping of str to ndarray of float, list of ndarray, or object
        The live parameter arrays; they are perturbed in place and restored bit for bit. A list is named
        ``params[0]``, ``params[1]``...; an object contributes its float ndarray attributes (``net.W1``),
        except those that ``loss()`` replaces by new arrays (forward caches such as ``net.z1``).
        Parameter objects with ``.data`` (an ndarray) and ``.grad`` (a NumPy autograd framework's
        ``model.parameters()``) stand for their ``.data`` arrays.
    grads : mapping of str to ndarray, list of ndarray, or object; optional for parameter objects
        The claimed ``dL/dparam``, in the form of ``params``: the same names (or ``dW1``, ``grad_W1``,
        ``W1_grad``... for ``W1``), the same order for lists; for an object, its attributes so named
        (``net.dW1``; ``grads`` may be the same object as ``params``). Shapes must match, except for
        axes of length 1 (a ``(1, D)`` bias with a ``(D,)`` gradient).
    **options
        As for :func:`check_gradients` (``method``, ``mode``, ``k``, ``seed``, ``eps``, ``atol``, ``rtol``,
        ``batch_size``, ``raise_on_failure``). The round-off of both sides is judged by the coarser of
        the parameter's and the gradient's dtypes (and of the loss value's, when it is a NumPy scalar).

    Returns
    -------
    ModelReport
    """
    opts = _options(options)
    if not callable(loss):
        raise TypeError(f"loss must be a zero-argument callable; got {type(loss).__name__}")
    required = _required_args(loss)
    if required:
        raise TypeError(
            f"loss must be a zero-argument callable reading the live parameters; {getattr(loss, '__qualname__', 'it')} "
            f"requires {required}: wrap the call, e.g. check_params(lambda: model.compute_loss(model.forward(X), y), "
            "params, grads)")
    loss_value = _LossValue(loss)
    same = grads is params and not isinstance(params, (Mapping, list, tuple, np.ndarray))
    params, grads, tensor_note = _unwrap_tensors(params, grads)
    container = params
    params, form, notes = _params_mapping(params, loss_value)
    if tensor_note:
        notes.append(tensor_note)
    grads, more = _grads_lookup(grads, list(params), form, same_object=same)
    notes += more
    params = {k: v for k, v in params.items() if k in grads}
    for nm, p in params.items():
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{nm!r}] must be a live NumPy array (perturbed in place); got {type(p).__name__}")
        _float_array(p, f"params[{nm!r}]")
    report = _check_live_params(params, grads, loss_value, opts, notes)
    if (not report.passed and report.global_diagnosis is None and form in ("mapping", "object")
            and any(p.dtype.itemsize < 8 for p in params.values())):
        up = _check_params_upcast(container, form, params, grads, loss_value, opts, notes)
        if up is not None:
            report = up
    return _finish(report, opts)


class _LossFunction:
    """A loss given as a function ``fn(pred, y) -> (loss, dL/dpred)`` (CS231n's ``softmax_loss``)."""

    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        self.fn = fn

    def _call(self, pred: Any, y: Any) -> tuple[Any, Any]:
        out = self.fn(pred, y)
        if not (isinstance(out, (tuple, list)) and len(out) >= 2):
            raise TypeError(
                f"loss_fn is a function returning {type(out).__name__}; gradient_check needs dL/dpred too: pass a "
                "function returning (loss, dloss_dpred), like CS231n's softmax_loss(scores, y), or an object with "
                "forward(pred, y) -> loss and backward(pred, y) -> dL/dpred")
        return out[0], out[1]

    def forward(self, pred: Any, y: Any) -> Any:
        return self._call(pred, y)[0]

    def backward(self, pred: Any, y: Any) -> Any:
        return self._call(pred, y)[1]


class _FirstItemLoss:
    """A loss object whose ``forward`` returns ``(loss, ...)``: its first item is the loss."""

    def __init__(self, loss_fn: Any) -> None:
        self.loss_fn = loss_fn

    def forward(self, pred: Any, y: Any) -> Any:
        out = self.loss_fn.forward(pred, y)
        return out[0] if isinstance(out, (tuple, list)) else out

    def backward(self, pred: Any, y: Any) -> Any:
        return self.loss_fn.backward(pred, y)


def _as_loss(loss_fn: Any) -> Any:
    if all(callable(getattr(loss_fn, m, None)) for m in ("forward", "backward")):
        return loss_fn
    if callable(loss_fn):
        return _LossFunction(loss_fn)
    _require(loss_fn, "loss_fn", ("forward", "backward"))
    return loss_fn


class _ModelView:
    """A model whose parameters and gradients are dict attributes, lists, or named differently.

    ``params``/``grads`` may be methods or attributes; ``parameters``/``gradients`` are accepted as
    their names (numpy-ml layers). Lists pair up in order (``params[i]``); gradient dicts may spell
    the names ``dW``, ``grad_W``, ``W_grad``. Everything else is the wrapped model's.
    """

    def __init__(self, model: Any, pget: Callable[[], Any], gget: Callable[[], Any]) -> None:
        self._model = model
        self._pget = pget
        self._gget = gget

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._model, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._model.forward(*args, **kwargs)

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        return self._model.backward(*args, **kwargs)

    def _params(self) -> tuple[dict[str, Any], str]:
        p = self._pget()
        if isinstance(p, Mapping):
            return dict(p), "mapping"
        if isinstance(p, (list, tuple)):
            return {f"params[{i}]": v for i, v in enumerate(p)}, "sequence"
        raise TypeError(f"the model's parameters must be a dict name -> ndarray or a list of arrays; got "
                        f"{type(p).__name__}")

    def params(self) -> dict[str, Any]:
        return self._params()[0]

    def grads(self) -> dict[str, Any]:
        p, form = self._params()
        g = self._gget()
        if isinstance(g, Mapping) and all(k in g for k in p):
            return dict(g)
        found, _ = _grads_lookup(g, list(p), form, same_object=False)
        return found


def _member(model: Any, names: tuple[str, ...]) -> Optional[Callable[[], Any]]:
    for nm in names:
        v = getattr(model, nm, None)
        if callable(v):
            return v
        if isinstance(v, (Mapping, list, tuple)):
            return lambda _v=v: _v
    return None


def _as_model(model: Any) -> Any:
    """The model itself when it follows the protocol with matching dicts, else a :class:`_ModelView`."""
    if not all(callable(getattr(model, m, None)) for m in ("forward", "backward")):
        if callable(getattr(model, "loss", None)) and isinstance(getattr(model, "params", None), Mapping):
            raise TypeError(
                f"model must have methods ['forward', 'backward', 'params', 'grads']; {type(model).__name__} has "
                "loss() and a params dict instead (CS231n style): use loss, grads = model.loss(X, y); "
                "check_params(lambda: model.loss(X, y), model.params, grads)")
        _require(model, "model", ("forward", "backward", "params", "grads"))
    pget = _member(model, ("params", "parameters"))
    gget = _member(model, ("grads", "gradients"))
    if pget is None or gget is None:
        lacks = [nm for nm, g in (("params", pget), ("grads", gget)) if g is None]
        raise TypeError(
            f"model must have methods ['forward', 'backward', 'params', 'grads']; {type(model).__name__} lacks "
            f"{lacks} (params/grads may also be dict attributes, or be named parameters/gradients); for a model "
            "whose arrays are plain attributes (self.W1, self.dW1), use check_params(loss, model, model)")
    if callable(getattr(model, "params", None)) and callable(getattr(model, "grads", None)):
        p = model.params()
        if isinstance(p, Mapping):
            try:
                g = model.grads()
            except Exception:  # noqa: BLE001 - grads may not exist before the first backward: decide later
                g = None
            if isinstance(g, Mapping) and all(k in g for k in p):
                return model
    return _ModelView(model, pget, gget)


def _require(obj: Any, arg: str, members: tuple[str, ...]) -> None:
    missing = [m for m in members if not callable(getattr(obj, m, None))]
    if missing:
        raise TypeError(f"{arg} must have methods {list(members)}; {type(obj).__name__} lacks {missing}")


def gradient_check(model: Any, X: Any, y: Any, loss_fn: Any = None, eps: Optional[float] = None,
                   atol: Optional[float] = None, rtol: Optional[float] = None, **options: Any) -> ModelReport:
    """Check every parameter of a model, and ``dL/dX`` (entry ``"input"``), against finite differences.

    Parameters
    ----------
    model : object
        With ``forward(X, training=...)``, ``backward(dL_dpred) -> dL_dX``, ``params()`` and ``grads()``
        (dicts of live arrays named like ``W_0``). If it has ``perturbed_losses`` it is used for the
        single-entry perturbations (``use_fast_path=False`` to disable).
    X : ndarray of shape (n_samples, ...)
        Inputs; never modified. Float32 inputs are promoted to float64 for the numerical side when
        the model accepts it.
    y : ndarray
        Targets passed to ``loss_fn``.
    loss_fn : object, optional
        With ``forward(pred, y) -> float`` and ``backward(pred, y) -> dL/dpred``. Omitted (seed 001's
        protocol): the model must have ``compute_loss(y_hat, y)`` and ``backward(y)`` returning a dict
        of gradients keyed by attribute names (``{'W1': dW1, 'b1': db1, ...}``); the arrays
        ``model.W1``... are then checked (no ``"input"`` entry), ``forward(X)`` may lack ``training``.
    eps : float, optional
        Absolute finite-difference step (default: chosen per entry from the dtype and ``|x_i|``).
        ``epsilon=`` (seed 001) and ``h=`` are accepted as other names for it.
    atol, rtol : float, optional
        Explicit tolerance: an entry passes if ``|a-n| <= atol`` or ``|a-n|/(|a|+|n|) <= rtol``.
    **options
        ``method``, ``mode`` ("full", "sample", "fast"), ``k``, ``seed``/``rng``, ``training`` (passed to
        ``forward``, default True), ``check_input``, ``use_fast_path``, ``promote``, ``raise_on_failure``,
        ``upcast`` (default False: temporarily replace float32 arrays in each ``layer.params`` dict by
        float64 copies for the numerical side; validated, undone in ``finally``), ``error_cutoff``
        (seed 001: an explicit threshold on each tensor's relative error ``||a-n||/(||a||+||n||)``; a
        tensor passes if and only if it is at most ``error_cutoff``, replacing the automatic per-entry
        verdict), ``verbose`` (True: also print the report to stdout).

    Returns
    -------
    ModelReport
        One :class:`GradientReport` per parameter (named as ``params()`` names them) and ``"input"``.
    """
    if _is_number(loss_fn):
        raise TypeError(
            f"gradient_check: the 4th argument is loss_fn, got the number {loss_fn!r}; pass steps and thresholds by "
            "keyword: gradient_check(model, X, y, epsilon=1e-5, error_cutoff=1e-7) (seed 001's positional "
            "epsilon, error_cutoff) or gradient_check(model, X, y, loss_fn, eps=...)")
    if loss_fn is None:
        given = {k: v for k, v in (("eps", eps), ("atol", atol), ("rtol", rtol)) if v is not None}
        return _compute_loss_check(model, X, y, {**options, **given})
    opts = _options(options, eps=eps, atol=atol, rtol=rtol)
    model = _as_model(model)
    loss_fn = _as_loss(loss_fn)
    X = np.asarray(X)
    if X.dtype.kind in "fc":
        _float_array(X, "X")
    params = model.params()
    if not isinstance(params, Mapping):
        raise TypeError(f"model.params() must return a dict name -> ndarray; got {type(params).__name__}")
    for nm, p in params.items():
        if not isinstance(p, np.ndarray):
            raise TypeError(f"model.params()[{nm!r}] must be a NumPy array; got {type(p).__name__}")
        _float_array(p, f"model.params()[{nm!r}]")
    p_guard = _Restorer(list(params.values()))
    swaps: list[tuple[dict, str, np.ndarray]] = []
    g_before = _safe_grads(model)
    g_guard = _Restorer(list(g_before.values()))
    training = opts.training
    try:
        Xa = X.copy()
        pred = _layer_forward(model, Xa, training)
        mutated_parts = []
        if not _same_bits(Xa, X):
            mutated_parts.append("X")
        changed = p_guard.changed()
        if changed:
            names = list(params)
            mutated_parts.append("params " + ", ".join(repr(names[i]) for i in changed))
            p_guard.restore()
        mutated = " and ".join(mutated_parts) if mutated_parts else None
        first = loss_fn.forward(pred, y)
        if isinstance(first, (tuple, list)) and first and _is_number(first[0]):
            loss_fn = _FirstItemLoss(loss_fn)  # forward returns (loss, ...): its first item is the loss
            first = first[0]
        loss0, _ = to_scalar(first, "loss_fn.forward")
        dpred = loss_fn.backward(pred, y)
        dX = model.backward(dpred)
        grads = model.grads()
        missing = [k for k in params if k not in grads]
        if missing:
            raise ValueError(f"model.grads() has no entry for parameter(s) {missing}; names: {list(grads)}")
        analytic = {k: (np.asarray(grads[k]).copy(), grads[k]) for k in params}
        if mutated is not None:
            p_guard.restore()

        # numerical side: promote X to float64 when the model then computes in float64
        Xe = X.copy() if X.dtype.kind == "f" else X
        pred_dt = np.asarray(pred).dtype if np.asarray(pred).dtype.kind == "f" else None
        extra_forwards = 0
        if opts.promote and X.dtype.kind == "f" and X.dtype.itemsize < 8:
            try:
                X64 = X.astype(np.float64)
                extra_forwards += 1
                pr = np.asarray(_layer_forward(model, X64.copy(), training))
                if pr.dtype == np.float64:
                    Xe = X64
                    pred_dt = pr.dtype
            except Exception:  # noqa: BLE001 - the model refuses float64 inputs
                pass
            if mutated is not None:
                p_guard.restore()
        eval_eps = eps_of(coarser_dtype(pred_dt))

        upcast_note: Optional[str] = None
        if opts.upcast and mutated is None:
            params, swaps, upcast_note = _upcast(model, params, analytic, Xe, y, loss_fn, training)
            if swaps:
                extra_forwards += 2 + len(swaps)
                pred_up = np.asarray(_layer_forward(model, Xe.copy(), training))
                eval_eps = eps_of(coarser_dtype(pred_up.dtype if pred_up.dtype.kind == "f" else None))

        targets = []
        transposed: set[str] = set()
        fast_ok = opts.use_fast_path and callable(getattr(model, "perturbed_losses", None)) and mutated is None
        for nm, p in params.items():
            g, tr = _grad_array(analytic[nm][0], f"model.grads()[{nm!r}]", p.shape, f"parameter {nm!r}")
            if tr:
                transposed.add(nm)
            ea, adt = _grad_eps(analytic[nm][0])
            fast = None
            if fast_ok:
                def fast(idx: np.ndarray, steps: np.ndarray, _nm: str = nm) -> np.ndarray:
                    return model.perturbed_losses(_nm, idx, steps, Xe, y, loss_fn)
            targets.append(Target(nm, p, g, eval_eps, ea, fast=fast, analytic_dtype=adt))
        if (opts.check_input and isinstance(dX, np.ndarray) and dX.shape == X.shape
                and X.dtype.kind == "f" and dX.dtype.kind in "fiu" and np.all(np.isfinite(dX))):
            ea, adt = _grad_eps(dX)
            targets.append(Target("input", Xe, dX.astype(np.float64), eval_eps, ea, analytic_dtype=adt))

        def loss() -> Any:
            return loss_fn.forward(_layer_forward(model, Xe, training), y)

        batch = int(X.shape[0]) if X.ndim >= 1 else None
        dp = np.asarray(dpred) if isinstance(dpred, (np.ndarray, np.generic, float)) else None
        up = float(np.max(np.abs(dp))) if dp is not None and dp.size and dp.dtype.kind in "fiu" else 0.0
        report = _live_check(targets, loss, opts, title="gradient check", mutated=mutated,
                             batch_size=batch, transposed=transposed, upstream=up)
        report.n_evals += extra_forwards
        if upcast_note:
            report.notes.append(upcast_note)
    except NonScalarObjective as exc:
        raise TypeError(str(exc)) from None
    finally:
        _undo_upcast(swaps)
        p_guard.restore()
        g_guard.restore()
        _restore_grads(model, g_before)
    return _finish(report, opts)


def _compute_loss_check(model: Any, X: Any, y: Any, options: dict[str, Any]) -> ModelReport:
    """``gradient_check(model, X, y)`` without ``loss_fn``: seed 001's protocol.

    ``model.forward(X)`` (with ``training=`` when it takes it), ``model.compute_loss(y_hat, y)`` and
    ``model.backward(y)`` returning ``{attribute name: gradient}``; the parameters are the model's
    attributes of those names (live arrays, perturbed in place and restored), checked by
    :func:`check_params`. Gradient keys may also be spelled ``dW1``, ``grad_W1``... for ``W1``.
    """
    if not callable(getattr(model, "compute_loss", None)):
        raise TypeError(
            f"gradient_check: loss_fn is missing and {type(model).__name__} has no compute_loss(y_hat, y); pass the "
            "loss as the 4th argument, e.g. gradient_check(model, X, y, CrossEntropyLoss()) (an object with "
            "forward(pred, y) and backward(pred, y)); without loss_fn the model must have compute_loss(y_hat, y) "
            "and backward(y) returning a dict of gradients keyed by attribute names, e.g. {'W1': dW1, 'b1': db1}")
    _require(model, "model", ("forward", "backward"))
    _options(options)  # validate before running the model
    training = options.get("training", True)
    X = np.asarray(X)
    _layer_forward(model, X, training)
    claimed = model.backward(y)
    if not isinstance(claimed, Mapping) or not claimed:
        raise TypeError(
            f"gradient_check without loss_fn: model.backward(y) must return a non-empty dict {{attribute name: "
            f"gradient}} such as {{'W1': dW1, 'b1': db1}}; got {type(claimed).__name__}")
    arrays = {k: v for k, v in getattr(model, "__dict__", {}).items()
              if isinstance(v, np.ndarray) and v.dtype.kind == "f"}
    params: dict[str, np.ndarray] = {}
    grads: dict[str, Any] = {}
    for key, g in claimed.items():
        name = key if isinstance(getattr(model, str(key), None), np.ndarray) else next(
            (a for a in arrays if key in _grad_names(a)[1:]), None)
        if name is None:
            raise ValueError(
                f"model.backward(y) returned a gradient named {key!r} but {type(model).__name__} has no array "
                f"attribute {key!r} (nor one it is the gradient of, like W1 for dW1); its array attributes: "
                f"{sorted(arrays)}")
        params[name] = getattr(model, name)
        grads[name] = np.array(g, copy=True)

    def loss() -> Any:
        return model.compute_loss(_layer_forward(model, X, training), y)

    return check_params(loss, params, grads, **options)


def _upcast(model: Any, params: Mapping[str, np.ndarray], analytic: dict[str, Any], Xe: np.ndarray, y: Any,
            loss_fn: Any, training: bool) -> tuple[Mapping[str, np.ndarray], list, Optional[str]]:
    """Temporarily replace float32/float16 arrays in each ``layer.params`` dict by float64 copies.

    Used only with ``upcast=True``. It is validated: ``model.params()`` must then return the copies, and
    perturbing each copy at its largest analytic entry must change the loss (a layer that keeps its own
    references to the old arrays would otherwise look like a zero gradient). On any doubt the original
    arrays are put back and a note says why. Returns (params to check, swaps to undo, note).
    """
    layers = getattr(model, "layers", None)
    if not isinstance(layers, (list, tuple)):
        return params, [], "upcast=True needs model.layers with params dicts; not upcast"
    swaps: list[tuple[dict, str, np.ndarray]] = []
    for layer in layers:
        lp = getattr(layer, "params", None)
        if isinstance(lp, dict):
            for k, v in list(lp.items()):
                if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.dtype.itemsize < 8:
                    lp[k] = v.astype(np.float64)
                    swaps.append((lp, k, v))
    if not swaps:
        return params, [], "upcast=True: no parameter below float64; nothing to upcast"
    new = model.params()
    by_id = {id(v): nm for nm, v in new.items()} if isinstance(new, Mapping) else {}
    names = [by_id.get(id(lp[k])) for lp, k, _ in swaps]
    ok = None not in names and isinstance(new, Mapping) and set(new) == set(params)
    if ok:
        def loss() -> float:
            return float(to_scalar(loss_fn.forward(_layer_forward(model, Xe.copy(), training), y), "loss")[0].real)

        l0 = loss()
        for (lp, k, _), nm in zip(swaps, names):
            g = np.abs(np.asarray(analytic[nm][0], dtype=np.float64))
            if not g.size or g.max() == 0:
                continue
            i = int(np.argmax(g))
            arr = lp[k]
            old = arr.flat[i]
            arr.flat[i] = old + 1e-3 * max(1.0, abs(float(old)))
            try:
                changed = loss() != l0
            finally:
                arr.flat[i] = old
            if not changed:
                ok = False
                break
    if not ok:
        _undo_upcast(swaps)
        return params, [], "upcast=True: the model does not read the upcast layer.params arrays; not upcast"
    return new, swaps, "parameters temporarily upcast to float64 for the numerical side (upcast=True)"


def _undo_upcast(swaps: list[tuple[dict, str, np.ndarray]]) -> None:
    """Put the original parameter arrays back into their ``layer.params`` dicts."""
    for lp, k, v in swaps:
        lp[k] = v


def _safe_grads(model: Any) -> dict[str, np.ndarray]:
    try:
        g = model.grads()
    except Exception:  # noqa: BLE001 - grads may not exist before the first backward
        return {}
    if not isinstance(g, Mapping):
        return {}
    return {k: v for k, v in g.items() if isinstance(v, np.ndarray)}


def _restore_grads(model: Any, before: dict[str, np.ndarray]) -> None:
    """Copy the pre-check gradient values into the arrays ``model.grads()`` returns now."""
    now = _safe_grads(model)
    for k, old in before.items():
        cur = now.get(k)
        if cur is not None and cur is not old and cur.shape == old.shape and cur.flags.writeable:
            # ``before`` holds the original objects already restored by the guard
            np.copyto(cur, old, casting="unsafe")


def _layer_forward(layer: Any, x: np.ndarray, training: bool) -> Any:
    """``layer.forward(x, training=...)``, or ``layer.forward(x)`` when it takes no ``training`` flag."""
    try:
        return layer.forward(x, training=training)
    except TypeError as exc:
        if "training" not in str(exc):
            raise
        return layer.forward(x)


def _layer_backward(layer: Any, x: np.ndarray, dy: np.ndarray) -> Any:
    try:
        return layer.backward(dy)
    except TypeError:
        return layer.backward(x, dy)


def _layer_dict(layer: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """A layer's ``params``/``grads`` dict attribute (numpy-ml: ``parameters``/``gradients``), else {}."""
    for nm in names:
        v = getattr(layer, nm, None)
        if isinstance(v, Mapping):
            return dict(v)
    return {}


def check_layers(model: Any, X: Any, **options: Any) -> LayersReport:
    """Check each layer of ``model.layers`` in isolation and name the first faulty one.

    Each layer gets the activations the network produces at that point and a random upstream
    gradient ``dy`` (standard normal, from ``seed``/``rng``); its parameters and its input gradient are
    checked for ``L = sum(layer.forward(x) * dy)``.

    Parameters
    ----------
    model : object with ``layers`` (list of objects following the layer protocol), or that list itself
    X : ndarray of shape (n_samples, ...)
    **options
        As for :func:`gradient_check`.

    Returns
    -------
    LayersReport
        ``report.first_faulty`` is the index of the first failing layer (None if all pass);
        ``str(report)`` starts with e.g. ``layer 2 (Dense): W wrong, ...``.
    """
    opts = _options(options)
    layers = model if isinstance(model, (list, tuple)) else getattr(model, "layers", None)
    if layers is None or not hasattr(layers, "__iter__"):
        raise TypeError(f"model must have a 'layers' list (or be a list of layers); {type(model).__name__} has none")
    X = _float_array(X, "X")
    rng = opts.generator()
    act = X.copy()
    results: list[tuple[int, str, ModelReport]] = []
    for i, layer in enumerate(layers):
        _require(layer, f"model.layers[{i}]", ("forward", "backward"))
        lparams = _layer_dict(layer, ("params", "parameters"))
        guard = _Restorer([p for p in lparams.values() if isinstance(p, np.ndarray)])
        g_before = {k: v for k, v in _layer_dict(layer, ("grads", "gradients")).items() if isinstance(v, np.ndarray)}
        g_guard = _Restorer(list(g_before.values()))
        try:
            xin = act.copy()
            out = np.asarray(_layer_forward(layer, xin, opts.training))
            dy = rng.standard_normal(out.shape)
            xa = act.copy()
            _layer_forward(layer, xa, opts.training)
            dx = _layer_backward(layer, xa, dy)
            lgrads = _layer_dict(layer, ("grads", "gradients"))
            targets = []
            transposed: set[str] = set()
            eval_eps = eps_of(coarser_dtype(out.dtype if out.dtype.kind == "f" else None))
            for nm, p in lparams.items():
                if nm not in lgrads:
                    raise ValueError(f"model.layers[{i}].grads has no entry {nm!r} after backward")
                g, tr = _grad_array(np.asarray(lgrads[nm]).copy(), f"model.layers[{i}].grads[{nm!r}]",
                                    p.shape, f"model.layers[{i}].params[{nm!r}]")
                if tr:
                    transposed.add(nm)
                ea, adt = _grad_eps(lgrads[nm])
                targets.append(Target(nm, p, g, eval_eps, ea, analytic_dtype=adt))
            xe = act.astype(np.float64) if opts.promote else act.copy()
            if isinstance(dx, np.ndarray) and dx.shape == act.shape and np.all(np.isfinite(dx)):
                ea, adt = _grad_eps(dx)
                targets.append(Target("input", xe, dx.astype(np.float64), eval_eps, ea, analytic_dtype=adt))

            def loss(layer: Any = layer, xe: np.ndarray = xe, dy: np.ndarray = dy) -> float:
                return float(np.sum(np.asarray(_layer_forward(layer, xe, opts.training), dtype=np.float64) * dy))

            rep = _live_check(targets, loss, opts, title=f"layer {i} ({type(layer).__name__})", mutated=None,
                              batch_size=int(act.shape[0]) if act.ndim else None,
                              transposed=transposed, what="layer output")
        finally:
            guard.restore()
            g_guard.restore()
        results.append((i, type(layer).__name__, rep))
        act = np.asarray(_layer_forward(layer, act.copy(), opts.training))
    if opts.error_cutoff is not None:
        for _, _, rep in results:
            _apply_cutoff(rep, float(opts.error_cutoff))
    report = LayersReport(results)
    if opts.verbose:
        print(report)  # asked for with verbose=True
    if opts.raise_on_failure:
        report.raise_if_failed()
    return report
