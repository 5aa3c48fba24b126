"""``verigrad explain``: seed 003's single sigmoid neuron, step by step, then vanishing/exploding.

Part 1 computes, with verigrad's own layers (``NeuralNetwork([Dense(2, 1), Sigmoid()])`` and
``BCELoss``), the forward values ``z``, ``a``, ``L`` and the backward values ``dL/da``,
``dL/dz``, ``dL/dW``, ``dL/db``, each printed with the chain-rule product that gives it. When
PyTorch is installed the same numbers from autograd are printed beside them (seed 003 uses
``torch.autograd.grad``).

Part 2 backpropagates through a deep sigmoid network and prints ``||dL/dW||`` layer by
layer: with Xavier weights the norm shrinks towards the input (vanishing gradient); with
large weights it grows (exploding gradient).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from verigrad.cli._common import NO_MATPLOTLIB, emit, load_plots, positive_float, positive_int, print_table, save

# seed 003's neuron
X_SEED = np.array([[2.0, 1.0]])
W_SEED = np.array([[0.5], [-1.0]])  # verigrad's Dense stores W as (n_in, n_out); seed 003 has W = [[0.5, -1.0]]
B_SEED = np.array([0.0])
Y_SEED = np.array([[1.0]])


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register the ``explain`` subcommand."""
    p = sub.add_parser(
        "explain",
        help="seed 003's sigmoid neuron step by step (chain rule), then vanishing/exploding gradients",
        description="One sigmoid neuron (x=[2,1], W=[0.5,-1], b=0, target 1, BCE loss): every forward value "
        "and every gradient with the chain-rule product that gives it, computed by verigrad's layers and, "
        "when PyTorch is installed, by autograd beside them. Then a deep sigmoid network shows the gradient "
        "norm shrinking layer by layer (vanishing) and growing with large weights (exploding).",
    )
    p.add_argument("--depth", type=positive_int, default=8, help="Dense+Sigmoid layers of the deep network (default 8)")
    p.add_argument("--width", type=positive_int, default=32, help="width of the deep network (default 32)")
    p.add_argument("--large-scale", type=positive_float, default=32.0,
                   help="factor applied to the Xavier weights for the exploding case (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the deep network and its data (default 0)")
    p.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch autograd")
    p.add_argument("--plot", metavar="DIR", default=None, help="write the per-layer gradient-norm figure into DIR")
    p.set_defaults(command="explain")
    return p


def neuron_values() -> dict[str, np.ndarray]:
    """Seed 003's neuron through verigrad's layers.

    Returns
    -------
    dict of str to ndarray
        ``z, a, loss`` (forward) and ``dL_da, dL_dz, dL_dW, dL_db`` (backward, read from
        ``model.output_grads`` and ``model.grads()``), plus ``da_dz = a (1 - a)``.
    """
    from verigrad import nn

    dense = nn.Dense(2, 1, seed=0)
    dense.params["W"][...] = W_SEED
    dense.params["b"][...] = B_SEED
    model = nn.NeuralNetwork([dense, nn.Sigmoid()])
    loss_fn = nn.BCELoss()
    a = model.forward(X_SEED)
    loss = float(loss_fn.forward(a, Y_SEED))
    dL_da = loss_fn.backward(a, Y_SEED)
    model.backward(dL_da)
    outputs = list(model.outputs)
    output_grads = list(model.output_grads)
    grads = model.grads()
    z = np.asarray(outputs[0], dtype=float)
    return {
        "z": z,
        "a": np.asarray(outputs[1], dtype=float),
        "loss": np.asarray(loss),
        "dL_da": np.asarray(output_grads[1], dtype=float),
        "dL_dz": np.asarray(output_grads[0], dtype=float),
        "da_dz": np.asarray(a * (1.0 - a), dtype=float),
        "dL_dW": np.asarray(grads["W_0"], dtype=float).reshape(-1),
        "dL_db": np.asarray(grads["b_0"], dtype=float).reshape(-1),
    }


def torch_values() -> dict[str, np.ndarray] | None:
    """The same numbers from PyTorch autograd exactly as seed 003 computes them (None without torch)."""
    try:
        import torch
    except ImportError:
        return None
    x = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    y_true = torch.tensor([[1.0]], dtype=torch.float64)
    W = torch.tensor([[0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    z = x @ W.T + b
    a = torch.sigmoid(z)
    loss = torch.nn.BCELoss()(a, y_true)
    dL_dz, dL_da = torch.autograd.grad(loss, (z, a), retain_graph=True)
    loss.backward()
    return {
        "z": z.detach().numpy(),
        "a": a.detach().numpy(),
        "loss": np.asarray(loss.item()),
        "dL_da": dL_da.numpy(),
        "dL_dz": dL_dz.numpy(),
        "dL_dW": W.grad.numpy().reshape(-1),
        "dL_db": b.grad.numpy().reshape(-1),
    }


def _f(v: Any) -> str:
    arr = np.asarray(v, dtype=float).reshape(-1)
    if arr.size == 1:
        return f"{arr[0]:.4f}"
    return "[" + ", ".join(f"{x:.4f}" for x in arr) + "]"


def explain_neuron(use_torch: bool = True) -> dict[str, np.ndarray]:
    """Print part 1 (the single neuron) and return verigrad's values."""
    v = neuron_values()
    t = torch_values() if use_torch else None
    x1, x2 = X_SEED[0]
    w1, w2 = W_SEED[:, 0]
    b = B_SEED[0]
    y = Y_SEED[0, 0]
    a = float(v["a"].reshape(-1)[0])
    emit("Seed 003: one sigmoid neuron, forward and backward")
    emit(f"  x = [{x1:g}, {x2:g}]   W = [{w1:g}, {w2:g}]   b = {b:g}   target y = {y:g}   "
         "loss = binary cross-entropy (BCE)")
    emit("  values from verigrad: NeuralNetwork([Dense(2, 1), Sigmoid()]) + BCELoss, "
         "read from model.outputs / model.output_grads / model.grads()")
    emit("")
    rows = [
        ("z", "x . W + b", f"{x1:g}*{w1:g} + {x2:g}*({w2:g}) + {b:g}", v["z"]),
        ("a", "sigmoid(z) = 1 / (1 + exp(-z))", f"1 / (1 + exp(-({_f(v['z'])})))", v["a"]),
        ("L", "-[y log a + (1-y) log(1-a)]", f"-[{y:g} * log({a:.4f}) + {1 - y:g} * log({1 - a:.4f})]", v["loss"]),
        ("dL/da", "-y/a + (1-y)/(1-a)", f"-{y:g}/{a:.4f} + {1 - y:g}/{1 - a:.4f}", v["dL_da"]),
        ("dL/dz", "dL/da * da/dz,  da/dz = a(1-a)", f"({_f(v['dL_da'])}) * ({_f(v['da_dz'])})", v["dL_dz"]),
        ("dL/dW", "dL/dz * dz/dW = dL/dz * x", f"({_f(v['dL_dz'])}) * [{x1:g}, {x2:g}]", v["dL_dW"]),
        ("dL/db", "dL/dz * dz/db = dL/dz * 1", f"({_f(v['dL_dz'])}) * 1", v["dL_db"]),
    ]
    keys = ["z", "a", "loss", "dL_da", "dL_dz", "dL_dW", "dL_db"]
    w_formula = max(len(r[1]) for r in rows)
    w_numbers = max(len(r[2]) for r in rows)
    for i, (name, formula, numbers, value) in enumerate(rows):
        if i == 0:
            emit("Forward")
        if i == 3:
            emit("Backward (chain rule: from the loss back to the parameters)")
        emit(f"  {name:<5} = {formula:<{w_formula}}  = {numbers:<{w_numbers}}  = {_f(value)}")
    if t is not None:
        emit("")
        table_rows = [[name, _f(v[key]), _f(t[key]),
                       f"{float(np.max(np.abs(np.asarray(v[key], float) - np.asarray(t[key], float)))):.1e}"]
                      for (name, *_), key in zip(rows, keys)]
        print_table(["quantity", "verigrad", "torch autograd", "max |difference|"], table_rows,
                    title="verigrad's layers vs PyTorch autograd (seed 003's code)")
    product_ok = np.allclose(v["dL_dz"], v["dL_da"] * v["da_dz"], rtol=1e-12, atol=1e-15) and np.allclose(
        v["dL_dW"], v["dL_dz"].reshape(-1)[0] * X_SEED[0], rtol=1e-12, atol=1e-15
    )
    emit("")
    emit("  chain-rule products recomputed from the printed factors: "
         + ("they equal verigrad's backward values." if product_ok else "MISMATCH with verigrad's backward values!"))
    if t is not None:
        agree = all(np.allclose(v[k], t[k], rtol=1e-10, atol=1e-12) for k in keys)
        emit("  PyTorch autograd: " + ("the same numbers (to 1e-10)." if agree else "DIFFERENT numbers!"))
    elif use_torch:
        emit("  (PyTorch is not installed: autograd column skipped.)")
    emit("  Note: dL/dz = a - y. BCE after a sigmoid simplifies to the prediction error, which is why")
    emit("  verigrad fuses them (BCEWithLogitsLoss) for stability at large |z|.")
    return v


def deep_sigmoid_norms(depth: int, width: int, scale: float, seed: int, n_samples: int = 64) -> np.ndarray:
    """Per-layer ``||dL/dW_l||_2`` of a deep sigmoid MLP after one backward pass.

    The network is ``depth`` blocks ``Dense(width, width) - Sigmoid`` with Xavier weights
    multiplied by ``scale``; the data ``X`` of shape ``(n_samples, width)`` is standard normal
    and the upstream gradient is ``dL/dout = G / n_samples`` with ``G`` standard normal (as
    for ``L = sum(G * out) / n``).

    Returns
    -------
    ndarray of shape (depth,)
        Layer 1 (input side) first.
    """
    from verigrad import nn

    rng = np.random.default_rng(seed)
    layers: list[Any] = []
    for _ in range(depth):
        dense = nn.Dense(width, width, seed=int(rng.integers(0, 2**31 - 1)))
        dense.params["W"][...] *= scale
        layers += [dense, nn.Sigmoid()]
    model = nn.NeuralNetwork(layers)
    X = rng.standard_normal((n_samples, width))
    out = model.forward(X)
    model.backward(rng.standard_normal(out.shape) / n_samples)
    grads = model.grads()
    return np.array([float(np.linalg.norm(grads[f"W_{2 * i}"])) for i in range(depth)])


def _verdict(norms: np.ndarray, yes: str, no: str) -> str:
    """``first/last`` norm ratio in words; ``yes`` for vanishing (< 1) or exploding (> 1) as asked."""
    first, last = float(norms[0]), float(norms[-1])
    if last == 0.0 or first == 0.0:
        return "a gradient norm is exactly 0 (saturated sigmoids: sigmoid'(z) underflows to 0) -> vanishing gradient"
    ratio = first / last
    happened = ratio < 1.0 if "vanish" in yes else ratio > 1.0
    return f"the first layer gets {ratio:.2e} times the last layer's gradient norm -> {yes if happened else no}"


def explain_depth(depth: int, width: int, large_scale: float, seed: int) -> dict[str, np.ndarray]:
    """Print part 2 (vanishing and exploding gradients) and return the per-layer norms."""
    small = deep_sigmoid_norms(depth, width, 1.0, seed)
    large = deep_sigmoid_norms(depth, width, large_scale, seed)
    emit("")
    emit(f"Deep sigmoid network: {depth} x (Dense({width}, {width}) + Sigmoid), one backward pass")
    emit("  sigmoid'(z) = a(1-a) <= 0.25, so every layer multiplies the gradient by about ||W|| * 0.25 or less")
    rows = [[f"layer {i + 1}", float(s), float(g)] for i, (s, g) in enumerate(zip(small, large))]
    print_table(["layer (input side first)", "||dL/dW|| Xavier weights", f"||dL/dW|| weights x {large_scale:g}"],
                rows, title="Gradient norm per layer")
    emit(f"  Xavier weights: {_verdict(small, 'vanishing gradient', 'no vanishing here')}")
    emit(f"  weights x {large_scale:g}: {_verdict(large, 'exploding gradient', 'no explosion here')}")
    return {"small": small, "large": large}


def run(args: argparse.Namespace) -> int:
    """Run ``verigrad explain``."""
    explain_neuron(use_torch=not args.no_torch)
    norms = explain_depth(args.depth, args.width, args.large_scale, args.seed)
    if args.plot:
        plots = load_plots()
        if plots is None:
            emit(NO_MATPLOTLIB)
        else:
            fig = plots.plot_layer_norms(
                {"Xavier weights (vanishing)": norms["small"], f"weights x {args.large_scale:g} (exploding)": norms["large"]},
                title=f"Deep sigmoid network ({args.depth} layers): gradient norm by layer",
            )
            path = save(plots, fig, args.plot, "layer_grad_norms.png")
            emit(f"\nfigure written: {path}")
    sys.stdout.flush()
    return 0
