"""After any check, parameters and inputs are bit-identical, also when user code raises or is interrupted."""

from __future__ import annotations

import numpy as np
import pytest

from verigrad.check import check_gradients, check_params, gradient_check


class Boom(RuntimeError):
    pass


def _params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {"W": rng.standard_normal((3, 4)).astype(dtype), "b": rng.standard_normal(4).astype(dtype)}


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_params_bit_identical_when_loss_raises_on_10th_call(exc, dtype):
    P = _params(dtype=dtype)
    snapshot = {k: v.copy() for k, v in P.items()}
    ids = {k: id(v) for k, v in P.items()}
    X = np.random.default_rng(1).standard_normal((5, 3)).astype(dtype)
    calls = {"n": 0}

    def loss():
        calls["n"] += 1
        if calls["n"] == 10:
            raise exc("interrupted")
        return np.sum(np.tanh(X @ P["W"] + P["b"]))

    grads = {"W": np.ones((3, 4)), "b": np.ones(4)}
    with pytest.raises(exc):
        check_params(loss, P, grads)
    assert calls["n"] == 10
    for k in P:
        assert id(P[k]) == ids[k]
        assert P[k].tobytes() == snapshot[k].tobytes(), k


@pytest.mark.parametrize("call", [3, 10, 25])
def test_model_params_and_grads_restored_when_forward_raises(call):
    rng = np.random.default_rng(2)

    class Model:
        def __init__(self):
            self.W = rng.standard_normal((3, 2))
            self.g = np.full((3, 2), 5.0)
            self.n = 0

        def forward(self, X, training=True):
            self.n += 1
            if self.n == call:
                raise KeyboardInterrupt
            self.X = X
            return X @ self.W

        def backward(self, d):
            self.g[...] = self.X.T @ d
            return d @ self.W.T

        def params(self):
            return {"W": self.W}

        def grads(self):
            return {"W": self.g}

    class L:
        def forward(self, p, y):
            return float(np.sum((p - y) ** 2))

        def backward(self, p, y):
            return 2 * (p - y)

    m = Model()
    W0, g0 = m.W.copy(), m.g.copy()
    X = rng.standard_normal((4, 3))
    X0 = X.copy()
    with pytest.raises(KeyboardInterrupt):
        gradient_check(m, X, rng.standard_normal((4, 2)), L())
    assert m.W.tobytes() == W0.tobytes()
    assert m.g.tobytes() == g0.tobytes()
    assert X.tobytes() == X0.tobytes()


def test_check_gradients_never_modifies_x_or_grad_even_when_fn_raises():
    x = np.random.default_rng(3).standard_normal((3, 3))
    g = np.ones((3, 3))
    x0, g0 = x.copy(), g.copy()
    n = {"c": 0}

    def fn(z):
        n["c"] += 1
        if n["c"] == 7:
            raise Boom
        return np.sin(z)

    with pytest.raises(Boom):
        check_gradients(fn, g, x, np.ones((3, 3)), method="central")
    assert x.tobytes() == x0.tobytes() and g.tobytes() == g0.tobytes()


def test_successful_checks_leave_everything_bit_identical():
    P = _params(seed=4, dtype=np.float32)
    snap = {k: v.copy() for k, v in P.items()}
    X = np.random.default_rng(5).standard_normal((5, 3)).astype(np.float32)

    def loss():
        return np.sum(np.tanh(X @ P["W"] + P["b"]))

    H = np.tanh(X @ P["W"] + P["b"])
    d = 1 - H ** 2
    for mode in ("full", "sample", "fast"):
        rep = check_params(loss, P, {"W": X.T @ d, "b": d.sum(0)}, mode=mode, k=5, seed=0)
        assert rep.passed, str(rep)
        for k in P:
            assert P[k].tobytes() == snap[k].tobytes(), (mode, k)


def test_fn_mutating_its_input_is_flagged_and_x_safe():
    x = np.array([[1.0, -2.0], [0.5, -0.1]])
    x0 = x.copy()

    def fn(z):
        z *= 2.0
        return z

    rep = check_gradients(fn, 2 * np.ones_like(x), x, np.ones_like(x))
    assert not rep.passed
    assert rep.diagnosis.kind == "mutates_input"
    assert rep.diagnosis.details["argument"] == "x"
    # the numbers themselves agree: the failure is the mutation
    assert np.allclose(rep.numerical, 2.0)
    assert np.array_equal(x, x0)


def test_loss_mutating_params_is_flagged():
    P = _params(seed=6)
    snap = {k: v.copy() for k, v in P.items()}

    def loss():
        P["b"] += 1e-3  # a loss with a side effect on a parameter
        return float(np.sum(P["W"]) + np.sum(P["b"]))

    rep = check_params(loss, P, {"W": np.ones((3, 4)), "b": np.ones(4)})
    assert not rep.passed
    assert rep.diagnosis.kind == "mutates_input"
    assert "'b'" in rep.diagnosis.message
    for k in P:
        assert P[k].tobytes() == snap[k].tobytes()


def test_loss_with_hidden_state_is_nondeterministic_even_if_numbers_agree():
    P = _params(seed=7)
    state = {"calls": 0}

    def loss():
        state["calls"] += 1
        return float(np.sum(P["W"] ** 2) + np.sum(P["b"])) + 1e-12 * state["calls"]

    rep = check_params(loss, P, {"W": 2 * P["W"], "b": np.ones(4)})
    assert not rep.passed
    assert rep.diagnosis.kind == "nondeterministic"
    assert rep.global_diagnosis.details["first"] != rep.global_diagnosis.details["last"]
    assert all(r.diagnosis.kind == "nondeterministic" for r in rep.values())


def _state(model) -> dict:
    """Every ndarray a model and its layers hold (parameters, gradients, forward and backward caches)."""
    out = {}
    for owner, obj in [("model", model)] + [(f"layer{i}", lay) for i, lay in enumerate(model.layers)]:
        for k, v in vars(obj).items():
            items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else [("", v)]
            for kk, vv in items:
                if isinstance(vv, np.ndarray):
                    out[f"{owner}.{k}[{kk}]"] = (vv.dtype, vv.shape, vv.tobytes())
    return out


def test_multikink_regrad_leaves_params_grads_and_caches_bit_identical():
    # rows of spirals at (0, 0) with zero biases: dL/dX is verified at nearby points, where the checker
    # runs the model's backward pass (regrad); afterwards nothing of the model may have changed
    from verigrad import nn
    from verigrad.data import make_spirals

    X, y = make_spirals(16, seed=0)
    X, y = X[:16], y[:16]
    X[:3] = 0.0
    r = np.random.default_rng(0)
    model = nn.NeuralNetwork([nn.Dense(2, 8, seed=int(r.integers(0, 2**31 - 1))), nn.ReLU(),
                              nn.Dense(8, 3, seed=int(r.integers(0, 2**31 - 1)))])
    loss = nn.CrossEntropyLoss()
    model.backward(loss.backward(model.forward(X), y))
    before = _state(model)
    X0 = X.copy()
    rep = gradient_check(model, X, y, loss, seed=0)
    assert rep.passed, str(rep)
    assert any("multi-kink" in note for note in rep["input"].notes), rep["input"].notes  # regrad ran
    after = _state(model)
    assert set(after) == set(before)
    for k in before:
        assert after[k] == before[k], k
    assert X.tobytes() == X0.tobytes()
