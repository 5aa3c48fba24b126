"""Weight initialisers, looked up by name in :data:`INITIALIZERS`.

Every initialiser has the signature ``f(n_in, n_out, rng, dtype, scale) -> ndarray of shape
(n_in, n_out)`` and draws only from the explicit ``rng`` (a :class:`numpy.random.Generator`).
``scale`` multiplies the standard deviation / bound (a gain; default 1) except for ``"normal"``,
where it *is* the standard deviation (default 0.01). Biases are always initialised to zeros.

=====================================  ==============================================
name                                   distribution
=====================================  ==============================================
``xavier``, ``glorot``,                normal, std ``sqrt(2 / (n_in + n_out))``
``xavier_normal``, ``glorot_normal``
``xavier_uniform``, ``glorot_uniform`` uniform on ``[-a, a]``, ``a = sqrt(6 / (n_in + n_out))``
``he``, ``he_normal``                  normal, std ``sqrt(2 / n_in)``
``he_uniform``                         uniform on ``[-a, a]``, ``a = sqrt(6 / n_in)``
``normal``                             normal, std ``scale`` (default 0.01)
``zeros``                              all zeros
=====================================  ==============================================
"""

from __future__ import annotations

import numbers
from typing import Callable

import numpy as np

__all__ = [
    "INITIALIZERS",
    "get_initializer",
    "initialize",
    "xavier_normal",
    "xavier_uniform",
    "he_normal",
    "he_uniform",
    "normal",
    "zeros",
    "make_rng",
]

Initializer = Callable[[int, int, np.random.Generator, np.dtype, "float | None"], np.ndarray]


def make_rng(rng: np.random.Generator | None = None, seed: int | np.random.SeedSequence | None = None, *,
             owner: str = "rng") -> np.random.Generator:
    """Return the Generator to use from the ``rng=`` / ``seed=`` pair of a public function or class.

    The one place where verigrad turns these arguments into a generator (``verigrad.data`` uses it
    too): global NumPy random state is never used.

    Parameters
    ----------
    rng : numpy.random.Generator, optional
        Used as is (shared with the caller: drawing from it advances the caller's stream).
    seed : int or numpy.random.SeedSequence, optional
        Seed of a new ``np.random.default_rng(seed)``.
    owner : str
        Name of the caller, used in error messages.

    Returns
    -------
    numpy.random.Generator
        ``rng`` if given, else ``default_rng(seed)`` (a fresh unseeded generator when ``seed`` is None).

    Raises
    ------
    ValueError
        Both ``rng`` and ``seed`` were given.
    TypeError
        ``rng`` is not a Generator (e.g. the legacy ``RandomState`` or an int), or ``seed`` is neither
        an int nor a SeedSequence.
    """
    if rng is not None and seed is not None:
        raise ValueError(f"{owner}: pass either rng= or seed=, not both (got rng={rng!r} and seed={seed!r})")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            hint = " (for an integer seed use seed=)" if isinstance(rng, numbers.Integral) else ""
            raise TypeError(f"{owner}: rng must be a numpy.random.Generator such as np.random.default_rng(0), "
                            f"got {type(rng).__name__}{hint}")
        return rng
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"{owner}: seed must be an int, a numpy.random.SeedSequence or None, "
                        f"got {type(seed).__name__} {seed!r}")
    return np.random.default_rng(None if seed is None else int(seed))


def xavier_normal(n_in: int, n_out: int, rng: np.random.Generator, dtype: np.dtype = np.float64,
                  scale: float | None = None) -> np.ndarray:
    """Glorot normal: ``W ~ N(0, s**2)`` with ``s = gain * sqrt(2 / (n_in + n_out))``.

    Returns
    -------
    ndarray of shape (n_in, n_out)
    """
    gain = 1.0 if scale is None else float(scale)
    std = gain * np.sqrt(2.0 / (n_in + n_out))
    return (rng.standard_normal((n_in, n_out)) * std).astype(dtype, copy=False)


def xavier_uniform(n_in: int, n_out: int, rng: np.random.Generator, dtype: np.dtype = np.float64,
                   scale: float | None = None) -> np.ndarray:
    """Glorot uniform: ``W ~ U(-a, a)`` with ``a = gain * sqrt(6 / (n_in + n_out))``.

    Returns
    -------
    ndarray of shape (n_in, n_out)
    """
    gain = 1.0 if scale is None else float(scale)
    a = gain * np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype, copy=False)


def he_normal(n_in: int, n_out: int, rng: np.random.Generator, dtype: np.dtype = np.float64,
              scale: float | None = None) -> np.ndarray:
    """He (Kaiming) normal: ``W ~ N(0, s**2)`` with ``s = gain * sqrt(2 / n_in)``.

    Returns
    -------
    ndarray of shape (n_in, n_out)
    """
    gain = 1.0 if scale is None else float(scale)
    std = gain * np.sqrt(2.0 / n_in)
    return (rng.standard_normal((n_in, n_out)) * std).astype(dtype, copy=False)


def he_uniform(n_in: int, n_out: int, rng: np.random.Generator, dtype: np.dtype = np.float64,
               scale: float | None = None) -> np.ndarray:
    """He (Kaiming) uniform: ``W ~ U(-a, a)`` with ``a = gain * sqrt(6 / n_in)``.

    Returns
    -------
    ndarray of shape (n_in, n_out)
    """
    gain = 1.0 if scale is None else float(scale)
    a = gain * np.sqrt(6.0 / n_in)
    return rng.uniform(-a, a, size=(n_in, n_out)).astype(dtype, copy=False)


def normal(n_in: int, n_out: int, rng: np.random.Generator, dtype: np.dtype = np.float64,
           scale: float | None = None) -> np.ndarray:
    """Plain normal: ``W ~ N(0, scale**2)``, ``scale`` defaulting to 0.01.

    Returns
    -------
    ndarray of shape (n_in, n_out)
    """
    std = 0.01 if scale is None else float(scale)
    return (rng.standard_normal((n_in, n_out)) * std).astype(dtype, copy=False)


def zeros(n_in: int, n_out: int, rng: np.random.Generator, dtype: np.dtype = np.float64,
          scale: float | None = None) -> np.ndarray:
    """All zeros (draws nothing from ``rng``).

    Returns
    -------
    ndarray of shape (n_in, n_out)
    """
    return np.zeros((n_in, n_out), dtype=dtype)


#: name -> initialiser function.
INITIALIZERS: dict[str, Initializer] = {
    "xavier": xavier_normal,
    "glorot": xavier_normal,
    "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal,
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform,
    "he": he_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "normal": normal,
    "zeros": zeros,
}


def get_initializer(name: str) -> Initializer:
    """Look an initialiser up by name (case-insensitive).

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"init must be a name ({', '.join(INITIALIZERS)}), got {type(name).__name__}")
    fn = INITIALIZERS.get(name.lower())
    if fn is None:
        raise ValueError(f"unknown init {name!r}; valid names are: {', '.join(INITIALIZERS)}")
    return fn


def initialize(name: str, n_in: int, n_out: int, rng: np.random.Generator | None = None,
               seed: int | None = None, dtype: np.dtype = np.float64,
               scale: float | None = None) -> np.ndarray:
    """Draw a weight matrix of shape ``(n_in, n_out)`` with the initialiser called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`INITIALIZERS`.
    n_in, n_out : int
        Fan-in and fan-out.
    rng : numpy.random.Generator, optional
    seed : int, optional
        Used when ``rng`` is not given (neither: a fresh unseeded generator).
    dtype : numpy dtype, default float64
    scale : float, optional
        Gain (std for ``"normal"``).

    Returns
    -------
    ndarray of shape (n_in, n_out)
    """
    fn = get_initializer(name)
    return fn(n_in, n_out, make_rng(rng, seed, owner="initialize"), np.dtype(dtype), scale)
