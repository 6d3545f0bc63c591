"""How one job is spread over several GPUs: DeepSpeed ZeRO-2/3 or FSDP2, chosen by the planner's memory model.

One GPU needs nothing. Adapters (LoRA, QLoRA, DPO-LoRA) train a few million parameters: data parallelism
with ZeRO-2 (DeepSpeed profiles) or plain DDP (FSDP2 profiles) is enough. Full fine-tuning is where memory
decides: the planner tries, cheapest communication first, ZeRO-2 (gradients and optimizer states sharded,
weights replicated; FSDP2 without resharding after forward) and then ZeRO-3 (weights sharded too; FSDP2
FULL_SHARD), both with fused 32-bit AdamW, and keeps the profile's 8-bit optimizer only when neither fits.

Example:
    >>> from ftstudy.config import gen
    >>> cfg = gen.build("instruction", "full", "h100x8")
    >>> cfg["deepspeed"], cfg["optimizer"]
    ('axolotl_configs/deepspeed/zero2.json', 'adamw_torch_fused')
    >>> choose({**cfg, "micro_batch_size": 64}, "h100x8")["deepspeed"]
    'axolotl_configs/deepspeed/zero3_bf16.json'
"""
from __future__ import annotations

from typing import Any

from ftstudy.config import profiles

DEEPSPEED = {2: "axolotl_configs/deepspeed/zero2.json", 3: "axolotl_configs/deepspeed/zero3_bf16.json"}
FULL_OPTIMIZER = "adamw_torch_fused"  # sharded, the 16 B/param of mixed-precision AdamW is affordable
# The decoder layer FSDP wraps one by one, by model_type (config.json).
LAYER_CLASS = {"qwen2": "Qwen2DecoderLayer", "qwen3": "Qwen3DecoderLayer", "llama": "LlamaDecoderLayer",
               "mistral": "MistralDecoderLayer", "gemma2": "Gemma2DecoderLayer", "phi3": "Phi3DecoderLayer"}


def keys_for(engine: str, stage: int, base_model: str) -> dict[str, Any]:
    """The Axolotl keys that ask for ZeRO stage `stage` (2 or 3) on `engine`."""
    if engine == "deepspeed":
        return {"deepspeed": DEEPSPEED[stage]}
    return {"fsdp_version": 2, "fsdp_config": {
        "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "transformer_layer_cls_to_wrap": layer_class(base_model),
        "reshard_after_forward": stage == 3,  # False keeps gathered weights until backward: ZeRO-2's trade
        "state_dict_type": "FULL_STATE_DICT",
        "cpu_ram_efficient_loading": True,
    }}


def layer_class(base_model: str) -> str:
    import json

    from ftstudy.config.model_shape import PlanError, config_path

    try:
        model_type = json.loads(config_path(base_model).read_text()).get("model_type", "qwen2")
    except (PlanError, OSError, ValueError):
        model_type = "qwen2"
    return LAYER_CLASS.get(model_type, "Qwen2DecoderLayer")


def stage_of(cfg: dict[str, Any]) -> int:
    """The ZeRO stage a config asks for (FSDP2 with resharding counts as 3, without as 2; none: 0)."""
    if cfg.get("fsdp_version") or cfg.get("fsdp_config") or cfg.get("fsdp"):
        return 3 if (cfg.get("fsdp_config") or {}).get("reshard_after_forward", True) else 2
    return 0


def choose(cfg: dict[str, Any], hardware: str) -> dict[str, Any]:
    """The keys to add to a generated config so that it runs on every GPU of `hardware` (empty for one GPU)."""
    prof = profiles.profile(hardware)
    engine = prof.get("shard_engine")
    if prof["gpus"] <= 1 or not engine:
        return {}
    base = str(cfg.get("base_model"))
    if cfg.get("adapter"):
        return keys_for(engine, 2, base) if engine == "deepspeed" else {}
    fallback = {**keys_for(engine, 3, base), "optimizer": cfg.get("optimizer")}
    from ftstudy.config.axolotl_setup import setup_from_config  # it reads stage_of from here: imported late
    from ftstudy.config.memory import memory
    from ftstudy.config.model_shape import PlanError

    for stage in (2, 3):
        keys = {**keys_for(engine, stage, base), "optimizer": FULL_OPTIMIZER}
        try:
            total = memory(setup_from_config({**cfg, **keys}, hardware))["total"]
        except PlanError:
            return fallback  # an unknown model shape: shard everything and keep the small optimizer
        if total <= prof["usable_gb"]:
            return keys
    return fallback
