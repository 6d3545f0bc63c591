"""ftstudy's own rules for Axolotl configs: only what Axolotl's validation cannot see (Axolotl's own
validators run in Axolotl itself, ftstudy/config/axolotl_verdict.py, never mirrored here). An error is a config
that cannot train (a dataset file that is missing, CUDA-only kernels on the cpu profile, a LoRA adapter with no
targets, which PEFT refuses when the model loads); anything else is a warning. Every Problem here is labelled
as ftstudy's rule when rendered. Each rule is `fn(cfg, ctx) -> Iterator[Problem]`, registered in RULES by
`@rule`; ctx holds `gpu` (None when the hardware is unknown) and `base_dir` (where relative dataset paths start).

Example:
    >>> print(next(lora_settings_with_adapter({"adapter": "lora"}, {})).render())  # doctest: +ELLIPSIS
    lora_target_modules: a LoRA adapter with no target modules trains nothing ... [ftstudy's rule]
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
def dpo_needs_preference_data(cfg: dict, ctx: dict) -> Iterator[Problem]:
    """Axolotl's RL data loader resolves `type` in axolotl.prompt_strategies.{dpo,orpo,kto} when training
    starts and fails there; its validate_config accepts any type."""
    datasets = cfg.get("datasets")
    for i, ds in enumerate(datasets if isinstance(datasets, list) else []):
        found = ax.rl_type_problem(str(cfg.get("rl")), ds.get("type"), schema()) if isinstance(ds, dict) else None
        if found:
            msg, near = found
            yield Problem(f"datasets[{i}].type", msg + " (Axolotl's data loader fails on it when training starts)",
                          f"did you mean {near}?" if near else
                          "use chatml.ultra or chat_template.default with chosen/rejected fields")


# What Axolotl 0.19 turns a legacy attention flag into (its LEGACY_ATTN_FLAG_TO_IMPL, in its priority order);
# with none set, transformers picks sdpa.
LEGACY_ATTENTION = {"xformers_attention": "xformers", "sage_attention": "sage", "flex_attention": "flex_attention",
                    "flash_attention": "flash_attention_2", "sdp_attention": "sdpa", "eager_attention": "eager"}


def attention(cfg: dict) -> str:
    """The attention Axolotl trains with: attn_implementation, else the first legacy flag set, else sdpa."""
    if cfg.get("attn_implementation"):
        return str(cfg["attn_implementation"])
    return next((impl for flag, impl in LEGACY_ATTENTION.items() if cfg.get(flag)), "sdpa")


@rule
def packing_pays_a_full_mask(cfg: dict, ctx: dict) -> Iterator[Problem]:
    """Axolotl 0.19 keeps packed samples apart with every attention (varlen kernels, or a block-diagonal mask
    for sdpa/eager); sdpa_varlen (torch >= 2.10, on unless set false) lets sdpa skip the masked blocks. What is
    left is speed: eager, or sdpa without varlen, computes the full T×T mask. A warning, never an error."""
    if not ctx.get("gpu") or not cfg.get("sample_packing"):
        return
    attn = attention(cfg)
    if attn == "eager" or (attn == "sdpa" and cfg.get("sdpa_varlen") is False):
        yield Problem("sample_packing", f"packed rows with {attn} attention pay a full T×T block-diagonal mask",
                      "use attn_implementation: sdpa with sdpa_varlen, or flash_attention_2", WARNING)


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
    """Axolotl's schema takes any string; transformers' TrainingArguments refuses an unknown one at launch."""
    known = schema().get("x-optimizers") or []
    opt = cfg.get("optimizer")
    if known and isinstance(opt, str) and opt not in known:
        near = difflib.get_close_matches(opt, known, n=1, cutoff=0.6)
        yield Problem("optimizer", f"{opt!r} is not an optimizer Axolotl 0.19.0 knows (transformers refuses it "
                      "when training starts)", f"did you mean {near[0]}?" if near else "see transformers' OptimizerNames")


@rule
def batch_is_plausible(cfg: dict, ctx: dict) -> Iterator[Problem]:
    mbs, ga = cfg.get("micro_batch_size"), cfg.get("gradient_accumulation_steps", 1)
    if isinstance(mbs, int) and isinstance(ga, int) and mbs >= 1 and ga >= 1 and mbs * ga > 1024:
        yield Problem("gradient_accumulation_steps", f"a global batch of {mbs * ga} sequences per GPU is implausible",
                      "aim for 16-128 sequences per optimizer step", WARNING)


@rule
def lora_settings_with_adapter(cfg: dict, ctx: dict) -> Iterator[Problem]:
    targets = ("lora_target_linear", "lora_target_modules", "lora_target_parameters")
    if cfg.get("adapter") in ("lora", "qlora") and not any(cfg.get(k) for k in targets):
        yield Problem("lora_target_modules", "a LoRA adapter with no target modules trains nothing (Axolotl's "
                      "validation accepts it; PEFT refuses it when the model loads)",
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
    if isinstance(seq, int) and 1 <= seq < 16:
        yield Problem("sequence_len", f"sequence_len {seq} drops nearly every row (Axolotl drops longer rows silently)",
                      "use at least a few hundred tokens", WARNING)
