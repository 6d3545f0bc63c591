"""Benchmark of `ftstudy plan`: accuracy against published memory figures, and speed.

1. Each published case of shared/docs/performance-reference.md §4 (ftstudy/plan/published.py): source,
   published figure, the planner's prediction and the error in percent (target: within 15%).
2. Time to plan every experiment × method on dgx-spark and h100 (target: under a second in total), beside
   a trivial baseline measured in the same run: generating the same Axolotl configs with gen.build alone.
3. Optional: run folders given as arguments are checked (predicted vs measured peak memory and tokens/s,
   via planner_check.predict_for_run); the tiny-model-on-CPU RSS target is within 25%.

Example:
    $ .venv/bin/python tests/benchmarks/bench_planner.py
    $ .venv/bin/python tests/benchmarks/bench_planner.py runs/code/lora-cpu-*   # add measured runs
"""
from __future__ import annotations

import statistics
import sys
import time

from ftstudy.config import gen
from ftstudy.plan import estimate as planner
from ftstudy.plan import published as planner_cases
from ftstudy.plan import check as planner_check
from ftstudy.config import registry

PROFILES = ("dgx-spark", "h100")
REPEATS = 7


def pairs() -> list[tuple[str, str, str]]:
    return [(e.id, m, hw) for hw in PROFILES for e in registry.experiments() for m in e.methods]


def time_pass(fn) -> float:
    start = time.perf_counter()
    for exp, method, hw in pairs():
        fn(exp, method, hw)
    return time.perf_counter() - start


def published() -> bool:
    rows = planner_cases.table()
    print("1. published cases (performance-reference.md §4); target |error| <= 15%\n")
    print(f"  {'case':<32}{'tag':<5}{'published':>11}{'predicted':>11}{'error':>9}  source")
    for r in rows:
        print(f"  {r['id']:<32}[{r['tag']}]  {r['published']:>7.2f} {r['unit']:<3}{r['predicted']:>7.2f} {r['unit']:<3}"
              f"{r['error_pct']:>+8.1f}%  {r['source']}")
    for r in rows:
        print(f"    {r['id']}: {r['what']}; assumes {r['assumes']}")
    worst = max(abs(r["error_pct"]) for r in rows)
    print(f"\n  worst |error| {worst:.1f}% over {len(rows)} cases: {'PASS' if worst <= 15 else 'FAIL'}\n")
    return worst <= 15


def speed() -> bool:
    n = len(pairs())
    time_pass(lambda e, m, hw: gen.build(e, m, hw))  # load the registry once: both sides start warm on it
    cold = time_pass(planner.plan)  # first planner pass: reads model configs and calibration
    plan_t = statistics.median(time_pass(planner.plan) for _ in range(REPEATS))
    base_t = statistics.median(time_pass(lambda e, m, hw: gen.build(e, m, hw)) for _ in range(REPEATS))
    print(f"2. plan every experiment × method on {' and '.join(PROFILES)}: {n} plans; target < 1 s in total\n")
    print(f"  planner, first pass        {cold * 1000:8.1f} ms")
    print(f"  planner, median of {REPEATS}      {plan_t * 1000:8.1f} ms  ({plan_t / n * 1000:.2f} ms per plan)")
    print(f"  baseline gen.build alone   {base_t * 1000:8.1f} ms")
    print(f"  planner / baseline         {plan_t / base_t:8.1f}x")
    ok = max(cold, plan_t) < 1.0
    print(f"\n  {'PASS' if ok else 'FAIL'}\n")
    return ok


def runs(dirs: list[str]) -> bool:
    print(f"3. measured runs ({len(dirs)}); target: tiny model on CPU, peak memory within 25%\n")
    ok = True
    for d in dirs:
        c = planner_check.check(d)
        for r in c["rows"]:
            meas = f"{r['measured']:.3f}" if r["measured"] is not None else "-"
            err = f"{r['error_pct']:+.1f}%" if r["error_pct"] is not None else "-"
            print(f"  {d}  {r['quantity']:<18} predicted {r['predicted']:.3f}  measured {meas}  error {err}")
            if r["quantity"] == "peak_memory_gb" and c.get("hardware") == "cpu" and r["error_pct"] is not None:
                ok &= abs(r["error_pct"]) <= 25
    print()
    return ok


def main(argv: list[str]) -> int:
    ok = published() & speed()
    if argv:
        ok &= runs(argv)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
