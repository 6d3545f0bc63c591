"""The planner's data: token statistics (from `prepare`'s manifests, else declared estimates); the per-profile
overheads and the MFU calibration file are config/calibration.py's.

Example:
    >>> from ftstudy.config import gen; from ftstudy.config import registry
    >>> from ftstudy.config.axolotl_setup import setup_from_config
    >>> cfg = gen.build("code", "lora", "dgx-spark")
    >>> t = token_stats(registry.experiment("code"), cfg, setup_from_config(cfg, "dgx-spark"), "/nonexistent")
    >>> t["source"], t["rows"], t["epochs"]
    ('estimate', 75197, 2)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftstudy.config.axolotl_setup import flag

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
    packed = flag(cfg.get("sample_packing")) and not setup.preference
    if packing is None:
        if packed:
            packing = PACKED_EFFICIENCY
        elif flag(cfg.get("pad_to_sequence_len")):
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
