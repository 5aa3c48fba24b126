"""Deliberately broken backward passes, for teaching (``verigrad check --inject-bug``, the demo).

Each bug is one wrong line in a Dense layer's backward pass, the mistakes students make:

missing-1/N   dW computed from the un-averaged upstream gradient: ``dW = N * X^T dY`` (the 1/N forgotten)
sign          ``dW = -(X^T dY)`` (gradient ascent by mistake)
transpose     ``dW = (X^T dY)^T`` (needs a square weight matrix)
one-column    the last column of dW is taken from the wrong output unit (``dY[:, 0]``)
bias-mean     ``db = mean(dY, axis=0)`` instead of the sum (db off by 1/N)
"""

from __future__ import annotations

from typing import Any

import numpy as np

BUGS: tuple[str, ...] = ("none", "missing-1/N", "sign", "transpose", "one-column", "bias-mean")

BUG_HELP: dict[str, str] = {
    "none": "no bug: the correct backward pass",
    "missing-1/N": "dW = N * X^T dY (the 1/N of the mean forgotten)",
    "sign": "dW = -(X^T dY)",
    "transpose": "dW = (X^T dY)^T (square W only)",
    "one-column": "the last column of dW uses dY[:, 0]",
    "bias-mean": "db = mean(dY) instead of sum(dY)",
}


def make_buggy_dense(dense: Any, bug: str) -> Any:
    """Return a copy of ``dense`` (same weights) whose backward has ``bug``.

    Parameters
    ----------
    dense : verigrad.nn.Dense
        The correct layer; its parameters are copied, it is not modified.
    bug : str
        One of :data:`BUGS` other than ``"none"``.

    Returns
    -------
    Dense subclass instance
        Forward is unchanged; backward returns the correct ``dL/dx`` but fills a wrong
        ``grads["W"]`` or ``grads["b"]``.
    """
    from verigrad.nn import Dense

    if bug not in BUGS or bug == "none":
        raise ValueError(f"bug: expected one of {', '.join(b for b in BUGS if b != 'none')}, got {bug!r}")
    W = dense.params["W"]
    if bug == "transpose" and W.shape[0] != W.shape[1]:
        raise ValueError(f"bug 'transpose' needs a square weight matrix, this layer's W has shape {W.shape}")
    if bug == "one-column" and W.shape[1] < 2:
        raise ValueError(f"bug 'one-column' needs at least 2 output units, this layer's W has shape {W.shape}")

    class BuggyDense(Dense):
        """Dense with one wrong line in backward (see :mod:`verigrad.cli.bugs`)."""

        injected_bug = bug

        def backward(self, dy: np.ndarray) -> np.ndarray:  # type: ignore[override]
            dx = super().backward(dy)
            gW = self.grads["W"]
            if bug == "missing-1/N":
                gW *= dy.shape[0]
            elif bug == "sign":
                gW *= -1.0
            elif bug == "transpose":
                gW[...] = gW.T.copy()
            elif bug == "one-column":
                x = self._bug_input
                gW[:, -1] = x.reshape(x.shape[0], -1).T @ dy[:, 0]
            elif bug == "bias-mean":
                self.grads["b"] /= dy.shape[0]
            return dx

        def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:  # type: ignore[override]
            self._bug_input = x
            return super().forward(x, training=training)

    n_in, n_out = W.shape
    buggy = BuggyDense(n_in, n_out, seed=0)
    for key, value in dense.params.items():
        buggy.params[key] = value.copy()
        if key in buggy.grads:
            buggy.grads[key] = np.zeros_like(buggy.params[key])
    return buggy


def inject_bug(model: Any, bug: str, layer: int | None = None) -> int:
    """Replace one Dense layer of ``model`` (in place) by a buggy copy; return its index.

    Parameters
    ----------
    model : verigrad.nn.NeuralNetwork
    bug : str
        One of :data:`BUGS`; ``"none"`` leaves the model unchanged and returns -1.
    layer : int, optional
        Index in ``model.layers`` of the Dense layer to break. Default: the first Dense layer
        the bug applies to (for ``transpose`` the first square one).
    """
    if bug == "none":
        return -1
    from verigrad.nn import Dense

    candidates = [i for i, lay in enumerate(model.layers) if isinstance(lay, Dense)]
    if layer is not None:
        if layer not in candidates:
            raise ValueError(f"layer: index {layer} is not a Dense layer (Dense layers at {candidates})")
        candidates = [layer]
    if bug == "transpose":
        candidates = [i for i in candidates if model.layers[i].params["W"].shape[0] == model.layers[i].params["W"].shape[1]]
        if not candidates:
            raise ValueError("bug 'transpose' needs a square Dense layer: add a hidden layer of equal widths, "
                             "e.g. --layers 2-16-16-2")
    if bug == "one-column":
        candidates = [i for i in candidates if model.layers[i].params["W"].shape[1] >= 2]
        if not candidates:
            raise ValueError("bug 'one-column' needs a Dense layer with at least 2 output units")
    idx = candidates[0]
    model.layers[idx] = make_buggy_dense(model.layers[idx], bug)
    return idx
