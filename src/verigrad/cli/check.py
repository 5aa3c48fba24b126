"""``verigrad check``: gradient-check an MLP given as a spec.

Exit code 0 when every gradient passes, 1 when the checker finds a wrong one, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from typing import Any

import numpy as np

from verigrad.cli import bugs
from verigrad.cli._common import (
    ACTIVATIONS,
    NO_MATPLOTLIB,
    DATASETS,
    DTYPES,
    LOSSES,
    UsageError,
    build_model,
    check_input_width,
    dtype_of,
    emit,
    emit_report,
    layer_sizes,
    load_dataset,
    load_plots,
    make_loss,
    positive_int,
    save,
    targets_for_loss,
)

METHODS: tuple[str, ...] = ("auto", "central", "complex", "richardson")
MODES: tuple[str, ...] = ("full", "sample", "fast")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register the ``check`` subcommand."""
    p = sub.add_parser(
        "check",
        help="gradient-check an MLP given as a spec (exit 0 pass, 1 fail, 2 bad usage)",
        description=textwrap.fill(
            "Build an MLP from a spec, run one batch of a data set through it and compare every "
            "backpropagated gradient with finite differences. Prints the report (worst entry per parameter "
            "and a diagnosis of what is wrong). Exit code 0: all gradients pass; 1: a wrong gradient; "
            "2: bad usage.", width=88),
        epilog="Example: verigrad check --layers 2-16-2 --activation relu --loss ce --inject-bug missing-1/N",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--layers", type=layer_sizes, default=[2, 16, 2], metavar="SPEC",
                   help="layer widths input-hidden...-output (default 2-16-2)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="tanh",
                   help="hidden activation (default tanh; relu has kinks, which the checker classifies)")
    p.add_argument("--loss", choices=LOSSES, default="ce", help="ce: softmax cross-entropy; mse; bce: sigmoid + binary cross-entropy on one output unit (default ce)")
    p.add_argument("--dataset", choices=DATASETS, default="blobs", help="data set (default blobs)")
    p.add_argument("--batch", type=positive_int, default=16, help="samples in the checked batch (default 16)")
    p.add_argument("--dtype", choices=DTYPES, default="float64", help="parameter and data dtype (default float64)")
    p.add_argument("--method", choices=METHODS, default="auto", help="numerical derivative method (default auto)")
    p.add_argument("--mode", choices=MODES, default="full",
                   help="full: every entry; sample: a random subset; fast: random projections (default full)")
    p.add_argument("--seed", type=int, default=0, help="seed for the weights, the data and sampling (default 0)")
    p.add_argument("--inject-bug", choices=bugs.BUGS, default="none", metavar="BUG",
                   help="break one Dense layer's backward on purpose, to see the diagnosis: "
                   + "; ".join(f"{k}: {v}" for k, v in bugs.BUG_HELP.items()))
    p.add_argument("--json", metavar="PATH", default=None, help="write the report as JSON to PATH ('-' for stdout)")
    p.add_argument("--plot", metavar="DIR", default=None,
                   help="write the per-entry error heatmap of the worst parameter into DIR (check_heatmap.png)")
    p.set_defaults(command="check")
    return p


def _strict(obj: Any) -> Any:
    """Replace non-finite floats (not valid JSON) by ``None``, recursively."""
    if isinstance(obj, dict):
        return {str(k): _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _strict(obj.tolist())
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def write_json(report: Any, path: str) -> None:
    """Write ``report.to_dict()`` as strict JSON (non-finite numbers as null) to ``path`` (``-``: stdout)."""
    payload = json.dumps(_strict(report.to_dict()), indent=2, default=_json_default, allow_nan=False)
    if path == "-":
        emit(payload)
        return
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(payload + "\n")


def write_heatmap(report: Any, out_dir: str) -> str | None:
    """Heatmap of the worst parameter's analytic / numerical gradient and error; None without matplotlib."""
    plots = load_plots()
    if plots is None:
        return None
    worst = report.worst
    entry = getattr(worst, "worst", None)
    diag = worst.diagnosis
    note = f"{diag.kind}: {diag.message}" if not worst.passed else f"passed ({diag.kind})"
    fig = plots.plot_error_heatmap(worst.analytic, worst.numerical, name=worst.name, note=note,
                                   worst=entry.index if entry is not None else None)
    return save(plots, fig, out_dir, "check_heatmap.png")


def build_case(args: argparse.Namespace) -> tuple[Any, np.ndarray, np.ndarray, Any, int]:
    """Model, batch, targets, loss and the broken layer index (-1 for none) from the arguments."""
    dtype = dtype_of(args.dtype)
    X, y = load_dataset(args.dataset, max(args.batch, 8), args.seed)
    rng = np.random.default_rng(args.seed)
    take = rng.permutation(X.shape[0])[: args.batch]
    X, y = X[take], y[take]
    check_input_width(args.layers, X, args.dataset)
    targets = targets_for_loss(y, args.loss, args.layers[-1], args.dataset)
    model = build_model(args.layers, args.activation, args.seed, dtype)
    try:
        broken = bugs.inject_bug(model, args.inject_bug)
    except ValueError as exc:
        raise UsageError(f"--inject-bug {args.inject_bug}: {exc}") from None
    X = X.astype(dtype)
    if targets.dtype.kind == "f":
        targets = targets.astype(dtype)
    return model, X, targets, make_loss(args.loss), broken


def run_check(model: Any, X: np.ndarray, y: np.ndarray, loss: Any, method: str, mode: str, seed: int) -> Any:
    """Call :func:`verigrad.check.gradient_check` with the CLI's options."""
    from verigrad.check import gradient_check

    return gradient_check(model, X, y, loss, method=method, mode=mode, seed=seed)


def run(args: argparse.Namespace) -> int:
    """Run ``verigrad check``."""
    model, X, y, loss, broken = build_case(args)
    to_stdout_json = args.json == "-"
    report = run_check(model, X, y, loss, args.method, args.mode, args.seed)
    if not to_stdout_json:
        spec = "-".join(str(s) for s in args.layers)
        emit(f"verigrad check: {spec} {args.activation} MLP, loss {args.loss}, {args.dataset} batch of "
             f"{X.shape[0]}, {args.dtype}, method {args.method}, mode {args.mode}, seed {args.seed}")
        if broken >= 0:
            emit(f"injected bug in layer {broken} (Dense): {args.inject_bug}: {bugs.BUG_HELP[args.inject_bug]}")
        emit_report(report)
        emit("PASSED: every gradient matches." if report.passed else "FAILED: a gradient is wrong (see above).")
    if args.json:
        write_json(report, args.json)
        if not to_stdout_json:
            emit(f"report written: {args.json}")
    if args.plot:
        path = write_heatmap(report, args.plot)
        if not to_stdout_json:
            emit(f"figure written: {path}" if path else NO_MATPLOTLIB)
    sys.stdout.flush()
    return 0 if report.passed else 1
