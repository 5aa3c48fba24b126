"""Third-party style: CS231n's other layer functions: dropout (seeded mask), layer normalisation, word
embeddings with integer indices, and the temporal softmax loss with a mask.

The embedding's classic bug is ``dW[x] += dout`` instead of ``np.add.at(dW, x, dout)``: NumPy's fancy
assignment keeps one update per repeated word, so only the rows of repeated words are wrong.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

from verigrad.check import check_gradients


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    rng = np.random.default_rng(dropout_param["seed"]) if "seed" in dropout_param else np.random.default_rng()
    if mode == "train":
        mask = (rng.uniform(size=x.shape) < p) / p        # inverted dropout, p = keep probability
        return x * mask, (dropout_param, mask)
    return x, (dropout_param, None)


def dropout_backward(dout, cache, bug: Optional[str] = None):
    _, mask = cache
    if bug == "mask_without_scale":
        return dout * (mask > 0)
    return dout * mask


def layernorm_forward(x, gamma, beta, eps=1e-5):
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (xhat, gamma, np.sqrt(var + eps))


def layernorm_backward(dout, cache, bug: Optional[str] = None):
    xhat, gamma, std = cache
    dgamma = np.sum(dout * xhat, axis=0)
    dbeta = np.sum(dout, axis=0)
    dxhat = dout * gamma
    axis = 0 if bug == "batchnorm_axis" else 1          # the batchnorm formula pasted unchanged
    dx = (dxhat - dxhat.mean(axis=axis, keepdims=True)
          - xhat * np.mean(dxhat * xhat, axis=axis, keepdims=True)) / std
    return dx, dgamma, dbeta


def word_embedding_forward(x, W):
    return W[x], (x, W)


def word_embedding_backward(dout, cache, bug: Optional[str] = None):
    x, W = cache
    dW = np.zeros_like(W)
    if bug == "fancy_assign":
        dW[x] += dout                                   # repeated indices are counted once
    else:
        np.add.at(dW, x, dout)
    return dW


def temporal_softmax_loss(x, y, mask, bug: Optional[str] = None):
    N, T, V = x.shape
    xf, yf, mf = x.reshape(N * T, V), y.reshape(N * T), mask.reshape(N * T)
    probs = np.exp(xf - xf.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    loss = -np.sum(mf * np.log(probs[np.arange(N * T), yf])) / N
    dx = probs.copy()
    dx[np.arange(N * T), yf] -= 1
    dx /= N
    if bug != "mask_forgotten":
        dx *= mf[:, None]
    return loss, dx.reshape(N, T, V)


def test_dropout_with_a_seed_passes_and_a_missing_rescale_is_a_scale():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 8))
    dout = rng.standard_normal(x.shape)
    param = {"p": 0.5, "mode": "train", "seed": 123}
    _, cache = dropout_forward(x, param)
    rep = check_gradients(lambda v: dropout_forward(v, param)[0], dropout_backward(dout, cache), x, dout)
    assert rep.passed, str(rep)
    bad = check_gradients(lambda v: dropout_forward(v, param)[0],
                          dropout_backward(dout, cache, bug="mask_without_scale"), x, dout)
    assert bad.diagnosis.kind == "scale" and bad.diagnosis.details["factor_name"] == "1/2"


def test_dropout_without_a_seed_is_nondeterministic():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 8))
    dout = rng.standard_normal(x.shape)
    param = {"p": 0.5, "mode": "train"}              # a fresh mask at every call
    _, cache = dropout_forward(x, param)
    rep = check_gradients(lambda v: dropout_forward(v, param)[0], dropout_backward(dout, cache), x, dout)
    assert not rep.passed and rep.diagnosis.kind == "nondeterministic"


@pytest.mark.parametrize("bug", [None, "batchnorm_axis"])
def test_layernorm(bug):
    rng = np.random.default_rng(2)
    x = 2 * rng.standard_normal((4, 6)) + 1
    gamma, beta = rng.uniform(0.5, 1.5, 6), rng.standard_normal(6)
    dout = rng.standard_normal(x.shape)
    _, cache = layernorm_forward(x, gamma, beta)
    dx, dgamma, dbeta = layernorm_backward(dout, cache, bug=bug)
    rep = check_gradients(lambda v: layernorm_forward(v, gamma, beta)[0], dx, x, dout)
    assert check_gradients(lambda g: layernorm_forward(x, g, beta)[0], dgamma, gamma, dout).passed
    if bug is None:
        assert rep.passed, str(rep)
    else:
        assert not rep.passed and rep.diagnosis.kind == "mismatch", str(rep)


@pytest.mark.parametrize("bug", [None, "fancy_assign"])
def test_word_embedding_with_integer_indices(bug):
    rng = np.random.default_rng(3)
    V, D = 7, 3
    x = np.array([[0, 3, 3, 1], [5, 3, 0, 6]])       # words 0 and 3 repeat
    W = rng.standard_normal((V, D))
    dout = rng.standard_normal((2, 4, D))
    dW = word_embedding_backward(dout, (x, W), bug=bug)
    rep = check_gradients(lambda w: word_embedding_forward(x, w)[0], dW, W, dout, name="W")
    if bug is None:
        assert rep.passed, str(rep)
    else:
        assert not rep.passed and rep.diagnosis.kind == "partial", str(rep)
        assert rep.diagnosis.details["rows"] == [0, 3]


def test_integer_indices_as_the_checked_argument_get_a_specific_error():
    W = np.ones((4, 2))
    with pytest.raises(TypeError, match=r"x must be a floating-point array; got dtype int"):
        check_gradients(lambda x: word_embedding_forward(x, W)[0], np.zeros(3), np.array([0, 1, 1]), np.ones((3, 2)))


@pytest.mark.parametrize("bug,kind", [(None, "ok"), ("mask_forgotten", "partial")])
def test_temporal_softmax_loss(bug, kind):
    rng = np.random.default_rng(4)
    N, T, V = 3, 4, 5
    x = rng.standard_normal((N, T, V))
    y = rng.integers(0, V, size=(N, T))
    mask = np.ones((N, T), dtype=bool)
    mask[1, 3] = mask[2, 2:] = False                    # padded time steps
    _, dx = temporal_softmax_loss(x, y, mask, bug=bug)
    rep = check_gradients(lambda v: temporal_softmax_loss(v, y, mask), dx, x)
    if bug is None:
        assert rep.passed, str(rep)
    else:
        assert not rep.passed and rep.diagnosis.kind == kind, str(rep)
        assert {tuple(e[:2]) for e in rep.diagnosis.details["entries"]} == {(1, 3), (2, 2), (2, 3)}
