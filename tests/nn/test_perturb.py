"""Tests of verigrad.nn.perturb.perturbed_losses (the fast path behind NeuralNetwork.perturbed_losses).

The reference everywhere is the definition itself, written here independently: perturb one entry in
place, run the full network forward, evaluate the loss, restore.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verigrad.nn import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dense,
    Identity,
    LeakyReLU,
    MSELoss,
    NeuralNetwork,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from verigrad.nn import perturb
from verigrad.nn.perturb import fast_path_available, perturbed_losses, perturbed_losses_generic

ACT_NAMES = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]


def make_act(name: str) -> Any:
    return {
        "identity": Identity,
        "sigmoid": Sigmoid,
        "tanh": Tanh,
        "relu": ReLU,
        "leaky_relu": lambda: LeakyReLU(0.2),
        "softmax": Softmax,
    }[name]()


def reference_losses(model: Any, name: str, idx: np.ndarray, steps: np.ndarray, X: np.ndarray, y: np.ndarray,
                     loss: Any) -> np.ndarray:
    """The definition: in-place write of old + step, full forward, loss, restore."""
    P = model.params()[name]
    out = np.empty(steps.shape)
    for r, f in enumerate(idx):
        old = P.flat[f].copy()
        for c in range(steps.shape[1]):
            P.flat[f] = old + steps[r, c]
            out[r, c] = loss.forward(model.forward(X), y)
        P.flat[f] = old
    model.forward(X)
    return out


def snapshot(model: Any) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in model.params().items()}


def assert_params_identical(model: Any, snap: dict[str, np.ndarray]) -> None:
    params = model.params()
    assert params.keys() == snap.keys()
    for k, v in params.items():
        assert v.dtype == snap[k].dtype
        # bit-identical, -0.0 and all
        assert v.tobytes() == snap[k].tobytes(), f"parameter {k} was modified"


def build(spec: list[tuple[int, str | None, bool]], n_in: int, dtype: Any, seed: int) -> NeuralNetwork:
    """spec: per Dense, (n_out, activation name or None, fused?)."""
    layers: list[Any] = []
    width = n_in
    for i, (n_out, act, fused) in enumerate(spec):
        if act is not None and fused:
            layers.append(Dense(width, n_out, activation=make_act(act), seed=seed + i, dtype=dtype))
        else:
            layers.append(Dense(width, n_out, seed=seed + i, dtype=dtype))
            if act is not None:
                layers.append(make_act(act))
        width = n_out
    return NeuralNetwork(layers)


def head_and_loss(kind: str, n_samples: int, width: int, rng: np.random.Generator) -> tuple[list[Any], Any, np.ndarray]:
    """Output layers to append, the loss and targets for a head kind."""
    if kind == "mse":
        return [], MSELoss(), rng.normal(size=(n_samples, width))
    if kind == "ce_logits":
        return [], CrossEntropyLoss(), rng.integers(0, width, size=n_samples)
    if kind == "ce_onehot":
        return [], CrossEntropyLoss(), np.eye(width)[rng.integers(0, width, size=n_samples)]
    if kind == "ce_probs":
        return [Softmax()], CrossEntropyLoss(from_logits=False), rng.integers(0, width, size=n_samples)
    if kind == "bce":
        return [Sigmoid()], BCELoss(), rng.integers(0, 2, size=(n_samples, width)).astype(float)
    if kind == "bce_logits":
        return [], BCEWithLogitsLoss(), rng.uniform(0, 1, size=(n_samples, width))
    raise AssertionError(kind)


def tolerance(losses: np.ndarray, dtype: Any) -> float:
    scale = max(1.0, float(np.abs(losses).max()))
    return (1e-12 if np.dtype(dtype) == np.float64 else 3e-6) * scale


def check_all_params(model: NeuralNetwork, X: np.ndarray, y: np.ndarray, loss: Any, rng: np.random.Generator,
                     dtype: Any, step_scale: float = 1e-3) -> None:
    pred = model.forward(X)
    dpred = loss.backward(pred, y)
    model.backward(dpred)
    grads_before = {k: v.copy() for k, v in model.grads().items()}
    snap = snapshot(model)
    for name, P in model.params().items():
        idx = np.arange(P.size)
        steps = rng.normal(size=(P.size, 2)) * step_scale
        got = perturbed_losses(model, name, idx, steps, X, y, loss)
        assert_params_identical(model, snap)
        want = reference_losses(model, name, idx, steps, X, y, loss)
        assert got.shape == (P.size, 2) and got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(want, dtype), err_msg=name)
    # The reference loop ran forwards; redo the forward the backward belongs to, then check that
    # backward still gives the same gradients after a perturbed_losses call (caches untouched).
    # Each parameter alone too: perturbing the first layer changes every later layer's input.
    for name, P in model.params().items():
        model.forward(X)
        perturbed_losses(model, name, np.arange(P.size), np.full((P.size, 2), 1e-3), X, y, loss)
        model.backward(dpred)
        for k, g in model.grads().items():
            np.testing.assert_array_equal(g, grads_before[k], err_msg=f"{k} after perturbing {name}")


# ------------------------------------------------------------------------------------------------
# Agreement with the definition
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ACT_NAMES)
@pytest.mark.parametrize("fused", [False, True])
def test_every_activation_hidden(act: str, fused: bool) -> None:
    rng = np.random.default_rng(3)
    model = build([(5, act, fused), (3, None, False)], 4, np.float64, seed=1)
    X = rng.normal(size=(7, 4))
    y = rng.integers(0, 3, size=7)
    assert fast_path_available(model, "W_0", CrossEntropyLoss())
    check_all_params(model, X, y, CrossEntropyLoss(), rng, np.float64)


@pytest.mark.parametrize("head", ["mse", "ce_logits", "ce_onehot", "ce_probs", "bce", "bce_logits"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_loss_and_dtype(head: str, dtype: Any) -> None:
    rng = np.random.default_rng(5)
    model = build([(6, "tanh", False), (5, "relu", True), (3, None, False)], 4, dtype, seed=2)
    extra, loss, y = head_and_loss(head, 9, 3, rng)
    model = NeuralNetwork(model.layers + extra)
    X = rng.normal(size=(9, 4)).astype(dtype)
    step = 1e-3 if dtype == np.float64 else 1e-2
    check_all_params(model, X, y, loss, rng, dtype, step_scale=step)


@settings(max_examples=25)
@given(
    n_dense=st.integers(1, 3),
    widths=st.lists(st.integers(1, 5), min_size=3, max_size=3),
    acts=st.lists(st.sampled_from([None] + ACT_NAMES), min_size=3, max_size=3),
    fused=st.lists(st.booleans(), min_size=3, max_size=3),
    head=st.sampled_from(["mse", "ce_logits", "ce_probs", "bce", "bce_logits"]),
    dtype=st.sampled_from([np.float64, np.float32]),
    n_samples=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_random_networks(n_dense: int, widths: list[int], acts: list[str | None], fused: list[bool], head: str,
                         dtype: Any, n_samples: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_out = max(widths[n_dense - 1], 2) if head.startswith("ce") else widths[n_dense - 1]
    spec = [(widths[i], acts[i], fused[i]) for i in range(n_dense - 1)] + [(n_out, None, False)]
    model = build(spec, 3, dtype, seed)
    extra, loss, y = head_and_loss(head, n_samples, n_out, rng)
    model = NeuralNetwork(model.layers + extra)
    X = rng.normal(size=(n_samples, 3)).astype(dtype)
    check_all_params(model, X, y, loss, rng, dtype, step_scale=1e-3 if dtype == np.float64 else 1e-2)


def test_subset_of_entries_any_order_and_many_steps() -> None:
    rng = np.random.default_rng(11)
    model = build([(6, "sigmoid", False), (4, None, False)], 5, np.float64, seed=4)
    X, y = rng.normal(size=(8, 5)), rng.integers(0, 4, size=8)
    loss = CrossEntropyLoss()
    idx = np.array([29, 0, 7, 7, 13])
    steps = rng.normal(size=(5, 4)) * 0.1
    got = perturbed_losses(model, "W_0", idx, steps, X, y, loss)
    want = reference_losses(model, "W_0", idx, steps, X, y, loss)
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(want, np.float64))


def test_zero_step_gives_the_unperturbed_loss() -> None:
    rng = np.random.default_rng(12)
    model = build([(6, "tanh", False), (3, None, False)], 4, np.float64, seed=5)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)
    loss = CrossEntropyLoss()
    base = loss.forward(model.forward(X), y)
    for name, P in model.params().items():
        got = perturbed_losses(model, name, np.arange(P.size), np.zeros((P.size, 1)), X, y, loss)
        np.testing.assert_allclose(got, base, rtol=0, atol=1e-14 * max(1.0, abs(base)))


def test_float32_params_round_like_an_in_place_write() -> None:
    """old + step is rounded to float32 before use: with float64 inputs the forward runs in float64,
    so the rounding (up to half an ulp of float32, ~1e-8 relative) is far above the 1e-12 tolerance."""
    rng = np.random.default_rng(13)
    model = build([(5, "tanh", False), (2, None, False)], 3, np.float32, seed=6)
    X = rng.normal(size=(6, 3))  # float64: z = X @ W is float64
    y = rng.normal(size=(6, 2))
    loss = MSELoss()
    for name, P in model.params().items():
        idx = np.arange(P.size)
        steps = np.full((P.size, 2), 1.3e-4) * [1, -1]
        got = perturbed_losses(model, name, idx, steps, X, y, loss)
        want = reference_losses(model, name, idx, steps, X, y, loss)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * max(1.0, np.abs(want).max()))
        # Unrounded steps would give a visibly different answer: the test can detect the difference.
        P64 = P.astype(np.float64)
        assert np.any((P64.ravel()[:, None] + steps).astype(np.float32) - P64.ravel()[:, None] != steps)


def test_network_method_delegates() -> None:
    rng = np.random.default_rng(14)
    model = build([(4, "relu", True), (2, None, False)], 3, np.float64, seed=7)
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    loss = MSELoss()
    steps = np.tile([1e-4, -1e-4], (12, 1))
    a = model.perturbed_losses("W_0", np.arange(12), steps, X, y, loss)
    b = reference_losses(model, "W_0", np.arange(12), steps, X, y, loss)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_chunking_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(15)
    model = build([(7, "tanh", False), (3, "sigmoid", True), (2, None, False)], 4, np.float64, seed=8)
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 2, size=6)
    loss = CrossEntropyLoss()
    steps = rng.normal(size=(28, 2)) * 1e-3
    whole = perturbed_losses(model, "W_0", np.arange(28), steps, X, y, loss)
    monkeypatch.setattr(perturb, "CHUNK_ELEMENTS", 1)  # one perturbation per chunk
    pieces = perturbed_losses(model, "W_0", np.arange(28), steps, X, y, loss)
    np.testing.assert_allclose(pieces, whole, rtol=0, atol=1e-13)


# ------------------------------------------------------------------------------------------------
# The memo of the base forward never goes stale
# ------------------------------------------------------------------------------------------------
def test_in_place_changes_between_calls_are_seen() -> None:
    rng = np.random.default_rng(16)
    act = LeakyReLU(0.1)
    model = NeuralNetwork([Dense(3, 4, seed=1), act, Dense(4, 2, seed=2)])
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    loss = MSELoss()
    idx, steps = np.arange(8), np.full((8, 2), 1e-3)

    def agree() -> None:
        got = perturbed_losses(model, "W_2", idx, steps, X, y, loss)
        want = reference_losses(model, "W_2", idx, steps, X, y, loss)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)

    agree()
    model.params()["W_0"][1, 2] += 0.5  # in-place change of another parameter
    agree()
    X[0, 0] += 1.0  # in-place change of the input
    agree()
    act.alpha = 0.7  # the activation itself changes
    agree()
    model.layers[0].params["b"] = np.full(4, 0.3)  # parameter array replaced
    agree()


# ------------------------------------------------------------------------------------------------
# Generic path: user layers, user losses, shared weights
# ------------------------------------------------------------------------------------------------
class Scale:
    """A user's layer following the protocol: y = x * s (s of shape (n,))."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.params = {"s": rng.normal(size=n)}
        self.grads = {"s": np.zeros(n)}
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        self._x = x
        return x * self.params["s"]

    def backward(self, dy: np.ndarray) -> np.ndarray:
        assert self._x is not None
        self.grads["s"] = (dy * self._x).sum(axis=0)
        return dy * self.params["s"]


class HalfMSE(MSELoss):
    """Overrides forward but inherits MSELoss.forward_batch: must not take the fast path."""

    def forward(self, pred: np.ndarray, y: np.ndarray) -> float:
        return 0.5 * super().forward(pred, y)


class TanhSubclass(Tanh):
    """A subclass may change apply: must not take the fast path."""

    def apply(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(2.0 * x)


@pytest.mark.parametrize("variant", ["user_layer", "user_loss", "act_subclass", "dense_subclass"])
def test_generic_path_is_exact_and_restores(variant: str) -> None:
    rng = np.random.default_rng(17)

    class MyDense(Dense):
        def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
            return super().forward(x, training) * 2.0

        def backward(self, dy: np.ndarray) -> np.ndarray:
            return super().backward(dy * 2.0)

    first = MyDense(3, 4, seed=1) if variant == "dense_subclass" else Dense(3, 4, seed=1)
    mid = TanhSubclass() if variant == "act_subclass" else Tanh()
    layers: list[Any] = [first, mid, Dense(4, 2, seed=2)]
    if variant == "user_layer":
        layers.append(Scale(2, rng))
    model = NeuralNetwork(layers)
    loss = HalfMSE() if variant == "user_loss" else MSELoss()
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    assert not fast_path_available(model, "W_0", loss)
    check_all_params(model, X, y, loss, rng, np.float64)


def test_shared_weights_take_the_generic_path() -> None:
    rng = np.random.default_rng(18)
    a, b = Dense(3, 3, seed=1), Dense(3, 3, seed=2)
    b.params["W"] = a.params["W"]  # tied weights: one perturbation changes both layers
    model = NeuralNetwork([a, Tanh(), b])
    X, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    loss = MSELoss()
    assert not fast_path_available(model, "W_0", loss)
    got = perturbed_losses(model, "W_0", np.arange(9), np.full((9, 2), 1e-3), X, y, loss)
    want = reference_losses(model, "W_0", np.arange(9), np.full((9, 2), 1e-3), X, y, loss)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


def test_generic_matches_fast() -> None:
    rng = np.random.default_rng(19)
    model = build([(5, "sigmoid", False), (3, None, False)], 4, np.float64, seed=9)
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 3, size=6)
    loss = CrossEntropyLoss()
    steps = rng.normal(size=(20, 2)) * 1e-2
    fast = perturbed_losses(model, "W_0", np.arange(20), steps, X, y, loss)
    slow = perturbed_losses_generic(model, "W_0", np.arange(20), steps, X, y, loss)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-13)


def test_generic_restores_parameters_when_the_loss_raises() -> None:
    rng = np.random.default_rng(20)

    class Exploding:
        def forward(self, pred: np.ndarray, y: np.ndarray) -> float:
            if np.abs(pred).max() > 50:
                raise FloatingPointError("boom")
            return float(((pred - y) ** 2).mean())

    model = build([(3, "tanh", False), (2, None, False)], 3, np.float64, seed=10)
    X, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    model.forward(X)
    snap = snapshot(model)
    steps = np.array([[1e-3, 1e3]] * 6)
    with pytest.raises(FloatingPointError, match="boom"):
        perturbed_losses(model, "W_2", np.arange(6), steps, X, y, Exploding())
    assert_params_identical(model, snap)
    # caches were refreshed: backward belongs to the unperturbed forward on X
    dpred = MSELoss().backward(model.forward(X), y)
    model.backward(dpred)
    g = {k: v.copy() for k, v in model.grads().items()}
    model.forward(X)
    with pytest.raises(FloatingPointError):
        perturbed_losses(model, "W_2", np.arange(6), steps, X, y, Exploding())
    model.backward(dpred)
    for k, v in model.grads().items():
        np.testing.assert_array_equal(v, g[k])


def test_negative_zero_parameter_restored_bitwise() -> None:
    rng = np.random.default_rng(21)

    model = NeuralNetwork([Dense(2, 2, seed=1), Scale(2, rng)])  # generic path
    model.params()["W_0"][0, 0] = -0.0
    X, y = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    snap = snapshot(model)
    perturbed_losses(model, "W_0", np.array([0]), np.array([[1e-3, -1e-3]]), X, y, MSELoss())
    assert_params_identical(model, snap)


# ------------------------------------------------------------------------------------------------
# Extremes: no overflow warnings (pytest turns RuntimeWarnings from verigrad into errors)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("head", ["ce_logits", "ce_probs", "bce", "bce_logits"])
def test_huge_logits_stay_finite(head: str) -> None:
    rng = np.random.default_rng(22)
    model = build([(4, "sigmoid", False), (3, None, False)], 3, np.float64, seed=11)
    model.params()["W_0"][...] *= 1e3  # sigmoid of about +-1000
    model.params()["W_2"][...] = rng.choice([-1e4, 1e4], size=(4, 3))  # logits of about +-1e4
    extra, loss, y = head_and_loss(head, 5, 3, rng)
    model = NeuralNetwork(model.layers + extra)
    X = rng.normal(size=(5, 3))
    for name, P in model.params().items():
        steps = np.tile([1e-3, -1e-3], (P.size, 1))
        got = perturbed_losses(model, name, np.arange(P.size), steps, X, y, loss)
        assert np.isfinite(got).all()
        want = reference_losses(model, name, np.arange(P.size), steps, X, y, loss)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(want).max()))


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def small() -> tuple[NeuralNetwork, np.ndarray, np.ndarray, Any]:
    rng = np.random.default_rng(23)
    model = build([(4, "tanh", False), (2, None, False)], 3, np.float64, seed=12)
    return model, rng.normal(size=(5, 3)), rng.normal(size=(5, 2)), MSELoss()


def test_unknown_name(small: Any) -> None:
    model, X, y, loss = small
    with pytest.raises(KeyError, match=r"'W_1'.*'W_0', 'b_0', 'W_2', 'b_2'"):
        perturbed_losses(model, "W_1", np.array([0]), np.zeros((1, 2)), X, y, loss)
    with pytest.raises(TypeError, match="name must be a str"):
        perturbed_losses(model, 0, np.array([0]), np.zeros((1, 2)), X, y, loss)


@pytest.mark.parametrize("bad", [12, -1, 100])
def test_index_out_of_range(small: Any, bad: int) -> None:
    model, X, y, loss = small
    with pytest.raises(IndexError, match=rf"{bad}.*'W_0' of shape \(3, 4\).*0 \.\. 11"):
        perturbed_losses(model, "W_0", np.array([0, bad]), np.zeros((2, 2)), X, y, loss)


def test_bad_index_and_steps_shapes(small: Any) -> None:
    model, X, y, loss = small
    with pytest.raises(ValueError, match=r"flat_index must be a 1-D.*got shape \(2, 1\)"):
        perturbed_losses(model, "W_0", np.zeros((2, 1), int), np.zeros((2, 2)), X, y, loss)
    with pytest.raises(TypeError, match="flat_index must hold integers.*float64"):
        perturbed_losses(model, "W_0", np.array([0.0, 1.0]), np.zeros((2, 2)), X, y, loss)
    with pytest.raises(ValueError, match=r"steps must have shape \(len\(flat_index\), k\) = \(2, k\), got shape \(3, 2\)"):
        perturbed_losses(model, "W_0", np.array([0, 1]), np.zeros((3, 2)), X, y, loss)
    with pytest.raises(ValueError, match=r"got shape \(2,\)"):
        perturbed_losses(model, "W_0", np.array([0, 1]), np.zeros(2), X, y, loss)
    with pytest.raises(TypeError, match="steps must be real"):
        perturbed_losses(model, "W_0", np.array([0, 1]), np.zeros((2, 2), complex), X, y, loss)


def test_empty_request(small: Any) -> None:
    model, X, y, loss = small
    out = perturbed_losses(model, "W_0", np.array([], dtype=int), np.zeros((0, 2)), X, y, loss)
    assert out.shape == (0, 2)


def test_bad_X_gives_the_networks_own_error(small: Any) -> None:
    model, X, y, loss = small
    with pytest.raises(ValueError, match=r"expected input of shape \(n_samples, 3\), got \(5, 4\)"):
        perturbed_losses(model, "W_0", np.array([0]), np.zeros((1, 2)), np.ones((5, 4)), y, loss)
    X = X.copy()
    X[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        perturbed_losses(model, "W_0", np.array([0]), np.zeros((1, 2)), X, y, loss)
    snap = snapshot(model)
    assert all(np.isfinite(v).all() for v in snap.values())


class Rescaled(NeuralNetwork):
    """A network whose forward is not just its layers in order."""

    def forward(self, X: np.ndarray, training: bool = True) -> np.ndarray:
        return super().forward(np.asarray(X) * 3.0, training)


@pytest.mark.parametrize("variant", ["subclass_forward", "instance_forward", "layer_instance_forward"])
def test_overridden_forward_takes_the_generic_path(variant: str) -> None:
    rng = np.random.default_rng(24)
    layers: list[Any] = [Dense(3, 4, seed=1), Tanh(), Dense(4, 2, seed=2)]
    if variant == "subclass_forward":
        model: NeuralNetwork = Rescaled(layers)
    else:
        model = NeuralNetwork(layers)
        if variant == "instance_forward":
            plain = model.forward
            model.forward = lambda X, training=True: plain(np.asarray(X) * 3.0, training)  # type: ignore[method-assign]
        else:
            tanh_forward = layers[1].forward
            layers[1].forward = lambda x, training=True: tanh_forward(x * 3.0, training)
    loss = MSELoss()
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    assert not fast_path_available(model, "W_0", loss)
    steps = np.full((12, 2), 1e-3) * [1, -1]
    got = perturbed_losses(model, "W_0", np.arange(12), steps, X, y, loss)
    want = reference_losses(model, "W_0", np.arange(12), steps, X, y, loss)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)


def test_non_contiguous_parameter() -> None:
    """Flat positions are C-order positions of the logical array, whatever its memory layout."""
    rng = np.random.default_rng(25)
    model = build([(4, "tanh", False), (3, None, False)], 5, np.float64, seed=13)
    W = model.layers[0].params["W"]
    model.layers[0].params["W"] = np.asfortranarray(W)
    model.layers[2].params["W"] = np.ascontiguousarray(model.layers[2].params["W"].T).T  # a transposed view
    X, y = rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    loss = CrossEntropyLoss()
    assert fast_path_available(model, "W_0", loss) and fast_path_available(model, "W_2", loss)
    for name in ("W_0", "W_2"):
        size = model.params()[name].size
        steps = rng.normal(size=(size, 2)) * 1e-3
        got = perturbed_losses(model, name, np.arange(size), steps, X, y, loss)
        want = reference_losses(model, name, np.arange(size), steps, X, y, loss)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("head", ["mse", "ce_logits", "ce_onehot", "ce_probs", "bce", "bce_logits"])
def test_supported_models_really_take_the_fast_path(head: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(26)
    model = build([(5, "leaky_relu", True), (4, "softmax", False), (3, None, False)], 3, np.float32, seed=14)
    extra, loss, y = head_and_loss(head, 4, 3, rng)
    model = NeuralNetwork(model.layers + extra)
    X = rng.normal(size=(4, 3))

    def no_generic(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the generic path was used")

    monkeypatch.setattr(perturb, "_generic", no_generic)
    for name, P in model.params().items():
        assert fast_path_available(model, name, loss)
        got = perturbed_losses(model, name, np.arange(P.size), np.full((P.size, 2), 1e-3), X, y, loss)
        assert got.shape == (P.size, 2) and np.isfinite(got).all()


def test_memo_is_released_with_the_network() -> None:
    import gc

    rng = np.random.default_rng(27)
    model = build([(4, "tanh", False), (2, None, False)], 3, np.float64, seed=15)
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    perturbed_losses(model, "W_0", np.arange(12), np.full((12, 1), 1e-3), X, y, MSELoss())
    assert perturb._last_base is not None and perturb._last_base.network_ref() is model
    del model
    gc.collect()
    assert perturb._last_base is None
