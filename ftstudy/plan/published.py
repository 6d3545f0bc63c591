"""Published memory figures the planner is checked against (shared/docs/performance-reference.md §4).

Each case names its source and tag ([I] independent, [V] vendor about its own tool, [D] the reference's own
arithmetic), the published figure and unit, what is compared (the whole peak, or only the model states a
[D] row covers), and the settings the planner is given, with every assumption the source does not state.
The published figures are PyTorch allocator peaks, so the cases carry no CUDA-context overhead.

Example:
    >>> c = case("qwen7b-full-8bit-states")
    >>> round(predict(c), 1), c["published"]
    (45.7, 45.7)
"""
from __future__ import annotations

from typing import Any

from ftstudy.config.memory import GB, Setup, memory
from ftstudy.config.model_shape import load_shape

GIB = 2**30
_TT_LORA = ("q_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # torchtune 8B LoRA defaults


def _qwen(**kw: Any) -> Setup:
    return Setup(model=load_shape("Qwen/Qwen2.5-7B"), **kw)


def _llama_torchtune(**kw: Any) -> Setup:
    # torchtune README: batch 2, packed to 2048, torch.compile (fuses norm and SwiGLU elementwise ops),
    # chunked cross-entropy; single-device configs: LoRA rank 8, bf16 adapters, activation checkpointing.
    base = dict(micro_batch=2, seq_len=2048, lora_r=8, adapter_bytes=2, fused_norm=True, fused_glu=True,
                loss="chunked", optimizer="adamw_torch_fused")
    return Setup(model=load_shape("meta-llama/Llama-3.1-8B"), **{**base, **kw})


CASES: list[dict[str, Any]] = [
    {
        "id": "qwen7b-lora-dpo", "tag": "I", "published": 19.08, "unit": "GB", "compare": "total",
        "what": "Qwen2.5-7B LoRA DPO peak (r16, seq 2048, bs1, bf16, grad-ckpt, TRL)",
        "source": "superkaiba/explore-persona-space#36, in HF dataset odyn-network/benchmark-finetune-dpo-v1",
        "assumes": "LoRA on all 7 linears, dropout 0.05; chosen and rejected both padded to 2048; no Liger",
        "setup": lambda: _qwen(method="lora", optimizer="adamw_torch", micro_batch=1, seq_len=2048, preference=True,
                               lora_r=16, lora_dropout=0.05, loss="preference"),
    },
    {
        "id": "llama8b-qlora-4090", "tag": "V", "published": 7.4, "unit": "GiB", "compare": "total",
        "what": "Llama 3.1 8B QLoRA on 1x RTX 4090 (bs2, packed 2048, compile)",
        "source": "pytorch/torchtune README, 'Memory and training speed' table",
        "assumes": "llama3_1/8B_qlora_single_device (q,k,v,o + MLP); activations offloaded to CPU, as the "
                   "README's reproduce command for its LoRA/QLoRA rows does (+21% if not)",
        "setup": lambda: _llama_torchtune(method="qlora", quant_bits=4, offload_activations=True),
    },
    {
        "id": "llama8b-lora-4090", "tag": "V", "published": 16.2, "unit": "GiB", "compare": "total",
        "what": "Llama 3.1 8B LoRA on 1x RTX 4090 (bs2, packed 2048, compile)",
        "source": "pytorch/torchtune README, 'Memory and training speed' table",
        "assumes": "llama3_1/8B_lora_single_device (q,v,o + MLP); activations offloaded to CPU (+15% if not)",
        "setup": lambda: _llama_torchtune(method="lora", lora_targets=_TT_LORA, offload_activations=True),
    },
    {
        "id": "llama8b-lora-a6000", "tag": "V", "published": 30.3, "unit": "GiB", "compare": "total",
        "what": "Llama 3.1 8B LoRA on 1x A6000 (bs2, packed 2048, compile)",
        "source": "pytorch/torchtune README, 'Memory and training speed' table",
        "assumes": "activation checkpointing off (the 48 GB card has room; its 1.5x tokens/s over the 4090 agrees)",
        "setup": lambda: _llama_torchtune(method="lora", lora_targets=_TT_LORA, grad_ckpt=False),
    },
    {
        "id": "qwen7b-full-8bit-states", "tag": "D", "published": 45.7, "unit": "GB", "compare": "states",
        "what": "Qwen2.5-7B full FT, bf16 weights + grads + 8-bit AdamW (paged_adamw_8bit): states only",
        "source": "performance-reference.md §4.1 table (also architecture.md: '~46 GB')",
        "assumes": "weights, gradients and optimizer items only",
        "setup": lambda: _qwen(method="full", optimizer="paged_adamw_8bit", micro_batch=1, seq_len=2048),
    },
    {
        "id": "qwen7b-full-mixed-adamw-states", "tag": "D", "published": 121.8, "unit": "GB", "compare": "states",
        "what": "Qwen2.5-7B full FT, mixed-precision AdamW (16 B/param): states only",
        "source": "performance-reference.md §4.1 table",
        "assumes": "weights, gradients and optimizer items only",
        "setup": lambda: _qwen(method="full", optimizer="adamw_torch_fused", micro_batch=1, seq_len=2048),
    },
    {
        "id": "qwen7b-qlora-nf4-weights", "tag": "D", "published": 5.5, "unit": "GB", "compare": "weights",
        "what": "Qwen2.5-7B QLoRA base: NF4 linears + bf16 embeddings/head (1.09B params)",
        "source": "performance-reference.md §4.1 table",
        "assumes": "bitsandbytes double quantization (Axolotl's default)",
        "setup": lambda: _qwen(method="qlora", optimizer="paged_adamw_8bit", micro_batch=1, seq_len=2048,
                               quant_bits=4, lora_r=16),
    },
    {
        "id": "qwen7b-lora-r16-states", "tag": "D", "published": 0.65, "unit": "GB", "compare": "adapter",
        "what": "Qwen2.5-7B LoRA r16 on all 7 linears (40.4M params): adapters + gradients + AdamW",
        "source": "performance-reference.md §4.1 table",
        "assumes": "fp32 adapters (PEFT's default), AdamW fp32 moments",
        "setup": lambda: _qwen(method="lora", optimizer="adamw_torch_fused", micro_batch=1, seq_len=2048, lora_r=16),
    },
]

COMPARED = {
    "total": ("total",),
    "states": ("weights", "gradients", "optimizer"),
    "weights": ("weights",),
    "adapter": ("trainable", "gradients", "optimizer"),
}


def case(case_id: str) -> dict[str, Any]:
    return next(c for c in CASES if c["id"] == case_id)


def predict(c: dict[str, Any]) -> float:
    """The planner's figure for a case, in the case's unit."""
    parts = memory(c["setup"]())
    value = sum(parts[k] for k in COMPARED[c["compare"]]) * GB
    return value / (GIB if c["unit"] == "GiB" else GB)


def error_pct(c: dict[str, Any]) -> float:
    """(predicted - published) / published, in percent."""
    return 100.0 * (predict(c) - c["published"]) / c["published"]


def table() -> list[dict[str, Any]]:
    """One row per case, for the benchmark script and reports."""
    return [{"id": c["id"], "tag": c["tag"], "what": c["what"], "source": c["source"], "assumes": c["assumes"],
             "unit": c["unit"], "published": c["published"], "predicted": round(predict(c), 2),
             "error_pct": round(error_pct(c), 1)} for c in CASES]
