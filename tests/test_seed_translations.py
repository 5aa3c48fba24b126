"""The seed notebooks' own code, translated to verigrad (/work/shared/seeds/000..004).

Each ``test_seedNNN_*`` is a compact literal translation of the seed's key cells (its variable names
and calls; global ``np.random`` draws replaced by explicit Generators, layers seeded) asserting what
the seed shows. The other tests pin one compatibility fix each: what a natural translation writes
either works or fails with an error saying what to write instead.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import verigrad
from verigrad.check import check_gradients, check_params, gradient_check
from verigrad.data import DataLoader
from verigrad.nn import SGD, NeuralNetwork
from verigrad.nn.activations import Identity, ReLU, Sigmoid, SoftMax, TanH
from verigrad.nn.layers import Dense, FullyConnected, Tanh
from verigrad.nn.losses import BCELoss, BCEWithLogitsLoss, CrossEntropy, CrossEntropyLoss, MSELoss
from verigrad.train import accuracy


# ---------------------------------------------------------------------------------------------------
# seed 000: gradient_check(model, X, y, loss, eps=1e-4, atol=2e-3, rtol=5e-2) on float32 data
# ---------------------------------------------------------------------------------------------------
def test_seed000_cases_pass_with_the_seeds_call(capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0, 2], dtype=int)
    model = NeuralNetwork([Dense(5, 7, init="xavier", seed=0), ReLU(), Dense(7, 3, init="xavier", seed=1)])
    loss = CrossEntropyLoss()
    report = gradient_check(model, X, y, loss, eps=1e-4, atol=2e-3, rtol=5e-2, verbose=True)
    assert report.passed
    assert list(report)[:4] == ["W_0", "b_0", "W_2", "b_2"]
    out = capsys.readouterr().out
    assert "W_0" in out and "PASS" in out  # verbose=True: the report went to stdout

    rng = np.random.default_rng(1)
    X = rng.standard_normal((4, 3)).astype(np.float32)
    y = rng.standard_normal((4, 2)).astype(np.float32)
    model = NeuralNetwork([Dense(3, 6, init="xavier", seed=2), Tanh(), Dense(6, 2, init="xavier", seed=3)])
    loss = MSELoss()
    report = gradient_check(model, X, y, loss, eps=1e-4, atol=2e-3, rtol=5e-2)
    assert report.passed
    assert max(float(r.max_rel_error) for r in report.values()) < 5e-2  # the seed's rtol
    assert capsys.readouterr().out == ""  # silent without verbose


# ---------------------------------------------------------------------------------------------------
# seed 001: hand-written MLP with compute_loss(y_hat, y) and backward(y) -> dict; gradient_check(model, X, y)
# ---------------------------------------------------------------------------------------------------
class MultilayerPerceptron:
    def __init__(self, input_dim: int = 2, hidden_dim: int = 5, output_dim: int = 1,
                 rng: np.random.Generator | None = None) -> None:
        rng = rng if rng is not None else np.random.default_rng(42)
        self.W1 = rng.normal(0, 2 / (input_dim + hidden_dim), (input_dim, hidden_dim))
        self.b1 = np.zeros((1, hidden_dim))
        self.W2 = rng.normal(0, 2 / (hidden_dim + output_dim), (hidden_dim, output_dim))
        self.b2 = np.zeros((1, output_dim))

    def sigmoid(self, z: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-z))

    def forward(self, X: np.ndarray) -> np.ndarray:
        self.X = X
        self.Z1 = np.dot(X, self.W1) + self.b1
        self.H = self.sigmoid(self.Z1)
        self.Z2 = np.dot(self.H, self.W2) + self.b2
        self.y_hat = self.Z2
        return self.y_hat

    def compute_loss(self, y_hat: np.ndarray, y: np.ndarray) -> float:
        N = y.shape[0]
        return np.sum(0.5 * (y_hat - y) ** 2) / N

    def backward(self, y: np.ndarray) -> dict[str, np.ndarray]:
        N = y.shape[0]
        dy_hat = (self.y_hat - y) / N
        dW2 = np.dot(self.H.T, dy_hat)
        db2 = np.sum(dy_hat, axis=0, keepdims=True)
        dH = np.dot(dy_hat, self.W2.T)
        dZ1 = dH * self.H * (1 - self.H)
        dW1 = np.dot(self.X.T, dZ1)
        db1 = np.sum(dZ1, axis=0, keepdims=True)
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _seed001_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    N = 20
    X = rng.uniform(-1, 1, size=(N, 2))
    y = (X[:, 0] ** 2 + X[:, 1] ** 2).reshape(N, 1)
    return X, y


def test_seed001_gradient_check_model_X_y() -> None:
    X, y = _seed001_data()
    model = MultilayerPerceptron()
    before = {k: getattr(model, k).copy() for k in ("W1", "b1", "W2", "b2")}
    report = gradient_check(model, X, y)
    assert report.passed
    assert list(report) == ["W1", "b1", "W2", "b2"]
    for name, r in report.items():
        assert r.rel_error < 1e-7, name  # the seed's error_cutoff; it shows ~1e-10
        assert np.array_equal(getattr(model, name), before[name])  # live arrays restored bit for bit
    # the seed's own keyword names
    report = gradient_check(model, X, y, epsilon=1e-5, error_cutoff=1e-7)
    assert report.passed and any("error_cutoff" in n for n in report.notes)


def test_seed001_protocol_finds_bugs_and_dW_names() -> None:
    X, y = _seed001_data()

    class Buggy(MultilayerPerceptron):
        def backward(self, y: np.ndarray) -> dict[str, np.ndarray]:
            g = super().backward(y)
            return {"dW1": 2 * g["W1"], "db1": g["b1"], "dW2": g["W2"], "db2": g["b2"]}

    report = gradient_check(Buggy(), X, y)
    assert list(report) == ["W1", "b1", "W2", "b2"]
    assert report.failures.keys() == {"W1"}
    assert report["W1"].diagnosis.kind == "scale"


def test_error_cutoff_is_the_verdict_on_each_tensors_relative_error() -> None:
    X, y = _seed001_data()
    model = MultilayerPerceptron()
    strict = gradient_check(model, X, y, error_cutoff=0.0)  # no tensor has a relative error of exactly 0
    assert not strict.passed and strict.failures.keys() == {"W1", "b1", "W2", "b2"}
    assert "exceeds error_cutoff" in strict["W1"].diagnosis.message

    class Doubled(MultilayerPerceptron):
        def backward(self, y: np.ndarray) -> dict[str, np.ndarray]:
            g = super().backward(y)
            g["W2"] = 2 * g["W2"]  # relative error 1/3
            return g

    assert not gradient_check(Doubled(), X, y).passed
    loose = gradient_check(Doubled(), X, y, error_cutoff=0.5)  # explicit user tolerance: honoured
    assert loose.passed
    assert "scale" in loose["W2"].diagnosis.message  # what the automatic analysis found is kept
    with pytest.raises(ValueError, match="error_cutoff"):
        gradient_check(model, X, y, error_cutoff=-1.0)


def test_eps_aliases_epsilon_and_h() -> None:
    X, y = _seed001_data()
    model = MultilayerPerceptron()
    a = gradient_check(model, X, y, eps=1e-3, method="central")
    b = gradient_check(model, X, y, epsilon=1e-3, method="central")
    c = gradient_check(model, X, y, eps=1e-1, method="central")
    assert np.array_equal(a["W1"].numerical, b["W1"].numerical)
    assert not np.array_equal(a["W1"].numerical, c["W1"].numerical)
    x = np.array([0.3, -0.7, 1.1])
    r1 = check_gradients(np.sin, np.cos(x), x, np.ones(3), h=1e-4, method="central")
    r2 = check_gradients(np.sin, np.cos(x), x, np.ones(3), eps=1e-4, method="central")
    assert np.array_equal(r1.numerical, r2.numerical)
    with pytest.raises(TypeError, match="epsilon= is another name for eps="):
        gradient_check(model, X, y, eps=1e-5, epsilon=1e-5)
    with pytest.raises(TypeError, match="h= is another name for eps="):
        check_params(lambda: 0.0, {"w": np.zeros(1)}, {"w": np.zeros(1)}, h=1e-5, eps=1e-5)


def test_gradient_check_without_loss_fn_says_what_to_pass() -> None:
    model = NeuralNetwork([Dense(2, 3, seed=0)])
    X, y = np.ones((4, 2)), np.zeros((4, 3))
    with pytest.raises(TypeError, match=r"loss_fn is missing.*gradient_check\(model, X, y, CrossEntropyLoss\(\)\)"):
        gradient_check(model, X, y)

    class NoDict(MultilayerPerceptron):
        def backward(self, y: np.ndarray) -> np.ndarray:  # type: ignore[override]
            return np.zeros(3)

    Xs, ys = _seed001_data()
    with pytest.raises(TypeError, match=r"backward\(y\) must return a non-empty dict"):
        gradient_check(NoDict(), Xs, ys)


# ---------------------------------------------------------------------------------------------------
# seed 002: check_gradients(fn=, grad=, x=, dLdf=) on activations, FullyConnected and CrossEntropy
# ---------------------------------------------------------------------------------------------------
def test_seed002_activations_fc_layer_and_cross_entropy() -> None:
    rng = np.random.default_rng(2)
    for activation in (Identity(), Sigmoid(), TanH(), ReLU(), SoftMax()):
        X = rng.standard_normal((2, 3))
        dLdY = rng.standard_normal((2, 3))
        _ = activation.forward(X)
        grad = activation.backward(X, dLdY)
        rel = check_gradients(fn=activation.forward, grad=grad, x=X, dLdf=dLdY)
        assert rel < 1e-8, type(activation).__name__
        assert str(rel).startswith("gradient check of x: PASS")  # printing is unchanged

    X = rng.standard_normal((2, 3))
    dLdY = rng.standard_normal((2, 4))
    fc_layer = FullyConnected(n_out=4, activation="identity", seed=0)
    _ = fc_layer.forward(X)
    _ = fc_layer.backward(dLdY)
    for param in fc_layer.parameters:
        rel = check_gradients(
            fn=fc_layer.forward_with_param(param, X),
            grad=fc_layer.gradients[param],
            x=fc_layer.parameters[param],
            dLdf=dLdY,
        )
        assert rel < 1e-8, param

    num_pts, num_classes = 5, 6
    y_idxs = rng.integers(0, num_classes, (num_pts,))
    y = np.zeros((num_pts, num_classes))
    y[range(num_pts), y_idxs] = 1
    scores = rng.uniform(0, 1, size=(num_pts, num_classes))
    y_hat = scores / scores.sum(axis=1, keepdims=True)
    cross_entropy_loss = CrossEntropy("cross_entropy")

    def forward_fn(Y: np.ndarray, Y_hat: np.ndarray):  # noqa: ANN202 - the seed's closure
        def inner_forward(Y_hat: np.ndarray) -> float:
            return cross_entropy_loss.forward(Y, Y_hat)
        return inner_forward

    loss = cross_entropy_loss.forward(y, y_hat)
    grad = cross_entropy_loss.backward(y, y_hat)
    assert loss == pytest.approx(-np.log(y_hat[range(num_pts), y_idxs]).mean(), rel=1e-12)
    rel = check_gradients(fn=forward_fn(y, y_hat), grad=grad, x=y_hat, dLdf=1)
    assert rel < 1e-8
    a = np.array([[1, 0, 0], [1, 0, 0]])
    b = np.array([[1, 0, 0], [1, 0, 0]])
    assert cross_entropy_loss.forward(a, b) == 0.0  # the seed prints -0.0


def test_reports_compare_with_numbers() -> None:
    x = np.array([0.2, -0.4])
    r = check_gradients(np.tanh, 1 - np.tanh(x) ** 2, x, np.ones(2))
    bad = check_gradients(np.tanh, 2 * (1 - np.tanh(x) ** 2), x, np.ones(2))
    assert r < 1e-8 and r <= 1e-8 and not r > 1e-8 and not r >= 1e-8
    assert bad > 1e-8 and bad >= np.float64(0.3) and 1e-8 < bad  # 1/3 for a factor 2
    assert r < bad
    X, y = _seed001_data()
    m = gradient_check(MultilayerPerceptron(), X, y)
    assert m < 1e-7 and not m > 1e-7
    with pytest.raises(TypeError):
        _ = r < "1e-8"
    assert np.isclose(r, 0, atol=1e-8) and not np.isclose(bad, 0, atol=1e-8)  # np.asarray(report) = rel_error
    assert np.asarray(bad).shape == () and np.asarray(bad) == float(bad)


def test_cross_entropy_loss_rejects_a_non_bool_from_logits() -> None:
    with pytest.raises(TypeError, match=r"from_logits must be True .* got 'cross_entropy'.*nn\.losses\.CrossEntropy"):
        CrossEntropyLoss("cross_entropy")
    with pytest.raises(TypeError, match="from_logits must be True"):
        CrossEntropyLoss(1)  # type: ignore[arg-type]
    assert CrossEntropyLoss(np.False_).from_logits is False
    with pytest.raises(ValueError, match="'cross_entropy'"):
        CrossEntropy("mse")


def test_cross_entropy_seed002_order_is_cross_entropy_loss_on_probabilities() -> None:
    rng = np.random.default_rng(5)
    p = rng.uniform(0.1, 1, (4, 3))
    p /= p.sum(axis=1, keepdims=True)
    labels = rng.integers(0, 3, 4)
    Y = np.eye(3)[labels]
    ref = CrossEntropyLoss(from_logits=False)
    ce = CrossEntropy()
    assert ce.forward(Y, p) == ref.forward(p, Y) == ce(Y, p)
    assert np.array_equal(ce.backward(Y, p), ref.backward(p, Y))
    assert ce.forward(labels, p) == pytest.approx(ref.forward(p, Y), rel=1e-12)
    assert verigrad.nn.CrossEntropy is CrossEntropy


def test_fully_connected_seed002_signature() -> None:
    X = np.ones((2, 3))
    fc = FullyConnected(4, "identity", seed=0)  # seed 002's FullyConnected(n_out, activation)
    assert fc.forward(X).shape == (2, 4) and fc.n_out == 4 and type(fc.activation).__name__ == "Identity"
    lin = FullyConnected(n_out=4, activation="linear", weight_init="xavier_uniform", seed=0)
    assert type(lin.activation).__name__ == "Identity" and lin.init == "xavier_uniform"
    assert lin.get_config()["activation"] == "identity"  # configs keep the canonical name
    with pytest.raises(TypeError, match="weight_init= is another name for init="):
        Dense(3, 4, init="he", weight_init="normal")
    with pytest.raises(ValueError, match="unknown activation 'linearr'"):
        Dense(3, 4, activation="linearr")
    assert verigrad.TanH is TanH and verigrad.SoftMax is SoftMax and verigrad.FullyConnected is Dense


# ---------------------------------------------------------------------------------------------------
# seed 003: one sigmoid neuron with BCE; torch stores W as (out, in) = (1, 2)
# ---------------------------------------------------------------------------------------------------
def test_seed003_single_neuron_layer_by_layer() -> None:
    x = np.array([[2.0, 1.0]])
    y_true = np.array([[1.0]])
    W = np.array([[0.5, -1.0]])  # (1, 2) as torch.tensor([[0.5, -1.0]])
    b = np.array([0.0])
    layer = Dense(2, 1, seed=0)
    layer.params["W"] = W
    with pytest.raises(ValueError, match=r"params\['W'\] has shape \(1, 2\), expected .* \(2, 1\).*use weight\.T"):
        layer.forward(x)
    layer.params["W"] = W.T.copy()
    layer.params["b"] = b.copy()
    z = layer.forward(x)
    sigmoid = Sigmoid()
    a = sigmoid.forward(z)
    bce_lossfn = BCELoss()
    loss = bce_lossfn(a, y_true)
    assert f"Pérdida BCE: {loss.item():.4f}" == "Pérdida BCE: 0.6931"
    dL_da = bce_lossfn.backward(a, y_true)
    dL_dz = sigmoid.backward(dL_da)
    layer.backward(dL_dz)
    np.testing.assert_allclose(z, [[0.0]])
    np.testing.assert_allclose(a, [[0.5]])
    np.testing.assert_allclose(dL_da, [[-2.0]])
    np.testing.assert_allclose(dL_dz, [[-0.5]])
    np.testing.assert_allclose(layer.grads["W"].T, [[-1.0, -0.5]])  # torch's W.grad, transposed back
    np.testing.assert_allclose(layer.grads["b"], [-0.5])


def test_dense_weight_shape_error_names_the_layer() -> None:
    model = NeuralNetwork([Dense(3, 2, seed=0), ReLU(), Dense(2, 2, seed=1)])
    model.layers[0].params["W"] = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"Dense layer 0 .*expected \(n_in, n_out\) = \(3, 2\)") as err:
        model.forward(np.ones((5, 3)))
    assert "weight.T" not in str(err.value)  # not a transpose: no torch hint


def test_losses_return_numpy_float64_scalars() -> None:
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 3))
    p = 1 / (1 + np.exp(-z))
    cases = [
        (MSELoss(), z, rng.standard_normal((4, 3))),
        (CrossEntropyLoss(), z, np.array([0, 2, 1, 1])),
        (CrossEntropyLoss(), z.astype(np.float32), np.array([0, 2, 1, 1])),
        (CrossEntropyLoss(), z, np.eye(3)[[0, 2, 1, 1]]),
        (CrossEntropyLoss(from_logits=False), p, np.array([0, 2, 1, 1])),
        (BCELoss(), p, (z > 0).astype(float)),
        (BCEWithLogitsLoss(), z, (z > 0).astype(float)),
    ]
    for loss_fn, pred, y in cases:
        loss = loss_fn(pred, y)
        assert type(loss) is np.float64, loss_fn
        assert isinstance(loss, float) and loss.shape == ()
        assert loss.item() == float(loss) and type(loss.item()) is float
        assert json.loads(json.dumps({"loss": loss}))["loss"] == float(loss)
        assert f"{loss:.4f}" == f"{float(loss):.4f}"


# ---------------------------------------------------------------------------------------------------
# seed 004: two-layer net trained with a manual loop; accuracy; exercise 4 (no zero_grad)
# ---------------------------------------------------------------------------------------------------
def _seed004_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    N = 400
    x0 = rng.standard_normal((N // 2, 2)) + np.array([-2.0, 0.0])
    x1 = rng.standard_normal((N // 2, 2)) + np.array([2.0, 0.0])
    X = np.concatenate([x0, x1], axis=0)
    y = np.concatenate([np.zeros(N // 2), np.ones(N // 2)]).astype(np.int64)
    return X, y


def _seed004_model(h: int = 16) -> NeuralNetwork:
    d_in, d_out = 2, 2
    return NeuralNetwork([Dense(d_in, h, init="normal", scale=0.1, seed=0), ReLU(),
                          Dense(h, d_out, init="normal", scale=0.1, seed=1)])


def _train(epochs: int, zero_grads: bool, accumulate: bool) -> tuple[NeuralNetwork, list[float]]:
    X, y = _seed004_data()
    ds = (X, y)
    train_loader = DataLoader(ds, batch_size=32, shuffle=True, seed=0)
    model = _seed004_model()
    loss_fn = CrossEntropyLoss()
    lr = 0.1
    opt = SGD(model, lr=lr)
    loss_history = []
    for _epoch in range(1, epochs + 1):
        running, n_batches = 0.0, 0
        for xb, yb in train_loader:
            if zero_grads:
                opt.zero_grad()
            logits = model.forward(xb)
            loss = loss_fn(logits, yb)
            model.backward(loss_fn.backward(logits, yb), accumulate=accumulate)
            opt.step(model.grads())
            running += loss.item()
            n_batches += 1
        loss_history.append(running / n_batches)
    return model, loss_history


def test_seed004_manual_training_loop() -> None:
    X, y = _seed004_data()
    model, loss_history = _train(30, zero_grads=True, accumulate=True)
    assert loss_history[-1] < loss_history[0] / 3
    assert accuracy(model, X, y) >= 0.95
    assert accuracy(model, X, y) == accuracy(model.forward(X, training=False), y)

    def cross_entropy_manual(logits: np.ndarray, y: np.ndarray) -> float:
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -log_probs[np.arange(y.shape[0]), y].mean()

    xb, yb = next(iter(DataLoader((X, y), batch_size=32, seed=1)))
    logits = model.forward(xb)
    assert CrossEntropyLoss()(logits, yb).item() == pytest.approx(cross_entropy_manual(logits, yb), rel=1e-12)


def test_seed004_exercise4_zero_grad_matters_only_when_accumulating() -> None:
    _, with_zero = _train(3, zero_grads=True, accumulate=True)
    _, without = _train(3, zero_grads=False, accumulate=True)
    _, overwrite = _train(3, zero_grads=False, accumulate=False)
    assert with_zero == overwrite  # default backward overwrites: zero_grad changes nothing
    assert without != with_zero  # torch semantics: forgetting zero_grad sums stale gradients


def test_backward_accumulate_adds_into_grads() -> None:
    rng = np.random.default_rng(4)
    model = _seed004_model()
    X = rng.standard_normal((8, 2))
    g = rng.standard_normal((8, 2))
    model.forward(X)
    model.backward(g)
    once = {k: v.copy() for k, v in model.grads().items()}
    model.backward(g, accumulate=True)
    for k, v in model.grads().items():
        np.testing.assert_allclose(v, 2 * once[k], rtol=1e-14, atol=0)
    model.backward(g)  # default: overwrite
    for k, v in model.grads().items():
        np.testing.assert_array_equal(v, once[k])
    model.zero_grad()
    model.backward(g, accumulate=True)
    for k, v in model.grads().items():
        np.testing.assert_allclose(v, once[k], rtol=1e-14, atol=0)


def test_torch_style_optimizer_calls() -> None:
    model = _seed004_model()
    X, y = _seed004_data()
    loss_fn = CrossEntropyLoss()
    opt = SGD(model.params(), lr=0.1)
    logits = model.forward(X[:32])
    model.backward(loss_fn.backward(logits, y[:32]))
    with pytest.raises(TypeError, match=r"opt\.step\(model\.grads\(\)\)"):
        opt.step()
    with pytest.raises(AttributeError, match=r"call model\.zero_grad\(\)"):
        opt.zero_grad()
    opt = SGD(model.parameters(), lr=0.1)  # torch's model.parameters() works too
    assert set(opt.params) == {"W_0", "b_0", "W_2", "b_2"} and model.parameters["W_0"] is model.params()["W_0"]
    opt = SGD(model, lr=0.1)
    opt.zero_grad()  # delegates to the model
    assert all(not v.any() for v in model.grads().values())


def test_data_loader_accepts_a_tensor_dataset_style_pair() -> None:
    X, y = _seed004_data()
    a = [(xb.copy(), yb.copy()) for xb, yb in DataLoader((X, y), batch_size=32, seed=3)]
    b = [(xb.copy(), yb.copy()) for xb, yb in DataLoader(X, y, batch_size=32, seed=3)]
    assert len(a) == len(b) == 13
    assert all(np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1]) for p, q in zip(a, b))
    with pytest.raises(ValueError, match="same number of samples"):
        DataLoader((X, y[:-1]))


def test_accuracy_call_forms_and_the_ambiguous_call() -> None:
    X, y = _seed004_data()
    model, _ = _train(2, zero_grads=True, accumulate=False)
    logits = model.forward(X, training=False)
    assert accuracy(model, X, y) == accuracy(logits, y)
    assert accuracy(logits, y, None) == accuracy(logits, y)  # positional threshold still accepted
    with pytest.raises(TypeError, match=r"accuracy\(model, X, y\)"):
        accuracy(model, X)
    with pytest.raises(ValueError, match=r"y has label 2 but pred has 2 columns.*accuracy\(model, X, y\)"):
        accuracy(X, np.arange(400) % 3)  # inputs passed where predictions are expected
    with pytest.raises(TypeError, match="too many arguments"):
        accuracy(logits, y, 0.5, 0.5)


def test_check_layers_honours_verbose_and_error_cutoff(capsys: pytest.CaptureFixture[str]) -> None:
    from verigrad.check import check_layers

    model = _seed004_model(h=4)
    X = np.random.default_rng(6).standard_normal((5, 2))
    assert check_layers(model, X, verbose=True).passed
    assert "layer-by-layer gradient check: PASS" in capsys.readouterr().out
    strict = check_layers(model, X, error_cutoff=0.0)
    assert not strict.passed and strict.first_faulty == 0


def test_src_module_paths_translate_to_verigrad_nn_modules() -> None:
    # seed 000: from src.layers / src.losses / src.network; seed 002: neural_networks.activations / .losses
    from verigrad.nn.activations import SoftMax as SoftMax2
    from verigrad.nn.activations import TanH as TanH2
    from verigrad.nn.layers import Dense as Dense2
    from verigrad.nn.layers import ReLU as ReLU2
    from verigrad.nn.losses import CrossEntropy as CrossEntropy2
    from verigrad.nn.losses import CrossEntropyLoss as CrossEntropyLoss2
    from verigrad.nn.network import NeuralNetwork as NeuralNetwork2

    assert (Dense2, ReLU2, NeuralNetwork2) == (Dense, ReLU, NeuralNetwork)
    assert (CrossEntropyLoss2, CrossEntropy2, TanH2, SoftMax2) == (CrossEntropyLoss, CrossEntropy, TanH, SoftMax)


def test_seed001_positional_epsilon_is_a_clear_error() -> None:
    X, y = _seed001_data()
    with pytest.raises(TypeError, match=r"4th argument is loss_fn, got the number 1e-05.*epsilon=1e-5"):
        gradient_check(MultilayerPerceptron(), X, y, 1e-5, 1e-7)


def test_check_params_with_a_loss_that_needs_arguments_says_to_wrap_it() -> None:
    X, y = _seed001_data()
    model = MultilayerPerceptron()
    model.forward(X)
    grads = model.backward(y)
    params = {k: getattr(model, k) for k in grads}
    with pytest.raises(TypeError, match=r"requires \['y_hat', 'y'\].*lambda: model\.compute_loss"):
        check_params(model.compute_loss, params, grads)
    report = check_params(lambda: model.compute_loss(model.forward(X), y), params, grads)
    assert report.passed and list(report) == ["W1", "b1", "W2", "b2"]
