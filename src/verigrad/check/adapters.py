"""Adapters: normalise the forms in which users pass functions, losses, parameters and models.

* outputs: :class:`_TupleOutput` (``fn`` returning ``(out, cache)``, ``(loss, dx)`` or several outputs);
* losses: :class:`_LossValue` (``loss()`` returning ``(loss, grads)``), :class:`_LossFunction` (a function
  ``(pred, y) -> (loss, dL/dpred)``), :class:`_FirstItemLoss` (``forward`` returning ``(loss, ...)``);
* parameters and gradients: :func:`_params_mapping` (dicts, lists of arrays, objects with ``W1`` /
  ``dW1`` attributes), :func:`_grads_lookup` (``dW``, ``grad_W``, ``W_grad`` spellings),
  :func:`_unwrap_tensors` (``Parameter`` objects with ``.data``/``.grad``);
* models and layers: :class:`_ModelView` / :func:`_as_model` (``params``/``grads`` as dict attributes,
  lists, ``parameters``/``gradients``), :func:`_layer_forward` (with or without ``training=``),
  :func:`_layer_backward`, :func:`_layer_dict`, :func:`_safe_grads`, :func:`_restore_grads`.

Nothing here imports ``verigrad.nn``: models and layers are used through their protocol only.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Callable, Optional

import numpy as np

from verigrad.check.arrays import _array_like, _is_number


class _TupleOutput:
    """Adapt ``fn`` when it returns a tuple (CS231n's ``(out, cache)``, ``(loss, dx)``, or several outputs).

    * ``dLdf`` a tuple/list with one entry per output item (``None`` for items such as a cache): the
      outputs are concatenated, flattened, so that ``L = sum_i sum(out_i * dLdf_i)``;
    * otherwise the first item is the output (``(out, cache)``, ``(loss, grads)``), when it is an array
      or a scalar; a note says so.

    A list of plain numbers is an array, not a tuple of outputs. The decision is taken at the first
    call and kept (a different structure at a later call is an error naming both).
    """

    def __init__(self, fn: Callable[[np.ndarray], Any], dLdf: Any) -> None:
        self.fn = fn
        self.dLdf = dLdf
        self.kind: Optional[str] = None  # "plain", "first" or "multi"
        self.n_items = 0
        self.shapes: list[tuple[int, ...]] = []
        self.note: Optional[str] = None

    @staticmethod
    def _is_tuple(out: Any) -> bool:
        """A tuple or list of outputs (a list of plain numbers is one array)."""
        return isinstance(out, (tuple, list)) and not (isinstance(out, list) and all(_is_number(v) for v in out))

    def _decide(self, out: Any) -> None:
        if not self._is_tuple(out):
            self.kind = "plain"
            return
        k = len(out)
        if k == 0:
            raise TypeError("fn returned an empty tuple; expected an array or a scalar")
        d = self.dLdf
        if isinstance(d, (tuple, list)) and len(d) == k and not _plain_numeric(d, out[0]):
            used = [i for i in range(k) if d[i] is not None]
            if not used:
                raise ValueError(f"dLdf is a tuple of {k} None: give the upstream gradient of at least one of "
                                 f"fn's {k} outputs")
            for i in used:
                if not _array_like(out[i]):
                    raise TypeError(f"fn returned a tuple whose item {i} is a {type(out[i]).__name__}, but dLdf[{i}] "
                                    f"is not None: give dLdf[{i}]=None for items that are not outputs (e.g. a cache)")
                shp = np.shape(out[i])
                gi = np.asarray(d[i])
                if gi.ndim and gi.shape != shp:
                    raise ValueError(f"dLdf[{i}] has shape {gi.shape} but fn(x)[{i}] has shape {shp}; they must match")
            self.kind = "multi"
            self.used = used
            self.shapes = [tuple(np.shape(out[i])) for i in used]
            self.n_items = k
            return
        if not _array_like(out[0]):
            raise TypeError(
                f"fn returned a {type(out).__name__} of {k} items whose first item is a {type(out[0]).__name__}; "
                "expected an array or a scalar: pass lambda x: fn(x)[i] for the output to check, or dLdf as a "
                f"tuple of {k} upstream gradients (None for items that are not outputs)")
        if d is not None and not isinstance(d, (tuple, list)):
            want = np.shape(d)
            got = np.shape(out[0])
            if want != got and int(np.prod(want)) > 1:
                match = [i for i in range(1, k) if _array_like(out[i]) and np.shape(out[i]) == want]
                hint = (f"; item {match[0]} has that shape: pass lambda x: fn(x)[{match[0]}]" if match else "")
                raise ValueError(f"fn returned a tuple of {k} items; its first item, taken as the output, has shape "
                                 f"{got} but dLdf has shape {want}{hint}")
        self.kind = "first"
        self.n_items = k
        self.note = (f"fn returned a {type(out).__name__} of {k} items (like (out, cache) or (loss, grad)): its first "
                     f"item was checked as the output; pass lambda x: fn(x)[0] to make this explicit")

    def __call__(self, x: np.ndarray) -> Any:
        out = self.fn(x)
        if self.kind is None:
            self._decide(out)
        is_tuple = self._is_tuple(out)
        if self.kind == "plain":
            if is_tuple:
                raise TypeError(f"fn returned a {type(out).__name__} at a perturbed point but an array at x")
            return np.asarray(out) if isinstance(out, list) else out
        if not is_tuple or len(out) != self.n_items:
            raise TypeError(f"fn returned {type(out).__name__} at a perturbed point but a tuple of "
                            f"{self.n_items} items at x")
        if self.kind == "first":
            return out[0]
        parts = [np.asarray(out[i]) for i in self.used]
        for i, p, shp in zip(self.used, parts, self.shapes):
            if p.shape != shp:
                raise ValueError(f"fn(x)[{i}] has shape {p.shape} at a perturbed point but {shp} at x")
        return np.concatenate([p.ravel() for p in parts])

    def upstream(self) -> Any:
        """``dLdf`` for the adapted output (flattened and concatenated for several outputs)."""
        if self.kind != "multi":
            return self.dLdf
        parts = []
        for i, shp in zip(self.used, self.shapes):
            g = np.asarray(self.dLdf[i])
            if g.dtype.kind not in "fiu":
                raise TypeError(f"dLdf[{i}] must be a real numeric array or scalar; got dtype {g.dtype}")
            parts.append(np.broadcast_to(g.astype(np.float64), shp).ravel() if g.ndim == 0 else
                         g.astype(np.float64).ravel())
        return np.concatenate(parts)


def _plain_numeric(d: Any, first: Any) -> bool:
    """Whether a tuple/list ``dLdf`` is one numeric array with the shape of the first output item."""
    try:
        arr = np.asarray(d)
    except Exception:  # noqa: BLE001 - ragged: several upstream gradients
        return False
    return arr.dtype.kind in "fiu" and _array_like(first) and arr.shape == np.shape(first)


_GRAD_PATTERNS = ("{}", "d{}", "d_{}", "grad_{}", "grad{}", "{}_grad", "{}grad", "dL_d{}", "dLd{}", "dL/d{}",
                  "g{}", "g_{}", "delta_{}", "nabla_{}")


def _grad_names(name: str) -> list[str]:
    """Names under which the gradient of parameter ``name`` may be stored (``W1``: ``dW1``, ``grad_W1``...)."""
    out = []
    for pat in _GRAD_PATTERNS:
        cand = pat.format(name)
        if cand not in out:
            out.append(cand)
    return out


class _LossValue:
    """Wrap ``loss()`` so that a ``(loss, grads)`` tuple (CS231n's ``model.loss(X, y)``) counts as its loss."""

    def __init__(self, loss: Callable[[], Any]) -> None:
        self.loss = loss
        self.note: Optional[str] = None

    def __call__(self) -> Any:
        v = self.loss()
        if isinstance(v, (tuple, list)) and len(v) >= 1 and _is_number(v[0]):
            if self.note is None:
                self.note = (f"loss() returned a {type(v).__name__} of {len(v)} items (like (loss, grads)): its "
                             "first item was used as the loss")
            return v[0]
        return v


def _params_mapping(params: Any, loss: Callable[[], Any]) -> tuple[dict[str, Any], str, list[str]]:
    """Normalise ``params`` to an ordered dict name -> array; return (dict, form, notes).

    Forms: ``"mapping"``; ``"sequence"`` (a list/tuple of arrays, named ``params[i]``); ``"object"`` (the
    float ndarray attributes of an object, e.g. ``net.W1``; attributes that ``loss()`` replaces by new
    arrays are forward caches, not parameters, and are left out: this costs one call of ``loss()``).
    """
    if isinstance(params, Mapping):
        return dict(params), "mapping", []
    if isinstance(params, np.ndarray):
        return {"param": params}, "single", []
    if isinstance(params, (list, tuple)):
        if not params:
            raise ValueError("params is empty: nothing to check")
        return {f"params[{i}]": p for i, p in enumerate(params)}, "sequence", []
    attrs = getattr(params, "__dict__", None)
    if not isinstance(attrs, dict):
        raise TypeError(
            f"params must be a mapping name -> ndarray, a list of arrays or an object with array attributes; "
            f"got {type(params).__name__}")
    arrays = {k: v for k, v in attrs.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"}
    if not arrays:
        dicts = [k for k, v in attrs.items() if isinstance(v, Mapping) and v
                 and all(isinstance(a, np.ndarray) for a in v.values())]
        hint = f" (it has dicts of arrays: pass one of them, e.g. params=obj.{dicts[0]})" if dicts else ""
        raise ValueError(f"params is a {type(params).__name__} object with no floating-point ndarray attributes"
                         f"{hint}; pass a dict name -> live array instead")
    grad_like = {pat.format(o) for o in arrays for pat in _GRAD_PATTERNS[1:]}
    arrays = {k: v for k, v in arrays.items() if k not in grad_like}
    before = {k: id(v) for k, v in arrays.items()}
    keep = {k: v.copy() for k, v in arrays.items()}
    try:
        loss()
    finally:
        for k, v in arrays.items():
            np.copyto(v, keep[k])
    now = getattr(params, "__dict__", {})
    live = {k: v for k, v in arrays.items() if id(now.get(k)) == before[k]}
    notes = []
    cached = sorted(set(arrays) - set(live))
    if cached:
        notes.append(f"attributes {cached} of the {type(params).__name__} object are recomputed by loss() (forward "
                     "caches), not parameters: not checked")
    return live, "object", notes


def _grads_lookup(grads: Any, names: list[str], form: str, same_object: bool) -> tuple[dict[str, Any], list[str]]:
    """Find the claimed gradient of each parameter in ``grads`` (mapping, sequence or object).

    Returns (name -> gradient, notes). Names are matched exactly first (not when ``grads`` is the
    parameter object itself), then by the usual spellings (``dW1``, ``grad_W1``, ``W1_grad``...). When
    the parameters are an object's attributes, those without a gradient are left out with a note.
    """
    notes: list[str] = []
    if isinstance(grads, (list, tuple)):
        if form != "sequence":
            raise TypeError(
                f"grads is a {type(grads).__name__} of arrays but params is not: give both as lists in the same "
                "order, or both as dicts with the same names")
        if len(grads) != len(names):
            raise ValueError(f"params has {len(names)} arrays but grads has {len(grads)}; they must pair up in order")
        return dict(zip(names, grads)), notes
    if form == "single":
        return {names[0]: grads}, notes
    if form == "sequence":
        raise TypeError(f"params is a list of arrays but grads is a {type(grads).__name__}: give grads as a list "
                        "of arrays in the same order")
    if isinstance(grads, Mapping):
        table: dict[str, Any] = dict(grads)
        where = "grads"
    else:
        attrs = getattr(grads, "__dict__", None)
        if not isinstance(attrs, dict):
            raise TypeError(f"grads must be a mapping name -> ndarray (or a list, or an object with gradient "
                            f"attributes); got {type(grads).__name__}")
        table = {k: v for k, v in attrs.items() if isinstance(v, np.ndarray) or _is_number(v)}
        where = f"the {type(grads).__name__} object"
    found: dict[str, Any] = {}
    used: set[str] = set()
    missing = []
    for nm in names:
        cands = _grad_names(nm)[1:] if same_object else _grad_names(nm)
        hit = next((c for c in cands if c in table and c not in used), None)
        if hit is None:
            missing.append(nm)
        else:
            found[nm] = table[hit]
            used.add(hit)
    optional = form == "object" or not isinstance(grads, Mapping)
    extra = [k for k in table if k not in used] if isinstance(grads, Mapping) else []
    if (missing and not optional) or extra:
        parts = []
        if missing and not optional:
            parts.append(f"grads has no entry for {missing}")
        if extra:
            parts.append(f"grads has entries {extra} that are not in params")
        raise ValueError("params and grads must have the same names: " + "; ".join(parts)
                         + " (the gradient of 'W' may also be named 'dW', 'grad_W' or 'W_grad')")
    if missing:
        if not found:
            raise ValueError(f"no gradient found in {where} for any of the parameters {names} (looked for the same "
                             "names and d<name>, grad_<name>, <name>_grad)")
        notes.append(f"no gradient given for {missing}: not checked")
    return found, notes


def _required_args(fn: Callable) -> list[str]:
    """Names of the positional parameters ``fn`` requires (empty when unknown)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in sig.parameters.values() if p.kind in kinds and p.default is inspect.Parameter.empty]


def _tensor_like(v: Any) -> bool:
    """An object holding its values in ``.data`` (an ndarray) and its gradient in ``.grad``."""
    return not isinstance(v, np.ndarray) and isinstance(getattr(v, "data", None), np.ndarray)


def _unwrap_tensors(params: Any, grads: Any) -> tuple[Any, Any, Optional[str]]:
    """Parameter objects with ``.data``/``.grad`` (a NumPy autograd framework's ``Parameter``): their
    ``.data`` arrays are the live parameters and, when ``grads`` is omitted, ``.grad`` the gradients."""
    if isinstance(params, Mapping):
        items = list(params.items())
    elif isinstance(params, (list, tuple)):
        items = list(enumerate(params))
    else:
        items = []
    if not items or not all(_tensor_like(v) for _, v in items):
        if grads is None:
            raise TypeError("grads is missing: pass the claimed gradients in the form of params (a dict with the "
                            "same names, a list in the same order); it may be omitted only when params holds "
                            "parameter objects with .data and .grad")
        return params, grads, None
    from_grad = grads is None
    if from_grad:
        missing = [k for k, v in items if getattr(v, "grad", None) is None]
        if missing:
            raise ValueError(f"params {missing} have no .grad (None): run the backward pass before checking")
        g = {k: v.grad for k, v in items}
        grads = g if isinstance(params, Mapping) else [g[k] for k, _ in items]
    data = {k: v.data for k, v in items}
    params = data if isinstance(params, Mapping) else [data[k] for k, _ in items]
    return params, grads, "parameter objects: their .data arrays were checked" + (
        " against their .grad" if from_grad else "")


class _LossFunction:
    """A loss given as a function ``fn(pred, y) -> (loss, dL/dpred)`` (CS231n's ``softmax_loss``)."""

    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        self.fn = fn

    def _call(self, pred: Any, y: Any) -> tuple[Any, Any]:
        out = self.fn(pred, y)
        if not (isinstance(out, (tuple, list)) and len(out) >= 2):
            raise TypeError(
                f"loss_fn is a function returning {type(out).__name__}; gradient_check needs dL/dpred too: pass a "
                "function returning (loss, dloss_dpred), like CS231n's softmax_loss(scores, y), or an object with "
                "forward(pred, y) -> loss and backward(pred, y) -> dL/dpred")
        return out[0], out[1]

    def forward(self, pred: Any, y: Any) -> Any:
        return self._call(pred, y)[0]

    def backward(self, pred: Any, y: Any) -> Any:
        return self._call(pred, y)[1]


class _FirstItemLoss:
    """A loss object whose ``forward`` returns ``(loss, ...)``: its first item is the loss."""

    def __init__(self, loss_fn: Any) -> None:
        self.loss_fn = loss_fn

    def forward(self, pred: Any, y: Any) -> Any:
        out = self.loss_fn.forward(pred, y)
        return out[0] if isinstance(out, (tuple, list)) else out

    def backward(self, pred: Any, y: Any) -> Any:
        return self.loss_fn.backward(pred, y)


def _as_loss(loss_fn: Any) -> Any:
    if all(callable(getattr(loss_fn, m, None)) for m in ("forward", "backward")):
        return loss_fn
    if callable(loss_fn):
        return _LossFunction(loss_fn)
    _require(loss_fn, "loss_fn", ("forward", "backward"))
    return loss_fn


class _ModelView:
    """A model whose parameters and gradients are dict attributes, lists, or named differently.

    ``params``/``grads`` may be methods or attributes; ``parameters``/``gradients`` are accepted as
    their names (numpy-ml layers). Lists pair up in order (``params[i]``); gradient dicts may spell
    the names ``dW``, ``grad_W``, ``W_grad``. Everything else is the wrapped model's.
    """

    def __init__(self, model: Any, pget: Callable[[], Any], gget: Callable[[], Any]) -> None:
        self._model = model
        self._pget = pget
        self._gget = gget

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._model, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._model.forward(*args, **kwargs)

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        return self._model.backward(*args, **kwargs)

    def _params(self) -> tuple[dict[str, Any], str]:
        p = self._pget()
        if isinstance(p, Mapping):
            return dict(p), "mapping"
        if isinstance(p, (list, tuple)):
            return {f"params[{i}]": v for i, v in enumerate(p)}, "sequence"
        raise TypeError(f"the model's parameters must be a dict name -> ndarray or a list of arrays; got "
                        f"{type(p).__name__}")

    def params(self) -> dict[str, Any]:
        return self._params()[0]

    def grads(self) -> dict[str, Any]:
        p, form = self._params()
        g = self._gget()
        if isinstance(g, Mapping) and all(k in g for k in p):
            return dict(g)
        found, _ = _grads_lookup(g, list(p), form, same_object=False)
        return found


def _member(model: Any, names: tuple[str, ...]) -> Optional[Callable[[], Any]]:
    for nm in names:
        v = getattr(model, nm, None)
        if callable(v):
            return v
        if isinstance(v, (Mapping, list, tuple)):
            return lambda _v=v: _v
    return None


def _as_model(model: Any) -> Any:
    """The model itself when it follows the protocol with matching dicts, else a :class:`_ModelView`."""
    if not all(callable(getattr(model, m, None)) for m in ("forward", "backward")):
        if callable(getattr(model, "loss", None)) and isinstance(getattr(model, "params", None), Mapping):
            raise TypeError(
                f"model must have methods ['forward', 'backward', 'params', 'grads']; {type(model).__name__} has "
                "loss() and a params dict instead (CS231n style): use loss, grads = model.loss(X, y); "
                "check_params(lambda: model.loss(X, y), model.params, grads)")
        _require(model, "model", ("forward", "backward", "params", "grads"))
    pget = _member(model, ("params", "parameters"))
    gget = _member(model, ("grads", "gradients"))
    if pget is None or gget is None:
        lacks = [nm for nm, g in (("params", pget), ("grads", gget)) if g is None]
        raise TypeError(
            f"model must have methods ['forward', 'backward', 'params', 'grads']; {type(model).__name__} lacks "
            f"{lacks} (params/grads may also be dict attributes, or be named parameters/gradients); for a model "
            "whose arrays are plain attributes (self.W1, self.dW1), use check_params(loss, model, model)")
    if callable(getattr(model, "params", None)) and callable(getattr(model, "grads", None)):
        p = model.params()
        if isinstance(p, Mapping):
            try:
                g = model.grads()
            except Exception:  # noqa: BLE001 - grads may not exist before the first backward: decide later
                g = None
            if isinstance(g, Mapping) and all(k in g for k in p):
                return model
    return _ModelView(model, pget, gget)


def _require(obj: Any, arg: str, members: tuple[str, ...]) -> None:
    missing = [m for m in members if not callable(getattr(obj, m, None))]
    if missing:
        raise TypeError(f"{arg} must have methods {list(members)}; {type(obj).__name__} lacks {missing}")


def _safe_grads(model: Any) -> dict[str, np.ndarray]:
    try:
        g = model.grads()
    except Exception:  # noqa: BLE001 - grads may not exist before the first backward
        return {}
    if not isinstance(g, Mapping):
        return {}
    return {k: v for k, v in g.items() if isinstance(v, np.ndarray)}


def _restore_grads(model: Any, before: dict[str, np.ndarray]) -> None:
    """Copy the pre-check gradient values into the arrays ``model.grads()`` returns now."""
    now = _safe_grads(model)
    for k, old in before.items():
        cur = now.get(k)
        if cur is not None and cur is not old and cur.shape == old.shape and cur.flags.writeable:
            # ``before`` holds the original objects already restored by the guard
            np.copyto(cur, old, casting="unsafe")


def _layer_forward(layer: Any, x: np.ndarray, training: bool) -> Any:
    """``layer.forward(x, training=...)``, or ``layer.forward(x)`` when it takes no ``training`` flag."""
    try:
        return layer.forward(x, training=training)
    except TypeError as exc:
        if "training" not in str(exc):
            raise
        return layer.forward(x)


def _layer_backward(layer: Any, x: np.ndarray, dy: np.ndarray) -> Any:
    try:
        return layer.backward(dy)
    except TypeError:
        return layer.backward(x, dy)


def _layer_dict(layer: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """A layer's ``params``/``grads`` dict attribute (numpy-ml: ``parameters``/``gradients``), else {}."""
    for nm in names:
        v = getattr(layer, nm, None)
        if isinstance(v, Mapping):
            return dict(v)
    return {}
