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

# ESTIMATES, not measurements: mean tokens per training row after conversion to the chat/instruction text
# Axolotl tokenizes (Qwen2.5 tokenizer, template included), per row shape; a preference row counts chosen +
# rejected. Derived from typical field lengths of each dataset; `ftstudy prepare` writes the measured value
# into its manifests, which replace these as soon as they exist.
MEAN_TOKENS = {
    "ag_news": 95, "flan": 260, "openorca": 420, "ultrachat": 1400, "magicoder": 560, "metamath": 290,
    "gsm8k": 210, "alpaca": 190, "pubmedqa": 430, "casehold": 430, "legalbench": 120,
    "ultrafeedback_binarized": 1000, "ultrafeedback_raw": 1000, "xlam": 650, "cnn_dailymail": 950,
    "xsum": 560, "writingprompts": 850,
    # The plan's further sources (issue 10); each number with its reason:
    "sharegpt": 1100,        # multi-turn; the Vicuna dump splits conversations at 2,048 LLaMA tokens, most run long
    "wildchat": 1200,        # ~2.5 turns a conversation (WildChat paper) of a ~100-token prompt and a ~350-token reply
    "starcoder": 1000,       # a Python file averages ~4 KB, at ~4 characters a token
    "hendrycks_math": 300,   # a ~60-token problem and a ~200-token worked solution, plus the chat template
    "nectar": 700,           # chosen + rejected: a ~100-token prompt twice with two ~250-token answers
    "toolbench": 2500,       # the system prompt carries the APIs' JSON docs (~1k) and a trajectory has several rounds
    "gorilla": 350,          # a ~40-token instruction and a domain/api_call/explanation/code output of ~250
    "booksum": 7000,         # chapters average ~5k words (BookSum paper) plus a ~400-word summary
    "legalbench_task": 150,  # a sentence-to-paragraph text and a one-word label, plus the task name
    "cuad": 900,             # the converter's 3,000-character excerpt (~750 tokens), the question and the clause
    "tinystories": 250,      # stories of ~175 words in simple English
}
# Per hub where one shape's sources differ: the Medical Meadow sets' train bytes / rows (dataset_info of their
# lavita/medical-qa-datasets copies) at ~4 characters a token, plus ~25 template tokens.
MEAN_TOKENS_BY_HUB = {
    "medalpaca/medical_meadow_medical_flashcards": 110, "medalpaca/medical_meadow_wikidoc": 280,
    "medalpaca/medical_meadow_wikidoc_patient_information": 160, "medalpaca/medical_meadow_mediqa": 1800,
    "medalpaca/medical_meadow_health_advice": 90, "medalpaca/medical_meadow_pubmed_causal": 110,
    "medalpaca/medical_meadow_medqa": 280, "medalpaca/medical_meadow_cord19": 420,
}
# Train-split sizes (rows) of the sources, from their dataset cards: the row count when a source has no cap
# (and the ceiling when the cap exceeds the split).
SOURCE_ROWS = {
    "fancyzhx/ag_news": 120_000, "ise-uiuc/Magicoder-OSS-Instruct-75K": 75_197, "meta-math/MetaMathQA": 395_000,
    "openai/gsm8k": 7_473, "AlpaCare/MedInstruct-52k": 52_002, "qiaojin/PubMedQA": 211_269,
    "medalpaca/medical_meadow_medical_flashcards": 33_955, "coastalcph/lex_glue": 45_000, "nguha/legalbench": 5,
    "HuggingFaceH4/ultrafeedback_binarized": 61_135, "Salesforce/xlam-function-calling-60k": 60_000,
    "abisee/cnn_dailymail": 287_113, "EdinburghNLP/xsum": 204_045, "euclaise/writingprompts": 272_600,
    # the study plan's sizes where a card's exact count is not at hand: UltraChat "1.5M", OpenOrca "4M",
    # UltraFeedback "64K" (study-plan.md)
    "stingning/ultrachat": 1_500_000, "Open-Orca/OpenOrca": 4_000_000, "openbmb/UltraFeedback": 64_000,
    "allenai/WildChat-1M": 837_989, "EleutherAI/hendrycks_math": 7_500, "berkeley-nest/Nectar": 182_954,
    "rbiswasfc/APIBench": 8_191, "roneneldan/TinyStories": 2_119_719, "medalpaca/medical_meadow_wikidoc": 10_000,
    "medalpaca/medical_meadow_wikidoc_patient_information": 5_942, "medalpaca/medical_meadow_mediqa": 2_208,
    "medalpaca/medical_meadow_health_advice": 8_676, "medalpaca/medical_meadow_pubmed_causal": 2_446,
    "medalpaca/medical_meadow_medqa": 10_178, "medalpaca/medical_meadow_cord19": 821_007,
}
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
    `ftstudy prepare`, with `rows` and `tokens`). Without it: each active source's cap (or split size) ×
    MEAN_TOKENS for its shape, marked as an estimate. `manifests` (one per dataset, e.g. from a run's
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
            n = SOURCE_ROWS.get(src.hub)
            n = min(src.cap, n) if src.cap and n else (src.cap or n or 0)
            rows += n
            tokens += n * MEAN_TOKENS_BY_HUB.get(src.hub, MEAN_TOKENS.get(src.shape, 500))
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
