"""The versioned planner calibration (calibration.json beside this module) and the per-profile overheads it
replaces once runs are measured.

Example:
    >>> calibrated("no-such-profile")
    {}
    >>> OVERHEAD_GB["cpu"]
    0.8
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

CALIBRATION = Path(__file__).with_name("calibration.json")

# Memory a run holds besides its tensors, GB: CUDA context and cuBLAS/NCCL workspaces and allocator slack on
# GPUs (the Spark's also covers the desktop sharing its unified memory): first guesses. On the CPU profile:
# the interpreter with torch, transformers, peft, trl, datasets and Axolotl imported, which is nearly all of
# a tiny model's RSS; one tiny-model LoRA run (Axolotl 0.19, 2026-11-25) peaked at 0.80 GiB = 0.86 GB RSS.
# `ftstudy plan --calibrate` replaces these with what measured runs show.
OVERHEAD_GB = {"dgx-spark": 1.5, "h100": 1.0, "h100x8": 1.5, "cpu": 0.8}


def calibration_path() -> Path:
    """The versioned calibration file in the package, or $FTSTUDY_CALIBRATION (tests, experiments)."""
    return Path(os.environ.get("FTSTUDY_CALIBRATION") or CALIBRATION)


@functools.cache
def _calibration(path: str) -> dict:
    p = Path(path)
    return json.loads(p.read_text()) if p.is_file() else {"version": 1, "profiles": {}}


def load_calibration(path: str | Path | None = None) -> dict:
    """The calibration file: {"version": 1, "profiles": {hardware: {"mfu", "overhead_gb", "runs": [...]}}}."""
    return _calibration(str(path or calibration_path()))


def calibrated(hardware: str, path: str | Path | None = None) -> dict:
    """This profile's calibrated values (empty when none were measured)."""
    return load_calibration(path).get("profiles", {}).get(hardware, {})


def measured(hardware: str, method: str, path: str | Path | None = None) -> list[dict]:
    """Measured entries (tests/benchmarks/gpu_axolotl_check.py --record) for this profile and method: each has
    gpu, profile, method, tokens_per_second, flops_per_token, mfu, peak_memory_gb, date and versions."""
    return [e for e in load_calibration(path).get("measured", [])
            if e.get("profile") == hardware and e.get("method") == method and e.get("mfu")]


def forget_calibration() -> None:
    """Drop the cached file (after --calibrate rewrote it)."""
    _calibration.cache_clear()
