"""verigrad check: exit codes, diagnoses of injected bugs, JSON output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from verigrad.cli import main


def test_correct_model_passes_with_exit_0(capsys):
    assert main(["check", "--layers", "2-8-2", "--activation", "tanh"]) == 0
    out = capsys.readouterr().out
    assert "2-8-2 tanh MLP, loss ce, blobs batch of 16, float64" in out
    for name in ("W_0", "b_0", "W_2", "b_2"):
        assert name in out
    assert "PASSED" in out


@pytest.mark.parametrize(
    "bug, kind, param",
    [
        ("missing-1/N", "scale", "W_0"),
        ("sign", "sign", "W_0"),
        ("transpose", "transpose", "W_2"),
        ("one-column", "partial", "W_0"),
        ("bias-mean", "scale", "b_0"),
    ],
)
def test_injected_bugs_fail_with_exit_1_and_the_right_diagnosis(bug, kind, param, tmp_path, capsys):
    path = tmp_path / "report.json"
    rc = main(["check", "--layers", "2-16-16-2", "--inject-bug", bug, "--json", str(path)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "injected bug in layer" in out and bug in out
    assert "FAILED" in out
    data = json.loads(path.read_text())
    assert data["passed"] is False
    assert data["diagnosis"]["kind"] == kind
    assert data["failures"] == [param]


def test_missing_1_over_n_is_named(capsys):
    assert main(["check", "--inject-bug", "missing-1/N", "--batch", "20"]) == 1
    out = capsys.readouterr().out
    assert "scale" in out and "N=20" in out and "missing 1/N" in out


def test_json_to_stdout_is_only_json(capsys):
    assert main(["check", "--layers", "2-4-2", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is True
    assert set(data["tensors"]) >= {"W_0", "b_0", "W_2", "b_2"}


@pytest.mark.parametrize(
    "extra",
    [
        ["--dtype", "float32"],
        ["--method", "complex"],
        ["--method", "richardson"],
        ["--mode", "sample"],
        ["--mode", "fast"],
        ["--loss", "mse"],
        ["--loss", "bce", "--layers", "2-8-1"],
        ["--dataset", "quadratic", "--loss", "mse", "--layers", "2-5-1", "--activation", "sigmoid"],
        ["--dataset", "spirals", "--layers", "2-8-3", "--activation", "tanh"],
        ["--dataset", "moons", "--activation", "leaky_relu"],
    ],
)
def test_option_combinations_pass_on_a_correct_model(extra, capsys):
    assert main(["check", "--layers", "2-8-2", *extra]) == 0
    assert "PASSED" in capsys.readouterr().out


def test_float32_bug_is_still_caught(capsys):
    assert main(["check", "--dtype", "float32", "--inject-bug", "sign"]) == 1
    assert "sign" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--inject-bug", "transpose"], "needs a square Dense layer"),
        (["--layers", "3-4-2"], "input width 3 does not match blobs"),
        (["--loss", "bce"], "--loss bce needs one output unit"),
        (["--dataset", "spirals", "--layers", "2-4-2"], "too small for spirals with 3 classes"),
        (["--dataset", "quadratic"], "regression data set: use --loss mse"),
    ],
)
def test_inconsistent_specs_exit_2(argv, fragment, capsys):
    assert main(["check", *argv]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "verigrad check: error:" in err


def test_unwritable_json_path_exits_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    assert main(["check", "--layers", "2-4-2", "--json", str(blocker / "report.json")]) == 2
    err = capsys.readouterr().err
    assert "verigrad check: error: cannot write" in err and "a_file" in err


def test_strict_json_replaces_non_finite_numbers():
    from verigrad.cli.check import _strict

    data = {"a": float("nan"), "b": [1.0, float("inf"), np.float64(2.5)], "c": np.array([np.nan, 3.0]), "d": "x"}
    assert _strict(data) == {"a": None, "b": [1.0, None, 2.5], "c": [None, 3.0], "d": "x"}
    json.dumps(_strict(data), allow_nan=False)


def test_check_plot_writes_the_heatmap_of_the_broken_parameter(tmp_path, capsys):
    mpimg = pytest.importorskip("matplotlib.image")
    assert main(["check", "--layers", "2-8-8-2", "--inject-bug", "transpose", "--plot", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    path = tmp_path / "check_heatmap.png"
    assert f"figure written: {path}" in out
    assert mpimg.imread(path).shape[:2] == (480, 1200)
