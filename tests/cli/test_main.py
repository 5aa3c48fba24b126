"""The top-level parser: help, bad usage, exit codes."""

from __future__ import annotations

import pytest

from verigrad.cli import main

SUBCOMMANDS = ["demo", "check", "train", "experiment", "explain"]


def test_top_level_help_lists_every_subcommand(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name, capsys):
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"verigrad {name}" in out
    assert "--seed" in out


def test_version(capsys):
    from verigrad import __version__

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_no_subcommand_is_bad_usage(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "choose a subcommand" in err and "demo" in err


def test_unknown_subcommand_lists_the_valid_ones(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and "'frobnicate'" in err
    for name in SUBCOMMANDS:
        assert name in err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["check", "--layers", "2-x-2"], "invalid layer spec '2-x-2'"),
        (["check", "--layers", "2"], "need at least an input and an output width"),
        (["check", "--layers", "2-0-2"], "positive integer"),
        (["check", "--activation", "swish"], "invalid choice: 'swish'"),
        (["check", "--loss", "hinge"], "choose from 'ce', 'mse', 'bce'"),
        (["check", "--dataset", "mnist"], "invalid choice: 'mnist'"),
        (["check", "--batch", "0"], "expected a positive integer, got 0"),
        (["check", "--dtype", "float16"], "invalid choice: 'float16'"),
        (["check", "--inject-bug", "typo"], "invalid choice: 'typo'"),
        (["train", "--lr", "-1"], "positive finite number"),
        (["train", "--optimizer", "rmsprop"], "choose from 'sgd', 'adam'"),
        (["experiment", "--only", "dropout"], "choose from 'activation', 'width', 'lr', 'zero_grad'"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_a_specific_message(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert "usage: verigrad" in err


def test_python_dash_m_entry_point():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "verigrad.cli", "frobnicate"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "invalid choice: 'frobnicate'" in proc.stderr


def test_layer_spec_round_trip_and_rejects():
    import argparse

    from hypothesis import given
    from hypothesis import strategies as st

    from verigrad.cli._common import layer_sizes

    @given(st.lists(st.integers(1, 4096), min_size=2, max_size=6), st.sampled_from(["-", ",", "x"]))
    def round_trip(sizes, sep):
        assert layer_sizes(sep.join(str(s) for s in sizes)) == sizes

    round_trip()
    for bad in ("", "16", "2--2", "2-0-2", "2-a-2", "-2-2", "2.5-3"):
        with pytest.raises(argparse.ArgumentTypeError, match=repr(bad).replace("'", "'")):
            layer_sizes(bad)
