"""verigrad demo end to end (and its plain / no-matplotlib fallbacks)."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from verigrad.cli import main
from verigrad.cli.demo import MultilayerPerceptron

FIGURES = {
    "loss_curve.png": (480, 640),
    "decision_boundary.png": (480, 640),
    "grad_norms.png": (480, 640),
    "broken_check_heatmap.png": (720, 800),
}


def test_demo_end_to_end(tmp_path, capsys):
    mpimg = pytest.importorskip("matplotlib.image")
    out_dir = tmp_path / "demo-out"
    rc = main(["demo", "--out", str(out_dir), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    m = re.search(r"final loss ([0-9.]+), accuracy ([0-9.]+)", out)
    assert m and float(m.group(1)) < 0.2 and float(m.group(2)) > 0.95
    assert "gradient_check" in out and "check_layers" in out and "check_params" in out
    assert "scale" in out and "missing 1/N" in out and "CAUGHT" in out
    assert str(out_dir) in out
    for name, size in FIGURES.items():
        img = mpimg.imread(out_dir / name)
        assert img.shape[:2] == size, name
        assert img[..., :3].std() > 0.01, name


def test_demo_plain_without_rich_or_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "rich", None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc = main(["demo", "--out", str(tmp_path / "d")])
    captured = capsys.readouterr()
    assert rc == 0
    assert "matplotlib is not installed: skipping the plots" in captured.out
    assert "┃" not in captured.out  # plain tables, no rich box drawing
    assert "epoch 30/30" in captured.out + captured.err  # plain progress lines
    assert not (tmp_path / "d").exists()


def test_seed001_mlp_backward_matches_finite_differences():
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (20, 2))
    y = np.sum(X**2, axis=1, keepdims=True)
    mlp = MultilayerPerceptron(rng=rng)
    mlp.forward(X)
    grads = mlp.backward(y)
    h = 1e-6
    for name in ("W1", "b1", "W2", "b2"):
        p = getattr(mlp, name)
        num = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            lp = mlp.compute_loss(mlp.forward(X), y)
            p[i] = old - h
            lm = mlp.compute_loss(mlp.forward(X), y)
            p[i] = old
            num[i] = (lp - lm) / (2 * h)
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-9)
