"""ftstudy's cross-field rules for Axolotl configs: what the schema cannot see (QLoRA without 4-bit weights,
packing without varlen attention, CUDA-only kernels on the cpu profile, plugin keys without their plugin, ...).
Each rule is `fn(cfg, ctx) -> Iterator[Problem]`, registered in RULES by `@rule`; ctx holds `gpu` (None when
the hardware is unknown) and `base_dir` (where relative dataset paths start).

Example:
    >>> [p.render() for p in qlora_needs_4bit({"adapter": "qlora"}, {})]
    ['load_in_4bit: adapter: qlora needs load_in_4bit: true (set load_in_4bit: true)']
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Callable, Iterator

from ftstudy.config import axolotl_rules as ax
from ftstudy.config.validate_schema import NOTE, WARNING, Problem, schema

Rule = Callable[[dict, dict], Iterator[Problem]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


@rule
def qlora_needs_4bit(cfg: dict, ctx: dict) -> Iterator[Problem]:
    if cfg.get("adapter") == "qlora" and not cfg.get("load_in_4bit"):
        yield Problem("load_in_4bit", "adapter: qlora needs load_in_4bit: true", "set load_in_4bit: true")


@rule
def dpo_needs_preference_data(cfg: dict, ctx: dict) -> Iterator[Problem]:
    """Axolotl's RL data loader resolves `type` in axolotl.prompt_strategies.{dpo,orpo,kto}; it fails otherwise."""
    datasets = cfg.get("datasets")
    for i, ds in enumerate(datasets if isinstance(datasets, list) else []):
        found = ax.rl_type_problem(str(cfg.get("rl")), ds.get("type"), schema()) if isinstance(ds, dict) else None
        if found:
            msg, near = found
            yield Problem(f"datasets[{i}].type", msg, f"did you mean {near}?" if near else
                          "use chatml.ultra or chat_template.default with chosen/rejected fields")


@rule
def axolotl_model_validators(cfg: dict, ctx: dict) -> Iterator[Problem]:
    """Axolotl's own model validators that matter for training, mirrored in ftstudy/config/axolotl_rules.py."""
    for check in ax.MODEL_RULES:
        for path, message, hint, level in check(cfg, schema()):
            yield Problem(path, message, hint, level)


@rule
def rl_does_not_pack(cfg: dict, ctx: dict) -> Iterator[Problem]:
    if cfg.get("rl") and cfg.get("sample_packing"):
        yield Problem("sample_packing", f"Axolotl does not pack samples for rl: {cfg['rl']}", "set sample_packing: false")


@rule
def packing_needs_varlen_attention(cfg: dict, ctx: dict) -> Iterator[Problem]:
    # Axolotl 0.19 keeps packed samples apart with flash/flex/xformers/sage kernels, and with sdpa/eager through a
    # block-diagonal mask; sdpa_varlen (torch >= 2.10, on unless set false) makes sdpa skip the masked blocks.
    attn = str(cfg.get("attn_implementation") or "")
    varlen = attn.startswith(("flash_attention", "flex_attention", "xformers", "sage")) or "flash-attn" in attn \
        or "sage-attention" in attn or cfg.get("flash_attention") or cfg.get("flex_attention")
    if not ctx.get("gpu") or not cfg.get("sample_packing") or varlen:
        return
    if attn in ("sdpa", "eager") and not (attn == "sdpa" and cfg.get("sdpa_varlen") is not False):
        yield Problem("sample_packing", f"packed rows with {attn} attention pay a full T×T block-diagonal mask",
                      "use attn_implementation: sdpa with sdpa_varlen, or flash_attention_2", WARNING)
    elif attn not in ("sdpa", "eager"):
        yield Problem("sample_packing", "sample packing on GPU without a varlen attention lets packed samples attend "
                      "to each other", "set attn_implementation: flash_attention_2 (or sdpa), or sample_packing: false")


@rule
def cpu_turns_off_cuda_kernels(cfg: dict, ctx: dict) -> Iterator[Problem]:
    if ctx.get("gpu") is False and cfg.get("adapter"):
        for key in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel"):
            if cfg.get(key) is not False:
                yield Problem(key, "the Triton LoRA kernels are CUDA-only and Axolotl enables them by default",
                              f"set {key}: false on the cpu profile")
    attn = str(cfg.get("attn_implementation") or "")
    if ctx.get("gpu") is False and (cfg.get("flash_attention") or attn.startswith("flash_attention")):
        key = "flash_attention" if cfg.get("flash_attention") else "attn_implementation"
        yield Problem(key, "flash-attn needs a CUDA GPU", "use attn_implementation: sdpa on the cpu profile")


@rule
def plugin_keys_need_their_plugin(cfg: dict, ctx: dict) -> Iterator[Problem]:
    owners = schema().get("x-plugin-keys", {})
    plugins = [str(p) for p in cfg.get("plugins") or []] if isinstance(cfg.get("plugins"), list) else []
    for key in cfg:
        owner = owners.get(key)
        if owner and not any(p.startswith(owner + ".") for p in plugins):
            yield Problem(key, f"{key} belongs to the plugin {owner}, which is not listed in plugins: Axolotl ignores it",
                          f"add {owner}.<Plugin> to plugins, or remove {key}", WARNING)


@rule
def optimizer_is_known(cfg: dict, ctx: dict) -> Iterator[Problem]:
    known = schema().get("x-optimizers") or []
    opt = cfg.get("optimizer")
    if known and isinstance(opt, str) and opt not in known:
        near = difflib.get_close_matches(opt, known, n=1, cutoff=0.6)
        yield Problem("optimizer", f"{opt!r} is not an optimizer Axolotl 0.19.0 knows",
                      f"did you mean {near[0]}?" if near else "see transformers' OptimizerNames")


@rule
def batch_is_sane(cfg: dict, ctx: dict) -> Iterator[Problem]:
    mbs, ga = cfg.get("micro_batch_size"), cfg.get("gradient_accumulation_steps", 1)
    if not isinstance(mbs, int) or not isinstance(ga, int):
        return
    if mbs < 1 or ga < 1:
        yield Problem("micro_batch_size", f"micro_batch_size {mbs} × gradient_accumulation_steps {ga} must both be ≥ 1", "")
    elif mbs * ga > 1024:
        yield Problem("gradient_accumulation_steps", f"a global batch of {mbs * ga} sequences per GPU is implausible",
                      "aim for 16-128 sequences per optimizer step")


@rule
def lora_settings_with_adapter(cfg: dict, ctx: dict) -> Iterator[Problem]:
    targets = ("lora_target_linear", "lora_target_modules", "lora_target_parameters")
    if cfg.get("adapter") in ("lora", "qlora") and not any(cfg.get(k) for k in targets):
        yield Problem("lora_target_modules", "a LoRA adapter with no target modules trains nothing",
                      "set lora_target_linear: true or list lora_target_modules")
    if not cfg.get("adapter") and any(k in cfg for k in ("lora_r", "lora_alpha")):
        yield Problem("adapter", "lora_* keys are set but no adapter is", "set adapter: lora, or remove the lora_* keys",
                      WARNING)


@rule
def dataset_files_exist(cfg: dict, ctx: dict) -> Iterator[Problem]:
    base = ctx.get("base_dir") or Path.cwd()
    datasets = cfg.get("datasets")
    for i, ds in enumerate(datasets if isinstance(datasets, list) else []):
        if not isinstance(ds, dict) or not isinstance(ds.get("path"), str) or "\0" in ds["path"]:
            continue
        path = ds["path"]
        local = ds.get("ds_type") in ("json", "csv", "parquet", "text") or path.startswith(("/", "./", "../")) \
            or path.endswith((".json", ".jsonl", ".parquet", ".csv"))
        if not local or (base / path).exists() or Path(path).exists():
            continue
        if path.startswith("data/prepared/"):
            exp = path.split("/")[2] if path.count("/") >= 3 else "EXP"
            yield Problem(f"datasets[{i}].path", f"{path} is not prepared yet",
                          f"run `ftstudy prepare {exp}` (ftstudy train does it for you)", NOTE)
        else:
            yield Problem(f"datasets[{i}].path", f"dataset file {path} does not exist", "check the path, or pass --data")


@rule
def sequence_len_positive(cfg: dict, ctx: dict) -> Iterator[Problem]:
    seq = cfg.get("sequence_len")
    if isinstance(seq, int) and seq < 16:
        yield Problem("sequence_len", f"sequence_len {seq} drops nearly every row (Axolotl drops longer rows silently)",
                      "use at least a few hundred tokens")
