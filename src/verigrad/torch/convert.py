"""``verigrad.torch.to_torch``: a verigrad ``NeuralNetwork`` as an equivalent ``torch.nn.Sequential``.

Also the pieces :func:`verigrad.torch.parity` needs: the torch counterpart of each activation
(:func:`_torch_activation`) and loss (:func:`_torch_loss`), and the pairing of verigrad ``Dense`` layers
with ``nn.Linear`` modules (:func:`_pair_linear`). ``verigrad.nn`` is imported lazily (:func:`_nn_classes`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _nn_classes():  # noqa: ANN202
    from verigrad.nn import activations as act
    from verigrad.nn import losses as vl
    from verigrad.nn.layers import Dense

    return act, vl, Dense


def _torch_activation(a: Any, where: str) -> torch.nn.Module:
    act, _, _ = _nn_classes()
    if isinstance(a, act.LeakyReLU):
        return torch.nn.LeakyReLU(negative_slope=a.alpha)
    table = {
        act.Identity: torch.nn.Identity,
        act.ReLU: torch.nn.ReLU,
        act.Tanh: torch.nn.Tanh,
        act.Sigmoid: torch.nn.Sigmoid,
    }
    for cls, tcls in table.items():
        if type(a) is cls:
            return tcls()
    if isinstance(a, act.Softmax):
        return torch.nn.Softmax(dim=-1)
    raise TypeError(
        f"{where} ({type(a).__name__}) has no torch equivalent known to verigrad.torch.to_torch; "
        "build the torch module yourself and pass it as torch_module="
    )


def _check_network(model: Any) -> None:
    if not hasattr(model, "layers") or not callable(getattr(model, "params", None)):
        raise TypeError(
            "numpy_model must be a verigrad NeuralNetwork (with .layers and .params()), got "
            f"{type(model).__name__}"
        )


def _network_dtype(model: Any) -> np.dtype:
    dts = {np.asarray(p).dtype for p in model.params().values()}
    if not dts:
        return np.dtype(np.float64)
    if len(dts) > 1:
        raise TypeError(f"numpy_model mixes parameter dtypes {sorted(map(str, dts))}; parity needs one dtype")
    return dts.pop()


_TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16}


def to_torch(numpy_model: Any) -> torch.nn.Sequential:
    """Build the ``torch.nn.Sequential`` equivalent of a verigrad ``NeuralNetwork``, weights copied.

    ``Dense`` becomes ``nn.Linear`` with ``weight = W.T`` (``W`` has shape (n_in, n_out)) and
    ``bias = b`` (followed by its fused activation, if any); ``ReLU``, ``Tanh``, ``Sigmoid``,
    ``Identity``, ``LeakyReLU(alpha)`` and ``Softmax`` become ``nn.ReLU``, ``nn.Tanh``, ``nn.Sigmoid``,
    ``nn.Identity``, ``nn.LeakyReLU(alpha)`` and ``nn.Softmax(dim=-1)``. The module has the network's
    dtype. Lazy ``Dense`` layers must be built (run one forward first).

    Parameters
    ----------
    numpy_model : verigrad.nn.NeuralNetwork

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    TypeError
        A layer without torch equivalent (the message names its index and type).
    ValueError
        An unbuilt lazy ``Dense`` layer.
    """
    _check_network(numpy_model)
    act, _, Dense = _nn_classes()
    dtype = _TORCH_DTYPES.get(str(_network_dtype(numpy_model)))
    if dtype is None:
        raise TypeError(f"numpy_model has dtype {_network_dtype(numpy_model)}; torch parity supports {sorted(_TORCH_DTYPES)}")
    mods: list[torch.nn.Module] = []
    for i, layer in enumerate(numpy_model.layers):
        where = f"layer {i}"
        if isinstance(layer, Dense):
            if "W" not in layer.params:
                raise ValueError(f"{where} (Dense) is not built yet (lazy n_in): run numpy_model.forward(X) first")
            W, b = layer.params["W"], layer.params["b"]
            lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
            mods.append(lin)
            if layer.activation is not None and not isinstance(layer.activation, act.Identity):
                mods.append(_torch_activation(layer.activation, f"{where}'s fused activation"))
        elif isinstance(layer, act.Activation):
            mods.append(_torch_activation(layer, where))
        else:
            raise TypeError(
                f"{where} ({type(layer).__name__}) has no torch equivalent known to verigrad.torch.to_torch; "
                "build the torch module yourself and pass it as torch_module="
            )
    return torch.nn.Sequential(*mods)


def _pair_linear(numpy_model: Any, module: torch.nn.Module) -> list[tuple[int, str, torch.nn.Linear]]:
    """Pair the network's Dense layers, in order, with the module's nn.Linear submodules, in order."""
    _, _, Dense = _nn_classes()
    dense = [(i, layer) for i, layer in enumerate(numpy_model.layers) if layer.params]
    for i, layer in dense:
        if not isinstance(layer, Dense):
            raise TypeError(
                f"layer {i} ({type(layer).__name__}) has parameters {sorted(layer.params)} but is not a Dense "
                "layer: parity only maps Dense layers to nn.Linear"
            )
    linears = [(n, m) for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)]
    if len(linears) != len(dense):
        raise ValueError(
            f"numpy_model has {len(dense)} Dense layers but torch_module has {len(linears)} nn.Linear "
            f"modules ({[n for n, _ in linears]}); they are paired in order and must match"
        )
    pairs = []
    for (i, layer), (tname, lin) in zip(dense, linears):
        W = layer.params["W"]
        if tuple(lin.weight.shape) != (W.shape[1], W.shape[0]) or lin.bias is None:
            raise ValueError(
                f"layer {i} has W of shape {W.shape} but torch module {tname!r} is {lin} "
                f"(expected nn.Linear({W.shape[0]}, {W.shape[1]}) with bias)"
            )
        pairs.append((i, tname, lin))
    return pairs


def _torch_loss(loss: Any, y: np.ndarray, n: int) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], str]:
    """The torch loss with verigrad's conventions, and a description."""
    _, vl, _ = _nn_classes()
    F = torch.nn.functional
    if isinstance(loss, vl.CrossEntropyLoss):
        if loss.from_logits:
            return torch.nn.CrossEntropyLoss(), "nn.CrossEntropyLoss()"
        if y.ndim == 1:
            return (lambda p, t: F.nll_loss(torch.log(p).clamp_min(-100.0), t)), "nll_loss(log(p))"
        return (lambda p, t: -(t * torch.log(p).clamp_min(-100.0)).sum() / p.shape[0]), "-sum(y log p)/N"
    if isinstance(loss, vl.MSELoss):
        if loss.reduction == "mean":
            return torch.nn.MSELoss(), "nn.MSELoss()"
        if loss.reduction == "sum":
            return torch.nn.MSELoss(reduction="sum"), "nn.MSELoss(reduction='sum')"
        return (lambda p, t: 0.5 * F.mse_loss(p, t, reduction="sum") / p.shape[0]), "0.5*MSE sum/N"
    if isinstance(loss, vl.BCEWithLogitsLoss):
        return torch.nn.BCEWithLogitsLoss(), "nn.BCEWithLogitsLoss()"
    if isinstance(loss, vl.BCELoss):
        return torch.nn.BCELoss(), "nn.BCELoss()"
    raise TypeError(
        f"loss {type(loss).__name__} has no torch equivalent known to verigrad.torch.parity "
        "(CrossEntropyLoss, MSELoss, BCELoss, BCEWithLogitsLoss); pass torch_loss= yourself"
    )
