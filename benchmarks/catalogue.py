"""Count caught bugs and false alarms over the checker's catalogue (tests/check/catalogue.py).

Run: ``python benchmarks/catalogue.py``. Prints one row per case: case, expected kind, kind obtained,
verdict, caught? (for correct code: "no false alarm"), evaluations used; then the totals.
"""

from __future__ import annotations

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "check"))

from catalogue import CASES, run_case  # noqa: E402


def main() -> int:
    rows = []
    caught = missed = alarms = clean = 0
    for case in CASES:
        t0 = time.perf_counter()
        rep, kind, ok = run_case(case)
        dt = time.perf_counter() - t0
        if case.should_pass:
            clean += ok
            alarms += not ok
            verdict_note = "no false alarm" if ok else "FALSE ALARM"
        else:
            caught += ok
            missed += not ok
            verdict_note = "caught" if ok else ("wrong kind" if not rep.passed else "MISSED")
        rows.append((case.name, case.expected, kind, rep.verdict, verdict_note, str(rep.n_evals), f"{dt * 1e3:.1f}"))
    head = ("case", "expected kind", "got kind", "verdict", "caught?", "evals", "ms")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    n_wrong = caught + missed
    n_ok = clean + alarms
    print()
    print(f"wrong backward passes caught with the right diagnosis: {caught}/{n_wrong}")
    print(f"correct backward passes flagged (false alarms):        {alarms}/{n_ok}")
    return 0 if missed == 0 and alarms == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
