"""A feed-forward network: a list of layers applied in order (:class:`NeuralNetwork`, alias ``Sequential``)."""

from __future__ import annotations

import os
from typing import Any, Iterator, Sequence

import numpy as np

from ._fast import all_finite
from .layers import Dense

__all__ = ["NeuralNetwork", "Sequential"]

_REQUIRED = ("forward", "backward", "params", "grads")
#: an input up to this size is remembered byte for byte once checked finite (the check is then skipped)
_REMEMBER_BYTES = 4096


class _ParamDict(dict):
    """The dict of :attr:`NeuralNetwork.parameters`; calling it returns itself, so that both the
    attribute form (seed 002's ``layer.parameters[name]``) and torch's ``model.parameters()`` work."""

    def __call__(self) -> _ParamDict:
        return self


class NeuralNetwork:
    """Layers applied in order; backward runs them in reverse.

    Parameters
    ----------
    layers : sequence of layers
        Any objects following the layer protocol (``params``, ``grads``, ``forward(x, training=True)``,
        ``backward(dy)``), built-in or the user's own.
    allow_nonfinite : bool, default False
        Skip the NaN/inf check of the network input in :meth:`forward`.

    Attributes
    ----------
    layers : list
        The layers (each told its index, used in error messages).
    outputs : list of ndarray or None
        ``outputs[i]`` is the output of layer ``i`` in the last forward.
    output_grads : list of ndarray or None
        After :meth:`backward`, ``output_grads[i] = dL/d(outputs[i])`` (e.g. ``dL/dz`` and ``dL/da``
        for ``[Dense, Sigmoid]``). Like the layers' ``grads``, kept until the next backward.
    input_grad : ndarray or None
        ``dL/dX`` from the last :meth:`backward`.

    Examples
    --------
    >>> import numpy as np
    >>> from verigrad.nn import Dense, ReLU, NeuralNetwork
    >>> model = NeuralNetwork([Dense(5, 7, seed=0), ReLU(), Dense(7, 3, seed=1)])
    >>> sorted(model.params())
    ['W_0', 'W_2', 'b_0', 'b_2']
    """

    def __init__(self, layers: Sequence[Any], *, allow_nonfinite: bool = False) -> None:
        if isinstance(layers, NeuralNetwork):
            layers = layers.layers
        try:
            layers = list(layers)
        except TypeError:
            raise TypeError(
                f"NeuralNetwork: layers must be a list of layers, got {type(layers).__name__}"
            ) from None
        for i, layer in enumerate(layers):
            missing = [m for m in _REQUIRED if not hasattr(layer, m)]
            if isinstance(layer, type):
                raise TypeError(
                    f"NeuralNetwork: layer {i} is the class {layer.__name__}, not an instance; "
                    f"write {layer.__name__}(...)"
                )
            if missing:
                raise TypeError(
                    f"NeuralNetwork: layer {i} ({type(layer).__name__}) does not follow the layer protocol: "
                    f"missing {', '.join(missing)} (needs params, grads, forward(x, training=True), backward(dy))"
                )
            try:
                layer.index = i
            except AttributeError:
                pass
        self.layers: list[Any] = layers
        self.allow_nonfinite = bool(allow_nonfinite)
        self.outputs: list[np.ndarray] | None = None
        self.output_grads: list[np.ndarray] | None = None
        self.input_grad: np.ndarray | None = None
        self._input_shape: tuple[int, ...] | None = None
        # (X, X bytes) of the last small input found finite
        self._finite_input: tuple[np.ndarray, bytes] | None = None
        self._suffixes: list[str] = []

    # -- forward / backward -------------------------------------------------------------------
    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        """Run every layer on ``X`` and keep each layer's output in :attr:`outputs`.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        training : bool, default True
            Passed to every layer.

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)

        Raises
        ------
        ValueError
            Empty batch, or NaN/inf in ``X`` (unless ``allow_nonfinite=True``).
        """
        if type(X) is not np.ndarray:
            X = np.asarray(X)
        if X.ndim == 0 or X.shape[0] == 0:
            raise ValueError(f"NeuralNetwork.forward: X must be a non-empty batch of shape (n_samples, ...), got shape {X.shape}")
        if not self.allow_nonfinite and not self._is_finite_input(X):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(X))[0])
            raise ValueError(
                f"NeuralNetwork.forward: X contains NaN or inf (first at index {bad}: {X[bad]}); "
                "pass NeuralNetwork(..., allow_nonfinite=True) to allow it"
            )
        self.outputs = None  # release the last forward's arrays before allocating this one's
        outputs = []
        x = X
        for layer in self.layers:
            x = layer.forward(x, training)
            outputs.append(x)
        self.outputs = outputs
        self._input_shape = X.shape
        return x

    def _is_finite_input(self, X: np.ndarray) -> bool:
        """Whether ``X`` has no NaN/inf; a small ``X`` is remembered while it stays byte for byte the same."""
        known = self._finite_input
        if known is not None and known[0] is X and known[1] == X.tobytes():
            return True
        if not all_finite(X):
            return False
        self._finite_input = (X, X.tobytes()) if X.nbytes <= _REMEMBER_BYTES else None
        return True

    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Inference: ``forward(X, training=False)``."""
        return self.forward(X, training=False)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Alias of ``forward(X, training=False)``."""
        return self.forward(X, training=False)

    def backward(self, grad: np.ndarray, *, input_grad: bool = True, accumulate: bool = False) -> np.ndarray | None:
        """Back-propagate ``grad = dL/d(network output)`` through every layer, filling their ``grads``.

        Parameters
        ----------
        grad : ndarray of the shape of the last forward's output
        input_grad : bool, default True
            ``False`` lets a first ``Dense`` layer skip ``dL/dX = dz @ W.T``, which training does
            not need (like an input without ``requires_grad`` in torch); then ``None`` is returned
            and :attr:`input_grad` is ``None``. Parameter gradients are identical either way.
        accumulate : bool, default False
            ``False``: the gradients of this pass overwrite ``grads`` (no :meth:`zero_grad` needed).
            ``True``: they are added to the current ``grads``, as torch's ``loss.backward()`` does;
            then :meth:`zero_grad` between steps matters (seed 004, exercise 4).

        Returns
        -------
        dX : ndarray of the shape of the last forward's input (None if ``input_grad`` is False
            and the first layer is a Dense)

        Raises
        ------
        RuntimeError
            Called before :meth:`forward`.
        ValueError
            ``grad`` (or a layer's returned gradient) has the wrong shape.
        """
        outputs = self.outputs
        if outputs is None:
            raise RuntimeError("NeuralNetwork.backward called before forward: run model.forward(X) first")
        if accumulate:
            before = [{k: np.array(v, copy=True) for k, v in layer.grads.items()} for layer in self.layers]
            dX = self.backward(grad, input_grad=input_grad)
            for layer, old in zip(self.layers, before):
                for k, v in old.items():
                    new = layer.grads.get(k)
                    if new is not None and getattr(new, "shape", None) == v.shape:
                        layer.grads[k] = new + v
            return dX
        g = grad if type(grad) is np.ndarray else np.asarray(grad)
        n = len(self.layers)
        if n == 0:
            self.output_grads = []
            self.input_grad = g
            return g
        if g.shape != outputs[-1].shape:
            raise ValueError(
                f"NeuralNetwork.backward: grad has shape {g.shape}, expected {outputs[-1].shape} "
                "(the shape of the network output)"
            )
        output_grads: list[np.ndarray] = [None] * n  # type: ignore[list-item]
        stop = 0
        if not input_grad and type(self.layers[0]) is Dense:
            stop = 1
        layers = self.layers
        for i in range(n - 1, stop - 1, -1):
            output_grads[i] = g
            g = layers[i].backward(g)
            expected = outputs[i - 1].shape if i else self._input_shape
            if getattr(g, "shape", None) != expected:
                raise ValueError(
                    f"NeuralNetwork.backward: layer {i} ({self.layers[i]!r}) returned a gradient of shape "
                    f"{getattr(g, 'shape', type(g).__name__)}, expected {expected} (the shape of its input)"
                )
        if stop:
            output_grads[0] = g
            self.layers[0].backward(g, input_grad=False)
            g = None
        self.output_grads = output_grads
        self.input_grad = g
        return g

    # -- parameters ---------------------------------------------------------------------------
    def params(self) -> dict[str, np.ndarray]:
        """Live parameter arrays named ``<key>_<layer index>`` (``W_0, b_0, W_2, b_2``); no copies."""
        return self._named("params")

    def grads(self) -> dict[str, np.ndarray]:
        """Gradients under the same names as :meth:`params`."""
        return self._named("grads")

    def _named(self, attr: str) -> dict[str, np.ndarray]:
        """Every layer's ``params`` or ``grads`` entries, named ``<key>_<layer index>``."""
        layers = self.layers
        suffixes = self._suffixes
        if len(suffixes) != len(layers):  # the layers list may have been edited
            suffixes = self._suffixes = [f"_{i}" for i in range(len(layers))]
        out = {}
        for layer, suffix in zip(layers, suffixes):
            d = getattr(layer, attr)
            if d:
                for k, v in d.items():
                    out[k + suffix] = v
        return out

    @property
    def parameters(self) -> dict[str, np.ndarray]:
        """Alias of :meth:`params` (a new dict of the live arrays); ``model.parameters()`` works too (torch)."""
        return _ParamDict(self.params())

    @property
    def n_params(self) -> int:
        """Total number of scalar parameters."""
        return int(sum(p.size for p in self.params().values()))

    def zero_grad(self) -> None:
        """Set every gradient to zero (creating zero arrays for parameters without one yet)."""
        for layer in self.layers:
            for k, p in layer.params.items():
                g = layer.grads.get(k)
                if g is not None and g.shape == p.shape:
                    g[...] = 0
                else:
                    layer.grads[k] = np.zeros_like(p)

    def flat_params(self) -> np.ndarray:
        """All parameters as one 1-D copy, in :meth:`params` order."""
        ps = list(self.params().values())
        if not ps:
            return np.zeros(0)
        return np.concatenate([p.ravel() for p in ps])

    def flat_grads(self) -> np.ndarray:
        """All gradients as one 1-D copy, in :meth:`params` order."""
        params = self.params()
        grads = self.grads()
        missing = [k for k in params if k not in grads]
        if missing:
            raise RuntimeError(f"NeuralNetwork.flat_grads: no gradient yet for {', '.join(missing)}; run backward first")
        if not params:
            return np.zeros(0)
        return np.concatenate([np.asarray(grads[k]).ravel() for k in params])

    def set_flat_params(self, vector: np.ndarray) -> None:
        """Write a 1-D vector (as from :meth:`flat_params`) into the live parameters, in place.

        Raises
        ------
        ValueError
            ``vector`` is not 1-D or its length differs from :attr:`n_params`.
        """
        v = np.asarray(vector)
        params = self.params()
        expected = sum(p.size for p in params.values())
        if v.ndim != 1 or v.shape[0] != expected:
            raise ValueError(
                f"NeuralNetwork.set_flat_params: vector must have shape ({expected},) (n_params), got {v.shape}"
            )
        offset = 0
        for p in params.values():
            p[...] = v[offset:offset + p.size].reshape(p.shape)
            offset += p.size

    # -- fast checker hook --------------------------------------------------------------------
    def perturbed_losses(self, name: str, flat_index: np.ndarray, steps: np.ndarray, X: np.ndarray,
                         y: np.ndarray, loss_fn: Any) -> np.ndarray:
        """Losses under single-entry perturbations of parameter ``name`` (see docs/architecture.md).

        Entry ``[i, j]`` is ``loss_fn.forward(model.forward(X), y)`` with
        ``params()[name].flat[flat_index[i]]`` set to ``old + steps[i, j]``; parameters are not modified.

        Returns
        -------
        ndarray of shape (len(flat_index), steps.shape[1])
        """
        from .perturb import perturbed_losses as _fast

        return _fast(self, name, flat_index, steps, X, y, loss_fn)

    # -- save / load --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Save architecture and weights to one ``.npz`` file (see :func:`verigrad.nn.serialization.save_model`)."""
        from .serialization import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NeuralNetwork":
        """Load a network written by :meth:`save` (see :func:`verigrad.nn.serialization.load_model`)."""
        from .serialization import load_model

        return load_model(path)

    # -- container behaviour and description --------------------------------------------------
    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.layers)

    def __getitem__(self, i: int) -> Any:
        return self.layers[i]

    def summary(self) -> str:
        """A table of layers, output shapes, parameter shapes and counts."""
        rows = [("#", "layer", "output", "parameters", "count")]
        out = "?"
        for i, layer in enumerate(self.layers):
            if self.outputs is not None and i < len(self.outputs):
                out = "(N" + "".join(f", {d}" for d in self.outputs[i].shape[1:]) + ")"
            elif getattr(layer, "n_out", None) is not None:
                out = f"(N, {layer.n_out})"
            elif layer.params:
                out = "?"  # a layer with parameters may change the width; elementwise ones keep it
            shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in layer.params.items())
            count = sum(v.size for v in layer.params.values())
            rows.append((str(i), repr(layer), out, shapes or "-", str(count) if layer.params else "0"))
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        lines = [f"{type(self).__name__}: {len(self.layers)} layers, {self.n_params} parameters"]
        for r in rows:
            lines.append("  " + "  ".join(r[c].ljust(widths[c]) if c < 4 else r[c].rjust(widths[c]) for c in range(5)))
        return "\n".join(lines)

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"{type(self).__name__}({inner}\n)  # {self.n_params} parameters" if inner else f"{type(self).__name__}([])"


#: Alias.
Sequential = NeuralNetwork
