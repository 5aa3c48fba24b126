"""False-alarm sweep: the checker on CORRECT models and ops over many seeds must never fail.

Every case is drawn from its seed (``np.random.default_rng(seed)``): a data set (blobs, moons, spirals,
quadratic; digits for 64-32-10), an architecture (2-16-2, 5-7-3, 64-32-10, a deep 6-layer sigmoid/tanh
net), a hidden activation (ReLU, LeakyReLU, Tanh, Sigmoid), a loss (softmax + cross-entropy, sigmoid +
BCE on logits, MSE), the dtype (float64 or float32 model and data), trained (a few epochs of
``verigrad.train.fit``) or untrained weights, and the batch (1, 16 or 256 rows). On each case:

* ``gradient_check(model, X, y, loss)`` (full mode, every parameter and the input),
* ``check_layers(model, X)`` (each layer in isolation against ``sum(layer(x) * dy)``),
* ``check_gradients`` on the hidden activation (elementwise, with a random ``dLdf``) and on the loss
  as a function of the predictions.

A correct model failing any of them is a false alarm; the script prints the counts per check and
the failing cases (seed, configuration, tensor, diagnosis, worst entry), so that each can be
reproduced with ``python benchmarks/false_alarms.py --seeds S --first S``.

Usage::

    python benchmarks/false_alarms.py                 # 240 seeds (about 2-4 minutes)
    python benchmarks/false_alarms.py --seeds 20      # quick
    python benchmarks/false_alarms.py --verbose       # one line per case

Exit status 0 when there is no false alarm, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from verigrad import nn
from verigrad import data as vdata
from verigrad.check import check_gradients, check_layers, gradient_check

ARCHS = ("2-16-2", "5-7-3", "64-32-10", "deep6")
DATASETS = ("blobs", "moons", "spirals", "quadratic")
ACTS = ("relu", "leaky_relu", "tanh", "sigmoid")
LOSSES = ("ce", "bce", "mse")
BATCHES = (1, 16, 256)


@dataclass(frozen=True)
class Case:
    """One configuration of the sweep, drawn from ``seed``."""

    seed: int
    arch: str
    dataset: str
    act: str
    loss: str
    dtype: str
    trained: bool
    batch: int

    def describe(self) -> str:
        return (f"seed {self.seed}: {self.arch} {self.act} {self.loss} on {self.dataset}, {self.dtype}, "
                f"{'trained' if self.trained else 'untrained'}, batch {self.batch}")


def draw_case(seed: int) -> Case:
    """The configuration of ``seed`` (uniform over the options that fit together)."""
    rng = np.random.default_rng(seed)
    arch = str(rng.choice(ARCHS))
    if arch == "64-32-10":
        dataset = "digits"
    else:
        dataset = str(rng.choice(DATASETS))
    act = str(rng.choice(("tanh", "sigmoid") if arch == "deep6" else ACTS))
    if dataset == "quadratic":
        loss = "mse"
    elif dataset in ("blobs", "moons") and arch in ("2-16-2", "deep6"):
        loss = str(rng.choice(LOSSES))
    else:
        loss = str(rng.choice(("ce", "mse")))
    dtype = str(rng.choice(("float64", "float32"), p=(0.7, 0.3)))
    trained = bool(rng.random() < 0.5)
    batch = int(rng.choice(BATCHES, p=(0.2, 0.6, 0.2)))
    return Case(seed, arch, dataset, act, loss, dtype, trained, batch)


def _features(X: np.ndarray, width: int) -> np.ndarray:
    """Widen 2-feature data to ``width`` features (x1, x2, x1**2, x2**2, x1 x2, ...)."""
    if X.shape[1] >= width:
        return X[:, :width]
    cols = [X[:, 0], X[:, 1], X[:, 0] ** 2, X[:, 1] ** 2, X[:, 0] * X[:, 1]]
    while len(cols) < width:
        cols.append(np.sin(cols[len(cols) - 5]))
    return np.stack(cols[:width], axis=1)


def _activation(name: str) -> Any:
    return {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[name]()


def build(case: Case) -> tuple[Any, np.ndarray, np.ndarray, Any]:
    """Model, batch ``X``, targets ``y`` and loss object of ``case`` (weights trained if asked)."""
    rng = np.random.default_rng(case.seed + 10_000)
    n = max(case.batch, 64)
    if case.dataset == "digits":
        X, y = vdata.load_digits()
        X = X / 16.0
    elif case.dataset == "blobs":
        X, y = vdata.make_blobs(n, rng=rng)
    elif case.dataset == "moons":
        X, y = vdata.make_moons(n, rng=rng)
    elif case.dataset == "spirals":
        X, y = vdata.make_spirals(n, rng=rng)
    else:
        X, y = vdata.make_quadratic(n, rng=rng)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    n_classes = int(y.max()) + 1 if case.dataset != "quadratic" else 1
    if case.arch == "deep6":
        sizes = [2, 8, 8, 8, 8, 8]
    else:
        sizes = [int(v) for v in case.arch.split("-")[:-1]]
    n_out = int(case.arch.split("-")[-1]) if case.arch != "deep6" else max(n_classes, 2)
    if case.loss == "bce":
        n_out = 1
    elif case.dataset == "quadratic":
        n_out = 1
    else:
        n_out = max(n_out, n_classes)
    X = _features(X, sizes[0])
    sizes = sizes + [n_out]
    dt = np.float64 if case.dtype == "float64" else np.float32
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Dense(a, b, rng=rng, dtype=dt))
        if i < len(sizes) - 2:
            layers.append(_activation(case.act))
    model = nn.NeuralNetwork(layers)
    if case.loss == "ce":
        loss: Any = nn.CrossEntropyLoss()
        targets = y.reshape(-1).astype(np.int64)
    elif case.loss == "bce":
        loss = nn.BCEWithLogitsLoss()
        targets = y.reshape(-1, 1).astype(np.float64)
    else:
        loss = nn.MSELoss()
        if case.dataset == "quadratic":
            targets = y.reshape(len(y), -1).astype(np.float64)
        else:
            targets = np.eye(n_out)[y.reshape(-1).astype(np.int64)]
    X = X.astype(dt)
    if targets.dtype.kind == "f":
        targets = targets.astype(dt)
    if case.trained:
        from verigrad.data import DataLoader
        from verigrad.train import fit

        sub = rng.permutation(X.shape[0])[:256]  # a few epochs on at most 256 rows
        loader = DataLoader(X[sub], targets[sub], batch_size=32, shuffle=True, seed=case.seed)
        fit(model, loss, nn.SGD(model.params(), lr=0.1), loader, epochs=3, metrics=(), progress=False)
    take = rng.permutation(X.shape[0])[: case.batch]
    return model, X[take], targets[take], loss


def _failures(report: Any) -> list[str]:
    """One line per failing tensor of a report (ModelReport or LayersReport)."""
    out = []
    layers = getattr(report, "layers", None)
    if layers is not None:
        for i, name, rep in layers:
            out += [f"layer {i} ({name}) {line}" for line in _failures(rep)]
        return out
    for name, r in report.items():
        if not r.passed:
            worst = r.worst.describe() if r.worst is not None else ""
            out.append(f"{name}: {r.diagnosis.kind}: {r.diagnosis.message[:90]} {worst}")
    if not out and not report.passed:
        diag = getattr(report, "diagnosis", None)
        out.append(f"{getattr(diag, 'kind', '?')}: {getattr(diag, 'message', '')[:120]}")
    return out


def op_checks(case: Case, model: Any, X: np.ndarray, y: np.ndarray, loss: Any) -> list[tuple[str, Any]]:
    """``check_gradients`` on the hidden activation and on the loss of ``case``."""
    rng = np.random.default_rng(case.seed + 20_000)
    out = []
    first = model.layers[0]
    z = np.asarray(first.forward(X), dtype=X.dtype)
    act = _activation(case.act)
    dLdf = rng.standard_normal(z.shape)

    def act_grad(v: np.ndarray) -> np.ndarray:
        act.forward(v)
        return np.asarray(act.backward(dLdf.astype(v.dtype)))

    out.append(("activation", check_gradients(lambda v: act.forward(v), act_grad, z, dLdf, seed=case.seed)))
    pred = np.asarray(model.forward(X), dtype=X.dtype)
    out.append(("loss", check_gradients(lambda p: loss.forward(p, y), lambda p: loss.backward(p, y), pred,
                                        seed=case.seed)))
    return out


CHECKS = ("gradient_check", "check_layers", "check_gradients")


def run(case: Case, checks: tuple[str, ...] = CHECKS) -> dict[str, list[str]]:
    """Run the checks on ``case``; returns the failure lines per check (empty: no false alarm)."""
    model, X, y, loss = build(case)
    fails: dict[str, list[str]] = {}
    big_input = X.size > 4096
    if "gradient_check" in checks:
        rep = gradient_check(model, X, y, loss, seed=case.seed, check_input=not big_input)
        fails["gradient_check"] = [] if rep.passed else _failures(rep)
    if "check_layers" in checks:
        lrep = check_layers(model, X, seed=case.seed) if not big_input else None
        fails["check_layers"] = [] if lrep is None or lrep.passed else _failures(lrep)
    if "check_gradients" in checks:
        lines = []
        for name, rep in op_checks(case, model, X, y, loss):
            if not rep.passed:
                worst = rep.worst.describe() if rep.worst is not None else ""
                lines.append(f"{name}: {rep.diagnosis.kind}: {rep.diagnosis.message[:90]} {worst}")
        fails["check_gradients"] = lines
    return fails


def sweep(seeds: range, checks: tuple[str, ...] = CHECKS, verbose: bool = False,
          emit: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every seed; returns counts of runs and false alarms per check and the failing cases."""
    runs = {c: 0 for c in checks}
    alarms = {c: 0 for c in checks}
    failing: list[tuple[Case, str, list[str]]] = []
    for seed in seeds:
        case = draw_case(seed)
        t0 = time.perf_counter()
        res = run(case, checks)
        for c, lines in res.items():
            runs[c] += 1
            if lines:
                alarms[c] += 1
                failing.append((case, c, lines))
        if verbose:
            bad = [c for c, lines in res.items() if lines]
            emit(f"{case.describe():90s} {time.perf_counter() - t0:6.2f} s  {'FALSE ALARM: ' + ', '.join(bad) if bad else 'ok'}")
    return {"runs": runs, "alarms": alarms, "failing": failing}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=240, help="number of seeds (default 240)")
    parser.add_argument("--first", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--verbose", action="store_true", help="one line per case")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    out = sweep(range(args.first, args.first + args.seeds), verbose=args.verbose)
    print(f"\nfalse-alarm sweep over seeds {args.first}..{args.first + args.seeds - 1} "
          f"({time.perf_counter() - t0:.0f} s)")
    for c in CHECKS:
        print(f"  {c:16s} {out['alarms'][c]:3d} false alarms in {out['runs'][c]} correct cases")
    for case, c, lines in out["failing"]:
        print(f"\n{c} FALSE ALARM, {case.describe()}")
        for line in lines:
            print(f"    {line}")
    return 0 if not out["failing"] else 1


if __name__ == "__main__":
    sys.exit(main())
