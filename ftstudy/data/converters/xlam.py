"""xLAM function-calling rows -> chat messages with JSON-Schema tools and assistant tool_calls.

xLAM describes each tool's parameters as a flat map `{param: {"type": "str, optional", "description", "default"?}}`
with Python-ish type names. Chat templates (Qwen2.5's included) expect OpenAI-style function specs whose
`parameters` is a JSON Schema object, so each map is rewritten:

    {"city": {"type": "str", "description": "City"}, "days": {"type": "int, optional", "default": 3}}
    -> {"type": "object",
        "properties": {"city": {"type": "string", "description": "City"},
                       "days": {"type": "integer", "default": 3}},
        "required": ["city"]}

A parameter is required when its type is not marked optional and it has no default.

On disk (what Axolotl reads), each tool's `parameters` and each call's `arguments` are JSON *strings*. Axolotl's
chat_template strategy parses both back (it accepts strings for exactly this case), and keeping them as strings
stops `datasets` from merging every row's differently-shaped parameter objects into one Arrow struct, which
would give each tool the union of all rows' parameters (as nulls) or fail on mixed default types.

Example:
    >>> row = {"id": 0, "query": "Weather in Oslo?",
    ...        "tools": '[{"name": "weather", "description": "Forecast", "parameters": {"city": {"type": "str"}}}]',
    ...        "answers": '[{"name": "weather", "arguments": {"city": "Oslo"}}]'}
    >>> xlam(row)["messages"][1]["tool_calls"][0]["function"]
    {'name': 'weather', 'arguments': '{"city": "Oslo"}'}
"""
from __future__ import annotations

import functools
import json
import re
from typing import Any

from ftstudy.data.row_errors import RowError, msg

# What the assistant says when no listed tool fits the request (xLAM rows whose answers list is empty).
NO_CALL_REPLY = "None of the available tools can help with this request."

_SIMPLE = {
    "str": "string", "string": "string", "int": "integer", "integer": "integer", "float": "number", "number": "number",
    "bool": "boolean", "boolean": "boolean", "dict": "object", "object": "object", "mapping": "object",
    "list": "array", "array": "array", "tuple": "array", "set": "array", "sequence": "array", "iterable": "array",
    "none": "null", "nonetype": "null",
}
_ARRAYS = {"list", "array", "tuple", "set", "sequence", "iterable"}
_GENERIC = re.compile(r"^([A-Za-z_][\w.]*)\s*(?:\[(.*)\])?$", re.S)


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside brackets: 'Dict[str, int], optional' -> ['Dict[str, int]', ' optional']."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _schema(text: str) -> tuple[dict[str, Any], bool]:
    """JSON Schema for one Python-ish type expression, and whether the type itself says optional."""
    m = _GENERIC.match(text.strip())
    if not m:
        return {}, False  # unparseable: leave the type open rather than guess a wrong one
    name, args = m.group(1).split(".")[-1].lower(), m.group(2)
    inner = [a for a in _split_top(args) if a.strip()] if args else []
    if name == "optional" and inner:
        return _schema(inner[0])[0], True
    if name == "union" and inner:
        subs = [_schema(a)[0] for a in inner]
        optional = any(s.get("type") == "null" for s in subs)
        types = [s.get("type") for s in subs if s.get("type") not in (None, "null")]
        if not types or len(types) != len([s for s in subs if s.get("type") != "null"]):
            return {}, optional  # a member with an open type makes the union open
        return ({"type": types[0]} if len(set(types)) == 1 else {"type": sorted(set(types), key=types.index)}), optional
    kind = _SIMPLE.get(name)
    if kind is None:
        return {}, False  # Any, Callable, datetime, ...: no JSON type says it better than the description
    schema: dict[str, Any] = {"type": kind}
    if name in _ARRAYS and inner:
        items = [_schema(a)[0] for a in inner if a.strip() != "..."]
        if items and all(i == items[0] for i in items):
            schema["items"] = items[0]
    return schema, False


@functools.lru_cache(maxsize=4096)  # a dataset repeats a few dozen type strings; parse each once per process
def json_type(spec: str) -> tuple[dict[str, Any], bool]:
    """Map an xLAM type string to (JSON Schema, optional).

    Example:
        >>> json_type("List[int], optional")
        ({'type': 'array', 'items': {'type': 'integer'}}, True)
        >>> json_type("Dict[str, Any]")
        ({'type': 'object'}, False)
    """
    head, *flags = _split_top(spec)
    schema, optional = _schema(head)
    return schema, optional or any(f.strip().lower().startswith("optional") for f in flags)


def parameters_schema(params: dict[str, Any]) -> dict[str, Any]:
    """xLAM's flat parameter map -> a JSON Schema object (see the module docstring).

    Example:
        >>> parameters_schema({"n": {"type": "int"}, "tag": {"type": "str", "default": "x"}})["required"]
        ['n']
    """
    props: dict[str, Any] = {}
    required = []
    for name, spec in params.items():
        if not isinstance(spec, dict):
            raise RowError(f"parameter {name!r} must be an object, got {type(spec).__name__}")
        raw_type = spec.get("type")
        schema, optional = json_type(raw_type) if isinstance(raw_type, str) else ({}, False)
        prop = dict(schema)  # a copy: the cached schema is shared (its nested `items` are never modified)
        if isinstance(spec.get("description"), str):
            prop["description"] = spec["description"]
        if "default" in spec:
            prop["default"] = spec["default"]
        props[name] = prop
        if not optional and "default" not in spec:
            required.append(name)
    return {"type": "object", "properties": props, "required": required}


def _load(row: dict[str, Any], field: str) -> list[Any]:
    try:
        value = json.loads(row[field])
    except json.JSONDecodeError as exc:
        raise RowError(f"bad JSON in {field!r} ({exc.msg} at char {exc.pos})") from None
    if not isinstance(value, list):
        raise RowError(f"field {field!r} must be a JSON list, got {type(value).__name__}")
    return value


def function_spec(tool: Any, index: int) -> dict[str, Any]:
    """One xLAM tool -> an OpenAI-style function spec (parameters as a JSON Schema object).

    Example:
        >>> function_spec({"name": "f", "parameters": {}}, 0)
        {'name': 'f', 'description': '', 'parameters': {'type': 'object', 'properties': {}, 'required': []}}
    """
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"].strip():
        raise RowError(f"tool {index} must be an object with a 'name'")
    params = tool.get("parameters") or {}
    if not isinstance(params, dict):
        raise RowError(f"parameters of tool {tool['name']!r} must be an object, got {type(params).__name__}")
    return {"name": tool["name"], "description": str(tool.get("description") or ""), "parameters": parameters_schema(params)}


def xlam(row: dict[str, Any]) -> dict[str, Any]:
    """Query + tools + answers -> `messages` (user, assistant with tool_calls) and `tools` (function specs).

    An empty answers list (no tool fits) becomes a plain assistant reply, NO_CALL_REPLY, so the model also
    learns when not to call.
    """
    specs = [function_spec(t, i) for i, t in enumerate(_load(row, "tools"))]
    known = {s["name"] for s in specs}
    calls = []
    for i, ans in enumerate(_load(row, "answers")):
        if not isinstance(ans, dict) or not isinstance(ans.get("name"), str):
            raise RowError(f"answer {i} must be an object with a 'name'")
        if ans["name"] not in known:
            raise RowError(f"answer calls unknown tool {ans['name']!r}")
        args = ans.get("arguments", {})
        if not isinstance(args, dict):
            raise RowError(f"arguments of answer {i} must be an object, got {type(args).__name__}")
        calls.append({"type": "function", "function": {"name": ans["name"], "arguments": json.dumps(args, ensure_ascii=False)}})
    reply = {**msg("assistant", ""), "tool_calls": calls} if calls else msg("assistant", NO_CALL_REPLY)
    tools = [{"type": "function", "function": {**s, "parameters": json.dumps(s["parameters"], ensure_ascii=False)}}
             for s in specs]
    return {"messages": [msg("user", row["query"]), reply], "tools": tools}
