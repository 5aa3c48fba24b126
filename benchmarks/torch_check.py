"""verigrad.torch.check versus torch.autograd.gradcheck on a catalogue of custom autograd Functions.

Run:  python benchmarks/torch_check.py [--repeats 7] [--markdown]

The cases are the torch tests' catalogue, ``tests/torch/vg_torch_functions.py`` (``CASES``): classic layers
and our own versions of the custom Functions and modules of the wild (PyTorch's "Extending PyTorch" note and
tutorial styles: ``needs_input_grad``, non-tensor arguments, two outputs with ``setup_context``,
``mark_dirty``, a module with a custom Function, BatchNorm, buffers and a frozen parameter, float32), each
correct and with one classic backprop bug. "bug?" gives the diagnosis the catalogue expects ("bug" when any
failing verdict is right). For a module, gradcheck checks the input and the trainable parameters (through
``torch.func.functional_call``), as verigrad does.

For every case it prints the verdict and the median time of

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
gradcheck's warnings about float32 inputs are silenced (they do not change its verdict). An exception of a
tool counts as a failed check and is named in parentheses (gradcheck raises, for instance, on a correct in-place
Function applied to a leaf, and on gradients of the wrong shape).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import verigrad.torch as vt

# ---------------------------------------------------------------------------------------- catalogue

# One source for the cases: the torch tests' catalogue (tests/torch/vg_torch_functions.py), which verigrad itself
# does not ship. It is a plain module in a folder without __init__.py (a package named tests/torch would shadow
# PyTorch), imported by path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "torch"))
from vg_torch_functions import CASES, Case  # noqa: E402


# ---------------------------------------------------------------------------------------- tools


N_EVALS: dict[str, int] = {}


def run_verigrad(case: Case, inputs, probe: bool = False) -> tuple[bool, str]:
    """verigrad's verdict and diagnosis kind; records the evaluations of the default check in N_EVALS."""
    try:
        report = vt.check(case.fn, *inputs, probe=probe)
    except Exception as exc:  # noqa: BLE001 - counted as a failed check, named in the table
        report = None
        verdict = False, type(exc).__name__
    else:
        verdict = bool(report.passed), str(report.diagnosis.kind)
    if not probe:
        N_EVALS[case.name] = 0 if report is None else report.n_evals
    return verdict


def _gradcheck_form(case: Case, inputs) -> tuple[Callable, tuple]:
    """gradcheck sees only its inputs: a module's trainable parameters become inputs (functional_call)."""
    if not isinstance(case.fn, torch.nn.Module):
        return case.fn, tuple(inputs)
    module = case.fn
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    params = tuple(p.detach().clone().requires_grad_(True) for n, p in module.named_parameters() if p.requires_grad)
    n_in = len(inputs)

    def fn(*args):
        return torch.func.functional_call(module, dict(zip(names, args[n_in:])), tuple(args[:n_in]))

    return fn, tuple(inputs) + params


def gradcheck_work(case: Case, inputs) -> str:
    """gradcheck slow mode: 2 forward evaluations per input entry, 1 backward per output entry."""
    fn, args = _gradcheck_form(case, inputs)
    n_in = sum(t.numel() for t in args if isinstance(t, torch.Tensor) and t.requires_grad)
    with torch.no_grad():
        res = fn(*[t.detach().clone() if isinstance(t, torch.Tensor) else t for t in args])
    outs = res if isinstance(res, (tuple, list)) else (res,)
    n_out = sum(o.numel() for o in outs if isinstance(o, torch.Tensor) and o.is_floating_point())
    return f"{2 * n_in}+{n_out}b"


def _cloning(fn: Callable) -> Callable:
    return lambda *args: fn(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])


def run_gradcheck(case: Case, inputs, fast: bool) -> tuple[bool, str]:
    fn, args = _gradcheck_form(case, inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ok = torch.autograd.gradcheck(fn, args, raise_exception=False, fast_mode=fast)
        except RuntimeError as exc:
            if "leaf Variable that requires grad" not in str(exc):
                return False, type(exc).__name__
            # an in-place Function on a leaf: give gradcheck what its users write, fn(x.clone())
            try:
                ok = torch.autograd.gradcheck(_cloning(fn), args, raise_exception=False, fast_mode=fast)
            except Exception as exc2:  # noqa: BLE001
                return False, type(exc2).__name__
            return bool(ok), "ok, x.clone()" if ok else "fail, x.clone()"
        except Exception as exc:  # noqa: BLE001 - gradcheck raises on some inputs even without raise_exception
            return False, type(exc).__name__
    return bool(ok), "ok" if ok else "fail"


def _copies(inputs: tuple) -> tuple:
    """Fresh copies of a case's tensors for every call (same strides and requires_grad): a tool that lets the
    function write into its inputs (gradcheck on an in-place Function: the forward runs ``x.mul_(3)`` on the
    leaf before torch refuses it) must not change what the next call sees."""
    return tuple(
        x.detach().clone().requires_grad_(x.requires_grad) if isinstance(x, torch.Tensor) and x.is_leaf
        else x for x in inputs
    )


def _raised(kind: str) -> bool:
    return kind not in ("ok", "fail", "ok, x.clone()", "fail, x.clone()")


TOOLS: dict[str, Callable[[Case, tuple], tuple[bool, str]]] = {
    "verigrad": run_verigrad,
    "probe": lambda c, i: run_verigrad(c, i, probe=True),
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
            verdicts[(c.name, tname)] = tool(c, _copies(inputs[c.name]))
    for _ in range(args.repeats):
        for c in CASES:
            for tname, tool in TOOLS.items():
                fresh = _copies(inputs[c.name])
                t0 = time.perf_counter()
                verdict = tool(c, fresh)
                times[(c.name, tname)].append(time.perf_counter() - t0)
                verdicts[(c.name, tname)] = verdict

    def cell(c: Case, t: str) -> str:
        ok, kind = verdicts[(c.name, t)]
        if c.buggy:
            word = "caught" if not ok else "MISSED"
        else:
            word = "pass" if ok else "FALSE ALARM"
        if t in ("verigrad", "probe") or kind not in ("ok", "fail"):  # gradcheck: exception or x.clone()
            word += f" ({kind})"
        return word

    med = {k: statistics.median(v) for k, v in times.items()}
    header = ["case", "bug?", "verigrad", "gradcheck", "fast_mode", "vg probe=True", "evals vg", "evals gc",
              "t verigrad ms", "t gradcheck ms", "t fast ms", "t probe ms", "ratio vg/gc"]
    rows = []
    for c in CASES:
        rows.append([
            c.name, (c.expect or "bug") if c.buggy else "ok", cell(c, "verigrad"), cell(c, "gradcheck"), cell(c, "fast"),
            cell(c, "probe"), str(N_EVALS[c.name]), gradcheck_work(c, inputs[c.name]),
            f"{1e3 * med[(c.name, 'verigrad')]:.2f}", f"{1e3 * med[(c.name, 'gradcheck')]:.2f}",
            f"{1e3 * med[(c.name, 'fast')]:.2f}", f"{1e3 * med[(c.name, 'probe')]:.2f}",
            f"{med[(c.name, 'verigrad')] / med[(c.name, 'gradcheck')]:.2f}"
            + (" (gc raised)" if _raised(verdicts[(c.name, "gradcheck")][1]) else ""),
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
    # a case where gradcheck raised (a gradient of the wrong shape) took it no real work: left out of the ratios
    ratios = [med[(c.name, "verigrad")] / med[(c.name, "gradcheck")] for c in CASES
              if not _raised(verdicts[(c.name, "gradcheck")][1])]
    print(f"verigrad catches every bug gradcheck catches: {gc_caught <= vg_caught}")
    print(f"time ratio verigrad / gradcheck slow over the {len(ratios)} cases where gradcheck ran: "
          f"median {statistics.median(ratios):.2f}, "
          f"geometric mean {float(np.exp(np.mean(np.log(ratios)))):.2f}, max {max(ratios):.2f}")
    print(f"(torch {torch.__version__}, numpy {np.__version__}, {args.repeats} interleaved repeats, 1 torch thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
