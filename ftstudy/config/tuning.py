"""Speed choices per hardware profile and method, each with its reason, and the checkpointing level and
micro-batch the planner picks to fill a GPU's memory.

Kept apart from profiles.py (hardware and topology) so the two tables merge independently. gen.build applies
`apply()` after the profile's own Axolotl keys: first the CHOICES rows for the profile and method, then
`fill()`. The cpu profile gets none of this (tiny models, fp32, no CUDA kernels). Sources are
shared/docs/performance-reference.md (`perf-ref §N`) and Axolotl 0.19's config schema
(axolotl/utils/schemas/config.py, `schema:KEY`). `measured` says whether the choice was measured on that
hardware through Axolotl; none is yet: tests/benchmarks/gpu_axolotl_check.py measures them (`--variant`
runs a choice switched off beside the generated config).

Example:
    >>> from ftstudy.config import gen
    >>> cfg = gen.build("code", "lora", "h100")
    >>> cfg["attn_implementation"], cfg["torch_compile"], cfg["gradient_checkpointing"]
    ('flash_attention_2', True, False)
    >>> gen.build("code", "lora", "dgx-spark")["attn_implementation"]
    'sdpa'
"""
from __future__ import annotations

import copy
from typing import Any

SFT = ("lora", "qlora", "full")
ADAPTERS = ("lora", "qlora", "dpo")
ALL = ("lora", "qlora", "full", "dpo")

FLASH = {"set": {"attn_implementation": "flash_attention_2"}, "methods": ALL,
         "why": "flash-attn 2 varlen kernel: packed rows stay apart, no T×T scores; x86_64 wheels exist for sm_80-sm_90",
         "source": "perf-ref §6 (FA2 varlen packing, HF blog packing-with-FA2); schema:attn_implementation"}
PACKING = {"set": {"sample_packing": True, "pad_to_sequence_len": True}, "methods": SFT,
           "why": "multipack fills each row with whole samples (~99% efficiency): +238% tok/s on Alpaca-like data; "
                  "padding to sequence_len keeps one shape per step (no allocator churn, no recompiles)",
           "source": "perf-ref §6 (torchtune ladder, Axolotl v0.9.1 notes); schema:pad_to_sequence_len"}
LIGER = {"set": {"plugins": ["axolotl.integrations.liger.LigerPlugin"], "liger_rope": True, "liger_rms_norm": True,
                 "liger_glu_activation": True, "liger_fused_linear_cross_entropy": True}, "methods": ALL,
         "why": "Liger Triton kernels for RMSNorm, RoPE, SwiGLU and fused linear + cross-entropy: +12-43% tok/s, "
                "-13-57% memory; the fused loss never materialises Qwen's 152k-vocab logits (1.25 GB fp32 per 2k tokens)",
         "source": "perf-ref §3.1 (arXiv 2410.10989 §4.2) and §4.1"}
FUSED_ADAMW = {"set": {"optimizer": "adamw_torch_fused"}, "methods": ADAPTERS,
               "why": "fused AdamW (one kernel per step): adapter states are ~40M params, 8-bit or paging would save "
                      "<0.5 GB and add bitsandbytes launches",
               "source": "perf-ref §4.1 (LoRA r=16: 40.4M trainable)"}
COMPILE_ON = {"set": {"torch_compile": True}, "methods": ("lora", "full"),
              "why": "torch.compile fuses what Liger leaves (residual adds, dropout, casts): +27% tok/s in torchtune's "
                     "ladder, +16% in torchtitan's on H100; fixed shapes from pad_to_sequence_len avoid recompiles",
              "source": "perf-ref §3 (torchtune ladder 7,075 -> 8,998; torchtitan 5,762 -> 6,667 TPS/GPU)"}
COMPILE_OFF = {"set": {"torch_compile": False}, "methods": ("qlora", "dpo"),
               "why": "left off: bitsandbytes' 4-bit matmul and TRL's preference loss break the graph at every layer, "
                      "so compile adds warm-up time for little fusion",
               "source": "assumption (unmeasured); schema:torch_compile"}

CHOICES: dict[str, list[dict[str, Any]]] = {
    "h100": [FLASH, PACKING, LIGER, FUSED_ADAMW, COMPILE_ON, COMPILE_OFF],
    "h100x8": [FLASH, PACKING, LIGER, FUSED_ADAMW, COMPILE_ON, COMPILE_OFF],
    "dgx-spark": [
        {"set": {"attn_implementation": "sdpa", "sdpa_varlen": True}, "methods": ALL,
         "why": "flash-attn has no sm_121 (GB10) kernels nor aarch64 wheels; Axolotl's sdpa_varlen runs packed rows "
                "through torch.nn.attention.varlen.varlen_attn (torch >= 2.10), cross-document blocks skipped, no "
                "flash_attn dependency",
         "source": "Dao-AILab/flash-attention#1969; schema:sdpa_varlen; perf-ref §6"},
        PACKING, LIGER, FUSED_ADAMW,
        {"set": {"optimizer": "adamw_8bit"}, "methods": ("full",),
         "why": "8-bit AdamW (6 B/param, 45.7 GB for 7.6B params) without paging: on 128 GB unified memory a paged "
                "state has no separate host RAM to spill to, so paging only adds page faults",
         "source": "perf-ref §1.1 (unified LPDDR5X) and §4.1 / §8.3"},
        {"set": {"torch_compile": False}, "methods": ALL,
         "why": "left off until measured on GB10: Liger already fuses the norm/RoPE/SwiGLU/loss kernels, and "
                "Axolotl's own notes see compile win on sm_120 but regress on sm_86 (Inductor autotune)",
         "source": "schema:fused_attn_kernel note; perf-ref §9 (no Axolotl-on-Spark numbers)"},
    ],
}

# Checkpointing levels, fastest first. Recompute costs one more forward: +33% FLOPs for full fine-tuning and
# +50% for LoRA (4N -> 6N); torchtune's ladder lost 21% tok/s to activation checkpointing (perf-ref §3, §7.1).
# "selective" saves attention outputs so only the matmuls are recomputed (Axolotl: non-reentrant only, not
# with adapters' saved matmuls, untested with torch_compile); "offload" keeps checkpointed layer inputs in host
# RAM, which a unified-memory machine does not have apart from the GPU's.
LEVELS: dict[str, dict[str, Any]] = {
    "none": {"gradient_checkpointing": False},
    "selective": {"gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": False},
                  "selective_checkpointing": {"save": ["attention"]}},
    "full": {"gradient_checkpointing": True},
    "offload": {"gradient_checkpointing": "offload"},
}
HEADROOM = 0.90  # fill to 90% of usable memory: the planner's memory target is within 10%
MIN_TOKENS_NO_CKPT = 4096  # below this many tokens per micro-batch, GEMMs are too small to drop checkpointing
UNIFIED = {"dgx-spark"}


# Profiles made of several machines of one kind take that kind's choices (two linked Sparks are Sparks).
SAME_MACHINE = {"dgx-spark-x2": "dgx-spark"}


def machine(hardware: str) -> str:
    """The profile whose CHOICES apply: `h100x8-2nodes` -> h100x8, `dgx-spark-x2` -> dgx-spark."""
    from ftstudy.config import profiles

    base = profiles.base_name(hardware)
    return SAME_MACHINE.get(base, base)


def choices(hardware: str, method: str) -> list[dict[str, Any]]:
    """The CHOICES rows that apply to one profile × method (the reasons `ftstudy plan` prints)."""
    return [c for c in CHOICES.get(machine(hardware), []) if method in c["methods"]]


def levels(hardware: str, cfg: dict[str, Any]) -> list[str]:
    out = ["none"]
    if not cfg.get("torch_compile"):
        out.append("selective")
    out.append("full")
    if machine(hardware) not in UNIFIED:
        out.append("offload")
    return out


def fill(cfg: dict[str, Any], hardware: str) -> dict[str, Any]:
    """Pick the fastest checkpointing level and, within it, the largest power-of-two micro-batch whose planned
    peak memory fits HEADROOM × usable; keep the global batch (micro × accumulation). Returns the keys to set
    plus `why`. Without checkpointing a micro-batch must hold MIN_TOKENS_NO_CKPT tokens to count.

    Example:
        >>> from ftstudy.config import gen
        >>> cfg = gen.build("chat", "full", "h100")  # 4096-token rows: no checkpointing, one row per step
        >>> cfg["gradient_checkpointing"], cfg["micro_batch_size"], cfg["gradient_accumulation_steps"]
        (False, 1, 32)
        >>> fill({**cfg, "sequence_len": 8192}, "h100")["why"]
        'checkpointing full, micro-batch 4: planned peak 65.3 GB of 71 GB (90% of usable); none did not fit'
    """
    from ftstudy.config.axolotl_setup import setup_from_config
    from ftstudy.config import profiles
    from ftstudy.config.memory import memory

    prof = profiles.profile(hardware)
    limit = HEADROOM * float(prof["usable_gb"])
    micro0, accum0 = int(cfg["micro_batch_size"]), int(cfg["gradient_accumulation_steps"])
    global_per_gpu = micro0 * accum0
    tried = []
    for level in levels(hardware, cfg):
        best = None
        micro = 1
        while micro <= global_per_gpu:
            trial = {**cfg, **LEVELS[level], "micro_batch_size": micro}
            setup = setup_from_config(trial, hardware)
            total = memory(setup)["total"]
            if total > limit:
                break
            best = (micro, total, setup.tokens)
            micro *= 2
        if best and (level != "none" or best[2] >= MIN_TOKENS_NO_CKPT):
            micro = best[0]
            return {**copy.deepcopy(LEVELS[level]), "micro_batch_size": micro,
                    "gradient_accumulation_steps": max(1, global_per_gpu // micro),
                    "why": f"checkpointing {level}, micro-batch {micro}: planned peak {best[1]:.1f} GB of "
                           f"{limit:.0f} GB ({HEADROOM:.0%} of usable)" + (f"; {', '.join(tried)} did not fit" if tried else "")}
        tried.append(level)
    return {"why": "nothing fits even at micro-batch 1: the profile's settings stay (see `ftstudy plan` for a fix)"}


def apply(cfg: dict[str, Any], hardware: str, method: str, keep: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """Set the profile × method speed choices on a generated config, then fill memory; returns cfg. Keys in
    `keep` (what sharding chose for several GPUs, e.g. the optimizer FSDP2 accepts) are left as they are."""
    if not choices(hardware, method):
        return cfg
    for c in choices(hardware, method):
        cfg.update({k: copy.deepcopy(v) for k, v in c["set"].items() if k not in keep})
    picked = fill(cfg, hardware)
    picked.pop("why")
    for key in ("gradient_checkpointing_kwargs", "selective_checkpointing"):
        cfg.pop(key, None)
    cfg.update(picked)
    return cfg


def explain(cfg: dict[str, Any], hardware: str, method: str) -> list[dict[str, Any]]:
    """Each choice with its reason and source, and the fill decision, for `ftstudy plan`."""
    rows = [{"set": c["set"], "why": c["why"], "source": c["source"], "measured": False}
            for c in choices(hardware, method)]
    if rows:
        probe = {k: v for k, v in cfg.items() if k not in ("gradient_checkpointing_kwargs", "selective_checkpointing")}
        rows.append({"set": {k: cfg.get(k) for k in ("gradient_checkpointing", "micro_batch_size")},
                     "why": fill(probe, hardware)["why"], "source": "perf-ref §3, §7.1; ftstudy planner", "measured": False})
    return rows
