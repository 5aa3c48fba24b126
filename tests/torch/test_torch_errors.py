"""verigrad.torch: bad arguments give specific errors; torch stays an optional extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import vg_torch_functions as F  # noqa: E402  (tests/torch/vg_torch_functions.py)

import verigrad.torch as vt  # noqa: E402


def _x(*shape, grad=True, dtype=torch.float64):
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(0)).requires_grad_(grad)


def test_import_verigrad_never_imports_torch():
    code = "import sys, verigrad; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_import_verigrad_torch_without_torch_names_the_extra():
    # simulate a machine without torch: a meta-path finder that refuses to import it
    code = textwrap.dedent(
        """
        import sys
        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("No module named 'torch'")
                return None
        sys.meta_path.insert(0, NoTorch())
        try:
            import verigrad.torch
        except ImportError as exc:
            print(str(exc))
        else:
            print("NO ERROR")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'pip install "verigrad[torch]"' in out.stdout
    assert "NO ERROR" not in out.stdout


def test_non_tensor_input_names_position_and_type():
    with pytest.raises(TypeError, match=r"input 1 .* is a ndarray, expected a torch.Tensor"):
        vt.check(lambda a, b: a * b, _x(3), np.ones(3))
    with pytest.raises(TypeError, match=r"input 0 .* is a int"):
        vt.check(lambda a: a, 3)


def test_nothing_to_check():
    with pytest.raises(ValueError, match="nothing to check: none of the 2 inputs requires grad and fn is not an nn.Module"):
        vt.check(lambda a, b: a * b, _x(3, grad=False), _x(3, grad=False))
    frozen = torch.nn.Linear(3, 2).double().requires_grad_(False)
    with pytest.raises(ValueError, match="the module has no trainable parameter"):
        vt.check(frozen, _x(4, 3, grad=False))


def test_integer_tensor_in_wrt_names_dtype():
    labels = torch.tensor([0, 2, 1])
    with pytest.raises(TypeError, match=r"input 1 \(input1\) has dtype torch.int64"):
        vt.check(lambda x, y: x[torch.arange(3), y], _x(3, 3), labels, wrt=[0, 1])
    with pytest.raises(ValueError, match=r"wrt must hold input positions in range\(0, 2\), got 5"):
        vt.check(lambda x, y: x, _x(3), _x(3), wrt=[5])


def test_fn_returning_non_tensor():
    with pytest.raises(TypeError, match=r"fn must return a torch.Tensor \(or a tuple, list or dict of them\); called on the inputs it returned a float"):
        vt.check(lambda x: x.detach().sum().item(), _x(3))
    with pytest.raises(TypeError, match=r"returned a tuple without any \(result\[0\]: tensor of shape \(\) and dtype torch.int64, result\[1\]: str\)"):
        vt.check(lambda x: (x.argmax(), "idx"), _x(3))
    with pytest.raises(TypeError, match="floating-point torch.Tensor.*dtype torch.int64"):
        vt.check(lambda x: x.argmax(), _x(3))


def test_fn_returning_non_tensor_only_on_the_copies_is_refused_without_fallback():
    # a tensor on the caller's float32 input, a number on the copies: a TypeError naming where (no
    # fallback to another dtype and no TorchCheckError, since no dtype can make that output checkable)
    def fn(a):
        return a.sum() if a.dtype == torch.float32 and a.requires_grad else 1.0

    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), requires_grad=True)
    with pytest.raises(TypeError, match="on the float64 copies it returned a float"):
        vt.check(fn, x)
    with pytest.raises(TypeError, match="on native-dtype copies it returned a float"):
        vt.check(fn, x, double=False)


def test_fn_not_callable_and_bad_options():
    with pytest.raises(TypeError, match="fn must be callable"):
        vt.check(3, _x(3))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        vt.check(torch.sin, _x(3), rng=0)
    with pytest.raises(ValueError, match="names must be a sequence of 1 strings"):
        vt.check(torch.sin, _x(3), names=["a", "b"])
    with pytest.raises(ValueError, match=r"dLdf has shape \(2,\) but fn's output has shape \(3,\)"):
        vt.check(torch.sin, _x(3), dLdf=np.ones(2))
    with pytest.raises(ValueError, match="dLdf contains NaN"):
        vt.check(torch.sin, _x(3), dLdf=np.array([1.0, np.nan, 1.0]))


def test_errors_leave_caller_tensors_untouched():
    x = _x(3)
    before = x.detach().clone()
    with pytest.raises(TypeError):
        vt.check(lambda a: (a.detach().mul_(2), "a")[1], x)  # writes into its argument, then fails
    assert torch.equal(x, before) and x.grad is None


def test_nan_in_the_backward_is_named():
    class NanBack(F.MulConstant):
        @staticmethod
        def backward(ctx, g):
            out = g * ctx.constant
            out[1] = float("nan")
            return out, None

    with pytest.raises(ValueError, match=r"non-finite value\(s\) .* gradient of input0, first at index \(1,\)"):
        vt.check(NanBack.apply, _x(3), 2.0)
