"""verigrad.torch.check versus torch.autograd.gradcheck on a catalogue of custom autograd Functions.

Run:  python benchmarks/torch_check.py [--repeats 7] [--markdown]

For every case (correct Functions and Functions with one classic backprop bug) it prints the verdict and
the median time of

* verigrad   ``verigrad.torch.check(fn, *inputs)`` (defaults: float64 numerical copies, central
             differences, full mode, kink and float32 handling, diagnosis),
* probe      the same with ``probe=True`` (also checks at the inputs scaled by 10 and 0.1, shifted by 1
             and negated, with torch's analytic gradient recomputed there),
* gradcheck  ``torch.autograd.gradcheck(fn, inputs, raise_exception=False)`` (slow mode: full Jacobians),
* fast       ``torch.autograd.gradcheck(..., fast_mode=True)``,

then the number of caught bugs, false alarms, and the verigrad / gradcheck time ratio. "evals vg" is the
number of forward evaluations verigrad used (one backward besides); "evals gc" is gradcheck slow mode's work,
``2 * input entries`` forwards plus ``b`` = one backward per output entry. Repeats are
interleaved (case by case, tool by tool, round after round) so that machine noise hits all tools alike.
gradcheck's warnings about float32 inputs are silenced (they do not change its verdict).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import verigrad.torch as vt

# ---------------------------------------------------------------------------------------- Functions


class Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W, b):
        ctx.save_for_backward(x, W)
        return x @ W + b

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return g @ W.T, x.T @ g, g.sum(0)


class Sigmoid(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * (1 - y)


class Tanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


class ReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0).to(g.dtype)


class Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.softmax(x, dim=-1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(-1, keepdim=True))


class LogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.logsumexp(x, dim=-1)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g[:, None] * torch.exp(x - y[:, None])


class MeanSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, y):
        ctx.save_for_backward(p, y)
        return 0.5 * ((p - y) ** 2).sum() / p.shape[0]

    @staticmethod
    def backward(ctx, g):
        p, y = ctx.saved_tensors
        return g * (p - y) / p.shape[0], None


class SigmoidSign(Sigmoid):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return -g * y * (1 - y)


class TanhTimes2(Tanh):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return 2 * g * (1 - y * y)


class MeanSquareNoN(MeanSquare):
    @staticmethod
    def backward(ctx, g):
        p, y = ctx.saved_tensors
        return g * (p - y), None


class MatmulTransposed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, W):
        ctx.save_for_backward(x, W)
        return x @ W

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return g @ W.T, (x.T @ g).T


class LinearOneColumn(Linear):
    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        dW = x.T @ g
        dW[:, 0] = x.T @ g[:, 1]
        return g @ W.T, dW, g.sum(0)


class LinearZeroW(Linear):
    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return g @ W.T, torch.zeros_like(W), g.sum(0)


class LinearBiasNotSummed(Linear):
    """Bias gradient taken from the first row only instead of summed over the batch."""

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return g @ W.T, x.T @ g, g[0]


class SoftmaxDiagonal(Softmax):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * (1 - y)


class SigmoidSaturationShortcut(Sigmoid):
    """Wrong for large inputs: "the sigmoid is saturated above |z| > 3, return 0"."""

    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return torch.where(x.abs() > 3, torch.zeros_like(g), g * y * (1 - y))


class ReLUWrongAtPositive(ReLU):
    """Derivative 1 only for x > 1 (off-by-threshold)."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 1).to(g.dtype)


# ---------------------------------------------------------------------------------------- catalogue


@dataclass
class Case:
    name: str
    fn: Callable[..., torch.Tensor]
    make_inputs: Callable[[torch.Generator], tuple[torch.Tensor, ...]]
    buggy: bool


def _t(gen: torch.Generator, *shape: int, dtype=torch.float64, scale: float = 1.0, grad: bool = True):
    return (scale * torch.randn(*shape, generator=gen, dtype=dtype)).requires_grad_(grad)


def _relu_inputs(gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    x = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    x[0, :3] = 0.0  # exactly at the kink
    x[1, :3] = torch.tensor([1e-7, -3e-7, 5e-7], dtype=torch.float64)  # within 1e-6 of it
    return (x.requires_grad_(True),)


def _linear(gen, dtype=torch.float64):
    return (_t(gen, 8, 5, dtype=dtype), _t(gen, 5, 4, dtype=dtype), _t(gen, 4, dtype=dtype))


def _mse(gen):
    return (_t(gen, 8, 3), _t(gen, 8, 3, grad=False))


CASES: list[Case] = [
    Case("linear", Linear.apply, _linear, False),
    Case("linear float32", Linear.apply, lambda g: _linear(g, torch.float32), False),
    Case("linear 800 entries", Linear.apply,
         lambda g: (_t(g, 32, 16), _t(g, 16, 16), _t(g, 16)), False),
    Case("sigmoid", Sigmoid.apply, lambda g: (_t(g, 6, 5, scale=3.0),), False),
    Case("tanh float32", Tanh.apply, lambda g: (_t(g, 6, 5, dtype=torch.float32),), False),
    Case("relu at 0", ReLU.apply, _relu_inputs, False),
    Case("softmax", Softmax.apply, lambda g: (_t(g, 4, 6, scale=2.0),), False),
    Case("logsumexp large", LogSumExp.apply, lambda g: (_t(g, 4, 6, scale=50.0),), False),
    Case("mse mean", MeanSquare.apply, _mse, False),
    Case("sigmoid sign", SigmoidSign.apply, lambda g: (_t(g, 6, 5),), True),
    Case("tanh x2", TanhTimes2.apply, lambda g: (_t(g, 6, 5),), True),
    Case("mse missing 1/N", MeanSquareNoN.apply, _mse, True),
    Case("matmul dW transposed", MatmulTransposed.apply, lambda g: (_t(g, 6, 4), _t(g, 4, 4)), True),
    Case("linear one column", LinearOneColumn.apply, _linear, True),
    Case("linear dW zero", LinearZeroW.apply, _linear, True),
    Case("linear db not summed", LinearBiasNotSummed.apply, _linear, True),
    Case("softmax diagonal only", SoftmaxDiagonal.apply, lambda g: (_t(g, 4, 6, scale=2.0),), True),
    Case("sigmoid 0 beyond 3", SigmoidSaturationShortcut.apply, lambda g: (_t(g, 6, 5, scale=2.5),), True),
    Case("relu threshold 1", ReLUWrongAtPositive.apply, _relu_inputs, True),
    Case("sigmoid 0 beyond 3, small x", SigmoidSaturationShortcut.apply, lambda g: (_t(g, 6, 5, scale=0.5),), True),
]


# ---------------------------------------------------------------------------------------- tools


N_EVALS: dict[str, int] = {}


def run_verigrad(case: Case, inputs) -> tuple[bool, str]:
    report = vt.check(case.fn, *inputs)
    N_EVALS[case.name] = report.n_evals
    return bool(report.passed), str(report.diagnosis.kind)


def gradcheck_work(case: Case, inputs) -> str:
    """gradcheck slow mode: 2 forward evaluations per input entry, 1 backward per output entry."""
    n_in = sum(t.numel() for t in inputs if t.requires_grad)
    with torch.no_grad():
        n_out = case.fn(*[t.detach() for t in inputs]).numel()
    return f"{2 * n_in}+{n_out}b"


def run_gradcheck(case: Case, inputs, fast: bool) -> tuple[bool, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ok = torch.autograd.gradcheck(case.fn, inputs, raise_exception=False, fast_mode=fast)
        except Exception as exc:  # noqa: BLE001 - gradcheck raises on some inputs even without raise_exception
            return False, type(exc).__name__
    return bool(ok), "ok" if ok else "fail"


def run_verigrad_probe(case: Case, inputs) -> tuple[bool, str]:
    report = vt.check(case.fn, *inputs, probe=True)
    return bool(report.passed), str(report.diagnosis.kind)


TOOLS: dict[str, Callable[[Case, tuple], tuple[bool, str]]] = {
    "verigrad": run_verigrad,
    "probe": run_verigrad_probe,
    "gradcheck": lambda c, i: run_gradcheck(c, i, fast=False),
    "fast": lambda c, i: run_gradcheck(c, i, fast=True),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7, help="interleaved timing rounds (default 7)")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    inputs = {c.name: c.make_inputs(torch.Generator().manual_seed(i)) for i, c in enumerate(CASES)}
    verdicts: dict[tuple[str, str], tuple[bool, str]] = {}
    times: dict[tuple[str, str], list[float]] = {(c.name, t): [] for c in CASES for t in TOOLS}
    for c in CASES:  # warm-up round, not timed (imports, lazy initialisation)
        for tname, tool in TOOLS.items():
            verdicts[(c.name, tname)] = tool(c, inputs[c.name])
    for _ in range(args.repeats):
        for c in CASES:
            for tname, tool in TOOLS.items():
                t0 = time.perf_counter()
                verdict = tool(c, inputs[c.name])
                times[(c.name, tname)].append(time.perf_counter() - t0)
                verdicts[(c.name, tname)] = verdict

    def cell(c: Case, t: str) -> str:
        ok, kind = verdicts[(c.name, t)]
        if c.buggy:
            word = "caught" if not ok else "MISSED"
        else:
            word = "pass" if ok else "FALSE ALARM"
        if t in ("verigrad", "probe"):
            word += f" ({kind})"
        return word

    med = {k: statistics.median(v) for k, v in times.items()}
    header = ["case", "bug?", "verigrad", "gradcheck", "fast_mode", "vg probe=True", "evals vg", "evals gc",
              "t verigrad ms", "t gradcheck ms", "t fast ms", "t probe ms", "ratio vg/gc"]
    rows = []
    for c in CASES:
        rows.append([
            c.name, "bug" if c.buggy else "ok", cell(c, "verigrad"), cell(c, "gradcheck"), cell(c, "fast"),
            cell(c, "probe"), str(N_EVALS[c.name]), gradcheck_work(c, inputs[c.name]),
            f"{1e3 * med[(c.name, 'verigrad')]:.2f}", f"{1e3 * med[(c.name, 'gradcheck')]:.2f}",
            f"{1e3 * med[(c.name, 'fast')]:.2f}", f"{1e3 * med[(c.name, 'probe')]:.2f}",
            f"{med[(c.name, 'verigrad')] / med[(c.name, 'gradcheck')]:.2f}",
        ])
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for r in rows:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths)))

    print()
    n_bugs = sum(c.buggy for c in CASES)
    n_ok = len(CASES) - n_bugs
    for t, label in (("verigrad", "verigrad"), ("probe", "verigrad probe=True"), ("gradcheck", "gradcheck slow"),
                     ("fast", "gradcheck fast_mode")):
        caught = sum(c.buggy and not verdicts[(c.name, t)][0] for c in CASES)
        alarms = sum((not c.buggy) and not verdicts[(c.name, t)][0] for c in CASES)
        total = sum(med[(c.name, t)] for c in CASES)
        print(f"{label:20s} caught {caught}/{n_bugs} bugs, {alarms}/{n_ok} false alarms, "
              f"median time per case summed {1e3 * total:.1f} ms")
    gc_caught = {c.name for c in CASES if c.buggy and not verdicts[(c.name, "gradcheck")][0]}
    vg_caught = {c.name for c in CASES if c.buggy and not verdicts[(c.name, "verigrad")][0]}
    ratios = [med[(c.name, "verigrad")] / med[(c.name, "gradcheck")] for c in CASES]
    print(f"verigrad catches every bug gradcheck catches: {gc_caught <= vg_caught}")
    print(f"time ratio verigrad / gradcheck slow: median {statistics.median(ratios):.2f}, "
          f"geometric mean {float(np.exp(np.mean(np.log(ratios)))):.2f}, max {max(ratios):.2f}")
    print(f"(torch {torch.__version__}, numpy {np.__version__}, {args.repeats} interleaved repeats, 1 torch thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
