"""Terminal / notebook display helpers: training progress and tables.

rich is optional: it is imported lazily inside the functions that use it, so
``import verigrad`` never needs it. Without rich (or with ``use_rich=False``) everything
falls back to plain text written to a stream.

Contents
--------
make_progress    the progress reporter ``verigrad.train.fit(progress=True)`` uses
PlainProgress    one plain text line per epoch (``epoch 3/30  loss 0.1234  accuracy 0.9500``)
RichProgress     a rich progress bar with the running loss
format_table     rows -> aligned plain-text or markdown table (a ``str``)
print_table      print a table: a rich ``Table`` when available, aligned plain text otherwise
history_table    rows and headers of a per-epoch table of a training ``History``
rich_available   whether rich can be imported

A progress reporter is any callable ``progress(epoch, n_epochs, batch, n_batches, running_loss)``
(epochs and batches counted from 1, ``n_batches`` None when the loader has no ``len``). The
reporters here also have ``epoch_end(epoch, n_epochs, logs)`` and ``close()``, which
``fit`` calls when present.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

__all__ = [
    "PlainProgress",
    "RichProgress",
    "format_logs",
    "format_table",
    "history_table",
    "make_progress",
    "print_table",
    "rich_available",
]


def rich_available() -> bool:
    """Return True when the optional ``rich`` package can be imported."""
    return importlib.util.find_spec("rich") is not None


def _fmt_value(value: Any, floatfmt: str = ".4g") -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return format(v, floatfmt)
    return str(value)


def format_logs(logs: Mapping[str, Any], floatfmt: str = ".4f") -> str:
    """Format ``{"loss": 0.12, "accuracy": 0.95}`` as ``"loss 0.1200  accuracy 0.9500"``.

    Parameters
    ----------
    logs : mapping of str to number
        Metric name -> value (non-numbers are printed with ``str``).
    floatfmt : str, default ".4f"
        Format spec for floats.

    Returns
    -------
    str
    """
    return "  ".join(f"{k} {_fmt_value(v, floatfmt)}" for k, v in logs.items())


# ---------------------------------------------------------------------------------------------
# progress reporters
# ---------------------------------------------------------------------------------------------
class PlainProgress:
    """Plain-text progress: one line per epoch, written to ``stream``.

    The line reads ``epoch  3/30  loss 0.123400  accuracy 0.9500 ...`` (the epoch's
    mean training loss, then every entry of ``logs``). Per-batch calls only record the
    running loss, so the output is the same in a terminal, a log file or a notebook.

    Parameters
    ----------
    stream : text stream, optional
        Where to write; default ``sys.stderr`` (looked up at write time).
    every : int, default 1
        Print every ``every``-th epoch (the first and the last are always printed).
    """

    def __init__(self, stream: TextIO | None = None, every: int = 1) -> None:
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError(f"PlainProgress: every must be an int >= 1, got {every!r}")
        self.stream = stream
        self.every = int(every)
        self.running_loss: float = float("nan")
        self.lines_written = 0

    def __call__(self, epoch: int, n_epochs: int, batch: int, n_batches: int | None, running_loss: float) -> None:
        self.running_loss = float(running_loss)

    def epoch_end(self, epoch: int, n_epochs: int, logs: Mapping[str, Any]) -> None:
        """Write the line for a finished epoch (``logs``: ``{"loss": ..., "accuracy": ...}``)."""
        if not (epoch == 1 or epoch == n_epochs or epoch % self.every == 0 or not _finite(logs.get("loss"))):
            return
        width = len(str(n_epochs))
        logs = dict(logs)
        if "loss" not in logs:
            logs = {"loss": self.running_loss, **logs}
        line = f"epoch {epoch:>{width}}/{n_epochs}  {format_logs(logs)}"
        out = self.stream if self.stream is not None else sys.stderr
        out.write(line + "\n")
        out.flush()
        self.lines_written += 1

    def close(self) -> None:
        """Nothing to release (present for symmetry with :class:`RichProgress`)."""


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


class RichProgress:
    """A rich progress bar over all the batches of a training run, showing the running loss.

    The bar advances per batch; its description shows the epoch and the last finished
    epoch's metrics. Started on the first call, stopped by :meth:`close`.

    Parameters
    ----------
    stream : text stream, optional
        File for the rich Console; default: rich's own choice (stdout / notebook).
    transient : bool, default False
        Remove the bar when closed.
    """

    def __init__(self, stream: TextIO | None = None, transient: bool = False) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(file=stream) if stream is not None else Console()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[logs]}"),
            console=self.console,
            transient=transient,
        )
        self._task: Any = None
        self._steps = 0
        self._n_batches: int | None = None
        self._last_logs = ""

    def __call__(self, epoch: int, n_epochs: int, batch: int, n_batches: int | None, running_loss: float) -> None:
        if self._task is None:
            self._n_batches = n_batches
            total = n_epochs * n_batches if n_batches else None
            self._progress.start()
            self._task = self._progress.add_task(f"epoch {epoch}/{n_epochs}", total=total,
                                                 loss=_fmt_value(running_loss, ".4f"), logs="")
        self._steps += 1
        self._progress.update(self._task, completed=self._steps, description=f"epoch {epoch}/{n_epochs}",
                              loss=_fmt_value(running_loss, ".4f"))

    def epoch_end(self, epoch: int, n_epochs: int, logs: Mapping[str, Any]) -> None:
        """Show the finished epoch's metrics next to the bar."""
        if self._task is not None:
            self._last_logs = format_logs({k: v for k, v in logs.items() if k != "loss"})
            self._progress.update(self._task, logs=self._last_logs)

    def close(self) -> None:
        """Stop the live display (idempotent); the reporter can then be reused for another run."""
        if self._task is not None:
            self._progress.refresh()
        self._progress.stop()
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = None
        self._steps = 0


def make_progress(stream: TextIO | None = None, use_rich: bool | None = None) -> PlainProgress | RichProgress:
    """The progress reporter used by ``fit(progress=True)``.

    Parameters
    ----------
    stream : text stream, optional
        Output stream (plain: default ``sys.stderr``; rich: its console default).
    use_rich : bool, optional
        None: rich when importable; True: require rich (ImportError if missing); False: plain.

    Returns
    -------
    RichProgress or PlainProgress
    """
    if use_rich is None:
        use_rich = rich_available()
    if use_rich:
        if not rich_available():
            raise ImportError('use_rich=True needs the rich package: pip install "verigrad[rich]"')
        return RichProgress(stream=stream)
    return PlainProgress(stream=stream)


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------
def _prepare(rows: Sequence[Sequence[Any]], headers: Sequence[Any], floatfmt: str,
             align: Sequence[str] | str | None) -> tuple[list[str], list[list[str]], list[str]]:
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence):
        rows = list(rows)
    heads = [str(h) for h in headers]
    ncol = len(heads)
    cells: list[list[str]] = []
    numeric = [True] * ncol
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)):
            raise TypeError(f"format_table: row {i} is a string ({row!r}); each row must be a sequence of cells")
        row = list(row)
        if len(row) != ncol:
            raise ValueError(f"format_table: row {i} has {len(row)} cells but there are {ncol} headers {heads}")
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, numbers.Number):
                numeric[j] = False
        cells.append([_fmt_value(v, floatfmt) for v in row])
    if align is None:
        aligns = ["right" if (numeric[j] and cells) else "left" for j in range(ncol)]
    elif isinstance(align, str):
        aligns = [align] * ncol
    else:
        aligns = list(align)
        if len(aligns) != ncol:
            raise ValueError(f"format_table: align has {len(aligns)} entries but there are {ncol} columns")
    for a in aligns:
        if a not in ("left", "right", "center"):
            raise ValueError(f"format_table: align entries must be 'left', 'right' or 'center', got {a!r}")
    return heads, cells, aligns


def _pad(text: str, width: int, how: str) -> str:
    if how == "right":
        return text.rjust(width)
    if how == "center":
        return text.center(width)
    return text.ljust(width)


def format_table(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[Any],
    fmt: str = "plain",
    floatfmt: str = ".4g",
    align: Sequence[str] | str | None = None,
) -> str:
    """Format rows as an aligned text table.

    Parameters
    ----------
    rows : sequence of sequences
        One sequence of cells per row, each with ``len(headers)`` cells. Floats are
        formatted with ``floatfmt``, everything else with ``str``.
    headers : sequence of str
        Column titles.
    fmt : {"plain", "markdown"}, default "plain"
        ``"plain"``: columns separated by two spaces, a dashed rule under the headers;
        ``"markdown"``: a GitHub markdown table (``| a | b |`` with ``---:`` alignment markers).
    floatfmt : str, default ".4g"
        Format spec for float cells.
    align : {"left", "right", "center"} or sequence of them, optional
        Per-column alignment; default right for all-numeric columns, left otherwise.

    Returns
    -------
    str
        The table, lines joined with ``"\\n"``, no trailing newline. Every line has the same
        width in ``"plain"`` format.
    """
    if fmt not in ("plain", "markdown"):
        raise ValueError(f"format_table: fmt must be 'plain' or 'markdown', got {fmt!r}")
    heads, cells, aligns = _prepare(rows, headers, floatfmt, align)
    widths = [max([len(h)] + [len(r[j]) for r in cells]) for j, h in enumerate(heads)]
    if fmt == "markdown":
        widths = [max(w, 3) for w in widths]

        def line(parts: Sequence[str]) -> str:
            return "| " + " | ".join(_pad(p, w, a) for p, w, a in zip(parts, widths, aligns)) + " |"

        marks = []
        for w, a in zip(widths, aligns):
            if a == "right":
                marks.append("-" * (w - 1) + ":")
            elif a == "center":
                marks.append(":" + "-" * (w - 2) + ":")
            else:
                marks.append("-" * w)
        out = [line(heads), "| " + " | ".join(marks) + " |"] + [line(r) for r in cells]
        return "\n".join(out)
    sep = "  "
    out = [sep.join(_pad(h, w, a) for h, w, a in zip(heads, widths, aligns)),
           sep.join("-" * w for w in widths)]
    out += [sep.join(_pad(c, w, a) for c, w, a in zip(r, widths, aligns)) for r in cells]
    return "\n".join(out)


def history_table(history: Any, every: int = 1) -> tuple[list[list[Any]], list[str]]:
    """Rows and headers of a per-epoch table of a training History.

    Parameters
    ----------
    history : History
        From :func:`verigrad.train.fit` (attributes ``epochs``, ``loss``, ``metrics`` and
        optionally ``val_loss`` / ``val_metrics``).
    every : int, default 1
        Keep every ``every``-th epoch (the first and the last are always kept).

    Returns
    -------
    rows : list of lists
        ``[epoch, loss, <metrics...>, val_loss, <val metrics...>]`` per kept epoch.
    headers : list of str
        Pass both to :func:`format_table` or :func:`print_table`.
    """
    if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
        raise ValueError(f"history_table: every must be an int >= 1, got {every!r}")
    epochs = list(getattr(history, "epochs", []) or range(1, len(history.loss) + 1))
    columns: list[tuple[str, Sequence[Any]]] = [("loss", history.loss)]
    columns += [(k, v) for k, v in (getattr(history, "metrics", None) or {}).items()]
    val_loss = getattr(history, "val_loss", None)
    if val_loss:
        columns.append(("val_loss", val_loss))
        columns += [(f"val_{k}", v) for k, v in (getattr(history, "val_metrics", None) or {}).items()]
    last = len(epochs) - 1
    rows = []
    for i, e in enumerate(epochs):
        if i in (0, last) or e % every == 0:
            rows.append([e] + [col[i] if i < len(col) else float("nan") for _, col in columns])
    return rows, ["epoch"] + [name for name, _ in columns]


def print_table(
    rows: Sequence[Sequence[Any]],
    headers: Sequence[Any],
    title: str | None = None,
    stream: TextIO | None = None,
    use_rich: bool | None = None,
    floatfmt: str = ".4g",
    align: Sequence[str] | str | None = None,
) -> None:
    """Print a table: a rich ``Table`` when rich is available, aligned plain text otherwise.

    Parameters
    ----------
    rows, headers, floatfmt, align
        As in :func:`format_table`.
    title : str, optional
        Printed above the table.
    stream : text stream, optional
        Destination; default ``sys.stdout``.
    use_rich : bool, optional
        None: rich when importable; False: always plain text; True: require rich.
    """
    heads, cells, aligns = _prepare(rows, headers, floatfmt, align)
    if use_rich is None:
        use_rich = rich_available()
    if use_rich:
        if not rich_available():
            raise ImportError('use_rich=True needs the rich package: pip install "verigrad[rich]"')
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title)
        for h, a in zip(heads, aligns):
            table.add_column(h, justify=a)  # type: ignore[arg-type]
        for r in cells:
            table.add_row(*(Text(c) for c in r))
        console = Console(file=stream) if stream is not None else Console()
        console.print(table)
        return
    out = stream if stream is not None else sys.stdout
    text = format_table(rows, headers, fmt="plain", floatfmt=floatfmt, align=align)
    if title:
        text = f"{title}\n{text}"
    out.write(text + "\n")
