"""Float64 copies of float32 parameters for the numerical side.

* :func:`_check_params_upcast` - :func:`check_params`: re-check failing float32 parameters with float64
  copies put into the user's dict or object (validated; the originals put back in ``finally``);
* :func:`_upcast` / :func:`_undo_upcast` - :func:`gradient_check` with ``upcast=True``: float64 copies
  in each ``layer.params`` dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Optional

import numpy as np

from verigrad.check.adapters import _layer_forward, _LossValue
from verigrad.check.arrays import _nudged
from verigrad.check.assembly import _check_live_params
from verigrad.check.engine import to_scalar
from verigrad.check.options import Options
from verigrad.check.report import ModelReport


def _check_params_upcast(container: Any, form: str, params: dict[str, np.ndarray], grads: dict[str, Any],
                         loss_value: _LossValue, opts: Options, notes: list[str],
                         regrad: Optional[Callable[[], Any]] = None) -> Optional[ModelReport]:
    """Re-check failing float32 parameters with float64 copies put into the user's dict or object.

    A float32 loss cannot resolve small gradients with small steps, and large float32 steps cross
    ReLU kinks (CS231n's TwoLayerNet at ``std=1e-4``): the numerical side is then wrong, not the code.
    When the parameters live in a dict (``net.params``) or as attributes that ``loss()`` reads at every
    call, float64 copies are put in their place, validated (each copy must be read: perturbing it
    changes the loss; the loss must not come back in float32), checked, and the float32 originals are
    put back in ``finally``. Returns None when that is not possible (the float32 report stands).
    """
    if form == "mapping" and not isinstance(container, dict):
        return None
    low = [k for k, p in params.items() if p.dtype.itemsize < 8]
    swaps: list[tuple[str, np.ndarray]] = []

    def get(k: str) -> Any:
        return container.get(k) if form == "mapping" else getattr(container, k, None)

    def put(k: str, arr: np.ndarray) -> None:
        if form == "mapping":
            container[k] = arr
        else:
            setattr(container, k, arr)

    try:
        for k in low:
            if get(k) is not params[k]:
                return None
            swaps.append((k, params[k]))
            put(k, params[k].astype(np.float64))
        live = {k: get(k) if k in low else p for k, p in params.items()}
        base, dt = to_scalar(loss_value(), "loss")
        if dt is not None and np.dtype(dt).itemsize < 8:
            return None
        for k in low:
            arr = live[k]
            g = np.abs(np.asarray(grads[k], dtype=np.float64)).ravel()
            i = int(np.argmax(g)) if g.size else 0
            moved = _nudged(arr, i, lambda: to_scalar(loss_value(), "loss")[0])
            if moved == base:
                return None
        report = _check_live_params(live, grads, loss_value, opts, notes, eval64=frozenset(low), regrad=regrad)
        where = "dict" if form == "mapping" else f"{type(container).__name__} object"
        report.notes.append(
            f"the float32 check of {low} failed, and a float32 loss cannot tell why (its rounding hides small "
            f"gradients; float32-sized steps cross kinks): float64 copies were put into the {where} for the "
            "numerical side (the analytic gradients are judged as float32 code) and the originals put back")
        return report
    except Exception:  # noqa: BLE001 - the loss refuses float64 parameters: keep the float32 report
        return None
    finally:
        for k, orig in swaps:
            put(k, orig)


def _upcast(model: Any, params: Mapping[str, np.ndarray], analytic: dict[str, Any], Xe: np.ndarray, y: Any,
            loss_fn: Any, training: bool) -> tuple[Mapping[str, np.ndarray], list, Optional[str]]:
    """Temporarily replace float32/float16 arrays in each ``layer.params`` dict by float64 copies.

    Used only with ``upcast=True``. It is validated: ``model.params()`` must then return the copies, and
    perturbing each copy at its largest analytic entry must change the loss (a layer that keeps its own
    references to the old arrays would otherwise look like a zero gradient). On any doubt the original
    arrays are put back and a note says why. Returns (params to check, swaps to undo, note).
    """
    layers = getattr(model, "layers", None)
    if not isinstance(layers, (list, tuple)):
        return params, [], "upcast=True needs model.layers with params dicts; not upcast"
    swaps: list[tuple[dict, str, np.ndarray]] = []
    for layer in layers:
        lp = getattr(layer, "params", None)
        if isinstance(lp, dict):
            for k, v in list(lp.items()):
                if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.dtype.itemsize < 8:
                    lp[k] = v.astype(np.float64)
                    swaps.append((lp, k, v))
    if not swaps:
        return params, [], "upcast=True: no parameter below float64; nothing to upcast"
    new = model.params()
    by_id = {id(v): nm for nm, v in new.items()} if isinstance(new, Mapping) else {}
    names = [by_id.get(id(lp[k])) for lp, k, _ in swaps]
    ok = None not in names and isinstance(new, Mapping) and set(new) == set(params)
    if ok:
        def loss() -> float:
            return float(to_scalar(loss_fn.forward(_layer_forward(model, Xe.copy(), training), y), "loss")[0].real)

        l0 = loss()
        for (lp, k, _), nm in zip(swaps, names):
            g = np.abs(np.asarray(analytic[nm][0], dtype=np.float64))
            if not g.size or g.max() == 0:
                continue
            i = int(np.argmax(g))
            arr = lp[k]
            if _nudged(arr, i, loss) == l0:
                ok = False
                break
    if not ok:
        _undo_upcast(swaps)
        return params, [], "upcast=True: the model does not read the upcast layer.params arrays; not upcast"
    return new, swaps, "parameters temporarily upcast to float64 for the numerical side (upcast=True)"


def _undo_upcast(swaps: list[tuple[dict, str, np.ndarray]]) -> None:
    """Put the original parameter arrays back into their ``layer.params`` dicts."""
    for lp, k, v in swaps:
        lp[k] = v

