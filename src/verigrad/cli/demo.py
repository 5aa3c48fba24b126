"""``verigrad demo``: the whole story in a few seconds, no arguments, no files needed.

1. Train seed 004's 2-16-2 ReLU MLP on two Gaussian blobs (400 points) with SGD (lr 0.1,
   batch 32, 30 epochs), with a progress bar; print the final loss and accuracy.
2. Gradient-check the trained model (``gradient_check``) and each layer (``check_layers``).
3. Check seed 001's hand-written regression MLP (attributes ``W1, b1, W2, b2``, a ``backward``
   returning a dict) with ``check_params``.
4. Break one line of a backward pass on purpose (a Dense layer whose ``dW`` lacks the 1/N)
   and show the checker catching it and saying what is wrong.
5. Write PNGs: loss curve, decision boundary, gradient norms over training, and the per-entry
   error heatmap of the broken check.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from verigrad.cli import bugs
from verigrad.cli._common import NO_MATPLOTLIB, emit, emit_report, load_plots, print_table, save

N_SAMPLES = 400
EPOCHS = 30
BATCH = 32
LR = 0.1


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register the ``demo`` subcommand."""
    p = sub.add_parser(
        "demo",
        help="train, check, break and diagnose: the tour (no arguments needed)",
        description="Train seed 004's 2-16-2 ReLU MLP on two blobs with SGD, gradient-check it, check seed "
        "001's hand-written MLP, then break one line of a backward pass (dW without the 1/N) and show the "
        "checker's diagnosis. Writes PNG figures into --out (default ./verigrad-demo).",
    )
    p.add_argument("--out", metavar="DIR", default="verigrad-demo", help="where to write the PNGs (default ./verigrad-demo)")
    p.add_argument("--seed", type=int, default=0, help="seed for the data, the weights and the shuffling (default 0)")
    p.add_argument("--no-plots", action="store_true", help="do not write figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")
    p.set_defaults(command="demo")
    return p


# ----------------------------------------------------------------------------------------------
# seed 001's hand-written MLP, written the way the seed writes it (with a Generator, not np.random.seed)


class MultilayerPerceptron:
    """Seed 001's regression MLP: ``h = sigmoid(X W1 + b1)``, ``y_hat = h W2 + b2``.

    Loss ``L = (1/N) sum_i 1/2 (y_hat_i - y_i)^2``; :meth:`backward` returns the gradients as a
    dict ``{"W1", "b1", "W2", "b2"}``, exactly like the seed notebook.

    Parameters
    ----------
    input_dim, hidden_dim, output_dim : int
        Widths (seed 001: 2, 5, 1).
    rng : numpy.random.Generator
        Source of the initial weights (Xavier-style normal, biases zero).
    """

    def __init__(self, input_dim: int = 2, hidden_dim: int = 5, output_dim: int = 1,
                 rng: np.random.Generator | None = None) -> None:
        rng = rng if rng is not None else np.random.default_rng(42)
        self.W1 = rng.normal(0, 2 / (input_dim + hidden_dim), (input_dim, hidden_dim))
        self.b1 = np.zeros((1, hidden_dim))
        self.W2 = rng.normal(0, 2 / (hidden_dim + output_dim), (hidden_dim, output_dim))
        self.b2 = np.zeros((1, output_dim))

    @staticmethod
    def sigmoid(z: np.ndarray) -> np.ndarray:
        """Numerically stable logistic function."""
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    def forward(self, X: np.ndarray) -> np.ndarray:
        """``X`` of shape (N, 2) -> ``y_hat`` of shape (N, 1); caches ``X`` and ``H``."""
        self.X = X
        self.Z1 = X @ self.W1 + self.b1
        self.H = self.sigmoid(self.Z1)
        self.y_hat = self.H @ self.W2 + self.b2
        return self.y_hat

    def compute_loss(self, y_hat: np.ndarray, y: np.ndarray) -> float:
        """``(1/N) sum 1/2 (y_hat - y)^2``."""
        return float(np.sum(0.5 * (y_hat - y) ** 2) / y.shape[0])

    def backward(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of the loss of the last forward, by the chain rule (seed 001's derivation)."""
        N = y.shape[0]
        dy_hat = (self.y_hat - y) / N
        dW2 = self.H.T @ dy_hat
        db2 = np.sum(dy_hat, axis=0, keepdims=True)
        dH = dy_hat @ self.W2.T
        dZ1 = dH * self.H * (1 - self.H)
        dW1 = self.X.T @ dZ1
        db1 = np.sum(dZ1, axis=0, keepdims=True)
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def check_seed001(seed: int) -> Any:
    """Check seed 001's hand-written MLP with ``check_params``; return the report."""
    from verigrad.check import check_params
    from verigrad.data import make_quadratic

    X, y = make_quadratic(20, seed=seed)
    mlp = MultilayerPerceptron(rng=np.random.default_rng(seed))
    mlp.forward(X)
    grads = mlp.backward(y)
    params = {"W1": mlp.W1, "b1": mlp.b1, "W2": mlp.W2, "b2": mlp.b2}

    def loss() -> float:
        return mlp.compute_loss(mlp.forward(X), y)

    return check_params(loss, params, grads, seed=seed)


# ----------------------------------------------------------------------------------------------


def seed004_model(seed: int) -> Any:
    """Seed 004's network: 2-16-2, ReLU, weights ``0.1 * N(0, 1)``, biases zero."""
    from verigrad import nn

    rng = np.random.default_rng(seed)
    return nn.NeuralNetwork([
        nn.Dense(2, 16, init="normal", scale=0.1, rng=rng),
        nn.ReLU(),
        nn.Dense(16, 2, init="normal", scale=0.1, rng=rng),
    ])


def _kind(report: Any) -> str:
    diag = getattr(report, "diagnosis", None)
    return str(getattr(diag, "kind", "?")) if diag is not None else "?"


def _diagnosis_line(report: Any) -> str:
    diag = getattr(report, "diagnosis", None)
    if diag is None:
        return "no diagnosis"
    kind = getattr(diag, "kind", "?")
    message = getattr(diag, "message", "")
    return f"{kind}: {message}" if message else str(kind)


def run(args: argparse.Namespace) -> int:
    """Run ``verigrad demo``."""
    from verigrad import nn
    from verigrad.check import check_layers, gradient_check
    from verigrad.data import DataLoader, make_blobs
    from verigrad.train import accuracy, fit

    seed = args.seed
    emit("verigrad demo: train a network, verify its gradients, break one and watch the checker diagnose it")
    emit("")

    # 1. train ---------------------------------------------------------------------------------
    emit(f"1. Training seed 004's 2-16-2 ReLU MLP on make_blobs({N_SAMPLES}) with SGD "
         f"(lr {LR:g}, batch {BATCH}, {EPOCHS} epochs)")
    X, y = make_blobs(N_SAMPLES, seed=seed)
    model = seed004_model(seed)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.SGD(model.params(), lr=LR)
    loader = DataLoader(X, y, batch_size=BATCH, shuffle=True, seed=seed)
    history = fit(model, loss_fn, optimizer, loader, epochs=EPOCHS, metrics=("accuracy",),
                  progress=not args.no_progress, record_grad_norms=True)
    pred = model.forward(X, training=False)
    final_loss = float(loss_fn.forward(pred, y))
    final_acc = float(accuracy(pred, y))
    emit(f"   final loss {final_loss:.4f}, accuracy {final_acc:.3f} on the {N_SAMPLES} training points")
    emit("")

    # 2. check the trained model ---------------------------------------------------------------
    Xb, yb = X[::8], y[::8]  # a batch of 50 points from both classes
    emit(f"2. Gradient check of the trained model on a batch of {Xb.shape[0]} points (every parameter entry)")
    report = gradient_check(model, Xb, yb, loss_fn, seed=seed)
    emit_report(report)
    emit("")
    emit("   Layer by layer (each layer's backward against its own forward):")
    layer_report = check_layers(model, Xb)
    emit_report(layer_report)
    emit("")

    # 3. seed 001 --------------------------------------------------------------------------------
    emit("3. Seed 001's hand-written regression MLP (W1, b1, W2, b2; backward returns a dict), "
         "checked with check_params")
    report001 = check_seed001(seed)
    emit_report(report001)
    emit("")

    # 4. break it on purpose ------------------------------------------------------------------------
    emit("4. Now a bug: one line of the first Dense layer's backward forgets the 1/N of the batch mean")
    emit("       correct:  grads['W'] = x.T @ dz          # dz = dL/dz already carries the 1/N")
    emit("       broken:   grads['W'] = x.T @ (dz * N)    # N = batch size: dW is N times too large")
    broken = nn.NeuralNetwork([bugs.make_buggy_dense(model.layers[0], "missing-1/N"), nn.ReLU(),
                               _copy_dense(model.layers[2])])
    bad = gradient_check(broken, Xb, yb, loss_fn, seed=seed)
    emit_report(bad)
    verdict = "CAUGHT" if not bad.passed else "MISSED"
    emit(f"   {verdict}: {_diagnosis_line(bad)}")
    emit("")

    ok = report.passed and layer_report.passed and report001.passed and not bad.passed
    summary = [
        ["trained 2-16-2 ReLU MLP", "gradient_check", "pass" if report.passed else "FAIL", _kind(report)],
        ["its 3 layers, one by one", "check_layers", "pass" if layer_report.passed else "FAIL",
         "ok" if layer_report.passed else "see above"],
        ["seed 001 hand-written MLP", "check_params", "pass" if report001.passed else "FAIL", _kind(report001)],
        ["dW without 1/N (bug)", "gradient_check", "caught" if not bad.passed else "MISSED",
         f"{_kind(bad)} in {bad.worst.name}" if bad.worst is not None else _kind(bad)],
    ]
    print_table(["what", "how", "result", "diagnosis"], summary, title="Summary")

    # 5. figures ----------------------------------------------------------------------------------
    if not args.no_plots:
        plots = load_plots()
        if plots is None:
            emit(NO_MATPLOTLIB)
        else:
            written = write_figures(plots, args.out, history, model, X, y, bad)
            emit(f"figures written to {os.path.abspath(args.out)}: " + ", ".join(os.path.basename(p) for p in written))
    sys.stdout.flush()
    return 0 if ok else 1


def _copy_dense(dense: Any) -> Any:
    from verigrad import nn

    n_in, n_out = dense.params["W"].shape
    copy = nn.Dense(n_in, n_out, seed=0)
    copy.params["W"][...] = dense.params["W"]
    copy.params["b"][...] = dense.params["b"]
    return copy


def write_figures(plots: Any, out: str, history: Any, model: Any, X: np.ndarray, y: np.ndarray, bad: Any) -> list[str]:
    """The four demo PNGs; returns their paths."""
    written = []
    fig = plots.plot_loss_curves({"SGD lr 0.1": list(history.loss)}, title="Seed 004 MLP: training loss",
                                 ylabel="average training loss (cross-entropy)")
    written.append(save(plots, fig, out, "loss_curve.png"))

    def predict(G: np.ndarray) -> np.ndarray:
        return model.forward(G, training=False)

    fig = plots.plot_decision_boundary(predict, X, y, title="Seed 004 MLP (2-16-2 ReLU): decision boundary")
    written.append(save(plots, fig, out, "decision_boundary.png"))
    by_layer = history.grad_norms_by_layer()
    if by_layer:
        names = {}
        for key in by_layer:
            layer = model.layers[key] if isinstance(key, int) and key < len(model.layers) else None
            shape = getattr(layer, "params", {}).get("W") if layer is not None else None
            names[f"layer {key}" + (f": Dense {shape.shape[0]}→{shape.shape[1]}" if shape is not None else "")] = by_layer[key]
        fig = plots.plot_grad_norms(names, title="Gradient norm per layer during training (mean over each epoch)",
                                    xlabel="epoch", legend_title="layer")
        written.append(save(plots, fig, out, "grad_norms.png"))
    name, analytic, numerical = broken_arrays(bad)
    fig = plots.plot_error_heatmap(analytic, numerical, name=name,
                                   title=f"Broken backward pass (dW without 1/N): check of {name}",
                                   note=_diagnosis_line(bad), worst=bad.worst.worst.index if bad.worst.worst else None)
    written.append(save(plots, fig, out, "broken_check_heatmap.png"))
    return written


def broken_arrays(report: Any) -> tuple[str, np.ndarray, np.ndarray]:
    """``(name, analytic, numerical)`` of the worst parameter of a ModelReport."""
    worst = report.worst
    if worst is None:
        raise ValueError("report: nothing was checked, no arrays to plot")
    return str(worst.name), np.asarray(worst.analytic), np.asarray(worst.numerical)
