"""Tests for verigrad.display: progress reporters and tables."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

from verigrad.display import (
    PlainProgress,
    format_logs,
    format_table,
    history_table,
    make_progress,
    print_table,
)


def test_plain_progress_writes_loss_per_epoch():
    buf = io.StringIO()
    p = PlainProgress(stream=buf)
    for epoch in (1, 2):
        for b in (1, 2, 3):
            p(epoch, 2, b, 3, 0.5 / epoch)
        p.epoch_end(epoch, 2, {"loss": 0.123456 / epoch, "accuracy": 0.875})
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2")
    assert "loss 0.1235" in lines[0] and "accuracy 0.8750" in lines[0]
    assert "loss 0.0617" in lines[1]


def test_plain_progress_every_keeps_first_last_and_divergence():
    buf = io.StringIO()
    p = PlainProgress(stream=buf, every=5)
    for epoch in range(1, 13):
        loss = float("nan") if epoch == 7 else 1.0
        p.epoch_end(epoch, 12, {"loss": loss})
    epochs = [int(line.split()[1].split("/")[0]) for line in buf.getvalue().splitlines()]
    assert epochs == [1, 5, 7, 10, 12]
    assert "loss nan" in buf.getvalue()
    with pytest.raises(ValueError, match="every"):
        PlainProgress(every=0)


def test_plain_progress_uses_running_loss_when_logs_lack_it():
    buf = io.StringIO()
    p = PlainProgress(stream=buf)
    p(1, 1, 1, 1, 2.5)
    p.epoch_end(1, 1, {"accuracy": 1.0})
    assert "loss 2.5000" in buf.getvalue()


def test_make_progress_plain_and_rich():
    buf = io.StringIO()
    assert isinstance(make_progress(stream=buf, use_rich=False), PlainProgress)
    pytest.importorskip("rich")
    r = make_progress(stream=buf, use_rich=True)
    for b in (1, 2):
        r(1, 1, b, 2, 0.75)
    r.epoch_end(1, 1, {"loss": 0.75, "accuracy": 0.5})
    r.close()
    out = buf.getvalue()
    assert "0.7500" in out and "2/2" in out and "accuracy 0.5000" in out


def test_rich_progress_without_batch_count():
    pytest.importorskip("rich")
    buf = io.StringIO()
    r = make_progress(stream=buf, use_rich=True)
    for b in (1, 2, 3):
        r(1, 1, b, None, 0.5)
    r.close()
    assert "3/?" in buf.getvalue()
    for b in (1, 2):  # reusable for a second run
        r(1, 1, b, 2, 0.25)
    r.close()
    assert "2/2" in buf.getvalue() and "0.2500" in buf.getvalue()


def test_format_logs():
    assert format_logs({"loss": 0.5, "n": 3, "x": float("inf")}) == "loss 0.5000  n 3  x inf"


def test_format_table_plain_aligns_columns():
    rows = [["relu", 3, 0.5], ["sigmoid", 12345, 1.25e-7], ["x", -1, float("nan")]]
    text = format_table(rows, ["name", "count", "error"])
    lines = text.splitlines()
    assert len(lines) == 5
    assert len({len(line) for line in lines}) == 1  # every line has the same width
    # text left-aligned: names start at column 0; numbers right-aligned: they end at the line's end
    assert lines[2].startswith("relu ") and lines[3].startswith("sigmoid")
    assert all(line.endswith(tail) for line, tail in zip(lines[2:], ("0.5", "1.25e-07", "nan")))
    col = lines[0].index("count") + len("count")
    assert [line[:col].rstrip()[-5:].strip() for line in lines[2:]] == ["3", "12345", "-1"]
    assert set(lines[1]) <= {"-", " "}


def test_format_table_markdown():
    text = format_table([["a", 1.0], ["bb", 22.5]], ["k", "v"], fmt="markdown", floatfmt=".2f")
    lines = text.splitlines()
    assert lines[0].startswith("| k") and lines[0].endswith("|")
    assert re.fullmatch(r"\|-{3,}\|-{2,}:\|", lines[1].replace(" ", ""))
    assert "22.50" in lines[3] and "1.00" in lines[2]
    assert len({len(line) for line in lines}) == 1


def test_format_table_errors_and_explicit_align():
    with pytest.raises(ValueError, match="row 1 has 1 cells"):
        format_table([[1, 2], [3]], ["a", "b"])
    with pytest.raises(ValueError, match="fmt"):
        format_table([[1]], ["a"], fmt="html")
    with pytest.raises(ValueError, match="align"):
        format_table([[1]], ["a"], align="middle")
    with pytest.raises(TypeError, match="string"):
        format_table(["ab"], ["a", "b"])
    text = format_table([[1, 2]], ["left", "right"], align=["left", "right"])
    assert text.splitlines()[2].startswith("1 ")


def test_format_table_numpy_numbers():
    text = format_table([[np.float32(0.25), np.int64(7)]], ["a", "b"])
    assert "0.25" in text and "7" in text


def test_print_table_plain_and_rich():
    buf = io.StringIO()
    print_table([["a", 1]], ["name", "n"], title="T", stream=buf, use_rich=False)
    assert buf.getvalue() == "T\n" + format_table([["a", 1]], ["name", "n"]) + "\n"
    pytest.importorskip("rich")
    buf = io.StringIO()
    print_table([["[bold]x", 1]], ["name", "n"], stream=buf, use_rich=True)
    assert "[bold]x" in buf.getvalue()  # cells are literal text, not rich markup


def test_history_table_from_fit():
    from verigrad.data import DataLoader, make_blobs
    from verigrad.nn import SGD, CrossEntropyLoss, Dense, NeuralNetwork
    from verigrad.train import fit

    X, y = make_blobs(40, seed=0)
    model = NeuralNetwork([Dense(2, 2, seed=0)])
    h = fit(model, CrossEntropyLoss(), SGD(model.params(), lr=0.1), DataLoader(X, y, seed=0), epochs=7,
            progress=False, validation_data=(X, y))
    rows, headers = history_table(h, every=3)
    assert headers == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [r[0] for r in rows] == [1, 3, 6, 7]
    assert rows[-1][1] == h.loss[-1] and rows[1][4] == h.val_metrics["accuracy"][2]
    text = format_table(rows, headers)
    assert len(text.splitlines()) == 6
    with pytest.raises(ValueError, match="every"):
        history_table(h, every=0)
