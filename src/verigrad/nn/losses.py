"""Loss functions: ``forward(pred, y) -> float``, ``backward(pred, y) -> dL/dpred``.

``forward`` returns a ``numpy.float64``: a Python ``float`` subclass that also has ``.item()`` and
``.shape == ()``, so torch-style code (``loss.item()``) runs unchanged.

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

from ._fast import all_finite as _all_finite
from ._fast import labels_in_range as _labels_in_range
from ._fast import scalar_like
from .activations import sigmoid, softmax

__all__ = [
    "Loss",
    "MSELoss",
    "CrossEntropyLoss",
    "CrossEntropy",
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
#: CrossEntropyLoss remembers ``pred`` and integer labels up to this size byte for byte (the exact
#: guard of its caches); larger arrays are validated and recomputed on every call.
_GUARD_MAX_BYTES = 1 << 16


# ----------------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------------


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
        self._require_finite(pred, argument)
        return _as_float(pred)

    def _check_target_values(self, y: np.ndarray) -> None:
        if y.dtype.kind not in "fiub":
            raise TypeError(f"{self._name()}: y must be a real numeric array, got dtype {y.dtype}")
        self._require_finite(y, "y")

    def _require_finite(self, a: np.ndarray, argument: str) -> None:
        """Raise ``ValueError`` naming ``argument`` and the first bad index if a float ``a`` has NaN/inf."""
        if not self.allow_nonfinite and a.dtype.kind == "f" and not _all_finite(a):
            bad = np.argwhere(~np.isfinite(a))[0]
            raise ValueError(
                f"{self._name()}: {argument} contains NaN or inf (first at index {tuple(int(i) for i in bad)}: "
                f"{a[tuple(bad)]}); pass allow_nonfinite=True to skip this check"
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
        return np.float64(np.vdot(d, d) * self._factor(pred.shape))

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


def _onehot_t(labels: np.ndarray, n_classes: int, dtype: np.dtype, value: float) -> np.ndarray:
    """Transposed one-hot of integer ``labels`` (N,): shape (C, N), ``value`` at ``[labels[i], i]``, 0 elsewhere."""
    n = labels.shape[0]
    oh = np.zeros((n_classes, n), dtype=dtype)
    oh[labels, np.arange(n)] = value
    return oh


def _softmax_ce_labels_parts(z: np.ndarray, onehot_t: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Softmax cross-entropy of logits ``z`` (N, C) with labels given as a scaled transposed one-hot.

    Works on the transposed (C, N) copy of ``z``, so that every row-wise max, sum and broadcast
    runs along the long axis N (NumPy is slow on the short rows of an (N, C) array with few
    classes); for the same reason the mean of the picked logits is one ``vdot`` with the one-hot.

    Parameters
    ----------
    z : ndarray of shape (N, C), float, finite
    onehot_t : ndarray of shape (C, N), the dtype of ``z``
        ``1/N`` at ``[labels[i], i]``, 0 elsewhere (:func:`_onehot_t`).

    Returns
    -------
    loss : float
        ``mean_i [logsumexp(z_i) - z_i[labels_i]]``.
    e_t : ndarray of shape (C, N)
        ``exp(z - max_row(z))`` transposed (reused by the backward pass).
    se : ndarray of shape (N,)
        Row sums of ``exp(z - max_row(z))``.
    """
    n, c = z.shape
    e_t = z.T.copy()  # C-contiguous (C, N), never a view of z
    m = np.maximum(e_t[0], e_t[1]) if c == 2 else np.maximum.reduce(e_t, axis=0)
    e_t -= m
    picked = np.vdot(e_t, onehot_t)  # mean_i (z_i - m_i)[labels_i]
    np.exp(e_t, out=e_t)
    se = e_t[0] + e_t[1] if c == 2 else np.add.reduce(e_t, axis=0)
    loss = np.add.reduce(np.log(se)) / n - picked
    return float(loss), e_t, se


def _softmax_ce_labels_grad(e_t: np.ndarray, se: np.ndarray, onehot_t: np.ndarray) -> np.ndarray:
    """``(softmax(z) - onehot) / N`` of shape (N, C) from the parts of :func:`_softmax_ce_labels_parts`.

    The result is the transpose of a C-contiguous (C, N) array (Fortran order).
    """
    g_t = e_t / (se * scalar_like(se.shape[0], se.dtype))
    g_t -= onehot_t
    return g_t.T


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

    Notes
    -----
    Training calls ``forward(pred, y)`` then ``backward(pred, y)`` on the same arrays. For logits
    with integer labels, ``backward`` then reuses the exponentials of ``forward`` when ``pred`` and
    ``y`` are the same objects *and* byte for byte unchanged (an in-place edit in between is seen
    and everything is recomputed), and the label range check and one-hot matrix are reused while
    the labels are byte for byte those of the previous call. Results never depend on these caches.
    On that path the gradient is computed class-major and returned in Fortran order (a transposed
    view of a fresh array, owned by the caller).
    """

    def __init__(self, from_logits: bool = True, *, allow_nonfinite: bool = False) -> None:
        super().__init__(allow_nonfinite=allow_nonfinite)
        if not isinstance(from_logits, (bool, np.bool_)):
            hint = (" (seed 002's CrossEntropy(\"cross_entropy\") on probabilities, with forward(Y, Y_hat), is "
                    "verigrad.nn.losses.CrossEntropy)" if isinstance(from_logits, str) else "")
            raise TypeError(f"CrossEntropyLoss: from_logits must be True (pred are logits) or False (pred are "
                            f"probabilities), got {from_logits!r}{hint}")
        self.from_logits = bool(from_logits)
        # last forward of the fast path: (pred, pred bytes, y, y bytes, e_t, se, onehot_t)
        self._cache: tuple | None = None
        # last validated labels: (y bytes, C, pred dtype, onehot_t)
        self._labels: tuple | None = None

    def get_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {} if self.from_logits else {"from_logits": False}
        return {**cfg, **super().get_config()}

    def _fast_labels(self, pred: Any, y: Any) -> tuple[np.ndarray, bytes | None] | None:
        """Validate the common training case: float logits (N, C), all finite, integer labels in range.

        Returns the transposed one-hot of ``y`` scaled by 1/N (see :func:`_onehot_t`) and the bytes of
        ``y`` (None when ``y`` is too large to remember), or None for anything else, which then
        goes through :meth:`_check` and its detailed messages. The label range check and the
        one-hot are reused while the labels are byte for byte those of the previous call.
        """
        if not (
            self.from_logits
            and type(pred) is np.ndarray
            and type(y) is np.ndarray
            and pred.ndim == 2
            and y.ndim == 1
            and pred.dtype.kind == "f"
            and pred.dtype.itemsize >= 4  # float16 sums (the vdot with the one-hot) would lose digits
            and y.dtype.kind in "iu"
        ):
            return None
        n, c = pred.shape
        if n == 0 or c == 0 or y.shape[0] != n:
            return None
        if not self.allow_nonfinite and not _all_finite(pred):
            return None
        key = y.tobytes() if y.nbytes <= _GUARD_MAX_BYTES else None
        known = self._labels
        if key is not None and known is not None and known[0] == key and known[1] == c and known[2] == pred.dtype:
            return known[3], key
        if not _labels_in_range(y, c):
            return None
        onehot_t = _onehot_t(y, c, pred.dtype, 1.0 / n)
        self._labels = (key, c, pred.dtype, onehot_t) if key is not None else None
        return onehot_t, key

    def _check(self, pred: Any, y: Any, batch: bool = False) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
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
        fast = self._fast_labels(pred, y)
        if fast is not None:
            onehot_t, ykey = fast
            loss, e_t, se = _softmax_ce_labels_parts(pred, onehot_t)
            # Remember the exponentials for a backward on the *same, unchanged* arrays: checked by
            # identity and byte for byte there, so an in-place edit of pred or y recomputes them.
            if ykey is not None and pred.nbytes <= _GUARD_MAX_BYTES:
                self._cache = (pred, pred.tobytes(), y, ykey, e_t, se, onehot_t)
            else:
                self._cache = None
            return np.float64(loss)
        self._cache = None
        pred, labels, targets = self._check(pred, y)
        if self.from_logits:
            return np.float64(_softmax_ce_forward(pred, labels, targets))
        n = pred.shape[0]
        if labels is not None:
            return np.float64(-_clamped_log(pred[np.arange(n), labels]).sum() / n)
        return np.float64(-(targets * _clamped_log(pred)).sum() / n)

    def backward(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dL/dpred`` : ndarray of shape (N, C)."""
        cache = self._cache
        if (
            cache is not None
            and cache[0] is pred
            and cache[2] is y
            and pred.tobytes() == cache[1]
            and y.tobytes() == cache[3]
        ):  # the arrays of the last forward, unchanged (validated there)
            return _softmax_ce_labels_grad(cache[4], cache[5], cache[6])
        fast = self._fast_labels(pred, y)
        if fast is not None:
            onehot_t = fast[0]
            _, e_t, se = _softmax_ce_labels_parts(pred, onehot_t)
            return _softmax_ce_labels_grad(e_t, se, onehot_t)
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
        return np.float64(self._elementwise(pred, y).mean())

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
        return np.float64(_sigmoid_bce_elementwise(pred, y).mean())

    def backward(self, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``dL/dpred``, same shape as ``pred``."""
        pred, y = self._check(pred, y)
        return _sigmoid_bce_backward(pred, y)

    def forward_batch(self, preds: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Losses of ``preds`` : ndarray of shape (K, *y.shape); returns (K,)."""
        preds, y = self._check(preds, y, batch=True)
        return _sigmoid_bce_elementwise(preds, y).reshape(preds.shape[0], -1).mean(axis=1)


class CrossEntropy:
    """Seed 002's cross-entropy, with its argument order: ``forward(Y, Y_hat)``, ``backward(Y, Y_hat)``.

    The seed-002 convention (targets first, predictions second; the reverse of every verigrad loss):
    ``Y_hat`` are probabilities, e.g. softmax outputs; ``Y`` one-hot rows or integer labels.
    ``L = -1/N sum_i sum_c Y_ic log Y_hat_ic``. Computed by ``CrossEntropyLoss(from_logits=False)``
    (same clamping, validation and messages); for logits use :class:`CrossEntropyLoss`.

    Parameters
    ----------
    name : str, default "cross_entropy"
        Seed 002 passes the loss name; only ``"cross_entropy"`` is valid.

    Examples
    --------
    >>> Y = np.eye(3)[[0, 2]]
    >>> Y_hat = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    >>> round(float(CrossEntropy("cross_entropy").forward(Y, Y_hat)), 6)
    0.289909
    """

    def __init__(self, name: str = "cross_entropy") -> None:
        if name != "cross_entropy":
            raise ValueError(f"CrossEntropy: name must be 'cross_entropy', got {name!r}")
        self.name = name
        self.loss = CrossEntropyLoss(from_logits=False)

    def forward(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        """Loss for targets ``Y`` (N, C) or (N,) and probabilities ``Y_hat`` (N, C)."""
        return self.loss.forward(Y_hat, Y)

    def backward(self, Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
        """``dL/dY_hat`` of shape (N, C): ``-Y / Y_hat / N``."""
        return self.loss.backward(Y_hat, Y)

    def __call__(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        return self.forward(Y, Y_hat)

    def __repr__(self) -> str:
        return f"CrossEntropy({self.name!r})"


#: name -> class table.
LOSSES: dict[str, type[Loss]] = {
    "mse": MSELoss,
    "cross_entropy": CrossEntropyLoss,
    "bce": BCELoss,
    "bce_with_logits": BCEWithLogitsLoss,
}
