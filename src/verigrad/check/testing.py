"""pytest helpers for any code checked with :mod:`verigrad.check`: assert, with the report as the message.

>>> assert_gradients(np.tanh, lambda x: 1 - np.tanh(x) ** 2, x)                # a function
>>> assert_gradients(lambda v: affine_forward(v, w, b), dx, x, dout)           # (out, cache) layers
>>> assert_gradients(lambda: net.loss(X, y), net.params, grads)                # (loss, grads) models
>>> assert_gradients(lambda: net.loss(X, y), net, net)                         # self.W1 / self.dW1
>>> assert_gradients(cost, net.weights + net.biases, nabla_w + nabla_b)        # lists of arrays
>>> assert_gradients(model, X, y, loss_fn)                                     # the model protocol

Each failure raises :class:`verigrad.check.GradientCheckError` (an ``AssertionError`` carrying
``.report``) whose message is the full report: the table, the worst entry and the diagnosis.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Number
from typing import Any, Union

import numpy as np

from verigrad.check.api import check_gradients, check_params, gradient_check
from verigrad.check.report import GradientCheckError, GradientReport, ModelReport

__all__ = ["assert_gradients", "assert_model_gradients", "assert_params_gradients", "GradientCheckError"]


def _is_model(obj: Any) -> bool:
    return all(callable(getattr(obj, m, None)) for m in ("forward", "backward")) and any(
        hasattr(obj, m) for m in ("params", "parameters"))


def _is_params_form(params: Any, grads: Any) -> bool:
    """Whether ``(params, grads)`` are the live parameters and gradients of :func:`check_params`."""
    if params is grads and not isinstance(params, (np.ndarray, Number)):
        return True  # one object holding W1 and dW1
    if isinstance(params, Mapping):
        return True
    if isinstance(params, (list, tuple)):
        return bool(params) and all(isinstance(p, np.ndarray) for p in params)
    return not (callable(params) or isinstance(params, (np.ndarray, np.generic, Number, str, bytes)))


def assert_gradients(fn: Any, grad: Any, x: Any, dLdf: Any = None,
                     **options: Any) -> Union[GradientReport, ModelReport]:
    """Assert that a backward pass is right; dispatch on the arguments' form.

    * ``assert_gradients(fn, grad, x, dLdf=None)``: :func:`check_gradients`;
    * ``assert_gradients(loss, params, grads)`` with ``params`` a dict, a list of arrays or an object
      (``grads`` in the same form, or the same object): :func:`check_params`;
    * ``assert_gradients(model, X, y, loss_fn)`` with a model that has ``forward``, ``backward`` and
      ``params``/``parameters``: :func:`gradient_check`.

    Returns
    -------
    GradientReport or ModelReport
        The passing report.

    Raises
    ------
    AssertionError
        (:class:`GradientCheckError`) with the report text when the check fails.
    """
    if _is_model(fn):
        return assert_model_gradients(fn, grad, x, dLdf, **options)
    if dLdf is None and _is_params_form(grad, x):
        return assert_params_gradients(fn, grad, x, **options)
    return check_gradients(fn, grad, x, dLdf, **options).raise_if_failed()


def assert_model_gradients(model: Any, X: Any, y: Any, loss_fn: Any, **options: Any) -> ModelReport:
    """Assert that every gradient of ``model`` (and dL/dX) is right (see :func:`gradient_check`)."""
    return gradient_check(model, X, y, loss_fn, **options).raise_if_failed()


def assert_params_gradients(loss: Any, params: Any, grads: Any, **options: Any) -> ModelReport:
    """Assert that ``grads`` are the gradients of ``loss()`` w.r.t. the live ``params`` (:func:`check_params`)."""
    return check_params(loss, params, grads, **options).raise_if_failed()
