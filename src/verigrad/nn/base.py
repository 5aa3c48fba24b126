"""The layer protocol and a small base class that provides its defaults.

Any object with ``params``, ``grads``, ``forward(x, training=True)`` and ``backward(dy)`` can be put
in a :class:`verigrad.nn.NeuralNetwork`; deriving from :class:`Layer` is optional and only saves
typing (empty ``params``/``grads``, ``__call__`` = ``forward``, a ``repr``, a ``get_config``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Layer"]


class Layer:
    """Base class for layers: ``y = forward(x)`` caches what ``backward(dy) -> dx`` needs.

    Attributes
    ----------
    params : dict of str to ndarray
        Live parameter arrays (``{}`` for layers without parameters).
    grads : dict of str to ndarray
        Gradients of the loss with respect to ``params``, same keys and shapes, written (never
        accumulated) by :meth:`backward`.
    index : int or None
        Position of the layer in the network that holds it (set by the network, used in error
        messages such as ``"Dense layer 2 (Dense(5, 7)) expected ..."``).
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.index: int | None = None

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        """Compute the layer output and cache what :meth:`backward` needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward(x, training=True)")

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Return ``dL/dx`` given ``dL/dy`` and fill :attr:`grads`."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward(dy)")

    def __call__(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        return self.forward(x, training)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this layer (JSON-serialisable)."""
        return {}

    def _where(self) -> str:
        """``"Dense layer 2 (Dense(5, 7))"`` when the network told us our index, else without it."""
        kind = type(self).__name__
        if self.index is None:
            return f"{kind} layer ({self!r})"
        return f"{kind} layer {self.index} ({self!r})"

    def __repr__(self) -> str:
        cfg = self.get_config()
        args = ", ".join(f"{k}={v!r}" for k, v in cfg.items())
        return f"{type(self).__name__}({args})"
