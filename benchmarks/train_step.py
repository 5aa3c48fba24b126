"""Microseconds per SGD training step: verigrad vs hand-written NumPy vs PyTorch eager (CPU).

One step = forward + softmax cross-entropy loss + backward + SGD update, on a fixed batch, for
MLPs with ReLU hidden layers:

    2-16-2             batch 32
    784-256-10         batch 128
    1024-1024-1024-10  batch 256

in float32 and float64. Contenders:

(a) verigrad   NeuralNetwork([Dense, ReLU, ..., Dense]) + CrossEntropyLoss + SGD, the calls fit() makes:
               pred = model.forward(X); loss.forward(pred, y);
               model.backward(loss.backward(pred, y), input_grad=False); opt.step(model.grads())
               (input_grad=False, no dL/dX for the data, when NeuralNetwork.backward accepts it)
(b) hand       the same maths written inline in NumPy, as a student would (no classes, no checks)
(c) torch      nn.Sequential(Linear, ReLU, ...) + F.cross_entropy + torch.optim.SGD, eager CPU,
               torch.set_num_threads = the number of BLAS threads NumPy uses
(info) fit()   verigrad.train.fit, 4 epochs of 8 shuffled batches with the accuracy metric, per step:
               (a) plus the DataLoader's shuffled batches, the metric and the loop's bookkeeping

The contenders are interleaved round-robin (the order rotates every repetition), each
repetition timing a block of steps sized to last a few milliseconds; the table reports
medians over repetitions and the ratios verigrad/torch and verigrad/hand (< 1: verigrad is
faster), each the median over repetitions of the ratio measured within one repetition (the
contenders run back to back there, so load from other processes that comes and goes affects
both sides of a ratio alike). All three start from the same weights.

Targets: verigrad/torch <= 0.25 (smallest shape), <= 0.9 (middle), <= 1.0 (largest);
verigrad/hand <= 1.25 everywhere.

Usage::

    python benchmarks/train_step.py              # full run, one thread per library
    python benchmarks/train_step.py --quick      # fewer repetitions
    python benchmarks/train_step.py --threads 0  # the libraries' default thread counts
    python benchmarks/train_step.py --profile    # plus where a verigrad step spends its time
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_step.py
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from verigrad.nn import SGD, CrossEntropyLoss, Dense, NeuralNetwork, ReLU

SHAPES: list[tuple[tuple[int, ...], int]] = [
    ((2, 16, 2), 32),
    ((784, 256, 10), 128),
    ((1024, 1024, 1024, 10), 256),
]
TARGET_TORCH = {0: 0.25, 1: 0.9, 2: 1.0}
#: NeuralNetwork.backward(grad, input_grad=False) skips the first layer's unused dL/dX (fit() uses it)
SKIP_INPUT_GRAD = "input_grad" in inspect.signature(NeuralNetwork.backward).parameters
TARGET_HAND = 1.25
LR = 0.01


def blas_threads() -> int:
    """Number of threads NumPy's BLAS uses (threadpoolctl when available, else the environment)."""
    try:
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            return int(infos[0]["num_threads"])
    except ImportError:
        pass
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# contenders: each builder returns a zero-argument function doing one training step
# ---------------------------------------------------------------------------------------------
def build_verigrad(sizes, dtype) -> tuple[NeuralNetwork, CrossEntropyLoss, SGD]:
    """The verigrad MLP (Dense + ReLU, He init, seeds 0, 1, ...), its loss and its SGD optimizer."""
    layers: list = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(a, b, seed=i, dtype=dtype, init="he"))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    model = NeuralNetwork(layers)
    return model, CrossEntropyLoss(), SGD(model.params(), lr=LR)


def make_verigrad(sizes, X, y, dtype) -> tuple[Callable[[], None], list[np.ndarray]]:
    model, loss, opt = build_verigrad(sizes, dtype)
    weights = [p.copy() for p in model.params().values()]  # W_0, b_0, W_2, b_2, ...

    if SKIP_INPUT_GRAD:  # what fit() does: the data's gradient dL/dX is not needed for training

        def step() -> None:
            pred = model.forward(X)
            loss.forward(pred, y)
            model.backward(loss.backward(pred, y), input_grad=False)
            opt.step(model.grads())

    else:

        def step() -> None:
            pred = model.forward(X)
            loss.forward(pred, y)
            model.backward(loss.backward(pred, y))
            opt.step(model.grads())

    return step, weights


FIT_BATCHES = 8
FIT_EPOCHS = 4


def make_fit(sizes, X, y, dtype) -> Callable[[], None]:
    """``verigrad.train.fit`` for FIT_EPOCHS epochs of FIT_BATCHES shuffled batches (accuracy metric, no progress)."""
    from verigrad.data import DataLoader
    from verigrad.train import fit

    model, loss, opt = build_verigrad(sizes, dtype)
    loader = DataLoader(np.concatenate([X] * FIT_BATCHES), np.concatenate([y] * FIT_BATCHES),
                        batch_size=X.shape[0], shuffle=True, seed=0)

    def run() -> None:
        fit(model, loss, opt, loader, epochs=FIT_EPOCHS, metrics=("accuracy",), progress=False)

    return run


def make_hand(weights, X, y, dtype) -> Callable[[], None]:
    Ws = [w.copy() for w in weights[0::2]]
    bs = [b.copy() for b in weights[1::2]]
    n = X.shape[0]
    rows = np.arange(n)
    lr = dtype(LR)

    def step() -> None:
        # forward
        acts = [X]
        zs = []
        a = X
        for i in range(len(Ws)):
            z = a @ Ws[i] + bs[i]
            zs.append(z)
            a = np.maximum(z, 0) if i < len(Ws) - 1 else z
            acts.append(a)
        logits = acts[-1]
        m = logits.max(axis=1, keepdims=True)
        e = np.exp(logits - m)
        s = e.sum(axis=1, keepdims=True)
        _loss = np.mean(np.log(s[:, 0]) + m[:, 0] - logits[rows, y])
        # backward
        d = e / s
        d[rows, y] -= 1
        d /= n
        for i in range(len(Ws) - 1, -1, -1):
            dW = acts[i].T @ d
            db = d.sum(axis=0)
            if i > 0:
                d = (d @ Ws[i].T) * (zs[i - 1] > 0)
            Ws[i] -= lr * dW
            bs[i] -= lr * db

    return step


def make_torch(weights, X, y, dtype, threads) -> Callable[[], None] | None:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(threads)
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    mods: list = []
    Ws, bs = weights[0::2], weights[1::2]
    for i, (W, b) in enumerate(zip(Ws, bs)):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=tdtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(Ws) - 1:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    tX = torch.from_numpy(X)
    ty = torch.from_numpy(y.astype(np.int64))

    def step() -> None:
        opt.zero_grad()
        loss = F.cross_entropy(model(tX), ty)
        loss.backward()
        opt.step()

    return step


# ---------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------
def block_size(step: Callable[[], None], target_s: float) -> int:
    """Steps per timed block so that one block lasts about ``target_s`` seconds."""
    step()
    t0 = time.perf_counter()
    step()
    dt = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(target_s / dt))


def measure(contenders: dict[str, Callable[[], None]], reps: int, target_s: float,
            steps_per_call: dict[str, int] | None = None) -> dict[str, float]:
    """Median microseconds per step of each contender, interleaved round-robin.

    ``steps_per_call[name]``: training steps one call of that contender performs (default 1).
    """
    return {k: statistics.median(v) for k, v in measure_samples(contenders, reps, target_s, steps_per_call).items()}


def measure_samples(contenders: dict[str, Callable[[], None]], reps: int, target_s: float,
                    steps_per_call: dict[str, int] | None = None) -> dict[str, list[float]]:
    """Microseconds per step of each contender in every repetition (interleaved round-robin).

    Within one repetition all contenders run back to back, so ``samples[a][r] / samples[b][r]``
    compares them under the same machine load.
    """
    steps_per_call = steps_per_call or {}
    names = list(contenders)
    inner = {k: block_size(f, target_s) for k, f in contenders.items()}
    for k, f in contenders.items():  # warm-up
        for _ in range(inner[k]):
            f()
    samples: dict[str, list[float]] = {k: [] for k in names}
    for r in range(reps):
        order = names[r % len(names):] + names[: r % len(names)]
        for k in order:
            f, m = contenders[k], inner[k]
            t0 = time.perf_counter()
            for _ in range(m):
                f()
            samples[k].append((time.perf_counter() - t0) / (m * steps_per_call.get(k, 1)) * 1e6)
    return samples


def ratio(samples: dict[str, list[float]], a: str, b: str) -> float:
    """Median over repetitions of ``a / b`` timed in the same repetition (robust to load that comes and goes)."""
    return statistics.median(x / y for x, y in zip(samples[a], samples[b]))


def blas_products(model: NeuralNetwork, X: np.ndarray) -> tuple[list[Callable[[], object]], list[Callable[[], object]]]:
    """The matrix products of one training step (input_grad=False), as NumPy and as torch calls.

    Needs a forward and a backward of ``model`` done (reads ``outputs`` and ``output_grads``). Per
    Dense layer ``i`` with input ``a`` and output gradient ``dz`` (np.matmul): ``a @ W``, ``a.T @ dz`` and, except
    for the first layer, ``dz @ W.T``; torch gets the same products in nn.Linear's layout (weight
    ``Wt = W.T`` stored (out, in)): ``a @ Wt.T`` (its addmm), ``dz.T @ a`` and ``dz @ Wt``. The torch
    list is empty when torch is missing.
    """
    dense = [i for i, layer in enumerate(model.layers) if isinstance(layer, Dense)]
    triples = []
    for i in dense:
        a = X if i == 0 else model.outputs[i - 1]
        triples.append((i, a, model.layers[i].params["W"], model.output_grads[i]))
    mm = np.matmul
    np_calls: list[Callable[[], object]] = []
    for i, a, W, dz in triples:
        np_calls += [lambda a=a, W=W: mm(a, W), lambda a=a, dz=dz: mm(a.T, dz)]
        if i:
            np_calls.append(lambda dz=dz, W=W: mm(dz, W.T))
    torch_calls: list[Callable[[], object]] = []
    try:
        import torch
    except ImportError:
        return np_calls, torch_calls
    for i, a, W, dz in triples:
        ta, tdz = torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(dz))
        tW = torch.from_numpy(np.ascontiguousarray(W.T))
        torch_calls += [lambda ta=ta, tW=tW: ta @ tW.t(), lambda ta=ta, tdz=tdz: tdz.t() @ ta]
        if i:
            torch_calls.append(lambda tdz=tdz, tW=tW: tdz @ tW)
    return np_calls, torch_calls


def profile(si: int, dname: str, reps: int, target_s: float) -> None:
    """Print where a verigrad step spends its time (each phase timed alone, interleaved, medians)."""
    sizes, batch = SHAPES[si]
    dtype = np.dtype(dname).type
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], size=batch).astype(np.int64)
    step, weights = make_verigrad(sizes, X, y, dtype)
    # a second, identical model whose phases are timed one by one
    model, loss, opt = build_verigrad(sizes, dtype)
    pred = model.forward(X)
    g = loss.backward(pred, y)
    model.backward(g)
    grads = model.grads()
    dz0 = model.output_grads[0]
    W0 = model.layers[0].params["W"]
    phases: dict[str, Callable[[], object]] = {
        "verigrad step (total)": step,
        "hand-written step (total)": make_hand(weights, X, y, dtype),
    }
    torch_step = make_torch(weights, X, y, dtype, blas_threads())
    if torch_step is not None:
        phases["torch step (total)"] = torch_step
    phases |= {
        "model.forward": lambda: model.forward(X),
        "  np.isfinite(X).all() for comparison (verigrad remembers a small checked X)": lambda: np.isfinite(X).all(),
        "loss.forward": lambda: loss.forward(pred, y),
        "loss.backward": lambda: loss.backward(pred, y),
        "model.backward(g) (with dL/dX)": lambda: model.backward(g),
        "  of which first layer dL/dX = dz @ W0.T (unused in training)": lambda: dz0 @ W0.T,
    }
    if SKIP_INPUT_GRAD:
        phases["model.backward(g, input_grad=False) (what fit uses)"] = lambda: model.backward(g, input_grad=False)
    phases["model.grads()"] = model.grads
    phases["opt.step(grads)"] = lambda: opt.step(grads)
    if hasattr(opt, "_check_grads"):
        phases["  of which opt._check_grads"] = lambda: opt._check_grads(grads)
    # the BLAS floor: the matrix products of one training step alone, np.matmul (NumPy's BLAS, as
    # Dense computes them on large layers) and torch (as nn.Linear's autograd, weight stored (out, in))
    products = blas_products(model, X)
    phases["matrix products of a step alone, NumPy"] = lambda: [f() for f in products[0]]
    if products[1]:
        phases["the same products, torch (its BLAS)"] = lambda: [f() for f in products[1]]
    med = measure(phases, reps, target_s)  # type: ignore[arg-type]
    print(f"### profile: {'-'.join(map(str, sizes))}, batch {batch}, {dname}")
    print()
    print("| phase | µs (median) |")
    print("|---|---:|")
    for k, v in med.items():
        print(f"| {k} | {v:.1f} |")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a rough figure in seconds)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per contender (default 25, quick 7)")
    parser.add_argument("--dtypes", default="float32,float64", help="comma-separated dtypes")
    parser.add_argument("--shapes", default="0,1,2", help="comma-separated shape indices (0 small .. 2 large)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for NumPy's BLAS (threadpoolctl) and torch (default 1: with two threads "
                             "each, the libraries' spinning worker threads fight over 2 cores when the "
                             "contenders alternate); 0 keeps the libraries' defaults")
    parser.add_argument("--no-fit", action="store_true", help="skip the fit() column")
    parser.add_argument("--profile", action="store_true",
                        help="also time each phase of a verigrad step (forward, loss, backward, update)")
    args = parser.parse_args(argv)
    reps = args.reps or (7 if args.quick else 25)
    target_s = 0.004 if args.quick else 0.01
    if args.threads:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            parser.error("--threads needs threadpoolctl (pip install threadpoolctl)")
        threadpool_limits(limits=args.threads, user_api="blas")
    threads = blas_threads()

    import importlib.util

    have_torch = importlib.util.find_spec("torch") is not None
    tv = "missing (torch column skipped)"
    if have_torch:
        import torch

        tv = torch.__version__
    print("# verigrad training step benchmark")
    print()
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {tv}, "
          f"{os.cpu_count()} CPUs, BLAS threads {threads}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} "
          f"OPENBLAS_L2_SIZE={os.environ.get('OPENBLAS_L2_SIZE', '(unset)')}; reps {reps}; "
          f"verigrad backward input_grad=False: {SKIP_INPUT_GRAD}")
    print()
    header = ("| shape | batch | dtype | verigrad µs | hand µs | torch µs | verigrad/torch | target | "
              "verigrad/hand | target | fit() µs/step |")
    print(header)
    print("|---|---:|---|---:|---:|---:|---:|---|---:|---|---:|")
    sys.stdout.flush()
    all_ok = True
    for si in [int(s) for s in args.shapes.split(",")]:
        sizes, batch = SHAPES[si]
        for dname in args.dtypes.split(","):
            dtype = np.dtype(dname).type
            rng = np.random.default_rng(0)
            X = rng.standard_normal((batch, sizes[0])).astype(dtype)
            y = rng.integers(0, sizes[-1], size=batch).astype(np.int64)
            vg, weights = make_verigrad(sizes, X, y, dtype)
            contenders = {"verigrad": vg, "hand": make_hand(weights, X, y, dtype)}
            ts = make_torch(weights, X, y, dtype, threads) if have_torch else None
            if ts is not None:
                contenders["torch"] = ts
            if not args.no_fit:
                contenders["fit"] = make_fit(sizes, X, y, dtype)
            samples = measure_samples(contenders, reps, target_s, {"fit": FIT_BATCHES * FIT_EPOCHS})
            med = {k: statistics.median(v) for k, v in samples.items()}
            r_hand = ratio(samples, "verigrad", "hand")
            ok_hand = r_hand <= TARGET_HAND
            if "torch" in med:
                r_torch = ratio(samples, "verigrad", "torch")
                ok_torch = r_torch <= TARGET_TORCH[si]
                torch_cells = (f"{med['torch']:.1f}", f"{r_torch:.3f}",
                               f"<= {TARGET_TORCH[si]} {'ok' if ok_torch else 'MISSED'}")
            else:
                ok_torch = True
                torch_cells = ("n/a", "n/a", "torch missing")
            all_ok &= ok_hand and ok_torch
            fit_cell = f"{med['fit']:.1f}" if "fit" in med else "-"
            print(f"| {'-'.join(map(str, sizes))} | {batch} | {dname} | {med['verigrad']:.1f} | {med['hand']:.1f} | "
                  f"{torch_cells[0]} | {torch_cells[1]} | {torch_cells[2]} | {r_hand:.3f} | "
                  f"<= {TARGET_HAND} {'ok' if ok_hand else 'MISSED'} | {fit_cell} |")
            sys.stdout.flush()
    print()
    print("all targets met" if all_ok else "some targets MISSED")
    if args.profile:
        print()
        for si in [int(s) for s in args.shapes.split(",")]:
            for dname in args.dtypes.split(","):
                profile(si, dname, reps, target_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
