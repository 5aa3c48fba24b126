"""Check modes beyond ``full``: ``sample`` (stratified entries) and ``fast`` (signed random directions).

``fast`` compares ``v . a`` with ``(L(x + h v) - L(x - h v))`` for Rademacher (+-1) directions ``v`` over
all tensors at once (unlike nonnegative directions, sign-cancelling bugs cannot hide). A passing model
costs ``1 + 2 * directions + 1`` objective evaluations. When a direction fails, the bad tensors are found
with one direction per tensor, then small tensors are checked entry by entry and large ones are bisected
into blocks until the bad entries are found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from verigrad.check.engine import (
    C_ANALYTIC,
    C_ROUND,
    EPS64,
    Context,
    EntryResult,
    Target,
    base_step,
    judge_entries,
)

#: tensors up to this size are checked entry by entry once a direction localises a fault to them
FULL_LIMIT = 2048
#: blocks are bisected down to this size before being checked entry by entry
LEAF = 128
#: at most this many leaf blocks are checked entry by entry per tensor
MAX_LEAVES = 4


def sample_indices(targets: list[Target], k: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Stratified sample of about ``k`` entries over all targets.

    Every tensor gets at least one entry (quota proportional to its size); a quarter of each quota goes
    to the entries of largest ``|analytic|`` and the rest is drawn uniformly without replacement.

    Returns
    -------
    dict of str to ndarray of int
        Sorted flat indices per target name.
    """
    sizes = np.array([t.live.size for t in targets], dtype=np.int64)
    total = int(sizes.sum())
    out: dict[str, np.ndarray] = {}
    for t, size in zip(targets, sizes):
        size = int(size)
        if k >= total:
            out[t.name] = np.arange(size)
            continue
        quota = min(size, max(1, int(round(k * size / total))))
        n_top = max(1, quota // 4)
        mag = np.abs(np.asarray(t.analytic, dtype=np.float64).ravel())
        top = np.argsort(-mag, kind="stable")[:n_top]
        rest = np.setdiff1d(np.arange(size), top, assume_unique=True)
        extra = rng.choice(rest, size=min(len(rest), quota - n_top), replace=False) if quota > n_top else []
        out[t.name] = np.sort(np.concatenate([top, np.asarray(extra, dtype=np.intp)]).astype(np.intp))
    return out


@dataclass
class DirectionalResult:
    """Outcome of one directional comparison."""

    numerical: float
    analytic: float
    tolerance: float
    passed: bool

    @property
    def rel_error(self) -> float:
        d = abs(self.numerical - self.analytic)
        den = abs(self.numerical) + abs(self.analytic)
        return 0.0 if d == 0 else d / den


class _Part:
    """The entries of one target taking part in directional tests, prepared once.

    Holds a copy of the entries (native dtype, for the bit-identical restore, and float64), the
    analytic gradient over them (float64, flat) and the base step. When the part covers every entry of
    a C-contiguous array, the live array is written through a flat *view* (no per-entry indexing);
    otherwise through ``live.flat[idx]``.

    Parameters
    ----------
    target : Target
    idx : ndarray of int, shape (n,), optional
        Flat indices of the entries; None for every entry.
    """

    def __init__(self, target: Target, idx: Optional[np.ndarray] = None) -> None:
        live = target.live
        self.target = target
        self.n = int(live.size if idx is None else len(idx))
        whole = idx is None and live.flags.c_contiguous
        self.idx: Optional[np.ndarray] = None
        if not whole:
            self.idx = np.arange(live.size) if idx is None else np.asarray(idx, dtype=np.intp)
        self.view: Optional[np.ndarray] = live.reshape(-1) if whole else None
        self.native = self.view.copy() if self.view is not None else live.flat[self.idx].copy()
        self.f64 = live.dtype == np.float64
        self.x0 = self.native if self.f64 else self.native.astype(np.float64)
        ana = np.asarray(target.analytic, dtype=np.float64)
        self.a = ana.reshape(-1) if self.idx is None else ana.reshape(-1)[self.idx]
        self.abs_a = np.abs(self.a)
        rms = float(np.sqrt(np.dot(self.x0, self.x0) / max(self.n, 1))) if self.n else 0.0
        self.h = base_step(target.eval_eps, "central") * max(1.0, rms)
        # sum |a_i| |delta_i| without a pass per direction (float64 through a view): the written values
        # x +- s are rounded to within half an ulp of |x| + h each, so |delta_i| <= 2 |s| + ulp(|x_i| + h)
        # and ulp(v) <= eps v (+ the smallest subnormal); sum |a_i| |x_i| <= ||a|| ||x|| (Cauchy-Schwarz)
        self.abs_a_sum = float(np.sum(self.abs_a))
        self.abs_a_ulp = 0.0
        if self.f64 and self.view is not None and self.n:
            a_norm = float(np.sqrt(np.dot(self.a, self.a)))
            tiny = float(np.finfo(np.float64).smallest_subnormal)
            self.abs_a_ulp = EPS64 * (a_norm * rms * math.sqrt(self.n) + self.h * self.abs_a_sum) + tiny * self.abs_a_sum
        self.buf = np.empty(self.n)
        self.other = np.empty(self.n)

    def write(self, values: np.ndarray) -> None:
        """Write float64 ``values`` into the live entries (rounded to the live dtype)."""
        if self.view is not None:
            np.copyto(self.view, values, casting="unsafe")
        else:
            self.target.live.flat[self.idx] = values

    def read(self, out: np.ndarray) -> np.ndarray:
        """The live entries as float64 (what was actually written), into ``out``."""
        if self.view is not None:
            np.copyto(out, self.view, casting="unsafe")
        else:
            out[...] = self.target.live.flat[self.idx]
        return out

    def restore(self) -> None:
        """Write the saved entries back, bit for bit."""
        if self.view is not None:
            np.copyto(self.view, self.native)
        else:
            self.target.live.flat[self.idx] = self.native


def _lowest_bit(d: float) -> float:
    """Value of the lowest set bit of a finite float (0 for 0): scalar :func:`engine.lowest_bit`."""
    if d == 0.0 or not math.isfinite(d):
        return 0.0
    m, e = math.frexp(abs(d))
    mant = int(m * 2.0 ** 53)
    return math.ldexp(float(mant & -mant), e - 53)


def _grid3(L0: float, lp: float, lm: float) -> float:
    """Quantum of the changes among three loss values (scalar :func:`engine.value_grid`; 0: none)."""
    bits = [b for b in (_lowest_bit(lp - L0), _lowest_bit(lm - L0), _lowest_bit(lp - lm)) if b > 0.0]
    return min(bits) if bits else 0.0


def _signs(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` independent fair random booleans (one random bit each)."""
    return np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), dtype=np.uint8), count=n).view(np.bool_)


def _directional(parts: list[_Part], signs: list[np.ndarray], ctx: Context, scale: float,
                 restore: bool = True) -> tuple[float, float, float]:
    """``L(x + s v) - L(x - s v)``, ``a . delta`` and a tolerance.

    ``v`` is +-1 per entry (``signs`` True: +1); ``delta`` is the difference of the values actually
    written (in the live dtype). The step is ``base_step * max(1, rms(x)) * scale`` per part. Every pass
    over the entries is a vectorised whole-array operation (flat views, preallocated buffers). With
    ``restore=False`` the saved entries are written back only if the loss raises (the caller restores
    them after a series of directions: each direction overwrites every entry of its parts anyway).
    """
    obj = ctx.objective
    try:
        for part, sg in zip(parts, signs):  # s = h v into part.buf
            h = part.h * scale
            np.multiply(sg, 2.0 * h, out=part.buf)
            np.subtract(part.buf, h, out=part.buf)
            if part.f64 and part.view is not None:
                np.add(part.x0, part.buf, out=part.view)
            else:
                np.add(part.x0, part.buf, out=part.other)
                part.write(part.other)
        lp = obj()
        for part in parts:  # part.other = x + s as written; then write x - s
            if part.f64 and part.view is not None:
                np.subtract(part.x0, part.buf, out=part.buf)  # x - s
                np.subtract(part.view, part.buf, out=part.other)  # delta = (x + s) - (x - s), exact
                np.copyto(part.view, part.buf)
            else:
                part.read(part.other)
                np.subtract(part.x0, part.buf, out=part.buf)
                part.write(part.buf)
                np.subtract(part.other, part.read(part.buf), out=part.other)
        lm = obj()
    except BaseException:
        for part in parts:
            part.restore()
        raise
    if restore:
        for part in parts:
            part.restore()
    dnum = lp - lm
    dana = 0.0
    mag = 0.0
    for part in parts:  # part.other holds delta
        dana += float(np.dot(part.a, part.other))
        if part.f64 and part.view is not None:
            mag += 2.0 * part.h * scale * part.abs_a_sum + part.abs_a_ulp
        else:
            np.abs(part.other, out=part.buf)
            mag += float(np.dot(part.abs_a, part.buf))
    eps_e = max(p.target.eval_eps for p in parts)
    eps_a = max(p.target.analytic_eps for p in parts)
    # the resolution at which L is computed, read off the values (a cancelling sum: see value_grid)
    q = _grid3(ctx.L0, lp, lm) if math.isfinite(dnum) else 0.0
    tol = 2 * C_ROUND * max(eps_e * ctx.lscale, q) + C_ANALYTIC * eps_a * mag
    return dnum, dana, tol


def direction_test(parts_idx: list[tuple[Target, np.ndarray]] | list[_Part], ctx: Context,
                   rng: np.random.Generator, restore: bool = True) -> DirectionalResult:
    """One Rademacher direction over ``parts_idx``; a failure is confirmed at half the step.

    The error ``e(s) = dnum - dana`` of a correct gradient shrinks like ``s**3`` (relative ``s**2``) or
    is noise; a wrong gradient gives ``e(s) / s`` constant. The direction fails only when the error
    exceeds the tolerance at both steps and persists in ``e / s``.
    """
    parts = [p if isinstance(p, _Part) else _Part(*p) for p in parts_idx]
    n_total = sum(p.n for p in parts)
    scale = 1.0 / math.sqrt(max(n_total, 1))
    signs = [_signs(rng, p.n) for p in parts]
    dnum, dana, tol = _directional(parts, signs, ctx, scale, restore)
    err = abs(dnum - dana)
    if not (err > tol) and math.isfinite(dnum):
        return DirectionalResult(dnum, dana, tol, True)
    dnum2, dana2, tol2 = _directional(parts, signs, ctx, scale / 2, restore)
    err2 = abs(dnum2 - dana2)
    persistent = err2 > tol2 and err2 * 2 > 0.5 * err
    passed = math.isfinite(dnum) and not persistent
    return DirectionalResult(dnum, dana, tol + 2 * abs(err - 2 * err2), passed)


def fast_check(targets: list[Target], ctx: Context, rng: np.random.Generator, n_directions: int = 3,
               use_fast: bool = True) -> dict[str, tuple[Optional[EntryResult], list[DirectionalResult]]]:
    """Fast mode. Returns per target (entry results if it was localised and checked, directional results)."""
    prepared = [_Part(t) for t in targets if t.live.size]
    try:
        results = [direction_test(prepared, ctx, rng, restore=False) for _ in range(n_directions)]
    finally:
        for part in prepared:  # once, after the series of directions (bit for bit)
            part.restore()
    out: dict[str, tuple[Optional[EntryResult], list[DirectionalResult]]] = {
        t.name: (None, results) for t in targets
    }
    if all(r.passed for r in results):
        return out
    for part in prepared:
        t = part.target
        idx = np.arange(t.live.size)
        mine = [direction_test([part], ctx, rng) for _ in range(2)]
        if all(r.passed for r in mine):
            out[t.name] = (None, mine)
            continue
        if t.live.size <= FULL_LIMIT:
            out[t.name] = (judge_entries(t, ctx, idx, use_fast), mine)
            continue
        blocks = [idx]
        leaves: list[np.ndarray] = []
        while blocks and len(leaves) < MAX_LEAVES:
            nxt = []
            for b in blocks:
                if len(b) <= LEAF:
                    leaves.append(b)
                    continue
                for half in (b[: len(b) // 2], b[len(b) // 2:]):
                    if not direction_test([(t, half)], ctx, rng).passed:
                        nxt.append(half)
            blocks = nxt[: 2 * MAX_LEAVES]
        if not leaves:
            leaves = [b[:LEAF] for b in blocks[:MAX_LEAVES]]
        if leaves:
            sel = np.unique(np.concatenate(leaves[:MAX_LEAVES]))
            out[t.name] = (judge_entries(t, ctx, sel, use_fast), mine)
        else:
            out[t.name] = (None, mine)
    return out
