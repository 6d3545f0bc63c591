"""What the schema-only check of `ftstudy validate` needs to read a config as Axolotl 0.19.0 reads it, and
ftstudy's near-miss hints. No Axolotl validator is mirrored here: where the train environment exists, Axolotl
itself validates (axolotl_verdict.py); without it the check is labelled schema only.

- "before" normalisations the schema would otherwise refuse: `fsdp_`-prefixed keys in `fsdp_config` are
  migrated (a warning), `mora.mora_type: 1|6` is read as sharing|rope, dataset entries are validated as the
  model Axolotl converts them to (DPODataset for rl: dpo/ipo/simpo, KTODataset for kto, ...);
- unknown keys: Axolotl drops them without a word. A near-miss of a known key (edit distance, or a known rename)
  is an error (ftstudy's rule: its value is lost); anything else is a warning that says it is ignored;
- RL dataset types the trainer's data loader cannot resolve (read by ftstudy's rule in validate_rules.py).

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


def migrate_mora_type(cfg: dict) -> list[tuple[str, str]]:
    """MoraConfig's mora_type takes the numbers 1 and 6 for `sharing` and `rope` (Axolotl maps them before
    checking). Done in place on a copied `mora` mapping; returns (old, new) for the value mapped."""
    mora = cfg.get("mora")
    if not isinstance(mora, dict) or type(mora.get("mora_type")) is not int or mora["mora_type"] not in (1, 6):
        return []
    cfg["mora"] = {**mora, "mora_type": {1: "sharing", 6: "rope"}[mora["mora_type"]]}
    return [(str(mora["mora_type"]), cfg["mora"]["mora_type"])]


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
