"""Benchmark of the paired bootstrap on a large comparison: 10,000 items x 10,000 resamples.

Printed beside a baseline measured in the same run: drawing the same resample indices with numpy and taking
their means once (the least work any bootstrap of this size does). Target: the full paired comparison
(bootstrap CI + sign-flip p-value) within 5x the baseline.

Example:
    $ .venv/bin/python tests/benchmarks/bench_stats.py
"""
from __future__ import annotations

import random
import time

from ftstudy.eval import stats

N, RESAMPLES, TARGET = 10_000, 10_000, 5.0


def scores(n: int, p: float, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    return {f"item-{i}": float(rng.random() < p) for i in range(n)}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def baseline(diffs) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for start in range(0, RESAMPLES, 400):
        rows = min(400, RESAMPLES - start)
        diffs[rng.integers(0, len(diffs), size=(rows, len(diffs)))].mean(axis=1)


if __name__ == "__main__":
    import numpy as np

    base, tuned = scores(N, 0.5, seed=9), scores(N, 0.52, seed=10)
    diffs = np.array([tuned[k] - base[k] for k in sorted(base)])
    floor = min(timed(lambda: baseline(diffs)) for _ in range(3))
    took = min(timed(lambda: stats.paired_bootstrap(base, tuned, n_resamples=RESAMPLES, seed=0)) for _ in range(3))
    ratio = took / floor
    print(f"paired_bootstrap, {N} items x {RESAMPLES} resamples: {took:.2f} s; baseline (resample means only) "
          f"{floor:.2f} s; ratio {ratio:.1f}x (target <= {TARGET:g}x): {'ok' if ratio <= TARGET else 'MISSED'}")
