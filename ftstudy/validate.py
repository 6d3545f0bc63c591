"""Validate Axolotl YAML: the pinned version's JSON Schema (unknown keys rejected at every level) plus
ftstudy's cross-field rules. Every problem is reported at once, each with its key path and a suggestion.

Example:
    >>> from ftstudy.validate import validate_text
    >>> [p.render() for p in validate_text("base_model: x\\nadapterr: lora\\n")][:1]  # doctest: +ELLIPSIS
    ['adapterr: unknown key — did you mean adapter?...']
"""
from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from ftstudy.resources import schema_path
from ftstudy.shapes import PREFERENCE_TYPES

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    suggestion: str = ""
    severity: str = ERROR

    def render(self) -> str:
        tail = f" ({self.suggestion})" if self.suggestion else ""
        lead = "" if self.severity == ERROR else "warning: "
        return f"{lead}{self.path or '<root>'}: {self.message}{tail}"


# ---------------------------------------------------------------- loading

def load_yaml(text: str) -> tuple[Any, list[Problem]]:
    """Parse YAML; a syntax error becomes one Problem naming the line and column."""
    try:
        return yaml.safe_load(text), []
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        msg = f"YAML syntax error at {where}: {exc.problem or exc.context}"
        return None, [Problem("", msg, "check indentation and quoting around that position")]


def header_meta(text: str) -> dict[str, str]:
    """experiment / method / hardware from the header `ftstudy gen` writes."""
    m = re.search(r"^# experiment: (\S+)\s+method: (\S+)\s+hardware: (\S+)", text, re.M)
    return dict(zip(("experiment", "method", "hardware"), m.groups())) if m else {}


# ---------------------------------------------------------------- JSON Schema

@functools.cache
def schema() -> dict:
    return json.loads(schema_path().read_text())


def _fmt(path: Iterator[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _resolve(sch: dict) -> dict:
    while "$ref" in sch:
        sch = schema()["$defs"][sch["$ref"].rsplit("/", 1)[-1]]
    return sch


def _branch_distance(branch: dict, instance: Any, errs: list[Any]) -> tuple:
    """How far a value is from one anyOf branch: for mappings, keys the branch does not know come first."""
    branch = _resolve(branch)
    wrong_type = any(e.validator == "type" and not e.relative_path for e in errs)
    if isinstance(instance, dict) and "properties" in branch:
        unknown = sum(k not in branch["properties"] for k in instance)
        return (wrong_type, unknown, len(errs))
    return (wrong_type, 0, len(errs))


def _schema_errors(error: Any) -> list[Problem]:
    """Turn one jsonschema error into Problems; for anyOf/oneOf pick the branch that fits the value best."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        by_branch: dict[int, list[Any]] = {}
        for sub in error.context:
            by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
        branch = min(by_branch, key=lambda i: _branch_distance(error.validator_value[i], error.instance, by_branch[i]))
        best = by_branch[branch]
        if all(e.validator in ("type", "const", "pattern", "enum") and not e.relative_path for e in best):
            kinds = sorted({str(_resolve(b).get("type", _resolve(b).get("title", "?"))) for b in error.validator_value})
            return [Problem(_fmt(error.absolute_path), f"{error.instance!r} is not valid here",
                            f"expected one of: {', '.join(kinds)}")]
        return [p for sub in best for p in _schema_errors(sub)]
    path = _fmt(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = list(_resolve(error.schema).get("properties", {}))
        extras = [k for k in error.instance if k not in allowed]
        out = []
        for key in extras:
            near = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"did you mean {near[0]}?" if near else "not an Axolotl 0.19.0 key; remove it"
            full = f"{path}.{key}" if path else str(key)
            out.append(Problem(full, "unknown key —", hint))
        return out
    if error.validator == "enum":
        near = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=1, cutoff=0.5)
        hint = f"did you mean {near[0]}?" if near else "allowed: " + ", ".join(map(str, error.validator_value))
        return [Problem(path, f"{error.instance!r} is not an allowed value", hint)]
    if error.validator == "type":
        return [Problem(path, f"{error.instance!r} has the wrong type", f"expected {error.validator_value}")]
    return [Problem(path, error.message, "")]


def schema_problems(cfg: Any) -> list[Problem]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    out: list[Problem] = []
    for err in sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path))):
        out.extend(_schema_errors(err))
    # "unknown key —" reads better joined to its suggestion
    return [Problem(p.path, "unknown key — " + p.suggestion, "", p.severity) if p.message == "unknown key —" else p for p in out]


# ---------------------------------------------------------------- cross-field rules

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
    if cfg.get("rl") not in ("dpo", "ipo", "orpo", "simpo"):
        return
    for i, ds in enumerate(cfg.get("datasets") or []):
        if isinstance(ds, dict) and ds.get("type") not in PREFERENCE_TYPES:
            yield Problem(f"datasets[{i}].type", f"rl: {cfg['rl']} needs a preference dataset type, got {ds.get('type')!r}",
                          "use chatml.ultra or chat_template.default with chosen/rejected fields")


@rule
def rl_does_not_pack(cfg: dict, ctx: dict) -> Iterator[Problem]:
    if cfg.get("rl") and cfg.get("sample_packing"):
        yield Problem("sample_packing", f"Axolotl does not pack samples for rl: {cfg['rl']}", "set sample_packing: false")


@rule
def packing_needs_varlen_attention(cfg: dict, ctx: dict) -> Iterator[Problem]:
    attn = str(cfg.get("attn_implementation") or "")
    varlen = attn.startswith(("flash_attention", "flex_attention")) or "flash-attn" in attn \
        or cfg.get("flash_attention") or cfg.get("flex_attention")
    if ctx.get("gpu") and cfg.get("sample_packing") and not varlen:
        yield Problem("sample_packing", "sample packing on GPU without a varlen attention lets packed samples attend "
                      "to each other", "set attn_implementation: flash_attention_2, or sample_packing: false")


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
    plugins = [str(p) for p in cfg.get("plugins") or []]
    for key in cfg:
        owner = owners.get(key)
        if owner and not any(p.startswith(owner) for p in plugins):
            yield Problem(key, f"{key} belongs to the plugin {owner}, which is not listed in plugins:",
                          f"add it to plugins, or remove {key}")


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
    if cfg.get("adapter") in ("lora", "qlora") and not (cfg.get("lora_target_linear") or cfg.get("lora_target_modules")):
        yield Problem("lora_target_modules", "a LoRA adapter with no target modules trains nothing",
                      "set lora_target_linear: true or list lora_target_modules")
    if not cfg.get("adapter") and any(k in cfg for k in ("lora_r", "lora_alpha")):
        yield Problem("adapter", "lora_* keys are set but no adapter is", "set adapter: lora, or remove the lora_* keys",
                      WARNING)


@rule
def dataset_files_exist(cfg: dict, ctx: dict) -> Iterator[Problem]:
    base = ctx.get("base_dir") or Path.cwd()
    for i, ds in enumerate(cfg.get("datasets") or []):
        if not isinstance(ds, dict) or not isinstance(ds.get("path"), str):
            continue
        path = ds["path"]
        local = ds.get("ds_type") in ("json", "csv", "parquet", "text") or path.startswith(("/", "./", "../")) \
            or path.endswith((".json", ".jsonl", ".parquet", ".csv"))
        if not local or (base / path).exists() or Path(path).exists():
            continue
        if path.startswith("data/prepared/"):
            exp = path.split("/")[2] if path.count("/") >= 3 else "EXP"
            yield Problem(f"datasets[{i}].path", f"{path} is not prepared yet",
                          f"run `ftstudy prepare {exp}` (ftstudy train does it for you)", WARNING)
        else:
            yield Problem(f"datasets[{i}].path", f"dataset file {path} does not exist", "check the path, or pass --data")


@rule
def sequence_len_positive(cfg: dict, ctx: dict) -> Iterator[Problem]:
    seq = cfg.get("sequence_len")
    if isinstance(seq, int) and seq < 16:
        yield Problem("sequence_len", f"sequence_len {seq} drops nearly every row (Axolotl drops longer rows silently)",
                      "use at least a few hundred tokens")


def rule_problems(cfg: dict, ctx: dict) -> list[Problem]:
    out = []
    for fn in RULES:
        try:
            out.extend(fn(cfg, ctx))
        except Exception as exc:  # a rule must never hide the others; report it instead of crashing
            out.append(Problem("", f"rule {fn.__name__} could not check this config: {exc}", "", WARNING))
    return out


# ---------------------------------------------------------------- entry points

def profiles_base(hardware: str) -> str:
    from ftstudy.profiles import base_name

    return base_name(hardware)


def validate_text(text: str, hardware: str | None = None, base_dir: Path | None = None) -> list[Problem]:
    """Every problem in one Axolotl YAML text (empty list: valid)."""
    cfg, problems = load_yaml(text)
    if problems:
        return problems
    if not isinstance(cfg, dict):
        return [Problem("", f"the config must be a mapping of Axolotl keys, got {type(cfg).__name__}", "")]
    hardware = hardware or header_meta(text).get("hardware")
    ctx = {"gpu": None if hardware is None else profiles_base(hardware) != "cpu", "base_dir": base_dir}
    return schema_problems(cfg) + rule_problems(cfg, ctx)


def validate_file(path: str | Path, hardware: str | None = None) -> list[Problem]:
    if str(path) == "-":
        import sys

        return validate_text(sys.stdin.read(), hardware)
    path = Path(path)
    if not path.is_file():
        return [Problem("", f"{path}: no such file", "check the path")]
    return validate_text(path.read_text(), hardware)


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == ERROR]
