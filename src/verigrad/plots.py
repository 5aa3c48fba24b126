"""Matplotlib figures for verigrad (optional extra: ``pip install verigrad[plot]``).

Every function here is pure: it takes arrays (or History-like objects) and returns a
:class:`matplotlib.figure.Figure` built without pyplot, so nothing is shown, no global
state is touched and the non-interactive Agg canvas is used when saving. Use
:func:`save_figure` to write a PNG of a known pixel size (``figsize * dpi``, no tight
cropping), e.g. the default ``(6.4, 4.8)`` inches at 100 dpi gives 640 x 480 pixels.

Figures
-------
plot_loss_curves        one or more loss curves against the epoch (baseline highlighted)
plot_history            a History's loss (and validation loss / metrics when present)
plot_decision_boundary  a 2-D classifier's decision regions with the data on top
plot_grad_norms         per-parameter gradient norms over training (log scale)
plot_layer_norms        gradient norm per layer for several networks (vanishing / exploding)
plot_error_heatmap      analytic vs numerical gradient and the per-entry error of a check
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

__all__ = [
    "DEFAULT_DPI",
    "DEFAULT_FIGSIZE",
    "history_curves",
    "plot_decision_boundary",
    "plot_error_heatmap",
    "plot_grad_norms",
    "plot_history",
    "plot_layer_norms",
    "plot_loss_curves",
    "save_figure",
]

DEFAULT_FIGSIZE: tuple[float, float] = (6.4, 4.8)
DEFAULT_DPI: int = 100

_BASELINE_STYLE = {"color": "black", "linewidth": 2.4, "linestyle": "--"}

#: loss curves are drawn up to CLIP_FACTOR times the median first value of the curves
CLIP_FACTOR = 1e4


def _new_figure(figsize: tuple[float, float] | None = None) -> Figure:
    fig = Figure(figsize=figsize or DEFAULT_FIGSIZE, dpi=DEFAULT_DPI)
    return fig


def _as_1d(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of numbers, got an array of shape {arr.shape}")
    return arr


def _finite_positive(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return finite.size > 0 and bool(np.all(finite > 0))


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = DEFAULT_DPI) -> str:
    """Save ``fig`` as a PNG of exactly ``figsize * dpi`` pixels and return the path.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to save (from any function in this module).
    path : str or path-like
        Destination file; its parent directory is created if needed.
    dpi : int, default 100
        Dots per inch; the PNG is ``round(width_in * dpi) x round(height_in * dpi)`` pixels.

    Returns
    -------
    str
        The path written.
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    if int(dpi) <= 0:
        raise ValueError(f"dpi: expected a positive integer, got {dpi!r}")
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fig.savefig(path, dpi=int(dpi), format="png")
    return path


def _display_cap(arrays: Sequence[np.ndarray]) -> float:
    """``CLIP_FACTOR`` times the median of the curves' first finite values (inf when there is none)."""
    firsts = [float(y[np.isfinite(y)][0]) for y in arrays if np.isfinite(y).any()]
    ref = float(np.median(np.abs(firsts))) if firsts else 0.0
    return ref * CLIP_FACTOR if ref > 0 else float("inf")


def _as_curve_mapping(curves: Any) -> Mapping[str, Sequence[float]]:
    """``{label: losses}`` from a mapping, a History-like object or one sequence of losses."""
    if isinstance(curves, Mapping):
        out: Mapping[str, Sequence[float]] = curves
    elif isinstance(getattr(curves, "loss", None), (list, tuple, np.ndarray)):
        out = {"train": curves.loss}
        if len(getattr(curves, "val_loss", None) or []) > 0:
            out["validation"] = curves.val_loss
    elif isinstance(curves, (list, tuple, np.ndarray)) and not isinstance(curves, str):
        out = {"loss": curves}
    else:
        raise TypeError("curves: expected a mapping {label: sequence of losses}, a sequence of losses "
                        f"or a History, got {type(curves).__name__}")
    if len(out) == 0:
        raise ValueError("curves: expected at least one curve, got an empty mapping")
    return out


def plot_loss_curves(
    curves: Mapping[str, Sequence[float]] | Sequence[float] | Any,
    *,
    baseline: str | None = None,
    title: str = "Training loss",
    xlabel: str = "epoch",
    ylabel: str = "average training loss",
    logy: bool | None = None,
    ax_note: str | None = None,
    start: int = 1,
) -> Figure:
    """Plot several loss curves (one per label) against the epoch.

    Parameters
    ----------
    curves : mapping of str to sequence of float, sequence of float, or History
        ``{label: losses}``; ``losses[k]`` is the loss after epoch ``k + 1``. A plain sequence
        is one curve labelled "loss"; a :class:`verigrad.train.History` (anything with a
        ``loss`` list) gives "train" and, when recorded, "validation" curves. Curves may
        have different lengths; non-finite values (a diverged run) end the drawn line and
        are marked with an ``x`` at the last finite point. Values above ``CLIP_FACTOR`` (1e4)
        times the median first value of the curves are drawn at that cap with a ``^``.
    baseline : str, optional
        Label of the reference curve, drawn thick, black and dashed.
    title, xlabel, ylabel : str
        Figure title and axis labels.
    logy : bool, optional
        Log-scale y axis. Default: automatic (used when all finite values are positive
        and span more than two decades).
    ax_note : str, optional
        A short text drawn in the upper right corner of the axes (e.g. a verdict).
    start : int, default 1
        Epoch number of the first value (0 when the curves begin with the loss before training).

    Returns
    -------
    matplotlib.figure.Figure
    """
    curves = _as_curve_mapping(curves)
    if baseline is not None and baseline not in curves:
        raise ValueError(f"baseline: {baseline!r} is not one of the curve labels {list(curves)}")
    arrays = {label: _as_1d(f"curves[{label!r}]", values) for label, values in curves.items()}
    # a run that blows up (loss 1e100 before inf) would squash every other curve and overflow the
    # tick computation: values above `cap` are drawn at the cap with an upward triangle
    cap = _display_cap(list(arrays.values()))
    fig = _new_figure()
    ax = fig.subplots()
    all_finite: list[np.ndarray] = []
    clipped_any = False
    for label, y in arrays.items():
        epochs = np.arange(start, start + y.size)
        finite = np.isfinite(y)
        n_ok = y.size if finite.all() else int(np.argmin(finite))
        shown_y = np.minimum(y[:n_ok], cap)
        style = dict(_BASELINE_STYLE) if label == baseline else {"linewidth": 1.8}
        shown = f"{label} (baseline)" if label == baseline else str(label)
        if n_ok < y.size:
            shown += ": diverged"
        (line,) = ax.plot(epochs[:n_ok], shown_y, label=shown, **style)
        over = y[:n_ok] > cap
        if over.any():
            clipped_any = True
            ax.plot(epochs[:n_ok][over], shown_y[over], "^", color=line.get_color(), markersize=7)
        if n_ok < y.size and n_ok > 0:
            ax.plot(epochs[n_ok - 1], shown_y[-1], "x", color=line.get_color(), markersize=10)
        all_finite.append(shown_y)
    values = np.concatenate(all_finite) if all_finite else np.zeros(0)
    if logy is None:
        logy = _finite_positive(values) and values.max() / max(values.min(), 1e-300) > 100.0
    if logy and _finite_positive(values):
        ax.set_yscale("log")
    if clipped_any:
        note = f"^: loss above {cap:.2g}, drawn at the top"
        ax_note = f"{ax_note}\n{note}" if ax_note else note
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    if ax_note:
        ax.text(0.98, 0.98, ax_note, transform=ax.transAxes, ha="right", va="top", fontsize="small",
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})
    fig.tight_layout()
    return fig


def history_curves(history: Any) -> dict[str, list[float]]:
    """Extract the plottable per-epoch series of a History-like object.

    Parameters
    ----------
    history : History, mapping or sequence
        ``verigrad.train.History`` (attributes ``loss``, optionally ``val_loss``,
        ``metrics`` and ``val_metrics``), a mapping ``{name: sequence}``, or a plain sequence of losses.

    Returns
    -------
    dict of str to list of float
        ``"loss"`` always; ``"val_loss"`` and ``"<metric>"`` / ``"val_<metric>"`` when present.
    """
    out: dict[str, list[float]] = {}
    if isinstance(history, Mapping):
        for key, val in history.items():
            if isinstance(val, Mapping):
                for k2, v2 in val.items():
                    out[str(k2)] = [float(v) for v in np.asarray(v2, dtype=float).ravel()]
            else:
                out[str(key)] = [float(v) for v in np.asarray(val, dtype=float).ravel()]
        if "loss" not in out:
            raise ValueError(f"history: mapping has no 'loss' entry (keys: {list(history)})")
        return out
    if isinstance(history, (list, tuple, np.ndarray)):
        return {"loss": [float(v) for v in np.asarray(history, dtype=float).ravel()]}
    if not hasattr(history, "loss"):
        raise TypeError(f"history: expected a History (with .loss), a mapping or a sequence, got {type(history).__name__}")
    out["loss"] = [float(v) for v in np.asarray(history.loss, dtype=float).ravel()]
    for attr in ("val_loss",):
        val = getattr(history, attr, None)
        if val is not None and len(val) > 0:
            out[attr] = [float(v) for v in np.asarray(val, dtype=float).ravel()]
    for attr, prefix in (("metrics", ""), ("val_metrics", "val_")):
        metrics = getattr(history, attr, None)
        if isinstance(metrics, Mapping):
            for key, val in metrics.items():
                if val is not None and len(val) > 0 and np.ndim(val) == 1:
                    out[prefix + str(key)] = [float(v) for v in np.asarray(val, dtype=float)]
    return out


def plot_history(history: Any, *, title: str = "Training history") -> Figure:
    """Plot a History's loss per epoch (left) and its metrics such as accuracy (right).

    Parameters
    ----------
    history : History, mapping or sequence
        See :func:`history_curves`.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes (loss) when there are no metrics, two side by side otherwise.
    """
    series = history_curves(history)
    loss_keys = [k for k in series if k == "loss" or k.endswith("loss")]
    metric_keys = [k for k in series if k not in loss_keys]
    fig = _new_figure((9.6, 4.8) if metric_keys else None)
    axes = fig.subplots(1, 2 if metric_keys else 1, squeeze=False)[0]
    ax = axes[0]
    cap = _display_cap([np.asarray(series[k], dtype=float) for k in loss_keys])
    clipped = False
    shown_values = []
    for key in loss_keys:
        y = np.asarray(series[key], dtype=float)
        shown = np.where(np.isfinite(y), np.minimum(y, cap), np.nan)
        (line,) = ax.plot(np.arange(1, y.size + 1), shown, label=_series_label(key), linewidth=1.8)
        over = np.isfinite(y) & (y > cap)
        if over.any():
            clipped = True
            ax.plot(np.arange(1, y.size + 1)[over], shown[over], "^", color=line.get_color(), markersize=7)
        shown_values.append(shown)
    if clipped:
        ax.text(0.98, 0.02, f"^: loss above {cap:.2g}, drawn at the top", transform=ax.transAxes, ha="right",
                va="bottom", fontsize="small")
    loss_values = np.concatenate(shown_values)
    loss_values = loss_values[np.isfinite(loss_values)]
    if _finite_positive(loss_values) and loss_values.max() > 1e3 * loss_values.min():
        ax.set_yscale("log")  # e.g. a diverging run: a linear axis would flatten everything else
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.set_title("Loss")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    if metric_keys:
        ax2 = axes[1]
        for key in metric_keys:
            y = np.asarray(series[key], dtype=float)
            ax2.plot(np.arange(1, y.size + 1), y, label=_series_label(key), linewidth=1.8)
        ax2.set_xlabel("epoch")
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.set_ylabel("metric value")
        ax2.set_title("Metrics")
        ax2.grid(True, alpha=0.3)
        ax2.legend(loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _series_label(key: str) -> str:
    """``loss`` -> ``training loss``, ``val_accuracy`` -> ``validation accuracy``."""
    if key.startswith("val_"):
        return "validation " + key[4:].replace("_", " ")
    return "training " + key.replace("_", " ")


def plot_decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    *,
    title: str = "Decision boundary",
    resolution: int = 200,
    padding: float = 0.5,
    threshold: float = 0.5,
    feature_names: tuple[str, str] = ("$x_1$", "$x_2$"),
) -> Figure:
    """Draw the decision regions of a 2-D classifier with the data on top.

    Parameters
    ----------
    predict : callable
        ``predict(G)`` with ``G`` of shape ``(m, 2)`` returns either labels of shape
        ``(m,)`` or scores of shape ``(m, n_classes)`` (argmax is taken) or ``(m, 1)``
        (probabilities, thresholded at ``threshold``).
    X : ndarray of shape (n_samples, 2)
        The data points.
    y : ndarray of shape (n_samples,)
        Integer class labels (one-hot rows of shape ``(n_samples, n_classes)`` accepted).
    title : str
        Figure title.
    resolution : int, default 200
        Grid points per axis.
    padding : float, default 0.5
        Margin added around the data range.
    threshold : float, default 0.5
        Threshold for single-column scores.
    feature_names : tuple of str
        Axis labels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X: expected shape (n_samples, 2) for a 2-D decision boundary, got {X.shape}")
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1)
    if labels.shape[0] != X.shape[0]:
        raise ValueError(f"y: expected {X.shape[0]} labels to match X, got {labels.shape[0]}")
    if int(resolution) < 2:
        raise ValueError(f"resolution: expected an integer >= 2, got {resolution!r}")
    labels = np.rint(labels).astype(int)
    x_min, x_max = X[:, 0].min() - padding, X[:, 0].max() + padding
    y_min, y_max = X[:, 1].min() - padding, X[:, 1].max() + padding
    gx, gy = np.meshgrid(np.linspace(x_min, x_max, resolution), np.linspace(y_min, y_max, resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    scores = np.asarray(predict(grid))
    if scores.ndim == 2 and scores.shape[1] > 1:
        pred = scores.argmax(axis=1)
    elif scores.ndim == 2 and scores.shape[1] == 1:
        pred = (scores[:, 0] > threshold).astype(int)
    elif scores.ndim == 1:
        pred = np.rint(scores).astype(int)
    else:
        raise ValueError(f"predict: returned an array of shape {scores.shape}; expected (m,), (m, 1) or (m, n_classes)")
    if pred.shape[0] != grid.shape[0]:
        raise ValueError(f"predict: returned {pred.shape[0]} rows for {grid.shape[0]} grid points")
    n_classes = int(max(pred.max(initial=0), labels.max(initial=0))) + 1
    cmap = "tab10" if n_classes <= 10 else "tab20"
    fig = _new_figure()
    ax = fig.subplots()
    ax.contourf(gx, gy, pred.reshape(gx.shape), levels=np.arange(n_classes + 1) - 0.5, cmap=cmap,
                vmin=-0.5, vmax=9.5 if n_classes <= 10 else 19.5, alpha=0.25)
    ax.contour(gx, gy, pred.reshape(gx.shape), levels=np.arange(n_classes) + 0.5, colors="k", linewidths=0.8)
    colors = matplotlib.colormaps[cmap]
    for c in np.unique(labels):
        mask = labels == c
        ax.scatter(X[mask, 0], X[mask, 1], s=14, color=colors(int(c) % colors.N), edgecolor="k",
                   linewidth=0.3, label=f"class {int(c)}")
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(y_min, y_max)
    ax.set_xlabel(feature_names[0])
    ax.set_ylabel(feature_names[1])
    ax.set_title(title)
    ax.legend(loc="best", fontsize="small", title="data (regions: prediction)", title_fontsize="small")
    fig.tight_layout()
    return fig


def _norm_series(grad_norms: Any) -> dict[str, np.ndarray]:
    if isinstance(grad_norms, Mapping):
        out = {str(k): _as_1d(f"grad_norms[{k!r}]", v) for k, v in grad_norms.items()}
    elif isinstance(grad_norms, Sequence) and grad_norms and isinstance(grad_norms[0], Mapping):
        keys = list(grad_norms[0])
        out = {str(k): np.array([float(step[k]) for step in grad_norms]) for k in keys}
    else:
        raise TypeError("grad_norms: expected {name: sequence of norms} or a sequence of {name: norm} dicts, "
                        f"got {type(grad_norms).__name__}")
    if not out:
        raise ValueError("grad_norms: no series to plot (empty)")
    return out


def plot_grad_norms(
    grad_norms: Any,
    *,
    title: str = "Gradient norm per parameter during training",
    xlabel: str = "training step",
    legend_title: str = "parameter",
) -> Figure:
    """Plot the L2 norm of each parameter's gradient over training (log y axis).

    Parameters
    ----------
    grad_norms : mapping of str to sequence of float, or sequence of mappings
        ``{"W_0": [||dL/dW_0|| at step 1, ...], ...}`` (History.grad_norms), or one
        ``{name: norm}`` dict per step.
    title, xlabel : str
        Figure title and x-axis label (``"epoch"`` when norms are recorded per epoch).
    legend_title : str
        Title of the legend (``"layer"`` for per-layer norms). Bias series (names starting with
        ``b``) are dotted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    series = _norm_series(grad_norms)
    fig = _new_figure()
    ax = fig.subplots()
    all_vals = []
    for name, vals in series.items():
        steps = np.arange(1, vals.size + 1)
        style = ":" if name.startswith("b") else "-"
        ax.plot(steps, vals, style, label=name, linewidth=1.4)
        all_vals.append(vals)
    values = np.concatenate(all_vals)
    if _finite_positive(values):
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(r"$\|\partial L / \partial \theta\|_2$" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.set_title(title)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small", ncol=2 if len(series) > 4 else 1, title=legend_title)
    fig.tight_layout()
    return fig


def plot_layer_norms(
    norms: Mapping[str, Sequence[float]],
    *,
    layer_labels: Sequence[str] | None = None,
    title: str = "Gradient norm by layer",
    ylabel: str = r"$\|\partial L / \partial W_\ell\|_2$",
) -> Figure:
    """Grouped bars: the gradient norm of each layer, one group of bars per network.

    Shows vanishing (norms shrinking towards the input) and exploding (growing) gradients.

    Parameters
    ----------
    norms : mapping of str to sequence of float
        ``{network label: [norm of layer 1, ..., norm of layer L]}``, all the same length.
    layer_labels : sequence of str, optional
        Tick labels for the layers; default ``"layer 1"`` ... ``"layer L"``.
    title, ylabel : str
        Title and y-axis label. The y axis is logarithmic.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(norms, Mapping) or not norms:
        raise ValueError("norms: expected a non-empty mapping {label: sequence of per-layer norms}")
    arrays = {str(k): _as_1d(f"norms[{k!r}]", v) for k, v in norms.items()}
    lengths = {a.size for a in arrays.values()}
    if len(lengths) != 1:
        raise ValueError(f"norms: every network needs the same number of layers, got lengths {sorted(lengths)}")
    n_layers = lengths.pop()
    if layer_labels is None:
        layer_labels = [f"layer {i + 1}" for i in range(n_layers)]
    if len(layer_labels) != n_layers:
        raise ValueError(f"layer_labels: expected {n_layers} labels, got {len(layer_labels)}")
    fig = _new_figure()
    ax = fig.subplots()
    width = 0.8 / len(arrays)
    x = np.arange(n_layers)
    floor = 1e-300
    for i, (label, vals) in enumerate(arrays.items()):
        ax.bar(x + (i - (len(arrays) - 1) / 2) * width, np.maximum(vals, floor), width, label=label)
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(layer_labels)
    ax.set_xlabel("layer (input side on the left)")
    ax.set_ylabel(ylabel + " (log scale)")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def _as_matrix(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 0:
        return arr.reshape(1, 1)
    if arr.ndim == 1:
        return arr.reshape(1, -1)
    if arr.ndim == 2:
        return arr
    return arr.reshape(arr.shape[0], -1)


def plot_error_heatmap(
    analytic: np.ndarray,
    numerical: np.ndarray,
    *,
    name: str = "parameter",
    title: str | None = None,
    note: str | None = None,
    worst: Sequence[int] | None = None,
) -> Figure:
    """Heatmaps of the analytic gradient, the numerical gradient and their per-entry error.

    Parameters
    ----------
    analytic : ndarray
        The gradient from backpropagation, any shape (1-D shown as one row, >2-D flattened
        after the first axis).
    numerical : ndarray
        The finite-difference gradient, same shape as ``analytic``; NaN marks entries that
        were not evaluated (drawn blank).
    name : str
        Parameter name used in the panel titles, e.g. ``"W_0"``.
    title : str, optional
        Figure title; default ``"Gradient check of <name>"``.
    note : str, optional
        A line drawn under the title (e.g. the checker's diagnosis).
    worst : sequence of int, optional
        Index (in ``analytic``'s shape) of the entry to box, e.g. the checker's
        ``report.worst.index``; default the entry with the largest ``|analytic - numerical|``.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels: analytic, numerical (shared colour scale) and
        ``|analytic - numerical|`` (log colour scale), worst entry boxed in red.
    """
    a = np.asarray(analytic, dtype=float)
    n = np.asarray(numerical, dtype=float)
    if a.shape != n.shape:
        raise ValueError(f"numerical: expected the same shape as analytic {a.shape}, got {n.shape}")
    if a.size == 0:
        raise ValueError("analytic: empty array, nothing to plot")
    A, N = _as_matrix(a), _as_matrix(n)
    # entries the checker did not evaluate (sample / fast modes) are NaN: drawn blank (masked)
    with np.errstate(invalid="ignore"):
        err = np.ma.masked_invalid(np.abs(A - N))
    rows, cols = A.shape
    wide = cols > 2 * rows
    fig = _new_figure((8.0, 7.2) if wide else (12.0, 4.8))
    axes = fig.subplots(3, 1) if wide else fig.subplots(1, 3)
    aspect = "auto"
    for ax, data, label in ((axes[0], A, "analytic (backprop)"), (axes[1], N, "numerical (finite differences)")):
        # each panel has its own symmetric colour scale: a scale bug shows the same picture
        # with a different colour bar, a sign bug the inverted picture, a transpose a different one
        shown = np.ma.masked_invalid(data)
        finite = np.abs(data[np.isfinite(data)])
        vmax = float(max(finite.max(), 1e-300)) if finite.size else 1.0
        im = ax.imshow(shown, cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect=aspect, interpolation="nearest")
        ax.set_title(f"{label}: $\\partial L/\\partial {_tex_name(name)}$", fontsize="medium")
        fig.colorbar(im, ax=ax, shrink=0.9, label="gradient value")
    valid = err.compressed()
    positive = valid[valid > 0]
    if positive.size:
        top = float(positive.max())
        # zeros (exact agreement) are drawn at the bottom `lo`; the largest error always at the top
        lo = max(min(float(positive.min()), top * 1e-3), top * 1e-12, 1e-300)
        hi = top
        im = axes[2].imshow(np.ma.maximum(err, lo), cmap="magma", norm=LogNorm(vmin=lo, vmax=hi),
                            aspect=aspect, interpolation="nearest")
    else:
        im = axes[2].imshow(err, cmap="magma", vmin=0.0, vmax=1.0, aspect=aspect, interpolation="nearest")
    fig.colorbar(im, ax=axes[2], shrink=0.9, label="|analytic - numerical|")
    worst_idx: tuple[int, ...] | None
    if worst is None:
        if valid.size:
            flat_err = np.where(np.isfinite(a - n), np.abs(a - n), -np.inf) if a.ndim else np.abs(a - n)
            worst_idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(flat_err)), a.shape))
        else:
            worst_idx = None
        label = "largest error"
    else:
        worst_idx = tuple(int(i) for i in worst)
        if len(worst_idx) != a.ndim or any(not 0 <= i < d for i, d in zip(worst_idx, a.shape)):
            raise ValueError(f"worst: index {worst_idx} is not inside the gradient's shape {a.shape}")
        label = "worst entry"
    if worst_idx is not None:
        flat = int(np.ravel_multi_index(worst_idx, a.shape)) if a.ndim else 0
        r, c = np.unravel_index(flat, err.shape)
        axes[2].add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        axes[2].set_title(f"per-entry |analytic - numerical| ({label} boxed: {worst_idx})", fontsize="medium")
    else:
        axes[2].set_title("per-entry |analytic - numerical| (no entry evaluated)", fontsize="medium")
    for ax in axes:
        ax.set_xlabel("column index" if a.ndim >= 2 else "entry index")
        ax.set_ylabel("row index" if a.ndim >= 2 else "")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if rows == 1:
            ax.set_yticks([0])
    heading = title or f"Gradient check of {name}"
    if note:
        heading = f"{heading}\n{note}"
    fig.suptitle(heading)
    fig.tight_layout()
    return fig


def _tex_name(name: str) -> str:
    if "_" in name:
        base, _, sub = name.partition("_")
        return f"{base}_{{{sub}}}"
    return name
