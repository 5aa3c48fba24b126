"""Mini-batch loading and small synthetic data sets for verigrad.

Everything random here draws from an explicit :class:`numpy.random.Generator`: pass
``rng=`` (a Generator you own) or ``seed=`` (an int); with neither, a fresh unseeded
``np.random.default_rng()`` is used. Global NumPy random state is never touched.

Contents
--------
DataLoader         iterable of shuffled ``(xb, yb)`` mini-batches, reshuffled every epoch
make_blobs         Gaussian clouds, one per centre (seed 004: two clouds at (-2, 0) and (2, 0))
make_quadratic     seed 001's regression set: ``x ~ U(-1, 1)^2``, ``y = x1^2 + x2^2``
make_moons         two interleaving half circles (non-linear 2-D demo)
make_spirals       ``n_classes`` interleaved spiral arms (non-linear 2-D demo)
train_test_split   random (optionally stratified) split into train and test parts
load_digits        scikit-learn's bundled 8x8 digits, pixels scaled to [0, 1] (extra ``digits``)
one_hot            integer labels -> one-hot matrix
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from verigrad.nn.init import make_rng

__all__ = [
    "DataLoader",
    "load_digits",
    "make_blobs",
    "make_moons",
    "make_quadratic",
    "make_spirals",
    "one_hot",
    "train_test_split",
]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _check_positive_int(value: Any, name: str, owner: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {value}")
    return int(value)


def _check_nonneg_float(value: Any, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number >= 0, got {type(value).__name__} {value!r}")
    value = float(value)
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value}")
    return value


def _generator_args(owner: str, n_samples: Any, minimum: int, spread: Any, spread_name: str,
                    rng: np.random.Generator | None, seed: int | None) -> tuple[int, float, np.random.Generator]:
    """Validated ``(n_samples, spread, generator)`` of a synthetic data set (the common arguments)."""
    n = _check_positive_int(n_samples, "n_samples", owner, minimum=minimum)
    s = _check_nonneg_float(spread, spread_name, owner)
    return n, s, make_rng(rng, seed, owner=owner)


def _split_counts(n: int, k: int) -> list[int]:
    """Split ``n`` into ``k`` near-equal parts, the remainder going to the first parts."""
    base, extra = divmod(n, k)
    return [base + (1 if i < extra else 0) for i in range(k)]


def _rows(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[idx]`` (a copy); ``take`` gathers rows of 2-D+ arrays several times faster for small batches."""
    return a.take(idx, axis=0) if a.ndim > 1 else a[idx]


# ---------------------------------------------------------------------------------------------
# DataLoader
# ---------------------------------------------------------------------------------------------
def _is_pair(X: Any) -> bool:
    """Whether ``X`` is a tuple ``(X, y)`` of two arrays (``TensorDataset`` style; rows are checked later)."""
    if not (isinstance(X, tuple) and len(X) == 2):
        return False
    return all(len(getattr(a, "shape", ())) >= 1 for a in X)


class DataLoader:
    """Iterate over mini-batches of ``(X, y)``, reshuffled at the start of every epoch.

    Each ``for xb, yb in loader`` is one epoch: with ``shuffle=True`` a new permutation
    of ``range(n_samples)`` is drawn from the loader's own Generator, and consecutive
    slices of ``batch_size`` indices form the batches, so every sample appears exactly
    once per epoch (except the dropped tail with ``drop_last=True``).

    Parameters
    ----------
    X : array_like of shape (n_samples, ...), or a tuple ``(X, y)``
        Inputs; the first axis indexes samples. Not copied (batches are fancy-indexed
        copies when shuffling, views when not). A tuple of two arrays, with ``y``
        omitted, is read as ``(X, y)`` (torch's ``TensorDataset``).
    y : array_like of shape (n_samples, ...), optional
        Targets (labels, one-hot rows, regression values). When None the loader yields
        ``xb`` alone instead of ``(xb, yb)``.
    batch_size : int, default 32
        Samples per batch (the last batch may be smaller unless ``drop_last``). A value
        larger than ``n_samples`` gives a single full batch.
    shuffle : bool, default True
        Draw a new permutation every epoch; False keeps the original order.
    drop_last : bool, default False
        Drop the last incomplete batch.
    rng : numpy.random.Generator, optional
        Generator used for the permutations (shared with the caller).
    seed : int, optional
        Seed for a private ``np.random.default_rng(seed)``; with neither ``rng`` nor
        ``seed`` a fresh unseeded Generator is used.

    Attributes
    ----------
    X, y : ndarray
        The data as arrays.
    n_samples : int
        ``len(X)``.

    Examples
    --------
    >>> X, y = make_blobs(400, seed=0)
    >>> loader = DataLoader(X, y, batch_size=32, seed=0)
    >>> len(loader)
    13
    >>> xb, yb = next(iter(loader))
    >>> xb.shape, yb.shape
    ((32, 2), (32,))
    """

    def __init__(
        self,
        X: Any,
        y: Any = None,
        batch_size: int = 32,
        shuffle: bool = True,
        drop_last: bool = False,
        rng: np.random.Generator | None = None,
        seed: int | None = None,
    ) -> None:
        if y is None and _is_pair(X):
            X, y = X  # torch style: DataLoader(TensorDataset(X, y)) translated as DataLoader((X, y))
        X = np.asarray(X)
        if X.ndim == 0:
            raise ValueError(f"DataLoader: X must have a samples axis (shape (n_samples, ...)), got a scalar {X!r}")
        if X.shape[0] == 0:
            raise ValueError(f"DataLoader: X is empty (shape {X.shape}); need at least one sample")
        if y is not None:
            y = np.asarray(y)
            if y.ndim == 0:
                raise ValueError(f"DataLoader: y must have a samples axis (shape (n_samples, ...)), got a scalar {y!r}")
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"DataLoader: X and y must have the same number of samples, got len(X) = "
                                 f"{X.shape[0]} (shape {X.shape}) and len(y) = {y.shape[0]} (shape {y.shape})")
        self.batch_size = _check_positive_int(batch_size, "batch_size", "DataLoader")
        self.X = X
        self.y = y
        self.n_samples = int(X.shape[0])
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self._rng = make_rng(rng, seed, owner="DataLoader")
        if self.drop_last and self.n_samples < self.batch_size:
            raise ValueError(f"DataLoader: drop_last=True with batch_size={self.batch_size} > n_samples="
                             f"{self.n_samples} would give no batches at all")

    def __len__(self) -> int:
        """Number of batches per epoch: ``floor(n / batch_size)`` with drop_last, else ``ceil``."""
        if self.drop_last:
            return self.n_samples // self.batch_size
        return -(-self.n_samples // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        n, bs = self.n_samples, self.batch_size
        stop = (n // bs) * bs if self.drop_last else n
        X, y = self.X, self.y
        if self.shuffle:
            order = self._rng.permutation(n)
            for start in range(0, stop, bs):
                idx = order[start:start + bs]
                yield _rows(X, idx) if y is None else (_rows(X, idx), _rows(y, idx))
        else:
            for start in range(0, stop, bs):
                sl = slice(start, start + bs)
                yield X[sl] if y is None else (X[sl], y[sl])

    def __repr__(self) -> str:
        return (f"DataLoader(n_samples={self.n_samples}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, n_batches={len(self)})")


# ---------------------------------------------------------------------------------------------
# synthetic data sets
# ---------------------------------------------------------------------------------------------
def make_blobs(
    n_samples: int = 400,
    centers: Sequence[Sequence[float]] = ((-2.0, 0.0), (2.0, 0.0)),
    std: float = 1.0,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic Gaussian clouds, one class per centre (seed 004's two-cloud data set).

    Class ``k`` holds ``x = c_k + std * z`` with ``z ~ N(0, I)``. ``n_samples`` is split
    evenly between the classes, the remainder going to the first classes (odd ``n`` with two
    centres: class 0 gets the extra point). Rows are ordered by class (class 0 first), as
    in the seed; a shuffling :class:`DataLoader` mixes them.

    Parameters
    ----------
    n_samples : int, default 400
        Total number of points (>= number of centres).
    centers : array_like of shape (n_classes, n_features), default ((-2, 0), (2, 0))
        Cloud centres.
    std : float, default 1.0
        Standard deviation of every coordinate.
    rng, seed
        Random source (see :func:`make_rng`).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int64
        Class index of each row.
    """
    c = np.asarray(centers, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        raise ValueError(f"make_blobs: centers must have shape (n_classes, n_features), got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("make_blobs: centers must be finite")
    k = c.shape[0]
    n, s, gen = _generator_args("make_blobs", n_samples, k, std, "std", rng, seed)
    counts = _split_counts(n, k)
    X = np.concatenate([c[i] + s * gen.standard_normal((counts[i], c.shape[1])) for i in range(k)])
    y = np.repeat(np.arange(k, dtype=np.int64), counts)
    return X, y


def make_quadratic(
    n_samples: int = 20,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seed 001's regression set: ``x1, x2 ~ U(-1, 1)`` and ``y = x1^2 + x2^2``.

    Parameters
    ----------
    n_samples : int, default 20
        Number of points.
    rng, seed
        Random source (see :func:`make_rng`).

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples, 1), float64
        ``y[i, 0] = X[i, 0]**2 + X[i, 1]**2`` (a column, as a 1-output network predicts).
    """
    n = _check_positive_int(n_samples, "n_samples", "make_quadratic")
    gen = make_rng(rng, seed, owner="make_quadratic")
    X = gen.uniform(-1.0, 1.0, size=(n, 2))
    y = np.sum(X * X, axis=1, keepdims=True)
    return X, y


def make_moons(
    n_samples: int = 200,
    noise: float = 0.1,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (not linearly separable).

    Class 0: ``(cos t, sin t)``; class 1: ``(1 - cos t, 0.5 - sin t)``, ``t`` evenly
    spaced in ``[0, pi]``; Gaussian noise of standard deviation ``noise`` is added to
    every coordinate. Odd ``n_samples`` gives the extra point to class 0.

    Parameters
    ----------
    n_samples : int, default 200
        Total number of points (>= 2).
    noise : float, default 0.1
        Standard deviation of the added Gaussian noise.
    rng, seed
        Random source (see :func:`make_rng`).

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
    """
    n, s, gen = _generator_args("make_moons", n_samples, 2, noise, "noise", rng, seed)
    n0, n1 = _split_counts(n, 2)
    t0 = np.linspace(0.0, np.pi, n0)
    t1 = np.linspace(0.0, np.pi, n1)
    outer = np.column_stack([np.cos(t0), np.sin(t0)])
    inner = np.column_stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)])
    X = np.concatenate([outer, inner]) + s * gen.standard_normal((n, 2))
    y = np.repeat(np.array([0, 1], dtype=np.int64), [n0, n1])
    return X, y


def make_spirals(
    n_samples: int = 300,
    n_classes: int = 3,
    noise: float = 0.2,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``n_classes`` interleaved spiral arms (the CS231n spiral data set).

    Arm ``k`` has radius ``r`` evenly spaced in ``[0, 1]`` and angle
    ``theta = 4 k + 4 r + noise * z`` (``z ~ N(0, 1)``), giving the point
    ``(r sin theta, r cos theta)``. ``n_samples`` is split evenly between the arms,
    the remainder going to the first arms.

    Parameters
    ----------
    n_samples : int, default 300
        Total number of points (>= n_classes).
    n_classes : int, default 3
        Number of arms / classes (>= 2).
    noise : float, default 0.2
        Standard deviation of the angular noise (radians).
    rng, seed
        Random source (see :func:`make_rng`).

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
    """
    k = _check_positive_int(n_classes, "n_classes", "make_spirals", minimum=2)
    n, s, gen = _generator_args("make_spirals", n_samples, k, noise, "noise", rng, seed)
    parts = []
    for cls, m in enumerate(_split_counts(n, k)):
        r = np.linspace(0.0, 1.0, m)
        theta = 4.0 * cls + 4.0 * r + s * gen.standard_normal(m)
        parts.append(np.column_stack([r * np.sin(theta), r * np.cos(theta)]))
    X = np.concatenate(parts)
    y = np.repeat(np.arange(k, dtype=np.int64), _split_counts(n, k))
    return X, y


# ---------------------------------------------------------------------------------------------
# splitting, labels, real data
# ---------------------------------------------------------------------------------------------
def train_test_split(
    X: Any,
    y: Any,
    test_size: float | int = 0.25,
    rng: np.random.Generator | None = None,
    seed: int | None = None,
    stratify: bool | Any = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Randomly split ``(X, y)`` into a training part and a test part.

    Parameters
    ----------
    X : array_like of shape (n_samples, ...)
    y : array_like of shape (n_samples, ...)
    test_size : float in (0, 1) or int, default 0.25
        Fraction of samples (rounded up, as scikit-learn does) or number of samples in the
        test part; both parts must end up non-empty.
    rng, seed
        Random source (see :func:`make_rng`).
    stratify : bool or array_like of shape (n_samples,), default False
        ``True``: keep the class proportions of ``y`` (labels, a label column or one-hot rows)
        in both parts;
        an array: stratify by those labels instead; ``False``: plain random split.

    Returns
    -------
    X_train : ndarray of shape (n_samples - n_test, ...)
    X_test : ndarray of shape (n_test, ...)
    y_train : ndarray of shape (n_samples - n_test, ...)
    y_test : ndarray of shape (n_test, ...)
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"train_test_split: X and y need a samples axis, got shapes {X.shape} and {y.shape}")
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"train_test_split: X and y must have the same number of samples, got len(X) = {n} "
                         f"and len(y) = {y.shape[0]}")
    if n < 2:
        raise ValueError(f"train_test_split: need at least 2 samples to split, got {n}")
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"train_test_split: test_size must be a float in (0, 1) or an int, got "
                        f"{type(test_size).__name__} {test_size!r}")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
    else:
        if not 0.0 < float(test_size) < 1.0:
            raise ValueError(f"train_test_split: a float test_size must lie in (0, 1), got {test_size}")
        n_test = math.ceil(float(test_size) * n)
    if not 1 <= n_test <= n - 1:
        raise ValueError(f"train_test_split: test_size={test_size!r} gives {n_test} test samples out of {n}; "
                         f"both parts must be non-empty (1 <= n_test <= {n - 1})")
    gen = make_rng(rng, seed, owner="train_test_split")

    if stratify is False or stratify is None:
        perm = gen.permutation(n)
        test_idx, train_idx = perm[:n_test], perm[n_test:]
    else:
        labels = y if stratify is True else np.asarray(stratify)
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        elif labels.ndim == 2 and labels.shape[0] == n:
            labels = labels.argmax(axis=1)  # one-hot rows
        if labels.ndim != 1 or labels.shape[0] != n:
            raise ValueError(f"train_test_split: stratify needs one label per sample (shape ({n},)), "
                             f"got shape {labels.shape}")
        classes, inverse = np.unique(labels, return_inverse=True)
        groups = [np.flatnonzero(inverse == c) for c in range(classes.size)]
        exact = np.array([g.size * n_test / n for g in groups])
        take = np.floor(exact).astype(np.int64)
        # hand the remaining test slots to the classes with the largest fractional parts
        order = np.argsort(-(exact - take), kind="stable")
        take[order[: n_test - int(take.sum())]] += 1
        test_parts, train_parts = [], []
        for g, t in zip(groups, take):
            g = gen.permutation(g)
            test_parts.append(g[:t])
            train_parts.append(g[t:])
        test_idx = gen.permutation(np.concatenate(test_parts))
        train_idx = gen.permutation(np.concatenate(train_parts))
    return X[train_idx], X[test_idx], y[train_idx], y[test_idx]


def one_hot(y: Any, n_classes: int | None = None, dtype: Any = np.float64) -> np.ndarray:
    """Integer class labels to a one-hot matrix.

    ``Y[i, j] = 1`` if ``y[i] == j`` else ``0``.

    Parameters
    ----------
    y : array_like of shape (n_samples,) or (n_samples, 1)
        Integer labels in ``[0, n_classes)`` (integral floats such as ``2.0`` are accepted).
    n_classes : int, optional
        Number of columns; default ``max(y) + 1``.
    dtype : dtype, default float64
        dtype of the result.

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
    """
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(f"one_hot: y must be a 1-D array of integer labels (shape (n_samples,)), "
                         f"got shape {labels.shape}")
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels) | (labels != np.round(labels))
        if np.any(bad):
            raise ValueError(f"one_hot: y must hold integer labels, got non-integral values such as "
                             f"{labels[bad][:3].tolist()}")
        labels = labels.astype(np.int64)
    elif labels.dtype.kind == "b":
        labels = labels.astype(np.int64)
    elif labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: y must hold integer labels, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"one_hot: labels must be >= 0, got min(y) = {labels.min()}")
    max_label = int(labels.max()) if labels.size else -1
    if n_classes is None:
        n_classes = max_label + 1
    else:
        n_classes = _check_positive_int(n_classes, "n_classes", "one_hot")
        if max_label >= n_classes:
            raise ValueError(f"one_hot: label {max_label} is out of range for n_classes={n_classes} "
                             f"(labels must lie in [0, {n_classes - 1}])")
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes).

    Needs scikit-learn (``pip install "verigrad[digits]"``); no download happens, the data
    ship with scikit-learn.

    Returns
    -------
    X : ndarray of shape (1797, 64), float64
        Pixel intensities scaled from 0..16 to [0, 1] (``X = pixels / 16``), rows are the
        flattened 8x8 images.
    y : ndarray of shape (1797,), int64
        Digit 0..9.

    Raises
    ------
    ImportError
        scikit-learn is not installed; the message names the extra to install.
    """
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as exc:  # pragma: no cover - exercised with a monkeypatched import
        raise ImportError('load_digits needs scikit-learn, which is not installed: '
                          'pip install "verigrad[digits]"  (or: pip install scikit-learn)') from exc
    bunch = _sk_load_digits()
    X = np.asarray(bunch.data, dtype=np.float64) / 16.0
    y = np.asarray(bunch.target, dtype=np.int64)
    return X, y
