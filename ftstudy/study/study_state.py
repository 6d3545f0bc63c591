"""A study's options and its state file, state/<exp>/<method>-<hardware>.json: each stage's status and the key
(a hash of its inputs) it ran with, plus the options it ran with (so `ftstudy status` can tell what is stale).
Read back through `core.checked_json` (schema core/file_schemas/state.schema.json), so a hand-edited state file
fails in one line naming the file and the field, and written as strict JSON (no NaN: a diverged loss is stored
as null, with the reason).

Example:
    >>> state_path(Options("classification", "lora", "cpu"))
    PosixPath('state/classification/lora-cpu.json')
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ftstudy.config import gen
from ftstudy.config import registry
from ftstudy.core import checked_json

STAGES = ("prepare", "train", "merge", "bench-base", "bench-ft", "compare")
SHARED = ("prepare", "bench-base")  # the same for every method of an experiment: done once


@dataclass
class Options:
    experiment: str
    method: str | None = None
    hardware: str = "dgx-spark"
    base_model: str = gen.DEFAULT_BASE_MODEL
    data: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    limit: int | None = None
    max_steps: int | None = None
    bench_data_dir: str | None = None
    benchmarks: list[str] | None = None
    judge_url: str | None = None
    judge_model: str | None = None
    from_stage: str | None = None
    root: Path = Path(".")
    bench_limit: int | None = None      # benchmark items; default: the same as limit
    count_tokens: bool = True           # prepare measures tokens with Axolotl's preprocess (~30 s on a CPU)
    sources: tuple[str, ...] = ()       # --source: these sources instead of the default mixture
    max_rows: int | None = None         # --max-rows: training rows only (default: the plan's size, all rows)
    merge: str = "auto"                 # auto: only when a benchmark needs merged weights; always: every adapter
    judge_api_key_env: str = "OPENAI_API_KEY"   # the name of the variable; the key itself is never stored
    judge_concurrency: int = 4

    def __post_init__(self):
        exp = registry.experiment(self.experiment)
        self.method = self.method or exp.methods[0]
        registry.check_method(exp, self.method)


def state_path(o: Options) -> Path:
    return o.root / "state" / o.experiment / f"{o.method}-{o.hardware}.json"


def load_state(o: Options) -> dict:
    p = state_path(o)
    return read_state(p) if p.exists() else {}


def read_state(path: Path) -> dict:
    """One state file, checked: every reader of state/ (run, status, the ETA clock, compare's contamination
    marks, the report) goes through here or through checked_json with the same schema."""
    return checked_json.read(path, "state")


def save_state(path: Path, state: dict) -> None:
    checked_json.write(path, state)


# Options a state file does not record: the state's own identity (its path), where and how this run was asked
# to start, and the judge's settings (which decide no stage key; the key's variable is never stored anywhere).
NOT_SAVED = ("experiment", "method", "hardware", "root", "from_stage", "judge_url", "judge_model",
             "judge_api_key_env", "judge_concurrency")
TUPLES = tuple(f.name for f in dataclasses.fields(Options) if f.type.startswith("tuple"))


def saved_options(o: Options) -> dict:
    """The options a state file records: every one that decides a stage key (`ftstudy status` rebuilds them)."""
    return {f.name: list(v) if isinstance(v := getattr(o, f.name), tuple) else v
            for f in dataclasses.fields(Options) if f.name not in NOT_SAVED}


def options_from_state(state: dict) -> dict:
    """saved_options() read back from a state file, as Options' keyword arguments."""
    opts = dict(state.get("_options", {}))
    for key in TUPLES:
        opts[key] = tuple(opts.get(key) or ())
    return opts
