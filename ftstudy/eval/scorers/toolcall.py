"""Tool-call scoring against xLAM references (Salesforce/xlam-function-calling-60k rows: id, query, tools,
answers; `tools`/`answers` may be JSON strings, as on the hub, or parsed lists).

A model reply is read as calls from `<tool_call>…</tool_call>` blocks (Qwen's format) or, without any such
block, from bare JSON: the whole reply (code fences removed) or JSON objects embedded in prose. Each call
is `{"name", "arguments"}`, arguments a dict or a JSON string of one; `{"function": {...}}` wrappers (the
OpenAI shape) are unwrapped. JSON that does not look like a call (no "name") is treated as prose.

Rules that matter for the numbers:
* An unparseable reply (broken block JSON, a `<tool_call>` left open, a call without name/arguments)
  or a missing prediction scores 0 on tool selection, exact match and no-call. Its well-formed calls
  still earn `param_acc` credit, which is per reference call.
* `no_call_acc` wants a reply that parses and has zero calls: a garbled attempt to call is not an
  abstention (stricter than BFCL's irrelevance check, which passes any reply that fails to decode).
* Values compare as JSON values: 5 == 5.0, "5" != 5, True != 1, key order ignored, list order kept.

Example:
    >>> metrics, samples = score(
    ...     [{"id": 1, "output": '<tool_call>{"name": "f", "arguments": {"x": 5.0}}</tool_call>'}],
    ...     [{"id": 1, "answers": '[{"name": "f", "arguments": {"x": 5}}]'}])
    >>> metrics["exact_match"], metrics["n"]
    (1.0, 1)
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from ftstudy.eval.scorers import ScoreInputError, index_by_id
from ftstudy.eval.stats import mean

METRICS = ("parse_rate", "tool_selection_acc", "param_acc", "exact_match", "no_call_acc")
_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.S)
_OPEN = re.compile(r"[\[{]")
_MAX_DEPTH = 64  # deeper arguments are no real tool call, and would overflow the recursive comparison
_decoder = json.JSONDecoder()


class CallParseError(ValueError):
    """The reply tried to call a tool but the call cannot be read."""


def parse_calls(text: str) -> tuple[list[dict], str | None]:
    r"""Read the tool calls in one model reply: (calls, error). `error` is None when the reply parses;
    otherwise `calls` holds whatever complete calls could still be read.

    Example:
        >>> parse_calls('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>')
        ([{'name': 'f', 'arguments': {'a': 1}}], None)
        >>> parse_calls("I cannot help with that.")
        ([], None)
    """
    if not isinstance(text, str):
        return [], f"output is {type(text).__name__}, not text"
    if "<tool_call>" in text or "</tool_call>" in text:
        return _from_blocks(text)
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if body[:1] in ("{", "["):
        # The reply is meant to be JSON, so it must decode (trailing text such as an end token is allowed).
        try:
            value, _ = _decoder.raw_decode(body)
        except (ValueError, RecursionError) as exc:
            return [], f"invalid JSON: {exc}"
        try:
            return _as_calls(value) or [], None
        except CallParseError as exc:
            return [], str(exc)
    return _from_prose(body)


def normalize_call(call: Any) -> dict:
    """{"name": str, "arguments": dict} from a call object; raises CallParseError when it is not one.

    Example:
        >>> normalize_call({"name": "f", "arguments": "{}"})
        {'name': 'f', 'arguments': {}}
    """
    if isinstance(call, dict) and "name" not in call and isinstance(call.get("function"), dict):
        call = call["function"]
    if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
        raise CallParseError(f"a call needs a non-empty string 'name': {_short(call)}")
    if "arguments" not in call:
        raise CallParseError(f"call {call['name']!r} has no 'arguments'")
    args = call["arguments"]
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except (ValueError, RecursionError) as exc:
            raise CallParseError(f"arguments of {call['name']!r} are not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise CallParseError(f"arguments of {call['name']!r} are {type(args).__name__}, not an object")
    if _depth(args) > _MAX_DEPTH:
        raise CallParseError(f"arguments of {call['name']!r} are nested more than {_MAX_DEPTH} levels deep")
    return {"name": call["name"], "arguments": args}


def reference_calls(ref: dict) -> list[dict]:
    """The reference's calls from xLAM `answers` (JSON string or list); a bad reference is a data bug and
    raises ScoreInputError naming its id."""
    answers = ref.get("answers", [])
    try:
        if isinstance(answers, str):
            answers = json.loads(answers) if answers.strip() else []
        if not isinstance(answers, list):
            raise CallParseError(f"'answers' is {type(answers).__name__}, not a list")
        return [normalize_call(c) for c in answers]
    except (ValueError, RecursionError) as exc:
        raise ScoreInputError(f"reference {ref.get('id')!r}: bad 'answers': {exc}") from None


def score(predictions: list[dict], references: list[dict]) -> tuple[dict, list[dict]]:
    """Score predictions `{"id", "output"}` against xLAM references; returns (metrics, samples).

    metrics: parse_rate, tool_selection_acc, param_acc, exact_match, no_call_acc (None without
    irrelevance references) and n (the number of references). A reference without a prediction counts
    as wrong. samples: one record per reference, in reference order, with the parsed calls and each
    metric's per-item value (None where a metric does not apply to the item).

    Example:
        >>> m, s = score([], [{"id": 7, "answers": "[]"}])
        >>> m["no_call_acc"], s[0]["missing"]
        (0.0, True)
    """
    preds = index_by_id(predictions, "predictions")
    refs = index_by_id(references, "references")
    samples = [_score_one(preds.get(key), ref) for key, ref in refs.items()]
    n_ref_calls = sum(s["n_ref_calls"] for s in samples)
    irrelevance = [s["no_call_acc"] for s in samples if s["no_call_acc"] is not None]
    metrics = {
        "parse_rate": mean([s["parse_rate"] for s in samples]),
        "tool_selection_acc": mean([s["tool_selection_acc"] for s in samples]),
        # micro-averaged over reference calls, so a 3-call item weighs three times a 1-call item
        "param_acc": sum(s["n_matched_calls"] for s in samples) / n_ref_calls if n_ref_calls else None,
        "exact_match": mean([s["exact_match"] for s in samples]),
        "no_call_acc": mean(irrelevance),
        "n": len(samples),
    }
    return metrics, samples


def _score_one(pred: dict | None, ref: dict) -> dict:
    gold = reference_calls(ref)
    if pred is None:
        calls, error = [], "no prediction for this id"
    else:
        calls, error = parse_calls(pred.get("output", ""))
    ok = error is None
    gold_keys, pred_keys = Counter(map(_call_key, gold)), Counter(map(_call_key, calls))
    matched = sum((gold_keys & pred_keys).values())  # multiset intersection: one prediction per reference call
    same_names = Counter(c["name"] for c in gold) == Counter(c["name"] for c in calls)
    return {
        "id": ref["id"],
        "calls": calls,
        "parse_ok": ok,
        "error": error,
        "missing": pred is None,
        "n_ref_calls": len(gold),
        "n_matched_calls": matched,
        "parse_rate": float(ok),
        "tool_selection_acc": float(ok and same_names),
        "param_acc": matched / len(gold) if gold else None,
        "exact_match": float(ok and gold_keys == pred_keys),
        "no_call_acc": float(ok and not calls) if not gold else None,
    }


def _from_blocks(text: str) -> tuple[list[dict], str | None]:
    calls: list[dict] = []
    error = None
    if text.count("<tool_call>") != text.count("</tool_call>"):
        error = "unclosed or unmatched <tool_call> tag (truncated output?)"
    for i, block in enumerate(_BLOCK.findall(text), 1):
        body = block.strip()
        fenced = _FENCE.match(body)
        body = fenced.group(1).strip() if fenced else body
        try:
            found = _as_calls(json.loads(body))
            if not found:
                raise CallParseError("it holds no call object")
            calls += found
        except (ValueError, RecursionError) as exc:
            error = error or f"<tool_call> block {i}: {exc}"
    return calls, error


def _from_prose(text: str) -> tuple[list[dict], str | None]:
    """Calls embedded in prose: every JSON object or list that holds dicts with both name and arguments."""
    calls: list[dict] = []
    pos = 0
    while True:
        found = _OPEN.search(text, pos)
        if not found:
            return calls, None
        start = found.start()
        try:
            value, end = _decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            pos = start + 1
            continue
        items = value if isinstance(value, list) else [value]
        if any(isinstance(v, dict) and "name" in v and "arguments" in v for v in items):
            try:
                calls += _as_calls(value) or []
            except CallParseError as exc:
                return calls, str(exc)
        pos = end


def _as_calls(value: Any) -> list[dict] | None:
    """Calls in a decoded JSON value; None when the value is not call-shaped at all (no "name" anywhere
    at the top level), CallParseError when it tries to be calls but is malformed."""
    items = value if isinstance(value, list) else [value]
    named = [v for v in items if isinstance(v, dict) and ("name" in v or isinstance(v.get("function"), dict))]
    if not named:
        return None
    if len(named) != len(items):
        raise CallParseError("a list mixes call objects with other values")
    return [normalize_call(v) for v in items]


def _canon(value: Any) -> Any:
    """A hashable form in which equal JSON values are equal: numbers by value (5 == 5.0), bools apart
    from numbers, dict key order ignored, list order kept."""
    if isinstance(value, bool) or value is None:
        return ("c", value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return ("nan",)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, dict):
        return ("d", frozenset((str(k), _canon(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("l", tuple(_canon(v) for v in value))
    return ("o", repr(value))


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, found without recursion (the value may be deeper than the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(v, dict):
            stack += [(x, d + 1) for x in v.values()]
        elif isinstance(v, list):
            stack += [(x, d + 1) for x in v]
    return deepest


def _call_key(call: dict) -> tuple:
    return call["name"], _canon(call["arguments"])


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."
