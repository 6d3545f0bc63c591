"""The Setup (memory.py) an Axolotl config describes: what peak memory and FLOPs per token depend on, read
from the very dict `ftstudy train` would run (gen.build), so that the memory model, sharding, tuning and the
planner all read a config the same way.

Example:
    >>> s = setup_from_config(gen.build("dpo", "dpo", "h100"), "h100")
    >>> s.method, s.preference, s.micro_batch, s.loss, s.grad_ckpt
    ('lora', True, 1, 'preference', False)
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ftstudy.config import gen
from ftstudy.config import profiles
from ftstudy.config.calibration import OVERHEAD_GB, calibrated
from ftstudy.config.memory import Setup
from ftstudy.config.model_shape import ModelShape, load_shape
from ftstudy.config.sharding import stage_of

PREFERENCE_RL = {"dpo", "ipo", "orpo", "simpo"}
NO_REFERENCE_RL = {"orpo", "simpo"}  # reference-free objectives


@functools.cache
def _deepspeed(path: str) -> dict:
    """ZeRO stage of a DeepSpeed JSON and whether it offloads optimizer states to the CPU (paths in configs
    are relative to the checkout)."""
    from ftstudy.core.bundled import REPO, deepspeed_dir

    for cand in (Path(path), REPO / path, deepspeed_dir() / Path(path).name):
        if cand.is_file():
            zero = json.loads(cand.read_text()).get("zero_optimization", {})
            offload = (zero.get("offload_optimizer") or {}).get("device") not in ("none", None)
            return {"stage": int(zero.get("stage", 0)), "offload_optimizer": offload}
    digits = [int(c) for c in Path(path).stem if c.isdigit()]  # "zero3_bf16.json" when the file is not here
    return {"stage": digits[0] if digits else 0, "offload_optimizer": False}


def flag(value: Any) -> bool:
    """A config value that switches something on (`false`, `0`, `none` and empty do not)."""
    return bool(value) and str(value).lower() not in ("false", "0", "none")


def setup_from_config(cfg: dict[str, Any], hardware: str) -> Setup:
    """Read an Axolotl config dict into a Setup (see the module example)."""
    prof = profiles.profile(hardware)
    adapter = cfg.get("adapter")
    quant = 4 if flag(cfg.get("load_in_4bit")) else 8 if flag(cfg.get("load_in_8bit")) else 16
    method = "qlora" if adapter == "qlora" or (adapter and quant == 4) else "lora" if adapter else "full"
    half = flag(cfg.get("fp16")) or (cfg.get("bf16") == "auto" and prof["gpu"]) or cfg.get("bf16") is True
    rl = str(cfg.get("rl") or "").lower()
    plugins = " ".join(map(str, cfg.get("plugins") or [])).lower()
    liger = "liger" in plugins
    if rl:
        loss = "preference"  # TRL computes its own log-probs: no fused cross-entropy
    elif (liger and flag(cfg.get("liger_fused_linear_cross_entropy"))) or flag(cfg.get("cut_cross_entropy")):
        loss = "fused"
    else:
        loss = "hf"
    attn = str(cfg.get("attn_implementation") or ("flash_attention_2" if flag(cfg.get("flash_attention")) else "sdpa"))
    if cfg.get("lora_target_linear"):
        targets = ModelShape.LINEARS
    else:
        targets = tuple(t for t in (cfg.get("lora_target_modules") or ()) if isinstance(t, str))
    ds = _deepspeed(str(cfg["deepspeed"])) if cfg.get("deepspeed") else {"stage": stage_of(cfg)}
    reference = "precomputed" if flag(cfg.get("precompute_ref_log_probs")) or rl in NO_REFERENCE_RL else (
        "adapter-disabled" if adapter else "copy")
    return Setup(
        model=load_shape(str(cfg.get("base_model") or gen.DEFAULT_BASE_MODEL)),
        method=method,
        optimizer=str(cfg.get("optimizer") or "adamw_torch"),
        micro_batch=int(cfg.get("micro_batch_size") or 1),
        seq_len=int(cfg.get("sequence_len") or 2048),
        dtype_bytes=2 if half else 4,
        grad_ckpt=flag(cfg.get("gradient_checkpointing")),
        offload_activations=flag(cfg.get("activation_offloading"))
        or str(cfg.get("gradient_checkpointing")).lower() in ("offload", "offload_disk"),
        save_attention=flag(cfg.get("gradient_checkpointing")) and bool(cfg.get("selective_checkpointing")),
        preference=rl in PREFERENCE_RL,
        reference=reference,
        lora_r=int(cfg.get("lora_r") or 0) if adapter else 0,
        lora_targets=targets,
        lora_dropout=float(cfg.get("lora_dropout") or 0.0),
        quant_bits=quant,
        fused_norm=liger and flag(cfg.get("liger_rms_norm")),
        fused_glu=liger and flag(cfg.get("liger_glu_activation")),
        attention="flash" if "flash" in attn else "eager" if attn == "eager" else "sdpa",
        loss=loss,
        gpus=int(prof["gpus"]),
        zero_stage=int(ds.get("stage", 0)),
        offload_optimizer=bool(ds.get("offload_optimizer")),
        overhead_gb=calibrated(hardware).get("overhead_gb", OVERHEAD_GB.get(profiles.base_name(hardware), 1.0)),
    )
