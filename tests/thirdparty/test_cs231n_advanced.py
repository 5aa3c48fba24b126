"""Third-party style: CS231n batch normalisation, naive convolution, max pooling and the vanilla RNN step.

These are the layers whose gradients students get wrong most: batchnorm couples the rows of ``x``
through the batch mean and variance, max pooling routes the gradient to one element per window (ties
included), convolution sums over windows, and the RNN step must use the right cached activation. The
user checks each input of a backward pass with ``check_gradients`` and one lambda per argument.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pytest

from verigrad.check import check_gradients

# ------------------------------------------------------------------------------------------------
# batch normalisation (training mode)
# ------------------------------------------------------------------------------------------------


def batchnorm_forward(x, gamma, beta, bn_param, bug: Optional[str] = None):
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D))
    running_var = bn_param.get("running_var", np.ones(D))
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    running_mean = momentum * running_mean + (1 - momentum) * mu
    running_var = momentum * running_var + (1 - momentum) * var
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    if bug == "running_stats_in_training":   # normalises with the running statistics: hidden state
        mu, var = running_mean, running_var
    std = np.sqrt(var + eps)
    xhat = (x - mu) / std
    out = gamma * xhat + beta
    return out, (xhat, gamma, std)


def batchnorm_backward(dout, cache, bug: Optional[str] = None):
    xhat, gamma, std = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * np.mean(dxhat * xhat, axis=0)) / std
    if bug == "no_batch_coupling":      # treats mean and variance as constants
        dx = dxhat / std
    elif bug == "dbeta_mean":
        dbeta = dout.mean(axis=0)
    elif bug == "dgamma_no_sum":
        dgamma = dout * xhat
    elif bug == "dgamma_of_x":         # x-hat forgotten: uses dout alone
        dgamma = dout.sum(axis=0)
    elif bug == "missing_variance_term":
        dx = (dxhat - dxhat.mean(axis=0)) / std
    del N
    return dx, dgamma, dbeta


def _bn_data(seed=0, N=6, D=4, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = (3 * rng.standard_normal((N, D)) + 1).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, D).astype(dtype)
    beta = rng.standard_normal(D).astype(dtype)
    dout = rng.standard_normal((N, D)).astype(dtype)
    return x, gamma, beta, dout


def _bn_fns(x, gamma, beta, bug=None):
    return {
        "x": (lambda v: batchnorm_forward(v, gamma, beta, {"mode": "train"}, bug)[0], x),
        "gamma": (lambda v: batchnorm_forward(x, v, beta, {"mode": "train"}, bug)[0], gamma),
        "beta": (lambda v: batchnorm_forward(x, gamma, v, {"mode": "train"}, bug)[0], beta),
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batchnorm_correct_passes(dtype):
    x, gamma, beta, dout = _bn_data(dtype=dtype)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    grads = {"x": dx, "gamma": dgamma, "beta": dbeta}
    for arg, (fn, point) in _bn_fns(x, gamma, beta).items():
        rep = check_gradients(fn, grads[arg], point, dout, name=arg)
        assert rep.passed, str(rep)


@pytest.mark.parametrize("bug,arg,kind", [
    ("no_batch_coupling", "x", "mismatch"),
    ("missing_variance_term", "x", "mismatch"),
    ("dbeta_mean", "beta", "scale"),
    ("dgamma_of_x", "gamma", "mismatch"),
])
def test_batchnorm_seeded_bugs(bug, arg, kind):
    x, gamma, beta, dout = _bn_data(seed=1)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    grads = dict(zip(("x", "gamma", "beta"), batchnorm_backward(dout, cache, bug=bug)))
    fn, point = _bn_fns(x, gamma, beta)[arg]
    rep = check_gradients(fn, grads[arg], point, dout, name=arg, batch_size=x.shape[0])
    assert not rep.passed
    assert rep.diagnosis.kind == kind, str(rep)
    assert rep.worst is not None and rep.name == arg
    if bug == "dbeta_mean":
        assert rep.diagnosis.details["factor_name"] == "1/N=1/6"


def test_batchnorm_dgamma_without_batch_sum_gets_a_specific_error():
    x, gamma, beta, dout = _bn_data(seed=2)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    _, dgamma, _ = batchnorm_backward(dout, cache, bug="dgamma_no_sum")
    fn, point = _bn_fns(x, gamma, beta)["gamma"]
    with pytest.raises(ValueError, match=r"has shape \(6, 4\) but x has shape \(4,\).*sum over axis 0"):
        check_gradients(fn, dgamma, point, dout)


def test_batchnorm_with_running_statistics_in_training_is_nondeterministic():
    x, gamma, beta, dout = _bn_data(seed=3)
    bn_param = {"mode": "train"}               # shared across calls, as in the assignment's solver
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, _, _ = batchnorm_backward(dout, cache)
    rep = check_gradients(lambda v: batchnorm_forward(v, gamma, beta, bn_param, "running_stats_in_training")[0],
                          dx, x, dout)
    assert rep.diagnosis.kind == "nondeterministic" and not rep.passed


# ------------------------------------------------------------------------------------------------
# naive convolution
# ------------------------------------------------------------------------------------------------


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho = 1 + (H + 2 * pad - HH) // stride
    Wo = 1 + (W + 2 * pad - WW) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w, b))
    for i in range(Ho):
        for j in range(Wo):
            win = xp[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
            out[:, :, i, j] = np.tensordot(win, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache, bug: Optional[str] = None):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for i in range(Ho):
        for j in range(Wo):
            hs, ws = i * stride, j * stride
            win = xp[:, :, hs:hs + HH, ws:ws + WW]
            d = dout[:, :, i, j]
            if bug == "dw_unpadded_x":       # window read from x instead of the padded x
                win = np.pad(x, ((0, 0), (0, 0), (0, HH), (0, WW)))[:, :, hs:hs + HH, ws:ws + WW]
            dw += np.tensordot(d, win, axes=([0], [0]))
            dxp[:, :, hs:hs + HH, ws:ws + WW] += np.tensordot(d, w, axes=([1], [0]))
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    if bug == "dx_flipped_kernel":
        dx = np.zeros_like(dxp)
        for i in range(Ho):
            for j in range(Wo):
                hs, ws = i * stride, j * stride
                dx[:, :, hs:hs + HH, ws:ws + WW] += np.tensordot(dout[:, :, i, j], w[:, :, ::-1, ::-1],
                                                                 axes=([1], [0]))
        dx = dx[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    if bug == "db_sign":
        db = -db
    return dx, dw, db


def _conv_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    cp = {"stride": 2, "pad": 1}
    dout = rng.standard_normal((2, 3, 3, 3))
    return x, w, b, cp, dout


@pytest.mark.parametrize("bug,arg,kind", [
    (None, "x", "ok"), (None, "w", "ok"), (None, "b", "ok"),
    ("dw_unpadded_x", "w", "mismatch"),
    ("dx_flipped_kernel", "x", "mismatch"),
    ("db_sign", "b", "sign"),
])
def test_conv(bug, arg, kind):
    x, w, b, cp, dout = _conv_data()
    _, cache = conv_forward_naive(x, w, b, cp)
    grads = dict(zip("xwb", conv_backward_naive(dout, cache, bug=bug)))
    fn = {"x": lambda v: conv_forward_naive(v, w, b, cp)[0], "w": lambda v: conv_forward_naive(x, v, b, cp)[0],
          "b": lambda v: conv_forward_naive(x, w, v, cp)[0]}[arg]
    rep = check_gradients(fn, grads[arg], {"x": x, "w": w, "b": b}[arg], dout, name=arg)
    if bug is None:
        assert rep.passed, str(rep)
    else:
        assert not rep.passed and rep.diagnosis.kind == kind, str(rep)
        assert len(rep.worst.index) == {"x": 4, "w": 4, "b": 1}[arg]


# ------------------------------------------------------------------------------------------------
# max pooling, ties included
# ------------------------------------------------------------------------------------------------


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // s, 1 + (W - pw) // s
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * s:i * s + ph, j * s:j * s + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache, bug: Optional[str] = None):
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, Ho, Wo = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    win = x[n, c, i * s:i * s + ph, j * s:j * s + pw]
                    k = int(np.argmax(win))                # first maximum: a valid subgradient at ties
                    if bug == "transposed_unravel":
                        r, q = k % ph, k // ph             # row and column swapped inside the window
                    elif bug == "last_element":
                        r, q = ph - 1, pw - 1              # always the bottom-right element
                    else:
                        r, q = divmod(k, pw)
                    dx[n, c, i * s + r, j * s + q] += dout[n, c, i, j]
    return dx


def _pool_data(seed=0, ties=False):
    rng = np.random.default_rng(seed)
    if ties:   # small integers: many windows have a tied maximum
        x = rng.integers(0, 3, size=(2, 2, 4, 4)).astype(float)
    else:
        x = rng.standard_normal((2, 2, 4, 4))
    dout = rng.standard_normal((2, 2, 2, 2))
    return x, {"pool_height": 2, "pool_width": 2, "stride": 2}, dout


@pytest.mark.parametrize("ties", [False, True])
def test_max_pool_correct_passes_also_with_ties(ties):
    x, pp, dout = _pool_data(seed=1, ties=ties)
    dx = max_pool_backward_naive(dout, max_pool_forward_naive(x, pp)[1])
    rep = check_gradients(lambda v: max_pool_forward_naive(v, pp)[0], dx, x, dout)
    assert rep.passed, str(rep)
    if ties:
        assert rep.diagnosis.kind == "kink" and rep.kinks


@pytest.mark.parametrize("bug,kind", [("transposed_unravel", "partial"), ("last_element", "mismatch")])
def test_max_pool_routing_to_the_wrong_element_is_caught(bug, kind):
    x, pp, dout = _pool_data(seed=2)
    cache = max_pool_forward_naive(x, pp)[1]
    dx = max_pool_backward_naive(dout, cache, bug=bug)
    rep = check_gradients(lambda v: max_pool_forward_naive(v, pp)[0], dx, x, dout)
    assert not rep.passed
    assert rep.diagnosis.kind == kind, str(rep)
    assert len(rep.worst.index) == 4
    if kind == "partial":
        # exactly the entries where the misrouted gradient differs from the right one
        right = max_pool_backward_naive(dout, cache)
        assert {tuple(e) for e in rep.diagnosis.details["entries"]} == {
            tuple(int(v) for v in i) for i in np.argwhere(right != dx)}


# ------------------------------------------------------------------------------------------------
# vanilla RNN step: several inputs, several outputs
# ------------------------------------------------------------------------------------------------


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache, bug: Optional[str] = None):
    x, prev_h, Wx, Wh, next_h = cache
    if bug == "tanh_of_prev_h":          # derivative read from the wrong cached activation
        dz = dnext_h * (1 - prev_h ** 2)
    else:
        dz = dnext_h * (1 - next_h ** 2)
    dx = dz @ Wx.T
    dprev_h = dz @ Wh.T
    dWx = x.T @ dz
    dWh = prev_h.T @ dz
    if bug == "dWh_transposed":
        dWh = dz.T @ prev_h
    db = dz.sum(axis=0)
    return dx, dprev_h, dWx, dWh, db


def _rnn_data(seed=0):
    rng = np.random.default_rng(seed)
    N, D, H = 3, 4, 5
    return (rng.standard_normal((N, D)), rng.standard_normal((N, H)), 0.4 * rng.standard_normal((D, H)),
            0.4 * rng.standard_normal((H, H)), 0.1 * rng.standard_normal(H), rng.standard_normal((N, H)))


@pytest.mark.parametrize("bug,kinds", [
    (None, {}),
    ("tanh_of_prev_h", {"x": "mismatch", "prev_h": "mismatch", "Wx": "mismatch", "Wh": "mismatch", "b": "mismatch"}),
    ("dWh_transposed", {"Wh": "transpose"}),
])
def test_rnn_step(bug, kinds):
    x, h, Wx, Wh, b, dnext = _rnn_data()
    _, cache = rnn_step_forward(x, h, Wx, Wh, b)
    names = ("x", "prev_h", "Wx", "Wh", "b")
    grads = dict(zip(names, rnn_step_backward(dnext, cache, bug=bug)))
    args = dict(zip(names, (x, h, Wx, Wh, b)))
    for i, nm in enumerate(names):
        def fn(v: np.ndarray, i: int = i) -> Any:
            a = [x, h, Wx, Wh, b]
            a[i] = v
            return rnn_step_forward(*a)        # (next_h, cache): the first item is checked
        rep = check_gradients(fn, grads[nm], args[nm], dnext, name=nm)
        if nm in kinds:
            assert not rep.passed and rep.diagnosis.kind == kinds[nm], (nm, str(rep))
        else:
            assert rep.passed, (nm, str(rep))


def test_several_outputs_with_a_tuple_of_upstream_gradients():
    """An LSTM-like step returning (next_h, next_c): dLdf gives one upstream gradient per output."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4))
    dh, dc = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))

    def step(v):
        return np.tanh(v), np.sin(v) * 2, {"cache": v}     # two outputs and a cache

    grad = (1 - np.tanh(x) ** 2) * dh + 2 * np.cos(x) * dc
    rep = check_gradients(step, grad, x, (dh, dc, None))
    assert rep.passed, str(rep)
    bad = check_gradients(step, (1 - np.tanh(x) ** 2) * dh, x, (dh, dc, None))   # second output forgotten
    assert not bad.passed and bad.diagnosis.kind == "mismatch"
