"""``verigrad.torch.parity``: a verigrad network against the same network in torch.

:func:`parity` copies the weights into an equivalent torch module (:func:`verigrad.torch.to_torch`
when none is given), runs both, and compares outputs, losses and every gradient with torch autograd as
the reference; :class:`ParityReport` holds one :class:`ParityEntry` per compared quantity, judged with
:data:`PARITY_TOLERANCES` by default.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from verigrad.torch.convert import (
    _TORCH_DTYPES,
    _check_network,
    _network_dtype,
    _nn_classes,
    _pair_linear,
    _torch_loss,
    to_torch,
)


#: default (rtol, atol) of :func:`parity` by the dtype of the network.
PARITY_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-7, 1e-12),
    "float32": (1e-4, 1e-7),
    "float16": (1e-2, 1e-3),
}


@dataclass(frozen=True)
class ParityEntry:
    """One compared quantity of :func:`parity`.

    Attributes
    ----------
    name : str
        verigrad name: ``"output"``, ``"loss"``, ``"W_0"``, ``"b_0"``, ..., ``"dL/dX"``.
    torch_name : str
        The torch counterpart, e.g. ``"0.weight.T"`` (a verigrad ``W`` of shape (n_in, n_out) is the
        transpose of ``nn.Linear.weight``).
    shape : tuple of int
    max_abs : float
        ``max |v - t|`` over the entries (``v`` verigrad, ``t`` torch).
    max_rel : float
        ``max |v - t| / max |t|``: the largest difference relative to the size of the torch tensor
        (0 when both are all zeros; inf when only the torch one is).
    passed : bool
        ``max_abs <= atol + rtol * max |t|``.
    """

    name: str
    torch_name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    passed: bool


@dataclass
class ParityReport:
    """Result of :func:`parity`: one :class:`ParityEntry` per compared quantity.

    Attributes
    ----------
    entries : list of ParityEntry
        ``output``, ``loss``, every parameter gradient (``W_0``, ``b_0``, ...) and ``dL/dX``.
    dtype : str
        dtype both sides computed in.
    rtol, atol : float
        Tolerances used.
    torch_module : torch.nn.Module
        The torch network holding the verigrad weights (built, or a copy of the one given).
    torch_loss : callable
        The torch loss used.
    """

    entries: list[ParityEntry]
    dtype: str
    rtol: float
    atol: float
    torch_module: Any = field(repr=False, default=None)
    torch_loss: Any = field(repr=False, default=None)

    @property
    def passed(self) -> bool:
        """True when every entry passed."""
        return all(e.passed for e in self.entries)

    @property
    def failed(self) -> list[ParityEntry]:
        """The entries that did not pass."""
        return [e for e in self.entries if not e.passed]

    @property
    def worst(self) -> ParityEntry:
        """The entry with the largest relative difference."""
        return max(self.entries, key=lambda e: (not e.passed, e.max_rel))

    def __getitem__(self, name: str) -> ParityEntry:
        for e in self.entries:
            if e.name == name or e.torch_name == name:
                return e
        raise KeyError(f"no parity entry named {name!r}; entries are {[e.name for e in self.entries]}")

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for JSON)."""
        return {
            "passed": self.passed,
            "dtype": self.dtype,
            "rtol": self.rtol,
            "atol": self.atol,
            "entries": [
                {"name": e.name, "torch_name": e.torch_name, "shape": list(e.shape),
                 "max_abs": e.max_abs, "max_rel": e.max_rel, "passed": e.passed}
                for e in self.entries
            ],
        }

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else f"FAILED ({', '.join(e.name for e in self.failed)})"
        head = f"parity verigrad vs torch ({self.dtype}, rtol={self.rtol:g}, atol={self.atol:g}): {verdict}"
        rows = [("quantity", "torch", "shape", "max |diff|", "max rel diff", "verdict")]
        for e in self.entries:
            rows.append((e.name, e.torch_name, "x".join(map(str, e.shape)) or "scalar",
                         f"{e.max_abs:.3e}", f"{e.max_rel:.3e}", "ok" if e.passed else "FAIL"))
        widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
        lines = [head]
        for k, r in enumerate(rows):
            lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython plain display
        p.text(str(self))

    def _repr_html_(self) -> str:  # Jupyter
        import html

        verdict = "PASSED" if self.passed else "FAILED"
        colour = "#1a7f37" if self.passed else "#cf222e"
        head = "".join(f"<th>{c}</th>" for c in ("quantity", "torch", "shape", "max |diff|", "max rel diff", "verdict"))
        rows = []
        for e in self.entries:
            c = "#1a7f37" if e.passed else "#cf222e"
            rows.append(
                "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in (
                    e.name, e.torch_name, "x".join(map(str, e.shape)) or "scalar", f"{e.max_abs:.3e}",
                    f"{e.max_rel:.3e}"))
                + f'<td style="color:{c};font-weight:bold">{"ok" if e.passed else "FAIL"}</td></tr>'
            )
        return (f"<div><b>parity verigrad vs torch ({html.escape(self.dtype)}, rtol={self.rtol:g}, "
                f'atol={self.atol:g}): <span style="color:{colour}">{verdict}</span></b>'
                f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _compare(name: str, tname: str, v: np.ndarray, t: np.ndarray, rtol: float, atol: float) -> ParityEntry:
    v = np.asarray(v, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if v.shape != t.shape:
        return ParityEntry(name, tname, tuple(v.shape), math.inf, math.inf, False)
    if v.size == 0:
        return ParityEntry(name, tname, tuple(v.shape), 0.0, 0.0, True)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(v - t)
        same_nonfinite = (v == t) | (np.isnan(v) & np.isnan(t))
        diff = np.where(same_nonfinite, 0.0, diff)
        diff = np.where(np.isnan(diff), np.inf, diff)
    max_abs = float(diff.max())
    finite_t = np.abs(t[np.isfinite(t)])
    scale = float(finite_t.max()) if finite_t.size else 0.0
    if max_abs == 0.0:
        max_rel = 0.0
    elif scale == 0.0:
        max_rel = math.inf
    else:
        max_rel = max_abs / scale
    return ParityEntry(name, tname, tuple(v.shape), max_abs, max_rel, bool(max_abs <= atol + rtol * scale))


def parity(
    numpy_model: Any,
    torch_module: torch.nn.Module | None = None,
    X: Any = None,
    y: Any = None,
    loss: Any = None,
    *,
    torch_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> ParityReport:
    """Run a verigrad network and the same network in torch; compare outputs, losses and gradients.

    torch autograd is the reference. The weights of ``numpy_model`` are copied into ``torch_module``
    (a deep copy of it: the module passed is not modified) or into one built by :func:`to_torch`. Then
    verigrad computes ``pred = model.forward(X)``, ``L = loss.forward(pred, y)`` and its backward, torch
    computes the same with autograd, and every quantity is compared: ``output``, ``loss``, each parameter
    gradient (``W_i`` against ``weight.T`` of the paired ``nn.Linear``, ``b_i`` against ``bias``) and
    ``dL/dX``.

    Parameters
    ----------
    numpy_model : verigrad.nn.NeuralNetwork
        Its ``grads()`` are overwritten by the backward pass this function runs.
    torch_module : torch.nn.Module, optional
        An equivalent torch network. Its ``nn.Linear`` modules are paired, in registration order, with
        the network's ``Dense`` layers. Default: built by :func:`to_torch`.
    X : array_like of shape (n_samples, n_features)
    y : array_like
        Targets in the loss's convention: integer labels of shape (n_samples,) or targets of the output's
        shape.
    loss : verigrad loss
        ``CrossEntropyLoss`` (from logits: ``nn.CrossEntropyLoss``, integer labels or probability
        targets; from probabilities: ``nll_loss(log(p).clamp_min(-100))``, which torch differentiates to
        NaN where a target class has probability exactly 0 while verigrad's gradient stays finite:
        parity then reports that difference), ``MSELoss``
        (``"mean"``: ``nn.MSELoss()``; ``"half"``: ``0.5 * sum / N``; ``"sum"``), ``BCELoss``
        (``nn.BCELoss``), ``BCEWithLogitsLoss`` (``nn.BCEWithLogitsLoss``).
    torch_loss : callable, optional
        ``torch_loss(output, target) -> scalar tensor`` to use instead of the translation of ``loss``.
    rtol, atol : float, optional
        An entry passes when ``max |v - t| <= atol + rtol * max |t|``. Defaults by dtype
        (:data:`PARITY_TOLERANCES`): float64 ``(1e-7, 1e-12)``, float32 ``(1e-4, 1e-7)``.

    Returns
    -------
    ParityReport
        ``.passed``, ``.entries`` (:class:`ParityEntry`: ``max_abs``, ``max_rel``, ``passed``),
        ``report["W_0"]``, ``str(report)`` (a table).

    Raises
    ------
    TypeError
        ``numpy_model`` not a network, ``torch_module`` not a module, a layer or loss without torch
        equivalent.
    ValueError
        Missing ``X``/``y``/``loss``, Dense/Linear layers that do not pair up.

    Examples
    --------
    >>> import numpy as np
    >>> from verigrad.nn import Dense, NeuralNetwork, Tanh, CrossEntropyLoss
    >>> import verigrad.torch as vt
    >>> model = NeuralNetwork([Dense(4, 8, seed=0), Tanh(), Dense(8, 3, seed=1)])
    >>> X = np.random.default_rng(0).standard_normal((16, 4))
    >>> y = np.arange(16) % 3
    >>> report = vt.parity(model, X=X, y=y, loss=CrossEntropyLoss())
    >>> report.passed, report["W_0"].torch_name
    (True, '0.weight.T')
    """
    _check_network(numpy_model)
    if torch_module is not None and not isinstance(torch_module, torch.nn.Module):
        raise TypeError(
            f"torch_module must be a torch.nn.Module or None, got {type(torch_module).__name__}; "
            "call parity(model, X=X, y=y, loss=loss) or parity(model, None, X, y, loss)"
        )
    for arg, val in (("X", X), ("y", y), ("loss", loss)):
        if val is None:
            raise ValueError(f"parity needs {arg}: call parity(model, torch_module=None, X=X, y=y, loss=loss)")
    X = np.asarray(X)
    y = np.asarray(y)
    if X.dtype.kind not in "fiu":
        raise TypeError(f"X must be a real numeric array, got dtype {X.dtype}")

    # verigrad side (builds lazy layers)
    pred = np.array(numpy_model.forward(X, training=True), copy=True)
    L_v = float(loss.forward(pred, y))
    dpred = loss.backward(pred, y)
    dX_v = np.array(numpy_model.backward(dpred), copy=True)
    grads_v = {k: np.array(v, copy=True) for k, v in numpy_model.grads().items()}

    ndt = _network_dtype(numpy_model)
    if str(ndt) not in _TORCH_DTYPES:
        raise TypeError(f"numpy_model has dtype {ndt}; torch parity supports {sorted(_TORCH_DTYPES)}")
    tdt = _TORCH_DTYPES[str(ndt)]
    d_rtol, d_atol = PARITY_TOLERANCES[str(ndt)]
    rtol = d_rtol if rtol is None else float(rtol)
    atol = d_atol if atol is None else float(atol)

    if torch_module is None:
        module = to_torch(numpy_model)
    else:
        module = copy.deepcopy(torch_module).to(dtype=tdt)
    pairs = _pair_linear(numpy_model, module)
    with torch.no_grad():
        for i, _tname, lin in pairs:
            layer = numpy_model.layers[i]
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.params["W"].T)))
            lin.bias.copy_(torch.from_numpy(np.ascontiguousarray(layer.params["b"])))

    if torch_loss is None:
        t_loss, _desc = _torch_loss(loss, y, X.shape[0])
    else:
        if not callable(torch_loss):
            raise TypeError(f"torch_loss must be callable, got {type(torch_loss).__name__}")
        t_loss = torch_loss
    Xt = torch.from_numpy(np.array(X, dtype=ndt, copy=True)).requires_grad_(True)
    if y.dtype.kind in "iu" and y.ndim == 1 and isinstance(loss, _nn_classes()[1].CrossEntropyLoss):
        yt = torch.from_numpy(y.astype(np.int64))
    else:
        yt = torch.from_numpy(np.array(y, dtype=ndt, copy=True))

    module.train()
    params_t = dict(module.named_parameters())
    with torch.enable_grad():
        out = module(Xt)
        L_t = t_loss(out, yt)
        targets = [Xt] + [lin.weight for _, _, lin in pairs] + [lin.bias for _, _, lin in pairs]
        got = torch.autograd.grad(L_t, targets, allow_unused=True)
    del params_t
    k = len(pairs)
    g_X = got[0]
    g_W = got[1:1 + k]
    g_b = got[1 + k:]

    def np_(t: torch.Tensor | None, like: np.ndarray) -> np.ndarray:
        return np.zeros_like(like) if t is None else t.detach().numpy()

    entries = [
        _compare("output", "output", pred, out.detach().numpy(), rtol, atol),
        _compare("loss", "loss", np.asarray(L_v), np.asarray(float(L_t.detach())), rtol, atol),
    ]
    for (i, tname, _lin), gw, gb in zip(pairs, g_W, g_b):
        W_name, b_name = f"W_{i}", f"b_{i}"
        entries.append(_compare(W_name, f"{tname}.weight.T", grads_v[W_name], np_(gw, grads_v[W_name].T).T, rtol, atol))
        entries.append(_compare(b_name, f"{tname}.bias", grads_v[b_name], np_(gb, grads_v[b_name]), rtol, atol))
    entries.append(_compare("dL/dX", "input.grad", dX_v, np_(g_X, dX_v), rtol, atol))
    return ParityReport(entries, str(ndt), rtol, atol, torch_module=module, torch_loss=t_loss)
