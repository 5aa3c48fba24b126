"""verigrad.torch.parity: every verigrad layer and loss against its torch equivalent, autograd as reference."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn_mod = pytest.importorskip("verigrad.nn.network")

from verigrad.nn.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh  # noqa: E402
from verigrad.nn.layers import Dense  # noqa: E402
from verigrad.nn.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss  # noqa: E402
from verigrad.nn.network import NeuralNetwork  # noqa: E402

import verigrad.torch as vt  # noqa: E402

N, D, H, C = 7, 5, 6, 3


def _data(seed: int = 0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng, rng.standard_normal((N, D)).astype(dtype)


ACTIVATIONS = [
    ("relu", ReLU, torch.nn.ReLU),
    ("tanh", Tanh, torch.nn.Tanh),
    ("sigmoid", Sigmoid, torch.nn.Sigmoid),
    ("leaky_relu", lambda: LeakyReLU(0.2), torch.nn.LeakyReLU),
    ("softmax", Softmax, torch.nn.Softmax),
    ("identity", Identity, torch.nn.Identity),
]


@pytest.mark.parametrize("name,make,tcls", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_every_activation_matches_torch(name, make, tcls):
    rng, X = _data(1)
    model = NeuralNetwork([Dense(D, H, seed=0), make(), Dense(H, C, seed=1)])
    y = rng.standard_normal((N, C))
    report = vt.parity(model, X=X, y=y, loss=MSELoss())
    assert report.passed, str(report)
    # the built module really uses the torch layer (not something that merely agrees)
    assert isinstance(report.torch_module[1], tcls)
    if name == "leaky_relu":
        assert report.torch_module[1].negative_slope == 0.2
    names = [e.name for e in report.entries]
    assert names == ["output", "loss", "W_0", "b_0", "W_2", "b_2", "dL/dX"]
    assert report["W_0"].torch_name == "0.weight.T"
    assert report["b_2"].torch_name == "2.bias"
    assert all(e.max_rel < 1e-10 for e in report.entries)


def test_relu_and_leaky_relu_at_exact_zero_match_torch_convention():
    # pre-activations exactly 0: torch's derivative is 0 for ReLU and alpha for LeakyReLU
    X = np.zeros((4, D))
    X[:2] = 1.0
    for act in (ReLU(), LeakyReLU(0.3)):
        model = NeuralNetwork([Dense(D, H, seed=0), act, Dense(H, C, seed=1)])
        model.layers[0].params["W"][:, :3] = 0.0  # first 3 hidden units have z = 0 exactly
        y = np.ones((4, C))
        report = vt.parity(model, X=X, y=y, loss=MSELoss())
        assert report.passed, str(report)


def _labels(rng, n=N, c=C):
    return rng.integers(0, c, n)


LOSSES = [
    ("ce_labels", CrossEntropyLoss, lambda rng: _labels(rng), None),
    ("ce_probs", CrossEntropyLoss, lambda rng: rng.dirichlet(np.ones(C), N), None),
    ("ce_from_probs_labels", lambda: CrossEntropyLoss(from_logits=False), lambda rng: _labels(rng), Softmax),
    ("ce_from_probs_targets", lambda: CrossEntropyLoss(from_logits=False),
     lambda rng: rng.dirichlet(np.ones(C), N), Softmax),
    ("mse_mean", MSELoss, lambda rng: rng.standard_normal((N, C)), None),
    ("mse_half", lambda: MSELoss("half"), lambda rng: rng.standard_normal((N, C)), None),
    ("mse_sum", lambda: MSELoss("sum"), lambda rng: rng.standard_normal((N, C)), None),
    ("bce", BCELoss, lambda rng: rng.integers(0, 2, (N, C)).astype(float), Sigmoid),
    ("bce_soft", BCELoss, lambda rng: rng.uniform(0, 1, (N, C)), Sigmoid),
    ("bce_logits", BCEWithLogitsLoss, lambda rng: rng.integers(0, 2, (N, C)).astype(float), None),
]


@pytest.mark.parametrize("name,make_loss,make_y,out_act", LOSSES, ids=[x[0] for x in LOSSES])
def test_every_loss_matches_torch(name, make_loss, make_y, out_act):
    rng, X = _data(2)
    layers = [Dense(D, H, seed=3), Tanh(), Dense(H, C, seed=4)]
    if out_act is not None:
        layers.append(out_act())
    model = NeuralNetwork(layers)
    y = make_y(rng)
    report = vt.parity(model, X=X, y=y, loss=make_loss())
    assert report.passed, str(report)
    assert report["loss"].max_rel < 1e-12
    assert {e.name for e in report.entries} >= {"W_0", "b_0", "W_2", "b_2", "dL/dX"}


def test_mse_half_is_half_sum_over_batch_not_torch_mean():
    # the "half" convention differs from nn.MSELoss by C/2: parity must use 0.5*sum/N, and the
    # plain torch MSELoss must then FAIL the loss comparison
    rng, X = _data(3)
    model = NeuralNetwork([Dense(D, C, seed=0)])
    y = rng.standard_normal((N, C))
    good = vt.parity(model, X=X, y=y, loss=MSELoss("half"))
    assert good.passed, str(good)
    bad = vt.parity(model, X=X, y=y, loss=MSELoss("half"), torch_loss=torch.nn.MSELoss())
    assert not bad.passed
    assert not bad["loss"].passed and not bad["W_0"].passed
    assert bad["output"].passed  # the network itself agrees
    # L_half / L_mean = (0.5 S / N) / (S / (N C)) = C / 2, so |L_half - L_mean| / L_mean = |C/2 - 1|
    np.testing.assert_allclose(bad["loss"].max_rel, abs(C / 2 - 1), rtol=1e-9)


def test_fused_dense_activation_and_float32():
    rng, X = _data(4, np.float32)
    model = NeuralNetwork([
        Dense(D, H, seed=0, activation="relu", dtype=np.float32),
        Dense(H, C, seed=1, activation="softmax", dtype=np.float32),
    ])
    y = _labels(rng)
    report = vt.parity(model, X=X, y=y, loss=CrossEntropyLoss(from_logits=False))
    assert report.passed, str(report)
    assert report.dtype == "float32"
    assert (report.rtol, report.atol) == vt.PARITY_TOLERANCES["float32"]
    assert isinstance(report.torch_module[1], torch.nn.ReLU)
    assert isinstance(report.torch_module[3], torch.nn.Softmax)
    assert report.torch_module[0].weight.dtype == torch.float32


def test_given_torch_module_is_paired_by_linear_order_and_not_modified():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(D, H)
            self.act = torch.nn.Tanh()
            self.fc2 = torch.nn.Linear(H, C)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    net = Net().double()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng, X = _data(5)
    model = NeuralNetwork([Dense(D, H, seed=0), Tanh(), Dense(H, C, seed=1)])
    report = vt.parity(model, net, X, _labels(rng), CrossEntropyLoss())
    assert report.passed, str(report)
    assert report["W_2"].torch_name == "fc2.weight.T"
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    np.testing.assert_array_equal(report.torch_module.fc1.weight.detach().numpy(), model.layers[0].params["W"].T)


def test_parity_detects_a_different_torch_network():
    # torch module with ReLU where verigrad has Tanh: outputs and gradients must disagree
    net = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, C))
    rng, X = _data(6)
    model = NeuralNetwork([Dense(D, H, seed=0), Tanh(), Dense(H, C, seed=1)])
    report = vt.parity(model, net, X, rng.standard_normal((N, C)), MSELoss())
    assert not report.passed
    assert not report["output"].passed
    assert "FAIL" in str(report) and "output" in str(report).splitlines()[0]


def test_parity_detects_a_wrong_verigrad_gradient():
    class BrokenTanh(Tanh):
        def vjp(self, x, y, dy):  # forgets the (1 - y^2) factor
            return dy

    rng, X = _data(7)
    model = NeuralNetwork([Dense(D, H, seed=0), BrokenTanh(), Dense(H, C, seed=1)])
    net = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.Tanh(), torch.nn.Linear(H, C))
    report = vt.parity(model, net, X, rng.standard_normal((N, C)), MSELoss())
    assert report["output"].passed and report["loss"].passed
    assert report["W_2"].passed and report["b_2"].passed  # above the broken layer: fine
    assert not report["W_0"].passed and not report["b_0"].passed and not report["dL/dX"].passed
    assert report.worst.name in {"W_0", "b_0", "dL/dX"}
    assert [e.name for e in report.failed] == ["W_0", "b_0", "dL/dX"]


def test_report_table_and_dict():
    rng, X = _data(8)
    model = NeuralNetwork([Dense(D, C, seed=0)])
    report = vt.parity(model, X=X, y=_labels(rng), loss=CrossEntropyLoss())
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("parity verigrad vs torch (float64") and lines[0].endswith("PASSED")
    assert any(line.startswith("W_0") and "0.weight.T" in line and line.rstrip().endswith("ok") for line in lines)
    d = report.to_dict()
    assert d["passed"] is True and [e["name"] for e in d["entries"]][:2] == ["output", "loss"]
    assert bool(report) is True and len(report) == 5
    page = report._repr_html_()
    assert page.count("<tr>") == 1 + len(report) and "PASSED" in page and "0.weight.T" in page


def test_parity_bad_arguments():
    rng, X = _data(9)
    model = NeuralNetwork([Dense(D, C, seed=0)])
    y = _labels(rng)
    with pytest.raises(TypeError, match="torch_module must be a torch.nn.Module or None, got ndarray"):
        vt.parity(model, X, y, CrossEntropyLoss())
    with pytest.raises(ValueError, match="parity needs loss"):
        vt.parity(model, X=X, y=y)
    with pytest.raises(TypeError, match="numpy_model must be a verigrad NeuralNetwork"):
        vt.parity(object(), X=X, y=y, loss=CrossEntropyLoss())
    with pytest.raises(ValueError, match="1 Dense layers but torch_module has 2 nn.Linear"):
        vt.parity(model, torch.nn.Sequential(torch.nn.Linear(D, 4), torch.nn.Linear(4, C)), X, y, CrossEntropyLoss())
    with pytest.raises(ValueError, match=r"W of shape \(5, 3\).*expected nn.Linear\(5, 3\)"):
        vt.parity(model, torch.nn.Sequential(torch.nn.Linear(D, 4)), X, y, CrossEntropyLoss())

    class Weird:
        params: dict = {}
        grads: dict = {}

        def forward(self, x, training=True):
            return x

        def backward(self, dy):
            return dy

    with pytest.raises(TypeError, match=r"layer 1 \(Weird\) has no torch equivalent"):
        vt.to_torch(NeuralNetwork([Dense(D, C, seed=0), Weird()]))

    class OtherLoss:
        def forward(self, p, y):
            return 0.0

        def backward(self, p, y):
            return np.zeros_like(p)

    with pytest.raises(TypeError, match="loss OtherLoss has no torch equivalent"):
        vt.parity(model, X=X, y=y, loss=OtherLoss())


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ACTS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "leaky": lambda: LeakyReLU(0.05), "none": None}


@settings(max_examples=15)
@given(
    widths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    acts=st.lists(st.sampled_from(sorted(_ACTS)), min_size=3, max_size=3),
    n=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    f32=st.booleans(),
)
def test_property_random_networks_match_torch(widths, acts, n, seed, f32):
    dtype = np.float32 if f32 else np.float64
    rng = np.random.default_rng(seed)
    sizes = [D] + widths + [C]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(Dense(sizes[i], sizes[i + 1], seed=seed + i, dtype=dtype))
        make = _ACTS[acts[i % len(acts)]]
        if make is not None and i < len(sizes) - 2:
            layers.append(make())
    model = NeuralNetwork(layers)
    X = rng.standard_normal((n, D)).astype(dtype)
    report = vt.parity(model, X=X, y=rng.integers(0, C, n), loss=CrossEntropyLoss())
    assert report.passed, str(report)
    assert len([e for e in report.entries if e.name.startswith("W_")]) == len(sizes) - 1
