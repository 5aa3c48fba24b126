"""Hand-written torch autograd Functions, correct and deliberately wrong, used by the torch tests.

Each wrong Function carries exactly one classic backprop bug; its docstring names it.
(No ``__init__.py`` in this folder on purpose: with ``tests/`` on ``sys.path`` a package named
``tests/torch`` would shadow PyTorch.)
"""

from __future__ import annotations

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


class MatmulTransposed(torch.autograd.Function):
    """y = x @ W with W square. Bug: dW transposed."""

    @staticmethod
    def forward(ctx, x, W):
        ctx.save_for_backward(x, W)
        return x @ W

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
