"""Each real-world Function of the catalogue with a seeded bug in its backward (sign, scale, zero, one row
wrong): every mutant is caught, with the diagnosis of its bug, whatever the Function's style (needs_input_grad,
a non-tensor argument, two outputs with setup_context, mark_dirty, saving its result)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import vg_torch_functions as F  # noqa: E402  (tests/torch/vg_torch_functions.py)

import verigrad.torch as vt  # noqa: E402


def _mutant(cls: type, kind: str) -> type:
    """``cls`` whose backward returns its first gradient damaged: negated, doubled, zeroed or row 0 zeroed."""
    original = cls.backward

    def backward(ctx, *grads):
        out = original(ctx, *grads)
        single = not isinstance(out, tuple)
        outs = list((out,) if single else out)
        g = outs[0]
        if kind == "sign":
            g = -g
        elif kind == "scale":
            g = 2 * g
        elif kind == "zero":
            g = torch.zeros_like(g)
        else:  # partial: the first row of the gradient lost
            g = g.clone()
            g[0] = 0
        outs[0] = g
        return outs[0] if single else tuple(outs)

    return type(f"{cls.__name__}_{kind}", (cls,), {"backward": staticmethod(backward)})


def _n(gen, *shape):
    return F.t(gen, *shape)


FUNCTIONS = {
    "DocsLinear": (F.DocsLinear, lambda g: F.docs_linear_inputs(g)),
    "MulConstant": (F.MulConstant, lambda g: (_n(g, 5, 4), 2.5)),
    "MyCube": (F.MyCube, lambda g: (_n(g, 5, 3),)),
    "Legendre3": (F.Legendre3, lambda g: (_n(g, 6, 4),)),
    "TutorialReLU": (F.TutorialReLU, lambda g: (_n(g, 6, 4),)),
    "Exp": (F.Exp, lambda g: (_n(g, 5, 4),)),
    "MulAdd": (F.MulAdd, lambda g: (_n(g, 5, 4), _n(g, 5, 4))),
    "ScaleInplace": (F.ScaleInplace, lambda g: (_n(g, 5, 4),)),
}
KINDS = ["sign", "scale", "zero", "partial"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_seeded_bug_in_every_real_world_function_is_diagnosed(name, kind):
    cls, make = FUNCTIONS[name]
    inputs = make(torch.Generator().manual_seed(len(name)))  # (the correct Functions pass: test_torch_catalogue)
    report = vt.check(_mutant(cls, kind).apply, *inputs)
    assert not report.passed
    assert set(report.failures) == {"input0"}, str(report)
    d = report["input0"].diagnosis
    assert d.kind == kind, str(report)
    if kind == "scale":
        assert d.details["factor"] == pytest.approx(2.0, rel=1e-3)
    if kind == "partial":
        assert list(d.details.get("rows", [])) == [0], d.message
