"""PyTorch interop: check any torch backward pass with verigrad, and compare a verigrad network with torch.

This module is an optional extra: ``import verigrad`` never imports it, and importing it without PyTorch
raises an :class:`ImportError` that names the extra (``pip install "verigrad[torch]"``).

Two entry points:

``check(fn, *inputs, dLdf=None, **options)``
    Verify the gradients torch autograd computes for ``fn`` (any differentiable torch callable, the
    ``.apply`` of a custom :class:`torch.autograd.Function`, or an :class:`torch.nn.Module`) against finite
    differences, with the same methods, modes, diagnoses (scale, sign, transpose, one column wrong, kink,
    float32 round-off, ...) and worst-entry report as the NumPy checker :mod:`verigrad.check`. Custom
    Functions are checked as they are written: non-tensor arguments (``MulConstant.apply(x, 2.5)``,
    ``LinearFunction.apply(x, W, None)``), several outputs (``setup_context`` style included),
    in-place Functions with ``ctx.mark_dirty``; backward-specific bugs get their own findings (gradients
    returned in the wrong order or of the wrong shape, ``None`` from a wrong ``needs_input_grad`` index,
    ``grad_output`` modified in place).

``parity(numpy_model, torch_module, X, y, loss)``
    Copy the weights of a verigrad ``NeuralNetwork`` into an equivalent torch module (built when not
    given), run both, and compare outputs, losses and every gradient, with torch autograd as the
    reference.

How ``check`` works. With an upstream gradient :math:`G` (``dLdf``; random normal by default, ``1`` for a
scalar output) the checked quantity is the scalar

.. math:: L(\\theta) = \\sum_{ij\\ldots} f(\\theta)_{ij\\ldots} \\, G_{ij\\ldots}

whose gradient with respect to every input and parameter :math:`\\theta` is exactly the vector-Jacobian
product torch's backward computes. The analytic side runs torch autograd on copies of the caller's
tensors in their *original* dtype (so a float32 backward is judged as float32); the numerical side
evaluates :math:`f` on float64 copies, one checked tensor at a time, through
:func:`verigrad.check.check_gradients` (which perturbs its own NumPy copy of that tensor and judges the
differences against float64 round-off and the analytic gradient against its own dtype's). The caller's
tensors, parameters, buffers and ``.grad`` fields are never written (the state of modules ``fn`` merely
holds, e.g. a lambda calling ``model``, is written back after the check).

Layout of this package (``import verigrad.torch`` loads it all; every module imports the real PyTorch
with an absolute ``import torch``):

* :mod:`verigrad.torch.checking` - :func:`check` and its orchestration;
* :mod:`verigrad.torch.tensors` - tensor helpers: copies, NumPy conversion, outputs and upstream
  gradients, float64 upcasting, :class:`TorchCheckError`;
* :mod:`verigrad.torch.backward` - gradients a backward returned that torch refuses or that belong to
  another input (wrong order, wrong shape), ``.backward()``-only code;
* :mod:`verigrad.torch.safety` - modules ``fn`` holds: their state saved and written back; deep copies;
* :mod:`verigrad.torch.findings` - what the torch check adds to the checker's report;
* :mod:`verigrad.torch.convert` - :func:`to_torch`, a verigrad network as a torch module;
* :mod:`verigrad.torch.compare` - :func:`parity` and :class:`ParityReport`.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401 - fails here, with the extra named, when PyTorch is missing
except ImportError as _exc:  # pragma: no cover - exercised only without torch installed
    raise ImportError(
        "verigrad.torch needs PyTorch, which is an optional extra of verigrad. "
        'Install it with: pip install "verigrad[torch]"'
    ) from _exc

from verigrad.torch.checking import check
from verigrad.torch.compare import PARITY_TOLERANCES, ParityEntry, ParityReport, parity
from verigrad.torch.convert import to_torch
from verigrad.torch.tensors import TorchCheckError

# the public names keep the module users import them from (reprs, tracebacks, pickles, docs)
for _public in (check, parity, to_torch, ParityEntry, ParityReport, TorchCheckError):
    _public.__module__ = __name__
del _public

__all__ = [
    "PARITY_TOLERANCES",
    "TorchCheckError",
    "check",
    "ParityEntry",
    "ParityReport",
    "parity",
    "to_torch",
]
