"""Every case of the catalogue (tests/torch/vg_torch_functions.py, shared with benchmarks/torch_check.py):
correct Functions and modules pass, each seeded bug is caught with its diagnosis, and the caller's tensors,
parameters, buffers and ``.grad`` fields are bit-identical afterwards."""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")

import vg_torch_functions as F  # noqa: E402  (tests/torch/vg_torch_functions.py)

import verigrad.torch as vt  # noqa: E402

PASSING = {"ok", "kink", "precision"}
IDS = [c.name for c in F.CASES]


def _inputs(case: F.Case) -> tuple:
    return case.make_inputs(torch.Generator().manual_seed(F.CASES.index(case)))


def _state(case: F.Case, inputs: tuple) -> list[tuple[str, torch.Tensor | None]]:
    """Everything a check could touch: values, .grad and version counters of inputs, parameters, buffers."""
    tensors = [(f"input{i}", x) for i, x in enumerate(inputs) if isinstance(x, torch.Tensor)]
    if isinstance(case.fn, torch.nn.Module):
        tensors += list(case.fn.named_parameters()) + list(case.fn.named_buffers())
    out = []
    for name, x in tensors:
        out.append((name, x.detach().clone()))
        out.append((name + ".grad", None if x.grad is None else x.grad.clone()))
        out.append((name + "._version", torch.tensor(x._version)))
    return out


def _assert_same(before, after):
    for (name, a), (_, b) in zip(before, after):
        assert (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b)), name


@pytest.mark.parametrize("case", F.CASES, ids=IDS)
def test_catalogue_case_verdict_and_caller_untouched(case):
    inputs = _inputs(case)
    before = _state(case, inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: every case runs in float64
        report = vt.check(case.fn, *inputs)
    _assert_same(before, _state(case, inputs))
    assert report.torch_numeric_dtype == "float64"
    if not case.buggy or case.probe_only:
        assert report.passed, str(report)
        assert report.diagnosis.kind in PASSING
    else:
        assert not report.passed, str(report)
        if case.expect is not None:
            assert report.diagnosis.kind == case.expect, str(report)


@pytest.mark.parametrize("case", [c for c in F.CASES if c.probe_only], ids=lambda c: c.name)
def test_catalogue_probe_only_bugs_are_caught_with_probe(case):
    report = vt.check(case.fn, *_inputs(case), probe=True)
    assert not report.passed
    assert "probe point" in report.diagnosis.message


def test_catalogue_has_every_bug_kind_and_real_world_styles():
    kinds = {c.expect for c in F.CASES if c.buggy}
    assert {"sign", "scale", "transpose", "partial", "zero", "mismatch", "mutates_input"} <= kinds
    # correct and wrong cases both present for the Function styles of the wild
    names = " ".join(c.name for c in F.CASES)
    for style in ("needs_input_grad", "MulConstant", "MyCube", "Legendre", "mark_dirty", "module", "BatchNorm"):
        assert style in names, style
