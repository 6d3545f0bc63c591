"""Model shapes for the planner, read from a `config.json` (no weights, no torch).

A base model is a local path (a directory holding config.json, or the file itself) or a hub id. Hub ids are
looked up, without the network, in the Hugging Face cache and then in the configs shipped under
ftstudy/config/model_configs/<org>__<name>.json (Qwen2.5-7B, and Llama-3.1-8B for the torchtune cross-check).

Example:
    >>> from ftstudy.config.model_shape import load_shape
    >>> m = load_shape("Qwen/Qwen2.5-7B")
    >>> round(m.params_total / 1e9, 3), round(m.params_non_embedding / 1e9, 3)
    (7.616, 6.526)
    >>> round(m.lora_params(16, m.LINEARS) / 1e6, 1)
    40.4
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from ftstudy.core.errors import UserError

BUNDLED = Path(__file__).with_name("model_configs")


class PlanError(UserError, ValueError):
    """A plan that cannot be made (no model config, a run folder without its files, ...); one clean line."""


class ModelConfigMissing(PlanError):
    """No config.json could be found for a base model without reaching the network."""


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a decoder-only transformer that memory and FLOPs depend on."""

    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    qkv_bias: bool  # Qwen2 has q/k/v biases (its config has no key for it); Llama's `attention_bias` adds o too
    o_bias: bool

    LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def linear_dims(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear module of one decoder layer, by its Hugging Face name."""
        h, i = self.hidden, self.intermediate
        return {
            "q_proj": (h, self.q_dim), "k_proj": (h, self.kv_dim), "v_proj": (h, self.kv_dim),
            "o_proj": (self.q_dim, h), "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h),
        }

    @property
    def linear_weights_per_layer(self) -> int:
        """Weights of the 7 linear modules of a layer: what QLoRA stores in 4 bits."""
        return sum(a * b for a, b in self.linear_dims().values())

    @property
    def small_params_per_layer(self) -> int:
        """Biases and the two RMSNorm weights: kept in 16 bits even under QLoRA."""
        bias = (self.q_dim + 2 * self.kv_dim) * self.qkv_bias + self.hidden * self.o_bias
        return bias + 2 * self.hidden

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def head_params(self) -> int:
        """The output head (lm_head); zero when tied to the input embedding."""
        return 0 if self.tied else self.vocab * self.hidden

    @property
    def params_total(self) -> int:
        per_layer = self.linear_weights_per_layer + self.small_params_per_layer
        return self.layers * per_layer + self.hidden + self.embedding_params + self.head_params

    @property
    def params_non_embedding(self) -> int:
        """Total minus input embedding and output head: the model card's "non-embedding" count."""
        return self.params_total - self.embedding_params - self.head_params

    @property
    def params_matmul(self) -> int:
        """Parameters that take part in a matmul per token: all but the input embedding (a lookup).

        This is the N of torchtitan's `get_num_flop_per_token` (6 * (nparams - nparams_embedding)).
        """
        return self.params_total - self.embedding_params

    @property
    def params_16bit_under_qlora(self) -> int:
        """What bitsandbytes leaves unquantized: embeddings, output head, norms, biases."""
        return self.params_total - self.layers * self.linear_weights_per_layer

    def lora_params(self, rank: int, targets: tuple[str, ...] | list[str]) -> int:
        """Trainable LoRA parameters: rank × (in + out) per targeted module, in every layer."""
        dims = self.linear_dims()
        return self.layers * sum(rank * (dims[t][0] + dims[t][1]) for t in targets if t in dims)

    def attention_flops_per_token(self, seq_len: int) -> float:
        """12·L·H·Q·T: 2 attention matmuls forward and 4 backward (torchtitan; causal sparsity ignored)."""
        return 12.0 * self.layers * self.heads * self.head_dim * seq_len


def shape_from_config(cfg: dict, name: str = "model") -> ModelShape:
    """Build a ModelShape from a parsed config.json (multimodal configs: their `text_config`)."""
    cfg = cfg.get("text_config") or cfg
    try:
        hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        model_type = cfg.get("model_type", "")
        bias = bool(cfg.get("attention_bias", False))
        return ModelShape(
            name=name,
            hidden=hidden,
            intermediate=int(cfg["intermediate_size"]),
            layers=int(cfg["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            vocab=int(cfg["vocab_size"]),
            # transformers' Llama and Qwen2 configs default to untied; the key is almost always written out
            tied=bool(cfg.get("tie_word_embeddings", False)),
            qkv_bias=bias or model_type == "qwen2",
            o_bias=bias and model_type != "qwen2",
        )
    except KeyError as exc:
        raise ModelConfigMissing(f"{name}: config.json lacks {exc.args[0]!r}") from None


def _hf_cache_config(hub_id: str) -> Path | None:
    home = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")
    snaps = Path(home) / f"models--{hub_id.replace('/', '--')}" / "snapshots"
    found = sorted(snaps.glob("*/config.json")) if snaps.is_dir() else []
    return found[-1] if found else None


def config_path(base_model: str) -> Path:
    """Where the config.json of a base model is: local path, HF cache, or the bundled copy."""
    local = Path(base_model).expanduser()
    if local.is_dir() and (local / "config.json").is_file():
        return local / "config.json"
    if local.is_file():
        return local
    cached = _hf_cache_config(base_model) if "/" in base_model else None
    if cached:
        return cached
    bundled = BUNDLED / (base_model.replace("/", "__") + ".json")
    if bundled.is_file():
        return bundled
    known = sorted(p.stem.replace("__", "/") for p in BUNDLED.glob("*.json"))
    raise ModelConfigMissing(
        f"no config.json for base model {base_model!r}: give a local model directory or config.json, "
        f"or one of the bundled ids ({', '.join(known)})"
    )


@functools.cache
def _load(path: str) -> ModelShape:
    return shape_from_config(json.loads(Path(path).read_text()), name=path)


def load_shape(base_model: str) -> ModelShape:
    """The ModelShape of a base model (hub id or local path); cached per config file."""
    path = config_path(base_model)
    shape = _load(str(path))
    return replace(shape, name=base_model)
