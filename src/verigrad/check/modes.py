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


def _directional(parts: list[tuple[Target, np.ndarray, np.ndarray]], ctx: Context, scale: float) -> tuple[float, float, float]:
    """``L(x + s v) - L(x - s v)``, ``a . delta`` and a tolerance, for ``parts = [(target, flat idx, v)]``."""
    obj = ctx.objective
    saved = [(t, t.live.copy()) for t, _, _ in parts]
    plus, minus, deltas = [], [], []
    for t, idx, v in parts:
        x = np.asarray(t.live.flat[idx], dtype=np.float64)
        h = base_step(t.eval_eps, "central") * max(1.0, float(np.sqrt(np.mean(x * x)))) * scale
        p = (x + h * v).astype(t.live.dtype)
        m = (x - h * v).astype(t.live.dtype)
        plus.append(p)
        minus.append(m)
        deltas.append(p.astype(np.float64) - m.astype(np.float64))
    try:
        for (t, idx, _), p in zip(parts, plus):
            t.live.flat[idx] = p
        lp = obj()
        for (t, idx, _), m in zip(parts, minus):
            t.live.flat[idx] = m
        lm = obj()
    finally:
        for t, s in saved:
            np.copyto(t.live, s)
    dnum = lp - lm
    dana = 0.0
    mag = 0.0
    eps_e = max(t.eval_eps for t, _, _ in parts)
    eps_a = max(t.analytic_eps for t, _, _ in parts)
    for (t, idx, _), d in zip(parts, deltas):
        a = np.asarray(t.analytic.flat[idx], dtype=np.float64)
        dana += float(a @ d)
        mag += float(np.abs(a) @ np.abs(d))
    tol = 2 * C_ROUND * eps_e * ctx.lscale + C_ANALYTIC * eps_a * mag
    return dnum, dana, tol


def direction_test(parts_idx: list[tuple[Target, np.ndarray]], ctx: Context, rng: np.random.Generator) -> DirectionalResult:
    """One Rademacher direction over ``parts_idx``; a failure is confirmed at half the step.

    The error ``e(s) = dnum - dana`` of a correct gradient shrinks like ``s**3`` (relative ``s**2``) or
    is noise; a wrong gradient gives ``e(s) / s`` constant. The direction fails only when the error
    exceeds the tolerance at both steps and persists in ``e / s``.
    """
    n_total = sum(len(idx) for _, idx in parts_idx)
    scale = 1.0 / math.sqrt(max(n_total, 1))
    parts = [(t, idx, rng.choice(np.array([-1.0, 1.0]), size=len(idx))) for t, idx in parts_idx]
    dnum, dana, tol = _directional(parts, ctx, scale)
    err = abs(dnum - dana)
    if not (err > tol) and math.isfinite(dnum):
        return DirectionalResult(dnum, dana, tol, True)
    dnum2, dana2, tol2 = _directional(parts, ctx, scale / 2)
    err2 = abs(dnum2 - dana2)
    persistent = err2 > tol2 and err2 * 2 > 0.5 * err
    passed = math.isfinite(dnum) and not persistent
    return DirectionalResult(dnum, dana, tol + 2 * abs(err - 2 * err2), passed)


def fast_check(targets: list[Target], ctx: Context, rng: np.random.Generator, n_directions: int = 3,
               use_fast: bool = True) -> dict[str, tuple[Optional[EntryResult], list[DirectionalResult]]]:
    """Fast mode. Returns per target (entry results if it was localised and checked, directional results)."""
    everything = [(t, np.arange(t.live.size)) for t in targets if t.live.size]
    results = [direction_test(everything, ctx, rng) for _ in range(n_directions)]
    out: dict[str, tuple[Optional[EntryResult], list[DirectionalResult]]] = {
        t.name: (None, results) for t in targets
    }
    if all(r.passed for r in results):
        return out
    for t, idx in everything:
        mine = [direction_test([(t, idx)], ctx, rng) for _ in range(2)]
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
