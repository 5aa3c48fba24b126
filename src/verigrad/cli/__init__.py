"""The ``verigrad`` command line.

Subcommands
-----------
demo        train seed 004's 2-16-2 MLP, check it, break a backward pass and catch it; write plots
check       gradient-check an MLP given as a spec (exit 0 pass, 1 fail, 2 bad usage)
train       train an MLP on a data set, report train / held-out accuracy, save the model and plots
experiment  seed 004's four exercises (activation, width, learning rate, no zero_grad), one figure each
explain     seed 003's single sigmoid neuron step by step, then vanishing and exploding gradients

Use ``verigrad <subcommand> --help`` for the options of each.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from verigrad.cli import check, demo, experiment, explain, train
from verigrad.cli._common import CLIArgumentParser, UsageError, emit

__all__ = ["build_parser", "main"]

_SUBCOMMANDS = {
    "demo": demo,
    "check": check,
    "train": train,
    "experiment": experiment,
    "explain": explain,
}


def build_parser() -> CLIArgumentParser:
    """The top-level parser with one subparser per subcommand."""
    from verigrad import __version__

    parser = CLIArgumentParser(
        prog="verigrad",
        description="verigrad: a NumPy neural-network library whose every backward pass is verified, "
        "and a gradient checker that says what is wrong.",
        epilog="Start with 'verigrad demo'. Each subcommand has its own --help.",
    )
    parser.add_argument("--version", action="version", version=f"verigrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(_SUBCOMMANDS) + "}",
                                parser_class=CLIArgumentParser)
    for name, module in _SUBCOMMANDS.items():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``verigrad`` command line and return its exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success (for ``check``: the gradients passed); 1 when ``check`` finds a wrong
        gradient, ``train`` diverges or ``demo``'s checks do not come out as expected; 2 on bad
        usage (unknown subcommand or option, invalid value, inconsistent spec, unwritable path).
    """
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help / --version (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        emit("\nverigrad: error: choose a subcommand from " + ", ".join(_SUBCOMMANDS), file=sys.stderr)
        return 2
    try:
        return int(_SUBCOMMANDS[args.command].run(args))
    except UsageError as exc:
        emit(f"verigrad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        emit("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `verigrad check | head`: stop quietly
        _silence_stdout()
        return 1
    except OSError as exc:  # an output path that cannot be written (--out, --json, --save, --plot)
        where = f" {exc.filename!r}" if getattr(exc, "filename", None) else ""
        emit(f"verigrad {args.command}: error: cannot write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
