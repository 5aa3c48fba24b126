"""Training loop, evaluation and metrics (numeric only: nothing here prints).

Works with any objects that follow the protocols of ``docs/architecture.md`` (duck typing,
no concrete classes):

* model: ``forward(X, training=True) -> pred``, ``backward(dpred)``, ``params()``, ``grads()``
  (dicts of arrays named ``"<key>_<layer index>"`` such as ``W_0``, ``b_0``, ``W_2``);
* loss: ``forward(pred, y) -> float`` and ``backward(pred, y) -> dL/dpred``;
* optimizer: ``step(grads)`` updating the live parameter arrays in place;
* loader: re-iterable of ``(xb, yb)`` mini-batches, e.g. :class:`verigrad.data.DataLoader`.

One training step is ``pred = model.forward(xb)``, ``L = loss.forward(pred, yb)``,
``model.backward(loss.backward(pred, yb))`` (with ``input_grad=False`` when the network accepts it:
training never needs the gradient of the data), ``optimizer.step(model.grads())``.

Contents
--------
fit              train for some epochs, return a :class:`History`
History          per-epoch loss, metrics, validation results, gradient norms, divergence flag
evaluate         loss (and accuracy for classification) of a model on a data set
predict          outputs of ``model.forward(X, training=False)``, optionally in batches
predict_classes  class labels from the outputs (argmax, or threshold for one output)
accuracy         fraction of correct labels from scores, probabilities or labels
METRICS          metric name -> function table ("accuracy", "mse", "mae")
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verigrad.nn._fast import labels_in_range

__all__ = [
    "METRICS",
    "History",
    "accuracy",
    "evaluate",
    "fit",
    "get_metric",
    "mean_absolute_error",
    "mean_squared_error",
    "predict",
    "predict_classes",
]

ProgressCallback = Callable[[int, int, int, "int | None", float], Any]
EpochCallback = Callable[[int, "History"], Any]


# ---------------------------------------------------------------------------------------------
# labels and metrics
# ---------------------------------------------------------------------------------------------
def _integral(a: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(a)) and np.all(a == np.round(a)))


def _argmax_or_column(a: np.ndarray, n: int, expected: str) -> tuple[np.ndarray, bool]:
    """Rows of scores/one-hot ``(n, C > 1)`` -> ``(argmax labels, True)``; ``(n,)`` or ``(n, 1)`` ->
    ``(the values as shape (n,), False)`` for the caller to interpret; any other shape raises with
    ``expected`` (the sentence describing the accepted shapes)."""
    if a.ndim == 2 and a.shape[1] > 1:
        return a.argmax(axis=1), True
    if a.ndim > 2 or (a.ndim == 2 and a.shape[1] != 1):
        raise ValueError(f"{expected}, got shape {a.shape}")
    return a.reshape(n), False


def _target_labels(y: Any, n: int, argument: str = "y") -> np.ndarray:
    """Class labels of shape (n,) from integer labels, a label column or one-hot rows."""
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"accuracy: pred and {argument} must have the same number of samples, got {n} predictions "
                         f"and {argument} of shape {y.shape}")
    if y.ndim == 1 and y.dtype.kind in "iu":
        return y  # the common case: integer labels
    y, done = _argmax_or_column(y, n, f"accuracy: {argument} must be labels of shape (n,) or (n, 1), or one-hot "
                                      "rows of shape (n, n_classes)")
    if done:
        return y
    if y.dtype.kind in "iub":
        return y.astype(np.int64)
    if y.dtype.kind == "f" and _integral(y):
        return y.astype(np.int64)
    raise ValueError(f"accuracy: {argument} must hold class labels (integers), got non-integral values such as "
                     f"{y[y != np.round(y)][:3].tolist()}; accuracy is for classification, use 'mse' or 'mae' "
                     f"for regression targets")


def _pred_labels(pred: Any, threshold: float | None = None) -> np.ndarray:
    """Class labels of shape (n,) from scores (argmax), one probability per sample, or labels."""
    pred = np.asarray(pred)
    if pred.ndim == 0:
        raise ValueError(f"accuracy: pred must have a samples axis, got a scalar {pred!r}")
    p, done = _argmax_or_column(pred, pred.shape[0], "accuracy: pred must be scores of shape (n, n_classes), "
                                "probabilities of shape (n, 1) or (n,), or labels of shape (n,)")
    if done:
        return p
    if p.dtype.kind in "iub":
        return p.astype(np.int64)
    if threshold is not None:
        return (p > threshold).astype(np.int64)
    if p.size == 0 or (np.all(p >= 0.0) and np.all(p <= 1.0)):
        return (p > 0.5).astype(np.int64)
    if _integral(p):
        return p.astype(np.int64)
    raise ValueError(f"accuracy: one output per sample with values in [{p.min():.4g}, {p.max():.4g}] is neither "
                     f"probabilities in [0, 1] nor labels; for logits pass threshold=0.0 (or apply a sigmoid)")


def accuracy(pred: Any, y: Any, *args: Any, threshold: float | None = None) -> float:
    """Fraction of samples whose predicted class equals the true class.

    ``accuracy = mean_i [label(pred_i) == label(y_i)]``. Two call forms:

    * ``accuracy(pred, y[, threshold])``: predictions (model outputs) and targets;
    * ``accuracy(model, X, y[, threshold])``: the model's outputs on ``X`` (``training=False``) first.

    A bare input array is not a prediction: ``accuracy(X, y)`` with ``X`` of shape (n, n_features)
    cannot be told apart from scores when ``n_features`` equals the number of classes; when a label
    in ``y`` has no column in ``pred`` the error says to call ``accuracy(model, X, y)``.

    Parameters
    ----------
    pred : array_like of shape (n, n_classes), (n, 1) or (n,)
        * ``(n, n_classes)`` with ``n_classes > 1``: scores, logits or probabilities; the
          predicted class is the argmax of each row;
        * ``(n, 1)`` or ``(n,)`` floats: the probability of class 1, thresholded
          (``label = pred > threshold``, default threshold 0.5); float values outside
          ``[0, 1]`` that are all integers are read as labels;
        * ``(n,)`` integers: predicted labels.
    y : array_like of shape (n,), (n, 1) or (n, n_classes)
        Integer labels (integral floats accepted) or one-hot rows (argmax is taken).
    *args
        ``threshold`` (positional), or, when the first argument is a model, ``y`` then optionally
        ``threshold``.
    threshold : float, optional
        Decision threshold for one output per sample; pass ``0.0`` for logits. When given,
        float predictions are always thresholded.

    Returns
    -------
    float
        In ``[0, 1]``.

    Raises
    ------
    ValueError
        Different numbers of samples, unsupported shapes, non-integral targets (regression),
        or single-output floats that are neither probabilities nor labels (without ``threshold``).
    """
    if not isinstance(pred, np.ndarray) and callable(getattr(pred, "forward", None)):
        if not args:
            raise TypeError("accuracy(model, X, y): the targets y are missing; call accuracy(model, X, y) or "
                            "accuracy(model.forward(X), y)")
        model, X_in, y, args = pred, y, args[0], args[1:]
        pred = predict(model, X_in)
    if args:
        if len(args) > 1 or threshold is not None:
            raise TypeError(f"accuracy: too many arguments; use accuracy(pred, y, threshold=...) or "
                            f"accuracy(model, X, y, threshold=...), got {2 + len(args)} positional arguments")
        threshold = args[0]
    if (type(pred) is np.ndarray and type(y) is np.ndarray and pred.ndim == 2 and y.ndim == 1
            and pred.shape[1] > 1 and y.dtype.kind in "iu" and 0 < pred.shape[0] == y.shape[0]
            and labels_in_range(y, pred.shape[1])):
        # the common case inside fit: scores (n, C) and integer labels in [0, C)
        return int(np.count_nonzero(pred.argmax(axis=1) == y)) / pred.shape[0]
    pl = _pred_labels(pred, threshold)
    if pl.shape[0] == 0:
        raise ValueError("accuracy: empty batch (0 samples)")
    yl = _target_labels(y, pl.shape[0])
    p = np.asarray(pred)
    if p.ndim == 2 and p.shape[1] > 1 and not labels_in_range(yl, p.shape[1]):
        bad = int(yl.max()) if yl.max() >= p.shape[1] else int(yl.min())
        raise ValueError(
            f"accuracy: y has label {bad} but pred has {p.shape[1]} columns (one score per class); pred must be "
            "the model's outputs: to evaluate a model on inputs X call accuracy(model, X, y)")
    return int(np.count_nonzero(pl == yl)) / pl.shape[0]


def _regression_pair(name: str, pred: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    if p.shape != t.shape:
        if p.ndim >= 1 and t.ndim >= 1 and p.shape[0] == t.shape[0] and p.size == t.size:
            t = t.reshape(p.shape)
        else:
            raise ValueError(f"{name}: pred and y must have the same shape, got pred {p.shape} and y {t.shape}")
    if p.size == 0:
        raise ValueError(f"{name}: empty batch (pred has shape {p.shape})")
    return p, t


def mean_squared_error(pred: Any, y: Any) -> float:
    """``mean((pred - y)**2)`` over all entries.

    Parameters
    ----------
    pred : array_like of shape (n, ...)
    y : array_like, same shape as ``pred`` (or the same size with the same first axis, e.g. (n,) for (n, 1))

    Returns
    -------
    float
    """
    p, t = _regression_pair("mse", pred, y)
    with np.errstate(over="ignore"):  # errors beyond ~1e154 give inf, not a warning
        d = p - t
        return float(np.mean(d * d))


def mean_absolute_error(pred: Any, y: Any) -> float:
    """``mean(|pred - y|)`` over all entries.

    Parameters
    ----------
    pred : array_like of shape (n, ...)
    y : array_like, same shape as ``pred`` (or the same size with the same first axis)

    Returns
    -------
    float
    """
    p, t = _regression_pair("mae", pred, y)
    with np.errstate(over="ignore"):
        return float(np.mean(np.abs(p - t)))


#: metric name -> ``f(pred, y) -> float``
METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "mse": mean_squared_error,
    "mae": mean_absolute_error,
}


def get_metric(name: str | Callable[..., float]) -> tuple[str, Callable[..., float]]:
    """Look a metric up by name in :data:`METRICS` (a callable is returned with its ``__name__``).

    Parameters
    ----------
    name : str or callable
        ``"accuracy"``, ``"mse"``, ``"mae"``, or ``f(pred, y) -> float``.

    Returns
    -------
    (str, callable)

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.
    """
    if callable(name):
        return getattr(name, "__name__", type(name).__name__), name
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; valid metrics are {sorted(METRICS)} (or pass a callable "
                         f"f(pred, y) -> float)")
    return name, METRICS[name]


def _binary_threshold(loss: Any) -> float:
    """Decision threshold for single-output classifiers: 0 for logit losses, 0.5 for probabilities."""
    return 0.0 if "logits" in type(loss).__name__.lower() else 0.5


def _looks_like_classification(pred: np.ndarray, y: np.ndarray) -> bool:
    """True when ``y`` holds class labels / one-hot rows / 0-1 targets matching ``pred``."""
    y = np.asarray(y)
    if y.dtype.kind in "iub":
        return True
    if y.dtype.kind != "f" or y.size == 0:
        return False
    if np.ndim(pred) == 2 and pred.shape[1] > 1:
        # labels (n,) for scores (n, C), or one-hot / probability rows of the same shape
        return (y.ndim == 1 and _integral(y)) or (y.shape == pred.shape and bool(np.all((y >= 0) & (y <= 1))))
    return bool(np.all((y == 0) | (y == 1)))


def _make_metric_fns(metrics: Any, loss: Any) -> list[tuple[str, Callable[[Any, Any], float]]]:
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = (metrics,)
    out = []
    threshold = _binary_threshold(loss)
    for m in metrics:
        name, fn = get_metric(m)
        if fn is accuracy:
            out.append((name, lambda p, t, _th=threshold: accuracy(p, t, threshold=_th)))
        else:
            out.append((name, fn))
    return out


# ---------------------------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------------------------
_PARAM_NAME = re.compile(r"^(.*?)_?(\d+)$")


def _layer_key(name: str) -> int | str:
    """``"W_2"`` -> 2 (and seed 001's ``"W2"`` -> 2); names without a trailing index are their own group."""
    m = _PARAM_NAME.match(name)
    return int(m.group(2)) if m else name


@dataclass(repr=False)
class History:
    """What :func:`fit` recorded, one entry per epoch.

    Attributes
    ----------
    loss : list of float
        Mean training loss of each epoch: ``sum_b n_b L_b / sum_b n_b`` over its batches
        (``n_b`` samples in batch ``b``). After a divergence the last entry is non-finite.
    metrics : dict of str to list of float
        Each metric per epoch, computed on the training batches' predictions during the
        epoch (batch-size weighted mean), e.g. ``{"accuracy": [0.61, 0.93, ...]}``.
    val_loss : list of float
        Loss on ``validation_data`` after each epoch (empty without validation data).
    val_metrics : dict of str to list of float
        The same metrics on the validation data.
    grad_norms : dict of str to list of float
        With ``record_grad_norms=True``: parameter name -> per epoch, the mean over the epoch's
        steps of ``||g||_2``, ``g`` the gradient passed to the optimizer (with
        ``zero_grad=False`` the accumulated sum, like ``p.grad`` in PyTorch).
    epochs : list of int
        Epoch numbers recorded, from 1.
    n_steps : int
        Optimizer steps taken.
    diverged : bool
        True when the loss (or the predictions, or the final parameters) became NaN or inf.
    diverged_epoch : int or None
        Epoch (from 1) in which the divergence was detected.
    diverged_step : int or None
        Global step (from 1) whose loss was not finite (that step's update is not applied;
        ``n_steps`` counts only applied updates), or the last step when only the final
        parameters are non-finite.
    stopped_early : bool
        A callback asked to stop.
    """

    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    val_loss: list[float] = field(default_factory=list)
    val_metrics: dict[str, list[float]] = field(default_factory=dict)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[int] = field(default_factory=list)
    n_steps: int = 0
    diverged: bool = False
    diverged_epoch: int | None = None
    diverged_step: int | None = None
    stopped_early: bool = False
    layer_grad_norms: dict[int | str, list[float]] = field(default_factory=dict, repr=False)

    def grad_norms_by_layer(self) -> dict[int | str, list[float]]:
        """Gradient norms grouped by layer: ``W_i`` and ``b_i`` form layer ``i``.

        Per epoch, the mean over the epoch's steps of ``sqrt(||dW_i||^2 + ||db_i||^2)``
        (the L2 norm of all of layer ``i``'s gradients together).

        Returns
        -------
        dict of int to list of float
            Layer index (as in the parameter names, e.g. 0 and 2 for ``Dense, ReLU, Dense``;
            ``W1``/``b1`` style names give 1) -> one value per epoch; parameters whose names
            end without an index keep their own name as key. Empty unless ``fit(record_grad_norms=True)``.
        """
        return {k: list(v) for k, v in self.layer_grad_norms.items()}

    def __repr__(self) -> str:
        if not self.loss:
            return "History(epochs=0)"
        parts = [f"epochs={len(self.epochs)}", f"loss {self.loss[0]:.4g} -> {self.loss[-1]:.4g}"]
        parts += [f"{k} {v[-1]:.4g}" for k, v in self.metrics.items() if v]
        if self.val_loss:
            parts.append(f"val_loss {self.val_loss[-1]:.4g}")
        parts += [f"val_{k} {v[-1]:.4g}" for k, v in self.val_metrics.items() if v]
        if self.diverged:
            parts.append(f"DIVERGED in epoch {self.diverged_epoch} (step {self.diverged_step})")
        if self.stopped_early:
            parts.append("stopped early")
        return "History(" + ", ".join(parts) + ")"

    @property
    def final_loss(self) -> float:
        """Last epoch's training loss (NaN when nothing was recorded)."""
        return self.loss[-1] if self.loss else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python copy (lists, dicts, numbers), e.g. for ``json.dump``.

        Returns
        -------
        dict
            Keys ``loss``, ``metrics``, ``val_loss``, ``val_metrics``, ``grad_norms``,
            ``grad_norms_by_layer`` (layer keys as strings), ``epochs``, ``n_steps``,
            ``diverged``, ``diverged_epoch``, ``diverged_step``, ``stopped_early``.
        """
        return {
            "loss": list(self.loss),
            "metrics": {k: list(v) for k, v in self.metrics.items()},
            "val_loss": list(self.val_loss),
            "val_metrics": {k: list(v) for k, v in self.val_metrics.items()},
            "grad_norms": {k: list(v) for k, v in self.grad_norms.items()},
            "grad_norms_by_layer": {str(k): list(v) for k, v in self.layer_grad_norms.items()},
            "epochs": list(self.epochs),
            "n_steps": self.n_steps,
            "diverged": self.diverged,
            "diverged_epoch": self.diverged_epoch,
            "diverged_step": self.diverged_step,
            "stopped_early": self.stopped_early,
        }


# ---------------------------------------------------------------------------------------------
# prediction and evaluation
# ---------------------------------------------------------------------------------------------
def _check_batch_size(batch_size: Any, owner: str) -> int | None:
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"{owner}: batch_size must be a positive int or None, got {batch_size!r}")
    return int(batch_size)


def _as_samples(X: Any, name: str, owner: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 0 or X.shape[0] == 0:
        raise ValueError(f"{owner}: {name} must be a non-empty array of shape (n_samples, ...), got shape {X.shape}")
    return X


def _check_model(model: Any, owner: str, training: bool = False) -> None:
    needed = ("forward", "backward", "params", "grads") if training else ("forward",)
    missing = [m for m in needed if not callable(getattr(model, m, None))]
    if missing:
        raise TypeError(f"{owner}: model must provide {', '.join(needed)} (the network protocol of "
                        f"docs/architecture.md); {type(model).__name__} lacks {', '.join(missing)}")


def predict(model: Any, X: Any, batch_size: int | None = None) -> np.ndarray:
    """Model outputs in inference mode: ``model.forward(X, training=False)``.

    Parameters
    ----------
    model : network
        Anything with ``forward(X, training=False)``.
    X : array_like of shape (n_samples, n_in)
    batch_size : int, optional
        Run the forward pass in chunks of this many rows (concatenated); default all at once.

    Returns
    -------
    ndarray of shape (n_samples, n_out)
    """
    _check_model(model, "predict")
    X = _as_samples(X, "X", "predict")
    bs = _check_batch_size(batch_size, "predict")
    if bs is None or bs >= X.shape[0]:
        return np.asarray(model.forward(X, training=False))
    parts = [np.asarray(model.forward(X[i:i + bs], training=False)) for i in range(0, X.shape[0], bs)]
    return np.concatenate(parts, axis=0)


def predict_classes(model: Any, X: Any, batch_size: int | None = None, threshold: float = 0.5) -> np.ndarray:
    """Predicted class labels.

    Parameters
    ----------
    model : network
    X : array_like of shape (n_samples, n_in)
    batch_size : int, optional
        See :func:`predict`.
    threshold : float, default 0.5
        For one output per sample: ``label = output > threshold`` (use 0.0 for logits).
        Ignored for several outputs (argmax of each row).

    Returns
    -------
    ndarray of shape (n_samples,), int64
    """
    out = predict(model, X, batch_size=batch_size)
    return _pred_labels(out, threshold=threshold).astype(np.int64)


def _safe_loss(loss: Any, pred: np.ndarray, y: Any) -> float:
    """``loss.forward(pred, y)``, or NaN when ``pred`` is not finite (losses reject NaN/inf)."""
    if pred.dtype.kind == "f" and not np.all(np.isfinite(pred)):
        return float("nan")
    return float(loss.forward(pred, y))


def evaluate(
    model: Any,
    loss: Any,
    X: Any,
    y: Any,
    batch_size: int | None = None,
    metrics: Sequence[str | Callable[..., float]] | None = None,
) -> dict[str, float]:
    """Loss and metrics of ``model`` on ``(X, y)`` in inference mode.

    Parameters
    ----------
    model : network
    loss : loss object
        ``loss.forward(pred, y) -> float``.
    X : array_like of shape (n_samples, n_in)
    y : array_like of shape (n_samples, ...)
        Targets as the loss expects them.
    batch_size : int, optional
        Evaluate in chunks; the loss and metrics are batch-size weighted means (equal to the
        full-batch value for mean-reduced losses).
    metrics : sequence of str or callable, optional
        Default: ``("accuracy",)`` when the targets are class labels / one-hot / 0-1 values,
        nothing more for regression.

    Returns
    -------
    dict of str to float
        ``{"loss": ..., "accuracy": ...}``; ``loss`` is NaN when the outputs are not finite.
    """
    X = _as_samples(X, "X", "evaluate")
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(f"evaluate: X and y must have the same number of samples, got len(X) = {X.shape[0]} "
                         f"and y of shape {y.shape}")
    bs = _check_batch_size(batch_size, "evaluate")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pred = predict(model, X, batch_size=bs)
        if metrics is None:
            metrics = ("accuracy",) if _looks_like_classification(pred, y) else ()
        return _score(loss, pred, y, _make_metric_fns(metrics, loss), bs)


def _score(loss: Any, pred: np.ndarray, y: np.ndarray, fns: list[tuple[str, Callable[[Any, Any], float]]],
           batch_size: int | None) -> dict[str, float]:
    """Batch-size weighted loss and metrics of precomputed predictions."""
    n = pred.shape[0]
    step = n if batch_size is None else batch_size
    totals = {"loss": 0.0, **{name: 0.0 for name, _ in fns}}
    finite = pred.dtype.kind != "f" or bool(np.all(np.isfinite(pred)))
    for i in range(0, n, step):
        p, t = pred[i:i + step], y[i:i + step]
        w = p.shape[0]
        totals["loss"] += w * _safe_loss(loss, p, t)
        for name, fn in fns:
            totals[name] += w * (fn(p, t) if finite else float("nan"))
    return {k: v / n for k, v in totals.items()}


# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------
_DEFAULT_METRICS: tuple[str, ...] = ("accuracy",)


def _resolve_progress(progress: Any) -> Any:
    if progress is True:
        from verigrad.display import make_progress

        return make_progress()
    if progress is False or progress is None:
        return None
    if callable(progress):
        return progress
    raise TypeError(f"fit: progress must be True, False or a callable(epoch, n_epochs, batch, n_batches, "
                    f"running_loss), got {type(progress).__name__}")


def _resolve_callbacks(callbacks: Any) -> list[EpochCallback]:
    if callbacks is None:
        return []
    if callable(callbacks):
        return [callbacks]
    cbs = list(callbacks)
    for i, cb in enumerate(cbs):
        if not callable(cb):
            raise TypeError(f"fit: callbacks[{i}] must be callable(epoch, history), got {type(cb).__name__}")
    return cbs


def _training_backward(model: Any) -> Callable[[np.ndarray], Any]:
    """``model.backward``, told to skip the unused ``dL/dX`` when it accepts ``input_grad=False``.

    ``NeuralNetwork.backward(grad, input_grad=False)`` lets the first Dense layer skip
    ``dz @ W.T`` (training never uses the gradient of the data); models without that keyword
    are called as ``model.backward(grad)``.
    """
    backward = model.backward
    try:
        param = inspect.signature(backward).parameters.get("input_grad")
    except (TypeError, ValueError):
        return backward
    if param is not None and param.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        return functools.partial(backward, input_grad=False)
    return backward


def _norm(a: np.ndarray) -> float:
    """``||a||_2`` accumulated in float64 (no float32 round-off or overflow for large gradients)."""
    flat = a.reshape(-1)
    if flat.dtype != np.float64:
        flat = flat.astype(np.float64)
    return math.sqrt(float(np.dot(flat, flat)))


def fit(
    model: Any,
    loss: Any,
    optimizer: Any,
    loader: Iterable[Any],
    epochs: int = 10,
    metrics: Sequence[str | Callable[..., float]] | None = _DEFAULT_METRICS,
    progress: bool | ProgressCallback = True,
    record_grad_norms: bool = False,
    validation_data: tuple[Any, Any] | None = None,
    zero_grad: bool = True,
    callbacks: EpochCallback | Sequence[EpochCallback] | None = None,
) -> History:
    """Train ``model`` with mini-batch gradient descent and return what happened.

    For each epoch and each ``(xb, yb)`` of ``loader``::

        pred = model.forward(xb, training=True)
        L    = loss.forward(pred, yb)
        model.backward(loss.backward(pred, yb))   # input_grad=False when accepted (no dL/dX)
        g    = model.grads()                      # zero_grad=True: this step's gradient
        G    = G + g                              # zero_grad=False: running sum since the start
        optimizer.step(g or G)

    Parameters
    ----------
    model : network
        ``forward(X, training=True)``, ``backward(dpred)``, ``params()``, ``grads()``. When
        ``backward`` accepts an ``input_grad`` keyword (``NeuralNetwork`` does), it is called
        with ``input_grad=False``: the gradient with respect to the data is not needed.
    loss : loss object
        ``forward(pred, y) -> float``, ``backward(pred, y) -> dL/dpred``.
    optimizer : optimizer object
        ``step(grads)`` updates the model's live parameters in place.
    loader : iterable of (xb, yb)
        Re-iterated once per epoch, e.g. ``DataLoader(X, y, batch_size=32, seed=0)``;
        ``xb`` of shape (batch, n_in), ``yb`` targets as the loss expects them.
    epochs : int, default 10
        Number of passes over ``loader``.
    metrics : sequence of str or callable, default ("accuracy",)
        Names from :data:`METRICS` or ``f(pred, y) -> float``, computed on each training
        batch's predictions and averaged over the epoch (batch-size weighted). The default
        accuracy is dropped silently when the targets are not class labels (regression).
        For one output per sample, accuracy thresholds at 0.5, or at 0 for a loss whose
        class name contains "Logits".
    progress : bool or callable, default True
        True: a progress bar (rich when installed, else one line per epoch on stderr, see
        :mod:`verigrad.display`); False: silent; a callable is called after every batch as
        ``progress(epoch, n_epochs, batch, n_batches, running_loss)`` (from 1; ``n_batches``
        None when the loader has no ``len``). A callable's optional ``epoch_end(epoch, n_epochs,
        logs)`` and ``close()`` are called too.
    record_grad_norms : bool, default False
        Record per-parameter and per-layer gradient norms in ``History.grad_norms`` /
        ``History.grad_norms_by_layer()`` (seed 003's vanishing / exploding watch).
    validation_data : (X_val, y_val), optional
        Evaluated (inference mode) after every epoch into ``val_loss`` / ``val_metrics``.
    zero_grad : bool, default True
        False reproduces forgetting ``optimizer.zero_grad()`` in PyTorch (seed 004, exercise 4):
        every step uses the running sum of all gradients since the start of training.
    callbacks : callable or sequence of callables, optional
        Each called after every epoch as ``cb(epoch, history)``; a truthy return value stops
        training (``history.stopped_early = True``).

    Returns
    -------
    History
        Training never raises because the loss became NaN/inf: it stops at that step and sets
        ``history.diverged``, ``diverged_epoch`` and ``diverged_step`` (floating-point
        warnings are silenced inside the loop; divergence is reported through the History).

    Raises
    ------
    TypeError, ValueError
        Bad arguments (model/loss/optimizer lacking protocol methods, epochs < 1, unknown
        metric, a loader that does not yield ``(xb, yb)`` pairs or yields nothing).
    """
    _check_model(model, "fit", training=True)
    for obj, name, methods in ((loss, "loss", ("forward", "backward")), (optimizer, "optimizer", ("step",))):
        missing = [m for m in methods if not callable(getattr(obj, m, None))]
        if missing:
            raise TypeError(f"fit: {name} must provide {', '.join(methods)}; {type(obj).__name__} lacks "
                            f"{', '.join(missing)}")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"fit: epochs must be an int >= 1, got {epochs!r}")
    if (isinstance(loader, tuple) and len(loader) == 2 and all(isinstance(a, np.ndarray) for a in loader)):
        raise TypeError("fit: loader must be an iterable of (xb, yb) batches, got a tuple of two arrays (X, y); "
                        "wrap them: DataLoader(X, y, batch_size=32, seed=0)")
    if not isinstance(loader, Iterable):
        raise TypeError(f"fit: loader must be an iterable of (xb, yb) batches, got {type(loader).__name__}")
    n_epochs = int(epochs)
    auto_metrics = metrics is _DEFAULT_METRICS
    metric_fns = _make_metric_fns(metrics, loss)
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("fit: validation_data must be a pair (X_val, y_val)")
        Xv = _as_samples(validation_data[0], "validation_data[0]", "fit")
        yv = np.asarray(validation_data[1])
        if yv.ndim == 0 or yv.shape[0] != Xv.shape[0]:
            raise ValueError(f"fit: validation_data X and y must have the same number of samples, got "
                             f"{Xv.shape[0]} and y of shape {yv.shape}")
    cbs = _resolve_callbacks(callbacks)
    reporter = _resolve_progress(progress)
    on_batch = reporter
    on_epoch_end = getattr(reporter, "epoch_end", None) if reporter is not None else None
    on_close = getattr(reporter, "close", None) if reporter is not None else None
    backward = _training_backward(model)
    try:
        n_batches: int | None = len(loader)  # type: ignore[arg-type]
    except TypeError:
        n_batches = None

    hist = History()
    for name, _ in metric_fns:
        hist.metrics[name] = []
        if validation_data is not None:
            hist.val_metrics[name] = []
    acc: dict[str, np.ndarray] | None = None
    step = 0
    checked_first = False
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for epoch in range(1, n_epochs + 1):
                seen = 0
                loss_sum = 0.0
                metric_sums = [0.0] * len(metric_fns)
                norm_sums: dict[str, float] = {}
                layer_sums: dict[int | str, float] = {}
                steps_this_epoch = 0
                diverged_now = False
                for b, batch in enumerate(loader, start=1):
                    if not checked_first:
                        if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
                            raise TypeError("fit: loader must yield (xb, yb) pairs, got a "
                                            f"{type(batch).__name__}; a DataLoader needs y: DataLoader(X, y, ...)")
                    xb, yb = batch
                    pred = model.forward(xb, training=True)
                    nb = int(np.shape(pred)[0])
                    if not checked_first:
                        checked_first = True
                        if auto_metrics and not _looks_like_classification(np.asarray(pred), np.asarray(yb)):
                            metric_fns = [(n, f) for n, f in metric_fns if n != "accuracy"]
                            metric_sums = [0.0] * len(metric_fns)
                            hist.metrics.pop("accuracy", None)
                            hist.val_metrics.pop("accuracy", None)
                    try:
                        lval = float(loss.forward(pred, yb))
                    except ValueError:
                        # the losses reject NaN/inf predictions: that is a divergence, not a user error
                        if np.all(np.isfinite(pred)):
                            raise
                        lval = float("nan")
                    seen += nb
                    loss_sum += nb * lval
                    if not math.isfinite(lval):
                        diverged_now = True
                        hist.diverged, hist.diverged_epoch, hist.diverged_step = True, epoch, step + 1
                        if on_batch is not None:
                            on_batch(epoch, n_epochs, b, n_batches, loss_sum / seen)
                        break
                    for i, (_, fn) in enumerate(metric_fns):
                        metric_sums[i] += nb * fn(pred, yb)
                    backward(loss.backward(pred, yb))
                    grads = model.grads()
                    if not zero_grad:
                        if acc is None:
                            acc = {k: np.array(g, copy=True) for k, g in grads.items()}
                        else:
                            for k, g in grads.items():
                                acc[k] += g
                        grads = {k: g.copy() for k, g in acc.items()}
                    if record_grad_norms:
                        per_layer: dict[int | str, float] = {}
                        for k, g in grads.items():
                            sq = _norm(np.asarray(g)) ** 2
                            norm_sums[k] = norm_sums.get(k, 0.0) + math.sqrt(sq)
                            key = _layer_key(k)
                            per_layer[key] = per_layer.get(key, 0.0) + sq
                        for key, sq in per_layer.items():
                            layer_sums[key] = layer_sums.get(key, 0.0) + math.sqrt(sq)
                    optimizer.step(grads)
                    step += 1
                    steps_this_epoch += 1
                    if on_batch is not None:
                        on_batch(epoch, n_epochs, b, n_batches, loss_sum / seen)
                if seen == 0:
                    hint = (" in epoch 2 (a generator or iterator can be iterated only once; pass a DataLoader "
                            "or a list of batches)") if epoch > 1 else ""
                    raise ValueError(f"fit: the loader yielded no batches{hint}")
                hist.n_steps = step
                hist.epochs.append(epoch)
                hist.loss.append(loss_sum / seen)
                for i, (name, _) in enumerate(metric_fns):
                    hist.metrics[name].append(float("nan") if diverged_now else metric_sums[i] / seen)
                if record_grad_norms:
                    denom = max(steps_this_epoch, 1)
                    for k, s in norm_sums.items():
                        hist.grad_norms.setdefault(k, []).append(s / denom)
                    for key, s in layer_sums.items():
                        hist.layer_grad_norms.setdefault(key, []).append(s / denom)
                if validation_data is not None:
                    res = _score(loss, predict(model, Xv), yv, metric_fns, None)
                    hist.val_loss.append(res["loss"])
                    for name, _ in metric_fns:
                        hist.val_metrics[name].append(res[name])
                if on_epoch_end is not None:
                    logs = {"loss": hist.loss[-1]}
                    logs.update({k: v[-1] for k, v in hist.metrics.items()})
                    if validation_data is not None:
                        logs["val_loss"] = hist.val_loss[-1]
                        logs.update({f"val_{k}": v[-1] for k, v in hist.val_metrics.items()})
                    on_epoch_end(epoch, n_epochs, logs)
                if diverged_now:
                    break
                if any([bool(cb(epoch, hist)) for cb in cbs]):
                    hist.stopped_early = True
                    break
            if not hist.diverged:
                params = model.params()
                if any(np.asarray(p).dtype.kind == "f" and not np.all(np.isfinite(p)) for p in params.values()):
                    hist.diverged, hist.diverged_epoch, hist.diverged_step = True, hist.epochs[-1], step
    finally:
        if on_close is not None:
            on_close()
    return hist
