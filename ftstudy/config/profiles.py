"""Hardware profiles and method settings, as tables.

A profile turns one experiment into settings that fit a machine; a method picks its Axolotl keys from
METHOD_SETTINGS and its optimizer from OPTIMIZERS (profile × method), never from `if method == ...` chains.
Memory and compute figures are from shared/docs/performance-reference.md.
"""
from __future__ import annotations

import re
from typing import Any

LIGER = {
    "plugins": ["axolotl.integrations.liger.LigerPlugin"],
    "liger_rope": True,
    "liger_rms_norm": True,
    "liger_glu_activation": True,
    "liger_fused_linear_cross_entropy": True,
}

# How GPUs talk, in GB/s per GPU and direction (nominal link rates; all-reduce reaches ~80% of them), and which
# engine shards a job over several GPUs. DeepSpeed on x86 H100 nodes (Axolotl's tested path); FSDP2 on the
# aarch64 Sparks: it ships inside torch, where DeepSpeed's ops would have to be built for sm_121.
SPARK_LINK = {"intra_node_gbs": 0.0, "inter_node_gbs": 25.0, "intra_link": "none (one GPU per Spark)",
              "inter_link": "ConnectX-7, 200 Gb/s", "shard_engine": "fsdp2"}
H100_LINK = {"intra_node_gbs": 450.0, "inter_node_gbs": 50.0, "intra_link": "NVLink 4, 900 GB/s both ways",
             "inter_link": "InfiniBand NDR, one 400 Gb/s NIC per GPU", "shard_engine": "deepspeed"}
# What every GPU profile (the Sparks and the H100s) turns on in Axolotl: bf16 + TF32 tensor cores,
# FlashAttention-2, packing, checkpointing. A setting for one profile only goes in that profile's own dict.
GPU_AXOLOTL = {"bf16": "auto", "tf32": True, "attn_implementation": "flash_attention_2", "sample_packing": True,
               "pad_to_sequence_len": True, "gradient_checkpointing": True, **LIGER}

# Per-profile Axolotl settings. `global_batch` (sequences per optimizer step) and `micro_batch` (per GPU, by
# method) give gradient_accumulation_steps = global_batch / (micro_batch × gpus).
PROFILES: dict[str, dict[str, Any]] = {
    "dgx-spark": {
        "title": "NVIDIA DGX Spark (GB10, 128 GB unified, ~120 GB usable, aarch64)",
        "gpus": 1,
        **SPARK_LINK,
        "usable_gb": 120.0,
        "peak_tflops": 92.0,  # measured bf16 matmul (performance-reference §1.1)
        "mfu": 0.35,
        "gpu": True,
        "compute_capability": "sm_121",  # GB10
        "global_batch": 32,
        "micro_batch": {"lora": 4, "qlora": 4, "full": 2, "dpo": 2},
        "max_sequence_len": 8192,
        "axolotl": {**GPU_AXOLOTL},
    },
    "h100": {
        "title": "1x NVIDIA H100 80 GB",
        "gpus": 1,
        **H100_LINK,
        "usable_gb": 79.0,
        "peak_tflops": 989.0,
        "mfu": 0.40,
        "gpu": True,
        "compute_capability": "sm_90",
        "global_batch": 32,
        "micro_batch": {"lora": 8, "qlora": 8, "full": 4, "dpo": 4},
        "max_sequence_len": 8192,
        "axolotl": {**GPU_AXOLOTL},
    },
    "h100x8": {
        "title": "8x NVIDIA H100 80 GB (one node) with DeepSpeed ZeRO",
        "gpus": 8,
        **H100_LINK,
        "usable_gb": 79.0,
        "peak_tflops": 989.0,
        "mfu": 0.38,
        "gpu": True,
        "compute_capability": "sm_90",
        "global_batch": 64,
        "micro_batch": {"lora": 8, "qlora": 8, "full": 4, "dpo": 4},
        "max_sequence_len": 8192,
        "axolotl": {**GPU_AXOLOTL},
    },
    "cpu": {
        "title": "CPU only (tiny model smoke tests; fp32, SDPA, no packing, no CUDA kernels)",
        "gpus": 1,
        "shard_engine": None,  # data parallel only (gloo); Axolotl 0.19 cannot place a model on CPU in DDP anyway
        "intra_node_gbs": 5.0, "intra_link": "loopback (gloo)",
        "inter_node_gbs": 1.25, "inter_link": "10 GbE",
        "usable_gb": 16.0,
        "peak_tflops": 0.2,
        "mfu": 0.10,
        "gpu": False,
        "compute_capability": None,
        "global_batch": 4,
        "micro_batch": {"lora": 2, "qlora": 2, "full": 2, "dpo": 2},
        "max_sequence_len": 1024,
        # Verified on CPU (architecture.md): Triton LoRA kernels are CUDA-only; packing without a
        # sample-separating attention hurts on CPU, so the cpu profile does not pack.
        "env": {"AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""},
        "axolotl": {
            "bf16": False,
            "fp16": False,
            "tf32": False,
            "attn_implementation": "sdpa",
            "sample_packing": False,
            "pad_to_sequence_len": False,
            "gradient_checkpointing": False,
            "lora_mlp_kernel": False,
            "lora_qkv_kernel": False,
            "lora_o_kernel": False,
            "dataloader_num_workers": 0,
        },
    },
}

# Two DGX Sparks linked by their ConnectX-7 ports: one GPU per node, two nodes.
PROFILES["dgx-spark-x2"] = {**PROFILES["dgx-spark"], "title": "2x NVIDIA DGX Spark linked by ConnectX-7 (200 Gb/s)",
                            "nodes": 2, "gpus": 2, "gpus_per_node": 1}
for _p in PROFILES.values():
    _p.setdefault("nodes", 1)
    _p.setdefault("gpus_per_node", _p["gpus"] // _p["nodes"])

HARDWARE = tuple(PROFILES)
_NODES = re.compile(r"^(?P<base>.+)-(?P<n>\d+)nodes$")

# Axolotl keys each method sets, whatever the hardware.
METHOD_SETTINGS: dict[str, dict[str, Any]] = {
    "lora": {"adapter": "lora", "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "lora_target_linear": True},
    "qlora": {
        "adapter": "qlora",
        "load_in_4bit": True,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "lora_target_linear": True,
    },
    "full": {},
    "dpo": {
        "rl": "dpo",
        "adapter": "lora",
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "lora_target_linear": True,
        "dpo_beta": 0.1,
    },
}

# Keys a method forces after the profile's: Axolotl refuses sample packing with RL trainers (found by
# `ftstudy validate --deep`), so DPO never packs whatever the profile says.
METHOD_FINAL: dict[str, dict[str, Any]] = {
    "dpo": {"sample_packing": False, "pad_to_sequence_len": False},
}

# Optimizer by (profile, method). Full fine-tuning of 7.6B params with mixed-precision AdamW needs ~122 GB of
# state before activations (architecture.md): it fits neither a DGX Spark (~120 GB usable) nor one H100, so
# those profiles use an 8-bit paged AdamW (~46 GB); 8 GPUs with ZeRO-3 shard fused AdamW instead.
# bitsandbytes is CUDA-only, so the cpu profile uses plain torch AdamW.
OPTIMIZERS: dict[str, dict[str, str]] = {
    "dgx-spark": {"lora": "adamw_torch_fused", "qlora": "paged_adamw_8bit", "full": "paged_adamw_8bit", "dpo": "adamw_torch_fused"},
    "h100": {"lora": "adamw_torch_fused", "qlora": "paged_adamw_8bit", "full": "paged_adamw_8bit", "dpo": "adamw_torch_fused"},
    "h100x8": {"lora": "adamw_torch_fused", "qlora": "paged_adamw_8bit", "full": "adamw_torch_fused", "dpo": "adamw_torch_fused"},
    "dgx-spark-x2": {"lora": "adamw_torch_fused", "qlora": "paged_adamw_8bit", "full": "paged_adamw_8bit", "dpo": "adamw_torch_fused"},
    "cpu": {"lora": "adamw_torch", "qlora": "adamw_torch", "full": "adamw_torch", "dpo": "adamw_torch"},
}

# Why each optimizer was chosen, for `ftstudy plan` and `show`.
OPTIMIZER_WHY = {
    "paged_adamw_8bit": "8-bit AdamW states (2 B/param) keep full fine-tuning of 7.6B params near 46 GB",
    "adamw_torch_fused": "fused AdamW; adapter states are small, or ZeRO-3 shards the full states",
    "adamw_torch": "plain AdamW: bitsandbytes and fused kernels are CUDA-only",
}


def profile(name: str) -> dict[str, Any]:
    """A profile by name; `NAME-<N>nodes` is NAME on N nodes (what `--nodes N` makes), `gpus` then counts all.

    Example:
        >>> p = profile("h100x8-2nodes")
        >>> p["nodes"], p["gpus_per_node"], p["gpus"]
        (2, 8, 16)
    """
    from ftstudy.config.registry import UnknownName

    m = _NODES.match(name)
    base = m["base"] if m else name
    if base not in PROFILES or (m and int(m["n"]) < 1):
        raise UnknownName("hardware profile", name, list(PROFILES))
    if not m:
        return PROFILES[name]
    n = int(m["n"])
    return {**PROFILES[base], "nodes": n, "gpus": PROFILES[base]["gpus_per_node"] * n,
            "title": f"{n} nodes of: {PROFILES[base]['title']}"}


# The torch each profile trains with: the GPU hosts reuse the CUDA torch of the Dockerfile's base image
# (nvcr.io/nvidia/pytorch:25.10-py3 ships PyTorch 2.9.0); the cpu profile has the train environment's pin.
GPU_TORCH = "2.9.0"


def cpu_torch() -> str:
    from ftstudy.core.tool_envs import REQ_DIR

    pins = (REQ_DIR / "train-cpu.txt").read_text()
    return re.search(r"^torch==([\d.]+)", pins, re.M).group(1)


def axolotl_capabilities(hardware: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What `axolotl train` would probe on this profile's machines: (capabilities, env_capabilities) for
    Axolotl's validate_config, so that a config is checked for the hardware it is meant for, not this host.

    Example:
        >>> axolotl_capabilities("dgx-spark-x2")[0]
        {'bf16': True, 'fp8': True, 'tf32': True, 'n_gpu': 2, 'n_node': 2, 'compute_capability': 'sm_121'}
    """
    prof = profile(hardware)
    gpu = bool(prof["gpu"])
    caps = {"bf16": gpu, "fp8": gpu and int(prof["compute_capability"][3:]) >= 89, "tf32": gpu,
            "n_gpu": prof["gpus"], "n_node": prof["nodes"], "compute_capability": prof["compute_capability"]}
    return caps, {"torch_version": GPU_TORCH if gpu else cpu_torch()}


def base_name(name: str) -> str:
    """The table entry a profile name reads (`h100x8-2nodes` -> `h100x8`)."""
    m = _NODES.match(name)
    return m["base"] if m else name


def with_nodes(hardware: str, nodes: int | None) -> str:
    """The profile name for `--hardware H --nodes N` (N=None keeps the profile's own node count).

    Example:
        >>> with_nodes("h100", 2), with_nodes("dgx-spark-x2", None), with_nodes("h100x8", 1)
        ('h100-2nodes', 'dgx-spark-x2', 'h100x8')
    """
    if nodes is None or nodes == PROFILES[base_name(hardware)]["nodes"]:
        return base_name(hardware) if nodes is not None else hardware
    if nodes < 1:
        from ftstudy.core.errors import UserError

        raise UserError(f"--nodes {nodes}: give 1 or more nodes")
    return f"{base_name(hardware)}-{nodes}nodes"


def batch_settings(hardware: str, method: str) -> dict[str, int]:
    """micro_batch_size and gradient_accumulation_steps for a sensible global batch on this profile."""
    prof = profile(hardware)
    micro = prof["micro_batch"][method]
    accum = max(1, prof["global_batch"] // (micro * prof["gpus"]))  # gpus: every GPU of every node
    return {"micro_batch_size": micro, "gradient_accumulation_steps": accum}
