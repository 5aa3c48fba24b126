"""``verigrad.torch.check``: verify the gradients torch autograd computes for ``fn``.

:func:`check` protects the modules ``fn`` holds (:mod:`verigrad.torch.safety`) around :func:`_check`,
which validates the arguments, runs the analytic side (torch autograd on copies in the original dtype,
:mod:`verigrad.torch.backward` when torch refuses the backward), then checks each tensor with
:func:`verigrad.check.check_gradients` on float64 copies and assembles one report
(:mod:`verigrad.torch.findings`). The design is described in :mod:`verigrad.torch`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from verigrad.torch.backward import _grads_by_backward, _invalid_gradient, _swapped
from verigrad.torch.findings import _annotate, _mutation_report
from verigrad.torch.safety import (
    _deepcopy_module,
    _held_grad_tensors,
    _held_modules,
    _module_state,
    _restore_module_state,
)
from verigrad.torch.tensors import (
    TorchCheckError,
    _call,
    _call_args,
    _checker,
    _concat,
    _flatten,
    _fresh,
    _grad_numpy,
    _make_dLdfs,
    _max_change,
    _numeric_copy,
    _outputs,
    _same_values,
    _selecting,
    _Target,
    _to_numpy,
    _upcasting,
    _vjp,
)

if TYPE_CHECKING:  # pragma: no cover
    from verigrad.check.report import ModelReport


def _input_names(n: int, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [f"input{i}" for i in range(n)]
    if isinstance(names, str) or len(names) != n:
        raise ValueError(
            f"names must be a sequence of {n} strings (one per input), got {names!r}"
        )
    out = [str(s) for s in names]
    if len(set(out)) != n:
        raise ValueError(f"names must be distinct, got {out!r}")
    return out


def check(
    fn: Callable[..., torch.Tensor],
    *inputs: torch.Tensor,
    dLdf: Any = None,
    seed: int | None = 0,
    rng: np.random.Generator | None = None,
    wrt: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    double: bool | None = None,
    method: str = "central",
    num_threads: int | None = 1,
    probe: bool = False,
    output: int | Callable[[Any], torch.Tensor] | None = None,
    **options: Any,
) -> ModelReport:
    """Check the gradients torch autograd computes for ``fn`` against finite differences.

    Every input tensor with ``requires_grad=True`` is checked and, when ``fn`` is a
    :class:`torch.nn.Module`, every trainable parameter. With the upstream gradient :math:`G` = ``dLdf``
    the checked scalar is :math:`L = \\sum f(\\text{inputs}) \\odot G`, so the analytic gradient of an
    input :math:`x` is torch's vector-Jacobian product :math:`G^\\top \\partial f / \\partial x`.

    Parameters
    ----------
    fn : callable
        A differentiable torch callable: a function of tensors, a custom Function's ``.apply``, or an
        ``nn.Module``. It returns one floating-point tensor ``f`` of any shape, or a (nested) tuple,
        list or dict of tensors: its floating-point tensors :math:`f_1, f_2, \\ldots` are then checked
        together, :math:`L = \\sum_k \\sum f_k \\odot G_k` (integer outputs such as indices are skipped;
        select a single output with ``output``).
    *inputs : torch.Tensor or any
        The positional arguments of ``fn``. Tensors with ``requires_grad=True`` are checked (see
        ``wrt``); other arguments (a constant, ``None`` for an optional bias, a flag) are passed to every
        call unchanged, as ``Function.apply`` receives them. NumPy arrays are refused (convert them with
        ``torch.from_numpy``). A checked tensor reaches ``fn`` as a non-leaf copy, so a Function that
        writes into its input and declares it (``ctx.mark_dirty``) is checked like any other.
    dLdf : tensor, ndarray or float, or a tuple of them, optional
        Upstream gradient :math:`G` of the same shape as ``f`` (a scalar is broadcast); one per output
        when ``fn`` returns several. By default a standard normal draw from ``rng`` (``1`` when ``f`` is
        a scalar, e.g. a loss), rounded to the output's dtype.
    seed : int or None, default 0
        Seed of the default ``rng`` and of the checker's sampling.
    rng : numpy.random.Generator, optional
        Generator for the random ``dLdf`` (default ``np.random.default_rng(seed)``).
    wrt : sequence of int, optional
        Positions of the inputs to check, overriding ``requires_grad``. They must be floating point.
    names : sequence of str, optional
        Names of the inputs in the report (default ``"input0"``, ``"input1"``, ...). Module parameters
        are named as ``named_parameters()`` names them.
    double : bool or None, default None
        Where the numerical side computes. ``True``: on float64 copies; if ``fn`` raises there (typically
        because it mixes the inputs with float32 tensors it closes over: data, labels, weights), again
        with every float32/16 tensor inside ``fn`` upcast to float64 (a torch function mode, noted in
        the report); :class:`TorchCheckError` if that fails too. ``False``: on copies in the original
        dtype (float32 finite differences are much less accurate). ``None``: as ``True``, then falling
        back to the original dtype with a :class:`UserWarning`; the report's ``torch_numeric_dtype``
        attribute says which was used.
    method : {"central", "richardson", "auto", "complex"}, default "central"
        Finite-difference method of :func:`verigrad.check.check_gradients`. Complex step needs ``fn``
        to accept complex tensors and be complex-analytic, which torch code rarely is: the checker
        validates it first and falls back to central differences (with a note).
    num_threads : int or None, default 1
        torch intra-op threads while the finite differences run (restored afterwards). Each evaluation
        is small, and on a busy machine handing a 1000-entry op to a second thread costs more than the
        op (measured: ``tanh`` of 40x30 float64 takes 14 us on one thread, 80-200 us on two). ``None``
        keeps torch's setting (better for a large module, where every evaluation is heavy).
    output : int or callable, optional
        Selects the checked tensor when ``fn`` returns several (``nn.LSTM`` returns
        ``(out, (h, c))``): an index (``output=0``) or a callable applied to the result
        (``output=lambda r: r[1][0]``). The module's parameters are still checked.
    probe : bool, default False
        Also check each tensor at the checker's probe points (the tensor scaled by 10 and by 0.1,
        shifted by 1, negated), recomputing torch's analytic gradient there: catches backward passes
        that are wrong only for large or negative inputs (a "saturated, return 0" shortcut). About 5
        times the work.
    **options
        Passed to :func:`verigrad.check.check_gradients` for every tensor: ``mode`` (``"full"``,
        ``"sample"``, ``"fast"``), ``k``, ``eps``, ``atol``, ``rtol``, ``batch_size`` (names a scale
        factor N in the diagnosis; default: the leading dimension of the first input with 2 or more
        dimensions, when larger than 2; pass ``batch_size=None`` to disable). ``raise_on_failure=True``
        raises :class:`verigrad.check.GradientCheckError` after the whole report is built. ``name`` is not
        supported (see ``names``).

    Returns
    -------
    ModelReport
        One entry per checked tensor, named ``input0``... and by parameter name. ``report.passed``,
        ``report.diagnosis.kind`` (``ok``, ``scale``, ``sign``, ``transpose``, ``partial``, ``zero``,
        ``kink``, ``precision``, ``mutates_input``, ``nondeterministic``, ``mismatch``), ``str(report)``.
        A backward returning the gradients in the wrong order is diagnosed ``mismatch`` with a message
        naming the swap (``details["gradient_of"]``, or ``details["returned_shape"]`` when torch refused
        the shape); a backward returning ``None`` for a checked input is judged as zeros, with a note.
        Extra attributes: ``torch_numeric_dtype`` (``"float64"`` or the original dtype) and
        ``torch_notes`` (list of str: fallbacks and mutation findings).

    Raises
    ------
    TypeError
        ``fn`` not callable, an input a NumPy array, no tensor input at all, a checked input not floating
        point, ``fn`` not returning a floating-point tensor (or a tuple holding one).
    TorchCheckError
        ``fn`` cannot be evaluated on the float64 copies (``double=True``), or its backward raised (e.g.
        a gradient of the wrong shape somewhere inside ``fn``; the message says which and why).
    ValueError
        Nothing to check (no input requires grad and no trainable parameter), bad ``wrt``/``names``/
        ``dLdf``.

    Notes
    -----
    The caller's tensors and module are left bit-identical, ``.grad`` fields included: autograd runs
    on detached copies (a deep copy for a module) and gradients are taken with
    :func:`torch.autograd.grad`, which never accumulates into ``.grad``. A module that ``fn`` runs
    without being it (``lambda x: model(x)``, ``model.forward``, a :func:`functools.partial`, a module
    in a closure or a global name ``fn`` uses) is evaluated in place, so its parameters, buffers (BatchNorm
    running statistics, ``num_batches_tracked``) and ``.grad`` fields are saved first and written back
    afterwards, also when ``fn`` raises (noted in the report when something changed). A ``fn`` whose
    forward or backward writes into its inputs, parameters or incoming gradient (``grad_output``)
    without telling autograd is reported as ``mutates_input``; one whose output changes between
    identical calls (dropout in training mode, unseeded noise) as ``nondeterministic``.

    Each tensor is checked by its own :func:`verigrad.check.check_gradients` call, so that the
    evaluation precision (float64) and the analytic gradient's precision (e.g. float32) are judged
    separately: a float32 backward is held to float32 round-off while the finite differences use
    float64-sized steps, which do not cross a ReLU kink that float32 round-off merely brushes.

    Examples
    --------
    >>> import torch
    >>> import verigrad.torch as vt
    >>> class Square(torch.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return g * x          # bug: the derivative of x**2 is 2x
    >>> x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    >>> report = vt.check(Square.apply, x)
    >>> report.passed, report.diagnosis.kind
    (False, 'scale')
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    >>> vt.check(model, torch.randn(8, 3)).passed      # float32 module, every parameter checked
    True
    """
    held = _held_modules(fn)
    saved = _module_state(held)
    try:
        report = _check(fn, inputs, dLdf, seed, rng, wrt, names, double, method, num_threads, probe, output, options)
    finally:
        restored = _restore_module_state(held, saved)
    if restored:
        note = (
            f"fn runs module(s) it holds ({', '.join(restored)}) whose state changed during the check "
            "(e.g. BatchNorm running statistics in training mode): restored"
        )
        report.torch_notes.append(note)
        if isinstance(getattr(report, "notes", None), list):
            report.notes.append(note)
    return report


def _validated_rng(fn: Callable[..., Any], seed: int | None, rng: np.random.Generator | None,
                   double: bool | None, output: Any, num_threads: int | None,
                   options: dict[str, Any]) -> np.random.Generator:
    """Check the arguments of :func:`check` that need no evaluation of ``fn`` (``name`` is removed from
    ``options``); return the generator of the default ``dLdf``."""
    if not callable(fn):
        raise TypeError(f"fn must be callable (a function, Function.apply or nn.Module), got {type(fn).__name__}")
    if rng is None:
        rng = np.random.default_rng(seed)
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if double not in (None, True, False):
        raise TypeError(f"double must be True, False or None, got {double!r}")
    if output is not None and not callable(output) and (
        isinstance(output, bool) or not isinstance(output, (int, np.integer))
    ):
        raise TypeError(f"output must be an index or a callable, got {output!r}")
    if num_threads is not None and (
        isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1
    ):
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    if options.get("name"):
        raise TypeError(
            f"option name={options['name']!r} is not supported by verigrad.torch.check (tensors are named "
            "by names= and by the module's parameter names)"
        )
    options.pop("name", None)
    return rng


def _checked_positions(inputs: tuple[Any, ...], wrt: Sequence[int] | int | None, input_names: list[str],
                       is_tensor: list[bool]) -> list[int]:
    """Positions of the checked inputs: ``wrt`` (validated) or the tensors requiring grad; all floating point."""
    if wrt is None:
        checked = [i for i, x in enumerate(inputs) if is_tensor[i] and x.requires_grad]
    else:
        if isinstance(wrt, int):
            wrt = [wrt]
        checked = []
        for i in wrt:
            if not isinstance(i, (int, np.integer)) or isinstance(i, bool) or not -len(inputs) <= i < len(inputs):
                raise ValueError(
                    f"wrt must hold input positions in range(0, {len(inputs)}), got {i!r}"
                )
            i = int(i) % len(inputs)
            if not is_tensor[i]:
                raise TypeError(
                    f"wrt names input {i} ({input_names[i]}), a {type(inputs[i]).__name__}: only tensors have "
                    "gradients to check (other arguments are passed to fn unchanged)"
                )
            if i not in checked:
                checked.append(i)
    for i in checked:
        x = inputs[i]
        if not x.is_floating_point():
            hint = (
                "complex gradients (Wirtinger calculus) are not supported; check the real and "
                "imaginary parts as two real inputs"
                if x.is_complex()
                else "integer and boolean inputs such as class labels have no gradient: leave them out of wrt"
            )
            raise TypeError(
                f"input {i} ({input_names[i]}) has dtype {x.dtype}: only floating-point tensors have "
                f"gradients to check; {hint}"
            )
    return checked


def _numeric_side(fn: Callable[..., Any], module: torch.nn.Module | None, inputs: tuple[Any, ...],  # noqa: PLR0913
                  is_tensor: list[bool], checked: list[int], param_names: list[str],
                  output: int | Callable[[Any], torch.Tensor] | None, double: bool | None,
                  out_shapes: list[tuple[int, ...]], notes: list[str],
                  ) -> tuple[Callable[..., Any], list[Any], dict[str, torch.Tensor], str]:
    """The copies the finite differences evaluate: ``(n_fn, n_inputs, n_params, numeric_dtype)``.

    Tries the tiers of ``double`` in turn (float64 copies; float64 copies with every coarser float tensor
    inside ``fn`` upcast; the original dtypes) with one trial evaluation each; appends a note on a fallback
    to ``notes`` (and warns for ``double=None`` falling back to the original dtype).
    """
    def build(double_: bool):
        n_inputs = [_numeric_copy(x, double_) if is_tensor[i] else x for i, x in enumerate(inputs)]
        if module is not None:
            n_module = _deepcopy_module(module).cpu()
            if double_:
                n_module = n_module.double()
            elif any(p.dtype == torch.bfloat16 for p in n_module.parameters()):
                n_module = n_module.float()
            return n_module, n_inputs, dict(n_module.named_parameters())
        return fn, n_inputs, {}

    numeric_dtype = "float64"
    # tiers: float64 copies; float64 copies with every coarser float tensor inside fn upcast (fn closes
    # over float32 data or weights); the original dtypes
    tiers = {True: ["float64", "upcast"], False: ["native"], None: ["float64", "upcast", "native"]}[double]
    failures: list[str] = []
    for tier in tiers:
        n_fn, n_inputs, n_params = build(tier != "native")
        n_fn = _selecting(n_fn, output)
        if tier == "upcast":
            n_fn = _upcasting(n_fn)
        where = "on native-dtype copies" if tier == "native" else "on the float64 copies"
        try:
            with torch.no_grad():
                trial = n_fn(*_fresh(n_inputs))
            if isinstance(trial, (torch.Tensor, tuple, list, dict)):
                trial_outs, _ = _outputs(trial, where)
                if [tuple(o.shape) for o in trial_outs] != out_shapes:
                    raise ValueError(
                        f"fn's output has shape(s) {out_shapes} on the original inputs but "
                        f"{[tuple(o.shape) for o in trial_outs]} on the copies"
                    )
        except Exception as exc:  # noqa: BLE001 - any failure of user code in float64 triggers the fallback
            failures.append(f"{type(exc).__name__}: {exc}")
            if tier != tiers[-1]:
                continue
            where = "native-dtype" if tier == "native" else "float64"
            raise TorchCheckError(
                f"fn raised when evaluated on {where} copies of its inputs: {failures[0]}"
            ) from exc
        if not isinstance(trial, (torch.Tensor, tuple, list, dict)):
            _outputs(trial, where)  # raises: fn returns no tensor at all (no fallback for that)
        if tier == "upcast":
            notes.append(
                "fn mixes the checked tensors with float32 tensors it holds (data or weights it closes over: "
                f"{failures[0]}); evaluated in float64 by upcasting every float tensor inside fn"
            )
        if tier == "native":
            dtypes = sorted({str(n_inputs[i].dtype).replace("torch.", "") for i in checked}
                            | {str(n_params[n].dtype).replace("torch.", "") for n in param_names})
            numeric_dtype = "/".join(dtypes)
            if double is None:
                msg = (
                    f"fn cannot run in float64 ({failures[0]}); finite differences computed in the "
                    f"original dtype {numeric_dtype}, which is much less accurate"
                )
                notes.append(msg)
                warnings.warn("verigrad.torch.check: " + msg, UserWarning, stacklevel=3)
        break
    return n_fn, n_inputs, n_params, numeric_dtype


def _check(fn: Callable[..., Any], inputs: tuple[Any, ...], dLdf: Any, seed: int | None,  # noqa: PLR0913
           rng: np.random.Generator | None, wrt: Sequence[int] | None, names: Sequence[str] | None,
           double: bool | None, method: str, num_threads: int | None, probe: bool,
           output: int | Callable[[Any], torch.Tensor] | None, options: dict[str, Any]) -> ModelReport:
    """:func:`check` (same arguments, ``options`` as a dict) without the protection of the modules ``fn``
    holds."""
    rng = _validated_rng(fn, seed, rng, double, output, num_threads, options)
    input_names = _input_names(len(inputs), names)
    is_tensor = [isinstance(x, torch.Tensor) for x in inputs]
    for i, x in enumerate(inputs):
        if isinstance(x, np.ndarray) or (not any(is_tensor) and i == 0):
            raise TypeError(
                f"input {i} ({input_names[i]}, positional argument {i + 1} after fn) is a {type(x).__name__}, "
                "expected a torch.Tensor"
                + (": convert it with torch.from_numpy(...)" if isinstance(x, np.ndarray) else
                   ": tensors inside a container are not checked, pass them as separate inputs, e.g. "
                   "check(lambda a, b: torch.cat([a, b]), a, b)"
                   if any(isinstance(o, torch.Tensor) for _, o in _flatten(x)) else
                   ": fn needs at least one tensor input to check")
                + " (numbers, None and other non-tensor arguments are passed to fn unchanged)"
            )

    checked = _checked_positions(inputs, wrt, input_names, is_tensor)

    module = fn if isinstance(fn, torch.nn.Module) else None
    param_names: list[str] = []
    if module is not None:
        for pname, p in module.named_parameters():
            if not p.requires_grad:
                continue
            if not p.is_floating_point():
                raise TypeError(f"parameter {pname!r} has dtype {p.dtype}: only floating-point parameters can be checked")
            if pname in input_names:
                raise ValueError(f"parameter name {pname!r} collides with an input name; pass names=")
            param_names.append(pname)
    held = list(_held_grad_tensors(fn))
    held += [
        f"inside {input_names[i]}, a {type(x).__name__}" for i, x in enumerate(inputs)
        if not is_tensor[i] and any(isinstance(o, torch.Tensor) and o.requires_grad for _, o in _flatten(x))
    ]
    held_hint = (
        f"fn uses tensor(s) requiring grad that are not among its inputs ({'; '.join(held)}): they are not "
        "checked; pass them as inputs to check them, e.g. check(lambda x, W: ..., x, W) or "
        "check(lambda a, b: torch.cat([a, b]), a, b)"
    ) if held else ""
    if not checked and not param_names:
        what = "fn is not an nn.Module" if module is None else "the module has no trainable parameter"
        n_t = f"{sum(is_tensor)} tensor" if not all(is_tensor) else f"{len(inputs)}"
        raise ValueError(
            f"nothing to check: none of the {n_t} inputs requires grad and {what}. "
            "Call x.requires_grad_() on the inputs to check, or pass wrt=[positions]."
            + (f" Note: {held_hint}." if held else "")
        )

    notes: list[str] = [held_hint] if held else []
    owner = getattr(fn, "__self__", None)
    if module is None and isinstance(owner, torch.nn.Module):
        notes.append(
            f"fn is a method of a {type(owner).__name__} module: only the inputs are checked, not its "
            "parameters; pass the module itself to check them"
        )

    # ---- analytic side: torch autograd on copies in the original dtypes
    a_inputs = [
        x.detach().clone().requires_grad_(i in checked) if is_tensor[i] else x for i, x in enumerate(inputs)
    ]
    a_module = _deepcopy_module(module) if module is not None else None
    a_fn = _selecting(a_module if a_module is not None else fn, output)
    a_params = dict(a_module.named_parameters()) if a_module is not None else {}
    orig_params = dict(module.named_parameters()) if module is not None else {}
    targets = [_Target(input_names[i], inputs[i], a_inputs[i]) for i in checked]
    targets += [_Target(n, orig_params[n], a_params[n]) for n in param_names]
    # fn receives non-leaf copies of the checked leaves, as inside a network: an in-place Function
    # (ctx.mark_dirty) or op may write into them, which torch refuses on a leaf that requires grad
    with torch.enable_grad():
        passed = _call_args(a_inputs)
    before_nodes = [a.grad_fn if isinstance(a, torch.Tensor) else None for a in passed]

    def mutated(stage: str, reference: list[Any], param_reference: dict[str, torch.Tensor]) -> list[str]:
        found = []
        for i, x in enumerate(reference):
            if is_tensor[i] and not _same_values(passed[i].detach(), x.detach()):
                if stage == "forward" and passed[i].requires_grad and passed[i].grad_fn is not before_nodes[i]:
                    notes.append(
                        f"fn writes into its argument {input_names[i]} in place, telling autograd "
                        "(ctx.mark_dirty or an in-place torch op): every evaluation gets a fresh copy"
                    )
                    found.append("declared")
                    continue
                if stage == "forward" and not passed[i].requires_grad:
                    notes.append(
                        f"fn writes into its argument {input_names[i]} in place (max change "
                        f"{_max_change(x, passed[i]):.3g}; e.g. nn.ReLU(inplace=True) on the input); it needs no "
                        "gradient, so this is no gradient bug, but your tensor changes when you call fn: every "
                        "evaluation here gets a fresh copy"
                    )
                    found.append("declared")
                    continue
                found.append(
                    f"the {stage} of fn writes into its argument {input_names[i]} in place "
                    f"(max change {_max_change(x, passed[i]):.3g})"
                )
        for n, p in a_params.items():
            if not _same_values(p.detach(), param_reference[n].detach()):
                found.append(
                    f"the {stage} of fn writes into parameter {n} in place "
                    f"(max change {_max_change(param_reference[n], p):.3g})"
                )
        return found

    with torch.enable_grad():
        outs, out_notes = _outputs(_call(a_fn, passed), "called on the inputs")
        notes.extend(out_notes)
        for k, out in enumerate(outs):
            finite = torch.isfinite(out.detach())
            if not bool(finite.all()):
                first = tuple(int(i) for i in torch.nonzero(~finite)[0]) if out.dim() else ()
                which = "" if len(outs) == 1 else f" {k}"
                raise ValueError(
                    f"fn's output{which} is not finite at the given inputs (first NaN/inf at index {first}); "
                    "a gradient check needs a finite output"
                )
        forward_found = mutated("forward", list(inputs), orig_params)
        mutation_notes = [n for n in forward_found if n != "declared"]
        after_forward = [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in passed]
        params_after_forward = {n: p.detach().clone() for n, p in a_params.items()}
        g_list = _make_dLdfs(dLdf, outs, rng)
        g_ts = [torch.tensor(g, dtype=o.dtype, device=o.device) for g, o in zip(g_list, outs)]  # copies
        g_before = [g.clone() for g in g_ts]
        live = [k for k, o in enumerate(outs) if o.requires_grad]
        forced: dict[str, Any] = {}
        if live:
            try:
                got = list(torch.autograd.grad(
                    [outs[k] for k in live], [t.analytic for t in targets],
                    grad_outputs=[g_ts[k] for k in live], allow_unused=True,
                ))
            except RuntimeError as exc:
                if "incompatible with .grad()" in str(exc):  # reentrant torch.utils.checkpoint
                    got = _grads_by_backward([outs[k] for k in live], [g_ts[k] for k in live], targets, fn)
                    notes.append(
                        "fn uses torch.utils.checkpoint(use_reentrant=True), which torch.autograd.grad refuses: "
                        "gradients taken with .backward() on the copies (every .grad written is restored)"
                        + ("; probe points skipped" if probe else "")
                    )
                    probe = False
                else:
                    got, forced = _invalid_gradient(exc, fn, outs, g_ts, inputs, checked, targets, input_names)
                    if probe:
                        probe = False  # torch refuses this backward's gradients at every point
                        notes.append("probe points skipped: torch refuses the gradients this backward returns")
        else:
            notes.append("fn's output does not depend on any checked tensor in torch's graph (no grad_fn)")
            got = [None] * len(targets)
        if live:
            for t, g in zip(targets, got):
                if g is None and t.name not in forced:
                    notes.append(
                        f"torch's backward returned no gradient (None) for {t.name}, judged as zeros: a "
                        "custom backward returning None for an input that requires grad (check the "
                        "ctx.needs_input_grad indices and the order of the returned gradients), or an "
                        "output that does not depend on it"
                    )
    mutation_notes += mutated("backward", after_forward, params_after_forward)
    for k, (g, g0) in enumerate(zip(g_ts, g_before)):
        if not _same_values(g, g0):
            which = "" if len(outs) == 1 else f" of output {k}"
            mutation_notes.append(
                f"the backward of fn writes into its incoming gradient{which} (grad_output) in place "
                f"(max change {_max_change(g0, g):.3g}): autograd may share that tensor with other branches "
                "of the graph; clone it first"
            )
    fresh = bool(forward_found)

    grads: dict[str, np.ndarray] = {}
    for t, g in zip(targets, got):
        grads[t.name] = _grad_numpy(g, t.analytic, t.name, notes)
        bad = ~np.isfinite(grads[t.name])
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.ndim else ()
            raise ValueError(
                f"torch's backward returned {int(bad.sum())} non-finite value(s) (NaN or inf) in the gradient "
                f"of {t.name}, first at index {first}: {grads[t.name][first]}; the output is finite, so a "
                "correct backward must be finite too (a division by zero or log(0) in the backward?)"
            )

    # ---- numerical side: float64 copies; the checker perturbs one tensor at a time
    n_fn, n_inputs, n_params, numeric_dtype = _numeric_side(
        fn, module, inputs, is_tensor, checked, param_names, output, double, [tuple(o.shape) for o in outs], notes
    )

    multi = len(outs) > 1

    def out_np(res: Any) -> np.ndarray:
        got_outs, _ = _outputs(res, "at a perturbed point", complex_ok=True)
        if not multi:
            return _to_numpy(got_outs[0])
        return _concat([_to_numpy(o) for o in got_outs])

    g_np = _concat(g_list) if multi else g_list[0]

    def for_input(i: int) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
        def f_np(w: np.ndarray) -> np.ndarray:
            args = _fresh(n_inputs) if fresh else list(n_inputs)
            args[i] = torch.from_numpy(w.copy() if fresh else w)
            return out_np(n_fn(*args))

        return f_np, n_inputs[i].numpy().copy()

    def for_param(name: str) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
        p = n_params[name]

        def f_np(w: np.ndarray) -> np.ndarray:
            p.copy_(torch.from_numpy(w))
            args = _fresh(n_inputs) if fresh else n_inputs
            return out_np(n_fn(*args))

        return f_np, p.detach().numpy().copy()

    def analytic_at(name: str) -> Callable[[np.ndarray], np.ndarray]:
        """The torch analytic gradient of ``name`` at another point (for the checker's probes)."""
        def grad_at(w: np.ndarray) -> np.ndarray:
            with torch.enable_grad():
                args = [x.detach().clone() if is_tensor[j] else x for j, x in enumerate(inputs)]
                if name in positions:
                    i = positions[name]
                    leaf = torch.from_numpy(np.asarray(w)).to(dtype=inputs[i].dtype, device=inputs[i].device)
                    leaf.requires_grad_(True)
                    args[i] = leaf.clone()
                    return _grad_numpy(_vjp(a_fn(*args), leaf, g_ts), leaf, name, [])
                leaf = a_params[name]
                saved = leaf.detach().clone()
                try:
                    with torch.no_grad():
                        leaf.copy_(torch.from_numpy(np.asarray(w)).to(dtype=leaf.dtype, device=leaf.device))
                    return _grad_numpy(_vjp(a_fn(*args), leaf, g_ts), leaf, name, [])
                finally:
                    with torch.no_grad():
                        leaf.copy_(saved)

        return grad_at

    check_gradients, ModelReport = _checker()
    positions = {input_names[i]: i for i in checked}
    options.setdefault("seed", seed)
    if "batch_size" not in options:
        # the conventional batch axis: lets the diagnosis name a factor N ("missing 1/N")
        lead = [int(x.shape[0]) for i, x in enumerate(inputs) if is_tensor[i] and x.dim() >= 2]
        if lead and lead[0] > 2:
            options["batch_size"] = lead[0]
    if numeric_dtype != "float64":
        options["promote"] = False  # fn cannot run in float64: do not let the checker try
    raise_on_failure = bool(options.pop("raise_on_failure", False))
    reports: dict[str, Any] = {}
    n_evals = 0
    threads_before = torch.get_num_threads()
    try:
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        with torch.no_grad():
            for t in targets:
                if t.name in positions:
                    f_np, x0 = for_input(positions[t.name])
                else:
                    f_np, x0 = for_param(t.name)
                claimed = analytic_at(t.name) if probe and t.name not in forced else grads[t.name]
                rep = check_gradients(f_np, claimed, x0, dLdf=g_np, method=method, name=t.name,
                                      probe=probe and t.name not in forced, **options)
                if t.name not in positions:
                    n_params[t.name].copy_(torch.from_numpy(x0))
                if t.name in forced:
                    rep.diagnosis = forced[t.name]
                reports[t.name] = rep
                n_evals += rep.n_evals
    finally:
        if torch.get_num_threads() != threads_before:
            torch.set_num_threads(threads_before)
    _swapped(reports)
    first = next(iter(reports.values()))
    report = ModelReport(reports, method=first.method, mode=first.mode, n_evals=n_evals,
                         title="gradient check", notes=[])
    if not report.passed and report.diagnosis.kind == "nondeterministic":
        training = [m for m in ([module] if module is not None else _held_modules(fn)) if m.training]
        if training:
            notes.append(
                f"{', '.join(type(m).__name__ for m in training)} is in training mode, where Dropout, "
                "spectral_norm's power iteration and the like change the output at every call: check "
                "model.eval() for the gradients of the deterministic function"
            )
    _annotate(report, fn, numeric_dtype, notes)
    if mutation_notes:
        report = _mutation_report(report, mutation_notes)
    if raise_on_failure and not report.passed:
        from verigrad.check.report import GradientCheckError

        raise GradientCheckError(report)
    return report
