"""Report renderings (str, format, to_dict/JSON, HTML, rich), seed 002's usage, errors and pytest helpers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from verigrad.check import GradientCheckError, GradientReport, ModelReport, check_gradients, check_params
from verigrad.testing import assert_gradients, assert_model_gradients, assert_params_gradients


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


class Sigmoid:
    """Seed 002's activation interface: forward(X), backward(X, dLdY)."""

    def forward(self, X):
        return _sigmoid(X)

    def backward(self, X, dLdY):
        s = _sigmoid(X)
        return dLdY * s * (1 - s)


def test_seed002_usage_print_formatting(capsys):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, 3))
    dLdY = rng.standard_normal((2, 3))
    act = Sigmoid()
    _ = act.forward(X)
    grad = act.backward(X, dLdY)
    rep = check_gradients(fn=act.forward, grad=grad, x=X, dLdf=dLdY)
    print("Relative error for sigmoid activation:", rep)
    print(f"Relative error: {rep:.3e}")
    out = capsys.readouterr().out
    assert "PASS" in out
    assert f"Relative error: {float(rep):.3e}" in out
    assert float(rep) < 1e-8
    assert rep.rel_error == float(rep)


def test_seed002_cross_entropy_with_scalar_dldf():
    rng = np.random.default_rng(1)
    y = np.eye(6)[rng.integers(0, 6, 5)]
    scores = rng.uniform(0, 1, size=(5, 6))
    y_hat = scores / scores.sum(axis=1, keepdims=True)

    def ce(Y_hat):
        return -np.sum(y * np.log(Y_hat)) / 5

    rep = check_gradients(fn=ce, grad=-y / y_hat / 5, x=y_hat, dLdf=1)
    assert rep.passed and float(rep) < 1e-8


def test_rel_error_is_zero_when_both_zero():
    rep = check_gradients(lambda x: np.zeros_like(x), np.zeros(3), np.ones(3), np.ones(3))
    assert rep.passed and float(rep) == 0.0


def _failing():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    return check_gradients(np.sin, -np.cos(x), x, np.ones((2, 3)))


def test_failing_str_names_worst_entry_and_diagnosis():
    rep = _failing()
    text = str(rep)
    assert "FAIL" in text and "sign" in text
    w = rep.worst
    assert f"worst entry {w.index}" in text
    assert f"{w.analytic:.6g}" in text and f"{w.numerical:.6g}" in text
    for col in ("max abs err", "max rel err", "rel error", "worst index", "verdict", "diagnosis"):
        assert col in text


def test_to_dict_is_json_serialisable_and_complete():
    rep = _failing()
    d = json.loads(json.dumps(rep.to_dict(arrays=True)))
    assert d["passed"] is False and d["verdict"] == "fail"
    assert d["diagnosis"]["kind"] == "sign"
    assert d["worst"]["index"] == list(rep.worst.index)
    assert d["shape"] == [2, 3]
    assert np.allclose(np.array(d["numerical"]), rep.numerical)
    P = {"W": np.ones(3)}
    mrep = check_params(lambda: float(np.sum(P["W"] ** 2)), P, {"W": 2 * np.ones(3)})
    md = json.loads(json.dumps(mrep.to_dict()))
    assert md["passed"] is True and "W" in md["tensors"]


def test_html_and_rich_renderings():
    rep = _failing()
    html = rep._repr_html_()
    assert "<table>" in html and "fail" in html and "#cf222e" in html
    pytest.importorskip("rich")
    from rich.console import Console

    console = Console(record=True, width=140)
    console.print(rep)
    out = console.export_text()
    assert "fail" in out and "sign" in out
    P = {"W": np.ones(3)}
    mrep = check_params(lambda: float(np.sum(P["W"] ** 2)), P, {"W": 2 * np.ones(3)})
    console.print(mrep)
    assert "pass" in console.export_text()
    assert "<table>" in mrep._repr_html_()


def test_model_report_mapping_interface():
    P = {"W": np.array([[1.0, 2.0], [3.0, 4.0]]), "b": np.array([0.5, -0.5])}

    def loss():
        return float(np.sum(P["W"] ** 2) + np.sum(P["b"] ** 3))

    rep = check_params(loss, P, {"W": 2 * P["W"], "b": 3 * P["b"] ** 2 * 2})
    assert isinstance(rep, ModelReport)
    assert list(rep) == ["W", "b"] and len(rep) == 2
    assert isinstance(rep["W"], GradientReport)
    assert rep["W"].passed and not rep["b"].passed
    assert list(rep.failures) == ["b"]
    assert rep.worst.name == "b"
    assert rep.diagnosis.kind == "scale" and rep["b"].diagnosis.details["factor"] == pytest.approx(2.0)
    with pytest.raises(KeyError, match="no tensor named 'c'"):
        rep["c"]
    text = str(rep)
    assert text.count("\n") >= 4 and "b: worst entry" in text


def test_raise_on_failure_and_raise_if_failed():
    x = np.linspace(-1, 1, 4)
    with pytest.raises(GradientCheckError) as info:
        check_gradients(np.sin, np.cos(x) * 2, x, np.ones(4), raise_on_failure=True)
    assert info.value.report.diagnosis.kind == "scale"
    assert "scale" in str(info.value)
    assert isinstance(info.value, AssertionError)
    ok = check_gradients(np.sin, np.cos(x), x, np.ones(4))
    assert ok.raise_if_failed() is ok


def test_assert_gradients_forms():
    x = np.linspace(-1, 1, 5)
    rep = assert_gradients(np.tanh, lambda z: 1 - np.tanh(z) ** 2, x, np.ones(5))
    assert rep.passed
    with pytest.raises(AssertionError, match="sign"):
        assert_gradients(np.tanh, lambda z: np.tanh(z) ** 2 - 1, x, np.ones(5))
    P = {"W": np.ones(2)}
    assert assert_params_gradients(lambda: float(np.sum(P["W"] ** 2)), P, {"W": 2 * np.ones(2)}).passed
    assert assert_gradients(lambda: float(np.sum(P["W"] ** 2)), P, {"W": 2 * np.ones(2)}).passed
    with pytest.raises(AssertionError, match="W"):
        assert_params_gradients(lambda: float(np.sum(P["W"] ** 2)), P, {"W": np.ones(2)})


def test_assert_model_gradients_dispatch():
    nn = pytest.importorskip("verigrad.nn")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 3))
    y = rng.standard_normal((4, 2))
    model = nn.NeuralNetwork([nn.Dense(3, 4, seed=0), nn.Tanh(), nn.Dense(4, 2, seed=1)])
    assert assert_model_gradients(model, X, y, nn.MSELoss()).passed
    assert assert_gradients(model, X, y, nn.MSELoss()).passed


def test_fast_mode_report_has_no_per_entry_arrays_and_renders():
    # fast mode evaluates no entry: the per-entry arrays are all-NaN views (no allocation, no per-entry
    # work over large tensors), and every rendering still works
    rng = np.random.default_rng(7)
    W = rng.standard_normal((300, 200))
    x = rng.standard_normal(300)
    rep = check_params(lambda: float(np.tanh(x @ W).sum()), {"W": W},
                        {"W": np.outer(x, 1 - np.tanh(x @ W) ** 2)}, mode="fast", seed=0)
    r = rep["W"]
    assert rep.passed and r.directional["passed"]
    for arr in (r.numerical, r.tolerance, r.error_estimate):
        assert arr.shape == W.shape and np.isnan(arr).all() and arr.strides == (0, 0)
    assert (r.status == -1).all() and r.status.strides == (0, 0)
    assert r.worst is None and r.kinks == [] and np.isnan(r.max_abs_error)
    assert r.rel_error == r.directional["rel_error"]
    json.dumps(rep.to_dict())
    assert "W" in str(rep)
    bad = check_params(lambda: float(np.tanh(x @ W).sum()), {"W": W},
                        {"W": 1.01 * np.outer(x, 1 - np.tanh(x @ W) ** 2)}, mode="fast", seed=0)
    assert not bad.passed
