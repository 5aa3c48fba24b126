"""Build the example notebooks 000-004 (one per seed notebook) with nbformat.

Run ``python examples/_build.py`` from the repository root; it (re)writes the ``.ipynb`` files
next to this script, without outputs. ``tests/test_notebooks.py`` executes them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))

SETUP = """\
%matplotlib inline
import numpy as np
from IPython.display import display

np.set_printoptions(precision=6, suppress=True)"""


def build(cells: Sequence[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook from ``("md" | "code", source)`` pairs."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, src in cells:
        src = src.strip("\n")
        nb.cells.append(new_markdown_cell(src) if kind == "md" else new_code_cell(src))
    return nb


# ------------------------------------------------------------------------------------------------
NB000 = [
    ("md", """
# 000: Gradient check of a small network (seed 000)

Seed 000 verifies the gradients of its network by comparing backpropagation with centred finite
differences, entry by entry, for two cases: a classifier with cross-entropy and a regressor with MSE,
both in **float32**. It passes them with loose tolerances (`atol=2e-3`, `rtol=5e-2`) and reports
relative errors around `1e-2`.

This notebook rebuilds the same networks and data with verigrad, runs the seed's own loop, then
`verigrad.check.gradient_check`, which explains *why* float32 gives `1e-2` and what a real bug looks like.
"""),
    ("code", SETUP + """
from verigrad.nn import Dense, ReLU, Tanh, CrossEntropyLoss, MSELoss, NeuralNetwork
from verigrad.check import gradient_check"""),
    ("md", """
## 1. The seed's checker, unchanged in spirit

A per-entry loop: perturb one parameter entry by `+eps` and `-eps`, recompute the loss, take the centred
difference and compare with the analytic gradient from `model.backward`.
"""),
    ("code", """
def seed_gradient_check(model, X, y, loss_fn, eps=1e-4, atol=1e-3, rtol=1e-2):
    logits = model.forward(X, training=True)
    model.backward(loss_fn.backward(logits, y))
    analytic = {k: v.copy() for k, v in model.grads().items()}
    ok = True
    for name, W in model.params().items():
        g_num = np.zeros_like(W)
        for idx in np.ndindex(W.shape):
            old = W[idx]
            W[idx] = old + eps
            l1 = loss_fn.forward(model.forward(X), y)
            W[idx] = old - eps
            l2 = loss_fn.forward(model.forward(X), y)
            W[idx] = old
            g_num[idx] = (l1 - l2) / (2 * eps)
        abs_diff = np.abs(g_num - analytic[name])
        max_rel = (abs_diff / np.maximum(np.abs(g_num) + np.abs(analytic[name]), 1e-12)).max()
        print(f"[{name}] max|d|={abs_diff.max():.3e}  max rel={max_rel:.3e}")
        ok &= bool(abs_diff.max() <= atol or max_rel <= rtol)
    return ok"""),
    ("md", """
## 2. Case 1: classification with cross-entropy (float32)

The seed's data: 6 samples with 5 features, 3 classes, a `5-7-3` ReLU network with Xavier weights.
(The seed calls `np.random.seed(0)`; verigrad code passes an explicit `np.random.Generator` instead.)
"""),
    ("code", """
rng = np.random.default_rng(0)
X1 = rng.standard_normal((6, 5)).astype(np.float32)
y1 = np.array([0, 1, 2, 1, 0, 2])

model1 = NeuralNetwork([
    Dense(5, 7, init="xavier", rng=rng, dtype=np.float32), ReLU(),
    Dense(7, 3, init="xavier", rng=rng, dtype=np.float32),
])
loss1 = CrossEntropyLoss()
print("seed's check passed:", seed_gradient_check(model1, X1, y1, loss1, eps=1e-4, atol=2e-3, rtol=5e-2))"""),
    ("md", """
The seed's loop needs tolerances of a few percent in float32: with `eps=1e-4` the rounding error of a
float32 loss (about `6e-8` relative) divided by `2 eps` is of the order of `1e-3`, the same size as
many gradient entries. verigrad chooses the step per entry, evaluates the numerical side in float64 when
the model accepts float64 input, and judges each entry against its own error bound:
"""),
    ("code", """
report1 = gradient_check(model1, X1, y1, loss1, seed=0)
print(report1)
print("passed:", report1.passed, "| diagnosis:", report1.diagnosis.kind)
assert report1.passed"""),
    ("md", """
## 3. Case 2: regression with MSE (float32)

4 samples with 3 features, 2 continuous targets, a `3-6-2` tanh network.
"""),
    ("code", """
rng = np.random.default_rng(1)
X2 = rng.standard_normal((4, 3)).astype(np.float32)
y2 = rng.standard_normal((4, 2)).astype(np.float32)

model2 = NeuralNetwork([
    Dense(3, 6, init="xavier", rng=rng, dtype=np.float32), Tanh(),
    Dense(6, 2, init="xavier", rng=rng, dtype=np.float32),
])
loss2 = MSELoss()
print("seed's check passed:", seed_gradient_check(model2, X2, y2, loss2, eps=1e-4, atol=2e-3, rtol=5e-2))
report2 = gradient_check(model2, X2, y2, loss2, seed=0)
print(report2)
assert report2.passed"""),
    ("md", """
## 4. What verigrad adds

### A wrong gradient is named, not just flagged

A loose tolerance hides real bugs. Below, the MSE loss's backward "forgets" the factor 2 of
`d/dpred (pred - y)^2`: the seed's loop with `rtol=5e-2` would still reject it, but it cannot say what is
wrong. verigrad names the parameter, the worst entry and the pattern (every entry off by the same factor):
"""),
    ("code", """
class MSEForgotTwo(MSELoss):
    def backward(self, pred, y):
        return super().backward(pred, y) / 2          # the bug: the 2 of d(x^2)/dx is missing

X2d, y2d = X2.astype(np.float64), y2.astype(np.float64)
model2d = NeuralNetwork([
    Dense(3, 6, rng=np.random.default_rng(1)), Tanh(), Dense(6, 2, rng=np.random.default_rng(2)),
])
bad = gradient_check(model2d, X2d, y2d, MSEForgotTwo(), seed=0)
print(bad)
print()
print("diagnosis:", bad.diagnosis.kind, "-", bad.diagnosis.message)
assert not bad.passed and bad.diagnosis.kind == "scale"
"""),
    ("md", """
### ReLU kinks are not bugs

Finite differences across the kink of ReLU at 0 give a value between the two one-sided slopes, which
makes naive checkers fail correct code. Put one hidden pre-activation exactly at 0 (by choosing its bias)
and verigrad classifies the affected entries as kinks (the analytic value is a valid subgradient) instead
of failing:
"""),
    ("code", """
model_k = NeuralNetwork([Dense(5, 7, rng=np.random.default_rng(3)), ReLU(), Dense(7, 3, rng=np.random.default_rng(4))])
Xk = np.random.default_rng(5).standard_normal((6, 5))
z = model_k.layers[0].forward(Xk)                  # b = 0 here, so z = Xk @ W
model_k.layers[0].params["b"][3] = -z[0, 3]        # sample 0, hidden unit 3: pre-activation exactly 0
print("pre-activation of unit 3, sample 0:", model_k.layers[0].forward(Xk)[0, 3])
rep_k = gradient_check(model_k, Xk, y1, CrossEntropyLoss(), seed=0)
print("passed:", rep_k.passed)
print({name: r.diagnosis.kind for name, r in rep_k.items()})
print(rep_k["b_0"].diagnosis.message)
assert rep_k.passed and rep_k["b_0"].diagnosis.kind == "kink"
"""),
    ("md", """
### Speed

The seed's loop runs the whole network twice per parameter entry. verigrad's `gradient_check` uses the
network's `perturbed_losses` hook, which recomputes only what one entry changes. On a `64-128-10` network
(about 9 600 parameters) and a batch of 16:
"""),
    ("code", """
import time

rng = np.random.default_rng(0)
Xs = rng.standard_normal((16, 64)); ys = rng.integers(0, 10, 16)
big = NeuralNetwork([Dense(64, 128, rng=rng), Tanh(), Dense(128, 10, rng=rng)])
n_params = sum(p.size for p in big.params().values())

t0 = time.perf_counter(); rep_big = gradient_check(big, Xs, ys, CrossEntropyLoss(), seed=0, check_input=False)
t_verigrad = time.perf_counter() - t0

def naive_seconds(model, X, y, loss_fn, n_entries=300, eps=1e-5):
    W = model.params()["W_0"]
    t0 = time.perf_counter()
    for i in range(n_entries):
        idx = np.unravel_index(i, W.shape); old = W[idx]
        W[idx] = old + eps; loss_fn.forward(model.forward(X), y)
        W[idx] = old - eps; loss_fn.forward(model.forward(X), y)
        W[idx] = old
    return (time.perf_counter() - t0) / n_entries * n_params   # extrapolated to every entry

t_naive = naive_seconds(big, Xs, ys, CrossEntropyLoss())
print(f"{n_params} parameters: verigrad {t_verigrad:.3f} s (passed: {rep_big.passed}), "
      f"seed-style loop ~{t_naive:.3f} s (extrapolated from 300 entries)")"""),
    ("md", """
Timings on a shared machine vary; the point is the scaling (see `benchmarks/` for interleaved medians).
The check passed on the big network too, entry by entry, with the worst entry and a diagnosis available
for every parameter.
"""),
]

# ------------------------------------------------------------------------------------------------
NB001 = [
    ("md", """
# 001: Gradient checking a hand-written MLP (seed 001)

Seed 001 writes a regression MLP by hand (`x in R^2`, 5 sigmoid hidden units, 1 linear output), derives
the backward pass with the chain rule, and checks it with centred differences (`eps = 1e-5`).

Network and loss (batch of N samples):

* $H = \\sigma(X W^{(1)} + b^{(1)})$, $\\hat y = H W^{(2)} + b^{(2)}$
* $L = \\frac{1}{N} \\sum_i \\frac{1}{2} (\\hat y_i - y_i)^2$

Backward: $d\\hat y = (\\hat y - y)/N$, $dW^{(2)} = H^T d\\hat y$, $db^{(2)} = \\sum_i d\\hat y_i$,
$dZ^{(1)} = d\\hat y W^{(2)T} \\odot H \\odot (1 - H)$, $dW^{(1)} = X^T dZ^{(1)}$, $db^{(1)} = \\sum_i dZ^{(1)}_i$.
"""),
    ("code", SETUP + """
from verigrad.data import make_quadratic
from verigrad.check import check_params"""),
    ("md", "## 1. The data: 20 points, $x_1, x_2 \\sim U(-1, 1)$, $y = x_1^2 + x_2^2$"),
    ("code", """
X, y = make_quadratic(20, seed=42)
print(X.shape, y.shape)
np.testing.assert_allclose(y[:, 0], X[:, 0]**2 + X[:, 1]**2)"""),
    ("md", "## 2. The seed's hand-written MLP (with an explicit random Generator)"),
    ("code", """
class MultilayerPerceptron:
    def __init__(self, input_dim=2, hidden_dim=5, output_dim=1, rng=None):
        rng = rng if rng is not None else np.random.default_rng(42)
        self.W1 = rng.normal(0, 2 / (input_dim + hidden_dim), (input_dim, hidden_dim))
        self.b1 = np.zeros((1, hidden_dim))
        self.W2 = rng.normal(0, 2 / (hidden_dim + output_dim), (hidden_dim, output_dim))
        self.b2 = np.zeros((1, output_dim))

    def sigmoid(self, z):
        return 0.5 * (1 + np.tanh(0.5 * z))       # = 1 / (1 + exp(-z)), without overflow

    def forward(self, X):
        self.X = X
        self.Z1 = X @ self.W1 + self.b1
        self.H = self.sigmoid(self.Z1)
        self.y_hat = self.H @ self.W2 + self.b2
        return self.y_hat

    def compute_loss(self, y_hat, y):
        return np.sum(0.5 * (y_hat - y) ** 2) / y.shape[0]

    def backward(self, y):
        N = y.shape[0]
        dy_hat = (self.y_hat - y) / N
        dW2 = self.H.T @ dy_hat
        db2 = np.sum(dy_hat, axis=0, keepdims=True)
        dH = dy_hat @ self.W2.T
        dZ1 = dH * self.H * (1 - self.H)
        dW1 = self.X.T @ dZ1
        db1 = np.sum(dZ1, axis=0, keepdims=True)
        return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}"""),
    ("md", """
## 3. Checking it with `check_params`

`check_params(loss, params, grads)` takes a zero-argument `loss()` that reads the live parameter arrays,
the arrays themselves and the claimed gradients: exactly what a hand-written model has.
"""),
    ("code", """
mlp = MultilayerPerceptron(rng=np.random.default_rng(42))
mlp.forward(X)
grads = mlp.backward(y)
params = {"W1": mlp.W1, "b1": mlp.b1, "W2": mlp.W2, "b2": mlp.b2}

def loss():
    return mlp.compute_loss(mlp.forward(X), y)

report = check_params(loss, params, grads, seed=0)
print(report)
assert report.passed"""),
    ("md", """
The seed prints relative errors of `1e-10` to `1e-12` with `eps = 1e-5`; verigrad's numerical side is
more accurate (complex step or a per-entry step), so its errors are smaller, and every entry is judged
against its own error bound rather than one global cutoff.

## 4. The same network from verigrad's layers

`MSELoss(reduction="half")` is the seed's `1/N sum 1/2 (y_hat - y)^2`. With the same weights the
gradients agree with the hand-written backward to rounding:
"""),
    ("code", """
from verigrad.nn import Dense, Sigmoid, NeuralNetwork, MSELoss
from verigrad.check import gradient_check

net = NeuralNetwork([Dense(2, 5), Sigmoid(), Dense(5, 1)])
net.layers[0].params["W"][...] = mlp.W1; net.layers[0].params["b"][...] = mlp.b1[0]
net.layers[2].params["W"][...] = mlp.W2; net.layers[2].params["b"][...] = mlp.b2[0]
half_mse = MSELoss(reduction="half")
pred = net.forward(X)
net.backward(half_mse.backward(pred, y))
mlp.forward(X); hand = mlp.backward(y)
for mine, theirs in (("W_0", "W1"), ("b_0", "b1"), ("W_2", "W2"), ("b_2", "b2")):
    np.testing.assert_allclose(net.grads()[mine], hand[theirs].reshape(net.grads()[mine].shape), rtol=1e-12, atol=1e-15)
print("verigrad layers == hand-written backward;", gradient_check(net, X, y, half_mse, seed=0).verdict)"""),
    ("md", """
## 5. What verigrad adds: it says what is wrong

Three classic slips in this backward pass, each one line. The seed's check would print
"might be incorrect"; verigrad names the parameter, the worst entry and the kind of mistake.
"""),
    ("code", """
class ForgotN(MultilayerPerceptron):          # dy_hat = (y_hat - y)   (no / N)
    def backward(self, y):
        g = super().backward(y)
        return {k: v * y.shape[0] for k, v in g.items()}

class SignFlip(MultilayerPerceptron):         # dy_hat = (y - y_hat) / N
    def backward(self, y):
        return {k: -v for k, v in super().backward(y).items()}

class WrongSigmoidDerivative(MultilayerPerceptron):   # dZ1 = dH * H   (forgot the (1 - H))
    def backward(self, y):
        g = super().backward(y)
        N = y.shape[0]
        dH = ((self.y_hat - y) / N) @ self.W2.T
        dZ1 = dH * self.H
        g["W1"], g["b1"] = self.X.T @ dZ1, dZ1.sum(axis=0, keepdims=True)
        return g

for cls in (ForgotN, SignFlip, WrongSigmoidDerivative):
    m = cls(rng=np.random.default_rng(42))
    m.forward(X)
    g = m.backward(y)
    p = {"W1": m.W1, "b1": m.b1, "W2": m.W2, "b2": m.b2}
    r = check_params(lambda: m.compute_loss(m.forward(X), y), p, g, seed=0, batch_size=len(X))
    print(f"{cls.__name__:<24} passed={r.passed}  worst={r.worst.name}  "
          f"{r.diagnosis.kind}: {r.diagnosis.message}")
    assert not r.passed
    assert r.diagnosis.kind == {"ForgotN": "scale", "SignFlip": "sign"}.get(cls.__name__, r.diagnosis.kind)"""),
]

# ------------------------------------------------------------------------------------------------
NB002 = [
    ("md", """
# 002: Numerical gradient checks of activations, layers and losses (seed 002)

Seed 002 checks each building block with `check_gradients(fn, grad, x, dLdf)`: the gradient of
$L = \\sum f(x) \\odot dL/df$ with respect to `x`. Its activations use the form `backward(X, dLdY)`,
its fully connected layer exposes `parameters`, `gradients` and `forward_with_param`, and its
cross-entropy takes probabilities. verigrad keeps all of that.
"""),
    ("code", SETUP + """
from verigrad.check import check_gradients
from verigrad.nn import FullyConnected, Identity, Sigmoid, TanH, ReLU, SoftMax, CrossEntropyLoss

rng = np.random.default_rng(0)"""),
    ("md", "## 1. Activations (the seed's `backward(X, dLdY)` form)"),
    ("code", """
for act in (Identity(), Sigmoid(), TanH(), ReLU(), SoftMax()):
    X = rng.standard_normal((2, 3))
    dLdY = rng.standard_normal((2, 3))
    act.forward(X)
    grad = act.backward(X, dLdY)
    rep = check_gradients(fn=act.forward, grad=grad, x=X, dLdf=dLdY)
    print(f"Relative error for {type(act).__name__:<8}: {float(rep):.3e}   ({rep.verdict}, {rep.diagnosis.kind})")"""),
    ("md", """
`float(report)` is the seed's number, the relative error $\\|a - n\\| / (\\|a\\| + \\|n\\|)$, so existing
notebooks keep working; the report carries more (below).

## 2. The fully connected layer

`FullyConnected(n_out=4, activation="identity")` is built lazily by its first forward, as in the seed.
"""),
    ("code", """
X = rng.standard_normal((2, 3))
dLdY = rng.standard_normal((2, 4))
fc_layer = FullyConnected(n_out=4, activation="identity", seed=0)
_ = fc_layer.forward(X)
_ = fc_layer.backward(dLdY)
for param in fc_layer.parameters:
    rep = check_gradients(
        fn=fc_layer.forward_with_param(param, X),
        grad=fc_layer.gradients[param],
        x=fc_layer.parameters[param],
        dLdf=dLdY,
    )
    print(f"Relative error for {param}: {float(rep):.3e}  ({rep.verdict})")"""),
    ("md", "## 3. Cross-entropy on probabilities (the seed's `CrossEntropy` with one-hot targets)"),
    ("code", """
num_pts, num_classes = 5, 6
y_idx = rng.integers(0, num_classes, num_pts)
Y = np.zeros((num_pts, num_classes)); Y[np.arange(num_pts), y_idx] = 1
scores = rng.uniform(0, 1, size=(num_pts, num_classes))
Y_hat = scores / scores.sum(axis=1, keepdims=True)

ce = CrossEntropyLoss(from_logits=False)     # the seed's loss takes probabilities
grad = ce.backward(Y_hat, Y)
rep = check_gradients(fn=lambda P: ce.forward(P, Y), grad=grad, x=Y_hat, dLdf=1)
print(f"Relative error for cross entropy loss: {float(rep):.3e} ({rep.verdict})")

# The seed's scratch cell computed CE on a "prediction" that is exactly one-hot: log(0) appears
# for the zero entries, but only multiplied by y = 0. verigrad's loss stays finite at p = 0 and p = 1:
a = np.array([[1.0, 0, 0], [1, 0, 0]])
print("CE(one-hot, one-hot) =", ce.forward(a, a) + 0.0)"""),
    ("md", """
## 4. What verigrad adds

### The report: worst entry, per-entry arrays, diagnosis
"""),
    ("code", """
X = rng.standard_normal((4, 5)); dLdY = rng.standard_normal((4, 5))
sm = SoftMax(); sm.forward(X)
rep = check_gradients(sm.forward, sm.backward(X, dLdY), X, dLdY)
print(rep)
print("worst entry:", rep.worst)"""),
    ("md", """
### A broken softmax backward, diagnosed

A frequent mistake: using the elementwise derivative $s(1-s)$ for softmax (ignoring the off-diagonal
terms of its Jacobian).
"""),
    ("code", """
def wrong_softmax_backward(X, dLdY):
    s = sm.forward(X)
    return dLdY * s * (1 - s)

rep_bad = check_gradients(sm.forward, wrong_softmax_backward(X, dLdY), X, dLdY)
print(rep_bad)
assert not rep_bad.passed"""),
    ("md", """
### A ReLU exactly at its kink is not a bug

The seed checks ReLU at random points, where the kink at 0 is never hit. Put entries exactly at 0 and a
naive check fails (the centred difference gives 1/2 of the slope); verigrad classifies them:
"""),
    ("code", """
relu = ReLU()
Xk = rng.standard_normal((2, 3)); Xk[0, 1] = 0.0; Xk[1, 2] = 0.0
dLdY = rng.standard_normal((2, 3))
relu.forward(Xk)
rep_k = check_gradients(relu.forward, relu.backward(Xk, dLdY), Xk, dLdY)
print(rep_k.verdict, "-", rep_k.diagnosis.kind, "-", rep_k.diagnosis.message)
print("kinks at", rep_k.kinks)
assert rep_k.passed and set(rep_k.kinks) == {(0, 1), (1, 2)}"""),
    ("md", """
### Transposed gradients are recognised

A non-square weight gradient returned with the transposed shape (e.g. `dW = dY.T @ X`):
"""),
    ("code", """
X = rng.standard_normal((2, 3)); dLdY = rng.standard_normal((2, 4))
fc = FullyConnected(3, 4, seed=1); fc.forward(X); fc.backward(dLdY)
rep_t = check_gradients(fc.forward_with_param("W", X), dLdY.T @ X, fc.parameters["W"], dLdY)
print(rep_t.verdict, "-", rep_t.diagnosis.kind, "-", rep_t.diagnosis.message)
assert rep_t.diagnosis.kind == "transpose"
"""),
]

# ------------------------------------------------------------------------------------------------
NB003 = [
    ("md", """
# 003: Backpropagation, one neuron at a time (seed 003)

Seed 003 follows the error backwards through a single sigmoid neuron with PyTorch:
`x = [2, 1]`, `W = [0.5, -1]`, `b = 0`, target `1`, binary cross-entropy. Here the same neuron is built
from verigrad's layers, every intermediate value is read from the network, and the chain rule is
written out; PyTorch's autograd (when installed) gives the same numbers.
"""),
    ("code", SETUP + """
from verigrad.nn import Dense, Sigmoid, NeuralNetwork, BCELoss"""),
    ("md", "## 1. Forward: what is stored for the backward pass"),
    ("code", """
x = np.array([[2.0, 1.0]])          # (1, 2)
y_true = np.array([[1.0]])          # (1, 1)

dense = Dense(2, 1)
dense.params["W"][...] = [[0.5], [-1.0]]   # verigrad stores W as (n_in, n_out) = the seed's W.T
dense.params["b"][...] = 0.0
model = NeuralNetwork([dense, Sigmoid()])
bce = BCELoss()

a = model.forward(x)
z = model.outputs[0]
loss = bce.forward(a, y_true)
print("z (pre-activation):", z, "\\na (sigmoid output):", a, f"\\nBCE loss: {loss:.4f}")"""),
    ("md", """
## 2. Backward: the chain rule, factor by factor

* $\\partial L/\\partial a = -y/a + (1-y)/(1-a)$
* $\\partial L/\\partial z = \\partial L/\\partial a \\cdot \\sigma'(z)$ with $\\sigma'(z) = a(1-a)$
* $\\partial L/\\partial W = x^T \\, \\partial L/\\partial z$, $\\partial L/\\partial b = \\partial L/\\partial z$
"""),
    ("code", """
model.backward(bce.backward(a, y_true))
dL_dz, dL_da = model.output_grads            # dL/d(output of layer 0) and of layer 1
grads = model.grads()

print("dL/da =", dL_da, "  (formula:", -y_true / a + (1 - y_true) / (1 - a), ")")
print("dL/dz =", dL_dz, "  (dL/da * a(1-a) =", dL_da * a * (1 - a), ")")
print("dL/dW =", grads["W_0"].T, "  (x * dL/dz =", x * dL_dz, ")")
print("dL/db =", grads["b_0"])
np.testing.assert_allclose(dL_dz, dL_da * a * (1 - a))
np.testing.assert_allclose(grads["W_0"].T, x * dL_dz)"""),
    ("md", "## 3. The same numbers from PyTorch autograd (the seed's code)"),
    ("code", """
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the autograd comparison")

if torch is not None:
    xt = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    yt = torch.tensor([[1.0]], dtype=torch.float64)
    W = torch.tensor([[0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    zt = xt @ W.T + b
    at = torch.sigmoid(zt)
    lt = torch.nn.BCELoss()(at, yt)
    gz, ga = torch.autograd.grad(lt, (zt, at), retain_graph=True)
    lt.backward()
    rows = [("loss", loss, lt.item()), ("dL/da", dL_da.item(), ga.item()), ("dL/dz", dL_dz.item(), gz.item()),
            ("dL/dW", grads["W_0"].ravel(), W.grad.numpy().ravel()), ("dL/db", grads["b_0"], b.grad.numpy())]
    for name, mine, theirs in rows:
        print(f"{name:<6} verigrad {np.round(mine, 6)!s:<22} torch {np.round(theirs, 6)}")
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)"""),
    ("md", """
## 4. And checked numerically

verigrad's checker confirms the neuron's gradients against finite differences.
"""),
    ("code", """
from verigrad.check import gradient_check
print(gradient_check(model, x, y_true, bce, seed=0))"""),
    ("md", """
## 5. What to watch as an engineer: vanishing and exploding gradients

$\\sigma'(z) \\le 1/4$, so each sigmoid layer multiplies the backward signal by about $\\|W\\| \\cdot \\sigma'$.
With moderate (Xavier) weights the gradient shrinks layer after layer towards the input; with large
weights it grows. An 8-layer sigmoid network, one backward pass:
"""),
    ("code", """
from verigrad import plots

def layer_norms(scale, depth=8, width=32, seed=0):
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(depth):
        d = Dense(width, width, rng=rng); d.params["W"][...] *= scale
        layers += [d, Sigmoid()]
    net = NeuralNetwork(layers)
    X = rng.standard_normal((64, width))
    out = net.forward(X)
    net.backward(rng.standard_normal(out.shape) / 64)
    return np.array([np.linalg.norm(net.grads()[f"W_{2 * i}"]) for i in range(depth)])

small, large = layer_norms(1.0), layer_norms(32.0)
print("Xavier weights   : first/last layer gradient norm =", f"{small[0] / small[-1]:.1e}")
print("weights x 32     : first/last layer gradient norm =", f"{large[0] / large[-1]:.1e}")
fig = plots.plot_layer_norms({"Xavier weights (vanishing)": small, "weights x 32 (exploding)": large},
                             title="Deep sigmoid network: gradient norm by layer")
display(fig)"""),
    ("md", """
`verigrad explain` prints this walk-through in a terminal; `fit(..., record_grad_norms=True)` records the
per-layer norms during training so `plots.plot_grad_norms` can show them over time.
"""),
]

# ------------------------------------------------------------------------------------------------
NB004 = [
    ("md", """
# 004: A two-layer network from scratch, and the four exercises (seed 004)

Seed 004 trains a `2-16-2` ReLU MLP on two Gaussian blobs with explicit parameters, a manual forward,
cross-entropy, autograd and a hand-written SGD update, then proposes four exercises. Here the same
system uses verigrad: the backward pass is verigrad's own (and verified), not autograd.
"""),
    ("code", SETUP + """
from verigrad import plots
from verigrad.data import DataLoader, make_blobs
from verigrad.nn import Dense, ReLU, Tanh, Sigmoid, NeuralNetwork, CrossEntropyLoss, SGD
from verigrad.train import fit, accuracy"""),
    ("md", "## 1. Data: two clouds of 200 points around (-2, 0) and (2, 0)"),
    ("code", """
X, y = make_blobs(400, centers=((-2.0, 0.0), (2.0, 0.0)), seed=0)
train_loader = DataLoader(X, y, batch_size=32, shuffle=True, seed=0)
X.shape, y.shape"""),
    ("md", "## 2. Parameters: `W1 = 0.1 * randn(2, 16)`, `b1 = 0`, `W2 = 0.1 * randn(16, 2)`, `b2 = 0`"),
    ("code", """
def make_model(hidden=16, activation=ReLU, seed=0):
    rng = np.random.default_rng(seed)
    return NeuralNetwork([Dense(2, hidden, init="normal", scale=0.1, rng=rng), activation(),
                          Dense(hidden, 2, init="normal", scale=0.1, rng=rng)])

model = make_model()
{k: v.shape for k, v in model.params().items()}"""),
    ("md", """
## 3. One training step by hand: forward, loss, backward, update

`loss.backward` gives $\\partial L/\\partial\\,\\text{logits} = (\\text{softmax} - \\text{onehot})/N$;
`model.backward` fills every `dL/dW`; the update is `p -= lr * g`. verigrad's backward *overwrites*
the gradients (it never accumulates), so there is nothing to zero by hand.
"""),
    ("code", """
loss_fn = CrossEntropyLoss()
lr = 0.1
xb, yb = next(iter(train_loader))
logits = model.forward(xb)
loss = loss_fn.forward(logits, yb)
model.backward(loss_fn.backward(logits, yb))
print("mean |dW1| =", np.abs(model.grads()["W_0"]).mean(), " mean |dW2| =", np.abs(model.grads()["W_2"]).mean(),
      " loss =", loss)
for name, p in model.params().items():
    p -= lr * model.grads()[name]"""),
    ("md", "## 4. Full training (30 epochs) with `fit`, and the loss curve"),
    ("code", """
model = make_model()
history = fit(model, loss_fn, SGD(model.params(), lr=0.1), train_loader, epochs=30, progress=False,
              record_grad_norms=True)
for epoch in (1, 5, 10, 20, 30):
    print(f"epoch {epoch:>2} | loss={history.loss[epoch - 1]:.4f} | acc={history.metrics['accuracy'][epoch - 1]:.3f}")
print("final accuracy on the data:", accuracy(model.forward(X), y))
display(plots.plot_loss_curves({"SGD lr 0.1": history.loss}, title="Training loss (manual SGD)"))
display(plots.plot_decision_boundary(lambda G: model.forward(G), X, y, title="Decision boundary"))"""),
    ("md", "## 5. Cross-entropy by hand (log-softmax + negative log-likelihood)"),
    ("code", """
def cross_entropy_manual(logits, y):
    m = logits.max(axis=1, keepdims=True)
    log_probs = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(y)), y].mean()

logits = model.forward(xb)
print(loss_fn.forward(logits, yb), cross_entropy_manual(logits, yb))
np.testing.assert_allclose(loss_fn.forward(logits, yb), cross_entropy_manual(logits, yb), rtol=1e-12)"""),
    ("md", """
## 6. The exercises

Each run starts from the same weights and sees the batches in the same order; only one thing changes.
The loss before training is plotted at epoch 0.
"""),
    ("code", """
def run(hidden=16, activation=ReLU, lr=0.1, zero_grad=True, epochs=30):
    m = make_model(hidden, activation)
    before = loss_fn.forward(m.forward(X), y)
    h = fit(m, loss_fn, SGD(m.params(), lr=lr), DataLoader(X, y, batch_size=32, seed=0), epochs=epochs,
            progress=False, zero_grad=zero_grad)
    return [before, *h.loss]

baseline = run()

def show(curves, title):
    display(plots.plot_loss_curves({"ReLU, h=16, lr 0.1": baseline, **curves},
                                   baseline="ReLU, h=16, lr 0.1", title=title, start=0))"""),
    ("md", "### Exercise 1: activation swap"),
    ("code", """
show({"tanh": run(activation=Tanh), "sigmoid": run(activation=Sigmoid)}, "Activation swap")"""),
    ("md", """
Sigmoid starts slowest: its derivative is at most 1/4 and its outputs are all positive (about 0.5 for
small weights), so the first layer's gradients are small and strongly correlated.

### Exercise 2: hidden width
"""),
    ("code", """
show({"h=4": run(hidden=4), "h=64": run(hidden=64)}, "Hidden width")"""),
    ("md", "### Exercise 3: learning-rate pathology"),
    ("code", """
curves = {"lr=1.0": run(lr=1.0), "lr=0.001": run(lr=0.001)}
show(curves, "Learning rate")
for name, c in curves.items():
    c = np.asarray(c)
    progress = (c[0] - c[-1]) / (baseline[0] - baseline[-1])
    verdict = ("diverges" if not np.all(np.isfinite(c)) or c[-1] > c[0] else
               "crawls" if progress < 0.5 else "learns")
    print(f"{name}: {verdict} (removed {100 * progress:.0f}% of the loss the baseline removed)")"""),
    ("md", """
On two well-separated blobs `lr=1.0` does not diverge: the problem is nearly linear and the softmax
cross-entropy gradient is bounded, so the large steps just converge faster. `lr=0.001` crawls: after 30
epochs it has removed only a few percent of the loss. (`verigrad experiment` prints these verdicts, read
from the curves.)

### Exercise 4: not zeroing the gradients

`fit(zero_grad=False)` reproduces forgetting `zero_grads()` in the seed: every step uses the running sum
of all gradients so far, so the effective step keeps growing and points in stale directions.
"""),
    ("code", """
show({"no zero_grad (accumulate)": run(zero_grad=False)}, "Gradients not zeroed")"""),
    ("md", """
## 7. What verigrad adds: the backward pass is verified

The seed relies on autograd; here every gradient came from verigrad's hand-written backward passes,
and they can be checked on the trained model, entry by entry (ReLU kinks are classified, not failed).
Breaking one line, dW without the 1/N of the mean, is caught and named:
"""),
    ("code", """
from verigrad.check import gradient_check

report = gradient_check(model, X[::8], y[::8], loss_fn, seed=0)
print(report)

class DenseForgotN(Dense):
    def backward(self, dy):
        dx = super().backward(dy)
        self.grads["W"] = self.grads["W"] * dy.shape[0]      # the bug
        return dx

broken = NeuralNetwork([DenseForgotN(2, 16, seed=1), ReLU(), Dense(16, 2, seed=2)])
rep = gradient_check(broken, X[::8], y[::8], loss_fn, seed=0)
print(rep.verdict, "|", rep.worst.name, "|", rep.diagnosis.message)
assert report.passed and not rep.passed and rep.diagnosis.kind == "scale" and rep.worst.name == "W_0"
display(plots.plot_error_heatmap(rep.worst.analytic, rep.worst.numerical, name=rep.worst.name,
                                 note=rep.diagnosis.message, worst=rep.worst.worst.index))"""),
]

NOTEBOOKS = {
    "000_gradient_check_network.ipynb": NB000,
    "001_hand_written_mlp.ipynb": NB001,
    "002_check_gradients_layers.ipynb": NB002,
    "003_backprop_one_neuron.ipynb": NB003,
    "004_mlp_from_scratch_exercises.ipynb": NB004,
}


def main() -> None:
    """Write every notebook next to this script."""
    for name, cells in NOTEBOOKS.items():
        nb = build(cells)
        nbformat.validate(nb)
        path = os.path.join(HERE, name)
        with open(path, "w", encoding="utf-8") as fh:
            nbformat.write(nb, fh)
        print("wrote", path)


if __name__ == "__main__":
    main()
