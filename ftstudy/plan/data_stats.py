"""The planner's data: token statistics (from `prepare`'s manifests, else the registry's estimates), per-profile
overheads, and the versioned MFU calibration file.

Example:
    >>> from ftstudy.config import gen; from ftstudy.config import registry
    >>> from ftstudy.plan.estimate import setup_from_config
    >>> cfg = gen.build("code", "lora", "dgx-spark")
    >>> t = token_stats(registry.experiment("code"), cfg, setup_from_config(cfg, "dgx-spark"), "/nonexistent")
    >>> t["source"], t["rows"], t["epochs"]
    ('estimate', 75197, 2)
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

CALIBRATION = Path(__file__).parent.parent / "config" / "calibration.json"  # beside the registry it calibrates


def calibration_path() -> Path:
    """The versioned calibration file in the package, or $FTSTUDY_CALIBRATION (tests, experiments)."""
    return Path(os.environ.get("FTSTUDY_CALIBRATION") or CALIBRATION)

# Memory a run holds besides its tensors, GB: CUDA context and cuBLAS/NCCL workspaces and allocator slack on
# GPUs (the Spark's also covers the desktop sharing its unified memory): first guesses. On the CPU profile:
# the interpreter with torch, transformers, peft, trl, datasets and Axolotl imported, which is nearly all of
# a tiny model's RSS; one tiny-model LoRA run (Axolotl 0.19, 2026-11-25) peaked at 0.80 GiB = 0.86 GB RSS.
# `ftstudy plan --calibrate` replaces these with what measured runs show.
OVERHEAD_GB = {"dgx-spark": 1.5, "h100": 1.0, "h100x8": 1.5, "cpu": 0.8}
# Profiles whose GPU shares the host's memory: paging or offloading to "host RAM" frees nothing there.
UNIFIED_MEMORY = {"dgx-spark", "dgx-spark-x2"}  # by base profile name (profiles.base_name)

# A source that declares no `mean_tokens` in experiments.yaml is planned at this many tokens a row.
DEFAULT_MEAN_TOKENS = 500
# Axolotl's multipack reaches "~99%" (v0.9.1 notes); performance-reference §8 asks for >= 95%: plan on 97%.
PACKED_EFFICIENCY = 0.97
# Unpacked batches are padded to their longest row; for the spread of SFT lengths the longest of a few rows
# is taken as 1.5 × the mean (a heuristic; a micro-batch of one row has no padding).
LONGEST_OVER_MEAN = 1.5


def _manifest_counts(data: Any) -> tuple[int, int, float | None] | None:
    """(rows, tokens, packing efficiency or None) from one manifest; tolerant of per-source nesting."""
    if not isinstance(data, dict):
        return None
    entries = data.get("sources") if isinstance(data.get("sources"), list) else [data]
    rows = tokens = 0
    for e in entries:
        r, t = e.get("rows"), e.get("tokens")
        t = t.get("total") if isinstance(t, dict) else t
        if not isinstance(r, int) or not isinstance(t, (int, float)):
            return None
        rows, tokens = rows + r, tokens + int(t)
    return rows, tokens, data.get("packing_efficiency")


def _read_manifest(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def token_stats(exp, cfg: dict, setup, data_dir: str | Path, manifests: list | None = None) -> dict[str, Any]:
    """Rows, mean tokens per row, epochs and packing efficiency of one run's training data.

    Prepared data wins: each dataset's `<stem>.manifest.json` beside the JSONL that Axolotl reads (written by
    `ftstudy prepare`, with `rows` and `tokens`). Without it: each active source's cap (or `split_rows`) ×
    its `mean_tokens` (experiments.yaml), marked as an estimate. `manifests` (one per dataset, e.g. from a run's
    data.json) replaces the lookup under data_dir.
    """
    rows = tokens = 0
    source, packing = "estimate", None
    if manifests is None:
        manifests = []
        for ds in cfg.get("datasets") or []:
            rel = Path(ds.get("path", ""))
            man = Path(data_dir) / rel.parent.name / (rel.stem + ".manifest.json")
            manifests.append(_read_manifest(man) if rel.name and man.is_file() else None)
    found = [_manifest_counts(m) for m in manifests]
    if found and all(found):
        rows = sum(f[0] for f in found)
        tokens = sum(f[1] for f in found)
        effs = [f[2] for f in found if f[2]]
        packing = effs[0] if effs else None
        source = "manifest"
    elif exp is not None:
        for src in exp.active_sources:
            n = src.split_rows
            n = min(src.cap, n) if src.cap and n else (src.cap or n or 0)
            rows += n
            tokens += n * (src.mean_tokens or DEFAULT_MEAN_TOKENS)
    mean = tokens / rows if rows else 0.0
    seq = setup.seq_len
    per_seq = min(mean / (2 if setup.preference else 1), seq) or seq
    packed = _flag(cfg.get("sample_packing")) and not setup.preference
    if packing is None:
        if packed:
            packing = PACKED_EFFICIENCY
        elif _flag(cfg.get("pad_to_sequence_len")):
            packing = per_seq / seq
        else:
            packing = 1.0 if setup.micro_batch == 1 and not setup.preference else 1 / LONGEST_OVER_MEAN
            packing = max(packing, per_seq / seq)
    epochs = cfg.get("num_epochs") or 1
    train_tokens = int(rows * mean * epochs)
    return {
        "rows": rows, "mean_tokens_per_row": round(mean, 1), "epochs": epochs,
        "packing_efficiency": round(packing, 3), "train_tokens": train_tokens,
        "processed_tokens": int(train_tokens / packing) if packing else 0, "source": source,
        # flash-attention varlen keeps packed rows apart, so attention spans one row; padded rows span the pad
        "attention_len": round(per_seq if packed else min(seq, per_seq / packing), 1),
    }


def _flag(value: Any) -> bool:
    return bool(value) and str(value).lower() not in ("false", "0", "none")


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
