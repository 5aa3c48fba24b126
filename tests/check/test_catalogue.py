"""Every wrong backward pass in the catalogue is caught with the right diagnosis; no correct one is flagged."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from catalogue import CORRECT, WRONG, run_case  # noqa: E402


@pytest.mark.parametrize("case", WRONG, ids=[c.name for c in WRONG])
def test_wrong_backward_is_caught_with_its_diagnosis(case):
    report, kind, _ = run_case(case)
    assert not report.passed, str(report)
    assert report.verdict == "fail"
    assert kind == case.expected, str(report)
    # every failing report names its worst entry
    assert report.worst is not None
    w = report.worst
    if hasattr(report, "failures") and hasattr(w, "worst"):  # ModelReport: worst parameter's report
        assert w.name in report.failures
        w = w.worst
    assert isinstance(w.index, tuple)
    assert np.isfinite(w.analytic) and np.isfinite(w.numerical)
    assert w.abs_error == pytest.approx(abs(w.analytic - w.numerical), rel=1e-12, abs=1e-300)
    assert f"{w.index}" in str(report)


def test_scale_by_batch_size_names_N():
    case = next(c for c in WRONG if c.name.startswith("missing 1/N"))
    report, _, _ = run_case(case)
    d = report.diagnosis
    assert d.details["factor"] == pytest.approx(32, rel=1e-6)
    assert "N=32" in d.message and "1/N" in d.message
    # the failing parameters are named in the text
    assert "W" in str(report) and "b" in str(report)


def test_factor_two_is_named():
    case = next(c for c in WRONG if c.name == "factor 2")
    report, _, _ = run_case(case)
    assert report.diagnosis.details["factor"] == pytest.approx(2.0, rel=1e-9)
    assert report.diagnosis.details["factor_name"] == "2"


def test_one_column_wrong_names_column_3():
    case = next(c for c in WRONG if c.name.startswith("one column"))
    report, _, _ = run_case(case)
    assert report.diagnosis.details["columns"] == [3]
    assert "column 3" in report.diagnosis.message
    assert report.diagnosis.details["factor"] == pytest.approx(1.5, rel=1e-6)
    assert report.worst.index[1] == 3


def test_large_input_bug_caught_only_by_probing():
    case = next(c for c in WRONG if "probing" in c.name)
    report, _, _ = run_case(case)
    assert any(p.get("label") == "x*10" and not p["passed"] for p in report.probes)
    assert "probe point" in report.diagnosis.message
    # the same check at x alone, without probing, passes: the bug is only outside [-2, 2]
    from verigrad.check import check_gradients

    x = np.random.default_rng(10).uniform(-1, 1, size=6)
    rep = check_gradients(lambda z: np.sum(z ** 3), lambda z: 3 * np.minimum(z * z, 4.0), x, probe=False)
    assert rep.passed


@pytest.mark.parametrize("case", CORRECT, ids=[c.name for c in CORRECT])
def test_correct_backward_is_never_flagged(case):
    report, kind, _ = run_case(case)
    assert report.passed, str(report)
    assert kind in ("ok", "kink", "precision")


def test_relu_kinks_are_listed():
    case = next(c for c in CORRECT if c.name.startswith("ReLU"))
    report, kind, _ = run_case(case)
    assert kind == "kink"
    assert (0, 0) in report.kinks  # exactly at 0
    # entries 1e-7 .. 1e-6 away from the kink are judged normally at a smaller step, not as kinks
    assert (1, 1) not in report.kinks and (1, 2) not in report.kinks
