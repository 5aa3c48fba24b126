"""``verigrad train``: train an MLP on a data set; report train and held-out accuracy."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from typing import Any

import numpy as np

from verigrad.cli._common import (
    ACTIVATIONS,
    DATASETS,
    LOSSES,
    NO_MATPLOTLIB,
    REGRESSION_DATASETS,
    UsageError,
    build_model,
    check_input_width,
    emit,
    layer_sizes,
    load_dataset,
    load_plots,
    make_loss,
    positive_float,
    positive_int,
    print_table,
    save,
    targets_for_loss,
)

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")

#: per-data-set defaults, used for every option not given on the command line
DEFAULTS: dict[str, dict[str, Any]] = {
    "blobs": {"layers": [2, 16, 2], "activation": "relu", "loss": "ce", "optimizer": "sgd", "lr": 0.1,
              "epochs": 30, "batch": 32, "n_samples": 400},
    "moons": {"layers": [2, 32, 2], "activation": "tanh", "loss": "ce", "optimizer": "adam", "lr": 0.02,
              "epochs": 60, "batch": 32, "n_samples": 400},
    "spirals": {"layers": [2, 64, 64, 3], "activation": "tanh", "loss": "ce", "optimizer": "adam", "lr": 0.005,
                "epochs": 150, "batch": 32, "n_samples": 600},
    "quadratic": {"layers": [2, 16, 1], "activation": "tanh", "loss": "mse", "optimizer": "adam", "lr": 0.02,
                  "epochs": 100, "batch": 16, "n_samples": 200},
    "digits": {"layers": [64, 32, 10], "activation": "relu", "loss": "ce", "optimizer": "adam", "lr": 0.005,
               "epochs": 40, "batch": 32, "n_samples": 0},
}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register the ``train`` subcommand."""
    lines = []
    for name, d in DEFAULTS.items():
        spec = "-".join(str(s) for s in d["layers"])
        lines.append(f"  {name:<10} {spec} {d['activation']}, {d['loss']}, {d['optimizer']} lr {d['lr']:g}, "
                     f"{d['epochs']} epochs, batch {d['batch']}")
    p = sub.add_parser(
        "train",
        help="train an MLP on a data set; train and held-out accuracy; save the model and plots",
        description=textwrap.fill(
            "Train an MLP with verigrad (progress bar with the running loss), then print a table with the "
            "train and held-out accuracy (a random split by train_test_split). Options not given take the "
            "data set's defaults:", width=88) + "\n" + "\n".join(lines),
        epilog="Examples:\n  verigrad train --dataset digits\n  verigrad train --dataset moons --optimizer sgd "
        "--lr 0.5 --epochs 100 --plot out/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", choices=DATASETS, default="blobs", help="data set (default blobs)")
    p.add_argument("--layers", type=layer_sizes, default=None, metavar="SPEC", help="layer widths, e.g. 2-16-2")
    p.add_argument("--activation", choices=ACTIVATIONS, default=None, help="hidden activation")
    p.add_argument("--loss", choices=LOSSES, default=None, help="ce, mse or bce")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="sgd or adam")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0)")
    p.add_argument("--epochs", type=positive_int, default=None, help="passes over the training set")
    p.add_argument("--batch", type=positive_int, default=None, help="mini-batch size")
    p.add_argument("--n-samples", type=positive_int, default=None,
                   help="samples to generate (synthetic data sets; digits always uses its 1797 images)")
    p.add_argument("--test-size", type=float, default=0.25, help="held-out fraction (default 0.25)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, weights and shuffling (default 0)")
    p.add_argument("--save", metavar="PATH", default=None, help="save the trained model (.npz)")
    p.add_argument("--plot", metavar="DIR", default=None,
                   help="write the loss curve (and the decision boundary for 2-D data) into DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(command="train")
    return p


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """The effective settings: command-line values over the data set's defaults."""
    d = dict(DEFAULTS[args.dataset])
    for key in ("layers", "activation", "loss", "optimizer", "lr", "epochs", "batch", "n_samples"):
        value = getattr(args, key)
        if value is not None:
            d[key] = value
    if not 0.0 < args.test_size < 1.0:
        raise UsageError(f"--test-size: expected a fraction strictly between 0 and 1, got {args.test_size}")
    if not 0.0 <= args.momentum < 1.0:
        raise UsageError(f"--momentum: expected a value in [0, 1), got {args.momentum}")
    d["momentum"] = args.momentum
    return d


def make_optimizer(name: str, params: dict[str, np.ndarray], lr: float, momentum: float = 0.0) -> Any:
    """SGD or Adam over the live parameter dict."""
    from verigrad import nn

    if name == "sgd":
        return nn.SGD(params, lr=lr, momentum=momentum)
    if name == "adam":
        return nn.Adam(params, lr=lr)
    raise UsageError(f"--optimizer: invalid choice {name!r} (choose from {', '.join(OPTIMIZERS)})")


def train_model(settings: dict[str, Any], dataset: str, seed: int, test_size: float, progress: bool,
                record_grad_norms: bool = False) -> dict[str, Any]:
    """Load data, split, build, train; return everything the report and the plots need."""
    from verigrad.data import DataLoader, train_test_split
    from verigrad.train import fit

    X, y = load_dataset(dataset, settings["n_samples"], seed)
    check_input_width(settings["layers"], X, dataset)
    targets = targets_for_loss(y, settings["loss"], settings["layers"][-1], dataset)
    X_train, X_test, t_train, t_test = train_test_split(X, targets, test_size=test_size, seed=seed)
    model = build_model(settings["layers"], settings["activation"], seed)
    loss = make_loss(settings["loss"])
    optimizer = make_optimizer(settings["optimizer"], model.params(), settings["lr"], settings.get("momentum", 0.0))
    loader = DataLoader(X_train, t_train, batch_size=settings["batch"], shuffle=True, seed=seed)
    metrics = () if dataset in REGRESSION_DATASETS else ("accuracy",)
    history = fit(model, loss, optimizer, loader, epochs=settings["epochs"], metrics=metrics, progress=progress,
                  record_grad_norms=record_grad_norms, validation_data=(X_test, t_test))
    return {"model": model, "loss": loss, "history": history, "X": X, "y": y,
            "X_train": X_train, "X_test": X_test, "t_train": t_train, "t_test": t_test}


def scores(run: dict[str, Any], dataset: str, loss_name: str) -> list[list[Any]]:
    """Rows ``[split, samples, loss, accuracy or R^2]`` for the final table."""
    from verigrad.train import accuracy

    model, loss = run["model"], run["loss"]
    rows = []
    for split, X, t in (("train", run["X_train"], run["t_train"]), ("held-out", run["X_test"], run["t_test"])):
        with np.errstate(all="ignore"):
            pred = model.forward(X, training=False)
        if not np.all(np.isfinite(pred)):  # a diverged model: no meaningful scores
            rows.append([split, X.shape[0], float("nan"), float("nan")])
            continue
        value = float(loss.forward(pred, t))
        if dataset in REGRESSION_DATASETS:
            resid = np.sum((pred - t) ** 2)
            total = np.sum((t - t.mean(axis=0)) ** 2)
            quality = 1.0 - resid / total if total > 0 else float("nan")
        else:
            threshold = 0.0 if loss_name == "bce" else None  # bce predicts logits
            quality = float(accuracy(pred, _labels(t, loss_name), threshold=threshold))
        rows.append([split, X.shape[0], value, quality])
    return rows


def _labels(t: np.ndarray, loss_name: str) -> np.ndarray:
    if t.ndim == 2 and t.shape[1] > 1:
        return t.argmax(axis=1)
    return t.reshape(-1).astype(np.int64)


def predict_labels(model: Any, loss_name: str) -> Any:
    """A function grid -> class labels for the decision-boundary plot."""

    def predict(G: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = model.forward(G, training=False)
        if out.shape[1] == 1:
            return (out[:, 0] > 0.0).astype(int) if loss_name == "bce" else np.rint(out[:, 0]).astype(int)
        return out.argmax(axis=1)

    return predict


def run(args: argparse.Namespace) -> int:
    """Run ``verigrad train``."""
    s = resolve(args)
    spec = "-".join(str(v) for v in s["layers"])
    mom = f" momentum {s['momentum']:g}" if s["momentum"] else ""
    emit(f"verigrad train: {args.dataset}, {spec} {s['activation']} MLP, loss {s['loss']}, {s['optimizer']} "
         f"lr {s['lr']:g}{mom}, {s['epochs']} epochs, "
         f"batch {s['batch']}, seed {args.seed}")
    result = train_model(s, args.dataset, args.seed, args.test_size, progress=not args.no_progress)
    history = result["history"]
    losses = np.asarray(history.loss, dtype=float)
    diverged = bool(getattr(history, "diverged", False) or not np.all(np.isfinite(losses)))
    if diverged:
        emit("warning: training diverged (the loss became inf/nan): lower --lr")
    elif losses.size > 1 and losses[-1] > 10.0 * losses[0]:
        emit(f"warning: the training loss grew from {losses[0]:.3g} to {losses[-1]:.3g}: training diverged, "
             "lower --lr")
    metric = "R^2" if args.dataset in REGRESSION_DATASETS else "accuracy"
    rows = scores(result, args.dataset, s["loss"])
    print_table(["split", "samples", "loss", metric], rows, title="Final scores")
    if args.save:
        parent = os.path.dirname(args.save)
        if parent:
            os.makedirs(parent, exist_ok=True)
        result["model"].save(args.save)
        emit(f"model saved: {args.save}")
    if args.plot:
        plots = load_plots()
        if plots is None:
            emit(NO_MATPLOTLIB)
        else:
            written = [save(plots, plots.plot_history(history, title=f"Training on {args.dataset}"), args.plot,
                            "training_history.png")]
            if result["X"].shape[1] == 2 and args.dataset not in REGRESSION_DATASETS:
                fig = plots.plot_decision_boundary(predict_labels(result["model"], s["loss"]), result["X"],
                                                   np.asarray(result["y"]).reshape(-1),
                                                   title=f"Decision boundary: {spec} {s['activation']} on {args.dataset}")
                written.append(save(plots, fig, args.plot, "decision_boundary.png"))
            emit("figures written: " + ", ".join(written))
    sys.stdout.flush()
    return 1 if diverged else 0
