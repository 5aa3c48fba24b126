"""verigrad.torch is a package: public names, and its modules' ``import torch`` is PyTorch, not itself."""

from __future__ import annotations

import importlib
import pickle
import pkgutil

import pytest

torch = pytest.importorskip("torch")

import verigrad.torch as vt  # noqa: E402

SUBMODULES = sorted(m.name for m in pkgutil.iter_modules(vt.__path__))


def test_public_names_are_the_functions_and_classes():
    assert set(vt.__all__) == {"PARITY_TOLERANCES", "TorchCheckError", "check", "ParityEntry", "ParityReport",
                               "parity", "to_torch"}
    for name in ("check", "parity", "to_torch"):
        obj = getattr(vt, name)
        assert callable(obj) and not isinstance(obj, type(vt)), name  # a function, not a submodule
        assert obj.__module__ == "verigrad.torch"
    assert issubclass(vt.TorchCheckError, RuntimeError)
    assert set(vt.PARITY_TOLERANCES) == {"float64", "float32", "float16"}


def test_public_class_pickles_under_its_public_name():
    entry = vt.ParityEntry("loss", "loss", (), 0.0, 0.0, True)
    assert pickle.loads(pickle.dumps(entry)) == entry
    assert type(entry).__module__ == "verigrad.torch"


@pytest.mark.parametrize("name", SUBMODULES)
def test_each_module_imports_the_real_torch(name):
    mod = importlib.import_module(f"verigrad.torch.{name}")
    assert mod.__doc__ and len(mod.__doc__.strip()) > 40, f"verigrad.torch.{name} needs a module docstring"
    t = getattr(mod, "torch", None)
    assert t is torch, f"verigrad.torch.{name}.torch is {t!r}, not PyTorch"
    assert hasattr(t, "autograd") and "verigrad" not in t.__file__


def test_modules_listed():
    assert {"checking", "tensors", "backward", "safety", "findings", "convert", "compare"} <= set(SUBMODULES)

