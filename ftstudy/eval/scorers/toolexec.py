"""End-to-end tool-use success: the predicted calls are *executed* against the held-out row's own tools,
each a deterministic stub, and their results compared with the results of the reference calls.

A stub behaves like a strict API built from the row's xLAM tool spec (flat map param -> {type, default}):
* an unknown tool or parameter, a missing required parameter, or a value of the wrong type is an error;
* omitted optional parameters take their declared default; numeric strings are accepted for int/float
  parameters and "true"/"false" for bool ones, as a JSON API would coerce them;
* the result is a hash of the tool name and the complete, coerced arguments: the same effective call gives
  the same result.

So, unlike exact match, a call that spells a default out (or leaves it out), or writes 5 as "5" for an int,
succeeds; a call with a wrong value or an extra argument fails. An item succeeds when every predicted call
runs without error and the multiset of results equals the reference's; an irrelevance item (no reference
call) succeeds when the reply parses and makes no call.

Example:
    >>> tools = [{"name": "f", "parameters": {"x": {"type": "int"}, "unit": {"type": "str, optional", "default": "m"}}}]
    >>> success([{"name": "f", "arguments": {"x": "5"}}], [{"name": "f", "arguments": {"x": 5, "unit": "m"}}], tools)
    (True, None)
    >>> success([{"name": "f", "arguments": {"x": 5, "y": 1}}], [{"name": "f", "arguments": {"x": 5}}], tools)
    (False, "f: unknown parameter 'y'")
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from ftstudy.eval.stats import mean

_BOOL = {"true": True, "false": False}


class StubError(ValueError):
    """A call the tool's stub refuses (as the real API would)."""


def _kind(type_text: str) -> str:
    t = str(type_text or "").lower()
    for name in ("list", "dict", "bool", "int", "float", "str"):
        if t.startswith(name) or t.startswith(f"optional[{name}") or f"[{name}" == t[:len(name) + 1]:
            return name
    return "any"


def _coerce(tool: str, param: str, kind: str, value: Any) -> Any:
    if kind == "int":
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind == "bool":
        value = _BOOL.get(value.lower(), value) if isinstance(value, str) else value
        ok = isinstance(value, bool)
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind == "list":
        ok = isinstance(value, list)
    elif kind == "dict":
        ok = isinstance(value, dict)
    else:
        ok = True
    if not ok:
        raise StubError(f"{tool}: parameter {param!r} wants {kind}, got {json.dumps(value)[:40]}")
    return value


def run_stub(spec: dict, arguments: dict) -> str:
    """Execute one call against its tool's stub; returns the result or raises StubError."""
    name, params = spec.get("name"), spec.get("parameters") or {}
    if not isinstance(arguments, dict):
        raise StubError(f"{name}: arguments are not an object")
    unknown = sorted(set(arguments) - set(params))
    if unknown:
        raise StubError(f"{name}: unknown parameter {unknown[0]!r}")
    full = {}
    for p, info in params.items():
        info = info if isinstance(info, dict) else {}
        optional = "optional" in str(info.get("type", "")).lower() or "default" in info
        if p in arguments:
            full[p] = _coerce(name, p, _kind(info.get("type", "")), arguments[p])
        elif optional:
            full[p] = info.get("default")
        else:
            raise StubError(f"{name}: missing required parameter {p!r}")
    return hashlib.sha256(json.dumps([name, full], sort_keys=True, default=str).encode()).hexdigest()[:16]


def _results(calls: list[dict], specs: dict[str, dict]) -> list[str]:
    out = []
    for c in calls:
        if c.get("name") not in specs:
            raise StubError(f"no tool named {c.get('name')!r} in this row")
        out.append(run_stub(specs[c["name"]], c.get("arguments")))
    return out


def success(predicted: list[dict], reference: list[dict], tools: list[dict]) -> tuple[bool | None, str | None]:
    """(success, why not) of one item: predicted and reference calls run against the row's tool stubs.
    None when the reference itself fails its row's stubs: such an item cannot be scored this way."""
    specs = {t.get("name"): t for t in tools if isinstance(t, dict)}
    if not reference:
        return (not predicted), ("made a call on an irrelevance item" if predicted else None)
    try:
        got = _results(predicted, specs)
    except StubError as exc:
        return False, str(exc)
    try:
        want = _results(reference, specs)
    except StubError as exc:  # a reference the row's own tools refuse: say so rather than score it
        return None, f"reference call fails its own stub: {exc}"
    return Counter(got) == Counter(want), (None if Counter(got) == Counter(want) else "different results")


def score(samples: list[dict], rows: list[dict]) -> float | None:
    """Add `e2e_success` (1.0/0.0, None when the reference fails its own stubs) and `e2e_error` to each
    tool-call sample (from toolcall.score, same order as rows); returns the mean over the scorable items.
    An unparseable reply fails."""
    from ftstudy.eval.scorers.toolcall import reference_calls

    values = []
    for s, row in zip(samples, rows):
        tools = json.loads(row["tools"]) if isinstance(row.get("tools"), str) else row.get("tools") or []
        ok, why = (False, s.get("error") or "no prediction") if not s.get("parse_ok") else \
            success(s.get("calls") or [], reference_calls(row), tools)
        s["e2e_success"], s["e2e_error"] = (None if ok is None else float(ok)), why
        if ok is not None:
            values.append(float(ok))
    return mean(values)
