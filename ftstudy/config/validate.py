"""Validate Axolotl YAML: the pinned version's JSON Schema, Axolotl's own normalisations and model validators
that matter (ftstudy/config/axolotl_rules.py), plus ftstudy's cross-field rules. Every problem is reported at once,
each with its key path and a suggestion. Levels: error (Axolotl refuses it, or training would fail or silently
do something else: a near-miss of a known key loses its value) and warning (e.g. a key Axolotl ignores).

Example:
    >>> from ftstudy.config.validate import validate_text
    >>> [p.render() for p in validate_text("base_model: x\\nadapterr: lora\\n")][:1]  # doctest: +ELLIPSIS
    ['adapterr: unknown key — did you mean adapter?...']
"""
from __future__ import annotations

import copy
import difflib
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from ftstudy.config import axolotl_rules as ax
from ftstudy.core.bundled import schema_path

ERROR, WARNING = "error", "warning"
NOTE = "note"  # about this machine's state, not the config (data not prepared yet): never an error, even --strict


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    suggestion: str = ""
    severity: str = ERROR

    def render(self) -> str:
        tail = f" ({self.suggestion})" if self.suggestion else ""
        lead = "" if self.severity == ERROR else f"{self.severity}: "
        return f"{lead}{self.path or '<root>'}: {self.message}{tail}"


# ---------------------------------------------------------------- loading

def load_yaml(text: str) -> tuple[Any, list[Problem]]:
    """Parse YAML; a syntax error becomes one Problem naming the line and column."""
    from ftstudy.core import untrusted_yaml as safeload

    try:
        return safeload.load(text), []
    except safeload.Refused as exc:
        return None, [Problem("", str(exc), "")]
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
        closed = _resolve(error.schema).get("title") in schema().get("x-closed", [])  # Axolotl refuses extras there
        extras = [k for k in error.instance if k not in allowed]
        out = []
        for key in extras:
            near = ax.near_miss(str(key), allowed)
            full = f"{path}.{key}" if path else str(key)
            if near or closed:  # a typo (Axolotl would drop the value meant for `near`), or a key Axolotl refuses
                out.append(Problem(full, "unknown key —", f"did you mean {near}?" if near else "Axolotl refuses it here"))
            else:
                out.append(Problem(full, "not an Axolotl 0.19.0 key; Axolotl ignores it", "", WARNING))
        return out
    if error.validator == "enum":
        near = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=1, cutoff=0.5)
        hint = f"did you mean {near[0]}?" if near else "allowed: " + ", ".join(map(str, error.validator_value))
        return [Problem(path, f"{error.instance!r} is not an allowed value", hint)]
    if error.validator == "type":
        return [Problem(path, f"{error.instance!r} has the wrong type", f"expected {error.validator_value}")]
    return [Problem(path, error.message, "")]


def schema_problems(cfg: Any) -> list[Problem]:
    model = ax.dataset_model(cfg) if isinstance(cfg, dict) else "SFTDataset"
    validator = ax.lax_validator()(ax.schema_for(schema(), model))
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


def rule_problems(cfg: dict, ctx: dict) -> list[Problem]:
    # A rule that crashes is a bug in the rule: it is raised (and a test fails), never turned into a warning.
    return [p for fn in RULES for p in fn(cfg, ctx)]


def normalise(cfg: dict) -> tuple[dict, list[Problem], dict[str, str]]:
    """Axolotl's "before" migrations, on a copy: the config it validates, a warning per migration, and
    {new path: path as written} so that problems name the key the user wrote."""
    cfg = copy.copy(cfg)
    moved = ax.migrate_fsdp_prefix(cfg)
    known = schema()["$defs"].get("FSDPConfig", {}).get("properties", {})  # an unknown one gets its own warning
    notes = [Problem(f"fsdp_config.{old}", f"the fsdp_ prefix is deprecated in Axolotl 0.19.0, which reads it as {new}",
                     f"write {new}", WARNING) for old, new in moved if new in known]
    return cfg, notes, {f"fsdp_config.{new}": f"fsdp_config.{old}" for old, new in moved}


# ---------------------------------------------------------------- entry points

def profiles_base(hardware: str) -> str:
    from ftstudy.config.profiles import base_name

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
    cfg, notes, written = normalise(cfg)
    found = schema_problems(cfg) + rule_problems(cfg, ctx)
    return notes + [Problem(written.get(p.path, p.path), p.message, p.suggestion, p.severity) for p in found]


def read_config(path: str | Path) -> str:
    """The text of one config file ('-': stdin). The one place validate reads a file: through the safe reader,
    which refuses (safeload.Refused, one line) a file too big, binary or not UTF-8 (ftstudy/core/untrusted_yaml.py)."""
    from ftstudy.core import untrusted_yaml as safeload

    return safeload.read_text(path)


def validate_file(path: str | Path, hardware: str | None = None) -> list[Problem]:
    """Every problem of one config file; a missing or refused file is its one problem, so others still run."""
    from ftstudy.core import untrusted_yaml as safeload

    if str(path) != "-" and not Path(path).is_file():
        return [Problem("", f"{path}: no such file", "check the path")]
    try:
        text = read_config(path)
    except safeload.Refused as exc:
        return [Problem("", str(exc), "")]
    return validate_text(text, hardware)


def errors(problems: list[Problem], strict: bool = False) -> list[Problem]:
    """The problems that make a config invalid; with strict, warnings too (never notes)."""
    return [p for p in problems if p.severity == ERROR or (strict and p.severity == WARNING)]
