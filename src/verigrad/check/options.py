"""Options of the checker's entry points: the :class:`Options` record, their validation, their aliases.

Every entry point of :mod:`verigrad.check.api` takes ``**options``; :func:`_options` turns them into one
frozen :class:`Options`, refusing unknown names and bad values with messages naming the option, and
accepts ``epsilon=`` / ``h=`` as other names for ``eps=``. ``METHODS`` and ``MODES`` list the valid
``method=`` and ``mode=`` values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np


METHODS = ("auto", "central", "complex", "richardson")


MODES = ("full", "sample", "fast")


@dataclass(frozen=True)
class Options:
    """Options shared by every entry point (see :func:`check_gradients` for their meaning)."""

    method: str = "auto"
    mode: str = "full"
    eps: Optional[float] = None
    atol: Optional[float] = None
    rtol: Optional[float] = None
    k: int = 64
    seed: Optional[int] = None
    rng: Optional[np.random.Generator] = None
    probe: Optional[bool] = None
    raise_on_failure: bool = False
    batch_size: Optional[int] = None
    use_fast_path: bool = True
    directions: int = 3
    training: bool = True
    check_input: bool = True
    promote: bool = True
    upcast: bool = False
    name: Optional[str] = None
    error_cutoff: Optional[float] = None
    verbose: bool = False

    def generator(self) -> np.random.Generator:
        if self.rng is not None:
            return self.rng
        return np.random.default_rng(0 if self.seed is None else self.seed)


_OPTION_NAMES = tuple(Options.__dataclass_fields__)


#: other spellings of ``eps``: ``epsilon`` (seed 001), ``h`` (seed 002's original package)
_EPS_ALIASES = ("epsilon", "h")


def _options(options: dict[str, Any], **fixed: Any) -> Options:
    options = dict(options)
    for alias in _EPS_ALIASES:
        if alias in options:
            if "eps" in options or fixed.get("eps") is not None:
                raise TypeError(f"{alias}= is another name for eps= (the finite-difference step); give only one of them")
            options["eps"] = options.pop(alias)
    unknown = sorted(set(options) - set(_OPTION_NAMES))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown}; valid options: {list(_OPTION_NAMES)}")
    merged = dict(options)
    merged.update({k: v for k, v in fixed.items() if v is not None})
    opts = Options(**merged)
    if opts.method not in METHODS:
        raise ValueError(f"method={opts.method!r} is not valid; choose one of {list(METHODS)}")
    if opts.mode not in MODES:
        raise ValueError(f"mode={opts.mode!r} is not valid; choose one of {list(MODES)}")
    for nm in ("eps", "atol", "rtol", "error_cutoff"):
        v = getattr(opts, nm)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise TypeError(f"{nm} must be a number; got {type(v).__name__}")
        if not np.isfinite(v) or (v <= 0 if nm == "eps" else v < 0):
            expected = "> 0" if nm == "eps" else ">= 0"
            raise ValueError(f"{nm} must be finite and {expected}; got {v!r}")
    if isinstance(opts.k, bool) or not isinstance(opts.k, (int, np.integer)) or opts.k < 1:
        raise ValueError(f"k must be a positive integer (entries to sample); got {opts.k!r}")
    if isinstance(opts.directions, bool) or not isinstance(opts.directions, (int, np.integer)) or opts.directions < 1:
        raise ValueError(f"directions must be a positive integer; got {opts.directions!r}")
    if opts.rng is not None and not isinstance(opts.rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator; got {type(opts.rng).__name__}")
    if opts.batch_size is not None and (not isinstance(opts.batch_size, (int, np.integer)) or opts.batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer; got {opts.batch_size!r}")
    return opts
