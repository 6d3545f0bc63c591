"""What several GPUs change in a plan: time spent on the interconnect, and per-GPU memory as the job is sharded.

Communication per micro-batch and GPU, for ring collectives that move (w-1)/w of a tensor per GPU
(performance-reference §4.1 for the sharded sizes): ZeRO-3/FSDP FULL_SHARD gathers the 16-bit weights in
forward and again in backward and reduce-scatters the gradients (3 × weights); ZeRO-2 and DDP reduce the
gradients of what is trained (counted as 2 × trainable, all-reduce). The slowest link decides: the inter-node
network as soon as there are two nodes. Counted as not overlapped with compute, so the hours are an upper bound.

Example:
    >>> from ftstudy.config import gen
    >>> rows = scaling(gen.build("instruction", "full", "h100"), "h100")
    >>> [r["gpus"] for r in rows], rows[0]["total_gb"] > rows[1]["total_gb"] > rows[2]["total_gb"]
    ([1, 2, 8], True)
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ftstudy.config import profiles
from ftstudy.config.axolotl_setup import setup_from_config
from ftstudy.config.memory import GB, Setup, memory

WORLD_SIZES = (1, 2, 8)


def comm(s: Setup, hardware: str, processed_tokens: float) -> dict[str, Any]:
    """Bytes each GPU sends per micro-batch, the link that carries them and the hours that costs."""
    prof = profiles.profile(hardware)
    w = s.gpus
    if w <= 1:
        return {"gpus": 1, "link": "none (one GPU)", "gb_per_s": None, "gb_per_micro_batch": 0.0, "hours": 0.0}
    frac = (w - 1) / w
    if s.zero_stage >= 3 and s.quant_bits == 16:
        moved = 3 * s.model.params_total * s.dtype_bytes * frac
    else:
        grad_bytes = s.dtype_bytes if s.method == "full" else s.adapter_bytes
        moved = 2 * s.trainable * grad_bytes * frac
    inter = prof["nodes"] > 1
    bw = float(prof["inter_node_gbs"] if inter else prof["intra_node_gbs"]) or 1.0
    micro_batches = processed_tokens / (w * s.tokens) if processed_tokens else 0.0
    link = f"between nodes, {prof['inter_link']}" if inter else f"in the node, {prof['intra_link']}"
    return {"gpus": w, "nodes": prof["nodes"], "link": link, "gb_per_s": bw, "gb_per_micro_batch": round(moved / GB, 3),
            "hours": round(micro_batches * moved / (bw * GB) / 3600, 3)}


def scaling(cfg: dict[str, Any], hardware: str) -> list[dict[str, Any]]:
    """Per-GPU peak memory of the same run on 1, 2 and 8 GPUs with the state fully sharded (ZeRO-3/FSDP for
    full fine-tuning, ZeRO-2 for adapters): weights, gradients and optimizer states fall as 1/GPUs, activations
    and the rest do not."""
    base = setup_from_config(cfg, hardware)
    stage = 3 if base.method == "full" else 2
    rows = []
    for w in WORLD_SIZES:
        mem = memory(dataclasses.replace(base, gpus=w, zero_stage=stage if w > 1 else 0))
        sharded = mem["weights"] + mem["gradients"] + mem["optimizer"]
        rows.append({"gpus": w, "zero_stage": stage if w > 1 else 0, "total_gb": round(mem["total"], 2),
                     "sharded_states_gb": round(sharded, 2)})
    return rows
