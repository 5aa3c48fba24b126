"""verigrad explain: seed 003's neuron values, torch beside them, vanishing/exploding."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from verigrad.cli import main
from verigrad.cli.explain import deep_sigmoid_norms, neuron_values


def test_neuron_values_follow_the_chain_rule():
    v = neuron_values()
    # z = 2*0.5 + 1*(-1) + 0 = 0, a = sigmoid(0) = 1/2, L = -log(1/2)
    assert float(v["z"].item()) == pytest.approx(0.0, abs=1e-15)
    assert float(v["a"].item()) == pytest.approx(0.5, rel=1e-15)
    assert float(v["loss"]) == pytest.approx(math.log(2.0), rel=1e-12)
    # dL/da = -y/a = -2, dL/dz = dL/da * a(1-a) = -1/2, dL/dW = dL/dz * x, dL/db = dL/dz
    assert float(v["dL_da"].item()) == pytest.approx(-2.0, rel=1e-12)
    assert float(v["dL_dz"].item()) == pytest.approx(-0.5, rel=1e-12)
    np.testing.assert_allclose(v["dL_dW"], [-1.0, -0.5], rtol=1e-12)
    np.testing.assert_allclose(v["dL_db"], [-0.5], rtol=1e-12)


def test_explain_prints_every_step(capsys):
    assert main(["explain", "--no-torch", "--depth", "6"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"z\s+= x \. W \+ b .*= 0\.0000", out)
    assert re.search(r"a\s+= sigmoid\(z\).*= 0\.5000", out)
    assert re.search(r"L\s+= .*= 0\.6931", out)
    assert re.search(r"dL/da = .*= -2\.0000", out)
    assert re.search(r"dL/dz = dL/da \* da/dz.*\(-2\.0000\) \* \(0\.2500\)\s+= -0\.5000", out)
    assert re.search(r"dL/dW = .*= \[-1\.0000, -0\.5000\]", out)
    assert "they equal verigrad's backward values" in out
    assert "torch autograd" not in out
    assert "-> vanishing gradient" in out
    assert "-> exploding gradient" in out


def test_explain_shows_torch_autograd_beside(capsys):
    pytest.importorskip("torch")
    assert main(["explain", "--depth", "3"]) == 0
    out = capsys.readouterr().out
    assert "torch autograd" in out
    assert "PyTorch autograd: the same numbers" in out


def test_deep_sigmoid_norms_vanish_and_explode():
    small = deep_sigmoid_norms(8, 32, 1.0, seed=3)
    large = deep_sigmoid_norms(8, 32, 32.0, seed=3)
    assert small.shape == large.shape == (8,)
    assert np.all(np.isfinite(small)) and np.all(np.isfinite(large))
    assert small[0] < 1e-2 * small[-1]  # vanishing: orders of magnitude smaller at the input
    assert large[0] > 2.0 * large[-1]  # exploding: larger at the input


def test_explain_plot_writes_png(tmp_path, capsys):
    mpimg = pytest.importorskip("matplotlib.image")
    assert main(["explain", "--no-torch", "--depth", "4", "--plot", str(tmp_path)]) == 0
    path = tmp_path / "layer_grad_norms.png"
    assert str(path) in capsys.readouterr().out
    assert mpimg.imread(path).shape[:2] == (480, 640)


def test_explain_without_matplotlib_skips_the_plot(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    assert main(["explain", "--no-torch", "--depth", "3", "--plot", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "matplotlib is not installed: skipping the plots" in out
    assert not (tmp_path / "layer_grad_norms.png").exists()


def test_verdict_words_and_saturation():
    from verigrad.cli.explain import _verdict

    assert _verdict(np.array([1e-4, 1.0]), "vanishing gradient", "none").endswith("-> vanishing gradient")
    assert _verdict(np.array([1.0, 1e-4]), "vanishing gradient", "none").endswith("-> none")
    assert _verdict(np.array([50.0, 1.0]), "exploding gradient", "none").endswith("-> exploding gradient")
    assert "exactly 0" in _verdict(np.array([0.0, 0.0]), "exploding gradient", "none")


def test_explain_rejects_non_positive_scale(capsys):
    assert main(["explain", "--large-scale", "0"]) == 2
    assert "--large-scale" in capsys.readouterr().err
