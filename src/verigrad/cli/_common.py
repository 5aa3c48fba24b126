"""Shared pieces of the ``verigrad`` command line: model/data specs, output helpers.

Everything that needs another verigrad subpackage imports it inside the function, so
``verigrad --help`` works even when an optional part (matplotlib, rich, scikit-learn)
is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "sigmoid", "leaky_relu", "identity")
LOSSES: tuple[str, ...] = ("ce", "mse", "bce")
DATASETS: tuple[str, ...] = ("blobs", "moons", "spirals", "quadratic", "digits")
DTYPES: tuple[str, ...] = ("float32", "float64")

#: datasets whose targets are real numbers (regression); the rest are classification
REGRESSION_DATASETS: frozenset[str] = frozenset({"quadratic"})


class UsageError(Exception):
    """Bad command-line usage detected after parsing (reported with exit code 2)."""


class CLIArgumentParser(argparse.ArgumentParser):
    """ArgumentParser whose errors name the valid choices and exit with code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n(run '{self.prog} --help' for all options)\n")


def layer_sizes(text: str) -> list[int]:
    """Parse a layer spec such as ``"2-16-2"`` into ``[2, 16, 2]``.

    Parameters
    ----------
    text : str
        Positive integers joined by ``-`` (or ``,``/``x``), at least two of them: the
        input width, any hidden widths and the output width.

    Returns
    -------
    list of int

    Raises
    ------
    argparse.ArgumentTypeError
        With a message naming the spec received and the expected form.
    """
    raw = str(text).strip()
    for sep in (",", "x"):
        raw = raw.replace(sep, "-")
    parts = [p for p in raw.split("-")]
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid layer spec {text!r}: expected widths joined by '-', e.g. 2-16-2 (input-hidden-output)"
        ) from None
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(
            f"invalid layer spec {text!r}: need at least an input and an output width, e.g. 2-16-2"
        )
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(f"invalid layer spec {text!r}: every width must be a positive integer")
    return sizes


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


# ----------------------------------------------------------------------------------------------
# output


def emit(text: str = "", file: TextIO | None = None) -> None:
    """Print one block of text (CLI code is the only place verigrad prints)."""
    print(text, file=file or sys.stdout, flush=True)


def emit_report(report: Any) -> None:
    """Print a checker report: rich rendering on a wide terminal with rich installed, plain text otherwise."""
    from verigrad import display

    stream = sys.stdout
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    if is_tty and display.rich_available() and hasattr(report, "__rich__"):
        from rich.console import Console

        console = Console(file=stream)
        if console.width >= 100:  # narrower terminals would truncate the numbers: plain text instead
            console.print(report)
            return
    emit(str(report))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """Print a table: a rich table when rich is installed, aligned plain text otherwise.

    Cells are formatted here (4 decimals or 3 significant digits in scientific notation), then
    handed to :func:`verigrad.display.print_table`.
    """
    from verigrad import display

    cells = [[_fmt_cell(c) for c in row] for row in rows]
    align = ["right" if all(_numeric(r[j]) for r in cells) and cells else "left" for j in range(len(headers))]
    display.print_table(cells, [str(h) for h in headers], title=title, align=align)


def _fmt_cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v == 0.0 or (1e-3 <= abs(v) < 1e5):
            return f"{v:.4f}"
        return f"{v:.3e}"
    return str(value)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_plots() -> Any | None:
    """Return the :mod:`verigrad.plots` module, or ``None`` when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from verigrad import plots
    except ImportError:
        return None
    return plots


NO_MATPLOTLIB = "matplotlib is not installed: skipping the plots (pip install 'verigrad[plot]' to get them)."


def save(plots: Any, fig: Any, out_dir: str, name: str) -> str:
    """Save ``fig`` as ``out_dir/name`` and release its memory; return the path."""
    path = plots.save_figure(fig, os.path.join(out_dir, name))
    fig.clf()
    return path


# ----------------------------------------------------------------------------------------------
# model, loss and data specs


def dtype_of(name: str) -> type:
    """``"float32"`` / ``"float64"`` to the NumPy dtype."""
    if name not in DTYPES:
        raise UsageError(f"--dtype: invalid choice {name!r} (choose from {', '.join(DTYPES)})")
    return np.float32 if name == "float32" else np.float64


def make_activation(name: str) -> Any:
    """A fresh activation layer from its CLI name."""
    from verigrad import nn

    table = {
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "leaky_relu": nn.LeakyReLU,
        "identity": nn.Identity,
    }
    if name not in table:
        raise UsageError(f"--activation: invalid choice {name!r} (choose from {', '.join(ACTIVATIONS)})")
    return table[name]()


def build_model(sizes: Sequence[int], activation: str, seed: int, dtype: type = np.float64) -> Any:
    """An MLP ``Dense - act - Dense - ... - Dense`` (no activation after the last layer).

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, e.g. ``[2, 16, 2]``.
    activation : str
        One of :data:`ACTIVATIONS`, used between the Dense layers.
    seed : int
        Seed of the ``np.random.Generator`` that draws one seed per Dense layer.
    dtype : numpy dtype, default float64
        Parameter dtype of every Dense layer.

    Returns
    -------
    verigrad.nn.NeuralNetwork
    """
    from verigrad import nn

    rng = np.random.default_rng(seed)
    layers: list[Any] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Dense(int(n_in), int(n_out), seed=int(rng.integers(0, 2**31 - 1)), dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(make_activation(activation))
    return nn.NeuralNetwork(layers)


def make_loss(name: str) -> Any:
    """The loss object for a CLI loss name (``bce`` uses the fused, stable logits form)."""
    from verigrad import nn

    if name == "ce":
        return nn.CrossEntropyLoss()
    if name == "mse":
        return nn.MSELoss()
    if name == "bce":
        return nn.BCEWithLogitsLoss()
    raise UsageError(f"--loss: invalid choice {name!r} (choose from {', '.join(LOSSES)})")


def load_dataset(name: str, n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate (or load) a dataset by CLI name.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Integer labels, or real targets of shape (n_samples, 1) for ``quadratic``.
    """
    from verigrad import data

    if name == "blobs":
        return data.make_blobs(n_samples, seed=seed)
    if name == "moons":
        return data.make_moons(n_samples, seed=seed)
    if name == "spirals":
        return data.make_spirals(n_samples, seed=seed)
    if name == "quadratic":
        return data.make_quadratic(n_samples, seed=seed)
    if name == "digits":
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise UsageError(
                "--dataset digits needs scikit-learn (its bundled 8x8 digits): pip install 'verigrad[digits]'"
            ) from None
        X, y = data.load_digits()
        return X, y
    raise UsageError(f"--dataset: invalid choice {name!r} (choose from {', '.join(DATASETS)})")


def targets_for_loss(y: np.ndarray, loss: str, n_out: int, dataset: str) -> np.ndarray:
    """Convert dataset targets to what the loss expects.

    ``ce``: integer labels of shape (n,); ``bce``: float 0/1 of shape (n, 1) (binary only);
    ``mse``: one-hot rows of shape (n, n_out) for classification, real targets otherwise.
    """
    y = np.asarray(y)
    regression = dataset in REGRESSION_DATASETS
    if loss in ("ce", "bce") and regression:
        raise UsageError(f"--dataset {dataset} is a regression data set: use --loss mse (got --loss {loss})")
    if loss == "ce":
        labels = y.reshape(-1).astype(np.int64)
        if labels.max(initial=0) >= n_out:
            raise UsageError(
                f"--layers: the output width {n_out} is too small for {dataset} with {labels.max() + 1} classes"
            )
        return labels
    if loss == "bce":
        labels = y.reshape(-1).astype(np.int64)
        if labels.max(initial=0) > 1:
            raise UsageError(f"--loss bce needs two classes; {dataset} has {labels.max() + 1} (use --loss ce)")
        if n_out != 1:
            raise UsageError(f"--loss bce needs one output unit: end --layers with 1 (got output width {n_out})")
        return labels.reshape(-1, 1).astype(np.float64)
    if regression:
        t = y.reshape(len(y), -1).astype(np.float64)
        if t.shape[1] != n_out:
            raise UsageError(f"--layers: output width {n_out} does not match the {t.shape[1]} target column(s)")
        return t
    labels = y.reshape(-1).astype(np.int64)
    if labels.max(initial=0) >= n_out:
        raise UsageError(f"--layers: the output width {n_out} is too small for {labels.max() + 1} classes")
    onehot = np.zeros((labels.size, n_out))
    onehot[np.arange(labels.size), labels] = 1.0
    return onehot


def check_input_width(sizes: Sequence[int], X: np.ndarray, dataset: str) -> None:
    """Raise a UsageError when the first layer width does not match the data."""
    if sizes[0] != X.shape[1]:
        spec = "-".join(str(s) for s in [X.shape[1], *sizes[1:]])
        raise UsageError(
            f"--layers: input width {sizes[0]} does not match {dataset} ({X.shape[1]} features); try --layers {spec}"
        )
