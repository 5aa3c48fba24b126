"""Activation layers: each forward formula sits right beside its derivative.

Every activation is a parameter-free :class:`~verigrad.nn.base.Layer`:

* ``forward(x, training=True) -> y`` caches ``x`` and ``y``;
* ``backward(dy) -> dx`` uses the cache, and the seed-002 form ``backward(x, dy)`` evaluates the
  derivative at ``x`` instead;
* ``apply(x)`` is the pure function (no cache), usable on arrays of any shape (softmax acts on the
  last axis), e.g. by the fast perturbation path on stacked ``(K, n_samples, n_out)`` arrays;
* ``vjp(x, y, dy)`` is the pure vector-Jacobian product given input ``x`` and output ``y``.

``ACTIVATIONS`` maps names (``"relu"``, ...) to classes, as scikit-learn does; ``Dense(activation=...)``
and serialization use it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .base import Layer

__all__ = [
    "Activation",
    "Identity",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "Softmax",
    "TanH",
    "SoftMax",
    "ACTIVATIONS",
    "get_activation",
    "sigmoid",
    "softmax",
]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function ``1 / (1 + exp(-x))``.

    Uses ``e = exp(-|x|)`` (never overflows): ``sigmoid(x) = 1 / (1 + e)`` for ``x >= 0`` and
    ``e / (1 + e)`` for ``x < 0``, so ``sigmoid(-1000) == 0`` and ``sigmoid(1000) == 1`` without
    warnings and small values keep full relative precision.

    Parameters
    ----------
    x : ndarray of any shape

    Returns
    -------
    ndarray of the same shape as ``x``, values in ``[0, 1]``.
    """
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    r = 1.0 / (1.0 + e)
    return np.where(x >= 0, r, e * r)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, ``s_j = exp(x_j - max x) / sum_k exp(x_k - max x)``.

    Parameters
    ----------
    x : ndarray of shape (..., n_classes)

    Returns
    -------
    ndarray of shape (..., n_classes); each row sums to 1.
    """
    x = np.asarray(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


class Activation(Layer):
    """Base class of parameter-free elementwise (or row-wise) activations.

    Subclasses define ``apply(x)`` (the function) and ``vjp(x, y, dy)`` (its vector-Jacobian
    product, given the input ``x`` and output ``y = apply(x)``) next to each other.
    """

    #: name used by ``Dense(activation=name)`` and by serialization
    name: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self._x: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def apply(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def vjp(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        """Return ``apply(x)`` and cache ``x`` and the output for :meth:`backward`.

        Parameters
        ----------
        x : ndarray of any shape (softmax: the last axis holds the classes)
        training : bool
            Unused (kept for the layer protocol).
        """
        if type(x) is not np.ndarray:
            x = np.asarray(x)
        self._x = self._y = None  # release the last arrays first (a failed forward leaves no stale cache)
        y = self.apply(x)
        self._x = x
        self._y = y
        return y

    def backward(self, dy_or_x: np.ndarray, dy: np.ndarray | None = None) -> np.ndarray:
        """Return ``dL/dx``.

        Two call forms:

        * ``backward(dy)``: the derivative at the input of the last :meth:`forward`;
        * ``backward(x, dy)`` (seed 002): the derivative evaluated at ``x``.

        Parameters
        ----------
        dy_or_x : ndarray
            ``dL/dy`` (one-argument form) or the input ``x`` (two-argument form).
        dy : ndarray, optional
            ``dL/dy`` in the two-argument form, same shape as ``x``.

        Returns
        -------
        ndarray of the same shape as the input.
        """
        if dy is None:
            if self._x is None:
                raise RuntimeError(
                    f"{self._where()}: backward(dy) called before forward(x); call forward first "
                    "or use the form backward(x, dy)"
                )
            g = dy_or_x if type(dy_or_x) is np.ndarray else np.asarray(dy_or_x)
            x, y = self._x, self._y
        else:
            x = np.asarray(dy_or_x)
            g = np.asarray(dy)
            y = self.apply(x)
        if g.shape != x.shape:
            raise ValueError(
                f"{self._where()}: dy has shape {g.shape}, expected the shape of the input {x.shape}"
            )
        return self.vjp(x, y, g)

    def __repr__(self) -> str:
        cfg = self.get_config()
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in cfg.items()) + ")"


class Identity(Activation):
    """Identity ``y = x``; derivative ``dx = dy``."""

    name = "identity"

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    def vjp(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy


class Sigmoid(Activation):
    """Logistic ``y = 1 / (1 + exp(-x))``; derivative ``dx = dy * y * (1 - y)``.

    Stable for any input (``sigmoid(+-1000)`` gives 1 and 0 without overflow warnings).
    """

    name = "sigmoid"

    def apply(self, x: np.ndarray) -> np.ndarray:
        return sigmoid(x)

    def vjp(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy * y * (1.0 - y)


class Tanh(Activation):
    """Hyperbolic tangent ``y = tanh(x)``; derivative ``dx = dy * (1 - y**2)``."""

    name = "tanh"

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def vjp(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return dy * (1.0 - y * y)


class ReLU(Activation):
    """Rectifier ``y = max(x, 0)``; derivative ``dx = dy * [x > 0]`` (0 at exactly ``x = 0``, as torch)."""

    name = "relu"

    #: float inputs larger than this keep the mask ``x > 0`` from :meth:`forward` for :meth:`backward`
    _MASK_MIN_SIZE: ClassVar[int] = 8192

    def __init__(self) -> None:
        super().__init__()
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        """Return ``max(x, 0)``; cache ``x``, the output and, for large float ``x``, the mask ``x > 0``.

        The boolean mask is computed while ``x`` is still in cache and is 8x (float64) smaller
        than ``x``: :meth:`backward` then reads it instead of the whole ``x`` (0.2-0.4 ms less
        per step on a (256, 1024) float64 batch), with the same result ``dy * (x > 0)``.

        Parameters
        ----------
        x : ndarray of any shape
        training : bool
            Unused (kept for the layer protocol).
        """
        self._mask = None  # a failed forward leaves no stale mask
        y = super().forward(x, training)
        x = self._x
        if x.size > self._MASK_MIN_SIZE and x.dtype.kind == "f":
            self._mask = np.greater(x, 0)
        return y

    def backward(self, dy_or_x: np.ndarray, dy: np.ndarray | None = None) -> np.ndarray:
        """Return ``dL/dx = dy * [x > 0]``; see :meth:`Activation.backward` for the two call forms.

        The one-argument form uses the mask cached by the last :meth:`forward` when there is one
        (large float inputs): the same values as ``vjp``, without reading ``x`` again.
        """
        mask = self._mask
        if dy is None and mask is not None:
            g = dy_or_x if type(dy_or_x) is np.ndarray else np.asarray(dy_or_x)
            if g.shape == mask.shape:
                return g * mask
        return super().backward(dy_or_x, dy)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)

    def vjp(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        if y.size <= self._MASK_MIN_SIZE and y.dtype is dy.dtype and y.dtype.kind == "f":
            # [x > 0] = sign(max(x, 0)) for non-NaN x: one float ufunc instead of a comparison
            # followed by a bool-to-float cast, 0.5 us less on a (32, 16) batch; on large arrays the
            # (not vectorised) sign loop is the slower one (the size where forward keeps a mask)
            return dy * np.sign(y)
        return dy * (x > 0)


class LeakyReLU(Activation):
    """Leaky rectifier ``y = x if x > 0 else alpha * x``; derivative ``dx = dy * (1 if x > 0 else alpha)``.

    Parameters
    ----------
    alpha : float, default 0.01
        Slope for negative inputs (the derivative at exactly 0 is ``alpha``, as torch).
    """

    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
            raise TypeError(f"LeakyReLU: alpha must be a real number, got {alpha!r}")
        if not np.isfinite(alpha):
            raise ValueError(f"LeakyReLU: alpha must be finite, got {alpha!r}")
        self.alpha = float(alpha)

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return np.where(x > 0, x, self.alpha * x)

    def vjp(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return np.where(x > 0, dy, self.alpha * dy)

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


class Softmax(Activation):
    """Softmax over the last axis ``s = exp(x) / sum(exp(x))`` (shifted by the row max).

    Backward is the full Jacobian-vector product ``dx = s * (dy - sum(dy * s, axis=-1, keepdims=True))``.
    """

    name = "softmax"

    def apply(self, x: np.ndarray) -> np.ndarray:
        return softmax(x)

    def vjp(self, x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


# Aliases used by seed notebook 002.
TanH = Tanh
SoftMax = Softmax

#: name -> class table (scikit-learn style) used by ``Dense(activation=...)`` and serialization.
ACTIVATIONS: dict[str, type[Activation]] = {
    "identity": Identity,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "softmax": Softmax,
}


#: other names accepted by :func:`get_activation` (not in :data:`ACTIVATIONS`: configs keep the canonical name)
ACTIVATION_ALIASES: dict[str, str] = {"linear": "identity"}


def get_activation(activation: str | Activation | None, argument: str = "activation") -> Activation | None:
    """Return an activation instance for a name, an instance, or ``None``.

    Parameters
    ----------
    activation : str, dict, Activation or None
        A name from :data:`ACTIVATIONS` (case-insensitive; ``"linear"`` means ``"identity"``), a dict
        ``{"name": ..., **kwargs}``, an :class:`Activation` instance (used as is) or ``None`` (no activation).
    argument : str
        Argument name used in error messages.

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid ones).
    TypeError
        Anything else.
    """
    if activation is None:
        return None
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, type) and issubclass(activation, Activation):
        return activation()
    if isinstance(activation, dict):  # {"name": "leaky_relu", "alpha": 0.2}, as written by get_config
        kwargs = dict(activation)
        name = kwargs.pop("name", None)
        cls = ACTIVATIONS.get(ACTIVATION_ALIASES.get(name.lower(), name.lower())) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(
                f"unknown {argument} {activation!r}; valid names are: {', '.join(sorted(ACTIVATIONS))}"
            )
        return cls(**kwargs)
    if isinstance(activation, str):
        cls = ACTIVATIONS.get(ACTIVATION_ALIASES.get(activation.lower(), activation.lower()))
        if cls is None:
            raise ValueError(
                f"unknown {argument} {activation!r}; valid names are: {', '.join(sorted(ACTIVATIONS))}"
            )
        return cls()
    raise TypeError(
        f"{argument} must be None, a name ({', '.join(sorted(ACTIVATIONS))}) or an Activation instance, "
        f"got {type(activation).__name__}"
    )
