"""verigrad.check: verify any backward pass against finite differences and say what is wrong.

Entry points
------------
check_gradients(fn, grad, x, dLdf=None, **options) -> GradientReport
    A function and its claimed gradient (``L = sum(fn(x) * dLdf)``).
check_params(loss, params, grads, **options) -> ModelReport
    A hand-written model: ``loss()`` reads the live arrays in ``params``.
gradient_check(model, X, y, loss_fn, eps=None, atol=None, rtol=None, **options) -> ModelReport
    Any model following the network protocol (every parameter, and dL/dX as ``"input"``).
check_layers(model, X, **options) -> LayersReport
    Each layer in isolation; ``report.first_faulty`` names the first faulty layer.

This package depends on NumPy only (rich is imported lazily for rendering); it never imports
``verigrad.nn``. How the checker decides is explained in ``docs/checker.md``.
"""

from verigrad.check.api import METHODS, MODES, check_gradients, check_layers, check_params, gradient_check
from verigrad.check.diagnosis import KINDS, PASSING_KINDS, Diagnosis
from verigrad.check.report import GradientCheckError, GradientReport, LayersReport, ModelReport, WorstEntry

__all__ = [
    "check_gradients",
    "check_params",
    "gradient_check",
    "check_layers",
    "GradientReport",
    "ModelReport",
    "LayersReport",
    "WorstEntry",
    "Diagnosis",
    "GradientCheckError",
    "KINDS",
    "PASSING_KINDS",
    "METHODS",
    "MODES",
]
