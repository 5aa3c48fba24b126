"""pytest helpers: assert that a backward pass is right, with the checker's report as the message.

>>> assert_gradients(np.tanh, lambda x: 1 - np.tanh(x) ** 2, x)          # function form
>>> assert_model_gradients(model, X, y, loss)                           # model form
>>> assert_params_gradients(loss, params, grads)                       # hand-written model form

Each raises ``AssertionError`` (a :class:`verigrad.check.GradientCheckError`, which carries ``.report``)
whose message is the full report: the table, the worst entry and the diagnosis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verigrad.check import GradientCheckError, check_gradients, check_params, gradient_check
from verigrad.check.report import GradientReport, ModelReport

__all__ = ["assert_gradients", "assert_model_gradients", "assert_params_gradients", "GradientCheckError"]


def _is_model(obj: Any) -> bool:
    return all(callable(getattr(obj, m, None)) for m in ("forward", "backward", "params", "grads"))


def assert_gradients(fn: Any, grad: Any, x: Any, dLdf: Any = None, **options: Any) -> GradientReport | ModelReport:
    """Assert that ``grad`` is the gradient of ``L = sum(fn(x) * dLdf)`` (see ``check_gradients``).

    For convenience, ``assert_gradients(model, X, y, loss_fn, **options)`` with a model following the
    network protocol dispatches to :func:`assert_model_gradients`; ``assert_gradients(loss, params,
    grads)`` with two mappings dispatches to :func:`assert_params_gradients`.

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
    if isinstance(grad, Mapping) and isinstance(x, Mapping):
        if dLdf is not None:
            raise TypeError("assert_gradients(loss, params, grads) takes no fourth argument")
        return assert_params_gradients(fn, grad, x, **options)
    report = check_gradients(fn, grad, x, dLdf, **options)
    if not report.passed:
        raise GradientCheckError(report)
    return report


def assert_model_gradients(model: Any, X: Any, y: Any, loss_fn: Any, **options: Any) -> ModelReport:
    """Assert that every gradient of ``model`` (and dL/dX) is right (see ``gradient_check``)."""
    if loss_fn is None:
        raise TypeError("assert_model_gradients needs loss_fn (an object with forward/backward)")
    report = gradient_check(model, X, y, loss_fn, **options)
    if not report.passed:
        raise GradientCheckError(report)
    return report


def assert_params_gradients(loss: Any, params: Mapping[str, Any], grads: Mapping[str, Any],
                            **options: Any) -> ModelReport:
    """Assert that ``grads`` are the gradients of ``loss()`` w.r.t. the live ``params`` (``check_params``)."""
    report = check_params(loss, params, grads, **options)
    if not report.passed:
        raise GradientCheckError(report)
    return report
