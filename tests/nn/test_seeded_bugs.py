"""Tests written against seeded bugs (mutation testing of ``verigrad.nn``) that the rest of the suite missed.

Each test names the mutant it was written for; each fails on that mutant and passes on the real code.
References are computed independently here (plain NumPy formulas, or the definition itself).
"""

from __future__ import annotations

import numpy as np
import pytest
from _fd import numerical_grad, rel_error

from verigrad.nn import (
    SGD,
    Adam,
    CrossEntropyLoss,
    Dense,
    MSELoss,
    NeuralNetwork,
    Tanh,
)
from verigrad.nn.init import INITIALIZERS, initialize
from verigrad.nn.losses import log_softmax
from verigrad.nn.perturb import perturbed_losses


# ----------------------------------------------------------------------------------------------
# Losses: soft targets whose rows do not sum to one
# ----------------------------------------------------------------------------------------------
def _log_softmax_ref(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("seed", [0, 1])
def test_ce_logits_with_unnormalised_targets_follows_the_definition(seed):
    """``L = -1/N sum_ic y_ic log softmax(z_i)_c`` for any non-negative targets (rows summing to 0.3..2.5).

    Seeded bugs: the forward's ``sum_c y_c`` weight on the log-sum-exp, or the backward's
    ``softmax * sum_c y_c`` term, dropped (both are invisible with one-hot or probability rows)."""
    rng = np.random.default_rng(seed)
    n, c = 5, 4
    z = rng.normal(size=(n, c))
    y = rng.uniform(0.0, 1.0, size=(n, c))
    y *= rng.uniform(0.3, 2.5, size=(n, 1)) / y.sum(axis=1, keepdims=True)  # row sums far from 1
    assert np.abs(y.sum(axis=1) - 1).max() > 0.1
    loss = CrossEntropyLoss()
    expected = -(y * _log_softmax_ref(z)).sum() / n
    assert float(loss.forward(z, y)) == pytest.approx(expected, rel=1e-12)
    g = loss.backward(z, y)
    num = numerical_grad(lambda: loss.forward(z, y), z)
    assert rel_error(g, num) < 1e-7
    # the closed form, written independently
    s = np.exp(_log_softmax_ref(z))
    np.testing.assert_allclose(g, (s * y.sum(axis=1, keepdims=True) - y) / n, rtol=1e-10, atol=1e-15)
    # forward_batch agrees with forward on stacked copies
    preds = np.stack([z, 2 * z])
    np.testing.assert_allclose(loss.forward_batch(preds, y),
                               [expected, -(y * _log_softmax_ref(2 * z)).sum() / n], rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# Initialisers: every alias draws from the distribution its name says
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_every_initializer_name_draws_its_family(name):
    """Uniform names stay inside ``+-a`` and fill it; normal names exceed ``sqrt(3) std`` sometimes.

    Seeded bug: an alias (``"glorot_uniform"``) mapped to the normal initialiser."""
    n_in, n_out = 120, 80
    W = initialize(name, n_in, n_out, seed=0)
    assert W.shape == (n_in, n_out)
    if name == "zeros":
        assert np.all(W == 0)
        return
    if name == "normal":
        std = 0.01
    elif name.startswith("he"):
        std = np.sqrt(2 / n_in) if "uniform" not in name else np.sqrt(6 / n_in) / np.sqrt(3)
    else:
        std = np.sqrt(2 / (n_in + n_out))  # uniform on +-sqrt(6/(fan_in+fan_out)) has this std too
    assert abs(W.std() / std - 1) < 0.03
    bound = std * np.sqrt(3)
    if "uniform" in name:
        assert np.abs(W).max() <= bound
        assert np.abs(W).max() > 0.99 * bound
    else:
        # a normal draw exceeds sqrt(3) std with probability 8%: 9600 draws never all stay inside
        assert np.mean(np.abs(W) > bound) > 0.05


# ----------------------------------------------------------------------------------------------
# Dense configuration and save/load
# ----------------------------------------------------------------------------------------------
def test_dense_config_keeps_scale_and_init_and_rebuilds_the_same_layer():
    """Seeded bug: ``get_config`` forgetting ``scale`` (a rebuilt layer then draws other weights)."""
    d = Dense(6, 4, init="he_uniform", scale=0.5, seed=3)
    cfg = d.get_config()
    assert cfg["scale"] == 0.5
    assert cfg["init"] == "he_uniform"
    rebuilt = Dense(**cfg, seed=3)
    np.testing.assert_array_equal(rebuilt.params["W"], d.params["W"])
    assert np.abs(d.params["W"]).max() <= 0.5 * np.sqrt(6 / 6)


def test_save_load_keeps_allow_nonfinite_and_layer_scale(tmp_path):
    """Seeded bug: the network's ``allow_nonfinite`` (and a layer's ``scale``) lost on save/load."""
    model = NeuralNetwork([Dense(3, 4, scale=0.25, seed=0), Tanh(), Dense(4, 2, seed=1)], allow_nonfinite=True)
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = NeuralNetwork.load(path)
    assert loaded.allow_nonfinite is True
    assert loaded.layers[0].scale == 0.25
    X = np.array([[np.nan, 0.0, 1.0], [0.5, -0.5, 2.0]])
    out = loaded.forward(X)  # allowed: no ValueError
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    np.testing.assert_array_equal(out[1], model.forward(X)[1])
    # and the default stays strict after a round trip
    strict = NeuralNetwork([Dense(3, 2, seed=0)])
    strict.save(tmp_path / "s.npz")
    with pytest.raises(ValueError, match="NaN or inf"):
        NeuralNetwork.load(tmp_path / "s.npz").forward(X)


# ----------------------------------------------------------------------------------------------
# Fast perturbation path with non-zero biases
# ----------------------------------------------------------------------------------------------
def _reference_losses(model, name, idx, steps, X, y, loss_fn):
    P = model.params()[name]
    out = np.empty(steps.shape)
    for a, i in enumerate(idx):
        old = P.flat[i]
        for b, s in enumerate(steps[a]):
            P.flat[i] = old + s
            out[a, b] = loss_fn.forward(model.forward(X), y)
        P.flat[i] = old
    return out


@pytest.mark.parametrize("name", ["W_0", "b_0", "W_2", "b_2", "W_4", "b_4"])
@pytest.mark.parametrize("loss_name", ["ce", "mse"])
def test_perturbed_losses_with_nonzero_biases_match_the_definition(name, loss_name):
    """Every layer's bias enters the fast path (rank-1 update and the dense propagation after it).

    Seeded bug: the bias add dropped from the stacked Dense propagation; invisible with the
    zero biases layers start with, so the biases here are random."""
    rng = np.random.default_rng(7)
    model = NeuralNetwork([Dense(4, 5, seed=0), Tanh(), Dense(5, 6, seed=1), Tanh(), Dense(6, 3, seed=2)])
    for k, p in model.params().items():
        if k.startswith("b"):
            p[...] = rng.normal(scale=0.7, size=p.shape)
    X = rng.normal(size=(7, 4))
    if loss_name == "ce":
        y, loss_fn = rng.integers(0, 3, size=7), CrossEntropyLoss()
    else:
        y, loss_fn = rng.normal(size=(7, 3)), MSELoss()
    P = model.params()[name]
    idx = np.arange(P.size)
    steps = np.tile([1e-3, -1e-3, 0.1], (P.size, 1))
    got = perturbed_losses(model, name, idx, steps, X, y, loss_fn)
    ref = _reference_losses(model, name, idx, steps, X, y, loss_fn)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-13)


# ----------------------------------------------------------------------------------------------
# Cross-entropy, two classes: the fast path's special case for C == 2
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ce_two_classes_extreme_logits_finite_and_exact(dtype):
    """The row max of two logits is the max of both columns, not the first one.

    Seeded bug: ``m = z[:, 0]`` for C == 2 (shift-invariant, so only large logits in the second
    column show it: ``exp(z1 - z0)`` overflows)."""
    z = np.array([[-800.0, 800.0], [800.0, -800.0], [0.0, 700.0]], dtype=dtype)
    y = np.array([1, 1, 0])
    loss = CrossEntropyLoss()
    v = loss.forward(z, y)
    assert np.isfinite(v)
    assert float(v) == pytest.approx((0.0 + 1600.0 + 700.0) / 3, rel=1e-6)
    g = loss.backward(z, y)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, np.array([[0, 0], [1, -1], [-1, 1]]) / 3, atol=1e-7)
    # small logits: the same formula as the general path, checked against an independent log-softmax
    rng = np.random.default_rng(0)
    z2 = rng.normal(size=(6, 2)).astype(dtype)
    y2 = rng.integers(0, 2, size=6)
    ref = -_log_softmax_ref(z2.astype(np.float64))[np.arange(6), y2].mean()
    assert float(loss.forward(z2, y2)) == pytest.approx(ref, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_ce_same_labels_with_a_different_number_of_classes():
    """The remembered labels (range check and one-hot) are keyed on the class count too.

    Seeded bug: the cache matched on the label bytes and dtype only, so a second call with the same
    labels and another C reused a one-hot of the wrong width (and skipped the range check)."""
    rng = np.random.default_rng(1)
    y = np.array([0, 2, 1, 2, 0])
    loss = CrossEntropyLoss()
    for c in (3, 4, 6, 3):
        z = rng.normal(size=(5, c))
        ref = -_log_softmax_ref(z)[np.arange(5), y].mean()
        assert float(loss.forward(z, y)) == pytest.approx(ref, rel=1e-12)
        s = np.exp(_log_softmax_ref(z))
        s[np.arange(5), y] -= 1
        np.testing.assert_allclose(loss.backward(z, y), s / 5, rtol=1e-10, atol=1e-15)
    with pytest.raises(ValueError, match="label 2 out of range"):
        loss.forward(rng.normal(size=(5, 2)), y)


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3)])
def test_log_softmax_is_normalised_row_by_row(shape):
    """``exp(log_softmax(z))`` sums to one along the last axis of every row, with rows on very
    different scales. Seeded bug: the log-sum-exp averaged over rows instead of kept per row."""
    rng = np.random.default_rng(2)
    z = rng.normal(size=shape) * np.arange(1, shape[-2] + 1)[:, None] * 3 + np.arange(shape[-2])[:, None] * 10
    out = log_softmax(z)
    assert out.shape == z.shape
    np.testing.assert_allclose(np.exp(out).sum(axis=-1), 1.0, rtol=1e-12)
    m = z.max(axis=-1, keepdims=True)
    np.testing.assert_allclose(out, z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "avg", "Mean", "elementwise_mean"])
def test_mse_unknown_reduction_is_refused(reduction):
    """Only "mean", "half" and "sum" exist. Seeded bug: another name accepted (silently a sum)."""
    with pytest.raises(ValueError, match="reduction must be one of"):
        MSELoss(reduction=reduction)



# ----------------------------------------------------------------------------------------------
# Network: flags passed through
# ----------------------------------------------------------------------------------------------
class _RecordTraining:
    """A user layer (layer protocol, no parameters) recording the ``training`` flag it is given."""

    def __init__(self) -> None:
        self.params: dict = {}
        self.grads: dict = {}
        self.seen: list[bool] = []

    def forward(self, x, training=True):
        self.seen.append(training)
        return x

    def backward(self, dy):
        return dy


def test_inference_calls_pass_training_false_to_every_layer():
    """``model(X)`` and ``model.predict(X)`` are inference; ``forward(X)`` is training.

    Seeded bug: ``predict`` calling ``forward(X)`` with the default ``training=True``."""
    rec = _RecordTraining()
    model = NeuralNetwork([Dense(3, 2, seed=0), rec])
    X = np.ones((2, 3))
    model.predict(X)
    model(X)
    model.forward(X)
    model.forward(X, training=False)
    assert rec.seen == [False, False, True, False]


def test_accumulate_with_input_grad_false_returns_none_and_sums_gradients():
    """Seeded bug: ``backward(..., accumulate=True)`` dropping ``input_grad=False`` (returned dX)."""
    rng = np.random.default_rng(4)
    model = NeuralNetwork([Dense(3, 4, seed=0), Tanh(), Dense(4, 2, seed=1)])
    X, g = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    model.forward(X)
    dX = model.backward(g)
    assert dX is not None and dX.shape == (5, 3)
    first = {k: v.copy() for k, v in model.grads().items()}
    out = model.backward(g, input_grad=False, accumulate=True)
    assert out is None
    assert model.input_grad is None
    for k, v in model.grads().items():
        np.testing.assert_allclose(v, 2 * first[k], rtol=1e-14)


# ----------------------------------------------------------------------------------------------
# SGD on float32 parameters with float64 gradients
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [300, 70000])
def test_sgd_float32_params_float64_grads_round_once(size):
    """``p -= lr * g`` with ``lr * g`` in float64, rounded to float32 once (what NumPy's in-place
    update of a float32 array by a float64 product stores). Seeded bug: ``lr`` rounded to float32
    first (the cached scalar of the parameter's dtype) when the gradient is float64."""
    rng = np.random.default_rng(5)
    p = rng.normal(scale=1e-3, size=size).astype(np.float32)
    g = rng.normal(size=size)
    lr = 0.1  # not representable in float32
    expected = (p.astype(np.float64) - lr * g).astype(np.float32)
    opt = SGD({"p": p}, lr=lr)
    opt.step({"p": g})
    assert p.dtype == np.float32
    np.testing.assert_array_equal(p, expected)



def test_optimizer_defaults_are_the_documented_torch_ones():
    """SGD's default lr is 0.01; Adam's is 1e-3 (its first step moves every entry by lr * sign(g)).

    Seeded bugs: a changed default learning rate (nothing else in the suite relies on it)."""
    rng = np.random.default_rng(6)
    p0 = rng.normal(size=(4, 3))
    g = rng.normal(size=(4, 3))
    p = p0.copy()
    SGD({"p": p}).step({"p": g})
    np.testing.assert_allclose(p, p0 - 0.01 * g, rtol=1e-15)
    p = p0.copy()
    Adam({"p": p}).step({"p": g})
    # (m / (sqrt(v) + eps) = g / (|g| + 1e-8) after bias correction: sign(g) to within 1e-6 here)
    np.testing.assert_allclose((p0 - p) / 1e-3, np.sign(g), atol=1e-6)


def test_zero_grad_replaces_a_gradient_of_the_wrong_shape():
    """``zero_grad`` leaves every gradient a zero array of its parameter's shape.

    Seeded bug: a stale gradient of another shape zeroed in place (keeping the wrong shape)."""
    model = NeuralNetwork([Dense(3, 4, seed=0), Tanh(), Dense(4, 2, seed=1)])
    model.layers[0].grads["W"] = np.ones((2, 2))
    del model.layers[2].grads["b"]
    model.zero_grad()
    params, grads = model.params(), model.grads()
    assert set(grads) == set(params)
    for k, p in params.items():
        assert grads[k].shape == p.shape and not grads[k].any()



# ----------------------------------------------------------------------------------------------
# Fast perturbation path: when it must step aside
# ----------------------------------------------------------------------------------------------
def _small_model_and_data(seed: int = 8):
    rng = np.random.default_rng(seed)
    model = NeuralNetwork([Dense(3, 4, seed=0), Tanh(), Dense(4, 2, seed=1)])
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    return model, X, y


@pytest.mark.parametrize("which", ["dense", "activation", "fused"])
def test_perturbed_losses_follow_a_monkey_patched_layer(which):
    """A layer whose instance ``forward`` is replaced (a Dense, an activation layer, or the activation
    fused into a Dense) is run as patched.

    Seeded bugs: the fast path's checks for instance-level overrides removed (it then evaluates
    the class's formula instead of what ``model.forward`` computes)."""
    model, X, y = _small_model_and_data()
    if which == "dense":
        dense = model.layers[0]
        dense.forward = lambda x, training=True: 2.0 * Dense.forward(dense, x, training)
    elif which == "activation":
        model.layers[1].forward = lambda x, training=True: np.tanh(x) + 0.5
    else:
        model = NeuralNetwork([Dense(3, 4, activation="tanh", seed=0), Dense(4, 2, seed=1)])
        model.layers[0].activation.forward = lambda x, training=True: np.tanh(x) + 0.5
    name = [k for k in model.params() if k.startswith("W")][-1]  # the last layer's weights
    loss_fn = MSELoss()
    idx = np.arange(6)
    steps = np.tile([1e-2, -1e-2], (6, 1))
    got = perturbed_losses(model, name, idx, steps, X, y, loss_fn)
    ref = _reference_losses(model, name, idx, steps, X, y, loss_fn)
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_perturbed_losses_refuse_nonfinite_input_like_the_network():
    """Seeded bug: the fast path's NaN/inf check of ``X`` removed (it returned NaN losses)."""
    model, X, y = _small_model_and_data()
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"NeuralNetwork.forward: X contains NaN or inf \(first at index \(2, 1\)"):
        perturbed_losses(model, "W_0", np.arange(3), np.full((3, 2), 1e-3), X, y, MSELoss())


def test_backward_names_the_network_when_grad_has_the_wrong_shape():
    """Seeded bug: only the batch size of ``grad`` checked (a layer's own message came instead)."""
    model, X, _ = _small_model_and_data()
    model.forward(X)
    with pytest.raises(ValueError, match=r"NeuralNetwork.backward: grad has shape \(5, 3\), expected \(5, 2\)"):
        model.backward(np.ones((5, 3)))


def test_accumulate_does_not_broadcast_a_stale_gradient_of_another_shape():
    """A stale gradient of the wrong shape is replaced, never broadcast into the new one.

    Seeded bug: the shape test before ``new + old`` removed."""
    model, X, y = _small_model_and_data()
    model.forward(X)
    model.backward(np.ones((5, 2)))
    fresh = model.layers[0].grads["W"].copy()
    model.layers[0].grads["W"] = np.ones((1, 4))  # broadcastable against (3, 4)
    model.backward(np.ones((5, 2)), accumulate=True)
    np.testing.assert_array_equal(model.layers[0].grads["W"], fresh)



@pytest.mark.parametrize("grad_dtype", [np.float32, np.float64])
def test_optimizer_state_has_the_parameter_dtype(grad_dtype):
    """Adam's moments and SGD's momentum buffer are arrays of the parameter's dtype (as torch's
    state), whatever the gradient's dtype; the updates still follow the float64 formulas closely.

    Seeded bugs: Adam's state created as float64 for float32 parameters; SGD's momentum buffer
    copied in the gradient's dtype."""
    rng = np.random.default_rng(9)
    p0 = rng.normal(size=(5, 4)).astype(np.float32)
    grads = [rng.normal(size=(5, 4)).astype(grad_dtype) for _ in range(3)]
    p_adam, p_sgd = p0.copy(), p0.copy()
    adam = Adam({"p": p_adam}, lr=0.01)
    sgd = SGD({"p": p_sgd}, lr=0.01, momentum=0.9)
    m = v = np.zeros((5, 4))
    buf = None
    ref_adam, ref_sgd = p0.astype(np.float64), p0.astype(np.float64)
    for t, g in enumerate(grads, start=1):
        adam.step({"p": g})
        sgd.step({"p": g})
        g64 = g.astype(np.float64)
        m = 0.9 * m + 0.1 * g64
        v = 0.999 * v + 0.001 * g64**2
        ref_adam -= 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        buf = g64 if buf is None else 0.9 * buf + g64
        ref_sgd -= 0.01 * buf
    assert adam.state["p"]["m"].dtype == np.float32 and adam.state["p"]["v"].dtype == np.float32
    assert sgd.state["p"]["momentum_buffer"].dtype == np.float32
    assert p_adam.dtype == np.float32 and p_sgd.dtype == np.float32
    np.testing.assert_allclose(p_adam, ref_adam, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p_sgd, ref_sgd, rtol=1e-5, atol=1e-6)
