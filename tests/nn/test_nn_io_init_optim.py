"""Save/load round trip and corrupt files; initialisers; optimizer behaviour and validation."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verigrad.nn.activations import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from verigrad.nn.base import Layer
from verigrad.nn.init import INITIALIZERS, get_initializer, initialize
from verigrad.nn.layers import Dense
from verigrad.nn.network import NeuralNetwork
from verigrad.nn.optim import SGD, Adam
from verigrad.nn.serialization import load_model, save_model


def _model():
    rng = np.random.default_rng(0)
    return NeuralNetwork(
        [
            Dense(4, 6, rng=rng, init="he"),
            LeakyReLU(0.2),
            Dense(6, 5, activation="tanh", rng=rng),
            Dense(5, 3, activation=LeakyReLU(0.3), rng=rng, dtype=np.float32, name="head"),
            Softmax(),
        ]
    )


# ---- serialization ----------------------------------------------------------------------------
def test_save_load_round_trip_bit_for_bit(tmp_path):
    model = _model()
    for p in model.params().values():
        p += 0.01  # biases non-zero
    X = np.random.default_rng(1).standard_normal((7, 4))
    path = tmp_path / "model.bin"  # any name: written exactly there
    model.save(path)
    assert path.exists() and not (tmp_path / "model.bin.npz").exists()
    loaded = NeuralNetwork.load(path)
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert loaded.layers[1].alpha == 0.2 and loaded.layers[3].activation.alpha == 0.3
    assert loaded.layers[3].name == "head" and loaded.layers[0].init == "he"
    assert list(loaded.params()) == list(model.params())
    for k, v in model.params().items():
        assert loaded.params()[k].dtype == v.dtype
        np.testing.assert_array_equal(loaded.params()[k], v)
        assert loaded.params()[k] is not v
    np.testing.assert_array_equal(loaded(X), model(X))
    assert repr(loaded) == repr(model)
    # functions too
    save_model(model, tmp_path / "m2.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "m2.npz")(X), model(X))


def test_lazy_unbuilt_model_round_trip(tmp_path):
    model = NeuralNetwork([Dense(3, seed=0), ReLU()])
    model.save(tmp_path / "lazy.npz")
    loaded = load_model(tmp_path / "lazy.npz")
    assert loaded.params() == {} and loaded.layers[0].n_out == 3


def test_custom_layer_cannot_be_saved(tmp_path):
    class Mine(Layer):
        def forward(self, x, training=True):
            return x

        def backward(self, dy):
            return dy

    class MyDense(Dense):
        pass

    for layer in (Mine(), MyDense(2, 2)):
        with pytest.raises(TypeError, match=r"layer 1 \((Mine|MyDense)\) cannot be saved"):
            save_model(NeuralNetwork([Dense(2, 2), layer]), tmp_path / "x.npz")


def _rewrite(path, out, mutate_spec=None, drop=None, extra=None, replace=None):
    with np.load(path) as d:
        arrays = {k: d[k] for k in d.files}
    if mutate_spec is not None:
        spec = json.loads(str(arrays["__verigrad__"]))
        mutate_spec(spec)
        arrays["__verigrad__"] = np.array(json.dumps(spec))
    if drop:
        del arrays[drop]
    if extra:
        arrays.update(extra)
    if replace:
        arrays.update(replace)
    with open(out, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize(
    "damage, pattern",
    [
        ("truncate", "not a readable .npz file"),
        ("garbage", "not a readable .npz file"),
        ("other_npz", "not a verigrad model"),
        ("bad_json", "not valid JSON"),
        ("version", "version 99"),
        ("format", "not a verigrad model file"),
        ("unknown_class", "unknown class 'Conv2D'"),
        ("missing_weights", "'layer2/W' .* missing"),
        ("wrong_shape", r"'layer0/W' have shape \(3, 6\)"),
        ("extra_weights", "no layer uses: layer9/W"),
        ("bad_config", "invalid configuration"),
        ("wrong_dtype", "dtype float64"),
    ],
)
def test_corrupt_files_raise_clear_errors(tmp_path, damage, pattern):
    src = tmp_path / "good.npz"
    _model().save(src)
    bad = tmp_path / "bad.npz"
    data = src.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        bad.write_bytes(b"this is not a zip file at all")
    elif damage == "other_npz":
        np.savez(bad, a=np.zeros(3))
    elif damage == "bad_json":
        _rewrite(src, bad, replace={"__verigrad__": np.array("{not json")})
    elif damage == "version":
        _rewrite(src, bad, mutate_spec=lambda s: s.update(version=99))
    elif damage == "format":
        _rewrite(src, bad, mutate_spec=lambda s: s.update(format="something"))
    elif damage == "unknown_class":
        _rewrite(src, bad, mutate_spec=lambda s: s["layers"][1].update({"class": "Conv2D"}))
    elif damage == "missing_weights":
        _rewrite(src, bad, drop="layer2/W")
    elif damage == "wrong_shape":
        _rewrite(src, bad, replace={"layer0/W": np.zeros((3, 6))})
    elif damage == "extra_weights":
        _rewrite(src, bad, extra={"layer9/W": np.zeros(2)})
    elif damage == "bad_config":
        _rewrite(src, bad, mutate_spec=lambda s: s["layers"][0]["config"].update(init="bogus"))
    elif damage == "wrong_dtype":
        _rewrite(src, bad, replace={"layer3/W": np.zeros((5, 3))})
    with pytest.raises(ValueError, match=pattern):
        load_model(bad)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no file"):
        load_model("/nonexistent/dir/model.npz")


def test_saved_file_needs_no_pickle(tmp_path):
    _model().save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        assert "__verigrad__.npy" in z.namelist()
    with np.load(tmp_path / "m.npz", allow_pickle=False) as d:
        spec = json.loads(str(d["__verigrad__"]))
    assert spec["format"] == "verigrad-model" and len(spec["layers"]) == 5


# ---- initialisers ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, expected_std",
    [
        ("xavier", np.sqrt(2 / (300 + 200))),
        ("glorot_normal", np.sqrt(2 / (300 + 200))),
        ("xavier_uniform", np.sqrt(6 / (300 + 200)) / np.sqrt(3)),
        ("he", np.sqrt(2 / 300)),
        ("he_uniform", np.sqrt(6 / 300) / np.sqrt(3)),
        ("normal", 0.01),
    ],
)
def test_initializer_statistics(name, expected_std):
    W = initialize(name, 300, 200, seed=0)
    assert W.shape == (300, 200)
    # 60000 draws: the sample std is within 1.5% of the target with overwhelming probability
    assert abs(W.std() / expected_std - 1) < 0.015
    assert abs(W.mean()) < 4 * expected_std / np.sqrt(W.size)
    if "uniform" in name:
        bound = expected_std * np.sqrt(3)
        assert W.max() <= bound and W.min() >= -bound and W.max() > 0.99 * bound


def test_initializer_table_and_errors():
    assert {"xavier", "glorot", "xavier_uniform", "glorot_uniform", "xavier_normal", "glorot_normal",
            "he", "he_normal", "he_uniform", "normal", "zeros"} <= set(INITIALIZERS)
    assert np.all(initialize("zeros", 3, 2) == 0)
    assert initialize("normal", 100, 100, seed=1, scale=0.5).std() == pytest.approx(0.5, rel=0.03)
    assert get_initializer("XAVIER") is get_initializer("xavier")
    with pytest.raises(ValueError, match="unknown init 'kaiming'.*he_uniform"):
        get_initializer("kaiming")
    assert initialize("he", 4, 4, dtype=np.float32, seed=0).dtype == np.float32
    np.testing.assert_array_equal(initialize("he", 4, 4, seed=3), initialize("he", 4, 4, rng=np.random.default_rng(3)))


def test_dense_biases_zero_and_scale_gain():
    d = Dense(200, 100, init="he", seed=0, scale=2.0)
    assert np.all(d.params["b"] == 0)
    assert d.params["W"].std() == pytest.approx(2.0 * np.sqrt(2 / 200), rel=0.03)


# ---- optimizers --------------------------------------------------------------------------------
def test_sgd_plain_step_formula_and_liveness():
    model = NeuralNetwork([Dense(3, 2, seed=0), Sigmoid()])
    before = {k: v.copy() for k, v in model.params().items()}
    X = np.ones((4, 3))
    model.backward(model.forward(X))
    opt = SGD(model, lr=0.5)  # a model is accepted too
    opt.step(model.grads())
    for k, v in model.params().items():
        np.testing.assert_allclose(v, before[k] - 0.5 * model.grads()[k], rtol=1e-15)
        assert v is model.layers[0].params[k[0]]


def test_sgd_momentum_hand_computed():
    p = {"w": np.array([1.0, 2.0])}
    opt = SGD(p, lr=0.1, momentum=0.5)
    g = {"w": np.array([1.0, -1.0])}
    opt.step(g)  # buf = g
    np.testing.assert_allclose(p["w"], [0.9, 2.1])
    opt.step(g)  # buf = 0.5 g + g = 1.5 g
    np.testing.assert_allclose(p["w"], [0.75, 2.25])
    np.testing.assert_array_equal(g["w"], [1.0, -1.0])  # gradients not modified


def test_adam_first_step_is_lr_times_sign():
    p = {"w": np.array([1.0, -2.0, 3.0])}
    Adam(p, lr=0.1, eps=0.0).step({"w": np.array([0.3, -5.0, 1e-3])})
    np.testing.assert_allclose(p["w"], [0.9, -1.9, 2.9], rtol=1e-12)


def test_float32_params_stay_float32():
    p = {"w": np.ones(3, dtype=np.float32)}
    SGD(p, lr=0.1, momentum=0.9).step({"w": np.ones(3)})
    Adam(p).step({"w": np.ones(3, dtype=np.float32)})
    assert p["w"].dtype == np.float32


@pytest.mark.parametrize(
    "make, exc, pattern",
    [
        (lambda p: SGD(p, lr=0), ValueError, "lr must be finite and > 0, got 0"),
        (lambda p: SGD(p, lr=-1.0), ValueError, "lr"),
        (lambda p: SGD(p, lr="0.1"), TypeError, "lr"),
        (lambda p: SGD(p, momentum=-0.1), ValueError, "momentum"),
        (lambda p: SGD(p, nesterov=True), ValueError, "nesterov"),
        (lambda p: Adam(p, betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
        (lambda p: Adam(p, betas=0.9), ValueError, "betas"),
        (lambda p: Adam(p, lr=float("nan")), ValueError, "lr"),
        (lambda p: SGD({}, lr=0.1), ValueError, "empty.*forward pass"),
        (lambda p: SGD([1, 2], lr=0.1), TypeError, "dict"),
        (lambda p: SGD({"w": np.arange(3)}, lr=0.1), TypeError, "'w'.*floating"),
    ],
)
def test_optimizer_bad_arguments(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make({"w": np.zeros(2)})


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_step_validates_grads(cls):
    p = {"W_0": np.zeros((2, 2)), "b_0": np.zeros(2)}
    opt = cls(p, lr=0.1)
    with pytest.raises(ValueError, match="missing b_0"):
        opt.step({"W_0": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="unexpected W_9"):
        opt.step({"W_0": np.zeros((2, 2)), "b_0": np.zeros(2), "W_9": np.zeros(1)})
    with pytest.raises(ValueError, match=r"'b_0' has shape \(3,\), expected \(2,\)"):
        opt.step({"W_0": np.zeros((2, 2)), "b_0": np.zeros(3)})
    assert np.all(p["W_0"] == 0) and np.all(p["b_0"] == 0)  # nothing updated by a failed step


def test_training_reduces_loss():
    """A small end-to-end run: SGD with momentum fits a separable 2-class problem."""
    from verigrad.nn.losses import CrossEntropyLoss

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.standard_normal((50, 2)) - 2, rng.standard_normal((50, 2)) + 2])
    y = np.repeat([0, 1], 50)
    model = NeuralNetwork([Dense(2, 8, rng=rng), Tanh(), Dense(8, 2, rng=rng)])
    loss = CrossEntropyLoss()
    opt = SGD(model.params(), lr=0.1, momentum=0.9)
    first = loss(model.forward(X), y)
    for _ in range(50):
        pred = model.forward(X)
        model.backward(loss.backward(pred, y))
        opt.step(model.grads())
    assert loss(model.forward(X), y) < 0.1 * first
    assert np.mean(model(X).argmax(1) == y) > 0.97


_ACT_CHOICES = [None, "identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]


@given(
    widths=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    acts=st.lists(st.sampled_from(_ACT_CHOICES), min_size=3, max_size=3),
    seed=st.integers(0, 2**32 - 1),
    f32=st.booleans(),
)
@settings(max_examples=15)
def test_round_trip_random_architectures(tmp_path_factory, widths, acts, seed, f32):
    rng = np.random.default_rng(seed)
    dtype = np.float32 if f32 else np.float64
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(Dense(a, b, activation=acts[i], rng=rng, dtype=dtype))
        if i % 2 == 0:
            layers.append(Tanh())
    model = NeuralNetwork(layers)
    for p in model.params().values():
        p[...] = rng.standard_normal(p.shape)
    path = tmp_path_factory.mktemp("rt") / "m.npz"
    model.save(path)
    X = rng.standard_normal((3, widths[0])).astype(dtype)
    np.testing.assert_array_equal(NeuralNetwork.load(path)(X), model(X))


@given(
    seed=st.integers(0, 2**32 - 1),
    lr=st.floats(1e-4, 1.0),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    wd=st.sampled_from([0.0, 1e-2]),
    nesterov=st.booleans(),
)
@settings(max_examples=25)
def test_sgd_matches_reference_loop(seed, lr, momentum, wd, nesterov):
    """Several steps against the update rule written out element by element."""
    if nesterov and momentum == 0:
        nesterov = False
    rng = np.random.default_rng(seed)
    p = {"a": rng.standard_normal((2, 3)), "b": rng.standard_normal(4)}
    ref = {k: v.copy() for k, v in p.items()}
    buf = {k: None for k in p}
    opt = SGD(p, lr=lr, momentum=momentum, weight_decay=wd, nesterov=nesterov)
    for _ in range(3):
        g = {k: rng.standard_normal(v.shape) for k, v in p.items()}
        opt.step(g)
        for k in ref:
            for idx in np.ndindex(ref[k].shape):
                d = g[k][idx] + wd * ref[k][idx]
                if momentum:
                    if buf[k] is None:
                        buf[k] = np.zeros_like(ref[k])
                        buf[k][...] = np.nan
                    prev = buf[k][idx]
                    buf[k][idx] = d if np.isnan(prev) else momentum * prev + d
                    d = d + momentum * buf[k][idx] if nesterov else buf[k][idx]
                ref[k][idx] -= lr * d
        for k in p:
            np.testing.assert_allclose(p[k], ref[k], rtol=1e-12, atol=1e-14)


@given(seed=st.integers(0, 2**32 - 1), lr=st.floats(1e-4, 0.5), wd=st.sampled_from([0.0, 0.1]))
@settings(max_examples=25)
def test_adam_matches_reference_loop(seed, lr, wd):
    rng = np.random.default_rng(seed)
    p = {"w": rng.standard_normal(5)}
    w = p["w"].copy()
    m = np.zeros(5)
    v = np.zeros(5)
    b1, b2, eps = 0.9, 0.999, 1e-8
    opt = Adam(p, lr=lr, weight_decay=wd)
    for t in range(1, 4):
        g = rng.standard_normal(5)
        opt.step({"w": g})
        for i in range(5):
            gi = g[i] + wd * w[i]
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            w[i] -= lr * (m[i] / (1 - b1**t)) / (np.sqrt(v[i] / (1 - b2**t)) + eps)
        np.testing.assert_allclose(p["w"], w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgd_step_equals_lr_times_grad_and_follows_lr_changes(dtype):
    """The cached 0-d learning rates give exactly p - lr * g, and a new opt.lr (a schedule) is used."""
    rng = np.random.default_rng(4)
    params = {"W": rng.standard_normal((3, 2)).astype(dtype), "b": rng.standard_normal(2).astype(dtype)}
    opt = SGD(params, lr=0.1)
    for lr in (0.1, 0.1, 0.037, 1e-5):
        opt.lr = lr
        grads = {k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()}
        expected = {k: v - lr * grads[k] for k, v in params.items()}
        opt.step(grads)
        for k, v in params.items():
            assert v.dtype == dtype
            np.testing.assert_array_equal(v, expected[k])
    mixed = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}  # float64 grads, float32 params
    expected = {k: v - 1e-5 * mixed[k] for k, v in params.items()}
    opt.step(mixed)
    for k, v in params.items():
        np.testing.assert_array_equal(v, expected[k].astype(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sgd_blockwise_update_of_large_parameters_is_bit_identical(dtype):
    """Parameters large enough for the block-by-block update give exactly p - lr * g (also a
    parameter whose size is not a multiple of the block, and non-contiguous gradients)."""
    rng = np.random.default_rng(7)
    params = {"W": rng.standard_normal((301, 331)).astype(dtype), "b": rng.standard_normal(70001).astype(dtype),
              "V": rng.standard_normal((300, 250)).astype(dtype)}
    opt = SGD(params, lr=0.0123)
    grads = {"W": rng.standard_normal((301, 331)).astype(dtype), "b": rng.standard_normal(70001).astype(dtype),
             "V": rng.standard_normal((250, 300)).astype(dtype).T}  # Fortran order: the plain update
    expected = {k: v - 0.0123 * grads[k] for k, v in params.items()}
    before = {k: id(v) for k, v in params.items()}
    opt.step(grads)
    for k, v in params.items():
        assert id(v) == before[k] and v.dtype == dtype
        np.testing.assert_array_equal(v, expected[k])
