"""pytest helpers: assert that a backward pass is right, with the checker's report as the message.

>>> assert_gradients(np.tanh, lambda x: 1 - np.tanh(x) ** 2, x)          # function form
>>> assert_model_gradients(model, X, y, loss)                           # model form
>>> assert_params_gradients(loss, params, grads)                       # hand-written model form

Each raises ``AssertionError`` (a :class:`verigrad.check.GradientCheckError`, which carries ``.report``)
whose message is the full report. The implementation lives in :mod:`verigrad.check.testing` (the
checker's package, NumPy only); this module is its public, short name.
"""

from verigrad.check.testing import (
    GradientCheckError,
    assert_gradients,
    assert_model_gradients,
    assert_params_gradients,
)

__all__ = ["assert_gradients", "assert_model_gradients", "assert_params_gradients", "GradientCheckError"]
