"""A catalogue of backward passes, wrong and correct, each with the verdict the checker must give.

Self-contained (NumPy and ``verigrad.check`` only) so that ``benchmarks/catalogue.py`` and the CLI can
import it: ``CASES`` is a list of :class:`Case`; ``case.run()`` returns the checker's report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from verigrad.check import check_gradients, check_params

__all__ = ["Case", "CASES", "WRONG", "CORRECT", "run_case"]


@dataclass(frozen=True)
class Case:
    """One catalogue entry.

    Attributes
    ----------
    name : str
    expected : str
        The diagnosis kind the checker must give; ``"pass"`` for correct code (ok, kink or precision).
    run : callable () -> report
    details : dict
        Facts the diagnosis must contain (e.g. ``{"factor": 32}``, ``{"columns": [3]}``).
    """

    name: str
    expected: str
    run: Callable[[], Any]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def should_pass(self) -> bool:
        return self.expected == "pass"


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Stable logistic function."""
    out = np.empty_like(z, dtype=np.result_type(z, np.float32))
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------------------------------------
# wrong backward passes
# ------------------------------------------------------------------------------------------------
def _dense_square(kind: str) -> Any:
    rng = _rng(1)
    X = rng.standard_normal((6, 4))
    W = rng.standard_normal((4, 4))
    dY = rng.standard_normal((6, 4))
    correct = X.T @ dY
    grad = {"transpose": correct.T, "sign": -correct, "factor2": 2 * correct, "zero": np.zeros_like(correct)}[kind]
    return check_gradients(lambda w: X @ w, grad, W, dY)


def _missing_mean() -> Any:
    rng = _rng(2)
    N = 32
    X = rng.standard_normal((N, 3))
    y = rng.standard_normal((N, 2))
    P = {"W": rng.standard_normal((3, 2)), "b": np.zeros(2)}

    def loss() -> float:
        r = X @ P["W"] + P["b"] - y
        return float(np.mean(np.sum(r * r, axis=1)))

    r = X @ P["W"] + P["b"] - y
    dpred = 2 * r  # forgot / N
    return check_params(loss, P, {"W": X.T @ dpred, "b": dpred.sum(0)}, batch_size=N)


def _sigmoid_wrong() -> Any:
    rng = _rng(3)
    x = rng.standard_normal((4, 5))
    dy = rng.standard_normal((4, 5))
    s = sigmoid(x)
    return check_gradients(sigmoid, s * dy, x, dy)  # s instead of s(1 - s)


def _softmax_diag() -> Any:
    rng = _rng(4)
    x = rng.standard_normal((3, 5))
    dy = rng.standard_normal((3, 5))
    s = softmax(x)
    return check_gradients(softmax, s * (1 - s) * dy, x, dy)  # diagonal of the Jacobian only


def _one_column() -> Any:
    rng = _rng(5)
    X = rng.standard_normal((7, 4))
    W = rng.standard_normal((4, 6))
    dY = rng.standard_normal((7, 6))
    g = X.T @ dY
    g[:, 3] *= 1.5
    return check_gradients(lambda w: X @ w, g, W, dY)


def _mutates() -> Any:
    rng = _rng(6)
    x = rng.standard_normal((3, 4))
    dy = rng.standard_normal((3, 4))

    def relu_inplace(z: np.ndarray) -> np.ndarray:
        z[z < 0] = 0.0  # writes into the caller's array
        return z

    return check_gradients(relu_inplace, (x > 0) * dy, x, dy)


class _StaleCache:
    """Returns the output computed for the *previous* call (a lagging cache)."""

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.tanh(x)
        res = self.prev if self.prev is not None else out
        self.prev = out
        return res


def _stale_cache() -> Any:
    rng = _rng(7)
    x = rng.standard_normal((3, 3))
    dy = rng.standard_normal((3, 3))
    return check_gradients(_StaleCache(), (1 - np.tanh(x) ** 2) * dy, x, dy)


class _HiddenState:
    """Scales its output by a call counter (hidden state)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return x * (1.0 + 1e-9 * self.calls)


def _hidden_state() -> Any:
    rng = _rng(8)
    x = rng.standard_normal(5)
    dy = rng.standard_normal(5)
    return check_gradients(_HiddenState(), dy, x, dy)


def _float32_one_percent() -> Any:
    rng = _rng(9)
    X = rng.standard_normal((8, 5)).astype(np.float32)
    W = rng.standard_normal((5, 4)).astype(np.float32)
    dY = rng.standard_normal((8, 4)).astype(np.float32)

    def layer(w: np.ndarray) -> np.ndarray:  # float32 code throughout
        return np.tanh(X @ w.astype(np.float32))

    g = X.T @ ((1 - np.tanh(X @ W) ** 2) * dY)
    return check_gradients(layer, (g * 1.01).astype(np.float32), W, dY)


def _large_inputs_only() -> Any:
    rng = _rng(10)
    x = rng.uniform(-1, 1, size=6)

    def grad(z: np.ndarray) -> np.ndarray:
        return 3 * np.minimum(z * z, 4.0)  # clipped: wrong only where |z| > 2

    return check_gradients(lambda z: np.sum(z ** 3), grad, x)


WRONG: list[Case] = [
    Case("transposed dW (square W)", "transpose", lambda: _dense_square("transpose")),
    Case("missing 1/N (batch mean)", "scale", _missing_mean, {"factor": 32}),
    Case("sign flip", "sign", lambda: _dense_square("sign")),
    Case("factor 2", "scale", lambda: _dense_square("factor2"), {"factor": 2}),
    Case("sigmoid' = s instead of s(1-s)", "mismatch", _sigmoid_wrong),
    Case("softmax Jacobian diagonal only", "mismatch", _softmax_diag),
    Case("one column of dW wrong", "partial", _one_column, {"columns": [3]}),
    Case("dW zero", "zero", lambda: _dense_square("zero")),
    Case("input mutated in forward", "mutates_input", _mutates),
    Case("stale cache (lagging)", "nondeterministic", _stale_cache),
    Case("hidden state (call counter)", "nondeterministic", _hidden_state),
    Case("1% error in float32 code", "scale", _float32_one_percent),
    Case("wrong only for large inputs (probing)", "mismatch", _large_inputs_only),
]


# ------------------------------------------------------------------------------------------------
# correct backward passes (must never be flagged)
# ------------------------------------------------------------------------------------------------
def _dense_params(dtype: type = np.float64) -> Any:
    rng = _rng(11)
    X = rng.standard_normal((5, 3)).astype(dtype)
    dY = rng.standard_normal((5, 4))
    P = {"W": rng.standard_normal((3, 4)).astype(dtype), "b": rng.standard_normal(4).astype(dtype)}

    def loss() -> Any:
        return np.sum((X @ P["W"] + P["b"]) * dY)

    return check_params(loss, P, {"W": (X.T @ dY).astype(dtype), "b": dY.sum(0).astype(dtype)})


def _dense_input() -> Any:
    rng = _rng(12)
    X = rng.standard_normal((5, 3))
    W = rng.standard_normal((3, 4))
    dY = rng.standard_normal((5, 4))
    return check_gradients(lambda x: x @ W, dY @ W.T, X, dY)


def _elementwise(f: Callable, df: Callable, x: np.ndarray, seed: int = 13) -> Any:
    dy = _rng(seed).standard_normal(x.shape)
    return check_gradients(f, df(x) * dy, x, dy)


def _sigmoid_sat() -> Any:
    x = np.array([[-30.0, -5.0, -0.3], [0.0, 4.0, 30.0]])
    return _elementwise(sigmoid, lambda z: sigmoid(z) * (1 - sigmoid(z)), x)


def _relu_kinks(leaky: bool) -> Any:
    x = np.array([[0.0, 1e-7, -1e-7, 1e-6], [-1e-6, 0.5, -0.5, 3e-9]])
    if leaky:
        return _elementwise(lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01), x)
    return _elementwise(lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(float), x)


def _softmax_ok() -> Any:
    rng = _rng(14)
    x = rng.standard_normal((3, 5)) * 3
    dy = rng.standard_normal((3, 5))
    s = softmax(x)
    return check_gradients(softmax, s * (dy - np.sum(dy * s, axis=1, keepdims=True)), x, dy)


def _max_abs() -> Any:
    x = np.array([1.0, 0.0, -2.0, 0.0])
    dy = np.array([0.3, -1.2, 0.7, 2.0])
    return check_gradients(lambda z: np.abs(z) + np.maximum(z, 0), (np.sign(x) + (x > 0)) * dy, x, dy)


def _bce_extremes() -> Any:
    p = np.array([1e-12, 0.3, 0.9, 1 - 1e-9, 1e-9])
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0])

    def bce(q: np.ndarray) -> float:
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))

    grad = -(y / p - (1 - y) / (1 - p)) / len(p)
    return check_gradients(bce, grad, p)


def _ce_logits() -> Any:
    rng = _rng(15)
    z = rng.standard_normal((6, 4)) * 4
    labels = rng.integers(0, 4, size=6)

    def ce(logits: np.ndarray) -> Any:
        m = logits.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.sum(np.exp(logits - m), axis=1))
        return np.mean(lse - logits[np.arange(6), labels])

    s = softmax(z)
    s[np.arange(6), labels] -= 1
    return check_gradients(ce, s / 6, z)


def _float32_correct() -> Any:
    rng = _rng(16)
    X = rng.standard_normal((8, 5)).astype(np.float32)
    W = rng.standard_normal((5, 4)).astype(np.float32)
    dY = rng.standard_normal((8, 4)).astype(np.float32)

    def layer(w: np.ndarray) -> np.ndarray:
        return np.tanh(X @ w.astype(np.float32))

    g = X.T @ ((1 - np.tanh(X @ W) ** 2) * dY)
    return check_gradients(layer, g.astype(np.float32), W, dY)


def _seed001_mlp() -> Any:
    rng = _rng(42)
    X = rng.uniform(-1, 1, size=(20, 2))
    y = (X[:, 0] ** 2 + X[:, 1] ** 2).reshape(20, 1)
    P = {"W1": rng.normal(0, 2 / 7, (2, 5)), "b1": np.zeros((1, 5)),
         "W2": rng.normal(0, 2 / 6, (5, 1)), "b2": np.zeros((1, 1))}

    def loss() -> float:
        H = sigmoid(X @ P["W1"] + P["b1"])
        return float(np.sum(0.5 * (H @ P["W2"] + P["b2"] - y) ** 2) / 20)

    H = sigmoid(X @ P["W1"] + P["b1"])
    d = (H @ P["W2"] + P["b2"] - y) / 20
    dZ1 = d @ P["W2"].T * H * (1 - H)
    grads = {"W1": X.T @ dZ1, "b1": dZ1.sum(0, keepdims=True), "W2": H.T @ d, "b2": d.sum(0, keepdims=True)}
    return check_params(loss, P, grads)


CORRECT: list[Case] = [
    Case("Dense W, b (check_params)", "pass", _dense_params),
    Case("Dense dL/dX", "pass", _dense_input),
    Case("sigmoid incl. saturated +-30", "pass", _sigmoid_sat),
    Case("tanh", "pass", lambda: _elementwise(np.tanh, lambda z: 1 - np.tanh(z) ** 2,
                                              _rng(17).standard_normal((3, 4)) * 2)),
    Case("softmax", "pass", _softmax_ok),
    Case("ReLU at 0 and within 1e-6 of 0", "pass", lambda: _relu_kinks(False)),
    Case("LeakyReLU at 0 and within 1e-6 of 0", "pass", lambda: _relu_kinks(True)),
    Case("max and abs at 0", "pass", _max_abs),
    Case("float32 data (Dense, check_params)", "pass", lambda: _dense_params(np.float32)),
    Case("float32 code (tanh layer)", "pass", _float32_correct),
    Case("BCE with probabilities near 0 and 1", "pass", _bce_extremes),
    Case("cross-entropy from logits", "pass", _ce_logits),
    Case("seed 001 MLP (check_params)", "pass", _seed001_mlp),
]

CASES: list[Case] = WRONG + CORRECT


def run_case(case: Case) -> tuple[Any, str, bool]:
    """Run a case; return (report, kind obtained, caught-or-correctly-passed)."""
    rep = case.run()
    kind = rep.diagnosis.kind
    if case.should_pass:
        return rep, kind, bool(rep.passed)
    return rep, kind, (not rep.passed) and kind == case.expected
