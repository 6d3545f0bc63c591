"""What Axolotl 0.19.0 does to a config before and around its schema, mirrored for `ftstudy validate`.

- "before" normalisations: `fsdp_`-prefixed keys in `fsdp_config` are migrated (a warning), dataset entries are
  validated as the model Axolotl converts them to (DPODataset for rl: dpo/ipo/simpo, KTODataset for kto, ...);
- unknown keys: Axolotl drops them without a word. A near-miss of a known key (edit distance, or a known rename)
  is an error, since its value is lost; anything else is a warning that says it is ignored, with no hint;
- the model validators that matter for training: removed options, FSDP2 with 8-bit bitsandbytes optimizers,
  `learning_rate` strings that do not parse, RL dataset types the trainer cannot load.

The tables (removed/deprecated keys, plugin keys, RL dataset types) are read from the committed JSON Schema,
which axolotl_configs/schema/generate.py writes from the pinned Axolotl; tests/test_validate_corpus.py checks
the hand-written parts (dataset models, renames) against Axolotl itself.

Example:
    >>> near_miss("lora_droput", ["lora_dropout", "lora_r"])
    'lora_dropout'
    >>> near_miss("eta_min", ["streaming", "eval_steps"]) is None
    True
"""
from __future__ import annotations

import copy
import functools
import re
from typing import Any, Callable, Iterator

# Keys Axolotl users write for a key of another name (not close by edit distance). Each target is checked to
# be an Axolotl 0.19.0 key by tests/test_validate_corpus.py.
KNOWN_RENAMES = {
    "adam_eps": "adam_epsilon",
    "lr": "learning_rate",
    "epochs": "num_epochs",
    "grad_accum": "gradient_accumulation_steps",
    "max_seq_len": "sequence_len",
    "max_seq_length": "sequence_len",
    "model_name_or_path": "base_model",
    "lora_rank": "lora_r",
}

# Which $defs model Axolotl's validate_config turns each `datasets:` entry into (utils/config/__init__.py).
DATASET_MODEL_BY_RL = {"dpo": "DPODataset", "ipo": "DPODataset", "simpo": "DPODataset", "kto": "KTODataset"}


def dataset_model(cfg: dict) -> str:
    return DATASET_MODEL_BY_RL.get(str(cfg.get("rl")), "SFTDataset")


_SCHEMAS: dict[str, dict] = {}


def schema_for(sch: dict, model: str) -> dict:
    """The schema with `datasets:` entries checked as the model Axolotl converts them to (not any model)."""
    if model not in _SCHEMAS:
        out = copy.deepcopy(sch)
        item: dict = {"$ref": f"#/$defs/{model}"}
        if model == "SFTDataset":
            item = {"if": {"type": "object", "properties": {"type": {"const": "_synthetic"}}, "required": ["type"]},
                    "then": {"$ref": "#/$defs/SyntheticDataset"}, "else": item}
        out["properties"]["datasets"]["anyOf"][0]["items"] = item
        _SCHEMAS[model] = out
    return _SCHEMAS[model]


def distance(a: str, b: str) -> int:
    """Optimal-string-alignment edit distance (a swap of two neighbours counts as one edit)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def near_miss(key: str, known: list[str]) -> str | None:
    """The known key `key` was most likely meant to be, or None when no key is likely (then no hint is given).

    Likely: a known rename, or at most one edit for keys up to 8 characters, two beyond."""
    if key in KNOWN_RENAMES and KNOWN_RENAMES[key] in known:
        return KNOWN_RENAMES[key]
    limit = 1 if len(key) <= 8 else 2
    best = min(known, key=lambda k: (distance(key, k), k), default=None)
    if best is None or abs(len(best) - len(key)) > limit:
        return None
    return best if distance(key, best) <= limit else None


def migrate_fsdp_prefix(cfg: dict) -> list[tuple[str, str]]:
    """Axolotl's check_fsdp_config_kwargs_prefix: `fsdp_config.fsdp_X` becomes `fsdp_config.X` (fsdp_version
    stays). Done in place; returns (old, new) for each key moved."""
    fsdp = cfg.get("fsdp_config")
    if not isinstance(fsdp, dict) or not any(isinstance(k, str) and k.startswith("fsdp_") and k != "fsdp_version"
                                             for k in fsdp):
        return []
    moved, out = [], {}
    for key, value in fsdp.items():
        if isinstance(key, str) and key.startswith("fsdp_") and key != "fsdp_version":
            new = key.replace("fsdp_", "")
            moved.append((key, new))
            out[new] = value
        else:
            out[key] = value
    cfg["fsdp_config"] = out
    return moved


def fsdp_version(cfg: dict) -> str:
    fsdp = cfg.get("fsdp_config") if isinstance(cfg.get("fsdp_config"), dict) else {}
    return str(cfg.get("fsdp_version") or fsdp.get("fsdp_version") or fsdp.get("version") or "")


def removed_keys(cfg: dict, sch: dict) -> Iterator[tuple[str, str]]:
    """(key, Axolotl's message) for each removed option that is set (Axolotl raises only on a set value)."""
    for key, msg in sch.get("x-removed-keys", {}).items():
        value = cfg.get(key)
        if value or (key.startswith(("dpo_", "rpo_")) and value is not None):
            yield key, msg


def unparsable_learning_rate(cfg: dict) -> Any:
    """Axolotl's learning_rate is `str | float` and a string is passed to float(): 'fast' fails there."""
    lr = cfg.get("learning_rate")
    if isinstance(lr, str) and lr:
        try:
            float(lr)
        except ValueError:
            return lr
    return None


def rl_type_problem(rl: str, ds_type: Any, sch: dict) -> tuple[str, str | None] | None:
    """Why Axolotl's RL data loader cannot resolve `type` for this rl (message, hint), or None when it can or
    when ftstudy cannot tell (a dict type is user-defined; a dotted path of 3+ parts is the user's own module)."""
    known = sch.get("x-rl-dataset-types", {}).get(rl)
    if not known or not isinstance(ds_type, str):
        return None
    parts = ds_type.split(".")
    if len(parts) > 2:
        return None
    name = ds_type if len(parts) == 2 else f"{ds_type}.default"
    if name in known:
        return None
    hint = near_miss(name, known)
    return f"rl: {rl} needs a preference dataset type, got {ds_type!r}", hint


# ---------------------------------------------------------------- pydantic's lax types, for jsonschema

def _number(value: Any) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


@functools.cache
def lax_validator() -> Any:
    """Draft 2020-12 with pydantic's lax coercions: a bool or a numeric string is a number, and so is an int
    when it has no fraction ('5e-4' and `False` are what Axolotl's pydantic model accepts for a float/int)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine_many({
        "number": lambda c, v: base.TYPE_CHECKER.is_type(v, "number") or isinstance(v, bool)
        or (isinstance(v, str) and _number(v)),
        "integer": lambda c, v: base.TYPE_CHECKER.is_type(v, "integer") or isinstance(v, bool)
        or (isinstance(v, float) and v.is_integer()) or (isinstance(v, str) and re.fullmatch(r"\s*[-+]?\d+\s*", v) is not None),
    })

    def coerced(name: str) -> Callable:
        orig = base.VALIDATORS[name]

        def check(validator, value, instance, sch):
            if isinstance(instance, (str, bool)):
                if not _number(instance):
                    return
                instance = float(instance)
            yield from orig(validator, value, instance, sch)
        return check

    bounds = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
    return jsonschema.validators.extend(base, {n: coerced(n) for n in bounds}, type_checker=checker)



# ---------------------------------------------------------------- Axolotl's model validators
# Each yields (path, message, hint, level) and is a copy of the condition of one Axolotl validator (named).

ERROR, WARNING = "error", "warning"
Found = Iterator[tuple[str, str, str, str]]


def removed_options(cfg: dict, sch: dict) -> Found:  # DeprecatedParameters' field validators
    for key, msg in removed_keys(cfg, sch):
        yield key, f"Axolotl 0.19.0 refuses it: {msg}", f"remove {key}", ERROR
    for key, msg in sch.get("x-deprecated-keys", {}).items():
        if cfg.get(key) is not None:
            yield key, f"deprecated in Axolotl 0.19.0: {msg}", "", WARNING


def fsdp2_with_bnb_8bit_optimizer(cfg: dict, sch: dict) -> Found:  # check_fsdp2_w_8bit_optimizer
    opt = cfg.get("optimizer")
    if cfg.get("fsdp_config") and fsdp_version(cfg) == "2" and opt in ("adamw_8bit", "adamw_bnb_8bit"):
        yield "optimizer", f"FSDP2 is not compatible with {opt} (Axolotl refuses it)", "use adamw_torch_8bit", ERROR


def fsdp2_cpu_ram_efficient_loading_with_4bit(cfg: dict, sch: dict) -> Found:  # check_fsdp2_cpu_ram_..._w_4bit
    fsdp = cfg.get("fsdp_config")
    if isinstance(fsdp, dict) and fsdp_version(cfg) == "2" and fsdp.get("cpu_ram_efficient_loading") \
            and cfg.get("load_in_4bit"):
        yield ("fsdp_config.cpu_ram_efficient_loading", "FSDP2 does not support cpu_ram_efficient_loading with "
               "load_in_4bit (Axolotl refuses it: the rank-0 quantization deadlocks)", "set it to false", ERROR)


def learning_rate_is_a_number(cfg: dict, sch: dict) -> Found:  # convert_learning_rate
    bad = unparsable_learning_rate(cfg)
    if bad is not None:
        yield "learning_rate", f"{bad!r} is not a number (Axolotl parses it with float())", "e.g. 2e-4", ERROR


def early_stopping_needs_steps(cfg: dict, sch: dict) -> Found:  # check_early_stopping
    if not cfg.get("early_stopping_patience"):
        return
    save, ev = cfg.get("save_steps"), cfg.get("eval_steps")
    if not save or not ev:
        yield ("early_stopping_patience", "early_stopping_patience needs save_steps and eval_steps (Axolotl refuses "
               "it without them)", "set both, with eval_steps dividing save_steps", ERROR)
    elif isinstance(save, (int, float)) and isinstance(ev, (int, float)) and save % ev != 0:
        yield "eval_steps", "early_stopping_patience needs eval_steps to divide save_steps", "", ERROR


def ebft_needs_its_section(cfg: dict, sch: dict) -> Found:  # check_ebft_config_required, check_ebft_torch_compile
    if cfg.get("rl") != "ebft":
        return
    ebft = cfg.get("ebft")
    if not ebft:
        yield "ebft", "rl: ebft needs an ebft: section", "add ebft: {mode: structured} or {mode: strided}", ERROR
    elif isinstance(ebft, dict) and ebft.get("mode") == "strided" and cfg.get("torch_compile") is True \
            and cfg.get("gradient_checkpointing"):
        yield ("torch_compile", "EBFT strided mode with torch_compile and gradient_checkpointing fails with a "
               "CheckpointError (Axolotl refuses it)", "remove torch_compile", ERROR)


def kto_settings(cfg: dict, sch: dict) -> Found:  # check_kto_config
    if cfg.get("rl") != "kto":
        return
    if cfg.get("remove_unused_columns") is not False:
        yield "remove_unused_columns", "rl: kto needs remove_unused_columns: false (Axolotl refuses it otherwise)", \
            "set remove_unused_columns: false", ERROR


def best_checkpoint_needs_a_metric(cfg: dict, sch: dict) -> Found:  # check_save_strategy_best_requires_metric
    if cfg.get("save_strategy") == "best" and not cfg.get("metric_for_best_model"):
        yield "save_strategy", "best needs metric_for_best_model (Axolotl refuses it otherwise)", \
            "e.g. metric_for_best_model: eval_loss", ERROR


MODEL_RULES: list[Callable[[dict, dict], Found]] = [
    removed_options, fsdp2_with_bnb_8bit_optimizer, fsdp2_cpu_ram_efficient_loading_with_4bit,
    learning_rate_is_a_number, early_stopping_needs_steps, ebft_needs_its_section, kto_settings,
    best_checkpoint_needs_a_metric]
