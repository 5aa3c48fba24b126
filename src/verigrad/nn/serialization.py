"""Save a :class:`~verigrad.nn.network.NeuralNetwork` to one ``.npz`` file and load it back.

The file holds (written with ``np.savez``, read with ``allow_pickle=False``, nothing is pickled):

* ``__verigrad__``: a JSON string ``{"format": "verigrad-model", "version": 1, "network": {...},
  "layers": [{"class": "Dense", "config": {...}, "params": {"W": [5, 7], ...}}, ...]}``
  (layer class names and constructor arguments, plus each parameter's shape);
* ``layer<i>/<key>``: the weights, stored exactly (loading reproduces outputs bit for bit).

Only the built-in layers (:class:`~verigrad.nn.layers.Dense` and the activations) can be saved; a
network holding a user's own layer class raises ``TypeError``. A corrupt, truncated, non-verigrad
or inconsistent file raises ``ValueError`` saying what is wrong.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import numpy as np

from .activations import ACTIVATIONS
from .layers import Dense
from .network import NeuralNetwork

__all__ = ["save_model", "load_model", "LAYER_CLASSES", "FORMAT", "VERSION"]

FORMAT = "verigrad-model"
VERSION = 1
_SPEC_KEY = "__verigrad__"

#: class name -> class of the layers that can be saved.
LAYER_CLASSES: dict[str, type] = {"Dense": Dense, **{cls.__name__: cls for cls in ACTIVATIONS.values()}}


def _weight_key(i: int, key: str) -> str:
    return f"layer{i}/{key}"


def save_model(model: NeuralNetwork, path: str | os.PathLike) -> None:
    """Write ``model`` (architecture + weights) to ``path`` as one ``.npz`` file.

    The file is written at exactly ``path`` (no ``.npz`` suffix is appended).

    Parameters
    ----------
    model : NeuralNetwork
    path : str or os.PathLike

    Raises
    ------
    TypeError
        ``model`` is not a NeuralNetwork, or holds a layer class that cannot be saved.
    """
    if not isinstance(model, NeuralNetwork):
        raise TypeError(f"save_model: model must be a NeuralNetwork, got {type(model).__name__}")
    specs = []
    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(model.layers):
        cls_name = type(layer).__name__
        if LAYER_CLASSES.get(cls_name) is not type(layer):
            raise TypeError(
                f"save_model: layer {i} ({cls_name}) cannot be saved: only the built-in layers "
                f"({', '.join(LAYER_CLASSES)}) can be written to a file; save its parameters yourself, "
                "e.g. np.savez(path, **model.params())"
            )
        shapes = {}
        for key, value in layer.params.items():
            arrays[_weight_key(i, key)] = np.ascontiguousarray(value)
            shapes[key] = list(value.shape)
        specs.append({"class": cls_name, "config": layer.get_config(), "params": shapes})
    spec = {
        "format": FORMAT,
        "version": VERSION,
        "network": {"allow_nonfinite": model.allow_nonfinite},
        "layers": specs,
    }
    arrays[_SPEC_KEY] = np.array(json.dumps(spec))
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **arrays)


def load_model(path: str | os.PathLike) -> NeuralNetwork:
    """Read a network written by :func:`save_model`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    NeuralNetwork
        Same layers and weights (bit for bit), so outputs are identical.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not a ``.npz`` file, truncated/corrupt, not a verigrad model, unsupported version, or
        specification and weights disagree.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            files = set(data.files)
            if _SPEC_KEY not in files:
                raise ValueError(
                    f"load_model: {path!r} is a .npz file but not a verigrad model (no {_SPEC_KEY!r} entry; "
                    f"it holds {sorted(files)[:5]})"
                )
            spec_arr = data[_SPEC_KEY]
            arrays = {k: data[k] for k in files if k != _SPEC_KEY}
    except ValueError as exc:
        if str(exc).startswith("load_model:"):
            raise
        # np.load falls back to unpickling non-zip files, which allow_pickle=False refuses
        raise ValueError(
            f"load_model: {path!r} is not a readable .npz file (corrupt, truncated or another format)"
        ) from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ValueError(
            f"load_model: {path!r} is not a readable .npz file (corrupt or truncated?): {type(exc).__name__}: {exc}"
        ) from None
    if spec_arr.shape != () or spec_arr.dtype.kind != "U":
        raise ValueError(f"load_model: {path!r}: the {_SPEC_KEY!r} entry is not a JSON string")
    try:
        spec = json.loads(str(spec_arr))
    except json.JSONDecodeError as exc:
        raise ValueError(f"load_model: {path!r}: the model specification is not valid JSON ({exc})") from None
    return _build(spec, arrays, path)


def _build(spec: Any, arrays: dict[str, np.ndarray], path: str) -> NeuralNetwork:
    where = f"load_model: {path!r}"
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise ValueError(f"{where} is not a verigrad model file (format {spec.get('format') if isinstance(spec, dict) else None!r})")
    if spec.get("version") != VERSION:
        raise ValueError(f"{where} has format version {spec.get('version')!r}; this verigrad reads version {VERSION}")
    layer_specs = spec.get("layers")
    if not isinstance(layer_specs, list):
        raise ValueError(f"{where}: the specification has no list of layers")
    layers = []
    used: set[str] = set()
    for i, ls in enumerate(layer_specs):
        if not isinstance(ls, dict) or not isinstance(ls.get("config"), dict) or not isinstance(ls.get("params"), dict):
            raise ValueError(f"{where}: layer {i} specification is malformed: {ls!r}")
        cls = LAYER_CLASSES.get(ls.get("class"))
        if cls is None:
            raise ValueError(
                f"{where}: layer {i} has unknown class {ls.get('class')!r}; known: {', '.join(LAYER_CLASSES)}"
            )
        config = dict(ls["config"])
        try:
            if cls is Dense:
                layer = Dense(**config, seed=0)  # weights are overwritten below
            else:
                layer = cls(**config)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: layer {i} ({cls.__name__}) has an invalid configuration {config!r}: {exc}") from None
        expected_keys = set(layer.params)
        if set(ls["params"]) != expected_keys:
            raise ValueError(
                f"{where}: layer {i} ({cls.__name__}) lists parameters {sorted(ls['params'])}, "
                f"expected {sorted(expected_keys)}"
            )
        for key, shape in ls["params"].items():
            wkey = _weight_key(i, key)
            if wkey not in arrays:
                raise ValueError(f"{where}: weights {wkey!r} of layer {i} ({cls.__name__}) are missing")
            w = arrays[wkey]
            target = layer.params[key]
            if list(w.shape) != list(shape) or w.shape != target.shape:
                raise ValueError(
                    f"{where}: weights {wkey!r} have shape {w.shape}, the specification says {tuple(shape)} "
                    f"and layer {i} ({layer!r}) needs {target.shape}"
                )
            if w.dtype != target.dtype:
                raise ValueError(f"{where}: weights {wkey!r} have dtype {w.dtype}, layer {i} needs {target.dtype}")
            layer.params[key] = np.array(w, copy=True)
            layer.grads[key] = np.zeros_like(layer.params[key])
            used.add(wkey)
        layers.append(layer)
    extra = sorted(set(arrays) - used)
    if extra:
        raise ValueError(f"{where}: the file holds weights that no layer uses: {', '.join(extra[:5])}")
    net_cfg = spec.get("network", {})
    if not isinstance(net_cfg, dict):
        raise ValueError(f"{where}: the network specification is malformed: {net_cfg!r}")
    return NeuralNetwork(layers, allow_nonfinite=bool(net_cfg.get("allow_nonfinite", False)))
