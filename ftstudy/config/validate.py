"""Validate Axolotl YAML: Axolotl's own verdict wherever the train environment exists (axolotl_verdict.py:
prepare_plugins then validate_config, with the hardware profile's capabilities), and ftstudy's layer on top,
which adds only what Axolotl cannot: near-miss typo hints, ftstudy's own rules (validate_rules.py,
validate_ranges.py; labelled as ftstudy's), and, with no train environment, a check against Axolotl's JSON
Schema labelled "schema only". Every problem is reported at once, each with its key path and a suggestion;
Axolotl's message comes first, ftstudy's hint after it. Levels: error (Axolotl refuses it, or the config
cannot train) and warning (e.g. a key Axolotl ignores).

Example:
    >>> from ftstudy.config.validate import validate_text
    >>> print(validate_text("base_model: x\\nadapterr: lora\\n", axolotl=False)[0].render())
    adapterr: unknown key — did you mean adapter? Axolotl drops its value [ftstudy's rule]
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from ftstudy.config import axolotl_rules as ax
from ftstudy.config.validate_ranges import range_problems
from ftstudy.config.validate_rules import RULES
from ftstudy.config.validate_schema import ERROR, NOTE, WARNING, Problem, schema, schema_problems


# ---------------------------------------------------------------- loading

def load_yaml(text: str, name: str | None = None) -> tuple[Any, list[Problem]]:
    """Parse YAML; a syntax error becomes one Problem naming the line and column, a refused text (too deep, an
    alias bomb) one naming `name` (the file)."""
    from ftstudy.core import untrusted_yaml as safeload

    try:
        return safeload.load(text, name=name), []
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


def rule_problems(cfg: dict, ctx: dict) -> list[Problem]:
    # A rule that crashes is a bug in the rule: it is raised (and a test fails), never turned into a warning.
    return [p for fn in RULES for p in fn(cfg, ctx)]


def normalise(cfg: dict) -> tuple[dict, list[Problem], dict[str, str]]:
    """The "before" migrations the schema check needs, on a copy: the config it validates, a warning per
    migration, and {new path: path as written} so that problems name the key the user wrote."""
    cfg = copy.copy(cfg)
    ax.migrate_mora_type(cfg)  # Axolotl reads 1 and 6 as sharing and rope, silently
    moved = ax.migrate_fsdp_prefix(cfg)
    known = schema()["$defs"].get("FSDPConfig", {}).get("properties", {})  # an unknown one gets its own warning
    notes = [Problem(f"fsdp_config.{old}", f"the fsdp_ prefix is deprecated in Axolotl 0.19.0, which reads it as {new}",
                     f"write {new}", WARNING, "schema") for old, new in moved if new in known]
    return cfg, notes, {f"fsdp_config.{new}": f"fsdp_config.{old}" for old, new in moved}


# ---------------------------------------------------------------- entry points

SCHEMA_ONLY = Problem("", "schema only: Axolotl's cross-field rules not checked",
                      "install Axolotl's train environment with `ftstudy setup train`", NOTE, "schema")


def own_problems(text: str, hardware: str | None = None, base_dir: Path | None = None,
                 name: str | None = None) -> tuple[list[Problem], bool]:
    """ftstudy's layer on one YAML text: the schema check and ftstudy's own rules; and whether the text is a
    mapping Axolotl can be asked about."""
    cfg, problems = load_yaml(text, name)
    if problems:
        return [Problem(p.path, p.message, p.suggestion, p.severity, "input") for p in problems], False
    if not isinstance(cfg, dict):
        return [Problem("", f"the config must be a mapping of Axolotl keys, got {type(cfg).__name__}", "",
                        origin="input")], False
    from ftstudy.config.profiles import base_name

    ctx = {"gpu": None if hardware is None else base_name(hardware) != "cpu", "base_dir": base_dir}
    cfg, notes, written = normalise(cfg)
    found = schema_problems(cfg) + rule_problems(cfg, ctx)
    refused = {p.path for p in found if p.severity == ERROR}  # a key already refused (a type, a rule) is not repeated
    found += [p for p in range_problems(cfg) if p.path not in refused]
    return notes + [Problem(written.get(p.path, p.path), p.message, p.suggestion, p.severity, p.origin)
                    for p in found], True


def with_axolotl(own: list[Problem], verdict: dict) -> list[Problem]:
    """Axolotl's errors first (a local finding at the same key becomes its hint), then ftstudy's layer. The
    schema check's errors give way to Axolotl's verdict, which is the same schema and every rule besides."""
    if verdict["ok"] is None:  # Axolotl could not be asked: the schema check stands, labelled
        return own + [Problem("", verdict["errors"][0]["msg"], "see `ftstudy doctor`", WARNING, "input"), SCHEMA_ONLY]
    by_path: dict[str, list[Problem]] = {}
    for p in own:
        by_path.setdefault(p.path, []).append(p)
    out, used = [], set()
    for err in verdict["errors"]:
        local = [p for p in by_path.get(err["loc"], []) if p.severity == ERROR] if err["loc"] else []
        hint = "; ".join(dict.fromkeys(p.suggestion or p.message for p in local)) or hint_for(err["msg"])
        used.update(id(p) for p in local)
        out.append(Problem(err["loc"], f"Axolotl: {err['msg']}", hint, ERROR, "axolotl"))
    return out + [p for p in own if id(p) not in used and not (p.origin == "schema" and p.severity == ERROR)]


# ftstudy's hints for Axolotl messages that name no key (a model validator's ValueError).
HINTS = {
    "Require cfg.load_in_4bit to be True for qlora": "set load_in_4bit: true",
    "does not work with RLHF training": "set sample_packing: false",
    "either datasets or pretraining_dataset is required": "add a datasets: entry (path and type)",
    "requires PyTorch >= 2.11.0": "the profile's torch is older: use attn_implementation: flash_attention_2",
}


def hint_for(message: str) -> str:
    return next((hint for needle, hint in HINTS.items() if needle in message), "")


def validate_texts(items: list[tuple[str, str | None, str | None]], base_dir: Path | None = None,
                   axolotl: bool | None = None) -> list[list[Problem]]:
    """Every problem of each (YAML text, hardware, file name); a text's own header names its hardware when
    none is given. `axolotl`: ask Axolotl (None: when the train environment exists; all texts in one warm
    process, verdicts cached); False: the schema-only check."""
    from ftstudy.config import axolotl_verdict

    from ftstudy.config.profiles import profile
    from ftstudy.config.registry import UnknownName

    hws = [hw or header_meta(text).get("hardware") for text, hw, _ in items]
    own = [own_problems(text, hw, base_dir, name) for (text, _, name), hw in zip(items, hws)]
    for i, hw in enumerate(hws):
        try:
            hw is None or profile(hw)
        except UnknownName as exc:  # a header edited by hand: checked as for this machine, and said so
            own[i][0].append(Problem("", f"the header's {exc}", "checked as for this machine", WARNING, "input"))
            hws[i] = None
    ask = axolotl_verdict.available() if axolotl is None else axolotl
    if not ask:
        return [found + [SCHEMA_ONLY] if parsed else found for found, parsed in own]
    asked = [i for i, (_, parsed) in enumerate(own) if parsed]
    answers = axolotl_verdict.verdicts([(items[i][0], axolotl_verdict.capabilities(hws[i])) for i in asked])
    out = [found for found, _ in own]
    for i, verdict in zip(asked, answers):
        out[i] = with_axolotl(out[i], verdict)
    return out


def validate_text(text: str, hardware: str | None = None, base_dir: Path | None = None,
                  name: str | None = None, axolotl: bool | None = None) -> list[Problem]:
    """Every problem in one Axolotl YAML text (no error: valid); `name` is the file it came from."""
    return validate_texts([(text, hardware, name)], base_dir, axolotl)[0]


def read_config(path: str | Path) -> str:
    """The text of one config file ('-': stdin). The one place validate reads a file: through the safe reader,
    which refuses (safeload.Refused, one line) a file too big, binary or not UTF-8 (ftstudy/core/untrusted_yaml.py)."""
    from ftstudy.core import untrusted_yaml as safeload

    return safeload.read_text(path)


def validate_files(paths: list[str | Path], hardware: str | None = None,
                   axolotl: bool | None = None) -> list[list[Problem]]:
    """Every problem of each config file (all asked of one warm Axolotl); a missing or refused file is its one
    problem, so others still run."""
    from ftstudy.core import untrusted_yaml as safeload

    texts: dict[int, str] = {}
    out: list[list[Problem]] = []
    for i, path in enumerate(paths):
        out.append([])
        if str(path) != "-" and not Path(path).is_file():
            out[i] = [Problem("", f"{path}: no such file", "check the path", origin="input")]
            continue
        try:
            texts[i] = read_config(path)
        except safeload.Refused as exc:
            out[i] = [Problem("", str(exc), "", origin="input")]
    found = validate_texts([(texts[i], hardware, str(paths[i])) for i in texts], axolotl=axolotl)
    for i, problems in zip(texts, found):
        out[i] = problems
    return out


def validate_file(path: str | Path, hardware: str | None = None, axolotl: bool | None = None) -> list[Problem]:
    return validate_files([path], hardware, axolotl)[0]


def errors(problems: list[Problem], strict: bool = False) -> list[Problem]:
    """The problems that make a config invalid; with strict, warnings too (never notes)."""
    return [p for p in problems if p.severity == ERROR or (strict and p.severity == WARNING)]
