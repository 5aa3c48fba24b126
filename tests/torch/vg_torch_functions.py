"""Hand-written torch autograd Functions and modules, correct and deliberately wrong: the catalogue of the
torch tests and of ``benchmarks/torch_check.py`` (which imports this file; verigrad itself does not ship it).

Each wrong Function carries exactly one classic backprop bug; its docstring names it. The second half holds
our own versions of the custom Functions people write in the wild, in the styles of PyTorch's "Extending
PyTorch" note and "Learning PyTorch with examples" tutorial (``LinearFunction`` with ``needs_input_grad`` and
an optional bias, ``MulConstant`` with a non-tensor argument, ``MyCube`` with two outputs and
``setup_context``, ``LegendrePolynomial3``, ``MyReLU``, ``Exp`` saving its result, an in-place Function with
``mark_dirty``, modules with a custom Function inside, buffers and frozen parameters). :data:`CASES` lists
every case with its inputs and the expected verdict.
(No ``__init__.py`` in this folder on purpose: with ``tests/`` on ``sys.path`` a package named
``tests/torch`` would shadow PyTorch.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# ---------------------------------------------------------------- correct


class Linear(torch.autograd.Function):
    """y = x @ W + b, x (n, i), W (i, o), b (o,)."""

    @staticmethod
    def forward(ctx, x, W, b):
        ctx.save_for_backward(x, W)
        return x @ W + b

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return g @ W.T, x.T @ g, g.sum(0)


class Matmul(torch.autograd.Function):
    """y = x @ W, x (n, i), W (i, o) (the base of the matmul bugs below)."""

    @staticmethod
    def forward(ctx, x, W):
        ctx.save_for_backward(x, W)
        return x @ W

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return g @ W.T, x.T @ g


class Sigmoid(torch.autograd.Function):
    """y = 1 / (1 + exp(-x)) computed stably; dy/dx = y (1 - y)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * (1 - y)


class Tanh(torch.autograd.Function):
    """y = tanh(x); dy/dx = 1 - y^2."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


class Softmax(torch.autograd.Function):
    """Row-wise softmax; dx = y * (g - sum(g * y, -1))."""

    @staticmethod
    def forward(ctx, x):
        y = torch.softmax(x, dim=-1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(-1, keepdim=True))


class ReLU(torch.autograd.Function):
    """max(x, 0); derivative 1 for x > 0, 0 otherwise (0 at the kink, as torch)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 0).to(g.dtype)


class LeakyReLU(torch.autograd.Function):
    """x if x > 0 else 0.1 x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 0, x, 0.1 * x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where(x > 0, g, 0.1 * g)


class MeanSquare(torch.autograd.Function):
    """L = mean over the batch of 0.5 * ||p_i - y_i||^2 (p (N, k)); dL/dp = (p - y) / N."""

    @staticmethod
    def forward(ctx, p, y):
        ctx.save_for_backward(p, y)
        return 0.5 * ((p - y) ** 2).sum() / p.shape[0]

    @staticmethod
    def backward(ctx, g):
        p, y = ctx.saved_tensors
        return g * (p - y) / p.shape[0], None


# ---------------------------------------------------------------- wrong


class SigmoidSignFlip(Sigmoid):
    """Bug: sign flipped."""

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return -g * y * (1 - y)


class TanhTimesTwo(Tanh):
    """Bug: gradient scaled by 2."""

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return 2 * g * (1 - y * y)


class MeanSquareNoN(MeanSquare):
    """Bug: forgets the 1/N of the mean."""

    @staticmethod
    def backward(ctx, g):
        p, y = ctx.saved_tensors
        return g * (p - y), None


class MatmulTransposed(Matmul):
    """y = x @ W with W square. Bug: dW transposed."""

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return g @ W.T, (x.T @ g).T


class LinearOneColumnWrong(Linear):
    """Bug: column 0 of dW is computed from the wrong output column."""

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        dW = x.T @ g
        dW[:, 0] = x.T @ g[:, 1]
        return g @ W.T, dW, g.sum(0)


class LinearZeroGradW(Linear):
    """Bug: dW is never computed (zeros)."""

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return g @ W.T, torch.zeros_like(W), g.sum(0)


class SoftmaxDiagonal(Softmax):
    """Bug: only the diagonal of the softmax Jacobian, dx = g * y * (1 - y)."""

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * (1 - y)


class SigmoidMutatesSaved(Sigmoid):
    """Bug: the backward writes into its saved input (the caller's tensor)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sigmoid(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        y = x.sigmoid_()  # in place on the caller's x!
        return g * y * (1 - y)


class LogSumExp(torch.autograd.Function):
    """Row-wise logsumexp (N, C) -> (N,); dx = g exp(x - y)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.logsumexp(x, dim=-1)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g[:, None] * torch.exp(x - y[:, None])


class LinearBiasNotSummed(Linear):
    """Bug: bias gradient taken from the first row only instead of summed over the batch."""

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return g @ W.T, x.T @ g, g[0]


class SigmoidSaturationShortcut(Sigmoid):
    """Bug, only for large inputs: "the sigmoid is saturated above |z| > 3, return 0"."""

    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return torch.where(x.abs() > 3, torch.zeros_like(g), g * y * (1 - y))


class ReLUWrongAtPositive(ReLU):
    """Bug: derivative 1 only for x > 1 (off-by-threshold)."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x > 1).to(g.dtype)


# ---------------------------------------------------------------- in the wild: correct


class DocsLinear(torch.autograd.Function):
    """"Extending PyTorch" style: y = x W^T + b, W (out, in), optional bias, ``needs_input_grad`` gates."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight, bias)
        out = x.mm(weight.t())
        if bias is not None:
            out += bias.unsqueeze(0).expand_as(out)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, bias = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_out.t().mm(x)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum(0)
        return grad_x, grad_weight, grad_bias


class MulConstant(torch.autograd.Function):
    """y = c x with a Python number c (a non-tensor argument: its gradient is None)."""

    @staticmethod
    def forward(ctx, x, constant):
        ctx.constant = constant
        return x * constant

    @staticmethod
    def backward(ctx, g):
        return g * ctx.constant, None


class MyCube(torch.autograd.Function):
    """torch >= 2.0 style (forward without ctx, ``setup_context``), two outputs: (x^3, 3x^2)."""

    @staticmethod
    def forward(x):
        return x ** 3, 3 * x ** 2

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x, output[1])

    @staticmethod
    def backward(ctx, grad_y, grad_dx):
        x, dx = ctx.saved_tensors
        return grad_y * dx + grad_dx * 6 * x


class Legendre3(torch.autograd.Function):
    """P3(x) = (5x^3 - 3x) / 2, P3'(x) = 3 (5x^2 - 1) / 2 (the tutorial's polynomial)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * (5 * x ** 3 - 3 * x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 1.5 * (5 * x ** 2 - 1)


class TutorialReLU(ReLU):
    """The tutorial's ReLU (the forward of :class:`ReLU`): clone the incoming gradient, zero it where x < 0."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        grad_x = g.clone()
        grad_x[x < 0] = 0
        return grad_x


class Exp(torch.autograd.Function):
    """exp(x), saving its result (``save_for_backward(result)``)."""

    @staticmethod
    def forward(ctx, x):
        result = x.exp()
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, g):
        (result,) = ctx.saved_tensors
        return g * result


class MulAdd(torch.autograd.Function):
    """f = x * y + x, two tensor inputs of the same shape."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y + x

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * (y + 1), g * x


class ScaleInplace(torch.autograd.Function):
    """x *= 3 in place, declared with ``mark_dirty`` (as torch's own in-place ops)."""

    @staticmethod
    def forward(ctx, x):
        x.mul_(3)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, g):
        return 3 * g


class CustomLinear(torch.nn.Module):
    """An ``nn.Module`` whose forward is a custom Function; parameters drawn from an explicit generator."""

    def __init__(self, n_in: int, n_out: int, function: type = DocsLinear, seed: int = 0,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.function = function
        self.weight = torch.nn.Parameter(torch.randn(n_out, n_in, generator=gen, dtype=dtype) / n_in ** 0.5)
        self.bias = torch.nn.Parameter(0.1 * torch.randn(n_out, generator=gen, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.function.apply(x, self.weight, self.bias)


class NormedBlock(torch.nn.Module):
    """Custom linear, BatchNorm1d (running statistics as buffers), a frozen per-feature gain, a buffer scale
    and a custom Function activation: what a real model block holds besides trainable parameters."""

    def __init__(self, n_in: int = 4, n_out: int = 5, seed: int = 0, dtype: torch.dtype = torch.float64,
                 activation: type = Legendre3) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed + 1)
        self.lin = CustomLinear(n_in, n_out, seed=seed, dtype=dtype)
        self.norm = torch.nn.BatchNorm1d(n_out, dtype=dtype)
        self.gain = torch.nn.Parameter(1 + 0.1 * torch.rand(n_out, generator=gen, dtype=dtype), requires_grad=False)
        self.register_buffer("scale", torch.tensor(0.5, dtype=dtype))
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation.apply(self.scale * self.gain * self.norm(self.lin(x)))


# ---------------------------------------------------------------- in the wild: wrong


class DocsLinearGateIndex(DocsLinear):
    """Bug: the ``needs_input_grad`` gate of grad_x tests index 1 (the weight's): with a frozen weight the
    input gets no gradient (None)."""

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, bias = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_x = grad_out.mm(weight)
            grad_weight = grad_out.t().mm(x)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum(0)
        return grad_x, grad_weight, grad_bias


class DocsLinearWeightTransposed(DocsLinear):
    """Bug: grad_weight computed as x^T g, the transposed shape (in, out) of W (out, in)."""

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, bias = ctx.saved_tensors
        return grad_out.mm(weight), x.t().mm(grad_out), grad_out.sum(0)


class DocsLinearTooFewGradients(DocsLinear):
    """Bug: forgets the bias: returns two gradients for three forward arguments."""

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, bias = ctx.saved_tensors
        return grad_out.mm(weight), grad_out.t().mm(x)


class MulConstantForgetsConstant(MulConstant):
    """Bug: returns the incoming gradient unscaled."""

    @staticmethod
    def backward(ctx, g):
        return g, None


class MyCubeIgnoresSecondOutput(MyCube):
    """Bug: ignores the gradient arriving at the second output (dx = 3x^2 depends on x too)."""

    @staticmethod
    def backward(ctx, grad_y, grad_dx):
        x, dx = ctx.saved_tensors
        return grad_y * dx


class Legendre3SignFlip(Legendre3):
    """Bug: sign flipped."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g * 1.5 * (5 * x ** 2 - 1)


class Legendre3ForgetsFactor(Legendre3):
    """Bug: forgets the 3/2 in front of (5x^2 - 1)."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (5 * x ** 2 - 1)


class TutorialReLUInplaceGrad(TutorialReLU):
    """Bug: zeroes the incoming gradient in place instead of a clone of it."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        g[x < 0] = 0
        return g


class ExpUsesInput(Exp):
    """Bug: saves x and returns g * x, as if the saved tensor were the result."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.exp()


class MulAddSwapped(MulAdd):
    """Bug: the two gradients returned in the wrong order."""

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * x, g * (y + 1)


class MatmulGradsSwapped(Matmul):
    """f = x @ W, x (n, i), W (i, o). Bug: returns (dW, dx): each of the other's shape."""

    @staticmethod
    def backward(ctx, g):
        x, W = ctx.saved_tensors
        return x.T @ g, g @ W.T


class ScaleInplaceForgetsFactor(ScaleInplace):
    """Bug: the in-place x *= 3 passes the gradient through unscaled."""

    @staticmethod
    def backward(ctx, g):
        return g


# ---------------------------------------------------------------- the catalogue


@dataclass
class Case:
    """One catalogue entry: ``fn(*make_inputs(generator))`` is checked.

    ``expect`` is the diagnosis kind of a buggy case (None: any failing kind; a correct case must pass).
    ``probe_only``: a bug the default check cannot see at these inputs (only ``probe=True`` finds it).
    """

    name: str
    fn: Callable[..., torch.Tensor]
    make_inputs: Callable[[torch.Generator], tuple]
    buggy: bool
    expect: str | None = None
    probe_only: bool = False


def t(gen: torch.Generator, *shape: int, dtype: torch.dtype = torch.float64, scale: float = 1.0,
      grad: bool = True) -> torch.Tensor:
    """A standard normal tensor (times ``scale``) drawn from ``gen`` in float64, cast to ``dtype``."""
    x = scale * torch.randn(*shape, generator=gen, dtype=torch.float64)
    return x.to(dtype).requires_grad_(grad)


def relu_inputs(gen: torch.Generator) -> tuple[torch.Tensor]:
    """(6, 5) normal with entries exactly at the kink and within 1e-6 of it."""
    x = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    x[0, :3] = 0.0
    x[1, :3] = torch.tensor([1e-7, -3e-7, 5e-7], dtype=torch.float64)
    return (x.requires_grad_(True),)


def linear_inputs(gen: torch.Generator, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
    return t(gen, 8, 5, dtype=dtype), t(gen, 5, 4, dtype=dtype), t(gen, 4, dtype=dtype)


def docs_linear_inputs(gen: torch.Generator, dtype: torch.dtype = torch.float64,
                       weight_grad: bool = True) -> tuple[torch.Tensor, ...]:
    return t(gen, 8, 5, dtype=dtype), t(gen, 3, 5, dtype=dtype, grad=weight_grad), t(gen, 3, dtype=dtype)


def mse_inputs(gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    return t(gen, 8, 3), t(gen, 8, 3, grad=False)


def block_input(gen: torch.Generator, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor]:
    return (t(gen, 8, 4, dtype=dtype, grad=False),)


CASES: list[Case] = [
    # classic layers, correct
    Case("linear", Linear.apply, linear_inputs, False),
    Case("linear float32", Linear.apply, lambda g: linear_inputs(g, torch.float32), False),
    Case("linear 800 entries", Linear.apply, lambda g: (t(g, 32, 16), t(g, 16, 16), t(g, 16)), False),
    Case("sigmoid", Sigmoid.apply, lambda g: (t(g, 6, 5, scale=3.0),), False),
    Case("tanh float32", Tanh.apply, lambda g: (t(g, 6, 5, dtype=torch.float32),), False),
    Case("relu at 0", ReLU.apply, relu_inputs, False),
    Case("softmax", Softmax.apply, lambda g: (t(g, 4, 6, scale=2.0),), False),
    Case("logsumexp large", LogSumExp.apply, lambda g: (t(g, 4, 6, scale=50.0),), False),
    Case("mse mean", MeanSquare.apply, mse_inputs, False),
    # classic layers, one bug each
    Case("sigmoid sign", SigmoidSignFlip.apply, lambda g: (t(g, 6, 5),), True, "sign"),
    Case("tanh x2", TanhTimesTwo.apply, lambda g: (t(g, 6, 5),), True, "scale"),
    Case("mse missing 1/N", MeanSquareNoN.apply, mse_inputs, True, "scale"),
    Case("matmul dW transposed", MatmulTransposed.apply, lambda g: (t(g, 6, 4), t(g, 4, 4)), True, "transpose"),
    Case("linear one column", LinearOneColumnWrong.apply, linear_inputs, True, "partial"),
    Case("linear dW zero", LinearZeroGradW.apply, linear_inputs, True, "zero"),
    Case("linear db not summed", LinearBiasNotSummed.apply, linear_inputs, True, None),
    Case("softmax diagonal only", SoftmaxDiagonal.apply, lambda g: (t(g, 4, 6, scale=2.0),), True, None),
    Case("sigmoid 0 beyond 3", SigmoidSaturationShortcut.apply, lambda g: (t(g, 6, 5, scale=2.5),), True, None),
    Case("relu threshold 1", ReLUWrongAtPositive.apply, relu_inputs, True, None),
    Case("sigmoid 0 beyond 3, small x", SigmoidSaturationShortcut.apply, lambda g: (t(g, 6, 5, scale=0.5),),
         True, None, probe_only=True),
    # in the wild, correct
    Case("docs LinearFunction", DocsLinear.apply, docs_linear_inputs, False),
    Case("docs LinearFunction, frozen W", DocsLinear.apply, lambda g: docs_linear_inputs(g, weight_grad=False),
         False),
    Case("docs LinearFunction, no bias", DocsLinear.apply, lambda g: docs_linear_inputs(g)[:2], False),
    Case("MulConstant(x, 2.5)", MulConstant.apply, lambda g: (t(g, 5, 4), 2.5), False),
    Case("MyCube 2 outputs, setup_context", MyCube.apply, lambda g: (t(g, 5, 3),), False),
    Case("Legendre P3 float32", Legendre3.apply, lambda g: (t(g, 6, 4, dtype=torch.float32),), False),
    Case("tutorial ReLU", TutorialReLU.apply, relu_inputs, False),
    Case("Exp saves result", Exp.apply, lambda g: (t(g, 5, 4),), False),
    Case("in-place x*=3, mark_dirty", ScaleInplace.apply, lambda g: (t(g, 5, 4),), False),
    Case("module with custom Function", CustomLinear(5, 3), lambda g: (t(g, 8, 5),), False),
    Case("block: BatchNorm, buffer, frozen", NormedBlock(), block_input, False),
    Case("block float32", NormedBlock(dtype=torch.float32), lambda g: block_input(g, torch.float32), False),
    # in the wild, one bug each
    Case("needs_input_grad wrong index", DocsLinearGateIndex.apply,
         lambda g: docs_linear_inputs(g, weight_grad=False), True, "zero"),
    Case("grad_weight transposed shape", DocsLinearWeightTransposed.apply, docs_linear_inputs, True, "transpose"),
    Case("MulConstant forgets c", MulConstantForgetsConstant.apply, lambda g: (t(g, 5, 4), 2.5), True, "scale"),
    Case("MyCube ignores 2nd output", MyCubeIgnoresSecondOutput.apply, lambda g: (t(g, 5, 3),), True, None),
    Case("Legendre P3 sign", Legendre3SignFlip.apply, lambda g: (t(g, 6, 4),), True, "sign"),
    Case("Legendre P3 forgets 3/2", Legendre3ForgetsFactor.apply, lambda g: (t(g, 6, 4),), True, "scale"),
    Case("ReLU zeroes grad_output in place", TutorialReLUInplaceGrad.apply, relu_inputs, True, "mutates_input"),
    Case("Exp uses input", ExpUsesInput.apply, lambda g: (t(g, 5, 4),), True, None),
    Case("MulAdd grads swapped", MulAddSwapped.apply, lambda g: (t(g, 5, 4), t(g, 5, 4)), True, "mismatch"),
    Case("matmul grads swapped (shapes)", MatmulGradsSwapped.apply, lambda g: (t(g, 6, 4), t(g, 4, 3)), True,
         "mismatch"),
    Case("in-place x*=3 forgets 3", ScaleInplaceForgetsFactor.apply, lambda g: (t(g, 5, 4),), True, "scale"),
    Case("module, grad_weight transposed", CustomLinear(5, 3, DocsLinearWeightTransposed),
         lambda g: (t(g, 8, 5),), True, "transpose"),
    Case("block with Legendre sign bug", NormedBlock(activation=Legendre3SignFlip), block_input, True, "sign"),
]
