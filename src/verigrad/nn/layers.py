"""Layers with parameters: :class:`Dense` (alias ``FullyConnected``).

Activation layers live in :mod:`verigrad.nn.activations` and are re-exported here so that
``from verigrad.nn.layers import Dense, ReLU, Tanh`` works (seed notebook 000).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import activations as _activations
from .activations import Activation, get_activation
from .base import Layer
from .init import get_initializer, make_rng

#: the activation layers are re-exported here (see :func:`__getattr__`)
__all__ = ["Layer", "Dense", "FullyConnected", *_activations.__all__]


def __getattr__(name: str) -> Any:
    """The activation layers, re-exported from :mod:`verigrad.nn.activations` so that seed notebook
    000's ``from verigrad.nn.layers import Dense, ReLU, Tanh`` works (one list of names: theirs)."""
    if name in _activations.__all__:
        return getattr(_activations, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: products of at least this many multiply-adds (n_samples * n_in * n_out) use ``np.matmul``,
#: smaller ones ``np.dot``. Both hand float products to BLAS gemm (identical values in our
#: measurements), but ``np.dot`` has less per-call overhead (about 0.3 us: it wins on tiny layers)
#: while ``np.matmul`` is faster on large ones, notably for the transposed operand of ``x.T @ dz``
#: (one thread, 256x1024 and 256x1024: 8.4 ms instead of 9.7 ms in float64, 4.0 instead of 4.3 in
#: float32; ``dz @ W.T`` and ``x @ W`` gain 1-3%).
_MATMUL_MIN_WORK = 1 << 18


def _check_size(value: Any, argument: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Dense: {argument} must be a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"Dense: {argument} must be a positive int, got {value}")
    return int(value)


class Dense(Layer):
    """Fully connected layer ``y = act(x @ W + b)`` (``act`` = identity unless ``activation`` is given).

    Parameters
    ----------
    n_in : int, optional
        Input width. ``Dense(n_out)`` (one positional int) or ``Dense(n_out=4)`` leaves it unknown:
        the layer is built from the first batch it sees (``params`` is empty until then).
    n_out : int
        Output width.
    init : str, default "xavier"
        Weight initialiser name, see :data:`verigrad.nn.init.INITIALIZERS`; biases start at zero.
        ``weight_init=`` (seed 002) is another name for it.
    activation : str or Activation, optional
        Fused output activation (``"identity"`` or ``"linear"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``,
        ``"leaky_relu"``, ``"softmax"``). ``params`` stay ``W`` and ``b``; backward goes through both.
        Seed 002's positional form ``FullyConnected(n_out, activation)`` is accepted too.
    scale : float, optional
        Initialiser gain (the std for ``init="normal"``, default 0.01 there).
    rng : numpy.random.Generator, optional
        Source of the random draws.
    seed : int, optional
        Seed of a fresh generator when ``rng`` is not given (neither: unseeded ``default_rng()``).
    dtype : numpy dtype, default float64
        Parameter dtype (float32 keeps float32 outputs for float32 inputs).
    name : str, optional
        Free-form label shown in the repr.

    Attributes
    ----------
    params : dict
        ``{"W": ndarray of shape (n_in, n_out), "b": ndarray of shape (n_out,)}`` (live arrays).
    grads : dict
        ``{"W": dL/dW, "b": dL/db}`` after :meth:`backward`: ``dW = x.T @ dz``, ``db = dz.sum(0)``
        with ``dz = dL/d(x @ W + b)``.
    activation : Activation or None
        The fused activation instance.

    Examples
    --------
    >>> import numpy as np
    >>> layer = Dense(3, 2, seed=0)
    >>> layer.forward(np.ones((4, 3))).shape
    (4, 2)
    """

    def __init__(
        self,
        n_in: int | None = None,
        n_out: int | None = None,
        *,
        init: str = "xavier",
        activation: str | Activation | None = None,
        scale: float | None = None,
        rng: np.random.Generator | None = None,
        seed: int | None = None,
        dtype: Any = np.float64,
        name: str | None = None,
        weight_init: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(n_out, (str, Activation)) and activation is None and n_in is not None:
            n_in, n_out, activation = None, n_in, n_out  # seed 002: FullyConnected(n_out, activation)
        if weight_init is not None:
            if init != "xavier" and init != weight_init:
                raise TypeError(f"Dense: weight_init= is another name for init=; got init={init!r} and "
                                f"weight_init={weight_init!r}, give only one")
            init = weight_init
        if n_out is None and n_in is not None:
            n_in, n_out = None, n_in  # a single positional int means n_out (lazy form)
        if n_out is None:
            raise TypeError("Dense: n_out is required, e.g. Dense(5, 7) or Dense(n_out=7)")
        self.n_in = _check_size(n_in, "n_in")
        self.n_out = _check_size(n_out, "n_out")
        self._init_fn = get_initializer(init)
        self.init = init
        if scale is not None:
            if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
                raise TypeError(f"Dense: scale must be a real number, got {scale!r}")
            if not np.isfinite(scale):
                raise ValueError(f"Dense: scale must be finite, got {scale!r}")
            scale = float(scale)
        self.scale = scale
        self.activation = get_activation(activation)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError as exc:
            raise TypeError(f"Dense: dtype must be a NumPy floating dtype, got {dtype!r}") from exc
        if self.dtype.kind != "f":
            raise TypeError(f"Dense: dtype must be a floating dtype such as np.float64, got {self.dtype}")
        self.name = name
        self.rng = make_rng(rng, seed, owner="Dense")
        self._x: np.ndarray | None = None
        self._ones: np.ndarray | None = None
        if self.n_in is not None:
            self._build(self.n_in)

    # -- construction -------------------------------------------------------------------------
    def _build(self, n_in: int) -> None:
        self.n_in = n_in
        W = self._init_fn(n_in, self.n_out, self.rng, self.dtype, self.scale)
        b = np.zeros(self.n_out, dtype=self.dtype)
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}

    @property
    def built(self) -> bool:
        """Whether ``W`` and ``b`` exist (lazy layers are built by their first forward)."""
        return "W" in self.params

    # -- seed-002 aliases ---------------------------------------------------------------------
    @property
    def parameters(self) -> dict[str, np.ndarray]:
        """Alias of :attr:`params` (seed notebook 002)."""
        return self.params

    @property
    def gradients(self) -> dict[str, np.ndarray]:
        """Alias of :attr:`grads` (seed notebook 002)."""
        return self.grads

    # -- computation --------------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        """Compute ``y = act(x @ W + b)``.

        Parameters
        ----------
        x : ndarray of shape (n_samples, n_in)
        training : bool
            Unused (no dropout/batch-norm here); kept for the layer protocol.

        Returns
        -------
        y : ndarray of shape (n_samples, n_out)

        Raises
        ------
        ValueError
            ``x`` is not 2-D or has the wrong width (the message names the layer).
        """
        if type(x) is not np.ndarray:
            x = np.asarray(x)
        self._x = None  # release the last input (memory reuse; a failed forward leaves no stale cache)
        params = self.params
        if x.ndim != 2 or (x.shape[1] != self.n_in and self.n_in is not None):
            raise ValueError(self._shape_message(x))
        if "W" not in params:
            if x.shape[1] < 1:
                raise ValueError(self._shape_message(x))
            self._build(x.shape[1])
            params = self.params
        W = params["W"]
        if W.shape != (self.n_in, self.n_out):
            raise ValueError(self._weight_message(W))
        # = x @ W; np.dot has less per-call overhead, np.matmul is faster on large products
        z = np.matmul(x, W) if x.shape[0] * W.size >= _MATMUL_MIN_WORK else np.dot(x, W)
        if z.dtype.kind == "f":
            z += params["b"]
        else:
            z = z + params["b"]
        self._x = x
        if self.activation is not None:
            return self.activation.forward(z, training)
        return z

    def _weight_message(self, W: Any) -> str:
        shape = tuple(int(s) for s in getattr(W, "shape", ()))
        expected = (self.n_in, self.n_out)
        msg = f"{self._where()}: params['W'] has shape {shape}, expected (n_in, n_out) = {expected} (y = x @ W + b)"
        if shape == expected[::-1]:
            msg += "; it is transposed: torch's nn.Linear stores weight as (out, in): use weight.T"
        return msg

    def _shape_message(self, x: np.ndarray) -> str:
        n_in = self.n_in if self.n_in is not None else "n_in"
        msg = f"{self._where()} expected input of shape (n_samples, {n_in}), got {x.shape}"
        if x.ndim == 1 and (self.n_in is None or x.shape[0] == self.n_in):
            msg += "; for a single sample use x.reshape(1, -1)"
        return msg

    def backward(self, dy: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Back-propagate ``dy = dL/dy`` and fill :attr:`grads`.

        With ``dz = dL/d(x @ W + b)`` (``= dy`` without activation):
        ``dW = x.T @ dz``, ``db = sum_i dz_i``, and the return value ``dx = dz @ W.T``.

        Parameters
        ----------
        dy : ndarray of shape (n_samples, n_out)
        input_grad : bool, default True
            ``False`` skips ``dx`` (one matrix product; the network uses it for its first layer
            when asked not to compute ``dL/dX``) and returns ``None``.

        Returns
        -------
        dx : ndarray of shape (n_samples, n_in), or None if ``input_grad`` is False
        """
        x = self._x
        if x is None:
            raise RuntimeError(f"{self._where()}: backward called before forward")
        if type(dy) is not np.ndarray:
            dy = np.asarray(dy)
        if dy.shape != (x.shape[0], self.n_out):
            raise ValueError(
                f"{self._where()}: dy has shape {dy.shape}, expected {(x.shape[0], self.n_out)} "
                "(the shape of this layer's last output)"
            )
        dz = self.activation.backward(dy) if self.activation is not None else dy
        grads = self.grads
        W = self.params["W"]
        mm = np.matmul if x.shape[0] * W.size >= _MATMUL_MIN_WORK else np.dot  # see _MATMUL_MIN_WORK
        grads["W"] = mm(x.T, dz)
        # db = sum over samples, as ones @ dz: BLAS is faster than a column reduction (cached ones)
        ones = self._ones
        if ones is None or ones.shape[0] != dz.shape[0] or ones.dtype is not dz.dtype:
            ones = self._ones = np.ones(dz.shape[0], dtype=dz.dtype)
        grads["b"] = np.dot(ones, dz)
        if not input_grad:
            return None
        return mm(dz, W.T)

    def forward_with_param(self, name: str, x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """Return ``f(value) -> forward(x)`` computed with ``params[name]`` replaced by ``value``.

        The original array is put back afterwards, even if the forward raises (seed notebook 002).

        Parameters
        ----------
        name : {"W", "b"}
        x : ndarray of shape (n_samples, n_in)

        Returns
        -------
        callable taking an ndarray of the parameter's shape.
        """
        if not self.built:
            self.forward(x)  # a lazy layer needs its parameters first
        if name not in self.params:
            raise KeyError(f"{self._where()} has no parameter {name!r}; parameters are {sorted(self.params)}")

        def f(value: np.ndarray) -> np.ndarray:
            value = np.asarray(value)
            old = self.params[name]
            if value.shape != old.shape:
                raise ValueError(
                    f"{self._where()}: value for parameter {name!r} has shape {value.shape}, expected {old.shape}"
                )
            self.params[name] = value
            try:
                return self.forward(x)
            finally:
                self.params[name] = old

        return f

    # -- description --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this layer (JSON-serialisable)."""
        act = self.activation
        if act is None:
            act_cfg: Any = None
        elif act.get_config():
            act_cfg = {"name": act.name, **act.get_config()}
        else:
            act_cfg = act.name
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "init": self.init,
            "activation": act_cfg,
            "scale": self.scale,
            "dtype": self.dtype.name,
            "name": self.name,
        }

    def __repr__(self) -> str:
        args = [str(self.n_in), str(self.n_out)] if self.n_in is not None else [f"n_out={self.n_out}"]
        if self.activation is not None:
            cfg = self.activation.get_config()
            if cfg:
                args.append(f"activation={self.activation!r}")
            else:
                args.append(f"activation={self.activation.name!r}")
        if self.dtype != np.float64:
            args.append(f"dtype={self.dtype.name}")
        if self.name is not None:
            args.append(f"name={self.name!r}")
        return f"Dense({', '.join(args)})"


# Alias used by seed notebook 002.
FullyConnected = Dense
