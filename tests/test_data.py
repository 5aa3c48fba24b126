"""Tests for verigrad.data: DataLoader, synthetic data sets, splitting, one-hot, digits."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from verigrad.data import (
    DataLoader,
    load_digits,
    make_blobs,
    make_moons,
    make_quadratic,
    make_spirals,
    make_rng,
    one_hot,
    train_test_split,
)


# ---------------------------------------------------------------------------------------------
# DataLoader
# ---------------------------------------------------------------------------------------------
@given(n=st.integers(1, 60), bs=st.integers(1, 70), shuffle=st.booleans(), seed=st.integers(0, 2**31))
def test_every_sample_once_per_epoch(n, bs, shuffle, seed):
    X = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    y = np.arange(n)
    loader = DataLoader(X, y, batch_size=bs, shuffle=shuffle, seed=seed)
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == len(loader) == -(-n // bs)
        ys = np.concatenate([yb for _, yb in batches])
        assert np.array_equal(np.sort(ys), np.arange(n))
        for xb, yb in batches:
            assert xb.shape[0] == yb.shape[0] <= bs
            # rows travel with their labels
            assert np.array_equal(xb[:, 0], yb * 3.0)
        assert all(xb.shape[0] == bs for xb, _ in batches[:-1])


@given(n=st.integers(1, 60), bs=st.integers(1, 60))
def test_drop_last(n, bs):
    X = np.arange(n, dtype=np.float64)[:, None]
    if bs > n:
        with pytest.raises(ValueError, match="drop_last"):
            DataLoader(X, batch_size=bs, drop_last=True)
        return
    loader = DataLoader(X, batch_size=bs, drop_last=True, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == n // bs
    assert all(b.shape == (bs, 1) for b in batches)
    seen = np.concatenate(batches)[:, 0]
    assert len(np.unique(seen)) == (n // bs) * bs


def test_multidimensional_rows_stay_paired():
    X = np.arange(10 * 2 * 3, dtype=np.float32).reshape(10, 2, 3)
    Y = one_hot(np.arange(10) % 4, 4)
    for xb, yb in DataLoader(X, Y, batch_size=3, seed=1):
        rows = (xb[:, 0, 0] // 6).astype(int)
        assert xb.dtype == np.float32 and xb.shape[1:] == (2, 3) and yb.shape[1:] == (4,)
        assert np.array_equal(xb, X[rows]) and np.array_equal(yb, Y[rows])


def test_y_none_yields_arrays():
    X = np.arange(10.0).reshape(5, 2)
    out = list(DataLoader(X, batch_size=2, shuffle=False))
    assert [b.shape for b in out] == [(2, 2), (2, 2), (1, 2)]
    assert np.array_equal(np.concatenate(out), X)


def test_no_shuffle_keeps_order():
    X = np.arange(7.0)[:, None]
    y = np.arange(7)
    ys = np.concatenate([yb for _, yb in DataLoader(X, y, batch_size=3, shuffle=False)])
    assert np.array_equal(ys, y)


def test_reshuffles_each_epoch_and_is_deterministic():
    X = np.arange(100.0)[:, None]
    a = DataLoader(X, batch_size=100, seed=3)
    b = DataLoader(X, batch_size=100, seed=3)
    e1a, e2a = next(iter(a)), next(iter(a))
    e1b, e2b = next(iter(b)), next(iter(b))
    assert np.array_equal(e1a, e1b) and np.array_equal(e2a, e2b)
    assert not np.array_equal(e1a, e2a)
    assert not np.array_equal(e1a[:, 0], np.arange(100.0))
    c = DataLoader(X, batch_size=100, seed=4)
    assert not np.array_equal(next(iter(c)), e1a)


def test_rng_is_shared_with_caller():
    X = np.arange(50.0)[:, None]
    rng = np.random.default_rng(7)
    first = next(iter(DataLoader(X, batch_size=50, rng=rng)))[:, 0]
    assert np.array_equal(first, np.random.default_rng(7).permutation(50).astype(float))


def test_unseeded_loaders_differ():
    X = np.arange(200.0)[:, None]
    a = next(iter(DataLoader(X, batch_size=200)))
    b = next(iter(DataLoader(X, batch_size=200)))
    assert not np.array_equal(a, b)


def test_loader_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError, match=r"len\(X\) = 5.*len\(y\) = 4"):
        DataLoader(np.zeros((5, 2)), np.zeros(4))


@pytest.mark.parametrize("bs", [0, -3])
def test_loader_bad_batch_size_value(bs):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.zeros((5, 2)), batch_size=bs)


@pytest.mark.parametrize("bs", [2.5, "4", True, None])
def test_loader_bad_batch_size_type(bs):
    with pytest.raises(TypeError, match="batch_size"):
        DataLoader(np.zeros((5, 2)), batch_size=bs)


def test_loader_empty_and_scalar():
    with pytest.raises(ValueError, match="empty"):
        DataLoader(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="samples axis"):
        DataLoader(np.float64(3.0))


def test_loader_rng_and_seed_errors():
    with pytest.raises(ValueError, match="not both"):
        DataLoader(np.zeros((5, 2)), rng=np.random.default_rng(0), seed=1)
    with pytest.raises(TypeError, match="seed="):
        DataLoader(np.zeros((5, 2)), rng=3)
    with pytest.raises(TypeError, match="Generator"):
        DataLoader(np.zeros((5, 2)), rng=np.random.RandomState(0))
    with pytest.raises(TypeError, match="seed"):
        make_rng(seed=1.5)


# ---------------------------------------------------------------------------------------------
# synthetic data sets
# ---------------------------------------------------------------------------------------------
@given(n=st.integers(2, 300), seed=st.integers(0, 1000))
def test_blobs_shapes_and_class_split(n, seed):
    X, y = make_blobs(n, seed=seed)
    assert X.shape == (n, 2) and X.dtype == np.float64
    assert y.shape == (n,) and y.dtype == np.int64
    n0 = int(np.sum(y == 0))
    assert n0 == n - n // 2 and int(np.sum(y == 1)) == n // 2


def test_blobs_centres_and_spread():
    X, y = make_blobs(4000, centers=((-2.0, 0.0), (2.0, 0.0), (0.0, 5.0)), std=0.5, seed=0)
    for k, c in enumerate(((-2.0, 0.0), (2.0, 0.0), (0.0, 5.0))):
        pts = X[y == k]
        # standard error of the mean is 0.5 / sqrt(1333) ~ 0.014
        np.testing.assert_allclose(pts.mean(axis=0), c, atol=0.07)
        np.testing.assert_allclose(pts.std(axis=0), 0.5, rtol=0.08)


def test_blobs_deterministic_and_seed_dependent():
    a = make_blobs(50, seed=1)
    b = make_blobs(50, seed=1)
    c = make_blobs(50, seed=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_blobs_std_zero_gives_centres():
    X, y = make_blobs(6, centers=((1.0, 2.0), (3.0, 4.0)), std=0.0, seed=0)
    np.testing.assert_array_equal(X[y == 0], np.tile([1.0, 2.0], (3, 1)))
    np.testing.assert_array_equal(X[y == 1], np.tile([3.0, 4.0], (3, 1)))


def test_blobs_bad_input():
    with pytest.raises(ValueError, match="centers"):
        make_blobs(10, centers=(1.0, 2.0))
    with pytest.raises(ValueError, match="n_samples"):
        make_blobs(1)
    with pytest.raises(ValueError, match="std"):
        make_blobs(10, std=-1.0)


def test_quadratic():
    X, y = make_quadratic(seed=0)
    assert X.shape == (20, 2) and y.shape == (20, 1)
    assert np.all(X >= -1.0) and np.all(X < 1.0)
    np.testing.assert_allclose(y[:, 0], X[:, 0] ** 2 + X[:, 1] ** 2, rtol=1e-15)
    X2, _ = make_quadratic(20, seed=0)
    assert np.array_equal(X, X2)


@given(n=st.integers(2, 200))
def test_moons_noise_free_geometry(n):
    X, y = make_moons(n, noise=0.0, seed=0)
    assert X.shape == (n, 2) and y.shape == (n,)
    assert np.sum(y == 0) == n - n // 2
    r0 = np.hypot(X[y == 0, 0], X[y == 0, 1])
    r1 = np.hypot(X[y == 1, 0] - 1.0, X[y == 1, 1] - 0.5)
    np.testing.assert_allclose(r0, 1.0, rtol=1e-12)
    np.testing.assert_allclose(r1, 1.0, rtol=1e-12)
    assert np.all(X[y == 0, 1] >= -1e-12) and np.all(X[y == 1, 1] <= 0.5 + 1e-12)


@given(n=st.integers(3, 200), k=st.integers(2, 5))
def test_spirals_shapes_and_radii(n, k):
    if n < k:
        return
    X, y = make_spirals(n, n_classes=k, noise=0.0, seed=0)
    assert X.shape == (n, 2) and y.dtype == np.int64
    counts = np.bincount(y, minlength=k)
    assert counts.sum() == n and counts.max() - counts.min() <= 1
    for c in range(k):
        r = np.hypot(X[y == c, 0], X[y == c, 1])
        np.testing.assert_allclose(r, np.linspace(0.0, 1.0, counts[c]), atol=1e-12)


def test_spirals_and_moons_noise_moves_points():
    a, _ = make_spirals(90, noise=0.0, seed=0)
    b, _ = make_spirals(90, noise=0.2, seed=0)
    assert not np.allclose(a, b)
    c, _ = make_moons(90, noise=0.1, seed=0)
    d, _ = make_moons(90, noise=0.1, seed=0)
    assert np.array_equal(c, d)


# ---------------------------------------------------------------------------------------------
# train_test_split
# ---------------------------------------------------------------------------------------------
@given(n=st.integers(2, 100), frac=st.floats(0.05, 0.95), seed=st.integers(0, 100))
def test_split_partitions(n, frac, seed):
    X = np.arange(n, dtype=float)[:, None]
    y = np.arange(n)
    n_test = int(np.ceil(frac * n))
    if not 1 <= n_test <= n - 1:
        with pytest.raises(ValueError, match="test_size"):
            train_test_split(X, y, test_size=frac, seed=seed)
        return
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=frac, seed=seed)
    assert len(yte) == n_test and len(ytr) == n - n_test
    assert np.array_equal(np.sort(np.concatenate([ytr, yte])), y)
    assert np.array_equal(Xtr[:, 0], ytr.astype(float)) and np.array_equal(Xte[:, 0], yte.astype(float))


def test_split_stratified_keeps_proportions():
    y = np.repeat([0, 1, 2], [60, 30, 10])
    X = np.arange(100.0)[:, None]
    _, _, ytr, yte = train_test_split(X, y, test_size=0.2, seed=0, stratify=True)
    assert np.array_equal(np.bincount(yte), [12, 6, 2])
    assert np.array_equal(np.bincount(ytr), [48, 24, 8])


@given(counts=st.lists(st.integers(1, 30), min_size=1, max_size=5), frac=st.floats(0.1, 0.9),
       seed=st.integers(0, 100))
def test_split_stratified_property(counts, frac, seed):
    y = np.repeat(np.arange(len(counts)), counts)
    n = y.size
    n_test = int(np.ceil(frac * n))
    if not 1 <= n_test <= n - 1:
        return
    X = np.arange(n, dtype=float)[:, None]
    _, Xte, _, yte = train_test_split(X, one_hot(y), test_size=frac, seed=seed, stratify=True)
    assert len(yte) == n_test
    got = np.bincount(yte.argmax(axis=1), minlength=len(counts))
    # every class gets its share of the test part up to rounding
    assert np.all(np.abs(got - np.array(counts) * n_test / n) < 1.0)
    assert np.array_equal(y[Xte[:, 0].astype(int)], yte.argmax(axis=1))


def test_split_int_test_size_and_errors():
    X, y = np.zeros((10, 2)), np.zeros(10)
    assert train_test_split(X, y, test_size=3, seed=0)[1].shape == (3, 2)
    with pytest.raises(ValueError, match=r"len\(X\) = 10 and len\(y\) = 9"):
        train_test_split(X, y[:9])
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(X, y, test_size=1.5)
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(X, y, test_size=10)
    with pytest.raises(ValueError, match="stratify"):
        train_test_split(X, y, stratify=np.zeros(3))


# ---------------------------------------------------------------------------------------------
# one_hot and digits
# ---------------------------------------------------------------------------------------------
@given(st.lists(st.integers(0, 6), min_size=1, max_size=30))
def test_one_hot_roundtrip(labels):
    y = np.array(labels)
    Y = one_hot(y, 7)
    assert Y.shape == (len(labels), 7) and Y.dtype == np.float64
    assert np.array_equal(Y.sum(axis=1), np.ones(len(labels)))
    assert np.array_equal(Y.argmax(axis=1), y)
    assert one_hot(y).shape[1] == y.max() + 1


def test_one_hot_errors():
    with pytest.raises(ValueError, match="out of range"):
        one_hot([0, 3], 3)
    with pytest.raises(ValueError, match=">= 0"):
        one_hot([0, -1])
    with pytest.raises(ValueError, match="integer labels"):
        one_hot([0.5, 1.0])
    with pytest.raises(ValueError, match="1-D"):
        one_hot(np.zeros((2, 2), dtype=int))
    assert np.array_equal(one_hot(np.array([[1.0], [0.0]]), 2), [[0.0, 1.0], [1.0, 0.0]])


def test_load_digits():
    pytest.importorskip("sklearn")
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))


def test_load_digits_without_sklearn(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"verigrad\[digits\]"):
        load_digits()
