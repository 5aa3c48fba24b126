"""No false alarms: correct models and ops must pass (a fast subset of benchmarks/false_alarms.py).

The full sweep (``python benchmarks/false_alarms.py``, 240 seeds) covers batch 256 and the large
architectures; here every drawn case is cut to a batch of at most 16 rows, so that each test stays
well under a second. The known false alarms of the past are pinned as regression tests.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

import numpy as np
import pytest

from verigrad.check import check_gradients, check_layers, check_params, gradient_check
from verigrad.check.engine import EPS64, Context, Objective, Target, eps_of, judge_entries

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "benchmarks"))

import false_alarms  # noqa: E402


@pytest.mark.parametrize("seed", range(1000, 1016))
def test_sweep_subset_has_no_false_alarm(seed):
    case = false_alarms.draw_case(seed)
    # small batches; 64 synthetic features instead of the digits (no scikit-learn import here)
    case = dataclasses.replace(case, batch=min(case.batch, 16),
                               dataset="blobs" if case.dataset == "digits" else case.dataset)
    fails = false_alarms.run(case)
    assert not any(fails.values()), (case.describe(), fails)


@pytest.mark.parametrize("seed", range(6))
def test_relu_times_random_dy_sum_that_cancels(seed):
    # L = sum(relu(x) * dy): |L| is far below the partial sums of the 800 terms, so L is computed at the
    # resolution of those partial sums (their ulp), not of |L|; an a-priori eps |L| tolerance flagged
    # correct entries (verigrad demo --seed 2, check_layers on its ReLU layer)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((50, 16)) * rng.uniform(0.1, 3)
    dy = rng.standard_normal((50, 16))
    rep = check_params(lambda: float(np.sum(np.maximum(x, 0) * dy)), {"input": x}, {"input": dy * (x > 0)})
    assert rep.passed, str(rep)
    j = int(np.flatnonzero(x.ravel() > 0.5)[0])
    bad = dy * (x > 0)
    bad.flat[j] *= 1 + 1e-6  # a relative error of 1e-6 in one entry is still caught
    rep = check_params(lambda: float(np.sum(np.maximum(x, 0) * dy)), {"input": x}, {"input": bad})
    assert not rep.passed and np.argwhere(rep["input"].status == 3).tolist() == [list(np.unravel_index(j, x.shape))]


def test_demo_seed_2_layers_pass():
    from verigrad.cli.demo import seed004_model
    from verigrad import nn
    from verigrad.data import DataLoader, make_blobs
    from verigrad.train import fit

    X, y = make_blobs(400, seed=2)
    model = seed004_model(2)
    loss = nn.CrossEntropyLoss()
    fit(model, loss, nn.SGD(model.params(), lr=0.1), DataLoader(X, y, batch_size=32, shuffle=True, seed=2),
        epochs=30, metrics=(), progress=False)
    Xb, yb = X[::8], y[::8]
    assert gradient_check(model, Xb, yb, loss, seed=2).passed
    rep = check_layers(model, Xb)
    assert rep.passed, str(rep)


def _spirals_relu():
    from verigrad import nn
    from verigrad.data import make_spirals

    X, y = make_spirals(16, seed=0)
    rng = np.random.default_rng(0)
    take = rng.permutation(X.shape[0])[:16]
    X, y = X[take], y[take]
    r = np.random.default_rng(0)
    model = nn.NeuralNetwork([nn.Dense(2, 8, seed=int(r.integers(0, 2**31 - 1))), nn.ReLU(),
                              nn.Dense(8, 3, seed=int(r.integers(0, 2**31 - 1)))])
    return model, X, y, nn.CrossEntropyLoss()


def test_spirals_relu_bias_at_a_jump_of_the_second_derivative():
    # verigrad check --dataset spirals --layers 2-8-3 --activation relu: three points of the batch at
    # (0, 0), one per class, with zero biases: b_0 sees every hidden unit at its kink, but the three
    # first-order contributions cancel (sum of p - onehot over the classes); L'' still jumps, so the
    # central difference converges linearly in the step
    model, X, y, loss = _spirals_relu()
    assert (np.abs(X).sum(axis=1) == 0).sum() >= 2
    rep = gradient_check(model, X, y, loss, seed=0)
    for name in ("W_0", "b_0", "W_2", "b_2"):
        assert rep[name].passed, str(rep[name])


def test_spirals_relu_input_at_a_multikink():
    # verigrad check --dataset spirals --layers 2-8-3 --activation relu: rows at (0, 0) put every hidden
    # unit on its kink; gradient_check passes the model's backward (Context.regrad), so dL/dX there is
    # verified at nearby points instead of being failed
    model, X, y, loss = _spirals_relu()
    rep = gradient_check(model, X, y, loss, seed=0)
    assert rep["input"].passed, str(rep["input"])
    assert rep["input"].kinks
    assert any("multi-kink" in note for note in rep["input"].notes), rep["input"].notes


def test_relu_op_at_exact_zeros_and_its_bugs():
    x = np.array([[0.0, 1.5, -2.0], [0.0, 0.0, 0.3]])
    dy = np.array([[0.7, -1.2, 0.4], [-0.9, 1.1, 2.0]])
    f = lambda z: np.maximum(z, 0.0)  # noqa: E731
    assert check_gradients(f, lambda z: (z > 0) * dy, x, dy).passed
    assert check_gradients(f, lambda z: (z >= 0) * dy, x, dy).passed  # relu'(0) = 1 is a subgradient too
    assert not check_gradients(f, lambda z: -1.0 * (z > 0) * dy, x, dy).passed
    assert not check_gradients(f, lambda z: 2 * (z > 0) * dy, x, dy).passed
    wrong_at_kink = lambda z: np.where(z == 0, 2.0, (z > 0) * 1.0) * dy  # noqa: E731
    assert not check_gradients(f, wrong_at_kink, x, dy).passed  # outside the one-sided hull


def _judge_model_with_regrad(model: Any, X: np.ndarray, y: np.ndarray, loss: Any,
                             regrad: bool = True) -> tuple[Any, dict[str, Any]]:
    """gradient_check's judgement wired directly on the engine, with or without the multi-kink test.

    ``Context.regrad`` runs the model's forward and backward at the current contents of the live arrays
    and returns every gradient (and ``"input"``); ``Context.targets`` lists every live array, so that the
    multi-kink test (``engine.verify_nearby``) can move them all. Returns the context and the
    :class:`~verigrad.check.engine.EntryResult` per name.
    """
    Xe = np.asarray(X, dtype=np.float64).copy()
    params = model.params()

    def grads() -> dict[str, np.ndarray]:
        pred = model.forward(Xe)
        dx = model.backward(loss.backward(pred, y))
        g = {k: np.asarray(v, dtype=np.float64).copy() for k, v in model.grads().items()}
        g["input"] = np.asarray(dx, dtype=np.float64).copy()
        return g

    g0 = grads()
    targets = [Target(k, v, g0[k], eps_of(v.dtype), eps_of(v.dtype)) for k, v in params.items()]
    targets.append(Target("input", Xe, g0["input"], EPS64, EPS64))
    obj = Objective(lambda: float(loss.forward(model.forward(Xe), y)))
    L0 = obj()
    ctx = Context(obj, L0, abs(L0), gscale=max(float(np.abs(g).max()) for g in g0.values()),
                  regrad=grads if regrad else None, targets=targets)
    return ctx, {t.name: judge_entries(t, ctx, np.arange(t.live.size)) for t in targets}


@pytest.mark.parametrize("seed", [160, 186])
def test_sweep_multikinks_pass_with_nearby_verification(seed):
    # spirals put points at exactly (0, 0); untrained layers have zero biases: every hidden unit of those
    # rows is on its kink. Seed 186: the one-sided derivatives nearly agree while backprop gives 0, which
    # would be settled as a gross error without the multi-kink exemption
    case = false_alarms.draw_case(seed)
    model, X, y, loss = false_alarms.build(case)
    _, plain = _judge_model_with_regrad(model, X, y, loss, regrad=False)
    assert (plain["input"].status == 3).any()
    _, res = _judge_model_with_regrad(model, X, y, loss)
    assert not (res["input"].status == 3).any(), res["input"].notes
    assert any("multi-kink" in note for note in res["input"].notes)
    # and a wrong input gradient there still fails
    ctx, _ = _judge_model_with_regrad(model, X, y, loss)
    t = next(t for t in ctx.targets if t.name == "input")
    inner = ctx.regrad
    ctx.regrad = lambda: {**inner(), "input": -inner()["input"]}
    wrong = Target("input", t.live, -t.analytic, t.eval_eps, t.analytic_eps)
    assert (judge_entries(wrong, ctx, np.arange(t.live.size)).status == 3).any()
