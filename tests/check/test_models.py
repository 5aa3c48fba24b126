"""gradient_check / check_layers on verigrad.nn models (seed 000) and on hand-written protocol models."""

from __future__ import annotations

import numpy as np
import pytest

from verigrad.check import check_layers, gradient_check

nn = pytest.importorskip("verigrad.nn")


def seed000_classification(dtype=np.float64):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0, 2])
    model = nn.NeuralNetwork([nn.Dense(5, 7, init="xavier", seed=1, dtype=dtype), nn.ReLU(),
                              nn.Dense(7, 3, init="xavier", seed=2, dtype=dtype)])
    return model, X, y, nn.CrossEntropyLoss()


def seed000_regression(dtype=np.float64):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, 3)).astype(np.float32)
    y = rng.standard_normal((4, 2)).astype(np.float32)
    model = nn.NeuralNetwork([nn.Dense(3, 6, init="xavier", seed=3, dtype=dtype), nn.Tanh(),
                              nn.Dense(6, 2, init="xavier", seed=4, dtype=dtype)])
    return model, X, y, nn.MSELoss()


@pytest.mark.parametrize("make", [seed000_classification, seed000_regression])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seed000_models_pass_default_and_explicit(make, dtype):
    model, X, y, loss = make(dtype)
    before = {k: v.copy() for k, v in model.params().items()}
    X0 = X.copy()
    rep = gradient_check(model, X, y, loss)
    assert rep.passed, str(rep)
    assert set(rep) == set(model.params()) | {"input"}
    rep2 = gradient_check(model, X, y, loss, eps=1e-4, atol=2e-3, rtol=5e-2)
    assert rep2.passed, str(rep2)
    for k, v in model.params().items():
        assert v.tobytes() == before[k].tobytes()
    assert X.tobytes() == X0.tobytes()


def test_fast_path_and_generic_path_agree_to_rounding():
    model, X, y, loss = seed000_classification()
    assert hasattr(model, "perturbed_losses")
    a = gradient_check(model, X, y, loss, use_fast_path=True)
    b = gradient_check(model, X, y, loss, use_fast_path=False)
    for name in a:
        na, nb = a[name].numerical, b[name].numerical
        scale = np.max(np.abs(nb)) + 1e-12
        assert np.max(np.abs(na - nb)) <= 1e-7 * scale, name


class BuggyDense:
    """A Dense layer following the layer protocol, with a selectable bug in backward."""

    def __init__(self, n_in, n_out, rng, bug=None):
        self.params = {"W": rng.standard_normal((n_in, n_out)) * 0.5, "b": rng.standard_normal(n_out) * 0.1}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.bug = bug

    def forward(self, x, training=True):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dy):
        dW = self.x.T @ dy
        if self.bug == "sign":
            dW = -dW
        if self.bug == "column":
            dW[:, 1] *= 3
        self.grads["W"] = dW
        self.grads["b"] = dy.sum(0)
        return dy @ self.params["W"].T


class TanhLayer:
    params: dict = {}
    grads: dict = {}

    def forward(self, x, training=True):
        self.y = np.tanh(x)
        return self.y

    def backward(self, dy):
        return dy * (1 - self.y ** 2)


class Net:
    """A minimal model following the network protocol (no perturbed_losses: generic path)."""

    def __init__(self, layers):
        self.layers = layers

    def forward(self, X, training=True):
        for layer in self.layers:
            X = layer.forward(X, training=training)
        return X

    def backward(self, g):
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g

    def params(self):
        return {f"{k}_{i}": v for i, l in enumerate(self.layers) for k, v in l.params.items()}

    def grads(self):
        return {f"{k}_{i}": v for i, l in enumerate(self.layers) for k, v in l.grads.items()}


class SumMSE:
    """Mean squared error whose backward forgets the 1/N of the batch mean when ``bug``."""

    def __init__(self, bug=False):
        self.bug = bug

    def forward(self, pred, y):
        return float(np.mean(np.sum((pred - y) ** 2, axis=1)))

    def backward(self, pred, y):
        g = 2 * (pred - y)
        return g if self.bug else g / pred.shape[0]


def _net(bug=None, seed=0):
    rng = np.random.default_rng(seed)
    return Net([BuggyDense(4, 5, rng), TanhLayer(), BuggyDense(5, 3, rng, bug=bug)])


def test_missing_one_over_n_in_loss_is_named_with_batch_size():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((16, 4))
    y = rng.standard_normal((16, 3))
    rep = gradient_check(_net(), X, y, SumMSE(bug=True))
    assert not rep.passed
    assert rep.diagnosis.kind == "scale"
    assert rep.diagnosis.details["factor"] == pytest.approx(16, rel=1e-5)
    assert "N=16" in rep.diagnosis.message
    assert set(rep.failures) == {"W_0", "b_0", "W_2", "b_2", "input"}


def test_protocol_model_sign_bug_names_parameter():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((8, 4))
    y = rng.standard_normal((8, 3))
    rep = gradient_check(_net("sign"), X, y, SumMSE())
    assert not rep.passed
    assert list(rep.failures) == ["W_2"]
    assert rep["W_2"].diagnosis.kind == "sign"
    assert rep.diagnosis.kind == "sign"
    assert rep.worst.name == "W_2"
    text = str(rep)
    assert "W_2" in text and "sign" in text


def test_model_grads_restored_and_X_untouched():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((8, 4))
    y = rng.standard_normal((8, 3))
    model = _net()
    for layer in model.layers:
        for k in layer.grads:
            layer.grads[k] = np.full_like(layer.params[k], 7.0)
    before = {k: v.copy() for k, v in model.grads().items()}
    X0 = X.copy()
    gradient_check(model, X, y, SumMSE())
    for k, v in model.grads().items():
        assert np.array_equal(v, before[k]), k
    assert np.array_equal(X, X0)


def test_check_layers_localises_first_faulty_layer():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 4))
    rep = check_layers(_net("column"), X, seed=0)
    assert not rep.passed
    assert rep.first_faulty == 2
    assert str(rep).startswith("layer-by-layer gradient check: FAIL: layer 2 (BuggyDense): W wrong")
    assert rep[2]["W"].diagnosis.kind == "partial"
    assert rep[2]["W"].diagnosis.details["columns"] == [1]
    assert rep[0].passed and rep[1].passed
    ok = check_layers(_net(), X, seed=0)
    assert ok.passed and ok.first_faulty is None


def test_check_layers_on_nn_network():
    model, X, _, _ = seed000_classification()
    rep = check_layers(model, X, rng=np.random.default_rng(0))
    assert rep.passed, str(rep)
    assert len(rep) == 3


def test_fast_mode_costs_at_most_ten_evaluations_when_passing():
    model, X, y, loss = seed000_classification()
    rep = gradient_check(model, X, y, loss, mode="fast", seed=0)
    assert rep.passed, str(rep)
    assert rep.n_evals <= 10


def test_fast_mode_catches_and_localises_a_bug():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((8, 4))
    y = rng.standard_normal((8, 3))
    rep = gradient_check(_net("column"), X, y, SumMSE(), mode="fast", seed=1)
    assert not rep.passed
    assert list(rep.failures) == ["W_2"]
    assert rep["W_2"].diagnosis.kind == "partial"
    assert rep["W_2"].worst.index[1] == 1


def test_sample_mode_marks_unevaluated_entries_nan_and_includes_largest():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((8, 4))
    y = rng.standard_normal((8, 3))
    model = _net()
    rep = gradient_check(model, X, y, SumMSE(), mode="sample", k=6, seed=0)
    assert rep.passed
    for name, r in rep.items():
        evald = np.isfinite(r.numerical)
        assert evald.any(), name  # every tensor gets at least one entry
        big = np.unravel_index(np.argmax(np.abs(r.analytic)), r.shape)
        assert evald[big], name
    assert np.isnan(rep["W_0"].numerical).any()
    bad = gradient_check(_net("sign"), X, y, SumMSE(), mode="sample", k=6, seed=0)
    assert not bad.passed and list(bad.failures) == ["W_2"]


def test_dropout_like_randomness_is_nondeterministic():
    class Noisy(TanhLayer):
        def __init__(self):
            self.rng = np.random.default_rng(0)

        def forward(self, x, training=True):
            self.y = np.tanh(x) * (1 + 1e-3 * self.rng.standard_normal(x.shape))
            return self.y

    rng = np.random.default_rng(7)
    model = Net([BuggyDense(3, 3, rng), Noisy()])
    X = rng.standard_normal((4, 3))
    rep = gradient_check(model, X, rng.standard_normal((4, 3)), SumMSE())
    assert not rep.passed
    assert rep.diagnosis.kind == "nondeterministic"


def test_model_mutating_X_in_forward():
    class Inplace(TanhLayer):
        def forward(self, x, training=True):
            np.tanh(x, out=x)
            self.y = x
            return x

    rng = np.random.default_rng(8)
    model = Net([Inplace(), BuggyDense(3, 2, rng)])
    X = rng.standard_normal((4, 3))
    X0 = X.copy()
    rep = gradient_check(model, X, rng.standard_normal((4, 2)), SumMSE())
    assert not rep.passed
    assert rep.diagnosis.kind == "mutates_input"
    assert "X" in rep.diagnosis.message
    assert np.array_equal(X, X0)


class MultilayerPerceptron:
    """Seed 001's hand-written MLP (copied; explicit Generator instead of the global seed)."""

    def __init__(self, rng, input_dim=2, hidden_dim=5, output_dim=1):
        self.W1 = rng.normal(0, 2 / (input_dim + hidden_dim), (input_dim, hidden_dim))
        self.b1 = np.zeros((1, hidden_dim))
        self.W2 = rng.normal(0, 2 / (hidden_dim + output_dim), (hidden_dim, output_dim))
        self.b2 = np.zeros((1, output_dim))

    def sigmoid(self, z):
        return 1 / (1 + np.exp(-z))

    def forward(self, X):
        self.X = X
        self.Z1 = np.dot(X, self.W1) + self.b1
        self.H = self.sigmoid(self.Z1)
        self.Z2 = np.dot(self.H, self.W2) + self.b2
        self.y_hat = self.Z2
        return self.y_hat

    def compute_loss(self, y_hat, y):
        N = y.shape[0]
        return np.sum(0.5 * (y_hat - y) ** 2) / N

    def backward(self, y, bug=None):
        N = y.shape[0]
        dy_hat = (self.y_hat - y) / N
        dW2 = np.dot(self.H.T, dy_hat)
        db2 = np.sum(dy_hat, axis=0, keepdims=True)
        dH = np.dot(dy_hat, self.W2.T)
        dZ1 = dH * self.H * (1 - self.H) if bug != "sigmoid" else dH * self.H
        dW1 = np.dot(self.X.T, dZ1)
        db1 = np.sum(dZ1, axis=0, keepdims=True)
        if bug == "db2":
            db2 = db2 * N
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _seed001(bug=None):
    from verigrad.check import check_params

    rng = np.random.default_rng(42)
    X = rng.uniform(-1, 1, size=(20, 2))
    y = (X[:, 0] ** 2 + X[:, 1] ** 2).reshape(20, 1)
    model = MultilayerPerceptron(rng)
    model.forward(X)
    grads = model.backward(y, bug=bug)
    params = {"W1": model.W1, "b1": model.b1, "W2": model.W2, "b2": model.b2}
    return check_params(lambda: model.compute_loss(model.forward(X), y), params, grads, batch_size=20)


def test_seed001_mlp_passes_with_check_params():
    rep = _seed001()
    assert rep.passed, str(rep)
    assert all(r.diagnosis.kind == "ok" for r in rep.values())
    assert max(float(r) for r in rep.values()) < 1e-7  # the notebook's cutoff


def test_seed001_mlp_bug_names_the_parameter():
    rep = _seed001("db2")
    assert not rep.passed
    assert list(rep.failures) == ["b2"]
    assert rep["b2"].diagnosis.kind == "scale" and "N=20" in rep["b2"].diagnosis.message
    rep = _seed001("sigmoid")
    assert set(rep.failures) == {"W1", "b1"}
    assert rep.diagnosis.kind in ("mismatch", "scale", "partial")
    assert "W1" in str(rep)


class Float32Dense(BuggyDense):
    """Computes in float32 whatever the input dtype: the numerical side cannot be promoted."""

    def __init__(self, n_in, n_out, rng, factor=1.0):
        super().__init__(n_in, n_out, rng)
        self.params = {k: v.astype(np.float32) for k, v in self.params.items()}
        self.factor = factor

    def forward(self, x, training=True):
        self.x = np.asarray(x, dtype=np.float32)
        return self.x @ self.params["W"] + self.params["b"]

    def backward(self, dy):
        dy = dy.astype(np.float32)
        self.grads["W"] = (self.x.T @ dy) * np.float32(self.factor)
        self.grads["b"] = dy.sum(0)
        return dy @ self.params["W"].T


class Float32MSE:
    def forward(self, pred, y):
        return np.mean(np.sum((pred - y) ** 2, axis=1, dtype=np.float32), dtype=np.float32)

    def backward(self, pred, y):
        return (2 * (pred - y) / pred.shape[0]).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_only_model_passes_and_one_percent_error_fails(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, 4)).astype(np.float32)
    y = rng.standard_normal((8, 3)).astype(np.float32)
    good = Net([Float32Dense(4, 6, np.random.default_rng(seed)), TanhLayer(),
                Float32Dense(6, 3, np.random.default_rng(seed + 10))])
    rep = gradient_check(good, X, y, Float32MSE())
    assert rep.passed, str(rep)
    bad = Net([Float32Dense(4, 6, np.random.default_rng(seed)), TanhLayer(),
               Float32Dense(6, 3, np.random.default_rng(seed + 10), factor=1.01)])
    rep = gradient_check(bad, X, y, Float32MSE())
    assert not rep.passed
    assert list(rep.failures) == ["W_2"]


@pytest.mark.parametrize("act", ["Sigmoid", "Tanh", "ReLU", "LeakyReLU"])
@pytest.mark.parametrize("loss_name", ["CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss"])
def test_nn_networks_never_flagged(act, loss_name):
    rng = np.random.default_rng(len(act) * 7 + len(loss_name))
    X = rng.standard_normal((5, 4))
    if loss_name == "CrossEntropyLoss":
        y = rng.integers(0, 3, 5)
    elif loss_name == "MSELoss":
        y = rng.standard_normal((5, 3))
    else:
        y = (rng.random((5, 3)) > 0.5).astype(float)
    model = nn.NeuralNetwork([nn.Dense(4, 6, seed=0), getattr(nn, act)(), nn.Dense(6, 3, seed=1)])
    loss = getattr(nn, loss_name)()
    for mode in ("full", "fast", "sample"):
        rep = gradient_check(model, X, y, loss, mode=mode, seed=0, k=12)
        assert rep.passed, (mode, str(rep))


class HookedNet(Net):
    """A protocol model with a (naive) perturbed_losses fast hook that records how it is called."""

    def __init__(self, layers):
        super().__init__(layers)
        self.calls = []

    def perturbed_losses(self, name, flat_index, steps, X, y, loss_fn):
        self.calls.append((name, len(flat_index), steps.shape))
        p = self.params()[name]
        out = np.empty(steps.shape)
        for i, fi in enumerate(flat_index):
            old = p.flat[fi]
            for j in range(steps.shape[1]):
                p.flat[fi] = old + steps[i, j]
                out[i, j] = loss_fn.forward(self.forward(X), y)
            p.flat[fi] = old
        return out


def test_fast_hook_called_in_chunks_and_agrees_with_generic_path():
    rng = np.random.default_rng(9)
    X = rng.standard_normal((3, 90))
    y = rng.standard_normal((3, 50))
    model = HookedNet([BuggyDense(90, 50, rng)])  # W has 4500 entries: two chunks
    fast = gradient_check(model, X, y, SumMSE(), check_input=False)
    assert fast.passed, str(fast)
    sizes = [n for name, n, _ in model.calls if name == "W_0"]
    assert max(sizes) <= 4096 and sum(sizes) >= 4500
    assert all(shape[1] == 2 for _, _, shape in model.calls[:2])  # central differences: k = 2
    generic = gradient_check(model, X, y, SumMSE(), check_input=False, use_fast_path=False)
    for name in fast:
        a, b = fast[name].numerical, generic[name].numerical
        assert np.max(np.abs(a - b)) <= 1e-9 * (np.max(np.abs(b)) + 1e-12)


def test_upcast_option_checks_float32_model_in_float64_and_restores():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 5)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    model = nn.NeuralNetwork([nn.Dense(5, 7, seed=1, dtype=np.float32), nn.Tanh(),
                              nn.Dense(7, 3, seed=2, dtype=np.float32)])
    before = {k: (v, v.copy()) for k, v in model.params().items()}
    rep = gradient_check(model, X, y, nn.CrossEntropyLoss(), upcast=True, promote=False)
    assert rep.passed, str(rep)
    assert any("upcast" in n for n in rep.notes)
    generic = gradient_check(model, X, y, nn.CrossEntropyLoss(), upcast=True, promote=False, use_fast_path=False)
    for name in rep:
        assert np.allclose(rep[name].numerical, generic[name].numerical, rtol=1e-7, atol=1e-12)
    for k, (arr, copy) in before.items():
        assert model.params()[k] is arr and arr.dtype == np.float32
        assert arr.tobytes() == copy.tobytes()


def test_upcast_refused_when_layer_keeps_its_own_references():
    class Cached(BuggyDense):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.params = {k: v.astype(np.float32) for k, v in self.params.items()}
            self.W, self.b = self.params["W"], self.params["b"]

        def forward(self, x, training=True):
            self.x = x
            return x @ self.W + self.b

        def backward(self, dy):
            self.grads["W"] = (self.x.T @ dy).astype(np.float32)
            self.grads["b"] = dy.sum(0).astype(np.float32)
            return dy @ self.W.T

    rng = np.random.default_rng(1)
    model = Net([Cached(3, 2, rng)])
    X = rng.standard_normal((4, 3))
    rep = gradient_check(model, X, rng.standard_normal((4, 2)), SumMSE(), upcast=True)
    assert rep.passed, str(rep)
    assert any("not upcast" in n for n in rep.notes)
    assert model.layers[0].params["W"] is model.layers[0].W


def test_model_whose_forward_takes_no_training_flag():
    class M:
        def __init__(self):
            self.W = np.random.default_rng(0).standard_normal((3, 2))

        def forward(self, X):
            self.X = X
            return X @ self.W

        def backward(self, g):
            self.g = self.X.T @ g
            return g @ self.W.T

        def params(self):
            return {"W": self.W}

        def grads(self):
            return {"W": self.g}

    X = np.random.default_rng(1).standard_normal((4, 3))
    rep = gradient_check(M(), X, np.zeros((4, 2)), SumMSE())
    assert rep.passed and set(rep) == {"W", "input"}
