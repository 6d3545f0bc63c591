"""`ftstudy plan`: peak memory, tokens and time of one experiment × method × hardware, before training.

Settings come from the generated Axolotl config (`gen.build`), the very dict `ftstudy train` would run, read
by config/axolotl_setup.py, so the plan cannot drift from the run. Model shapes come from config.json
(config/model_shape.py), memory from config/memory.py, tokens from `prepare`'s manifests when present (else a
declared estimate, plan/data_stats.py), time from FLOPs per token over the profile's bf16 peak × an MFU
assumption (config/calibration.json may override it).

Example:
    >>> from ftstudy.plan import estimate as planner
    >>> p = planner.plan("instruction", "full", "dgx-spark")
    >>> p["fits"], round(p["memory_gb"]["optimizer"], 1)
    (True, 15.3)
    >>> planner.plan("instruction", "full", "dgx-spark", overrides={"optimizer": "adamw_torch_fused"})["fits"]
    False
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from ftstudy.config import expectations
from ftstudy.config import gen
from ftstudy.config import profiles
from ftstudy.config import registry
from ftstudy.config import tuning
from ftstudy.plan import power
from ftstudy.config.axolotl_setup import flag, setup_from_config
from ftstudy.config.calibration import calibrated, measured
from ftstudy.config.memory import Setup, activations, memory, optimizer_info, reference_model
from ftstudy.config.model_shape import PlanError
from ftstudy.config.validate_ranges import range_problems
from ftstudy.plan.data_stats import UNIFIED_MEMORY, token_stats

# QLoRA runs the same FLOPs as LoRA plus dequantizing each 4-bit weight before its matmul; bitsandbytes
# typically costs 10-40% (performance-reference §2.3): the middle of that range.
METHOD_SPEED = {"qlora": 0.75}


def flops_per_token(s: Setup, seq: float) -> float:
    """Model FLOPs per trained token (MFU accounting, performance-reference §7.1).

    Full: 6N + 12·L·H·Q·T (torchtitan; N excludes the input embedding, a lookup). Adapters: 4N — forward
    and the activation-gradient backward still run through the frozen weights, only weight gradients are
    skipped — plus 6 per adapter parameter, plus the same attention term. DPO adds the reference model's
    forward (2N + 4·L·H·Q·T) unless its log-probs are precomputed or the objective has none. Checkpointing's
    recomputed forward is hardware work, not model work: it lowers the MFU a profile reaches, not this count.
    """
    m = s.model
    attn = m.attention_flops_per_token(int(seq))
    per = (6 * m.params_matmul if s.method == "full" else 4 * m.params_matmul + 6 * s.trainable) + attn
    if s.preference and s.reference != "precomputed":
        per += 2 * m.params_matmul + attn / 3
    return per


def speed(hardware: str, method: str | None = None) -> dict[str, Any]:
    """bf16 peak (profiles.py) and the MFU: measured through Axolotl on this profile's GPU for this method
    (calibration.json `measured`, median of entries; it already includes QLoRA's dequantization, so the method
    factor becomes 1), else the profile's calibrated MFU, else profiles.py's assumption."""
    prof = profiles.profile(hardware)
    cal = calibrated(hardware)
    runs = measured(hardware, method) if method else []
    out = {"peak_tflops": prof["peak_tflops"], "gpus": prof["gpus"]}
    if runs:
        import statistics

        gpus = sorted({str(r.get("gpu")) for r in runs})
        return {**out, "mfu": statistics.median(r["mfu"] for r in runs), "method_speed": 1.0,
                "mfu_source": f"measured through Axolotl on {', '.join(gpus)} ({len(runs)} run(s), "
                              f"latest {max(str(r.get('date')) for r in runs)})"}
    mfu = cal.get("mfu", prof["mfu"])
    return {**out, "mfu": mfu, "method_speed": METHOD_SPEED.get(method or "", 1.0),
            "mfu_source": f"calibrated from {len(cal.get('runs', []))} run(s)" if "mfu" in cal else "profiles.py"}


def estimate(cfg: dict[str, Any], hardware: str, exp: registry.Experiment | None, method: str,
             data_dir: str | Path = gen.PREPARED_DIR, manifests: list | None = None) -> dict[str, Any]:
    """Memory, tokens and time for one Axolotl config (the body of `plan`, also used by `--check`)."""
    bad = range_problems(cfg, require_numbers=True)  # NaN, negative or absurd numbers would give nonsense hours or a traceback
    if bad:
        raise PlanError("\n".join(p.render() for p in bad))
    s = setup_from_config(cfg, hardware)
    mem = memory(s)
    usable = float(profiles.profile(hardware)["usable_gb"])
    toks = token_stats(exp, cfg, s, data_dir, manifests)
    sp = speed(hardware, s.method)
    fpt = flops_per_token(s, toks["attention_len"])
    rate = sp["gpus"] * sp["peak_tflops"] * 1e12 * sp["mfu"] * sp["method_speed"]
    from ftstudy.plan.multi_gpu import comm, scaling

    link = comm(s, hardware, toks["processed_tokens"])
    seconds = toks["processed_tokens"] * fpt / rate + link["hours"] * 3600 if toks["processed_tokens"] else None
    real_tps = rate / fpt * toks["packing_efficiency"]
    _, ref_why = reference_model(s)
    out = {
        "experiment": exp.id if exp else None, "method": method, "hardware": hardware,
        "base_model": cfg.get("base_model"),
        "params": {"total": s.model.params_total, "non_embedding": s.model.params_non_embedding,
                   "trainable": s.trainable},
        "settings": _settings(cfg, s),
        "memory_gb": {k: round(v, 3) for k, v in mem.items()},
        "activations_gb": {"with_checkpointing": round(activations(s, True) / 1e9, 3),
                           "without_checkpointing": round(activations(s, False) / 1e9, 3),
                           "used": "with_checkpointing" if s.grad_ckpt else "without_checkpointing"},
        "reference_model": ref_why,
        "usable_gb": usable,
        "fits": mem["total"] <= usable,
        "fix": None,
        "tokens": toks,
        "flops_per_token": round(fpt),
        "throughput": {**sp, "tokens_per_second": round(real_tps, 1)},
        "hours": round(seconds / 3600, 3) if seconds else None,
        "interconnect": link,
        "scaling": scaling(cfg, hardware),
        "plan_hours": expectations.planned_hours(exp, method) if exp else None,
        "plan_hours_text": (expectations.hours(exp, method) or {}).get("text") if exp else None,
        "plan_hardware": "dgx-spark",
        "notes": _notes(s, hardware, optimizer_info(s.optimizer)),
        "speed_choices": tuning.explain(cfg, hardware, method),
        "mde": power.for_experiment(exp) if exp else [],  # what its benchmarks can detect, before paying for it
    }
    if toks["source"] == "estimate":
        out["notes"].append("tokens are an estimate from row caps × typical row lengths: `ftstudy prepare` "
                            "writes the measured counts")
    if not out["fits"]:
        out["fix"] = cheapest_fix(cfg, hardware, usable)
    return out


def plan(exp_id: str, method: str | None = None, hardware: str = gen.DEFAULT_HARDWARE,
         base_model: str = gen.DEFAULT_BASE_MODEL, overrides: dict[str, Any] | None = None,
         data_dir: str | Path = gen.PREPARED_DIR) -> dict[str, Any]:
    """Plan one experiment × method × hardware from its generated Axolotl config (see the module example)."""
    exp = registry.experiment(exp_id)
    method = method or exp.methods[0]
    cfg = gen.build(exp_id, method, hardware, base_model, overrides=overrides)
    return estimate(cfg, hardware, exp, method, data_dir)


def _settings(cfg: dict, s: Setup) -> dict[str, Any]:
    keys = ("micro_batch_size", "gradient_accumulation_steps", "sequence_len", "optimizer", "gradient_checkpointing",
            "adapter", "lora_r", "load_in_4bit", "rl", "sample_packing", "deepspeed")
    out = {k: cfg.get(k) for k in keys}
    out.update({"precision": "bf16" if s.dtype_bytes == 2 else "fp32", "loss": s.loss, "gpus": s.gpus,
                "zero_stage": s.zero_stage, "tokens_per_micro_batch": s.tokens})
    return out


def _notes(s: Setup, hardware: str, opt: dict) -> list[str]:
    notes = []
    if opt.get("unknown"):
        notes.append(f"optimizer {s.optimizer!r} is not in the planner's table: counted as 32-bit AdamW")
    if opt.get("paged"):
        notes.append("paged optimizer states cannot spill anywhere on unified memory (CPU and GPU share it)"
                     if profiles.base_name(hardware) in UNIFIED_MEMORY else
                     "paged optimizer states can spill to host RAM under pressure (slower, not an OOM)")
    if s.preference:
        notes.append("DPO rows are chosen + rejected pairs: two sequences per row, no sample packing")
    if s.offload_optimizer:
        notes.append("DeepSpeed offloads optimizer states to host RAM: not counted on the GPU")
    return notes


# Changes that can make a run fit, cheapest first: a smaller micro-batch, checkpointing, offloading and Liger's
# fused loss keep the training maths unchanged (only speed moves); an 8-bit optimizer barely moves results;
# QLoRA and shorter sequences change what is learnt.
def fix_candidates(cfg: dict, hardware: str) -> list[tuple[dict, str]]:
    out: list[tuple[dict, str]] = []
    gpu = profiles.profile(hardware)["gpu"]  # Liger (Triton) and bitsandbytes are CUDA-only
    micro, accum = int(cfg.get("micro_batch_size") or 1), int(cfg.get("gradient_accumulation_steps") or 1)
    k = 2
    while micro // k >= 1:
        out.append(({"micro_batch_size": micro // k, "gradient_accumulation_steps": accum * k},
                    "smaller micro-batch, more accumulation: same global batch and maths, somewhat slower"))
        k *= 2
    if not flag(cfg.get("gradient_checkpointing")):
        out.append(({"gradient_checkpointing": True}, "recompute activations in backward: ~30% more compute"))
    elif gpu and not flag(cfg.get("activation_offloading")) and profiles.base_name(hardware) not in UNIFIED_MEMORY:
        out.append(({"activation_offloading": True}, "keep checkpointed activations in host RAM"))
    if gpu and not cfg.get("rl") and not flag(cfg.get("liger_fused_linear_cross_entropy")):
        out.append(({"plugins": ["axolotl.integrations.liger.LigerPlugin"], "liger_fused_linear_cross_entropy": True},
                    "Liger fused linear + cross-entropy: logits never materialised"))
    if gpu and optimizer_info(str(cfg.get("optimizer")))["state"] > 2.1:
        out.append(({"optimizer": "paged_adamw_8bit"}, "8-bit AdamW states (2 B/param) instead of 32-bit (+ fp32 master)"))
    if gpu and cfg.get("adapter") == "lora":
        out.append(({"adapter": "qlora", "load_in_4bit": True}, "QLoRA: 4-bit base weights (slower, slightly different)"))
    seq = int(cfg.get("sequence_len") or 2048)
    if seq > 512:
        out.append(({"sequence_len": seq // 2}, "shorter sequences: rows longer than this are dropped"))
    return out


def cheapest_fix(cfg: dict, hardware: str, usable: float) -> dict[str, Any] | None:
    """The first change, in fix_candidates' cost order, after which the run fits (for the micro-batch: the
    largest that fits); else the shortest series of changes in that order; None when nothing is enough."""
    def total(changes: dict) -> float:
        return memory(setup_from_config({**copy.deepcopy(cfg), **changes}, hardware))["total"]

    cands = fix_candidates(cfg, hardware)
    for change, why in cands:
        t = total(change)
        if t <= usable:
            return {"set": change, "why": [why], "memory_gb": round(t, 3)}
    # nothing alone is enough: the smallest micro-batch, then each further change in order
    micro = [c for c in cands if "micro_batch_size" in c[0]]
    series = micro[-1:] + [c for c in cands if "micro_batch_size" not in c[0]]
    acc: dict = {}
    whys: list[str] = []
    for change, why in series:
        acc.update(change)
        whys.append(why)
        t = total(acc)
        if t <= usable:
            return {"set": dict(acc), "why": whys, "memory_gb": round(t, 3)}
    return None
