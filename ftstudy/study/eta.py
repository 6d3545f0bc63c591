"""Progress for a whole study: each stage's line carries that stage's ETA and the study's overall ETA.

The expected seconds of each (run, stage) come from the best source at hand: the seconds the same stage took
last time (recorded in state/), else the planner's training-time prediction, else a reference figure. As
stages finish, every expectation left is scaled by how fast this machine has been so far (measured seconds /
expected seconds of the finished stages), so a loaded or slow machine gets honest ETAs after the first stage.

Example:
    >>> clock = Clock({("lora", "train"): 60.0, ("lora", "bench-ft"): 30.0})
    >>> clock.start("lora", "train")
    'ETA 1 min · study 1 min 30 s left'
    >>> clock.finish("lora", "train", seconds=120.0)   # twice as slow as expected
    >>> clock.start("lora", "bench-ft")
    'ETA 1 min · study 1 min left'
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Hashable

TRUST = 20.0  # expected seconds of finished stages before their speed rescales the ETAs


def fmt(seconds: float) -> str:
    """A short duration: `45 s`, `3 min 20 s`, `1 h 05 min`.

    Example:
        >>> fmt(200), fmt(3900), fmt(12)
        ('3 min 20 s', '1 h 05 min', '12 s')
    """
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, s = divmod(s, 60)
        return f"{m} min" + (f" {s:02d} s" if s and m < 10 else "")
    h, m = divmod(s // 60, 60)
    return f"{h} h {m:02d} min"


class Clock:
    """Expected seconds per step key, corrected by the measured/expected ratio of the steps already done."""

    def __init__(self, expected: dict[Hashable, float]):
        self.expected = {k: max(0.0, float(v)) for k, v in expected.items()}
        self.done: dict[Hashable, float] = {}
        self.lanes = 1  # steps that run side by side (the demo's experiments, one per core)
        self._lock = threading.Lock()  # the demo's lanes finish steps from their own threads

    def _snapshot(self) -> tuple[dict[Hashable, float], dict[Hashable, float]]:
        with self._lock:
            return dict(self.expected), dict(self.done)

    def ratio(self) -> float:
        """How much slower (>1) or faster (<1) than expected this machine has been; 1 until stages expected to
        take TRUST seconds have finished (a few seconds of bookkeeping say nothing about training speed)."""
        expected, done = self._snapshot()
        exp = sum(expected.get(k, 0.0) for k in done)
        got = sum(done.values())
        return got / exp if exp >= TRUST and got > 0 else 1.0

    def left(self) -> float:
        """Seconds expected for the steps not finished yet."""
        expected, done = self._snapshot()
        return self.ratio() * sum(v for k, v in expected.items() if k not in done) / self.lanes

    def start(self, *key: Hashable) -> str:
        """The suffix of a stage's progress line: this stage's ETA and the whole study's time left."""
        this = self.ratio() * self.expected.get(key, 0.0)
        return f"ETA {fmt(this)} · study {fmt(self.left())} left"

    def finish(self, *key: Hashable, seconds: float) -> None:
        with self._lock:
            self.done[key] = max(0.0, float(seconds))

    def skip(self, *key: Hashable) -> None:
        """A cached stage: nothing left to do for it, and it says nothing about this machine's speed."""
        with self._lock:
            self.expected[key] = 0.0
            self.done[key] = 0.0


# Seconds of the stages around training when nothing better is known (bench stages depend on the benchmark;
# a measured run replaces these at once).
OTHER_STAGE_S = {"prepare": 30.0, "merge": 120.0, "bench-base": 600.0, "bench-ft": 600.0, "compare": 1.0}


def study_clock(todo: list[tuple[str, str]], hardware: str, base_model: str, root: Path = Path(".")) -> Clock:
    """A clock for `ftstudy run`: per (experiment, method, stage) the seconds recorded in state/ by an earlier
    run, else for training the planner's prediction for this hardware, else OTHER_STAGE_S."""
    from ftstudy.config import gen
    from ftstudy.plan import estimate as planner
    from ftstudy.config import registry
    from ftstudy.study import study
    from ftstudy.study.study_state import read_state
    from ftstudy.core.names import under

    expected: dict[Hashable, float] = {}
    for exp_id, method in todo:
        path = under(root / "state", "{experiment}", "{method}-{hardware}.json", experiment=exp_id, method=method,
                     hardware=hardware)
        state = read_state(path) if path.exists() else {}
        for stage in study.STAGES:
            took = (state.get(stage) or {}).get("seconds")
            if took:
                expected[(exp_id, method, stage)] = float(took)
            elif stage == "train":
                try:
                    cfg = gen.build(exp_id, method, hardware, base_model)
                    hours = planner.estimate(cfg, hardware, registry.experiment(exp_id), method)["hours"]
                except Exception:  # a config the planner cannot read: no training figure rather than no run
                    hours = None
                expected[(exp_id, method, stage)] = 3600.0 * hours if hours else 0.0
            else:
                expected[(exp_id, method, stage)] = OTHER_STAGE_S[stage]
    return Clock(expected)
