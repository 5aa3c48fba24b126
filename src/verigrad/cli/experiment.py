"""``verigrad experiment``: seed 004's four exercises, each one figure and a summary table.

Every exercise trains seed 004's set-up (two blobs, 400 points, SGD, batch 32, 30 epochs, a
2-h-2 MLP with ``0.1 * N(0, 1)`` weights) with one thing changed, against the baseline
(ReLU, h = 16, lr 0.1, gradients zeroed every step):

activation  ReLU (baseline), tanh, sigmoid
width       h = 4, 16 (baseline), 64
lr          1.0, 0.1 (baseline), 0.001: which diverges and which crawls is decided from the curves
zero_grad   gradients not zeroed between steps (``fit(zero_grad=False)``: they accumulate)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verigrad.cli._common import NO_MATPLOTLIB, emit, load_plots, positive_int, print_table, save

EXPERIMENTS: tuple[str, ...] = ("activation", "width", "lr", "zero_grad")

BASELINE = {"activation": "relu", "hidden": 16, "lr": 0.1, "zero_grad": True}


@dataclass
class Run:
    """One training run of an exercise."""

    label: str
    settings: dict[str, Any]
    losses: list[float] = field(default_factory=list)
    initial_loss: float = float("nan")
    accuracy: float = float("nan")
    verdict: str = ""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register the ``experiment`` subcommand."""
    p = sub.add_parser(
        "experiment",
        help="seed 004's four exercises (activation, width, learning rate, no zero_grad), one figure each",
        description="Seed 004's exercises on its 2-16-2 ReLU MLP (two blobs, SGD, batch 32): swap the "
        "activation (relu/tanh/sigmoid), change the hidden width (4/16/64), the learning rate (1.0/0.1/0.001) "
        "and stop zeroing the gradients. Each exercise is compared with the baseline curve in one figure and a "
        "table; the verdicts (diverges, crawls, unstable, ...) are read from the loss curves.",
    )
    p.add_argument("--out", metavar="DIR", default="verigrad-experiments",
                   help="where to write the figures (default ./verigrad-experiments)")
    p.add_argument("--only", choices=EXPERIMENTS, action="append", default=None, metavar="NAME",
                   help=f"run only this exercise (repeatable): {', '.join(EXPERIMENTS)}")
    p.add_argument("--epochs", type=positive_int, default=30, help="epochs per run (default 30)")
    p.add_argument("--lrs", type=learning_rates, default=(1.0, 0.001), metavar="LR,LR,...",
                   help="learning rates compared with the baseline's 0.1 in the lr exercise (default 1.0,0.001; "
                   "try 30,0.001 to see a divergence)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, weights and shuffling (default 0)")
    p.add_argument("--no-plots", action="store_true", help="do not write figures")
    p.set_defaults(command="experiment")
    return p


def learning_rates(text: str) -> tuple[float, ...]:
    """argparse type: comma-separated positive learning rates, e.g. ``"1.0,0.001"``."""
    values = []
    for part in str(text).split(","):
        try:
            value = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 1.0,0.001, got {text!r}") from None
        if not np.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"learning rates must be positive and finite, got {part!r} in {text!r}")
        values.append(value)
    return tuple(values)


def variants(name: str, lrs: Sequence[float] = (1.0, 0.001)) -> list[tuple[str, dict[str, Any]]]:
    """``(label, settings)`` of the runs of one exercise; the baseline comes first.

    ``lrs`` are the learning rates compared with the baseline's 0.1 in the ``lr`` exercise.
    """
    base = dict(BASELINE)
    if name == "activation":
        return [("ReLU", base), ("tanh", {**base, "activation": "tanh"}), ("sigmoid", {**base, "activation": "sigmoid"})]
    if name == "width":
        return [("h=16", base), ("h=4", {**base, "hidden": 4}), ("h=64", {**base, "hidden": 64})]
    if name == "lr":
        return [("lr=0.1", base)] + [(f"lr={lr:g}", {**base, "lr": float(lr)}) for lr in lrs]
    if name == "zero_grad":
        return [("zero_grad", base), ("no zero_grad", {**base, "zero_grad": False})]
    raise ValueError(f"name: expected one of {', '.join(EXPERIMENTS)}, got {name!r}")


def build(settings: dict[str, Any], seed: int) -> Any:
    """Seed 004's MLP ``2 - h - 2`` with the given activation and ``0.1 * N(0, 1)`` weights."""
    from verigrad import nn

    from verigrad.cli._common import make_activation

    rng = np.random.default_rng(seed)
    h = int(settings["hidden"])
    return nn.NeuralNetwork([
        nn.Dense(2, h, init="normal", scale=0.1, rng=rng),
        make_activation(settings["activation"]),
        nn.Dense(h, 2, init="normal", scale=0.1, rng=rng),
    ])


def train_run(label: str, settings: dict[str, Any], X: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> Run:
    """Train one variant from the same initial seed and data order as the others."""
    from verigrad import nn
    from verigrad.data import DataLoader
    from verigrad.train import accuracy, fit

    model = build(settings, seed)
    loss_fn = nn.CrossEntropyLoss()
    initial = float(loss_fn.forward(model.forward(X, training=False), y))
    optimizer = nn.SGD(model.params(), lr=float(settings["lr"]))
    loader = DataLoader(X, y, batch_size=32, shuffle=True, seed=seed)
    with np.errstate(over="ignore", invalid="ignore"):
        history = fit(model, loss_fn, optimizer, loader, epochs=epochs, metrics=(), progress=False,
                      zero_grad=bool(settings["zero_grad"]))
        pred = model.forward(X, training=False)
    losses = [float(v) for v in history.loss]
    acc = float(accuracy(pred, y)) if np.all(np.isfinite(pred)) else float("nan")
    return Run(label, settings, losses, initial, acc)


def classify(losses: Sequence[float], baseline: Sequence[float], initial: float | None = None) -> str:
    """A verdict read from a loss curve and the baseline curve.

    ``L_0`` is the loss before training (``initial``; the first epoch's loss when not given),
    shared by all runs of an exercise since they start from the same weights. Rules, in order:

    * a non-finite loss, or a last loss above ``L_0`` -> ``diverges``;
    * a loss above ``10 L_0`` at some epoch (that later came back) -> ``unstable``;
    * the loss rose by more than 10 % from one epoch to the next in at least a fifth of the
      epochs -> ``unstable``;
    * the run removed less than half of the baseline's reduction ``L_0 - B_T`` -> ``crawls``;
    * otherwise ``faster`` / ``slower`` / ``like the baseline``, by the epoch at which the run
      first gets within 10 % of the baseline's final loss ``B_T`` (``slower (final ...)`` when
      it never does).
    """
    L = np.asarray(losses, dtype=float)
    B = np.asarray(baseline, dtype=float)
    if L.size == 0:
        return "no epochs"
    if not np.all(np.isfinite(L)):
        first_bad = int(np.argmin(np.isfinite(L))) + 1
        return f"diverges (inf/nan at epoch {first_bad})"
    L0 = float(initial) if initial is not None and np.isfinite(initial) else float(L[0])
    if L[-1] > L0:
        return f"diverges (ends at {L[-1]:.3g} > start {L0:.3g})"
    peak = int(np.argmax(L))
    if L[peak] > 10.0 * L0:
        return f"unstable (loss blew up to {L[peak]:.2g} at epoch {peak + 1}, then came back)"
    rises = int(np.sum(L[1:] > 1.10 * L[:-1])) if L.size > 1 else 0
    if L.size > 4 and rises >= max(2, (L.size - 1) // 5):
        return f"unstable (up in {rises}/{L.size - 1} epochs)"
    base_drop = L0 - B[-1]
    drop = L0 - L[-1]
    if base_drop > 0 and drop < 0.5 * base_drop:
        return f"crawls ({100 * drop / base_drop:.0f}% of the baseline's progress)"
    target = 1.1 * B[-1]
    reach_l = int(np.argmax(L <= target)) + 1 if np.any(L <= target) else None
    reach_b = int(np.argmax(B <= target)) + 1
    if reach_l is None:
        return f"slower (final {L[-1]:.3g} vs {B[-1]:.3g})"
    if reach_l < reach_b - 1:
        return f"faster (epoch {reach_l} vs {reach_b})"
    if reach_l > reach_b + 1:
        return f"slower (epoch {reach_l} vs {reach_b})"
    return "like the baseline"


def conclusion(runs: Sequence[Run]) -> str:
    """One sentence from the verdicts: which runs diverge, are unstable, crawl."""
    parts = []
    for word in ("diverges", "unstable", "crawls"):
        hit = [r.label for r in runs[1:] if r.verdict.startswith(word)]
        if hit:
            parts.append(f"{' and '.join(hit)} {_singular(word) if len(hit) == 1 else _plural(word)}")
    if not any(r.verdict.startswith("diverges") for r in runs[1:]):
        parts.append("no run diverges on this data")
    return "; ".join(parts) + "."


def _plural(word: str) -> str:
    return {"diverges": "diverge", "crawls": "crawl", "unstable": "are unstable"}.get(word, word)


def _singular(word: str) -> str:
    return "is unstable" if word == "unstable" else word


TITLES = {
    "activation": "Exercise 1, activation swap: ReLU vs tanh vs sigmoid",
    "width": "Exercise 2, hidden width: h = 4, 16, 64",
    "lr": "Exercise 3, learning-rate pathology",
    "zero_grad": "Exercise 4, gradients not zeroed (accumulated across steps)",
}


def run_experiment(name: str, X: np.ndarray, y: np.ndarray, epochs: int, seed: int,
                   baseline_run: Run | None = None, lrs: Sequence[float] = (1.0, 0.001)) -> list[Run]:
    """Train every variant of exercise ``name``; the first run is the baseline."""
    runs: list[Run] = []
    for i, (label, settings) in enumerate(variants(name, lrs)):
        if i == 0 and baseline_run is not None:
            runs.append(Run(label, settings, list(baseline_run.losses), baseline_run.initial_loss,
                            baseline_run.accuracy))
        else:
            runs.append(train_run(label, settings, X, y, epochs, seed))
    runs[0].verdict = "baseline"
    for r in runs[1:]:
        r.verdict = classify(r.losses, runs[0].losses, initial=r.initial_loss)
    return runs


def _note(runs: list[Run]) -> str:
    return "\n".join(f"{r.label}: {r.verdict.split(' (')[0]}" for r in runs[1:])


def run(args: argparse.Namespace) -> int:
    """Run ``verigrad experiment``."""
    from verigrad.data import make_blobs

    names = list(dict.fromkeys(args.only)) if args.only else list(EXPERIMENTS)
    X, y = make_blobs(400, seed=args.seed)
    plots = None
    if not args.no_plots:
        plots = load_plots()
        if plots is None:
            emit(NO_MATPLOTLIB)
    emit(f"verigrad experiment: seed 004's exercises on make_blobs(400), 2-h-2 MLP, SGD, batch 32, "
         f"{args.epochs} epochs, seed {args.seed}")
    emit("baseline: ReLU, h = 16, lr = 0.1, gradients zeroed every step")
    baseline = train_run("baseline", dict(BASELINE), X, y, args.epochs, args.seed)
    written = []
    for name in names:
        runs = run_experiment(name, X, y, args.epochs, args.seed, baseline_run=baseline, lrs=args.lrs)
        rows = [[r.label, r.initial_loss, r.losses[0], r.losses[-1], r.accuracy, r.verdict] for r in runs]
        emit("")
        print_table(["run", "loss before", "epoch 1", f"epoch {args.epochs}", "accuracy", "verdict"],
                    rows, title=TITLES[name])
        emit(f"  {conclusion(runs)}")
        emit("  (faster/slower: epoch at which a run first gets within 10% of the baseline's final loss)")
        if plots is not None:
            fig = plots.plot_loss_curves({r.label: [r.initial_loss, *r.losses] for r in runs}, baseline=runs[0].label,
                                         start=0,
                                         title=TITLES[name], ylabel="average training loss (cross-entropy)",
                                         ax_note=_note(runs))
            written.append(save(plots, fig, args.out, f"experiment_{name}.png"))
    if written:
        emit("")
        emit(f"figures written to {os.path.abspath(args.out)}: " + ", ".join(os.path.basename(p) for p in written))
    sys.stdout.flush()
    return 0
