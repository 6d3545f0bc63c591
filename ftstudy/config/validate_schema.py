"""What Axolotl's pinned JSON Schema says about a config, as Problems (the unit every check of `ftstudy
validate` reports: a key path, a message, a suggestion and a level). A value that fits none of a key's
alternatives is reported against the alternative it is closest to; a near-miss of a known key is an error,
since Axolotl would drop the value meant for the key.

Example:
    >>> [p.render() for p in schema_problems({"base_model": "x", "learning_rate": 1e-4, "micro_batch_size": "two"})]
    ["micro_batch_size: 'two' is not valid here (expected one of: integer, null)"]
"""
from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from typing import Any, Iterator

from ftstudy.config import axolotl_rules as ax
from ftstudy.core.bundled import schema_path

ERROR, WARNING = "error", "warning"
NOTE = "note"  # about this machine's state, not the config (data not prepared yet): never an error, even --strict


@dataclass(frozen=True)
class Problem:
    """One finding. `origin` says whose rule it is: "axolotl" (Axolotl's own validation said so), "schema"
    (Axolotl's JSON Schema, checked by ftstudy), "input" (the file itself: unreadable, not YAML) or "ftstudy"
    (ftstudy's own rule, which Axolotl does not have: labelled as such when rendered)."""

    path: str
    message: str
    suggestion: str = ""
    severity: str = ERROR
    origin: str = "ftstudy"

    def render(self) -> str:
        tail = f" ({self.suggestion})" if self.suggestion else ""
        lead = "" if self.severity == ERROR else f"{self.severity}: "
        own = self.origin == "ftstudy" and self.severity != NOTE and "ftstudy's" not in self.message
        return f"{lead}{self.path or '<root>'}: {self.message}{tail}" + (" [ftstudy's rule]" if own else "")


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
                            f"expected one of: {', '.join(kinds)}", origin="schema")]
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
            if closed:  # a key Axolotl refuses (with a hint when it is a typo)
                out.append(Problem(full, "unknown key —", f"did you mean {near}?" if near else "Axolotl refuses it here",
                                   origin="schema"))
            elif near:  # a typo: Axolotl would drop the value meant for `near` without a word (ftstudy's rule)
                out.append(Problem(full, "unknown key —", f"did you mean {near}? Axolotl drops its value"))
            else:
                out.append(Problem(full, "not an Axolotl 0.19.0 key; Axolotl ignores it", "", WARNING, "schema"))
        return out
    if error.validator == "enum":
        near = difflib.get_close_matches(str(error.instance), [str(v) for v in error.validator_value], n=1, cutoff=0.5)
        hint = f"did you mean {near[0]}?" if near else "allowed: " + ", ".join(map(str, error.validator_value))
        return [Problem(path, f"{error.instance!r} is not an allowed value", hint, origin="schema")]
    if error.validator == "type":
        return [Problem(path, f"{error.instance!r} has the wrong type", f"expected {error.validator_value}",
                        origin="schema")]
    return [Problem(path, error.message, "", origin="schema")]


def schema_problems(cfg: Any) -> list[Problem]:
    model = ax.dataset_model(cfg) if isinstance(cfg, dict) else "SFTDataset"
    validator = ax.lax_validator()(ax.schema_for(schema(), model))
    out: list[Problem] = []
    for err in sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path))):
        out.extend(_schema_errors(err))
    # "unknown key —" reads better joined to its suggestion
    return [Problem(p.path, "unknown key — " + p.suggestion, "", p.severity, p.origin) if p.message == "unknown key —"
            else p for p in out]
