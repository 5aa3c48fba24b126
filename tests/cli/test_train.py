"""verigrad train: final table, held-out accuracy, saved model, plots, bad usage."""

from __future__ import annotations

import re

import numpy as np
import pytest

from verigrad.cli import main


def _accuracy(out: str, split: str) -> float:
    m = re.search(rf"{split}\s*[│|]?\s*(\d+)\s*[│|]?\s*([0-9.e+-]+)\s*[│|]?\s*([0-9.]+)", out)
    assert m, f"no {split} row in:\n{out}"
    return float(m.group(3))


def test_train_blobs_reports_both_accuracies_and_saves(tmp_path, capsys):
    model_path = tmp_path / "m" / "model.npz"
    rc = main(["train", "--no-progress", "--epochs", "10", "--save", str(model_path), "--plot", str(tmp_path / "fig")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "blobs, 2-16-2 relu MLP, loss ce, sgd lr 0.1, 10 epochs" in out
    assert _accuracy(out, "train") > 0.9
    assert _accuracy(out, "held-out") > 0.9
    assert model_path.stat().st_size > 0
    from verigrad.nn import NeuralNetwork

    loaded = NeuralNetwork.load(str(model_path))
    assert loaded.forward(np.zeros((3, 2))).shape == (3, 2)
    mpimg = pytest.importorskip("matplotlib.image")
    assert mpimg.imread(tmp_path / "fig" / "training_history.png").shape[:2] == (480, 960)
    assert mpimg.imread(tmp_path / "fig" / "decision_boundary.png").shape[:2] == (480, 640)


def test_train_digits_reaches_095_held_out(capsys):
    pytest.importorskip("sklearn")
    assert main(["train", "--dataset", "digits", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "64-32-10" in out
    assert _accuracy(out, "held-out") >= 0.95


def test_train_regression_reports_r2(capsys):
    assert main(["train", "--dataset", "quadratic", "--no-progress", "--epochs", "60"]) == 0
    out = capsys.readouterr().out
    assert "R^2" in out
    assert _accuracy(out, "held-out") > 0.8


@pytest.mark.parametrize("loss, layers", [("bce", "2-16-1"), ("mse", "2-16-2")])
def test_train_other_losses_on_blobs(loss, layers, capsys):
    assert main(["train", "--no-progress", "--loss", loss, "--layers", layers, "--epochs", "15"]) == 0
    assert _accuracy(capsys.readouterr().out, "held-out") > 0.9


def test_train_progress_shows_running_loss(capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "rich", None)  # plain fallback
    assert main(["train", "--epochs", "2"]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "loss" in text and ("2/2" in text or "epoch 2" in text)


def test_train_without_scikit_learn_says_so(capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "sklearn", None)
    assert main(["train", "--dataset", "digits", "--no-progress"]) == 2
    assert "scikit-learn" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--layers", "3-16-2"], "input width 3 does not match blobs (2 features); try --layers 2-16-2"),
        (["--layers", "2-16-1"], "output width 1 is too small"),
        (["--dataset", "quadratic", "--loss", "ce"], "regression data set: use --loss mse"),
        (["--test-size", "1.5"], "--test-size"),
        (["--loss", "bce"], "needs one output unit"),
    ],
)
def test_train_inconsistent_options_exit_2(argv, fragment, capsys):
    assert main(["train", "--no-progress", "--epochs", "1", *argv]) == 2
    assert fragment in capsys.readouterr().err


def test_train_divergence_is_reported_with_exit_1(tmp_path, capsys):
    rc = main(["train", "--no-progress", "--lr", "1e8", "--epochs", "3", "--plot", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "warning: training diverged" in out
    assert (tmp_path / "training_history.png").stat().st_size > 0
