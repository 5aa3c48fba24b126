"""Seconds for a full gradient check: verigrad vs the naive per-entry loop vs torch.autograd.gradcheck.

The model is the loss ``CE(tanh(X W1 + b1) W2 + b2)``: 64 inputs, 10 classes, batch 16, float64,
hidden widths 14, 135 and 1350 (about 1e3, 1e4 and 1e5 parameters). Contenders, all on the same
weights and data:

(1) verigrad full   ``gradient_check(model, X, y, CrossEntropyLoss(), mode="full", method="central",
                    check_input=False)`` on ``NeuralNetwork([Dense(64, H), Tanh(), Dense(H, 10)])``:
                    every parameter entry, central differences, through the model's
                    ``perturbed_losses`` fast path (verigrad.nn.perturb). The memo of the base forward
                    is cleared before every timed run, so each run pays for it.
(2) naive loop      seed notebook 000's loop: ``np.nditer`` over every entry, in-place ``old +- eps``
                    (eps 1e-4, the notebook's default), full ``model.forward`` + ``loss.forward`` each.
(3) torch slow      ``torch.autograd.gradcheck(f, (W1, b1, W2, b2))`` (float64, eps 1e-6), full
                    numerical Jacobian: 2 evaluations per entry.
(4) torch fast      the same with ``fast_mode=True`` (one random projection); next to it verigrad's
                    ``mode="fast"`` (its cost in forward+backward equivalents and ``report.n_evals``).

The contenders are interleaved (one run of each per round, the order rotating), and the tables give
medians over rounds; the slow contenders run fewer rounds (one at 1e5 parameters). By default NumPy's
BLAS and torch are pinned to one thread each (``--threads``): on the shared 2-core machine torch with
two threads stalls on its thread pool (gradcheck slow at 1e3 parameters: 0.09 s with one thread,
0.5-11 s with two), and for these small matrices (batch 16) a second thread gains little anyway. Accuracy: the
numerical gradient of (1) and (2) against the analytic one from ``model.backward``, as the relative
L2 error ``||n - a|| / ||a||`` over all parameters and the largest per-entry relative difference
``|n - a| / max(|a|, |n|)`` over entries with ``|a| > 1e-8 max|a|``.

A second table compares the numerical methods of ``check_gradients`` (central, complex step,
Richardson) on a small tanh/sigmoid MLP written as a function of its flattened parameters: relative
error of the numerical gradient and cost in function evaluations and seconds.

Targets: at 1e5 parameters verigrad full >= 100x faster than torch slow and >= 20x faster than the
naive loop with the same accuracy; fast mode <= 10 forward+backward equivalents; complex step rel.
error <= 1e-14 at <= 1.2x the cost of central differences.

Usage::

    python benchmarks/gradcheck.py                       # full run (about 3-4 minutes: torch slow
                                                         # at 1e5 takes ~80 s, the naive loop ~30 s)
    python benchmarks/gradcheck.py --quick               # ~20 s: fewer rounds, no naive loop and no
                                                         # torch slow above 2e4 parameters
    python benchmarks/gradcheck.py --skip-slow-torch-above 20000 --skip-naive-above 20000

This is a benchmark, not a test: it prints markdown tables and never fails.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

from verigrad.check import check_gradients, gradient_check
from verigrad.nn import CrossEntropyLoss, Dense, MSELoss, NeuralNetwork, Sigmoid, Tanh
from verigrad.nn import perturb

try:  # torch is optional
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

N_IN, N_CLASSES, BATCH = 64, 10, 16
WIDTHS = (14, 135, 1350)
NAIVE_EPS = 1e-4


# ------------------------------------------------------------------------------------------------
# Problem
# ------------------------------------------------------------------------------------------------
def make_problem(hidden: int, seed: int = 0) -> tuple[NeuralNetwork, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    model = NeuralNetwork([Dense(N_IN, hidden, seed=seed + 1), Tanh(), Dense(hidden, N_CLASSES, seed=seed + 2)])
    for p in model.params().values():  # non-zero biases, so that every entry is exercised
        p[...] += 0.1 * rng.normal(size=p.shape)
    X = rng.normal(size=(BATCH, N_IN))
    y = rng.integers(0, N_CLASSES, size=BATCH)
    return model, X, y


def analytic_grads(model: NeuralNetwork, X: np.ndarray, y: np.ndarray, loss: Any) -> dict[str, np.ndarray]:
    pred = model.forward(X)
    model.backward(loss.backward(pred, y))
    return {k: v.copy() for k, v in model.grads().items()}


def accuracy(numerical: dict[str, np.ndarray], analytic: dict[str, np.ndarray]) -> tuple[float, float]:
    """(||n - a|| / ||a||, max over significant entries of |n - a| / max(|a|, |n|))."""
    n = np.concatenate([np.asarray(numerical[k], dtype=np.float64).ravel() for k in analytic])
    a = np.concatenate([analytic[k].ravel() for k in analytic])
    rel_l2 = float(np.linalg.norm(n - a) / np.linalg.norm(a))
    big = np.abs(a) > 1e-8 * np.abs(a).max()
    per = np.abs(n - a)[big] / np.maximum(np.abs(a), np.abs(n))[big]
    return rel_l2, float(per.max())


# ------------------------------------------------------------------------------------------------
# Contenders
# ------------------------------------------------------------------------------------------------
def run_verigrad_full(model: NeuralNetwork, X: np.ndarray, y: np.ndarray) -> Any:
    perturb._last_base = None  # no memo carried over from the previous round: pay the base forward
    return gradient_check(model, X, y, CrossEntropyLoss(), mode="full", method="central", check_input=False)


def run_verigrad_fast(model: NeuralNetwork, X: np.ndarray, y: np.ndarray) -> Any:
    return gradient_check(model, X, y, CrossEntropyLoss(), mode="fast", check_input=False)


def run_forward_backward(model: NeuralNetwork, X: np.ndarray, y: np.ndarray) -> None:
    loss = CrossEntropyLoss()
    pred = model.forward(X)
    loss.forward(pred, y)
    model.backward(loss.backward(pred, y))


def run_naive(model: NeuralNetwork, X: np.ndarray, y: np.ndarray, eps: float = NAIVE_EPS) -> dict[str, np.ndarray]:
    """Seed notebook 000's loop (without its prints)."""
    loss_fn = CrossEntropyLoss()
    out = {}
    for name, W in model.params().items():
        g_num = np.zeros_like(W)
        it = np.nditer(W, flags=["multi_index"], op_flags=[["readwrite"]])
        while not it.finished:
            idx = it.multi_index
            old = W[idx]
            W[idx] = old + eps
            l1 = loss_fn.forward(model.forward(X, training=True), y)
            W[idx] = old - eps
            l2 = loss_fn.forward(model.forward(X, training=True), y)
            W[idx] = old
            g_num[idx] = (l1 - l2) / (2 * eps)
            it.iternext()
        out[name] = g_num
    return out


def torch_function(model: NeuralNetwork, X: np.ndarray, y: np.ndarray) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    assert torch is not None
    p = model.params()
    inputs = tuple(torch.tensor(p[k], dtype=torch.float64, requires_grad=True) for k in ("W_0", "b_0", "W_2", "b_2"))
    Xt = torch.tensor(X, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.long)

    def f(W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
        return torch.nn.functional.cross_entropy(torch.tanh(Xt @ W1 + b1) @ W2 + b2, yt)

    return f, inputs


def run_torch(f: Callable[..., Any], inputs: tuple[Any, ...], fast: bool) -> bool:
    assert torch is not None
    return bool(torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=fast))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# ------------------------------------------------------------------------------------------------
# Table 1-3: full check timings, accuracy, fast mode
# ------------------------------------------------------------------------------------------------
def fmt_s(values: list[float]) -> str:
    if not values:
        return "skipped"
    med = statistics.median(values)
    return f"{med:.4f}" if med < 10 else f"{med:.1f}"


def fmt_ratio(num: list[float], den: list[float]) -> str:
    if not num or not den:
        return "-"
    return f"{statistics.median(num) / statistics.median(den):.0f}x"


def bench_sizes(args: argparse.Namespace) -> None:
    rows_time, rows_acc, rows_fast = [], [], []
    for hidden in args.widths:
        model, X, y = make_problem(hidden)
        n_params = model.n_params
        loss = CrossEntropyLoss()
        a = analytic_grads(model, X, y, loss)
        big = n_params > 20_000
        run_naive_here = args.skip_naive_above is None or n_params <= args.skip_naive_above
        run_slow_torch = torch is not None and (args.skip_slow_torch_above is None or n_params <= args.skip_slow_torch_above)
        rounds = args.rounds
        slow_rounds = 1 if big else max(1, min(rounds, 3))
        f = inputs = None
        if torch is not None:
            f, inputs = torch_function(model, X, y)
        times: dict[str, list[float]] = {k: [] for k in ("vg", "naive", "tslow", "tfast", "vgfast", "fb")}
        vg_report = naive_grad = None
        torch_ok: dict[str, bool] = {}
        contenders: list[tuple[str, Callable[[], Any], int]] = [
            ("vg", lambda: run_verigrad_full(model, X, y), rounds),
            ("vgfast", lambda: run_verigrad_fast(model, X, y), rounds),
            ("fb", lambda: run_forward_backward(model, X, y), rounds),
        ]
        if run_naive_here:
            contenders.append(("naive", lambda: run_naive(model, X, y), slow_rounds))
        if torch is not None:
            contenders.append(("tfast", lambda: run_torch(f, inputs, True), rounds))
            if run_slow_torch:
                contenders.append(("tslow", lambda: run_torch(f, inputs, False), slow_rounds))
        for key, fn, n_rounds in contenders:  # warm-up (lazy imports, first calls), untimed
            if n_rounds > 1 or not big:
                fn()
        for r in range(rounds):
            order = contenders[r % len(contenders):] + contenders[: r % len(contenders)]
            for key, fn, n_rounds in order:
                if r >= n_rounds:
                    continue
                dt, out = timed(fn)
                times[key].append(dt)
                if key == "vg":
                    vg_report = out
                elif key == "naive":
                    naive_grad = out
                elif key in ("tslow", "tfast"):
                    torch_ok[key] = out
                elif key == "vgfast":
                    vg_fast_report = out
            print(f"  width {hidden}: round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
        rows_time.append([
            str(hidden), str(n_params), fmt_s(times["vg"]), fmt_s(times["naive"]), fmt_s(times["tslow"]),
            fmt_ratio(times["tslow"], times["vg"]), fmt_ratio(times["naive"], times["vg"]),
        ])
        assert vg_report is not None
        vg_acc = accuracy({k: vg_report[k].numerical for k in a}, a)
        naive_acc = accuracy(naive_grad, a) if naive_grad is not None else None
        rows_acc.append([
            str(n_params), f"{vg_acc[0]:.1e}", f"{vg_acc[1]:.1e}", "pass" if vg_report.passed else "FAIL",
            f"{naive_acc[0]:.1e}" if naive_acc else "skipped", f"{naive_acc[1]:.1e}" if naive_acc else "skipped",
            {True: "pass", False: "FAIL"}.get(torch_ok.get("tslow"), "skipped") if torch is not None else "no torch",
        ])
        fb = statistics.median(times["fb"])
        vgf = statistics.median(times["vgfast"])
        rows_fast.append([
            str(n_params), str(vg_fast_report.n_evals), f"{vgf * 1e3:.2f}", f"{fb * 1e3:.3f}", f"{vgf / fb:.1f}",
            f"{statistics.median(times['tfast']) * 1e3:.2f}" if times["tfast"] else "no torch",
        ])

    print("\n### Full check, seconds (median)\n")
    print_table(["hidden", "parameters", "verigrad full", "naive loop", "torch slow", "torch slow / verigrad",
                 "naive / verigrad"], rows_time)
    print("\n### Accuracy of the numerical gradient against the analytic one\n")
    print_table(["parameters", "verigrad rel L2", "verigrad max entry rel", "verigrad verdict",
                 f"naive (eps {NAIVE_EPS:g}) rel L2", "naive max entry rel", "torch slow"], rows_acc)
    print("\n### Fast mode (one forward+backward plus a few directional evaluations)\n")
    print_table(["parameters", "verigrad n_evals", "verigrad fast ms", "forward+backward ms",
                 "verigrad fast in fwd+bwd equivalents", "torch fast_mode ms"], rows_fast)


# ------------------------------------------------------------------------------------------------
# Table 4: numerical methods on a small MLP as a function of its flattened parameters
# ------------------------------------------------------------------------------------------------
def bench_methods(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(1)
    n_in, hidden, n_out, n = 4, 8, 3, 16
    model = NeuralNetwork([Dense(n_in, hidden, seed=3), Tanh(), Dense(hidden, n_out, seed=4), Sigmoid()])
    X = rng.normal(size=(n, n_in))
    Y = rng.uniform(size=(n, n_out))
    loss = MSELoss()
    g = analytic_grads(model, X, Y, loss)
    names = list(model.params())
    shapes = [model.params()[k].shape for k in names]
    theta0 = model.flat_params()
    grad = np.concatenate([g[k].ravel() for k in names])

    def fn(theta: np.ndarray) -> Any:
        """The same network and MSE written with complex-analytic NumPy (works for complex theta)."""
        parts, o = [], 0
        for s in shapes:
            size = int(np.prod(s))
            parts.append(theta[o:o + size].reshape(s))
            o += size
        W1, b1, W2, b2 = parts
        h = np.tanh(X @ W1 + b1)
        p = 1.0 / (1.0 + np.exp(-(h @ W2 + b2)))
        d = p - Y
        return (d * d).sum() / d.size

    assert abs(fn(theta0) - loss.forward(model.forward(X), Y)) < 1e-14
    rows = []
    results: dict[str, tuple[float, int, float]] = {}
    for method in ("central", "complex", "richardson"):
        ts = []
        for _ in range(args.method_rounds):
            dt, rep = timed(lambda: check_gradients(fn, grad, theta0, method=method, mode="full"))
            ts.append(dt)
        num = np.asarray(rep.numerical, dtype=np.float64)
        err = float(np.linalg.norm(num - grad) / np.linalg.norm(grad))
        results[method] = (err, rep.n_evals, statistics.median(ts))
    c_evals, c_time = results["central"][1], results["central"][2]
    for method, (err, n_evals, t) in results.items():
        rows.append([method, f"{err:.1e}", str(n_evals), f"{n_evals / theta0.size:.1f}", f"{n_evals / c_evals:.2f}",
                     f"{t * 1e3:.1f}", f"{t / c_time:.2f}"])
    print(f"\n### Numerical methods, {n_in}-{hidden}-{n_out} tanh/sigmoid MLP + MSE, {theta0.size} parameters, float64\n")
    print_table(["method", "rel L2 error vs analytic", "evaluations", "per entry", "evals / central",
                 "ms (median)", "time / central"], rows)


def print_table(header: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds; no naive loop / torch slow above 2e4 parameters")
    parser.add_argument("--rounds", type=int, default=None, help="rounds for the fast contenders (default 7, quick 3)")
    parser.add_argument("--skip-slow-torch-above", type=int, default=None, metavar="N",
                        help="skip torch gradcheck slow mode above N parameters (default: never; quick: 20000)")
    parser.add_argument("--skip-naive-above", type=int, default=None, metavar="N",
                        help="skip the naive loop above N parameters (default: never; quick: 20000)")
    parser.add_argument("--widths", type=lambda s: [int(v) for v in s.split(",")], default=list(WIDTHS),
                        help="hidden widths, comma-separated (default 14,135,1350)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="pin NumPy's BLAS (via threadpoolctl, when installed) and torch to N threads; "
                             "0 leaves both at their defaults (default 1: on a shared 2-core machine torch "
                             "with 2 threads stalls, e.g. gradcheck slow at 1e3 parameters 0.09 s -> 0.5-11 s)")
    args = parser.parse_args(argv)
    if args.threads == 0:
        args.threads = None
    if args.threads is not None:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            print("(threadpoolctl not installed: NumPy's BLAS threads left at their default)", file=sys.stderr)
        else:
            threadpool_limits(limits=args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
    if args.quick:
        args.skip_slow_torch_above = 20_000 if args.skip_slow_torch_above is None else args.skip_slow_torch_above
        args.skip_naive_above = 20_000 if args.skip_naive_above is None else args.skip_naive_above
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.method_rounds = 3 if args.quick else 7

    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch is not None else '(not installed)'}, {os.cpu_count()} CPUs; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}; "
          f"torch threads {torch.get_num_threads() if torch is not None else '-'}, "
          f"BLAS threads {'default' if args.threads is None else args.threads}; "
          f"rounds {args.rounds}{' (quick)' if args.quick else ''}")
    print(f"\nLoss CE(tanh(X W1 + b1) W2 + b2): {N_IN} inputs, {N_CLASSES} classes, batch {BATCH}, float64.")
    bench_sizes(args)
    bench_methods(args)


if __name__ == "__main__":
    main()
