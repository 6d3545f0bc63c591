"""Peak training memory per GPU, itemised, from a model's shape and a run's settings (pure arithmetic).

Sources of each formula (shared/docs/performance-reference.md §4 unless said otherwise):
- states: bytes per parameter of weights, gradients and optimizer (§4.1 table: 16 B mixed-precision AdamW,
  6 B with 8-bit AdamW); NF4 = 4 bits + one 8-bit absmax per 64 weights + one fp32 per 256 absmax
  (bitsandbytes double quantization, which Axolotl turns on for QLoRA); embeddings, output head, norms
  and biases stay in 16 bits (§4.1: 1.09 B params for Qwen2.5-7B);
- activations: the tensors autograd saves per token and layer, counted from the Hugging Face decoder layer
  (flash attention saves q, k, v, output and a log-sum-exp, never the T×T scores); with gradient
  checkpointing only each layer's input stays, plus one layer recomputed during backward (§4.1: 0.41 GB
  per 2k-token sequence of checkpointed inputs for Qwen2.5-7B);
- logits: tokens × vocab (§4.1: 0.62 GB bf16 / 1.25 GB fp32 per 2k tokens at 152k vocab), unless a fused
  linear + cross-entropy (Liger) computes them in chunks.

Example:
    >>> from ftstudy.config.model_shape import load_shape
    >>> m = load_shape("Qwen/Qwen2.5-7B")
    >>> s = Setup(model=m, method="full", optimizer="paged_adamw_8bit", micro_batch=1, seq_len=2048)
    >>> parts = memory(s)
    >>> round(parts["weights"] + parts["gradients"] + parts["optimizer"], 1)
    45.7
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ftstudy.config.model_shape import ModelShape

GB = 1e9

# Optimizer name (Axolotl / HF Trainer `optimizer:`) -> bytes of state per trainable parameter, and whether
# it keeps an fp32 master copy of 16-bit weights. AdamW in mixed precision keeps fp32 m, v and master
# (§4.1: 12 B on top of the 16-bit weight and gradient). bitsandbytes' 8-bit optimizers quantize m and v
# blockwise (1 B each + one fp32 absmax per 2048-value block) and update the weights in place: no master.
# Lion keeps one moment. "paged" states live in unified memory that can spill to host RAM on a discrete GPU.
OPTIMIZERS: dict[str, dict] = {
    "adamw_torch": {"state": 8.0, "master": True},
    "adamw_torch_fused": {"state": 8.0, "master": True},
    "adamw_hf": {"state": 8.0, "master": True},
    "adamw_apex_fused": {"state": 8.0, "master": True},
    "paged_adamw_32bit": {"state": 8.0, "master": True, "paged": True},
    "adamw_bnb_8bit": {"state": 2 * (1 + 4 / 2048), "master": False},
    "adamw_8bit": {"state": 2 * (1 + 4 / 2048), "master": False},
    "paged_adamw_8bit": {"state": 2 * (1 + 4 / 2048), "master": False, "paged": True},
    "lion_8bit": {"state": 1 + 4 / 2048, "master": False},
    "paged_lion_8bit": {"state": 1 + 4 / 2048, "master": False, "paged": True},
    "lion_32bit": {"state": 4.0, "master": True},
    "sgd": {"state": 0.0, "master": False},
}
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit code + 8-bit absmax per 64 + fp32 absmax-scale per 256 blocks
INT8_BYTES = 1 + 4 / 4096  # LLM.int8 weights with per-row fp32 scales (rows ≈ 4k wide)


@dataclass(frozen=True)
class Setup:
    """Everything per-GPU peak memory depends on, independent of which tool runs the training.

    method: "full", "lora" or "qlora" (how weights are stored and which are trained); preference: DPO-style
    (each row is a chosen + rejected pair). dtype_bytes: 2 for bf16/fp16 training, 4 for fp32 (CPU).
    loss: "hf" (transformers upcasts logits to fp32), "chunked" (torchtune's chunked CE, compiled),
    "fused" (Liger fused linear + cross-entropy or Cut Cross-Entropy), "preference" (TRL's DPO log-probs).
    """

    model: ModelShape
    method: str
    optimizer: str
    micro_batch: int
    seq_len: int
    dtype_bytes: int = 2
    grad_ckpt: bool = True
    offload_activations: bool = False
    save_attention: bool = False  # selective checkpointing: attention outputs saved, not recomputed
    preference: bool = False
    reference: str = "adapter-disabled"  # DPO: "adapter-disabled", "precomputed" or "copy"
    lora_r: int = 0
    lora_targets: tuple[str, ...] = ModelShape.LINEARS
    lora_dropout: float = 0.0
    adapter_bytes: int = 4  # PEFT keeps adapter weights in fp32 (autocast_adapter_dtype)
    quant_bits: int = 16  # 4 for QLoRA (NF4), 8 for load_in_8bit
    fused_norm: bool = False  # Liger RMSNorm or torch.compile: no fp32 copy saved by the norm
    fused_glu: bool = False  # Liger SwiGLU or torch.compile: silu(gate) recomputed, not saved
    attention: str = "flash"  # "flash"/"sdpa" keep no T×T scores; "eager" does
    loss: str = "hf"
    loss_chunks: int = 8
    gpus: int = 1
    zero_stage: int = 0
    offload_optimizer: bool = False  # DeepSpeed offload_optimizer: states (and the fp32 master) in host RAM
    overhead_gb: float = 0.0  # CUDA context, workspaces, interpreter and libraries (per profile)
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def tokens(self) -> int:
        """Token positions in one micro-batch on one GPU (a preference row is two sequences)."""
        return self.micro_batch * self.seq_len * (2 if self.preference else 1)

    @property
    def trainable(self) -> int:
        if self.method == "full":
            return self.model.params_total
        return self.model.lora_params(self.lora_r, self.lora_targets)


def optimizer_info(name: str) -> dict:
    """The OPTIMIZERS entry for a name; unknown names are treated as 32-bit AdamW (the conservative case)."""
    return OPTIMIZERS.get(name, {"state": 8.0, "master": True, "unknown": True})


def _weights(s: Setup) -> float:
    m = s.model
    if s.quant_bits < 16:
        per = NF4_BYTES if s.quant_bits == 4 else INT8_BYTES
        quantized = m.layers * m.linear_weights_per_layer
        # ZeRO-3 cannot shard bitsandbytes' quantized tensors; only the 16-bit rest would be sharded
        return quantized * per + m.params_16bit_under_qlora * s.dtype_bytes / _shard(s, 3)
    return m.params_total * s.dtype_bytes / _shard(s, 3)


def _shard(s: Setup, stage: int) -> int:
    """ZeRO stage 1 shards optimizer states, 2 adds gradients, 3 adds weights, over the data-parallel GPUs."""
    return s.gpus if s.zero_stage >= stage and s.gpus > 1 else 1


def _states(s: Setup) -> dict[str, float]:
    """Trainable parameters, their gradients and optimizer states, in bytes."""
    opt = optimizer_info(s.optimizer)
    n = s.trainable
    param_bytes = s.dtype_bytes if s.method == "full" else s.adapter_bytes
    master = 4.0 if opt["master"] and param_bytes < 4 else 0.0
    return {
        # full fine-tuning trains the weights themselves: already counted under "weights"
        "trainable": 0.0 if s.method == "full" else n * param_bytes,
        "gradients": n * param_bytes / _shard(s, 2),
        "optimizer": 0.0 if s.offload_optimizer else n * (opt["state"] + master) / _shard(s, 1),
    }


def layer_bytes_per_token(s: Setup) -> float:
    """Bytes autograd saves per token for one decoder layer (Hugging Face Qwen2/Llama layer, flash attention).

    Norm: its input (an fp32 copy unless fused) and its 16-bit output, the input of the next matmuls.
    Attention: q, k, v after RoPE and the output (flash attention's saved tensors; SDPA/eager repeat k, v to
    all heads), log-sum-exp in fp32. MLP: gate, up, silu(gate) and the product fed to down_proj (a fused
    SwiGLU recomputes silu). LoRA with dropout > 0: each adapted module saves its own dropped-out copy of the
    input plus a 1-byte mask (PEFT applies dropout per module); without dropout the input is shared.
    """
    m, e = s.model, s.dtype_bytes
    norm = ((e if s.fused_norm else 4) + e) * m.hidden
    kv = m.kv_dim if s.attention == "flash" else m.q_dim  # HF sdpa/eager expand GQA heads before attention
    attn = e * (m.q_dim + 2 * kv) + e * m.q_dim + 4 * m.heads
    if s.attention == "eager":
        attn += 2 * e * m.heads * s.seq_len  # scores and softmax probabilities, T per token per head
    mlp = e * m.intermediate * (3 if s.fused_glu else 4)
    lora = 0.0
    if s.method != "full":
        dims = m.linear_dims()
        ins = sum(dims[t][0] for t in s.lora_targets if t in dims)
        lora = (e + 1) * ins if s.lora_dropout > 0 else 0.0
        lora += e * s.lora_r * len(s.lora_targets)  # lora_A outputs, saved by lora_B
    return 2 * norm + attn + mlp + lora


def activations(s: Setup, grad_ckpt: bool | None = None) -> float:
    """Activation bytes at the peak, for one micro-batch, with or without gradient checkpointing.

    Without checkpointing every layer keeps its saved tensors. With it, each layer keeps only its input
    (16-bit hidden state; on the CPU if activations are offloaded) and one layer is recomputed during
    backward. Either way the backward pass holds transient gradients about the size of one hidden state and
    one MLP intermediate pair.
    """
    m, e, t = s.model, s.dtype_bytes, s.tokens
    ckpt = s.grad_ckpt if grad_ckpt is None else grad_ckpt
    per_layer = layer_bytes_per_token(s)
    final_norm = ((e if s.fused_norm else 4) + e) * m.hidden
    transient = e * (2 * m.hidden + 2 * m.intermediate)
    if ckpt:
        kept = 0.0 if s.offload_activations else m.layers * e * m.hidden
        if s.save_attention:  # Axolotl's selective checkpointing keeps each layer's attention output + LSE
            kept += m.layers * (e * m.q_dim + 4 * m.heads)
        return t * (kept + per_layer + final_norm + transient)
    return t * (m.layers * per_layer + final_norm + transient)


def logits(s: Setup) -> float:
    """Bytes for the output logits and the loss over them.

    "hf": logits + the fp32 upcast transformers' loss makes + fp32 log-softmax (§4.1 sizes).
    "preference": TRL's DPO keeps 16-bit logits and takes log-softmax row by row, in 16 bits.
    "chunked": torchtune's compiled chunked CE keeps the 16-bit logits and upcasts one chunk at a time.
    "fused": Liger splits the tokens into chunks of next_pow2(T / ceil(V/H)) rows, so a chunk of logits
    (16-bit + fp32 gradient) is about one hidden state; it also holds the input gradient, and an fp32
    gradient of the output head when the head is trained.
    """
    m, e, t, v = s.model, s.dtype_bytes, s.tokens, s.model.vocab
    if s.loss == "fused":
        per_chunk = -(-t // -(-v // m.hidden))
        rows = 1 << max(0, (per_chunk - 1).bit_length())
        head_grad = 4 * v * m.hidden if s.method == "full" else 0
        return min(rows, t) * v * (e + 4) + t * m.hidden * e + head_grad
    if s.loss == "chunked":
        return t * v * (e + 8 / s.loss_chunks)
    if s.loss == "preference":
        return t * v * 2 * e
    return t * v * (e + (4 if e < 4 else 0) + 4)  # the upcast is a no-op when training in fp32


def reference_model(s: Setup) -> tuple[float, str]:
    """DPO's frozen reference: none with adapters (the policy with adapters disabled) or precomputed
    log-probs; otherwise a second copy of the weights."""
    if not s.preference:
        return 0.0, "not a preference method"
    if s.reference == "precomputed":
        return 0.0, "none: reference log-probs precomputed"
    if s.method != "full" and s.reference != "copy":
        return 0.0, "none: the policy with its LoRA adapters disabled"
    return _weights(s), "a frozen copy of the weights"


def memory(s: Setup) -> dict[str, float]:
    """Peak memory per GPU in GB, itemised; `total` is the sum of the other items.

    Example:
        >>> from ftstudy.config.model_shape import load_shape
        >>> s = Setup(load_shape("Qwen/Qwen2.5-7B"), "qlora", "paged_adamw_8bit", 1, 2048, quant_bits=4, lora_r=16)
        >>> round(memory(s)["weights"], 1)
        5.5
    """
    st = _states(s)
    ref, _ = reference_model(s)
    parts = {
        "weights": _weights(s),
        "trainable": st["trainable"],
        "gradients": st["gradients"],
        "optimizer": st["optimizer"],
        "reference_model": ref,
        "activations": activations(s),
        "logits": logits(s),
        "zero3_buffers": _zero3_buffers(s),
    }
    out = {k: v / GB for k, v in parts.items()}
    out["overhead"] = s.overhead_gb
    out["total"] = sum(out.values())
    return out


def _zero3_buffers(s: Setup) -> float:
    """ZeRO-3 gathers a layer's full 16-bit weights (and the output head) while using them: two in flight."""
    if _shard(s, 3) == 1 or s.quant_bits < 16:
        return 0.0
    m = s.model
    layer = m.linear_weights_per_layer + m.small_params_per_layer
    return 2 * max(layer, m.head_params or m.embedding_params) * s.dtype_bytes
