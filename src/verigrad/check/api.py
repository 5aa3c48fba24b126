"""Entry points of the gradient checker.

* :func:`check_gradients` - a function ``fn(x)`` and its claimed gradient (seed 002's signature);
* :func:`check_params` - a hand-written model: ``loss()`` reading live parameter arrays (seed 001);
* :func:`gradient_check` - any model following the network protocol (seed 000);
* :func:`check_layers` - each layer of ``model.layers`` in isolation: localise the first faulty layer.

Nothing here imports ``verigrad.nn``: models and layers are used through their protocol only.
After any check, every checked array (parameters, inputs) is bit-identical to before, also when the
user's code raises or the check is interrupted; a model's ``grads()`` arrays are restored too.

Where the rest lives: option parsing in :mod:`~verigrad.check.options`; validation of arrays in
:mod:`~verigrad.check.arrays`; the forms users pass (tuple outputs, params/grads forms, model views,
loss adapters) in :mod:`~verigrad.check.adapters`; the complex step in
:mod:`~verigrad.check.complex_step`; one function at one point (:func:`check_gradients`'s core) in
:mod:`~verigrad.check.fn_check`; judging and report assembly in :mod:`~verigrad.check.assembly`;
float64 copies of float32 parameters in :mod:`~verigrad.check.upcast`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Callable, Optional

import numpy as np

from verigrad.check.adapters import (
    _as_loss,
    _as_model,
    _FirstItemLoss,
    _grad_names,
    _grads_lookup,
    _layer_backward,
    _layer_dict,
    _layer_forward,
    _LossValue,
    _params_mapping,
    _require,
    _required_args,
    _restore_grads,
    _safe_grads,
    _TupleOutput,
    _unwrap_tensors,
)
from verigrad.check.arrays import (
    _dldf,
    _float_array,
    _grad_array,
    _grad_eps,
    _is_number,
    _nudged,
    _output,
    _Restorer,
    _same_bits,
)
from verigrad.check.assembly import _apply_cutoff, _check_live_params, _finish, _live_check
from verigrad.check.engine import NonScalarObjective, Target, coarser_dtype, eps_of, to_scalar
from verigrad.check.fn_check import _check_fn_once, _probe
from verigrad.check.options import METHODS, MODES, Options, _options
from verigrad.check.report import GradientReport, LayersReport, ModelReport
from verigrad.check.upcast import _check_params_upcast, _undo_upcast, _upcast

__all__ = ["check_gradients", "check_params", "gradient_check", "check_layers", "METHODS", "MODES"]


# ---------------------------------------------------------------------------------------------------
# check_gradients
# ---------------------------------------------------------------------------------------------------
def check_gradients(fn: Callable[[np.ndarray], Any], grad: Any, x: Any, dLdf: Any = None,
                    **options: Any) -> GradientReport:
    """Check the claimed gradient of ``L = sum(fn(x) * dLdf)`` with respect to ``x``.

    Parameters
    ----------
    fn : callable, ndarray of shape ``x.shape`` -> ndarray or scalar
        The function being checked. It is called on private copies of ``x`` (float64 when ``x`` is
        float32 and ``fn`` computes in float64 on float64 input, for an accurate numerical side).
        A tuple output counts as its first item (``(out, cache)``, ``(loss, dx)``), unless ``dLdf`` is
        a tuple with one upstream gradient per item (``None`` for items that are not outputs): then
        ``L = sum_i sum(fn(x)[i] * dLdf[i])``. A list of numbers is an array.
    grad : ndarray of shape ``x.shape``, or callable ``grad(x)``
        The claimed ``dL/dx``. A non-square 2-D ``grad`` with the transposed shape is diagnosed as
        ``transpose``. With a callable, extra probe points are checked by default.
    x : ndarray of float
        The point. Never modified, with one exception: when ``fn`` ignores its argument and reads
        ``x`` itself (CS231n's ``f = lambda W: net.loss(X, y)[0]`` with ``x = net.params["W1"]``), which
        is found out when the private copies leave ``fn`` unchanged, ``x`` is perturbed in place like a
        :func:`check_params` parameter and restored bit for bit (a note says so).
    dLdf : ndarray of ``fn(x)``'s shape, or scalar, optional
        The upstream gradient. Omitted: ``fn`` must return a scalar.
    **options
        ``method`` ("auto", "central", "complex", "richardson"; auto uses the complex step when it is
        validated on ``fn``, central differences otherwise), ``mode`` ("full", "sample", "fast"), ``k``
        (entries for sample mode), ``seed``/``rng``, ``eps`` (absolute step; default chosen per entry),
        ``atol``/``rtol`` (explicit tolerance: an entry passes if ``|a-n| <= atol`` or
        ``|a-n|/(|a|+|n|) <= rtol``), ``probe`` (check rescaled copies of ``x`` too; default: ``grad``
        is callable), ``batch_size`` (to name a factor N), ``raise_on_failure``, ``name``, ``h`` or
        ``epsilon`` (other names for ``eps``), ``error_cutoff`` (explicit threshold on the relative
        error: pass if and only if ``rel_error <= error_cutoff``), ``verbose`` (print the report).

    Returns
    -------
    GradientReport
        ``float(report)`` is ``||a - n|| / (||a|| + ||n||)``; ``report.passed``, ``report.diagnosis``.

    Raises
    ------
    TypeError, ValueError
        Bad arguments (each message names the argument, what was received and what was expected).
    GradientCheckError
        With ``raise_on_failure=True`` when the check fails.
    """
    opts = _options(options)
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__}")
    x_arr = _float_array(x, "x")
    probe = opts.probe if opts.probe is not None else callable(grad)
    fn = _TupleOutput(fn, dLdf)
    report = _check_fn_once(fn, grad, x_arr, dLdf, opts)
    if report.diagnosis.details.get("independent") and isinstance(x, np.ndarray):
        live = _check_live_x(fn, grad, x, opts, report)
        if live is not None:
            report, probe = live, False
    if fn.note:
        report.notes.append(fn.note)
    if probe:
        _probe(report, fn, grad, x_arr, dLdf, opts)
    return _finish(report, opts)


def _check_live_x(fn: _TupleOutput, grad: Any, x: np.ndarray, opts: Options,
                  report: GradientReport) -> Optional[GradientReport]:
    """Re-check when ``fn`` ignores its argument but reads the caller's array ``x`` itself.

    CS231n's idiom ``f = lambda W: net.loss(X, y)[0]`` with ``x = net.params["W1"]`` relies on the
    checker perturbing ``x`` in place. When the private copies left ``fn`` unchanged (numerical gradient
    exactly 0) and perturbing ``x`` itself changes ``fn``'s output, ``x`` is checked in place like a
    :func:`check_params` parameter (restored bit for bit, also on errors). Returns None otherwise.
    """
    if x.dtype.kind != "f" or not x.flags.writeable or x.size == 0:
        return None
    keep = x.copy()
    a = np.abs(np.nan_to_num(report.analytic))
    i = int(np.argmax(a)) if a.size else 0
    try:
        base = np.asarray(fn(keep.copy()))
        moved = np.asarray(_nudged(x, i, lambda: fn(keep.copy())))
    except Exception:  # noqa: BLE001 - could not tell: keep the first report
        return None
    finally:
        np.copyto(x, keep)
    if moved.shape == base.shape and _same_bits(moved, base):
        return None
    G = _dldf(fn.upstream(), base.shape)
    name = report.name

    def loss() -> float:
        o = _output(fn(keep.copy()), "")
        return float(np.sum(np.real(o).astype(np.float64) * G))

    # a callable grad is re-evaluated at the current x (nearby points of the multi-kink test)
    g: Any = (lambda: {name: grad(x.copy())}) if callable(grad) else {name: grad}
    sub = {f: getattr(opts, f) for f in ("method", "mode", "eps", "atol", "rtol", "k", "seed", "rng",
                                           "batch_size", "directions")}
    rep = check_params(loss, {name: x}, g, **sub)[name]
    rep.notes.append(
        f"fn ignores its argument and reads the array {name} itself (like lambda W: net.loss(X, y)[0]): "
        f"{name} was perturbed in place and restored bit for bit")
    return rep


# ---------------------------------------------------------------------------------------------------
# check_params
# ---------------------------------------------------------------------------------------------------
def check_params(loss: Callable[[], Any], params: Any, grads: Any = None, **options: Any) -> ModelReport:
    """Check the claimed gradients of a hand-written model.

    Parameters
    ----------
    loss : callable () -> scalar
        Reads the live arrays in ``params`` and returns the loss (a Python float, a NumPy scalar or a
        0-d array). A ``(loss, grads)`` tuple, as CS231n's ``model.loss(X, y)`` returns, counts as its
        first item.
    params : mapping of str to ndarray of float, list of ndarray, or object
        The live parameter arrays; they are perturbed in place and restored bit for bit. A list is named
        ``params[0]``, ``params[1]``...; an object contributes its float ndarray attributes (``net.W1``),
        except those that ``loss()`` replaces by new arrays (forward caches such as ``net.z1``).
        Parameter objects with ``.data`` (an ndarray) and ``.grad`` (a NumPy autograd framework's
        ``model.parameters()``) stand for their ``.data`` arrays.
    grads : mapping of str to ndarray, list of ndarray, object, or callable; optional for parameter objects
        The claimed ``dL/dparam``, in the form of ``params``: the same names (or ``dW1``, ``grad_W1``,
        ``W1_grad``... for ``W1``), the same order for lists; for an object, its attributes so named
        (``net.dW1``; ``grads`` may be the same object as ``params``). Shapes must match, except for
        axes of length 1 (a ``(1, D)`` bias with a ``(D,)`` gradient). A zero-argument function
        returning them at the current live parameters lets the checker recompute them at nearby points
        (the multi-kink test, for ReLU networks with several units at their kinks at once); so does a
        ``loss()`` returning ``(loss, grads)``.
    **options
        As for :func:`check_gradients` (``method``, ``mode``, ``k``, ``seed``, ``eps``, ``atol``, ``rtol``,
        ``batch_size``, ``raise_on_failure``). The round-off of both sides is judged by the coarser of
        the parameter's and the gradient's dtypes (and of the loss value's, when it is a NumPy scalar).

    Returns
    -------
    ModelReport
    """
    opts = _options(options)
    if not callable(loss):
        raise TypeError(f"loss must be a zero-argument callable; got {type(loss).__name__}")
    required = _required_args(loss)
    if required:
        raise TypeError(
            f"loss must be a zero-argument callable reading the live parameters; {getattr(loss, '__qualname__', 'it')} "
            f"requires {required}: wrap the call, e.g. check_params(lambda: model.compute_loss(model.forward(X), y), "
            "params, grads)")
    loss_value = _LossValue(loss)
    grad_fn: Optional[Callable[[], Any]] = None
    if _is_grad_function(grads):
        grad_fn = grads
        grads = grad_fn()
    same = grads is params and not isinstance(params, (Mapping, list, tuple, np.ndarray))
    params, grads, tensor_note = _unwrap_tensors(params, grads)
    container = params
    params, form, notes = _params_mapping(params, loss_value)
    if tensor_note:
        notes.append(tensor_note)
    grads, more = _grads_lookup(grads, list(params), form, same_object=same)
    notes += more
    params = {k: v for k, v in params.items() if k in grads}
    for nm, p in params.items():
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{nm!r}] must be a live NumPy array (perturbed in place); got {type(p).__name__}")
        _float_array(p, f"params[{nm!r}]")
    regrad = _params_regrad(grad_fn, loss_value, params, form)
    report = _check_live_params(params, grads, loss_value, opts, notes, regrad=regrad)
    if (not report.passed and report.global_diagnosis is None and form in ("mapping", "object")
            and any(p.dtype.itemsize < 8 for p in params.values())):
        up = _check_params_upcast(container, form, params, grads, loss_value, opts, notes, regrad=regrad)
        if up is not None:
            report = up
    return _finish(report, opts)


def _is_grad_function(grads: Any) -> bool:
    """``grads`` given as a zero-argument function returning the gradients (not a container of them)."""
    if not callable(grads) or isinstance(grads, (Mapping, list, tuple, np.ndarray, type)):
        return False
    attrs = getattr(grads, "__dict__", None)
    return not (isinstance(attrs, dict) and any(isinstance(v, np.ndarray) for v in attrs.values()))


def _params_regrad(grad_fn: Optional[Callable[[], Any]], loss_value: _LossValue, params: dict[str, np.ndarray],
                   form: str) -> Callable[[], Optional[dict[str, np.ndarray]]]:
    """The claimed gradients at the current live ``params``, for the multi-kink test.

    From ``grad_fn()`` when ``grads`` was given as a function, otherwise from the second item of
    ``loss()`` when it returns ``(loss, grads)`` (CS231n's ``model.loss(X, y)``); None when neither
    is available (the multi-kink test then cannot verify anything).
    """
    def regrad() -> Optional[dict[str, np.ndarray]]:
        if grad_fn is not None:
            raw = grad_fn()
        else:
            v = loss_value.loss()
            if not (isinstance(v, (tuple, list)) and len(v) >= 2 and _is_number(v[0])):
                return None
            raw = v[1]
        found, _ = _grads_lookup(raw, list(params), form, same_object=False)
        return {nm: _grad_array(g, f"grads[{nm!r}]", params[nm].shape, f"params[{nm!r}]")[0]
                for nm, g in found.items() if nm in params}

    regrad.needs_loss_tuple = grad_fn is None  # type: ignore[attr-defined]
    return regrad


# ---------------------------------------------------------------------------------------------------
# gradient_check
# ---------------------------------------------------------------------------------------------------
def gradient_check(model: Any, X: Any, y: Any, loss_fn: Any = None, eps: Optional[float] = None,
                   atol: Optional[float] = None, rtol: Optional[float] = None, **options: Any) -> ModelReport:
    """Check every parameter of a model, and ``dL/dX`` (entry ``"input"``), against finite differences.

    Parameters
    ----------
    model : object
        With ``forward(X, training=...)``, ``backward(dL_dpred) -> dL_dX``, ``params()`` and ``grads()``
        (dicts of live arrays named like ``W_0``). If it has ``perturbed_losses`` it is used for the
        single-entry perturbations (``use_fast_path=False`` to disable).
    X : ndarray of shape (n_samples, ...)
        Inputs; never modified. Float32 inputs are promoted to float64 for the numerical side when
        the model accepts it.
    y : ndarray
        Targets passed to ``loss_fn``.
    loss_fn : object, optional
        With ``forward(pred, y) -> float`` and ``backward(pred, y) -> dL/dpred``. Omitted (seed 001's
        protocol): the model must have ``compute_loss(y_hat, y)`` and ``backward(y)`` returning a dict
        of gradients keyed by attribute names (``{'W1': dW1, 'b1': db1, ...}``); the arrays
        ``model.W1``... are then checked (no ``"input"`` entry), ``forward(X)`` may lack ``training``.
    eps : float, optional
        Absolute finite-difference step (default: chosen per entry from the dtype and ``|x_i|``).
        ``epsilon=`` (seed 001) and ``h=`` are accepted as other names for it.
    atol, rtol : float, optional
        Explicit tolerance: an entry passes if ``|a-n| <= atol`` or ``|a-n|/(|a|+|n|) <= rtol``.
    **options
        ``method``, ``mode`` ("full", "sample", "fast"), ``k``, ``seed``/``rng``, ``training`` (passed to
        ``forward``, default True), ``check_input``, ``use_fast_path``, ``promote``, ``raise_on_failure``,
        ``upcast`` (default False: temporarily replace float32 arrays in each ``layer.params`` dict by
        float64 copies for the numerical side; validated, undone in ``finally``), ``error_cutoff``
        (seed 001: an explicit threshold on each tensor's relative error ``||a-n||/(||a||+||n||)``; a
        tensor passes if and only if it is at most ``error_cutoff``, replacing the automatic per-entry
        verdict), ``verbose`` (True: also print the report to stdout).

    Returns
    -------
    ModelReport
        One :class:`GradientReport` per parameter (named as ``params()`` names them) and ``"input"``.
    """
    if _is_number(loss_fn):
        raise TypeError(
            f"gradient_check: the 4th argument is loss_fn, got the number {loss_fn!r}; pass steps and thresholds by "
            "keyword: gradient_check(model, X, y, epsilon=1e-5, error_cutoff=1e-7) (seed 001's positional "
            "epsilon, error_cutoff) or gradient_check(model, X, y, loss_fn, eps=...)")
    if loss_fn is None:
        given = {k: v for k, v in (("eps", eps), ("atol", atol), ("rtol", rtol)) if v is not None}
        return _compute_loss_check(model, X, y, {**options, **given})
    opts = _options(options, eps=eps, atol=atol, rtol=rtol)
    model = _as_model(model)
    loss_fn = _as_loss(loss_fn)
    X = np.asarray(X)
    if X.dtype.kind in "fc":
        _float_array(X, "X")
    params = model.params()
    if not isinstance(params, Mapping):
        raise TypeError(f"model.params() must return a dict name -> ndarray; got {type(params).__name__}")
    for nm, p in params.items():
        if not isinstance(p, np.ndarray):
            raise TypeError(f"model.params()[{nm!r}] must be a NumPy array; got {type(p).__name__}")
        _float_array(p, f"model.params()[{nm!r}]")
    p_guard = _Restorer(list(params.values()))
    swaps: list[tuple[dict, str, np.ndarray]] = []
    g_before = _safe_grads(model)
    g_guard = _Restorer(list(g_before.values()))
    training = opts.training
    try:
        Xa = X.copy()
        pred = _layer_forward(model, Xa, training)
        mutated_parts = []
        if not _same_bits(Xa, X):
            mutated_parts.append("X")
        changed = p_guard.changed()
        if changed:
            names = list(params)
            mutated_parts.append("params " + ", ".join(repr(names[i]) for i in changed))
            p_guard.restore()
        mutated = " and ".join(mutated_parts) if mutated_parts else None
        first = loss_fn.forward(pred, y)
        if isinstance(first, (tuple, list)) and first and _is_number(first[0]):
            loss_fn = _FirstItemLoss(loss_fn)  # forward returns (loss, ...): its first item is the loss
            first = first[0]
        loss0, _ = to_scalar(first, "loss_fn.forward")
        dpred = loss_fn.backward(pred, y)
        dX = model.backward(dpred)
        grads = model.grads()
        missing = [k for k in params if k not in grads]
        if missing:
            raise ValueError(f"model.grads() has no entry for parameter(s) {missing}; names: {list(grads)}")
        analytic = {k: (np.asarray(grads[k]).copy(), grads[k]) for k in params}
        if mutated is not None:
            p_guard.restore()

        # numerical side: promote X to float64 when the model then computes in float64
        Xe = X.copy() if X.dtype.kind == "f" else X
        pred_dt = np.asarray(pred).dtype if np.asarray(pred).dtype.kind == "f" else None
        extra_forwards = 0
        if opts.promote and X.dtype.kind == "f" and X.dtype.itemsize < 8:
            try:
                X64 = X.astype(np.float64)
                extra_forwards += 1
                pr = np.asarray(_layer_forward(model, X64.copy(), training))
                if pr.dtype == np.float64:
                    Xe = X64
                    pred_dt = pr.dtype
            except Exception:  # noqa: BLE001 - the model refuses float64 inputs
                pass
            if mutated is not None:
                p_guard.restore()
        eval_eps = eps_of(coarser_dtype(pred_dt))

        upcast_note: Optional[str] = None
        if opts.upcast and mutated is None:
            params, swaps, upcast_note = _upcast(model, params, analytic, Xe, y, loss_fn, training)
            if swaps:
                extra_forwards += 2 + len(swaps)
                pred_up = np.asarray(_layer_forward(model, Xe.copy(), training))
                eval_eps = eps_of(coarser_dtype(pred_up.dtype if pred_up.dtype.kind == "f" else None))

        targets = []
        transposed: set[str] = set()
        fast_ok = opts.use_fast_path and callable(getattr(model, "perturbed_losses", None)) and mutated is None
        for nm, p in params.items():
            g, tr = _grad_array(analytic[nm][0], f"model.grads()[{nm!r}]", p.shape, f"parameter {nm!r}")
            if tr:
                transposed.add(nm)
            ea, adt = _grad_eps(analytic[nm][0])
            fast = None
            if fast_ok:
                def fast(idx: np.ndarray, steps: np.ndarray, _nm: str = nm) -> np.ndarray:
                    return model.perturbed_losses(_nm, idx, steps, Xe, y, loss_fn)
            targets.append(Target(nm, p, g, eval_eps, ea, fast=fast, analytic_dtype=adt))
        if (opts.check_input and isinstance(dX, np.ndarray) and dX.shape == X.shape
                and X.dtype.kind == "f" and dX.dtype.kind in "fiu" and np.all(np.isfinite(dX))):
            ea, adt = _grad_eps(dX)
            targets.append(Target("input", Xe, dX.astype(np.float64), eval_eps, ea, analytic_dtype=adt))

        def loss() -> Any:
            return loss_fn.forward(_layer_forward(model, Xe, training), y)

        checked = [t.name for t in targets]

        def regrad() -> dict[str, np.ndarray]:
            # the claimed gradients at the current live arrays (the multi-kink test's nearby points)
            dx = model.backward(loss_fn.backward(_layer_forward(model, Xe, training), y))
            return _claimed_now(model.grads(), dx, checked, params, "model.grads()[{!r}]", "parameter {!r}")

        batch = int(X.shape[0]) if X.ndim >= 1 else None
        dp = np.asarray(dpred) if isinstance(dpred, (np.ndarray, np.generic, float)) else None
        up = float(np.max(np.abs(dp))) if dp is not None and dp.size and dp.dtype.kind in "fiu" else 0.0
        up = max(up, _upstream_rounding_scale(pred, y, batch))
        report = _live_check(targets, loss, opts, title="gradient check", mutated=mutated,
                             batch_size=batch, transposed=transposed, upstream=up, regrad=regrad)
        report.n_evals += extra_forwards
        if upcast_note:
            report.notes.append(upcast_note)
    except NonScalarObjective as exc:
        raise TypeError(str(exc)) from None
    finally:
        _undo_upcast(swaps)
        p_guard.restore()
        g_guard.restore()
        _restore_grads(model, g_before)
    return _finish(report, opts)


def _claimed_now(now: Mapping[str, Any], dx: Any, checked: Sequence[str], params: Mapping[str, np.ndarray],
                 grad_arg: str, param_what: str) -> dict[str, np.ndarray]:
    """The claimed gradients after a fresh backward pass, for ``regrad`` (the multi-kink test).

    Parameters
    ----------
    now : mapping of str to array
        The model's (or layer's) gradients after the backward pass; ``now[nm]`` of the shape of
        ``params[nm]`` (or its transpose / up to axes of length 1, as :func:`_grad_array` accepts).
    dx : array of the input's shape
        The input gradient the backward pass returned; becomes entry ``"input"`` if it is checked.
    checked : sequence of str
        The names of the checked targets (``"input"`` included when the input gradient is checked).
    params : mapping of str to ndarray
        The live parameters (their shapes).
    grad_arg, param_what : str
        Format strings with one ``{!r}`` for the name, used in error messages
        (``"model.grads()[{!r}]"``, ``"parameter {!r}"``).

    Returns
    -------
    dict of str to ndarray of float64
    """
    out = {nm: _grad_array(now[nm], grad_arg.format(nm), params[nm].shape, param_what.format(nm))[0]
           for nm in checked if nm != "input"}
    if "input" in checked:
        out["input"] = np.asarray(dx, dtype=np.float64)
    return out


def _upstream_rounding_scale(pred: Any, y: Any, batch: Optional[int]) -> float:
    """The size ``dL/dpred`` would have without cancellation: ``(max|pred| + max|y|) / N``.

    ``dL/dpred`` is often a difference (``2 (pred - y) / N`` of a mean squared error, ``p - onehot``): when
    it cancels, ``|dL/dpred|`` is small but its round-off is that of its terms, and the backward pass
    carries it into every gradient. Integer labels count as 1 (the one-hot scale). 0 when unknown.
    """
    try:
        pv = np.asarray(pred)
        yv = np.asarray(y)
    except Exception:  # noqa: BLE001 - an exotic prediction or target: no scale
        return 0.0
    if pv.dtype.kind != "f" or not pv.size or not batch:
        return 0.0
    ys = float(np.max(np.abs(yv))) if yv.dtype.kind == "f" and yv.size else 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        scale = (float(np.max(np.abs(pv))) + ys) / batch
    return scale if np.isfinite(scale) else 0.0


def _compute_loss_check(model: Any, X: Any, y: Any, options: dict[str, Any]) -> ModelReport:
    """``gradient_check(model, X, y)`` without ``loss_fn``: seed 001's protocol.

    ``model.forward(X)`` (with ``training=`` when it takes it), ``model.compute_loss(y_hat, y)`` and
    ``model.backward(y)`` returning ``{attribute name: gradient}``; the parameters are the model's
    attributes of those names (live arrays, perturbed in place and restored), checked by
    :func:`check_params`. Gradient keys may also be spelled ``dW1``, ``grad_W1``... for ``W1``.
    """
    if not callable(getattr(model, "compute_loss", None)):
        raise TypeError(
            f"gradient_check: loss_fn is missing and {type(model).__name__} has no compute_loss(y_hat, y); pass the "
            "loss as the 4th argument, e.g. gradient_check(model, X, y, CrossEntropyLoss()) (an object with "
            "forward(pred, y) and backward(pred, y)); without loss_fn the model must have compute_loss(y_hat, y) "
            "and backward(y) returning a dict of gradients keyed by attribute names, e.g. {'W1': dW1, 'b1': db1}")
    _require(model, "model", ("forward", "backward"))
    _options(options)  # validate before running the model
    training = options.get("training", True)
    X = np.asarray(X)
    _layer_forward(model, X, training)
    claimed = model.backward(y)
    if not isinstance(claimed, Mapping) or not claimed:
        raise TypeError(
            f"gradient_check without loss_fn: model.backward(y) must return a non-empty dict {{attribute name: "
            f"gradient}} such as {{'W1': dW1, 'b1': db1}}; got {type(claimed).__name__}")
    arrays = {k: v for k, v in getattr(model, "__dict__", {}).items()
              if isinstance(v, np.ndarray) and v.dtype.kind == "f"}
    params: dict[str, np.ndarray] = {}
    grads: dict[str, Any] = {}
    keys: dict[str, Any] = {}
    for key, g in claimed.items():
        name = key if isinstance(getattr(model, str(key), None), np.ndarray) else next(
            (a for a in arrays if key in _grad_names(a)[1:]), None)
        if name is None:
            raise ValueError(
                f"model.backward(y) returned a gradient named {key!r} but {type(model).__name__} has no array "
                f"attribute {key!r} (nor one it is the gradient of, like W1 for dW1); its array attributes: "
                f"{sorted(arrays)}")
        params[name] = getattr(model, name)
        grads[name] = np.array(g, copy=True)
        keys[name] = key

    def loss() -> Any:
        return model.compute_loss(_layer_forward(model, X, training), y)

    first = [True]

    def grads_now() -> dict[str, Any]:
        # the claimed gradients at the current attributes (the multi-kink test's nearby points)
        if first[0]:
            first[0] = False
            return grads
        _layer_forward(model, X, training)
        g_now = model.backward(y)
        return {nm: np.array(g_now[k], copy=True) for nm, k in keys.items()}

    return check_params(loss, params, grads_now, **options)


# ---------------------------------------------------------------------------------------------------
# check_layers
# ---------------------------------------------------------------------------------------------------
def check_layers(model: Any, X: Any, **options: Any) -> LayersReport:
    """Check each layer of ``model.layers`` in isolation and name the first faulty one.

    Each layer gets the activations the network produces at that point and a random upstream
    gradient ``dy`` (standard normal, from ``seed``/``rng``); its parameters and its input gradient are
    checked for ``L = sum(layer.forward(x) * dy)``.

    Parameters
    ----------
    model : object with ``layers`` (list of objects following the layer protocol), or that list itself
    X : ndarray of shape (n_samples, ...)
    **options
        As for :func:`gradient_check`.

    Returns
    -------
    LayersReport
        ``report.first_faulty`` is the index of the first failing layer (None if all pass);
        ``str(report)`` starts with e.g. ``layer 2 (Dense): W wrong, ...``.
    """
    opts = _options(options)
    layers = model if isinstance(model, (list, tuple)) else getattr(model, "layers", None)
    if layers is None or not hasattr(layers, "__iter__"):
        raise TypeError(f"model must have a 'layers' list (or be a list of layers); {type(model).__name__} has none")
    X = _float_array(X, "X")
    rng = opts.generator()
    act = X.copy()
    results: list[tuple[int, str, ModelReport]] = []
    for i, layer in enumerate(layers):
        _require(layer, f"model.layers[{i}]", ("forward", "backward"))
        lparams = _layer_dict(layer, ("params", "parameters"))
        guard = _Restorer([p for p in lparams.values() if isinstance(p, np.ndarray)])
        g_before = {k: v for k, v in _layer_dict(layer, ("grads", "gradients")).items() if isinstance(v, np.ndarray)}
        g_guard = _Restorer(list(g_before.values()))
        try:
            xin = act.copy()
            out = np.asarray(_layer_forward(layer, xin, opts.training))
            dy = rng.standard_normal(out.shape)
            xa = act.copy()
            _layer_forward(layer, xa, opts.training)
            dx = _layer_backward(layer, xa, dy)
            lgrads = _layer_dict(layer, ("grads", "gradients"))
            targets = []
            transposed: set[str] = set()
            # the objective runs the layer on xe (float64 when promoted): its output's dtype sets the
            # evaluation precision (float32-sized steps on a float64 evaluation cross ReLU kinks)
            xe = act.astype(np.float64) if opts.promote else act.copy()
            out_e = np.asarray(_layer_forward(layer, xe.copy(), opts.training))
            eval_eps = eps_of(coarser_dtype(out_e.dtype if out_e.dtype.kind == "f" else None))
            # the analytic side ran the layer on the unpromoted input: its gradients carry the round-off of
            # that forward pass (a float32 layer's dx is float64 when dy is, but computed from float32)
            fwd_dt = coarser_dtype(out.dtype if out.dtype.kind == "f" else None)

            def analytic_eps(g: Any) -> tuple[float, str]:
                ea, adt = _grad_eps(g)
                return (eps_of(fwd_dt), str(fwd_dt)) if eps_of(fwd_dt) > ea else (ea, adt)

            with np.errstate(over="ignore", invalid="ignore"):
                lscale = float(np.sum(np.abs(out_e.astype(np.float64) * dy))) if out_e.shape == dy.shape else 0.0
            for nm, p in lparams.items():
                if nm not in lgrads:
                    raise ValueError(f"model.layers[{i}].grads has no entry {nm!r} after backward")
                g, tr = _grad_array(np.asarray(lgrads[nm]).copy(), f"model.layers[{i}].grads[{nm!r}]",
                                    p.shape, f"model.layers[{i}].params[{nm!r}]")
                if tr:
                    transposed.add(nm)
                ea, adt = analytic_eps(lgrads[nm])
                targets.append(Target(nm, p, g, eval_eps, ea, analytic_dtype=adt))
            if isinstance(dx, np.ndarray) and dx.shape == act.shape and np.all(np.isfinite(dx)):
                ea, adt = analytic_eps(dx)
                targets.append(Target("input", xe, dx.astype(np.float64), eval_eps, ea, analytic_dtype=adt))

            def loss(layer: Any = layer, xe: np.ndarray = xe, dy: np.ndarray = dy) -> float:
                return float(np.sum(np.asarray(_layer_forward(layer, xe, opts.training), dtype=np.float64) * dy))

            def regrad(layer: Any = layer, xe: np.ndarray = xe, dy: np.ndarray = dy, i: int = i,
                       checked: tuple = tuple(t.name for t in targets),
                       lparams: dict = lparams) -> dict[str, np.ndarray]:
                # the layer's claimed gradients at the current live arrays (the multi-kink test)
                xr = xe.copy()
                _layer_forward(layer, xr, opts.training)
                dxr = _layer_backward(layer, xr, dy)
                return _claimed_now(_layer_dict(layer, ("grads", "gradients")), dxr, checked, lparams,
                                    f"model.layers[{i}].grads[{{!r}}]", f"model.layers[{i}].params[{{!r}}]")

            rep = _live_check(targets, loss, opts, title=f"layer {i} ({type(layer).__name__})", mutated=None,
                              batch_size=int(act.shape[0]) if act.ndim else None,
                              transposed=transposed, what="layer output", regrad=regrad,
                              lscale=lscale if np.isfinite(lscale) else 0.0)
        finally:
            guard.restore()
            g_guard.restore()
        results.append((i, type(layer).__name__, rep))
        act = np.asarray(_layer_forward(layer, act.copy(), opts.training))
    if opts.error_cutoff is not None:
        for _, _, rep in results:
            _apply_cutoff(rep, float(opts.error_cutoff))
    return _finish(LayersReport(results), replace(opts, error_cutoff=None))  # the cutoff applies per layer
