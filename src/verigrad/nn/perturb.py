"""Losses under many single-entry parameter perturbations, computed fast.

This is the fast path behind :meth:`verigrad.nn.NeuralNetwork.perturbed_losses`, the hook that
:func:`verigrad.check.gradient_check` uses for a full finite-difference check (see
``docs/architecture.md``). For a parameter ``P = params()[name]``, entry ``[i, j]`` of the result is

    L_ij = loss_fn.forward(network.forward(X), y)   with  P.flat[flat_index[i]] = old + steps[i, j]

(the new value rounded to ``P.dtype`` exactly as an in-place write would round it), everything else
unchanged. Parameters and layer caches are never modified.

How it is fast
--------------
A naive check runs one full forward per perturbation: ``O(n_params * n_samples * n_params)``. Here the
forward is run once (with the layers' pure functions, never ``layer.forward``, so the caches that a
later ``backward()`` needs stay intact) and only what one entry changes is recomputed:

* perturbing ``W_l[i, j]`` by ``d`` (``d = new - old``) changes only column ``j`` of layer ``l``'s
  pre-activation: ``z'[:, j] = z[:, j] + d * a_{l-1}[:, i]``; perturbing ``b_l[j]``:
  ``z'[:, j] = z[:, j] + d``;
* elementwise activations (identity, sigmoid, tanh, relu, leaky relu, fused or as layers) keep the
  change in that one column: ``a'[:, j] = act(z'[:, j])``;
* the next ``Dense`` turns the one-column change ``delta = a'[:, j] - a[:, j]`` into a rank-1 update
  ``z_next' = z_next + delta[:, None] * W_next[j, :]``;
* from then on the ``K`` perturbed copies are propagated densely as a stack of shape
  ``(K, n_samples, width)`` (one matrix product per layer for the whole stack; softmax over the last
  axis), and the loss is evaluated with ``loss_fn.forward_batch(preds, y) -> (K,)``.

The cost per perturbation is ``O(n_samples * width of the layers after the perturbed one)`` instead
of a full forward. The base forward is memoised between calls (the checker calls once per parameter
and chunk) and re-validated on every call against the exact parameter values and ``X``. For
CE(tanh(X W1 + b1) W2 + b2) with 1e5 parameters and batch 16 the whole full check takes about 0.2 s,
against ~30 s for the naive loop and ~65 s for ``torch.autograd.gradcheck`` (``benchmarks/gradcheck.py``).

Fallback
--------
A network whose ``forward`` is not exactly :meth:`NeuralNetwork.forward`, layers that are not exactly
the built-in :class:`~verigrad.nn.layers.Dense` or the built-in activations (a user's own layer, or a
subclass that may override ``forward``/``apply``), a loss without its own ``forward_batch``, or
parameters shared between layers use an exact generic loop instead:
perturb in place, ``network.forward(X)``, ``loss_fn.forward``, restore (bit-identically, in
``try/finally``), then one more ``network.forward(X)`` to restore the layer caches.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .activations import Activation, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .layers import Dense
from .losses import Loss
from .network import NeuralNetwork

__all__ = ["perturbed_losses", "perturbed_losses_generic", "fast_path_available"]

#: Activation classes whose ``apply`` is elementwise (a change in one column stays in that column).
_ELEMENTWISE: tuple[type, ...] = (Identity, Sigmoid, Tanh, ReLU, LeakyReLU)
#: Activation classes whose ``apply`` acts on the last axis as a whole (any leading axes).
_ROWWISE: tuple[type, ...] = (Softmax,)

#: Upper bound on the number of elements of one stacked intermediate array ``(K, n_samples, width)``;
#: the perturbations are processed in chunks of K that respect it. About 1 MB in float64: the
#: stacks of one chunk stay in the L2 cache (measured on the benchmark model: 2^17 elements is 2.5-3x
#: faster than 2^20 and as fast as 2^18, Python overhead still negligible).
CHUNK_ELEMENTS = 1 << 17


# ------------------------------------------------------------------------------------------------
# Input validation
# ------------------------------------------------------------------------------------------------
def _validate(
    network: Any, name: Any, flat_index: Any, steps: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the arguments; return ``(P, flat_index as int64 (n,), steps as (n, k) float array)``."""
    params_fn = getattr(network, "params", None)
    if not callable(params_fn):
        raise TypeError(
            f"perturbed_losses: network must have a params() method returning a dict of arrays, "
            f"got {type(network).__name__}"
        )
    params = params_fn()
    if not isinstance(name, str):
        raise TypeError(f"perturbed_losses: name must be a str (a key of network.params()), got {name!r}")
    if name not in params:
        raise KeyError(
            f"perturbed_losses: unknown parameter name {name!r}; network.params() has "
            f"{', '.join(repr(k) for k in params) or 'no parameters'}"
        )
    P = params[name]
    if not isinstance(P, np.ndarray):
        raise TypeError(f"perturbed_losses: params()[{name!r}] must be an ndarray, got {type(P).__name__}")
    if P.dtype.kind != "f":
        raise TypeError(
            f"perturbed_losses: parameter {name!r} must have a floating dtype, got {P.dtype}"
        )

    idx = np.asarray(flat_index)
    if idx.ndim != 1:
        raise ValueError(
            f"perturbed_losses: flat_index must be a 1-D array of flat positions into {name!r} "
            f"(size {P.size}), got shape {idx.shape}"
        )
    if idx.size and idx.dtype.kind not in "iu":
        raise TypeError(
            f"perturbed_losses: flat_index must hold integers (flat positions into {name!r}), "
            f"got dtype {idx.dtype}"
        )
    idx = idx.astype(np.int64, copy=False)
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= P.size:
            bad = lo if lo < 0 else hi
            raise IndexError(
                f"perturbed_losses: flat_index contains {bad}, out of range for parameter {name!r} of "
                f"shape {P.shape} (valid flat positions are 0 .. {P.size - 1})"
            )

    s = np.asarray(steps)
    if s.ndim != 2 or s.shape[0] != idx.shape[0]:
        raise ValueError(
            f"perturbed_losses: steps must have shape (len(flat_index), k) = ({idx.shape[0]}, k), "
            f"got shape {s.shape}"
        )
    if s.dtype.kind == "c":
        raise TypeError(
            f"perturbed_losses: steps must be real (parameter {name!r} has dtype {P.dtype}), got dtype {s.dtype}"
        )
    if s.dtype.kind not in "fiub":
        raise TypeError(f"perturbed_losses: steps must be a real numeric array, got dtype {s.dtype}")
    if s.dtype.kind != "f":
        s = s.astype(np.float64)
    return P, idx, s


def _new_values(P: np.ndarray, idx: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(old, new)``: ``old`` of shape (n,), ``new = old + steps`` of shape (n, k) rounded to ``P.dtype``.

    The sum is taken in ``np.result_type(P.dtype, steps.dtype)`` and then cast to ``P.dtype``: exactly
    what ``P.flat[i] = P.flat[i] + steps[i, j]`` stores.
    """
    old = P.reshape(-1)[idx] if P.flags.c_contiguous else P.flat[idx]
    wide = np.result_type(P.dtype, steps.dtype)
    new = (old.astype(wide)[:, None] + steps.astype(wide, copy=False)).astype(P.dtype)
    return np.asarray(old), new


# ------------------------------------------------------------------------------------------------
# Generic exact path
# ------------------------------------------------------------------------------------------------
def perturbed_losses_generic(
    network: Any,
    name: str,
    flat_index: np.ndarray,
    steps: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    loss_fn: Any,
) -> np.ndarray:
    """Exact reference: perturb in place, full forward, loss, restore; for any model and loss.

    Same contract as :func:`perturbed_losses`. Each entry is restored bit-identically in a
    ``try/finally`` (also when the forward or the loss raises), and ``network.forward(X)`` is run once
    more at the end so that the layers' caches describe the unperturbed network again (a following
    ``backward()`` is then right for the forward on ``X``).

    Cost: ``len(flat_index) * steps.shape[1]`` full forwards.

    Parameters
    ----------
    network : object with ``params()`` and ``forward(X)``
    name : str
        Key of ``network.params()``.
    flat_index : ndarray of int of shape (n,)
    steps : ndarray of shape (n, k)
    X : ndarray of shape (n_samples, n_features)
    y : ndarray
        Targets accepted by ``loss_fn.forward``.
    loss_fn : object with ``forward(pred, y) -> float``

    Returns
    -------
    ndarray of float64 of shape (n, k)
    """
    P, idx, s = _validate(network, name, flat_index, steps)
    return _generic(network, P, idx, s, X, y, loss_fn)


def _generic(
    network: Any, P: np.ndarray, idx: np.ndarray, steps: np.ndarray, X: Any, y: Any, loss_fn: Any
) -> np.ndarray:
    n, k = steps.shape
    out = np.empty((n, k), dtype=np.float64)
    if n == 0 or k == 0:
        return out
    old, new = _new_values(P, idx, steps)
    failed = True
    try:
        for r in range(n):
            f = int(idx[r])
            keep = old[r]
            try:
                for c in range(k):
                    P.flat[f] = new[r, c]
                    out[r, c] = float(loss_fn.forward(network.forward(X), y))
            finally:
                P.flat[f] = keep  # same dtype: bit-identical restore
        failed = False
    finally:
        # The forwards above overwrote the layers' caches with perturbed values: refresh them.
        if failed:
            try:
                network.forward(X)
            except Exception:  # the original exception is the informative one
                pass
    network.forward(X)
    return out


# ------------------------------------------------------------------------------------------------
# Fast path: a plan of pure per-layer steps
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ActStep:
    """A parameter-free activation: ``fn`` is its pure function; ``elementwise`` or row-wise."""

    fn: Callable[[np.ndarray], np.ndarray]
    elementwise: bool


@dataclass(frozen=True)
class _DenseStep:
    """``y = act(x @ W + b)`` with the fused activation ``act`` (``None`` = identity)."""

    W: np.ndarray
    b: np.ndarray
    act: _ActStep | None


def _overridden_on_instance(obj: Any, *names: str) -> bool:
    """Whether the instance itself carries one of the methods (monkey-patched), shadowing its class."""
    attrs = getattr(obj, "__dict__", {})
    return any(name in attrs for name in names)


def _act_step(act: Any) -> _ActStep | None:
    """Plan step of an activation instance, or ``None`` if it is not a known built-in class."""
    cls = type(act)
    if _overridden_on_instance(act, "forward", "apply"):
        return None
    if cls in _ELEMENTWISE:
        return _ActStep(act.apply, True)
    if cls in _ROWWISE:
        return _ActStep(act.apply, False)
    return None


def _plan(layers: Sequence[Any]) -> list[_ActStep | _DenseStep] | None:
    """Pure steps for every layer, or ``None`` if some layer is not exactly a known built-in type.

    Exact type checks (not ``isinstance``): a subclass may override ``forward``.
    """
    plan: list[_ActStep | _DenseStep] = []
    for layer in layers:
        cls = type(layer)
        if _overridden_on_instance(layer, "forward"):
            return None
        if cls is Dense:
            p = layer.params
            if set(p) != {"W", "b"}:
                return None
            W, b = p["W"], p["b"]
            if not (isinstance(W, np.ndarray) and isinstance(b, np.ndarray)):
                return None
            if W.ndim != 2 or b.shape != (W.shape[1],):
                return None
            act = None
            if layer.activation is not None:
                act = _act_step(layer.activation)
                if act is None:
                    return None
            plan.append(_DenseStep(W, b, act))
        elif isinstance(layer, Activation):
            step = _act_step(layer)
            if step is None or layer.params:
                return None
            plan.append(step)
        else:
            return None
    return plan


def _has_own_forward_batch(loss_fn: Any) -> bool:
    """Whether ``loss_fn.forward_batch`` exists and is defined at least as deep as ``forward``.

    A subclass that overrides ``forward`` but inherits ``forward_batch`` would get a batch loss that
    disagrees with its ``forward``: such losses take the generic path.
    """
    if not callable(getattr(loss_fn, "forward_batch", None)):
        return False
    mro = type(loss_fn).__mro__

    def definer(attr: str) -> int:
        for depth, klass in enumerate(mro):
            if attr in vars(klass):
                return depth
        return len(mro)  # instance attribute or __getattr__: unknown

    fb, fw = definer("forward_batch"), definer("forward")
    if fb >= len(mro):
        return False
    if isinstance(loss_fn, Loss) and mro[fb] is Loss:
        return False  # the abstract stub
    return fb <= fw


def _find_layer(layers: Sequence[Any], P: np.ndarray) -> tuple[int, str] | None:
    """``(layer index, key)`` of the single layer parameter that may share memory with ``P``.

    ``None`` if ``P`` is not found or (weight tying) memory is possibly shared with another parameter.
    """
    found: list[tuple[int, str]] = []
    for i, layer in enumerate(layers):
        for k, v in getattr(layer, "params", {}).items():
            if isinstance(v, np.ndarray) and np.may_share_memory(v, P):
                found.append((i, k))
    if len(found) != 1:
        return None
    i, k = found[0]
    if layers[i].params[k] is not P:
        return None
    return found[0]


def _plain_network(network: Any) -> bool:
    """Whether ``network.forward`` is exactly :meth:`NeuralNetwork.forward` (layers applied in order).

    A subclass that overrides ``forward`` (say, to rescale the input) computes something the layer
    list alone does not describe: it takes the generic path.
    """
    return (
        isinstance(network, NeuralNetwork)
        and type(network).forward is NeuralNetwork.forward
        and not _overridden_on_instance(network, "forward")
    )


def fast_path_available(network: Any, name: str, loss_fn: Any) -> bool:
    """Whether :func:`perturbed_losses` can use the fast path for ``params()[name]`` and ``loss_fn``.

    True when every layer of ``network.layers`` is exactly a built-in ``Dense`` (with a built-in or no
    fused activation) or a built-in activation, the parameter is a ``W`` or ``b`` of one ``Dense`` and
    shared with no other layer, and ``loss_fn`` defines its own ``forward_batch``.

    Parameters
    ----------
    network : NeuralNetwork or any object with ``layers`` and ``params()``
    name : str
        Key of ``network.params()``.
    loss_fn : loss object

    Returns
    -------
    bool
    """
    if not _plain_network(network) or not _has_own_forward_batch(loss_fn):
        return False
    layers = network.layers
    try:
        layers = list(layers)
    except TypeError:
        return False
    plan = _plan(layers)
    if plan is None:
        return False
    params = network.params()
    if name not in params or not isinstance(params[name], np.ndarray):
        return False
    return _find_layer(layers, params[name]) is not None


def _base_forward(
    plan: list[_ActStep | _DenseStep], X: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray | None], list[np.ndarray]] | None:
    """One forward with the pure functions.

    Returns ``(ins, zs, outs)``: ``ins[l]`` the input of layer ``l``, ``zs[l]`` the pre-activation
    ``x @ W + b`` of a Dense layer (``None`` for activation layers), ``outs[l]`` the output; or
    ``None`` if a Dense layer gets an input of the wrong shape (the generic path then raises the
    network's own error message).
    """
    ins: list[np.ndarray] = []
    zs: list[np.ndarray | None] = []
    outs: list[np.ndarray] = []
    x = X
    for step in plan:
        ins.append(x)
        if isinstance(step, _DenseStep):
            if x.ndim != 2 or x.shape[1] != step.W.shape[0]:
                return None
            z = x @ step.W
            if z.dtype.kind == "f":
                z += step.b
            else:  # pragma: no cover - a float W always gives a float z
                z = z + step.b
            zs.append(z)
            x = step.act.fn(z) if step.act is not None else z
        else:
            zs.append(None)
            x = step.fn(x)
        x = np.asarray(x)
        outs.append(x)
    return ins, zs, outs


class _Base:
    """The unperturbed forward of one network on one ``X`` (see :func:`_base_forward`), plus the
    contiguous transposes the fast path gathers columns from (computed once, on first use)."""

    def __init__(self, ins: list[np.ndarray], zs: list[np.ndarray | None], outs: list[np.ndarray]) -> None:
        self.ins, self.zs, self.outs = ins, zs, outs
        self._transposed: dict[tuple[str, int], np.ndarray] = {}

    def T(self, kind: str, layer: int) -> np.ndarray:
        """Contiguous transpose of ``ins``/``zs``/``outs`` ``[layer]`` (shape (width, N))."""
        key = (kind, layer)
        t = self._transposed.get(key)
        if t is None:
            t = np.ascontiguousarray(getattr(self, kind)[layer].T)
            self._transposed[key] = t
        return t

    def nbytes(self) -> int:
        arrays = [a for a in self.ins + self.zs + self.outs if a is not None]
        return int(sum(a.nbytes for a in arrays))


#: Largest base forward (bytes of activations) kept between calls.
CACHE_MAX_BYTES = 64 * 2**20


class _CacheEntry:
    """Validated memo of the last base forward: one entry, for one network (held weakly)."""

    def __init__(self, network: Any, signature: tuple, params: list[np.ndarray], X: np.ndarray, base: _Base) -> None:
        self.network_ref = weakref.ref(network, _forget)  # dropped with the network
        self.signature = signature
        self.params = params  # the live arrays (identity) ...
        self.copies = [p.copy() for p in params]  # ... and their values at the time
        self.X = X.copy()
        self.base = base

    def matches(self, network: Any, signature: tuple, params: list[np.ndarray], X: np.ndarray) -> bool:
        if self.network_ref() is not network or self.signature != signature or len(params) != len(self.params):
            return False
        if X.shape != self.X.shape or X.dtype != self.X.dtype or not np.array_equal(X, self.X):
            return False
        for live, kept, copy in zip(params, self.params, self.copies):
            if live is not kept or not np.array_equal(live, copy):
                return False
        return True


_last_base: _CacheEntry | None = None


def _forget(ref: weakref.ref) -> None:
    """Weakref callback: the memoised network was garbage-collected, free its copies and activations."""
    global _last_base
    entry = _last_base
    if entry is not None and entry.network_ref is ref:
        _last_base = None


def _signature(layers: Sequence[Any]) -> tuple:
    """What the pure plan depends on besides the parameter values: layer and activation types and ids,
    LeakyReLU slopes, parameter array identities."""
    sig = []
    for layer in layers:
        act = getattr(layer, "activation", None) if type(layer) is Dense else layer
        sig.append((
            id(layer),
            type(layer),
            tuple((k, id(v)) for k, v in layer.params.items()),
            type(act),
            id(act),
            getattr(act, "alpha", None),
        ))
    return tuple(sig)


def _cached_base_forward(network: Any, layers: Sequence[Any], plan: list[_ActStep | _DenseStep], X: np.ndarray) -> _Base | None:
    """:func:`_base_forward` memoised across calls for the same network, parameter values and ``X``.

    The checker calls :func:`perturbed_losses` once per parameter and chunk (dozens of calls for one
    check); recomputing the base forward each time would cost as much as the perturbations. The memo is
    validated on every call (identity of the network, layers and parameter arrays, LeakyReLU slopes,
    and the exact values of all parameters and of ``X``), so in-place changes are always seen.
    """
    global _last_base
    params = [v for layer in layers for v in layer.params.values()]
    signature = _signature(layers)
    entry = _last_base
    if entry is not None and entry.matches(network, signature, params, X):
        return entry.base
    out = _base_forward(plan, X)
    if out is None:
        return None
    base = _Base(*out)
    try:
        if base.nbytes() <= CACHE_MAX_BYTES:
            _last_base = _CacheEntry(network, signature, params, X, base)
        else:
            _last_base = None
    except TypeError:  # network not weak-referenceable: no memo
        _last_base = None
    return base


def _feature_major(At: np.ndarray) -> np.ndarray:
    """View a contiguous ``(width, K, N)`` buffer as the ``(K, N, width)`` stack it stores.

    Stacks are kept *feature-major* in memory: reductions over the last axis (softmax, log-sum-exp
    in the losses) then run over the outermost memory axis, which NumPy vectorises well, instead of
    over a short contiguous axis of length ``width`` (about 10x slower for ``width = 10``).
    """
    return At.transpose(1, 2, 0)


def _stack_with_column(base: np.ndarray, cols: np.ndarray, col_index: np.ndarray) -> np.ndarray:
    """``(K, N, w)`` copies of ``base`` (N, w) whose column ``col_index[k]`` is replaced by ``cols[k]``."""
    K, N = cols.shape
    dtype = np.result_type(base.dtype, cols.dtype)
    At = np.empty((base.shape[1], K, N), dtype=dtype)
    At[...] = base.T[:, None, :]
    At[col_index, np.arange(K), :] = cols
    return _feature_major(At)


def _propagate_dense(plan: list[_ActStep | _DenseStep], start: int, A: np.ndarray) -> np.ndarray:
    """Run layers ``start, start+1, ...`` on the stack ``A`` of shape (K, N, width).

    A Dense layer is one matrix product for the whole stack, ``Z^T = W^T A^T`` on the feature-major
    buffer (shape ``(n_out, K * N)``).
    """
    for step in plan[start:]:
        if isinstance(step, _DenseStep):
            K, N, w = A.shape
            At = np.ascontiguousarray(A.transpose(2, 0, 1)).reshape(w, K * N)  # no copy if feature-major
            n_out = step.W.shape[1]
            Zt = step.W.T @ At
            Zt += step.b[:, None]
            Z = _feature_major(Zt.reshape(n_out, K, N))
            A = step.act.fn(Z) if step.act is not None else Z
        else:
            A = step.fn(A)
    return A


def _fast_chunk(
    plan: list[_ActStep | _DenseStep],
    layer: int,
    rows: np.ndarray | None,
    cols: np.ndarray,
    dval: np.ndarray,
    base: _Base,
) -> np.ndarray:
    """Stacked predictions ``(K, N, n_out)`` for K perturbations of Dense ``layer``.

    ``rows``/``cols``: the (i, j) position of each perturbed entry of ``W`` (``rows`` is ``None`` for
    ``b``); ``dval``: the effective change ``new - old`` of each, in the compute dtype.
    """
    zs, outs = base.zs, base.outs
    c = base.T("zs", layer)[cols]  # (K, N): column cols[k] of the perturbed layer's pre-activation
    if rows is None:
        c += dval[:, None]
    else:
        c += dval[:, None] * base.T("ins", layer)[rows]
    step = plan[layer]
    assert isinstance(step, _DenseStep)
    n_layers = len(plan)
    if step.act is not None:
        if step.act.elementwise:
            c = step.act.fn(c)
        else:
            A = step.act.fn(_stack_with_column(zs[layer], c, cols))
            return _propagate_dense(plan, layer + 1, A)
    # Column state: only column cols[k] of the output of layer m differs from the base, and it is c[k].
    m = layer
    while m + 1 < n_layers:
        nxt = plan[m + 1]
        if isinstance(nxt, _ActStep):
            if not nxt.elementwise:
                A = nxt.fn(_stack_with_column(outs[m], c, cols))
                return _propagate_dense(plan, m + 2, A)
            c = nxt.fn(c)
            m += 1
            continue
        # Dense after a one-column change: rank-1 update z' = z + delta[:, None] * W[j, :] of its
        # pre-activation, built feature-major as (n_out, K, N).
        delta = c - base.T("outs", m)[cols]  # (K, N)
        WjT = nxt.W[cols].T  # (n_out, K)
        K, N = delta.shape
        Zt = np.empty((WjT.shape[0], K, N), dtype=np.result_type(delta.dtype, WjT.dtype, zs[m + 1].dtype))
        np.multiply(WjT[:, :, None], delta[None, :, :], out=Zt)
        Zt += base.T("zs", m + 1)[:, None, :]
        Z = _feature_major(Zt)
        A = nxt.act.fn(Z) if nxt.act is not None else Z
        return _propagate_dense(plan, m + 2, A)
    # The perturbed column reaches the output.
    return _stack_with_column(outs[m], c, cols)


def perturbed_losses(
    network: Any,
    name: str,
    flat_index: np.ndarray,
    steps: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    loss_fn: Any,
) -> np.ndarray:
    """Losses of ``network`` on ``(X, y)`` under single-entry perturbations of parameter ``name``.

    Entry ``[i, j]`` equals ``loss_fn.forward(network.forward(X), y)`` computed with
    ``network.params()[name].flat[flat_index[i]]`` set to ``old + steps[i, j]`` (rounded to the
    parameter's dtype, as an in-place write would be) and everything else unchanged, up to floating
    point rounding (the fast path reorders a few sums). The parameters are never modified, and the
    fast path never calls ``layer.forward``, so the layers' caches from the last forward stay valid.

    The fast path (see the module docstring) recomputes only what one entry changes: a column of the
    perturbed layer's pre-activation, a rank-1 update of the next ``Dense``, then the remaining layers
    on a ``(K, n_samples, width)`` stack and ``loss_fn.forward_batch``. Models or losses it does not
    know use an exact generic loop (:func:`perturbed_losses_generic`).

    Parameters
    ----------
    network : NeuralNetwork (or any object with ``params()`` and ``forward(X)``)
    name : str
        Key of ``network.params()``, e.g. ``"W_0"`` or ``"b_2"``.
    flat_index : ndarray of int of shape (n,)
        Flat positions (C order, ``0 <= flat_index < P.size``) of the entries to perturb.
    steps : ndarray of float of shape (n, k)
        Perturbations of each entry, e.g. ``[[+h, -h], ...]`` for central differences.
    X : ndarray of shape (n_samples, n_features)
        Network input.
    y : ndarray
        Targets, as accepted by ``loss_fn.forward``.
    loss_fn : loss object
        ``forward(pred, y) -> float``; ``forward_batch(preds, y) -> (K,)`` enables the fast path.

    Returns
    -------
    losses : ndarray of float64 of shape (n, k)

    Raises
    ------
    KeyError
        ``name`` is not a parameter name (the message lists the valid names).
    IndexError
        An entry of ``flat_index`` is outside ``[0, P.size)``.
    ValueError, TypeError
        ``flat_index`` is not 1-D integer, or ``steps`` is not real of shape (n, k).

    Examples
    --------
    >>> import numpy as np
    >>> from verigrad.nn import Dense, Tanh, NeuralNetwork, CrossEntropyLoss
    >>> rng = np.random.default_rng(0)
    >>> model = NeuralNetwork([Dense(4, 5, seed=0), Tanh(), Dense(5, 3, seed=1)])
    >>> X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)
    >>> h = 1e-6
    >>> L = perturbed_losses(model, "W_0", np.arange(20), np.tile([h, -h], (20, 1)), X, y,
    ...                      CrossEntropyLoss())
    >>> L.shape
    (20, 2)
    """
    P, idx, s = _validate(network, name, flat_index, steps)
    n, k = s.shape
    if n == 0 or k == 0:
        return np.empty((n, k), dtype=np.float64)
    X = np.asarray(X)

    layers: list[Any] = []
    plan = None
    where = None
    if _plain_network(network) and _has_own_forward_batch(loss_fn):
        layers = list(network.layers)
        plan = _plan(layers)
        if plan is not None:
            where = _find_layer(layers, P)
    if plan is None or where is None or X.ndim != 2 or X.shape[0] == 0:
        return _generic(network, P, idx, s, X, y, loss_fn)
    if X.dtype.kind not in "fiub" or (
        X.dtype.kind == "f" and not getattr(network, "allow_nonfinite", False) and not np.isfinite(X).all()
    ):
        return _generic(network, P, idx, s, X, y, loss_fn)  # raises the network's own error
    layer, key = where
    if not isinstance(plan[layer], _DenseStep):  # pragma: no cover - _plan only allows Dense params
        return _generic(network, P, idx, s, X, y, loss_fn)
    base = _cached_base_forward(network, layers, plan, X)
    if base is None:
        return _generic(network, P, idx, s, X, y, loss_fn)
    z = base.zs[layer]
    assert z is not None
    cdtype = z.dtype

    old, new = _new_values(P, idx, s)
    # Effective change of each perturbation, exact in float64 for float32 parameters.
    dval = (new.astype(np.float64) - old.astype(np.float64)[:, None]).reshape(-1).astype(cdtype)
    if key == "W":
        n_out = P.shape[1]
        rows_all = np.repeat(idx // n_out, k)
        cols_all = np.repeat(idx % n_out, k)
    else:
        rows_all = None
        cols_all = np.repeat(idx, k)

    # Layers layer..m keep the change in one column; the stack (K, N, width) is materialised from
    # layer `dense_from` on (at the last layer if the column reaches the output).
    m = layer
    step = plan[layer]
    assert isinstance(step, _DenseStep)
    if step.act is not None and not step.act.elementwise:
        dense_from = layer
    else:
        while m + 1 < len(plan) and isinstance(plan[m + 1], _ActStep) and plan[m + 1].elementwise:
            m += 1
        dense_from = min(m + 1, len(plan) - 1)

    N = X.shape[0]
    widths = [o.shape[-1] for o in base.outs[dense_from:]] + [1]
    chunk = max(1, CHUNK_ELEMENTS // (N * max(widths)))
    R = n * k
    out = np.empty(R, dtype=np.float64)
    for start in range(0, R, chunk):
        stop = min(R, start + chunk)
        sl = slice(start, stop)
        preds = _fast_chunk(
            plan, layer, None if rows_all is None else rows_all[sl], cols_all[sl], dval[sl], base
        )
        out[sl] = np.asarray(loss_fn.forward_batch(preds, y), dtype=np.float64).reshape(-1)
    return out.reshape(n, k)
