"""Loss functions: ``forward(pred, y) -> float``, ``backward(pred, y) -> dL/dpred``.

Every loss also has ``forward_batch(preds, y) -> ndarray of shape (K,)`` where ``preds`` carries an
extra leading axis of K stacked predictions; it equals ``[forward(p, y) for p in preds]`` to
rounding and is computed with array operations only (the fast gradient checker uses it).

The losses fused with their output activation (softmax + cross-entropy, sigmoid + binary
cross-entropy) are written once, in the section "Fused output activations" below.

Bad input raises ``ValueError`` naming the argument and the shapes/values: shape mismatch, empty
batch, NaN/inf (unless ``allow_nonfinite=True``), labels out of range or of a non-integer dtype,
negative probabilities, BCE probabilities or targets outside ``[0, 1]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .activations import sigmoid, softmax

__all__ = [
    "Loss",
    "MSELoss",
    "CrossEntropyLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "log_softmax",
    "LOSSES",
]

#: torch clamps log(p) at -100 in BCELoss; we do the same wherever a log of a probability is taken.
LOG_CLAMP = -100.0
#: denominator clamp of the probability losses' gradients: torch's BCELoss uses the float32 constant
#: 1e-12f (= 9.99999996e-13 in float64); we use the same value so gradients at p = 0 or 1 match.
PROB_EPS = float(np.float32(1e-12))


# ----------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------
def _all_finite(a: np.ndarray) -> bool:
    """Whether every entry is finite (``count_nonzero`` is cheaper than ``.all()`` on small arrays)."""
    return np.count_nonzero(np.isfinite(a)) == a.size


def _labels_in_range(labels: np.ndarray, n_classes: int) -> bool:
    """Whether all integer ``labels`` lie in ``[0, n_classes)``, in one pass.

    Viewing signed integers as unsigned maps negatives to huge values, so one comparison suffices.
    """
    u = labels if labels.dtype.kind == "u" else labels.view(_UNSIGNED[labels.dtype.itemsize])
    return bool(np.maximum.reduce(u) < n_classes)


_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def _as_float(a: np.ndarray) -> np.ndarray:
    return a if a.dtype.kind == "f" else a.astype(np.float64)


def _clamped_log(p: np.ndarray) -> np.ndarray:
    """``max(log(p), -100)`` for ``p >= 0`` without a divide-by-zero warning at ``p = 0``."""
    return np.maximum(np.log(np.maximum(p, np.finfo(p.dtype).tiny)), LOG_CLAMP)


class Loss:
    """Base class of the losses.

    Parameters
    ----------
    allow_nonfinite : bool, default False
        Skip the NaN/inf check of ``pred`` and ``y``.
    """

    def __init__(self, *, allow_nonfinite: bool = False) -> None:
        self.allow_nonfinite = bool(allow_nonfinite)

    def __call__(self, pred: np.ndarray, y: np.ndarray) -> float:
        return self.forward(pred, y)

    def forward(self, pred: np.ndarray, y: np.ndarray) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_batch(self, preds: np.ndarray, y: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"allow_nonfinite": self.allow_nonfinite} if self.allow_nonfinite else {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()) + ")"

    # -- shared checks -------------------------------------------------------------------------
    def _name(self) -> str:
        return type(self).__name__

    def _check_pred(self, pred: Any, batch: bool = False) -> np.ndarray:
        pred = np.asarray(pred)
        argument = "preds" if batch else "pred"
        min_ndim = 2 if batch else 1
        if pred.ndim < min_ndim:
            expected = "(K, n_samples, ...)" if batch else "(n_samples, ...)"
            raise ValueError(f"{self._name()}: {argument} must have shape {expected}, got shape {pred.shape}")
        if pred.size == 0:
            raise ValueError(f"{self._name()}: empty batch, {argument} has shape {pred.shape}")
        if pred.dtype.kind not in "fiub":
            raise TypeError(f"{self._name()}: {argument} must be a real numeric array, got dtype {pred.dtype}")
        if not self.allow_nonfinite and pred.dtype.kind == "f" and not _all_finite(pred):
            bad = np.argwhere(~np.isfinite(pred))[0]
            raise ValueError(
                f"{self._name()}: {argument} contains NaN or inf (first at index {tuple(int(i) for i in bad)}: "
                f"{pred[tuple(bad)]}); pass allow_nonfinite=True to skip this check"
            )
        return _as_float(pred)

    def _check_target_values(self, y: np.ndarray) -> None:
        if y.dtype.kind not in "fiub":
            raise TypeError(f"{self._name()}: y must be a real numeric array, got dtype {y.dtype}")
        if not self.allow_nonfinite and y.dtype.kind == "f" and not _all_finite(y):
            bad = np.argwhere(~np.isfinite(y))[0]
            raise ValueError(
                f"{self._name()}: y contains NaN or inf (first at index {tuple(int(i) for i in bad)}: "
                f"{y[tuple(bad)]}); pass allow_nonfinite=True to skip this check"
            )

    def _check_same_shape(self, pred_shape: tuple, y: Any) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != pred_shape:
            hint = ""
            if y.ndim == 1 and len(pred_shape) == 2 and pred_shape[1] == 1 and y.shape[0] == pred_shape[0]:
                hint = "; reshape y with y.reshape(-1, 1)"
            raise ValueError(
                f"{self._name()}: pred has shape {pred_shape} but y has shape {y.shape}; "
                f"they must be equal{hint}"
            )
        self._check_target_values(y)
        return y


# ----------------------------------------------------------------------------------------------
# Regression
# ----------------------------------------------------------------------------------------------
class MSELoss(Loss):
    """Mean squared error.

    With ``d = pred - y`` of shape ``(n_samples, ...)`` and ``N = n_samples``:

    * ``reduction="mean"`` (default, as torch): ``L = sum(d**2) / d.size``, ``dL/dpred = 2 d / d.size``;
    * ``reduction="half"`` (seed 001): ``L = 1/N sum_i 1/2 ||d_i||**2``, ``dL/dpred = d / N``;
    * ``reduction="sum"``: ``L = sum(d**2)``, ``dL/dpred = 2 d``.

    Parameters
    ----------
    reduction : {"mean", "half", "sum"}
    allow_nonfinite : bool, default False
    """

    _REDUCTIONS = ("mean", "half", "sum")

    def __init__(self, reduction: str = "mean", *, allow_nonfinite: bool = False) -> None:
        super().__init__(allow_nonfinite=allow_nonfinite)
        if reduction not in self._REDUCTIONS:
            raise ValueError(f"MSELoss: reduction must be one of {self._REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def get_config(self) -> dict[str, Any]:
        return {"reduction": self.reduction, **super().get_config()}

    def _factor(self, shape: tuple) -> float:
        if self.reduction == "mean":
            return 1.0 / int(np.prod(shape))
        if self.reduction == "half":
            return 0.5 / shape[0]
        return 1.0

    def forward(self, pred: np.ndarray, y: np.ndarray) -> float:
        """Loss value; ``pred`` and ``y`` : ndarray of the same shape (n_samples, ...)."""
        pred = self._check_pred(pred)
        y = self._check_same_shape(pred.shape, y)
        d = pred - y
        return float(np.vdot(d, d) * self._factor(pred.shape))

    def backward(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dL/dpred``, same shape as ``pred``."""
        pred = self._check_pred(pred)
        y = self._check_same_shape(pred.shape, y)
        d = pred - y
        d *= 2.0 * self._factor(pred.shape)
        return d

    def forward_batch(self, preds: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Losses of K stacked predictions ``preds`` : ndarray of shape (K, *y.shape); returns (K,)."""
        preds = self._check_pred(preds, batch=True)
        y = self._check_same_shape(preds.shape[1:], y)
        d = preds - y
        d = d.reshape(d.shape[0], -1)
        return np.einsum("ki,ki->k", d, d) * self._factor(preds.shape[1:])


# ----------------------------------------------------------------------------------------------
# Fused output activations
#
# The loss written together with the activation that produces its input, so that the pair is
# evaluated stably and its gradient is the simple closed form:
#
#   softmax + cross-entropy:  L = mean_i [logsumexp(z_i) - sum_c y_ic z_ic]  (y one-hot/probabilities)
#                             dL/dz = (softmax(z) * sum_c y_c - y) / N   (= (softmax(z) - onehot) / N)
#   sigmoid + BCE:            L = mean[max(z, 0) - z y + log1p(exp(-|z|))]
#                             dL/dz = (sigmoid(z) - y) / n               (n = number of elements)
#
# Both stay finite for logits of +-1e4 (no overflow: exp only ever sees non-positive arguments).
# ----------------------------------------------------------------------------------------------
def log_softmax(z: np.ndarray) -> np.ndarray:
    """Stable ``log(softmax(z))`` over the last axis: ``z - max(z) - log(sum(exp(z - max(z))))``.

    Parameters
    ----------
    z : ndarray of shape (..., n_classes)

    Returns
    -------
    ndarray of shape (..., n_classes)
    """
    z = np.asarray(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return shifted


def _logsumexp(z: np.ndarray) -> np.ndarray:
    """``log(sum(exp(z), axis=-1))`` of shape ``z.shape[:-1]``, stable."""
    m = z.max(axis=-1)
    return m + np.log(np.exp(z - m[..., None]).sum(axis=-1))


def _softmax_ce_forward(z: np.ndarray, labels: np.ndarray | None, targets: np.ndarray | None) -> np.ndarray:
    """Per-batch softmax cross-entropy of logits ``z`` of shape (..., N, C); returns shape ``z.shape[:-2]``."""
    n = z.shape[-2]
    lse = _logsumexp(z)  # (..., N)
    if labels is not None:
        picked = z[..., np.arange(n), labels]  # (..., N)
        return (lse - picked).sum(axis=-1) / n
    # -sum_c y_c log softmax(z)_c = sum_c y_c (lse - z_c)
    return ((targets.sum(axis=-1) * lse).sum(axis=-1) - (targets * z).sum(axis=(-2, -1))) / n


def _row_reduce(ufunc: np.ufunc, a: np.ndarray) -> np.ndarray:
    """``ufunc.reduce(a, axis=1)`` for a 2-D ``a``, fast when rows are short.

    NumPy reduces short C-ordered rows slowly (a few microseconds for (128, 10)); reducing a
    Fortran-ordered copy walks whole columns instead and gives bit-identical results (the same
    sequential order over the few columns).
    """
    if a.shape[1] <= 32:
        a = np.asfortranarray(a)
    return ufunc.reduce(a, axis=1)


def _softmax_ce_labels_forward(z: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Softmax cross-entropy of logits ``z`` (N, C) with integer ``labels`` (N,).

    Returns the loss, ``e = exp(z - max_row(z))`` and its row sums of shape (N,) (reused by the
    backward pass).
    """
    n = z.shape[0]
    shifted = z - _row_reduce(np.maximum, z)[:, None]
    e = np.exp(shifted)
    se = _row_reduce(np.add, e)
    loss = np.add.reduce(np.log(se) - shifted[np.arange(n), labels]) / n
    return loss, e, se


def _softmax_ce_labels_backward(e: np.ndarray, se: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(softmax(z) - onehot(labels)) / N`` from ``e = exp(z - max_row(z))`` and its row sums ``se``."""
    n = e.shape[0]
    g = e / (se * n)[:, None]
    g[np.arange(n), labels] -= 1.0 / n
    return g


def _softmax_ce_backward(z: np.ndarray, labels: np.ndarray | None, targets: np.ndarray | None) -> np.ndarray:
    """Gradient of :func:`_softmax_ce_forward` for logits ``z`` of shape (N, C)."""
    n = z.shape[0]
    s = softmax(z)
    if labels is not None:
        s[np.arange(n), labels] -= 1.0
    else:
        s *= targets.sum(axis=-1, keepdims=True)
        s -= targets
    s /= n
    return s


def _sigmoid_bce_elementwise(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise ``-y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)) = max(z,0) - z y + log1p(exp(-|z|))``."""
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


def _sigmoid_bce_backward(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of the mean of :func:`_sigmoid_bce_elementwise`: ``(sigmoid(z) - y) / z.size``."""
    g = sigmoid(z) - y
    g /= z.size
    return g


# ----------------------------------------------------------------------------------------------
# Classification
# ----------------------------------------------------------------------------------------------
class CrossEntropyLoss(Loss):
    """Categorical cross-entropy, mean over samples.

    ``pred`` has shape ``(N, C)``; ``y`` is either integer labels of shape ``(N,)`` with values in
    ``[0, C)`` or targets of shape ``(N, C)`` (one-hot or probabilities).

    * ``from_logits=True`` (default, as ``torch.nn.CrossEntropyLoss``): ``pred`` are logits,
      ``L = -1/N sum_i sum_c y_ic log softmax(z_i)_c``, gradient ``(softmax(z) * sum_c y_c - y) / N``,
      computed with a stable log-softmax (logits of +-1e4 give a finite loss and gradient).
    * ``from_logits=False`` (seed 002): ``pred`` are probabilities ``p >= 0`` (any positive values are
      accepted, never renormalised, so a gradient check may step off the simplex),
      ``L = -1/N sum y log p`` with ``log p`` clamped at -100 (as torch), gradient
      ``-y / max(p, 1e-12) / N``; ``p = 0`` and ``p = 1`` give a finite loss and gradient.

    Parameters
    ----------
    from_logits : bool, default True
    allow_nonfinite : bool, default False
    """

    def __init__(self, from_logits: bool = True, *, allow_nonfinite: bool = False) -> None:
        super().__init__(allow_nonfinite=allow_nonfinite)
        self.from_logits = bool(from_logits)
        self._cache: tuple | None = None

    def get_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {} if self.from_logits else {"from_logits": False}
        return {**cfg, **super().get_config()}

    def _check(self, pred: Any, y: Any, batch: bool = False) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        # Fast path for the common training case (float logits (N, C), integer labels (N,), all
        # valid); anything unusual falls through to the detailed checks and their messages.
        if (
            not batch
            and type(pred) is np.ndarray
            and type(y) is np.ndarray
            and pred.ndim == 2
            and y.ndim == 1
            and pred.dtype.kind == "f"
            and y.dtype.kind in "iu"
            and self.from_logits
            and pred.shape[0] == y.shape[0]
            and pred.size
            and (self.allow_nonfinite or _all_finite(pred))
            and _labels_in_range(y, pred.shape[1])
        ):
            return pred, y, None
        pred = self._check_pred(pred, batch=batch)
        argument = "preds" if batch else "pred"
        shape = pred.shape[1:] if batch else pred.shape
        if len(shape) != 2:
            expected = "(K, n_samples, n_classes)" if batch else "(n_samples, n_classes)"
            raise ValueError(f"CrossEntropyLoss: {argument} must have shape {expected}, got {pred.shape}")
        if not self.from_logits and (pred < 0).any():
            raise ValueError(
                f"CrossEntropyLoss(from_logits=False): {argument} must be probabilities >= 0, "
                f"got minimum {pred.min()}; pass logits with from_logits=True instead"
            )
        n, c = shape
        y = np.asarray(y)
        if y.ndim == 1:
            if y.shape[0] != n:
                raise ValueError(
                    f"CrossEntropyLoss: {argument} has shape {pred.shape} ({n} samples) but labels y have "
                    f"shape {y.shape}; expected ({n},)"
                )
            if y.dtype.kind not in "iu":
                raise ValueError(
                    f"CrossEntropyLoss: labels y must have an integer dtype (class indices in [0, {c - 1}]), "
                    f"got dtype {y.dtype}; use y.astype(int), or pass one-hot targets of shape ({n}, {c})"
                )
            if not _labels_in_range(y, c):
                lo, hi = y.min(), y.max()
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f"CrossEntropyLoss: label {bad} out of range; labels y must be in [0, {c - 1}] "
                    f"for {c} classes"
                )
            return pred, y, None
        if y.shape != (n, c):
            raise ValueError(
                f"CrossEntropyLoss: {argument} has shape {pred.shape} but y has shape {y.shape}; expected "
                f"integer labels of shape ({n},) or targets of shape ({n}, {c})"
            )
        self._check_target_values(y)
        return pred, None, _as_float(y)

    def forward(self, pred: np.ndarray, y: np.ndarray) -> float:
        """Loss value for ``pred`` : ndarray of shape (N, C) and ``y`` of shape (N,) or (N, C)."""
        pred_in = pred
        pred, labels, targets = self._check(pred, y)
        if self.from_logits:
            if labels is not None:
                loss, e, se = _softmax_ce_labels_forward(pred, labels)
                # Remember the exponentials so that backward on the *same, unchanged* arrays skips
                # recomputing them (checked by identity and by value, so in-place edits are safe).
                if type(pred_in) is np.ndarray and type(y) is np.ndarray:
                    key = (pred.shape, pred.tobytes(), y.shape, y.tobytes())
                    self._cache = (pred_in, key, y, labels, e, se)
                else:
                    self._cache = None
                return float(loss)
            return float(_softmax_ce_forward(pred, labels, targets))
        n = pred.shape[0]
        if labels is not None:
            return float(-_clamped_log(pred[np.arange(n), labels]).sum() / n)
        return float(-(targets * _clamped_log(pred)).sum() / n)

    def backward(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dL/dpred`` : ndarray of shape (N, C)."""
        cache = self._cache
        if cache is not None and cache[0] is pred and cache[2] is y and self.from_logits:
            if (pred.shape, pred.tobytes(), y.shape, y.tobytes()) == cache[1]:
                # same logits and labels as the last forward (already validated there)
                _, _, _, labels, e, se = cache
                return _softmax_ce_labels_backward(e, se, labels)
        pred, labels, targets = self._check(pred, y)
        if self.from_logits:
            return _softmax_ce_backward(pred, labels, targets)
        n = pred.shape[0]
        if labels is not None:
            g = np.zeros_like(pred)
            rows = np.arange(n)
            g[rows, labels] = -1.0 / (np.maximum(pred[rows, labels], PROB_EPS) * n)
            return g
        return -targets / (np.maximum(pred, PROB_EPS) * n)

    def forward_batch(self, preds: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Losses of ``preds`` : ndarray of shape (K, N, C); returns ndarray of shape (K,)."""
        preds, labels, targets = self._check(preds, y, batch=True)
        if self.from_logits:
            return _softmax_ce_forward(preds, labels, targets)
        n = preds.shape[1]
        if labels is not None:
            return -_clamped_log(preds[:, np.arange(n), labels]).sum(axis=1) / n
        return -(targets * _clamped_log(preds)).sum(axis=(1, 2)) / n


class BCELoss(Loss):
    """Binary cross-entropy on probabilities (torch semantics), mean over all elements.

    ``L = -mean(y log p + (1 - y) log(1 - p))`` with both logs clamped at -100;
    ``dL/dp = (p - y) / max(p (1 - p), 1e-12) / n``. ``p`` and ``y`` must lie in ``[0, 1]``;
    ``p = 0`` and ``p = 1`` give a finite loss and gradient.

    Parameters
    ----------
    allow_nonfinite : bool, default False
    """

    def _check(self, pred: Any, y: Any, batch: bool = False) -> tuple[np.ndarray, np.ndarray]:
        pred = self._check_pred(pred, batch=batch)
        argument = "preds" if batch else "pred"
        if (pred < 0).any() or (pred > 1).any():
            raise ValueError(
                f"BCELoss: {argument} must be probabilities in [0, 1], got values in "
                f"[{pred.min()}, {pred.max()}]; for logits use BCEWithLogitsLoss"
            )
        y = self._check_same_shape(pred.shape[1:] if batch else pred.shape, y)
        if (y < 0).any() or (y > 1).any():
            raise ValueError(f"BCELoss: targets y must be in [0, 1], got values in [{y.min()}, {y.max()}]")
        return pred, _as_float(y)

    @staticmethod
    def _elementwise(p: np.ndarray, y: np.ndarray) -> np.ndarray:
        return -(y * _clamped_log(p) + (1.0 - y) * _clamped_log(1.0 - p))

    def forward(self, pred: np.ndarray, y: np.ndarray) -> float:
        """Loss value; ``pred`` and ``y`` : ndarray of the same shape."""
        pred, y = self._check(pred, y)
        return float(self._elementwise(pred, y).mean())

    def backward(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dL/dpred``, same shape as ``pred``."""
        pred, y = self._check(pred, y)
        g = (pred - y) / np.maximum(pred * (1.0 - pred), PROB_EPS)
        g /= pred.size
        return g

    def forward_batch(self, preds: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Losses of ``preds`` : ndarray of shape (K, *y.shape); returns (K,)."""
        preds, y = self._check(preds, y, batch=True)
        return self._elementwise(preds, y).reshape(preds.shape[0], -1).mean(axis=1)


class BCEWithLogitsLoss(Loss):
    """Sigmoid + binary cross-entropy on logits, stable, mean over all elements.

    ``L = mean(max(z, 0) - z y + log1p(exp(-|z|)))``, ``dL/dz = (sigmoid(z) - y) / n``
    (see "Fused output activations"). Targets ``y`` must lie in ``[0, 1]``.

    Parameters
    ----------
    allow_nonfinite : bool, default False
    """

    def _check(self, pred: Any, y: Any, batch: bool = False) -> tuple[np.ndarray, np.ndarray]:
        pred = self._check_pred(pred, batch=batch)
        y = self._check_same_shape(pred.shape[1:] if batch else pred.shape, y)
        if (y < 0).any() or (y > 1).any():
            raise ValueError(
                f"BCEWithLogitsLoss: targets y must be in [0, 1], got values in [{y.min()}, {y.max()}]"
            )
        return pred, _as_float(y)

    def forward(self, pred: np.ndarray, y: np.ndarray) -> float:
        """Loss value; ``pred`` (logits) and ``y`` : ndarray of the same shape."""
        pred, y = self._check(pred, y)
        return float(_sigmoid_bce_elementwise(pred, y).mean())

    def backward(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dL/dpred``, same shape as ``pred``."""
        pred, y = self._check(pred, y)
        return _sigmoid_bce_backward(pred, y)

    def forward_batch(self, preds: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Losses of ``preds`` : ndarray of shape (K, *y.shape); returns (K,)."""
        preds, y = self._check(preds, y, batch=True)
        return _sigmoid_bce_elementwise(preds, y).reshape(preds.shape[0], -1).mean(axis=1)


#: name -> class table.
LOSSES: dict[str, type[Loss]] = {
    "mse": MSELoss,
    "cross_entropy": CrossEntropyLoss,
    "bce": BCELoss,
    "bce_with_logits": BCEWithLogitsLoss,
}
