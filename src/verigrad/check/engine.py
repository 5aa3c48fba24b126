"""Finite-difference engine: perturb live arrays, choose steps, estimate errors, judge entries.

Everything here works on *targets*: a live floating-point array that is perturbed in place (a parameter,
or the checker's private working copy of an input), the claimed (analytic) gradient of the objective
with respect to it, and the precisions that limit both sides. The objective is a zero-argument callable
that reads the live arrays and returns a scalar.

The per-entry judgement (see ``docs/checker.md``) is

1. a primary estimate ``n_i`` (central differences, complex step or Richardson extrapolation) and its
   error estimate ``err_i`` (rounding of the loss differences, ``C_ROUND * eps_eval * |L|_scale / h_i``,
   where ``|L|_scale`` is at least ``q_i / eps_eval``, ``q_i`` the quantum of the computed changes of
   ``L``: :func:`value_grid`, which sees sums that cancel);
2. the tolerance ``tol_i = err_i + C_ANALYTIC * eps_analytic * (|n_i| + ||n||_inf)`` (round-off of the
   analytic gradient in its own dtype);
3. entries with ``|a_i - n_i| > tol_i`` ("suspicious") are re-estimated at step ``2h``; the Richardson
   combination ``(4 n(h) - n(2h)) / 3`` becomes the estimate. A **gross** error (``|a - n|`` more than
   ``GROSS_FACTOR`` times every bound rounding and truncation could reach, a relative error above
   ``GROSS_REL``, one-sided derivatives that scale smoothly with the step, a change of ``L`` that is not
   a plateau, and far beyond the noise of ``L`` screened once per tensor) fails here: about 4
   evaluations per entry. The other suspicious entries are also estimated at ``h/2`` (the spread of the
   Richardson combinations measures truncation and noise, and the gross test is repeated with it;
   where ``L''`` jumps at ``x`` the central difference converges linearly and the linear
   extrapolation ``2 n(h/2) - n(h)`` is used instead); the noise of ``L`` is measured (ECnoise) on the
   few entries closest to passing, and on the others only where it could change the verdict;
4. entries that still disagree are retried at a much smaller step (a kink merely *near* ``x`` disappears)
   and, if they still disagree, their one-sided derivatives at two small steps are compared: a gap that
   persists as the step shrinks is a kink, and an analytic value inside the one-sided hull is a valid
   subgradient (status ``KINK``, passes). Outside the hull, where the caller can recompute the analytic
   gradient (``Context.regrad``), the entry may sit on a multi-kink (several units on their kinks at
   once: backprop returns an element of a conservative field, not necessarily a subgradient): it passes
   as ``KINK`` when the gradient code is verified at nearby points (:func:`verify_nearby`). Everything
   else fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

import numpy as np

#: safety factor on the a-priori rounding error of a difference of two loss values. The a-priori bound
#: ``eps * |L|_scale / h`` is pessimistic (rounding errors of the terms a perturbation does not touch
#: cancel exactly), so it is used with a small factor and backed by the measured spread between steps.
C_ROUND = 2.0
#: safety factor on the round-off of the analytic gradient in its own dtype
C_ANALYTIC = 16.0
#: weight of the measured spread between step sizes (truncation + noise) in the tolerance
C_SPREAD = 1.5
#: gross errors: ``|a - n|`` above this multiple of the tolerance (rounding + truncation spread + analytic
#: round-off) ...
GROSS_FACTOR = 1e3
#: ... and a relative error ``|a - n| / (|a| + |n|)`` above this ...
GROSS_REL = 1e-2
#: ... and smooth one-sided derivatives: this multiple of the departure of their gaps from linear scaling
#: in the step (a kink or noise between ``x - 2h`` and ``x + 2h``) still below ``|a - n|``
GROSS_SMOOTH = 100.0
#: the h-linear extrapolation replaces the h**2 one when its spread is this many times smaller
FIRST_ORDER_MARGIN = 2.0
#: ... and where the one-sided gaps scale linearly with the step to within this fraction of the gap
FIRST_ORDER_ROUGH = 0.1
#: rounding of ``2 n(h/2) - n(h)`` relative to that of ``(4 n(h/2) - n(h)) / 3`` (2.5 versus 5/3 times the
#: rounding of one central difference at h/2)
FIRST_ORDER_ROUNDING = 1.5
#: multi-kink test: nearby points checked, their relative distance from x, and the seed of the offsets
NEARBY_POINTS = 2
NEARBY_SHIFT = 1e-3
NEARBY_SEED = 20180706
#: multi-kink evidence: further nearby points where only the analytic gradient is recomputed (one
#: backward pass each), and the distance from both one-sided derivatives (fraction of their gap, of their
#: size) that counts as a value only several kinks meeting at x can produce
NEARBY_EVIDENCE = 6
EVIDENCE_GAP = 0.1
EVIDENCE_REL = 1e-2
#: number of step sizes of the one-sided (kink) analysis, each 4 times smaller
KINK_LEVELS = 3
#: at most this many failing entries per tensor get the kink analysis
KINK_MAX = 256
#: multiple of the measured noise (standard deviation of L / step) in the tolerance
C_NOISE = 4.0
#: points along an entry for the noise measurement, and entries measured per tensor at most
NOISE_POINTS = 6
NOISE_SAMPLE = 32
#: entries per tensor whose noise is always measured (those closest to passing) when noise could matter
NOISE_FEW = 4
#: the other entries are measured only when the noise they would need to pass is within this factor of
#: the largest measured (or a-priori, ``eps * |L|``) noise; beyond it they are judged with the largest
#: measured value
NOISE_MARGIN = 1e3
#: spacings of the noise measurement, as fractions of the step (small: no smooth part; large: no
#: quantisation plateau when L is rounded at the scale of a large intermediate)
NOISE_SPACINGS = (0.01, 2.0)
#: spacings up to this fraction of the step take the larger side's noise on kink-free entries
SMALL_SPACING = 0.05
#: an entry is kink-free (within 2h) when ``|gap(2h) - 2 gap(h)|`` is below this fraction of ``|a| + |n|``
KINK_FREE_REL = 0.01
#: larger spacings tried only while L stays bit-identical (its change is below its own resolution)
PLATEAU_SPACINGS = (20.0, 200.0)
#: spacings of the quick one-sided noise screen of gross errors: the second is incommensurate with the
#: steps h, 2h, h/2, so that a staircase of rounding that looks regular at those steps is seen
SCREEN_SPACINGS = (0.01, 1.2360679774997898)
#: attempts at a smaller step when the loss is not finite at x +- h
DOMAIN_RETRIES = 8
#: largest number of entries handed to a model's ``perturbed_losses`` in one call
FAST_CHUNK = 4096

#: status codes of an entry
OK, PRECISION, KINK, FAIL, NOT_EVALUATED = 0, 1, 2, 3, -1

EPS64 = float(np.finfo(np.float64).eps)


def eps_of(dtype: np.dtype) -> float:
    """Machine epsilon of a floating (or complex) dtype; float64's for anything else."""
    dt = np.dtype(dtype)
    if dt.kind in "fc":
        return float(np.finfo(dt).eps)
    return EPS64


def coarser_dtype(*dtypes: Optional[np.dtype]) -> np.dtype:
    """The floating dtype with the largest machine epsilon among ``dtypes`` (float64 if none)."""
    best = np.dtype(np.float64)
    for dt in dtypes:
        if dt is None:
            continue
        dt = np.dtype(dt)
        if dt.kind == "c":
            dt = np.dtype(np.finfo(dt).dtype)
        if dt.kind == "f" and eps_of(dt) > eps_of(best):
            best = dt
    return best


class NonScalarObjective(TypeError):
    """The objective did not return a scalar."""


def to_scalar(value: object, what: str) -> tuple[complex | float, Optional[np.dtype]]:
    """Convert an objective's return value to a Python number; also return its NumPy dtype if any."""
    dtype = getattr(value, "dtype", None)
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - any object numpy cannot read
        raise NonScalarObjective(f"{what} must return a scalar; got {type(value).__name__}") from exc
    if arr.size != 1:
        raise NonScalarObjective(
            f"{what} must return a scalar; got an array of shape {arr.shape}"
        )
    if arr.dtype.kind not in "fcbiu":
        raise NonScalarObjective(f"{what} must return a number; got {type(value).__name__}")
    item = arr.reshape(()).item()
    if arr.dtype.kind == "c":
        return complex(item), (np.dtype(dtype) if dtype is not None else None)
    return float(item), (np.dtype(dtype) if dtype is not None and np.dtype(dtype).kind == "f" else None)


class Objective:
    """A counted zero-argument scalar objective ``L()`` reading live arrays.

    Parameters
    ----------
    fn : callable () -> scalar
        Evaluates the objective at the current contents of the live arrays.
    what : str
        How to name the objective in error messages.
    """

    def __init__(self, fn: Callable[[], object], what: str = "loss") -> None:
        self.fn = fn
        self.what = what
        self.n_evals = 0
        self.value_dtype: Optional[np.dtype] = None

    def __call__(self) -> float:
        self.n_evals += 1
        value, dtype = to_scalar(self.fn(), self.what)
        if dtype is not None:
            self.value_dtype = dtype
        return float(value.real) if isinstance(value, complex) else value


@dataclass
class Target:
    """One array whose gradient is checked.

    Attributes
    ----------
    name : str
        Name used in reports.
    live : ndarray
        The array perturbed in place (restored by the caller's safety net).
    analytic : ndarray of float64, same shape as ``live``
        The claimed gradient.
    eval_eps : float
        Machine epsilon of the loss evaluation.
    analytic_eps : float
        Machine epsilon of the analytic gradient's computation.
    fast : callable (flat_index, steps) -> ndarray of shape (n, k), optional
        Losses under single-entry perturbations ``old + steps[i, j]`` (a model's fast path).
    complex_derivative : callable (flat_index, h) -> ndarray of shape (n,), optional
        Complex-step derivatives ``Im L(x + i h e_i) / h``.
    analytic_dtype : str
        Name of the analytic gradient's dtype (for reports).
    """

    name: str
    live: np.ndarray
    analytic: np.ndarray
    eval_eps: float
    analytic_eps: float
    fast: Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]] = None
    complex_derivative: Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]] = None
    analytic_dtype: str = "float64"


@dataclass
class Context:
    """What the judgement of one check needs besides the targets."""

    objective: Objective
    L0: float
    lscale: float
    method: str = "central"
    eps: Optional[float] = None
    atol: Optional[float] = None
    rtol: Optional[float] = None
    #: gradient magnitude shared by the tensors of one check (the largest |analytic| over them): the
    #: round-off of a backward pass comes from its largest upstream quantities, not from the tensor alone
    #: (e.g. ``1 - tanh(z)**2`` of a saturated unit in float32 loses digits relative to ``dL/dh``)
    gscale: float = 0.0
    #: recompute the analytic gradients (name -> array) at the current contents of the live arrays, when
    #: the caller can (a callable ``grad``, a model's backward): enables the multi-kink test
    #: (:func:`verify_nearby`)
    regrad: Optional[Callable[[], Optional[Mapping[str, np.ndarray]]]] = None
    #: every target of the check (all of them are moved to reach a nearby point); default: the judged one
    targets: Optional[list["Target"]] = None

    @property
    def explicit(self) -> bool:
        return self.atol is not None or self.rtol is not None


@dataclass
class Sided:
    """Loss values ``L(x + h+ e_i)``, ``L(x - h- e_i)`` of a central difference, and its effective steps.

    Attributes
    ----------
    values : ndarray of shape (n, 2)
        Column 0 at ``x + h``, column 1 at ``x - h``.
    effective : ndarray of shape (n, 2)
        The steps actually taken (column 0 positive, column 1 negative).
    """

    values: np.ndarray
    effective: np.ndarray

    def gap(self, L0: float) -> np.ndarray:
        """``|dp - dm|``: the gap between the one-sided derivatives (forward and backward) at ``x``.

        ``dp = (L(x+h) - L0) / h+`` and ``dm = (L0 - L(x-h)) / h-``. For a smooth ``L`` the gap is
        ``~ h |L''|`` plus rounding; a kink (or a large noise) between ``x - h`` and ``x + h`` makes it
        of the order of the jump in slope.

        Returns
        -------
        ndarray of shape (n,)
        """
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            dp = (self.values[:, 0] - L0) / self.effective[:, 0]
            dm = (L0 - self.values[:, 1]) / (-self.effective[:, 1])
            return np.abs(dp - dm)

    def resolved(self) -> np.ndarray:
        """``L(x+h) != L(x-h)``: the step changes ``L`` (a plateau means ``L`` is rounded too coarsely
        to see this entry, whatever its derivative).

        Returns
        -------
        ndarray of bool, shape (n,)
        """
        return self.values[:, 0] != self.values[:, 1]

    def take(self, sel: np.ndarray) -> Sided:
        """The rows ``sel``."""
        return Sided(self.values[sel], self.effective[sel])


@dataclass
class EntryResult:
    """Judgement of a set of entries (flat indices) of one target."""

    index: np.ndarray
    numerical: np.ndarray
    tolerance: np.ndarray
    status: np.ndarray
    error_estimate: np.ndarray
    notes: list[str] = field(default_factory=list)


def base_step(eval_eps: float, method: str) -> float:
    """Relative step: ``eps**(1/3)`` for central differences, ``eps**(1/5)`` for Richardson."""
    if method == "richardson":
        return eval_eps ** 0.2
    return eval_eps ** (1.0 / 3.0)


def perturbed(target: Target, obj: Objective, idx: np.ndarray, steps: np.ndarray,
              use_fast: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Losses with entry ``idx[i]`` set to ``old + steps[i, j]``, and the effective steps.

    Parameters
    ----------
    target : Target
    obj : Objective
    idx : ndarray of int, shape (n,)
        Flat indices into ``target.live``.
    steps : ndarray of float, shape (n, k)
        Requested steps; the value written is ``old + step`` rounded to the array's dtype.

    Returns
    -------
    values : ndarray of shape (n, k)
        ``L`` at each perturbed point.
    effective : ndarray of shape (n, k)
        The steps actually taken, ``(old + step) - old`` in the array's dtype (exact in float64).
    """
    live = target.live
    dt = live.dtype
    old = np.asarray(live.flat[idx], dtype=np.float64)
    new = (old[:, None] + steps).astype(dt)
    eff = new.astype(np.float64) - old[:, None]
    values = np.empty(steps.shape, dtype=np.float64)
    if target.fast is not None and use_fast:
        for start in range(0, len(idx), FAST_CHUNK):
            sl = slice(start, start + FAST_CHUNK)
            out = np.asarray(target.fast(idx[sl], eff[sl]), dtype=np.float64)
            if out.shape != eff[sl].shape:
                raise ValueError(
                    f"perturbed_losses returned shape {out.shape}; expected {eff[sl].shape}"
                )
            values[sl] = out
            obj.n_evals += out.size
        return values, eff
    old_native = live.flat[idx].copy()
    with np.errstate(all="ignore"):  # perturbed points may leave fn's domain: handled by the caller
        for i, flat_i in enumerate(idx):
            try:
                for j in range(steps.shape[1]):
                    live.flat[flat_i] = new[i, j]
                    values[i, j] = obj()
            finally:
                live.flat[flat_i] = old_native[i]
    return values, eff


def central(target: Target, obj: Objective, idx: np.ndarray, h: np.ndarray,
            use_fast: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Central differences ``(L(x+h) - L(x-h)) / (h+ + h-)`` with effective steps.

    Returns
    -------
    d : ndarray of shape (n,)
        The estimates.
    half_width : ndarray of shape (n,)
        ``(h+ + h-) / 2``, the effective step.
    lmax : ndarray of shape (n,)
        ``max(|L(x+h)|, |L(x-h)|)``: the magnitude that sets the rounding error of the difference.
    """
    d, half_width, lmax, _ = central_sided(target, obj, idx, h, use_fast)
    return d, half_width, lmax


def central_sided(target: Target, obj: Objective, idx: np.ndarray, h: np.ndarray,
                  use_fast: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, Sided]:
    """:func:`central`, also returning the loss values and effective steps it used (:class:`Sided`).

    The values let the caller form the one-sided derivatives ``(L(x+h) - L(x)) / h+`` and
    ``(L(x) - L(x-h)) / h-`` without evaluating ``L`` again.
    """
    steps = np.stack([h, -h], axis=1)
    vals, eff = perturbed(target, obj, idx, steps, use_fast)
    width = eff[:, 0] - eff[:, 1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = (vals[:, 0] - vals[:, 1]) / width
    lmax = np.max(np.abs(vals), axis=1)
    # the loss is not finite at x +- h (e.g. log(p - h) for p near 0): shrink the step towards |x_i|
    # and then by factors of 10, a few times, so that it stays inside the function's domain
    bad = np.flatnonzero(~np.isfinite(d))
    x = np.abs(np.asarray(target.live.flat[idx], dtype=np.float64))
    hb = h.copy()
    for attempt in range(DOMAIN_RETRIES):
        if not bad.size:
            break
        rel = base_step(target.eval_eps, "central") * x[bad]
        hb[bad] = np.where((attempt == 0) & (rel > 0) & (rel < hb[bad]), rel, hb[bad] / 10)
        hb[bad] = np.maximum(hb[bad], 4 * np.spacing(x[bad].astype(target.live.dtype)).astype(np.float64))
        v2, e2 = perturbed(target, obj, idx[bad], np.stack([hb[bad], -hb[bad]], axis=1), use_fast)
        w2 = e2[:, 0] - e2[:, 1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            d[bad] = (v2[:, 0] - v2[:, 1]) / w2
        width[bad] = w2
        lmax[bad] = np.max(np.abs(v2), axis=1)
        vals[bad] = v2
        eff[bad] = e2
        bad = bad[~np.isfinite(d[bad])]
    lmax = np.where(np.isfinite(lmax), lmax, 0.0)
    return d, width / 2.0, lmax, Sided(vals, eff)


def lowest_bit(d: np.ndarray) -> np.ndarray:
    """Value of the lowest set bit of each float64 ``d`` (0 for 0, NaN for non-finite values).

    A number is a multiple of its lowest set bit; a set of numbers are all multiples of the smallest
    lowest set bit among them.
    """
    d = np.abs(np.asarray(d, dtype=np.float64))
    out = np.full(d.shape, np.nan)
    ok = np.isfinite(d)
    m, e = np.frexp(np.where(ok, d, 0.0))
    mant = (m * 2.0 ** 53).astype(np.int64)  # exact: a float64 mantissa has 53 bits
    low = mant & -mant
    out[ok] = np.ldexp(low[ok].astype(np.float64), (e[ok] - 53).astype(np.int32))
    return out


def value_grid(L0: float, values: np.ndarray) -> np.ndarray:
    """The quantum of the computed changes of ``L``, per row of ``values`` (0 where nothing changed).

    The differences ``L(x + s) - L0`` and between the row's values (exact in floating point when the
    values are close: Sterbenz) are all multiples of their smallest lowest set bit ``q``. For a loss
    computed to float64 precision ``q`` is about ``ulp(L) <= eps |L|``. When ``L`` is a sum whose terms
    cancel (``sum(out * dy)`` with a random ``dy``: ``|L|`` much smaller than the partial sums), the
    values are rounded at the magnitude of the partial sums and are multiples of *their* ulp: ``q`` is
    the resolution at which ``L`` is actually computed, and ``q / eps`` the magnitude that sets the
    rounding error of a difference of two values (the a-priori ``|L|`` would be too optimistic).

    Parameters
    ----------
    L0 : float
        ``L`` at the base point.
    values : ndarray of shape (n, k)
        Values of ``L`` at perturbed points, one row per entry.

    Returns
    -------
    ndarray of shape (n,)
    """
    v = np.asarray(values, dtype=np.float64)
    cols = [v - L0]
    if v.shape[1] >= 2:
        cols.append(v[:, :1] - v[:, 1:])
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.concatenate(cols, axis=1)
    bits = lowest_bit(d)
    bits = np.where(np.isfinite(bits) & (bits > 0), bits, np.inf)
    q = np.min(bits, axis=1) if bits.shape[1] else np.full(len(v), np.inf)
    return np.where(np.isfinite(q), q, 0.0)


def _grid_or_tensor(q: np.ndarray) -> np.ndarray:
    """Entries whose steps did not change ``L`` (no difference to read a quantum from) get the finest
    quantum seen over the tensor: the same computation rounds them (e.g. a saturated softmax whose
    cross-entropy is computed as ``logsumexp(o) - o_y`` at the resolution of ``o``)."""
    seen = q[q > 0]
    return np.where(q > 0, q, float(seen.min()) if seen.size else 0.0)


def _rounding(eps: float, lscale: float, half_width: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", over="ignore"):
        return C_ROUND * eps * lscale / np.maximum(half_width, np.finfo(np.float64).tiny)


def _entry_ok(diff: np.ndarray, a: np.ndarray, n: np.ndarray, tol: np.ndarray, ctx: Context) -> np.ndarray:
    if not ctx.explicit:
        return diff <= tol
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / (np.abs(a) + np.abs(n)))
    ok = np.zeros(diff.shape, dtype=bool)
    if ctx.atol is not None:
        ok |= diff <= ctx.atol
    if ctx.rtol is not None:
        ok |= rel <= ctx.rtol
    return ok


def steps_for(target: Target, idx: np.ndarray, ctx: Context) -> np.ndarray:
    """Step per entry: ``eps`` if given, else ``base * max(|x_i|, 1)``, at least 4 ulps of ``x_i``."""
    x = np.asarray(target.live.flat[idx], dtype=np.float64)
    if ctx.eps is not None:
        h = np.full(x.shape, float(ctx.eps))
    else:
        h = base_step(target.eval_eps, ctx.method) * np.maximum(np.abs(x), 1.0)
    ulp = np.spacing(np.abs(target.live.flat[idx])).astype(np.float64)
    return np.maximum(h, 4.0 * ulp)


def noise_level(target: Target, obj: Objective, idx: np.ndarray, h: np.ndarray,
                use_fast: bool = True, spacings: tuple[float, ...] = NOISE_SPACINGS,
                signs: tuple[float, ...] = (1.0, -1.0), kink_free: Optional[np.ndarray] = None) -> np.ndarray:
    """Measured noise (standard deviation) of ``L`` along each entry, ECnoise style (More & Wild 2011).

    ``L`` is evaluated at ``x + j * delta * e_i`` for ``j = 0..NOISE_POINTS-1`` on each side of ``x``
    separately, with ``delta = h / 100`` (the smooth part of the higher differences is negligible) and
    ``delta = 2 h`` (sees the quantisation of ``L`` when it is rounded at the scale of a much larger
    intermediate, where small spacings only see a plateau). Per side the noise is the median over
    ``k = 2..NOISE_POINTS-1`` of ``sigma_k = sqrt((k!)**2 / (2k)! * mean((Delta^k L)**2))``; the smaller
    side is kept (a kink or a domain edge near ``x`` spoils one side at most), the larger spacing
    wins. While ``L`` stays bit-identical (a plateau: its change is below the resolution at which it
    is rounded), spacings ``20 h`` and ``200 h`` are tried so that its quantum becomes visible. At most
    ``NOISE_SAMPLE`` entries are measured; the others get the largest measured value. ``spacings`` and
    ``signs`` (the sides) select a cheaper measurement (one side: 12 evaluations per entry instead of
    24, used to screen gross errors, where an overestimate only costs more analysis).

    ``kink_free`` (bool per entry) marks entries known to have no kink within ``2 h`` of ``x`` (their
    one-sided derivatives scale smoothly with the step): at the spacings up to ``SMALL_SPACING h`` their
    noise is the *larger* of the two sides. The central difference pairs a value from each side, and a
    staircase of rounding can look perfectly regular along one side and not along the other (seen on a
    saturated softmax cross-entropy: second differences ``[0, 0, 0, 0]`` on one side, ``[0, 0, q, -q]``
    on the other), so the smaller side would hide the noise the estimate actually carries.

    Returns
    -------
    ndarray of shape (len(idx),)
    """
    m = len(idx)
    if m == 0:
        return np.zeros(0)
    pick = np.arange(m) if m <= NOISE_SAMPLE else np.linspace(0, m - 1, NOISE_SAMPLE).astype(np.intp)
    ramp = np.arange(NOISE_POINTS)[None, :]
    sig = np.zeros(len(pick))
    flat = np.ones(len(pick), dtype=bool)  # L bit-identical at every point so far (a plateau)
    for spacing in tuple(spacings) + PLATEAU_SPACINGS:
        sub = np.arange(len(pick)) if spacing in spacings else np.flatnonzero(flat)
        if not sub.size:
            break
        delta = h[pick[sub]] * spacing
        sides = []
        for sign in signs:  # one side at a time: a kink at x does not enter either estimate
            vals, _ = perturbed(target, obj, idx[pick[sub]], sign * delta[:, None] * ramp, use_fast)
            flat[sub] &= np.all(vals == vals[:, :1], axis=1)
            with np.errstate(invalid="ignore", over="ignore"):
                ests = []
                d = vals.copy()
                for k in range(1, NOISE_POINTS):
                    d = np.diff(d, axis=1)
                    if k >= 2:
                        gamma = math.factorial(k) ** 2 / math.factorial(2 * k)
                        ests.append(np.sqrt(gamma * np.mean(d * d, axis=1)))
                st = np.median(np.stack(ests, axis=1), axis=1)
            sides.append(np.where(np.isfinite(st), st, np.inf))
        stacked = np.stack(sides)
        side = np.min(stacked, axis=0)  # a kink or domain edge near x spoils one side at most
        if kink_free is not None and spacing <= SMALL_SPACING:
            free = np.asarray(kink_free, dtype=bool)[pick[sub]]
            larger = np.max(np.where(np.isfinite(stacked), stacked, 0.0), axis=0)
            side = np.where(free, larger, side)
        sig[sub] = np.maximum(sig[sub], np.where(np.isfinite(side), side, 0.0))
    sig = np.where(np.isfinite(sig), sig, 0.0)
    if m <= NOISE_SAMPLE:
        return sig
    return np.full(m, float(sig.max()) if sig.size else 0.0)


def _gross(a: np.ndarray, n: np.ndarray, diff: np.ndarray, tol: np.ndarray, rough: np.ndarray) -> np.ndarray:
    """Entries whose error is gross: no rounding, truncation or kink can explain it.

    (The noise of ``L`` is checked separately, on a sample: :meth:`_NoiseSample.beyond`.)

    Parameters
    ----------
    a, n, diff : ndarray of shape (m,)
        Analytic value, numerical estimate (after Richardson), ``|a - n|``.
    tol : ndarray of shape (m,)
        Tolerance without measured noise: rounding + ``C_SPREAD`` * spread between the step sizes
        + round-off of the analytic gradient.
    rough : ndarray of shape (m,)
        How far the one-sided derivatives are from smooth: for a smooth ``L`` the gap ``|dp - dm|``
        between the forward and the backward derivative is ``~ step * |L''|`` and doubles with the
        step, so ``|gap(2h) - 2 gap(h)|`` (and ``|gap(h) - 2 gap(h/2)|``) stay at rounding level; a kink
        between the points (whose gap does not shrink with the step) or noise (which grows as the step
        shrinks) makes them of the order of the jump in slope.

    Returns
    -------
    ndarray of bool, shape (m,)
        ``diff > GROSS_FACTOR * tol``, ``diff / (|a| + |n|) > GROSS_REL`` and
        ``GROSS_SMOOTH * rough < diff``: a kink could then move the estimate by a small fraction of
        ``diff`` at most, and the analytic value is far outside any one-sided hull.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rel = diff / (np.abs(a) + np.abs(n))
        return (np.isfinite(diff) & np.isfinite(rough) & (diff > GROSS_FACTOR * tol) & (rel > GROSS_REL)
                & (GROSS_SMOOTH * rough < diff))


class _NoiseSample:
    """Measured noise of ``L`` along the suspicious entries of one tensor, measured sparingly.

    Parameters
    ----------
    target, obj, use_fast
        As for :func:`noise_level`.
    idx : ndarray of int, shape (m,)
        Flat indices of the suspicious entries.
    h, width : ndarray of shape (m,)
        Requested step and effective half-width of the central difference at ``h``.
    d_h : ndarray of shape (m,)
        Central differences at ``h`` (how well each entry's change of ``L`` is resolved).
    lscale : ndarray of shape (m,)
        Magnitude of ``L`` around each entry.
    """

    def __init__(self, target: Target, obj: Objective, idx: np.ndarray, h: np.ndarray, width: np.ndarray,
                 d_h: np.ndarray, lscale: np.ndarray, use_fast: bool) -> None:
        self.target, self.obj, self.idx, self.h, self.use_fast = target, obj, idx, h, use_fast
        self.width = np.maximum(width, np.finfo(np.float64).tiny)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            self.resolution = np.abs(d_h) * self.width / np.maximum(lscale, np.finfo(np.float64).tiny)
        self.sigma = np.full(len(idx), np.nan)  # measured values (NaN: not measured)
        self.screen: Optional[float] = None  # the quick one-sided measurement used to screen gross errors
        #: entries without a kink within 2 h (set by the caller once the one-sided gaps are known)
        self.kink_free: Optional[np.ndarray] = None

    def measure(self, pos: np.ndarray) -> np.ndarray:
        """Noise of the entries ``pos`` (positions into ``idx``), measured once each."""
        pos = np.asarray(pos, dtype=np.intp)
        new = pos[np.isnan(self.sigma[pos])]
        if new.size:
            free = None if self.kink_free is None else self.kink_free[new]
            self.sigma[new] = noise_level(self.target, self.obj, self.idx[new], self.h[new], self.use_fast,
                                          kink_free=free)
        return self.sigma[pos]

    def largest(self) -> float:
        """Largest measured noise (0 if none)."""
        done = self.sigma[~np.isnan(self.sigma)]
        return float(done.max()) if done.size else 0.0

    def beyond(self, cand: np.ndarray, diff: np.ndarray, pos: Optional[np.ndarray] = None) -> np.ndarray:
        """Gross candidates whose error is also far beyond the noise of ``L``.

        The noise is measured once per tensor, on the candidate whose change of ``L`` over the step is
        the least resolved (the first to suffer when ``L`` is rounded at the scale of a much larger
        intermediate, where the a-priori rounding bound is too optimistic, and the values of ``L`` form
        a staircase), with a quick one-sided ramp at spacings ``SCREEN_SPACINGS`` (and larger while ``L``
        stays bit-identical); the full measurements made so far count too. The error must exceed
        ``GROSS_FACTOR`` times the noise term of the tolerance, ``C_NOISE * sigma / h``.

        Parameters
        ----------
        cand : ndarray of bool, shape (k,)
        diff : ndarray of shape (k,)
            ``|a - n|``.
        pos : ndarray of int, shape (k,), optional
            Positions of these entries into ``idx`` (default: all, in order).
        """
        pos = np.arange(len(self.idx)) if pos is None else pos
        if not cand.any():
            return cand
        if self.screen is None:
            c = pos[np.flatnonzero(cand)]
            j = c[np.argmin(self.resolution[c])]
            self.screen = float(noise_level(self.target, self.obj, self.idx[j:j + 1], self.h[j:j + 1],
                                            self.use_fast, spacings=SCREEN_SPACINGS, signs=(1.0,))[0])
        sig = max(self.screen, self.largest())
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return cand & (diff > GROSS_FACTOR * C_NOISE * sig / self.width[pos])

    def sampled(self, pos: np.ndarray, sigma_need: np.ndarray, cand: np.ndarray, floor: np.ndarray,
                notes: list[str]) -> np.ndarray:
        """Noise for the entries ``cand`` (positions into ``pos``), measured where it could matter.

        The ``NOISE_FEW`` entries that need the least noise to pass (``sigma_need``) are measured; of the
        others, those whose needed noise is within ``NOISE_MARGIN`` of the largest measured value (or of
        their a-priori noise ``floor = eps * |L|``) are measured too; the rest get the largest measured
        value (far too small to change their verdict).

        Returns
        -------
        ndarray of shape (len(cand),)
        """
        order = cand[np.argsort(sigma_need[cand], kind="stable")]
        first = order[:NOISE_FEW]
        self.measure(pos[first])
        rest = order[NOISE_FEW:]
        if rest.size:
            ref = self.largest()
            with np.errstate(invalid="ignore", over="ignore"):
                plausible = sigma_need[rest] <= NOISE_MARGIN * np.maximum(ref, floor[rest])
            more = rest[plausible]
            if more.size:
                self.measure(pos[more][:NOISE_SAMPLE])
                if more.size > NOISE_SAMPLE:  # too many: the others get the largest measured value
                    self.sigma[pos[more[NOISE_SAMPLE:]]] = self.largest()
            skipped = rest[~plausible]
            if skipped.size:
                self.sigma[pos[skipped]] = self.largest()
                notes.append(f"noise of L measured on {len(cand) - skipped.size} of {len(cand)} failing "
                             f"entries; {skipped.size} fail by more than {NOISE_MARGIN:g} times that noise")
        # an entry along which L stayed bit-identical at every spacing (up to 200 h) has no measurable
        # noise of its own: its effect on L is below L's resolution there, which the noise measured along
        # the tensor's other entries (the same computation) bounds from below
        out = self.sigma[pos[cand]]
        return np.where(out == 0, self.largest(), out)


def verify_nearby(target: Target, ctx: Context, idx: np.ndarray,
                  hull: Optional[tuple[np.ndarray, np.ndarray, np.ndarray]] = None) -> tuple[np.ndarray, str]:
    """Check the entries ``idx`` of ``target`` at ``NEARBY_POINTS`` random points near ``x``.

    Every live array of the check (``ctx.targets``) is moved by a random relative offset of size
    ``NEARBY_SHIFT`` (which leaves a point where several units sit on their kinks at once: in general
    position no two kinks coincide), ``ctx.regrad()`` recomputes the analytic gradients there, and the
    entries are judged there as usual (without this test, so it does not recurse). Every live array is
    restored bit for bit afterwards, also when the objective or ``regrad`` raises.

    With ``hull`` (the one-sided derivatives ``lo``, ``hi`` and their tolerance, each of shape
    ``(len(idx),)``), an entry is verified only with evidence that several kinks meet at ``x``: at one
    of the nearby points (or of ``NEARBY_EVIDENCE`` more, where only the analytic gradient is
    recomputed) its analytic value is clearly away from both ``lo`` and ``hi``. Near a single kink the
    gradient is one of the two one-sided derivatives (up to the smooth change over the offset), so a
    value outside the hull exactly at a single kink (``relu'(0) = 2``) still fails; near a multi-kink
    the units switch on and off independently and give other partial sums of their slopes.

    Returns
    -------
    verified : ndarray of bool, shape (len(idx),)
        True where the entry passed at every nearby point (and, with ``hull``, showed a multi-kink).
    why : str
        Why nothing could be verified ('' when the test ran and every entry passed at the nearby points).
    """
    targets = list(ctx.targets) if ctx.targets else [target]
    if not any(t is target for t in targets):
        targets.append(target)
    verified = np.ones(len(idx), dtype=bool)
    evidence = np.zeros(len(idx), dtype=bool) if hull is not None else np.ones(len(idx), dtype=bool)
    if hull is not None:
        lo, hi, t_hull = (np.asarray(v, dtype=np.float64) for v in hull)
        margin = EVIDENCE_GAP * (hi - lo) + EVIDENCE_REL * np.maximum(np.abs(lo), np.abs(hi)) + t_hull
    saved = [t.live.copy() for t in targets]
    rng = np.random.default_rng(NEARBY_SEED)
    obj = ctx.objective
    try:
        for point in range(NEARBY_POINTS + (NEARBY_EVIDENCE if hull is not None else 0)):
            judge = point < NEARBY_POINTS
            if not judge and (evidence | ~verified).all():
                break
            for t, keep in zip(targets, saved):
                base = keep.astype(np.float64)
                rms = float(np.sqrt(np.mean(base * base))) if base.size else 0.0
                shift = NEARBY_SHIFT * max(rms, 1.0) * rng.uniform(-1.0, 1.0, size=base.shape)
                np.copyto(t.live, base + shift, casting="unsafe")
            try:
                assert ctx.regrad is not None
                fresh = ctx.regrad()
                g = None if fresh is None else fresh.get(target.name)
                g = None if g is None else np.asarray(g, dtype=np.float64)
            except Exception as exc:  # noqa: BLE001 - user code: the test is then not available
                return np.zeros(len(idx), dtype=bool), f"the gradient could not be recomputed nearby ({exc!r})"
            if g is None or g.shape != target.live.shape:
                return np.zeros(len(idx), dtype=bool), "no analytic gradient of this array at nearby points"
            if hull is not None:
                with np.errstate(invalid="ignore"):
                    v = g.flat[idx]
                    evidence |= (np.abs(v - lo) > margin) & (np.abs(v - hi) > margin)
            if not judge:
                continue
            L0 = obj()
            if not math.isfinite(L0):
                return np.zeros(len(idx), dtype=bool), "the loss is not finite at nearby points"
            sub_ctx = Context(obj, L0, max(ctx.lscale, abs(L0)), "central", ctx.eps, ctx.atol, ctx.rtol,
                              gscale=max(ctx.gscale, float(np.max(np.abs(g))) if g.size else 0.0))
            sub = Target(target.name, target.live, g, target.eval_eps, target.analytic_eps,
                         analytic_dtype=target.analytic_dtype)
            res = judge_entries(sub, sub_ctx, idx, use_fast=False)
            verified &= res.status != FAIL
    finally:
        for t, keep in zip(targets, saved):
            np.copyto(t.live, keep)
    why = ""
    if (verified & ~evidence).any():
        why = (f"{int((verified & ~evidence).sum())} of them right at nearby points, but nothing there shows several "
               "kinks meeting at x (near a single kink the gradient takes one of the one-sided values): the "
               "value exactly at the kink is wrong")
    return verified & evidence, why


def judge_entries(target: Target, ctx: Context, idx: np.ndarray, use_fast: bool = True) -> EntryResult:
    """Estimate and judge the entries ``idx`` of ``target`` (steps 1-4 of the module docstring)."""
    obj = ctx.objective
    idx = np.asarray(idx, dtype=np.intp)
    a = np.asarray(target.analytic.flat[idx], dtype=np.float64)
    h = steps_for(target, idx, ctx)
    eps_e = target.eval_eps
    notes: list[str] = []

    # 1. primary estimate and its error estimate
    method = ctx.method
    central_h: Optional[np.ndarray] = None  # central differences at h, their half-widths and values
    width_h: Optional[np.ndarray] = None
    sided_h: Optional[Sided] = None
    half_h: Optional[tuple[np.ndarray, np.ndarray, np.ndarray, Sided]] = None  # the same at h/2
    ls = np.full(idx.shape, float(ctx.lscale))
    if method == "complex" and target.complex_derivative is not None:
        hc = np.full(idx.shape, 1e-20) * np.maximum(np.abs(np.asarray(target.live.flat[idx], float)), 1.0)
        n = np.asarray(target.complex_derivative(idx, hc), dtype=np.float64)
        gmax = float(np.max(np.abs(n))) if n.size else 0.0
        err = C_ROUND * EPS64 * (np.abs(n) + gmax)
        err_ref = err
    elif method == "richardson":
        d1, w1, lm, sided_h = central_sided(target, obj, idx, h, use_fast)
        d2, w2, lm2, sided_h2 = central_sided(target, obj, idx, h / 2, use_fast)
        half_h = (d2, w2, lm2, sided_h2)
        width_h = w1
        d3, w3, _ = central(target, obj, idx, h / 4, use_fast)
        ls = np.maximum(ctx.lscale, lm)
        # the resolution at which L is actually computed (cancelling sums: see value_grid)
        ls = np.maximum(ls, _grid_or_tensor(value_grid(ctx.L0, np.concatenate([sided_h.values, sided_h2.values],
                                                                           axis=1))) / eps_e)
        r1 = (4 * d2 - d1) / 3
        r2 = (4 * d3 - d2) / 3
        n = (16 * r2 - r1) / 15
        err = np.abs(n - r2) + 3 * _rounding(eps_e, ls, w3)
        err_ref = np.abs(n - r2) + 3 * _rounding(EPS64, ls, w3)
        central_h = d1
    else:
        n, w, lm, sided_h = central_sided(target, obj, idx, h, use_fast)
        central_h, width_h = n.copy(), w
        ls = np.maximum(ctx.lscale, lm)
        # the resolution at which L is actually computed (cancelling sums: see value_grid)
        ls = np.maximum(ls, _grid_or_tensor(value_grid(ctx.L0, sided_h.values)) / eps_e)
        err = _rounding(eps_e, ls, w)
        err_ref = _rounding(EPS64, ls, w)

    finite = np.isfinite(n)
    gmax = max(float(np.max(np.abs(n[finite]))) if finite.any() else 0.0, ctx.gscale)
    tol = err + C_ANALYTIC * target.analytic_eps * (np.abs(n) + gmax)
    tol_ref = err_ref + C_ANALYTIC * EPS64 * (np.abs(n) + gmax)
    estimate = err.copy()
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - n)
    ok = _entry_ok(diff, a, n, tol, ctx) & finite

    # 2-3. suspicious entries: central differences at 2h as well (then at h/2 where needed). Richardson
    # combinations remove the h**2 truncation term; the first becomes the estimate and the spread between
    # step sizes (higher order truncation + noise) enters the tolerance. A gross error (see _gross) is
    # settled there; the other entries get the step h/2 and the measured noise of L (a few entries per
    # tensor, more only where it could change the verdict), then the kink analysis (4).
    sus = np.flatnonzero(~ok & finite)
    gross = np.zeros(idx.shape, dtype=bool)
    if sus.size and not ctx.explicit:
        hs = h[sus]
        if central_h is not None and sided_h is not None and width_h is not None:
            ch, wh, s1 = central_h[sus], width_h[sus], sided_h.take(sus)
        else:
            ch, wh, lm, s1 = central_sided(target, obj, idx[sus], hs, use_fast)
            ls[sus] = np.maximum(ls[sus], lm)
        c2, _, lm2, s2 = central_sided(target, obj, idx[sus], 2 * hs, use_fast)
        ls[sus] = np.maximum(ls[sus], lm2)
        with np.errstate(invalid="ignore", over="ignore"):
            r_h = (4 * ch - c2) / 3
        use = np.isfinite(r_h)
        if method != "complex":
            n[sus[use]] = r_h[use]
        tol_first = tol[sus].copy()
        atol_s = C_ANALYTIC * target.analytic_eps * (np.abs(n[sus]) + gmax)
        with np.errstate(invalid="ignore"):
            diff = np.abs(a - n)
        d_s = diff[sus]
        noise = _NoiseSample(target, obj, idx[sus], hs, wh, ch, ls[sus], use_fast)

        # stage A (steps h and 2h): the spread is the raw difference of the two estimates (their h**2
        # term, which the estimate r_h no longer has: a strict bound)
        with np.errstate(invalid="ignore", over="ignore"):
            spread_a = np.abs(c2 - ch)
        spread_a = np.where(np.isfinite(spread_a), spread_a, np.inf)
        base_a = 0.5 * _rounding(eps_e, ls[sus], 2 * wh)
        tol_a = base_a + C_SPREAD * spread_a + atol_s
        tol_a = np.maximum(tol_first, np.where(np.isfinite(tol_a), tol_a, 0.0))
        g1, g2 = s1.gap(ctx.L0), s2.gap(ctx.L0)
        with np.errstate(invalid="ignore", over="ignore"):
            rough_a = np.abs(g2 - 2 * g1)
            # no kink within 2h: the one-sided gaps scale with the step to within a small fraction of the
            # derivative (a kink there makes |gap(2h) - 2 gap(h)| of the order of the jump in slope)
            noise.kink_free = rough_a <= KINK_FREE_REL * (np.abs(a[sus]) + np.abs(n[sus]))
        cand = np.isfinite(spread_a) & _gross(a[sus], n[sus], d_s, tol_a, rough_a) & s1.resolved() & s2.resolved()
        at_kink = np.zeros(len(sus), dtype=bool)
        if ctx.regrad is not None:
            # a kink exactly at x (the one-sided gap is the same at h and 2h, well above rounding) can be a
            # multi-kink, where backprop may legitimately lie far outside the one-sided hull: such entries
            # go to the kink analysis (and the nearby test) rather than being settled as gross errors
            with np.errstate(invalid="ignore", over="ignore"):
                t_gap = 4 * _rounding(eps_e, ls[sus], wh) + atol_s
                at_kink = (g1 > t_gap) & (g2 > t_gap) & (np.abs(g2 - g1) <= 0.5 * g1)
            cand &= ~at_kink
        g_a = noise.beyond(cand, d_s)
        tol_s = tol_a.copy()
        tol_ref_s = tol_ref[sus].copy()
        est_s = base_a + np.where(np.isfinite(spread_a), spread_a, 0.0)
        gross_s = g_a.copy()

        # stage B: the other suspicious entries, also at h/2
        def stage_b(rest: np.ndarray) -> None:
            ib = sus[rest]
            if half_h is not None:
                c12, w12, lm12, s12 = half_h[0][ib], half_h[1][ib], half_h[2][ib], half_h[3].take(ib)
            else:
                c12, w12, lm12, s12 = central_sided(target, obj, idx[ib], hs[rest] / 2, use_fast)
            ls[ib] = np.maximum(ls[ib], lm12)
            with np.errstate(invalid="ignore", over="ignore"):
                r_h2 = (4 * c12 - ch[rest]) / 3
                spread = np.abs(r_h[rest] - r_h2)
                spread = np.where(np.isfinite(spread), spread, 0.0)
                # first-order truncation: where L'' jumps at x (a "curvature kink": a ReLU whose
                # first-order contributions cancel, relu(z)**2, Huber) the central difference errs by
                # (L''+ - L''-) h / 4, linear in h, which the h**2 extrapolation above does not remove.
                # The three steps tell the two error models apart: where the h-linear extrapolations
                # 2 n(h) - n(2h) and 2 n(h/2) - n(h) agree far better than the h**2 ones, that model is used.
                r1_a = 2 * ch[rest] - c2[rest]
                r1_b = 2 * c12 - ch[rest]
                spread1 = np.abs(r1_b - r1_a)
                # ... and only where L is C1 around x: the gap between the one-sided derivatives scales
                # linearly with the step (|gap(2h) - 2 gap(h)| and |gap(h) - 2 gap(h/2)| far below the
                # gap); a kink of L' itself within the steps (a ReLU input within 2h of 0) does not scale
                g12_ = s12.gap(ctx.L0)
                rough_ = np.maximum(np.abs(g1[rest] - 2 * g12_), rough_a[rest])
                rnd = _rounding(eps_e, ls[ib], w12)
                # (the gap itself resolved well above rounding: a linear L has a gap of pure noise)
                linear_gap = (rough_ <= FIRST_ORDER_ROUGH * g1[rest] + 4 * rnd) & (g1[rest] > 16 * rnd)
            base_r = 0.5 * _rounding(eps_e, ls[ib], w12 * 2)
            with np.errstate(invalid="ignore", over="ignore"):
                # the linear model fits clearly better (under it, the h**2 model leaves a residue of
                # (L''+ - L''-) h / 12; under the h**2 model, the linear one leaves 1.5 K h**2)
                better_fit = FIRST_ORDER_MARGIN * spread1 < spread
                # ... and the estimates differ well above rounding (otherwise both fits only see noise)
                better_fit &= np.abs(c2[rest] - ch[rest]) > 2 * rnd
                first = (np.isfinite(spread1) & np.isfinite(r1_b) & better_fit & linear_gap & (method != "complex"))
            if first.any():
                fi = ib[first]
                n[fi] = r1_b[first]
                # the spread that enters the tolerance: the linear fit's, but where the h**2 fit's spread
                # is itself at rounding level (a choice made on noisy spreads), not below a quarter of it
                floor = np.minimum(spread, 4 * FIRST_ORDER_ROUNDING * base_r) / 4
                spread[first] = np.maximum(spread1, floor)[first]
                base_r[first] *= FIRST_ORDER_ROUNDING  # 2 n(h/2) - n(h) amplifies rounding more
                d_s[rest[first]] = np.abs(a[fi] - n[fi])
                notes_first.append(int(first.sum()))
            w_r = np.maximum(w12 * 2, np.finfo(np.float64).tiny)
            # tolerances before any noise measurement (the measured noise only adds to them)
            tol_nn = base_r + C_SPREAD * spread + atol_s[rest]
            if method == "complex":
                tol_nn = np.maximum(tol_first[rest], tol_nn)
            tol_ref_nn = 0.5 * _rounding(EPS64, ls[ib], w12 * 2) + C_SPREAD * spread + C_ANALYTIC * EPS64 * (
                np.abs(n[ib]) + gmax)
            db = d_s[rest]
            g12 = s12.gap(ctx.L0)
            with np.errstate(invalid="ignore", over="ignore"):
                rough = np.maximum(np.abs(g1[rest] - 2 * g12), rough_a[rest])
            cand_b = (_gross(a[ib], n[ib], db, np.maximum(tol_first[rest], tol_nn), rough)
                      & s1.take(rest).resolved() & s2.take(rest).resolved() & s12.resolved() & ~at_kink[rest])
            g_b = noise.beyond(cand_b, db, rest)
            # the noise of L matters where the verdict (or ok versus precision) could still change
            coarse = max(eps_e, target.analytic_eps) > EPS64
            with np.errstate(invalid="ignore"):
                fails_nn = ~(db <= tol_nn)
                needs = ~g_b & (fails_nn | (coarse & ~(db <= tol_ref_nn)))
                # noise (standard deviation of L) that would make the entry pass
                short = np.where(fails_nn, db - tol_nn, db - tol_ref_nn)
                sigma_need = np.maximum(short, 0.0) * w_r / C_NOISE
            sigma = np.zeros(len(rest))
            cand_n = np.flatnonzero(needs)
            if cand_n.size:
                sigma[cand_n] = noise.sampled(rest, sigma_need, cand_n, eps_e * ls[ib], notes)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                measured = C_NOISE * sigma / w_r
            tol_s[rest] = tol_nn + measured
            tol_ref_s[rest] = tol_ref_nn + measured
            est_s[rest] = base_r + measured + spread
            gross_s[rest] = g_b

        notes_first: list[int] = []
        rest = np.flatnonzero(~g_a)
        if rest.size:
            stage_b(rest)
            # noise measured there may exceed the screen's: gross errors of stage A must stay beyond it
            keep = noise.beyond(g_a, d_s)
            if (g_a & ~keep).any():
                stage_b(np.flatnonzero(g_a & ~keep))
        tol[sus] = tol_s
        tol_ref[sus] = tol_ref_s
        estimate[sus] = est_s
        gross[sus] = gross_s
        ok[sus] = ~gross_s & (d_s <= tol_s)
        if sum(notes_first):
            notes.append(f"{sum(notes_first)} entries estimated with a first-order extrapolation (the central "
                         "difference converged linearly in the step: a jump of the second derivative at x)")
        with np.errstate(invalid="ignore"):
            diff = np.abs(a - n)
        if gross_s.any():
            notes.append(f"{int(gross_s.sum())} entries wrong by far more than rounding, truncation, noise or "
                         "a kink could explain: not analysed further")

    # 4. kinks: retry at a much smaller step, then compare one-sided derivatives
    status = np.where(ok, OK, FAIL).astype(np.int8)
    bad = np.flatnonzero(~ok & ~gross)
    if bad.size > KINK_MAX:
        # a massive failure is not a set of kinks: investigate the entries closest to passing only
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = np.where(np.isfinite(diff[bad]), diff[bad] / np.maximum(tol[bad], 1e-300), np.inf)
        bad = np.sort(bad[np.argsort(excess, kind="stable")[:KINK_MAX]])
        notes.append(f"kink analysis limited to the {KINK_MAX} failing entries closest to passing")
    if bad.size:
        ratio = eps_e ** (1.0 / 6.0)
        hsm = h[bad] * ratio
        levels = [hsm / 4.0 ** j for j in range(KINK_LEVELS)]
        steps = np.stack([np.zeros_like(hsm)] + [v for s_ in levels for v in (s_, -s_)], axis=1)
        vals, eff = perturbed(target, obj, idx[bad], steps, use_fast)
        base = vals[:, 0]
        a_b = a[bad]
        resolved = np.zeros(len(bad), dtype=bool)
        gaps, tols_os, hulls, ests, smooth, sides = [], [], [], [], [], []
        for j in range(KINK_LEVELS):
            vp, vm = vals[:, 1 + 2 * j], vals[:, 2 + 2 * j]
            ep, em = eff[:, 1 + 2 * j], eff[:, 2 + 2 * j]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                w_x = (ep - em) / 2
                n_x = (vp - vm) / (2 * w_x)
                dp = (vp - base) / ep
                dm = (base - vm) / (-em)
                atol_x = C_ANALYTIC * target.analytic_eps * (np.abs(n_x) + gmax)
                tol_x = _rounding(eps_e, ls[bad], w_x) + atol_x
                diff_x = np.abs(a_b - n_x)
            # a kink merely near x: the smaller step does not cross it, judge the entry normally
            # (only when the estimate really moved: a noisy small-step estimate must not hide a bug)
            with np.errstate(invalid="ignore"):
                moved = np.abs(n_x - n[bad]) > tol_x
            now = _entry_ok(diff_x, a_b, n_x, tol_x, ctx) & np.isfinite(n_x) & ~resolved & moved
            if now.any():
                r = bad[now]
                n[r] = n_x[now]
                tol[r] = tol_x[now]
                tol_ref[r] = _rounding(EPS64, ls[bad][now], w_x[now]) + C_ANALYTIC * EPS64 * (
                    np.abs(n_x[now]) + gmax)
                status[r] = OK
            resolved |= now
            with np.errstate(invalid="ignore", over="ignore"):
                t_os = 2 * _rounding(eps_e, ls[bad], np.abs(ep)) + atol_x
                gaps.append(np.abs(dp - dm))
                tols_os.append(t_os)
                ests.append(n_x)
                smooth.append(np.isfinite(n_x) & (np.abs(dp - dm) <= t_os))
                lo = np.minimum(dp, dm) - t_os
                hi = np.maximum(dp, dm) + t_os
                if ctx.explicit and ctx.atol is not None:
                    lo, hi = lo - ctx.atol, hi + ctx.atol
                hulls.append((a_b >= lo) & (a_b <= hi))
                sides.append((np.minimum(dp, dm), np.maximum(dp, dm), t_os))
        if resolved.any():
            notes.append(f"{int(resolved.sum())} entries re-estimated at a smaller step (a kink near x)")
        # a kink at x: the one-sided derivatives differ, the gap persists as the step shrinks (a smooth
        # function's gap shrinks like the step), and the analytic value lies between them
        persists = np.zeros(len(bad), dtype=bool)
        kinked = np.zeros(len(bad), dtype=bool)  # the gap persists, whether or not a lies in the hull
        for j in range(KINK_LEVELS - 1):
            g1, g2 = gaps[j], gaps[j + 1]
            with np.errstate(invalid="ignore"):
                gap_persists = (np.isfinite(g1) & np.isfinite(g2) & (g1 > tols_os[j]) & (g2 > tols_os[j + 1])
                                & (g2 > 0.4 * g1))
            kinked |= gap_persists
            persists |= gap_persists & hulls[j] & hulls[j + 1]
        is_kink = ~resolved & persists
        status[bad[is_kink]] = KINK
        # several units at their kinks at once (a multi-kink): backprop's value need not lie between the
        # one-sided derivatives; it is accepted when the gradient code is verified at nearby points
        multi = ~resolved & ~is_kink & kinked
        if multi.any() and ctx.regrad is not None:
            lo0, hi0, t0 = sides[0]
            verified, why = verify_nearby(target, ctx, idx[bad[multi]],
                                          hull=(lo0[multi], hi0[multi], t0[multi]))
            if verified.any():
                status[bad[multi][verified]] = KINK
                is_kink[np.flatnonzero(multi)[verified]] = True
                notes.append(
                    f"{int(verified.sum())} entr{'y' if verified.sum() == 1 else 'ies'} at a multi-kink (the one-"
                    "sided derivatives differ and the analytic value is not between them, as backprop may "
                    "legitimately give where several units sit on their kinks at once); the gradient code "
                    f"was verified at {NEARBY_POINTS} nearby points instead")
            if (~verified).any():
                notes.append(f"{int((~verified).sum())} entries outside the one-sided hull at a kink: "
                             f"{why or 'also wrong at nearby points'}")
        elif multi.any():
            notes.append(f"{int(multi.sum())} entries outside the one-sided hull at a kink; where several units "
                         "sit on their kinks at once this can be legitimate, but the gradient cannot be "
                         "recomputed at nearby points to tell (pass grad as a function)")
        # failing entries: where a small step sees a smooth function (equal one-sided derivatives) while
        # the step h did not (a kink near x), its estimate is the better numerical value to report
        for j in range(KINK_LEVELS):
            with np.errstate(invalid="ignore"):
                better = ~resolved & ~is_kink & smooth[j] & (np.abs(ests[j] - n[bad]) > tols_os[j])
            if better.any():
                n[bad[better]] = ests[j][better]
            resolved |= better
    # precision: passes only thanks to the dtype's round-off
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - n)
        needs_dtype = (status == OK) & ~(diff <= tol_ref)
    if max(target.eval_eps, target.analytic_eps) <= EPS64:
        needs_dtype[:] = False  # float64 throughout: no coarser dtype to blame
    status[needs_dtype] = PRECISION
    status[~np.isfinite(n)] = FAIL
    if not np.isfinite(n).all():
        notes.append("the loss was not finite at some perturbed points")
    return EntryResult(idx, n, tol, status, estimate, notes)


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """``||a - n|| / (||a|| + ||n||)``; 0 when both are 0 (NaN entries of ``n`` are ignored)."""
    m = np.isfinite(n) & np.isfinite(a)
    if not m.any():
        return 0.0
    a = a[m]
    n = n[m]
    num = float(np.linalg.norm(a - n))
    den = float(np.linalg.norm(a)) + float(np.linalg.norm(n))
    if den == 0.0:
        return 0.0
    return num / den


def finite_max(v: np.ndarray) -> float:
    """Largest finite value of ``v`` (NaN if none)."""
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else float("nan")

