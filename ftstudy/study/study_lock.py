"""study.lock.json: what the study's results depend on, recorded at the study root, and checked on every run.

It records ftstudy, Axolotl, lm-eval, torch, transformers, vLLM versions (from the tool environments), the base
model's fingerprint, the prepared datasets' hashes, seeds, benchmark subsets, judge model and rubric versions,
and the hardware. `ftstudy run` warns when the lock and the current environment disagree; `ftstudy report`
shows it. Read back through `core.checked_json` (core/file_schemas/study_lock.schema.json): a hand-edited lock fails
in one line naming the field; written as strict JSON.

Example:
    >>> differences({"versions": {"train": {"axolotl": "0.19.0"}}}, {"versions": {"train": {"axolotl": "0.20.0"}}})
    ['versions.train.axolotl: lock 0.19.0, now 0.20.0']
"""
from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from ftstudy import __version__
from ftstudy.core import checked_json
from ftstudy.core import tool_envs as envs
from ftstudy.core.file_locks import RunLock
from ftstudy.eval import records

NAME = "study.lock.json"


def environment() -> dict[str, Any]:
    """Versions of what produces results, as installed now."""
    out: dict[str, Any] = {"ftstudy": __version__, "versions": {}}
    for name in ("train", "eval"):
        try:
            out["versions"][name] = envs.versions(name)
        except envs.EnvMissing:
            out["versions"][name] = None
    out["hardware"] = {"machine": platform.machine(), "gpu": envs.has_gpu()}
    return out


def differences(lock: dict, now: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between the lock and now (keys only one side has are ignored)."""
    diffs = []
    for key in sorted(set(lock) & set(now)):
        a, b = lock[key], now[key]
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += differences(a, b, path + ".")
        elif a != b:
            diffs.append(f"{path}: lock {a}, now {b}")
    return diffs


def result_inputs(results: Path, experiment: str, tags: tuple[str, ...], bench_ids: list[str]) -> dict[str, dict]:
    """What each saved result of `tags` depends on, keyed "tag/benchmark": benchmark version, seed, item subset,
    model fingerprint, judge model, rubric version and judge temperature."""
    out = {}
    for tag in tags:
        for b in bench_ids:
            path = records.paths(results, experiment, tag, b)[0]
            if path.exists():
                rec = records.read_record(path)
                settings = rec.get("settings", {})
                out[f"{tag}/{b}"] = {"version": rec["benchmark_version"], "seed": rec.get("seed"),
                                     "subset_ids": rec.get("subset_ids"), "model_fingerprint": rec["model_fingerprint"],
                                     "judge": settings.get("judge_model"), "rubric": settings.get("rubric_version"),
                                     "judge_temperature": settings.get("judge_temperature")}
    return out


def update(root: Path, experiment: str, entry: dict[str, Any], env: dict[str, Any] | None = None) -> tuple[dict, list[str]]:
    """Record one experiment's inputs in the lock; returns the lock and how the environment differs from it."""
    path = root / NAME
    env = env or environment()
    # read-modify-write under a lock: runs of other experiments (other processes, or the demo's side-by-side
    # lanes) record theirs in the same file
    with RunLock(root / "state" / f".{NAME}.lock", what=str(path), wait=True):
        lock = read(path) if path.exists() else {}
        diffs = differences({k: lock[k] for k in ("ftstudy", "versions", "hardware") if k in lock}, env)
        if not lock:
            lock.update(env)
        lock.setdefault("experiments", {})[experiment] = entry
        checked_json.write(path, lock)
    return lock, diffs


def read(path: Path) -> dict:
    """The lock, checked against its schema."""
    return checked_json.read(path, "study_lock")
