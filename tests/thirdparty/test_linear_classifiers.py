"""Third-party style: CS231n assignment 1 linear classifiers, ``loss, dW = svm_loss_naive(W, X, y, reg)``.

``W`` has shape (D, C), ``X`` (N, D), integer labels ``y``. The assignment spot-checks a few random
entries (``grad_check_sparse``); the verigrad equivalent is ``mode="sample"`` with ``k`` entries, and the
function may return the ``(loss, dW)`` tuple.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

from verigrad.check import check_gradients


def svm_loss_naive(W, X, y, reg, bug: Optional[str] = None):
    dW = np.zeros(W.shape)
    num_classes = W.shape[1]
    num_train = X.shape[0]
    loss = 0.0
    for i in range(num_train):
        scores = X[i].dot(W)
        correct_class_score = scores[y[i]]
        for j in range(num_classes):
            if j == y[i]:
                continue
            margin = scores[j] - correct_class_score + 1
            if margin > 0:
                loss += margin
                dW[:, j] += X[i]
                if bug != "forgot_correct_column":
                    dW[:, y[i]] -= X[i]
    loss /= num_train
    if bug != "missing_1/N":
        dW /= num_train
    loss += reg * np.sum(W * W)
    dW += (1 if bug == "reg_factor" else 2) * reg * W
    return loss, dW


def softmax_loss_vectorized(W, X, y, reg, bug: Optional[str] = None):
    N = X.shape[0]
    scores = X.dot(W)
    scores -= scores.max(axis=1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(N), y]).sum() / N + reg * np.sum(W * W)
    dscores = p.copy()
    dscores[np.arange(N), y] -= 1
    dW = X.T.dot(dscores) / N + 2 * reg * W
    if bug == "sign":
        dW = -dW
    if bug == "transposed_X":      # X.dot(dscores.T) is not even the right shape: dscores.T.dot(X).T is
        dW = (dscores.T.dot(X) / N + 2 * reg * W.T)
    return loss, dW


def _data(seed=0, D=20, C=5, N=12):
    rng = np.random.default_rng(seed)
    W = 0.01 * rng.standard_normal((D, C))
    X = rng.standard_normal((N, D))
    y = rng.integers(0, C, size=N)
    return W, X, y


@pytest.mark.parametrize("mode", ["full", "sample"])
def test_correct_losses_pass(mode):
    W, X, y = _data()
    for f in (svm_loss_naive, softmax_loss_vectorized):
        _, dW = f(W, X, y, 0.1)
        rep = check_gradients(lambda w: f(w, X, y, 0.1), dW, W, mode=mode, k=15, seed=0)
        assert rep.passed, str(rep)
        if mode == "sample":
            assert np.isnan(rep.numerical).sum() >= W.size - 20


@pytest.mark.parametrize("f,bug,kind", [
    (svm_loss_naive, "missing_1/N", "mismatch"),         # data term N times too large, reg term right
    (svm_loss_naive, "forgot_correct_column", "mismatch"),
    (svm_loss_naive, "reg_factor", "mismatch"),
    (softmax_loss_vectorized, "sign", "sign"),
    (softmax_loss_vectorized, "transposed_X", "transpose"),
])
@pytest.mark.parametrize("mode", ["full", "sample"])
def test_seeded_bugs(f, bug, kind, mode):
    W, X, y = _data(seed=1)
    reg = 0.0 if bug == "sign" else 5.0
    _, dW = f(W, X, y, reg, bug=bug)
    rep = check_gradients(lambda w: f(w, X, y, reg)[0], dW, W, mode=mode, k=15, seed=0)
    assert not rep.passed
    assert rep.diagnosis.kind == kind, str(rep)
    assert rep.worst is not None


def test_missing_1_over_n_without_regularisation_is_named():
    W, X, y = _data(seed=2)
    _, dW = svm_loss_naive(W, X, y, 0.0, bug="missing_1/N")
    rep = check_gradients(lambda w: svm_loss_naive(w, X, y, 0.0)[0], dW, W, batch_size=X.shape[0])
    assert rep.diagnosis.kind == "scale" and rep.diagnosis.details["factor_name"] == "N=12"
