"""Validate Axolotl YAML: the pinned version's JSON Schema, Axolotl's own normalisations and model validators
that matter (ftstudy/config/axolotl_rules.py), plus ftstudy's cross-field rules (validate_schema.py and
validate_rules.py hold the two checks). Every problem is reported at once,
each with its key path and a suggestion. Levels: error (Axolotl refuses it, or training would fail or silently
do something else: a near-miss of a known key loses its value) and warning (e.g. a key Axolotl ignores).

Example:
    >>> from ftstudy.config.validate import validate_text
    >>> [p.render() for p in validate_text("base_model: x\\nadapterr: lora\\n")][:1]  # doctest: +ELLIPSIS
    ['adapterr: unknown key — did you mean adapter?...']
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
from ftstudy.config.validate_schema import ERROR, WARNING, Problem, schema, schema_problems


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
    """Axolotl's "before" migrations, on a copy: the config it validates, a warning per migration, and
    {new path: path as written} so that problems name the key the user wrote."""
    cfg = copy.copy(cfg)
    moved = ax.migrate_fsdp_prefix(cfg)
    known = schema()["$defs"].get("FSDPConfig", {}).get("properties", {})  # an unknown one gets its own warning
    notes = [Problem(f"fsdp_config.{old}", f"the fsdp_ prefix is deprecated in Axolotl 0.19.0, which reads it as {new}",
                     f"write {new}", WARNING) for old, new in moved if new in known]
    return cfg, notes, {f"fsdp_config.{new}": f"fsdp_config.{old}" for old, new in moved}


# ---------------------------------------------------------------- entry points

def validate_text(text: str, hardware: str | None = None, base_dir: Path | None = None,
                  name: str | None = None) -> list[Problem]:
    """Every problem in one Axolotl YAML text (empty list: valid); `name` is the file it came from."""
    cfg, problems = load_yaml(text, name)
    if problems:
        return problems
    if not isinstance(cfg, dict):
        return [Problem("", f"the config must be a mapping of Axolotl keys, got {type(cfg).__name__}", "")]
    from ftstudy.config.profiles import base_name

    hardware = hardware or header_meta(text).get("hardware")
    ctx = {"gpu": None if hardware is None else base_name(hardware) != "cpu", "base_dir": base_dir}
    cfg, notes, written = normalise(cfg)
    found = schema_problems(cfg) + rule_problems(cfg, ctx)
    refused = {p.path for p in found if p.severity == ERROR}  # a key already refused (a type, a rule) is not repeated
    found += [p for p in range_problems(cfg) if p.path not in refused]
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
    return validate_text(text, hardware, name=str(path))


def errors(problems: list[Problem], strict: bool = False) -> list[Problem]:
    """The problems that make a config invalid; with strict, warnings too (never notes)."""
    return [p for p in problems if p.severity == ERROR or (strict and p.severity == WARNING)]
