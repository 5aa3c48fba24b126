"""verigrad experiment: verdicts read from the curves, one figure per exercise."""

from __future__ import annotations

import numpy as np
import pytest

from verigrad.cli import main
from verigrad.cli.experiment import EXPERIMENTS, classify, conclusion, Run

BASE = list(np.linspace(0.6, 0.06, 30))


def test_classify_diverging_curves():
    assert classify([0.6, 3.0, np.inf], BASE, initial=0.69).startswith("diverges (inf/nan at epoch 3)")
    assert classify([0.6, 0.9, 1.2], BASE, initial=0.69).startswith("diverges (ends at")


def test_classify_crawling_and_unstable_curves():
    slow = list(np.linspace(0.68, 0.6, 30))
    assert classify(slow, BASE, initial=0.69).startswith("crawls")
    jumpy = [0.5, 0.3, 0.45, 0.2, 0.4, 0.25, 0.5, 0.3, 0.45, 0.2]
    assert classify(jumpy, BASE[:10], initial=0.69).startswith("unstable")


def test_classify_speed_relative_to_baseline():
    fast = [0.3, 0.1, 0.06] + [0.06] * 27
    assert classify(fast, BASE, initial=0.69).startswith("faster")
    late = list(np.linspace(0.65, 0.064, 30))
    late[-1] = 0.08
    assert classify(late, BASE, initial=0.69).startswith("slower")
    assert classify(BASE, BASE, initial=0.69) == "like the baseline"


def test_conclusion_names_the_runs():
    runs = [Run("lr=0.1", {}, verdict="baseline"), Run("lr=1.0", {}, verdict="diverges (x)"),
            Run("lr=0.001", {}, verdict="crawls (y)")]
    assert conclusion(runs) == "lr=1.0 diverges; lr=0.001 crawls."
    runs[1].verdict = "faster (z)"
    assert conclusion(runs) == "lr=0.001 crawls; no run diverges on this data."


def test_experiment_lr_and_zero_grad(tmp_path, capsys):
    rc = main(["experiment", "--only", "lr", "--only", "zero_grad", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Exercise 3, learning-rate pathology" in out
    assert "Exercise 4, gradients not zeroed" in out
    assert "Exercise 1" not in out
    # lr = 0.001 moves the loss by a few percent in 30 epochs: it must be called a crawl
    assert "lr=0.001 crawls" in out
    mpimg = pytest.importorskip("matplotlib.image")
    for name in ("lr", "zero_grad"):
        img = mpimg.imread(tmp_path / f"experiment_{name}.png")
        assert img.shape[:2] == (480, 640)
    assert not (tmp_path / "experiment_activation.png").exists()


def test_experiment_all_without_plots(tmp_path, capsys):
    rc = main(["experiment", "--epochs", "5", "--no-plots", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    for title in ("activation swap", "hidden width", "learning-rate pathology", "not zeroed"):
        assert title in out
    assert list(tmp_path.iterdir()) == []
    assert set(EXPERIMENTS) == {"activation", "width", "lr", "zero_grad"}


def test_experiment_custom_learning_rates_show_a_divergence(tmp_path, capsys):
    rc = main(["experiment", "--only", "lr", "--lrs", "30,0.001", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "lr=30 diverges" in out and "lr=0.001 crawls" in out
    assert (tmp_path / "experiment_lr.png").stat().st_size > 0


@pytest.mark.parametrize("bad", ["fast", "0.1,-1", "0,1", "inf"])
def test_experiment_bad_learning_rates_exit_2(bad, capsys):
    assert main(["experiment", "--lrs", bad]) == 2
    assert "--lrs" in capsys.readouterr().err
