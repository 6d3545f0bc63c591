"""A benchmark's protocol: the settings that make its number the public benchmark's number, and where they come from.

Every entry of evals/benchmarks.yaml carries a `protocol:` mapping (checked here when the registry loads):

    source         where the protocol comes from ("lm-eval task default (lm-eval 0.4.13)", "Qwen2.5 technical
                   report, base-model setting", "FastChat llm_judge 0e6d3e4", "ftstudy probe set", ...)
    shots          few-shot examples per item (an int; null: each subtask's own default in its harness)
    chat_template  whether the prompt goes through the model's chat template (bool)
    split          the split (or file) the scored items come from
    n_items        how many items a full run scores (null: every item of the split)
    metric         the per-item metric as its harness names it
    aggregate      how item scores become the reported number
    deviations     [{what, reason}]: every way ftstudy differs from `source`, with why (empty when it conforms)

Base and fine-tuned models are scored with the same protocol; the harnesses read it from here, `show`, the
results and the report print it beside each number.

Example:
    >>> p = {"source": "lm-eval task default (lm-eval 0.4.13)", "shots": 5, "chat_template": False, "split": "test",
    ...      "n_items": 14042, "metric": "acc", "aggregate": "mean", "deviations": []}
    >>> check("mmlu", p)
    >>> summary(p)
    '5-shot, no chat template, test split, 14042 items, acc (mean); source: lm-eval task default (lm-eval 0.4.13)'
"""
from __future__ import annotations

from typing import Any

from ftstudy.core.errors import UserError

KEYS = ("source", "shots", "chat_template", "split", "n_items", "metric", "aggregate", "deviations")
DEVIATION_KEYS = ("what", "reason")


class ProtocolError(UserError, ValueError):
    """A benchmark's protocol is missing or malformed; the message names the benchmark and the key."""


def _is_count(v: Any) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)


def _is_text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


CHECKS = {  # key -> (test, what it must be)
    "source": (_is_text, "a non-empty string naming where the protocol comes from"),
    "shots": (_is_count, "a count >= 0, or null for each subtask's own default"),
    "chat_template": (lambda v: isinstance(v, bool), "true or false"),
    "split": (_is_text, "a non-empty string"),
    "n_items": (_is_count, "a count >= 0, or null for every item of the split"),
    "metric": (_is_text, "a non-empty string"),
    "aggregate": (_is_text, "a non-empty string"),
    "deviations": (lambda v: isinstance(v, list), "a list of {what, reason} (empty when the protocol conforms)"),
}


def check(bench_id: str, protocol: Any, where: str = "evals/benchmarks.yaml") -> None:
    """Raise ProtocolError (one line naming the benchmark) unless `protocol` has exactly KEYS, each well formed."""
    head = f"{where}: benchmark {bench_id!r}"
    if not isinstance(protocol, dict):
        raise ProtocolError(f"{head} has no `protocol:` mapping ({', '.join(KEYS)}); the other entries show its form")
    unknown = [k for k in protocol if k not in KEYS]
    missing = [k for k in KEYS if k not in protocol]
    if unknown or missing:
        parts = ([f"unknown protocol keys {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else [])
        raise ProtocolError(f"{head}: {'; '.join(parts)} (a protocol has exactly {', '.join(KEYS)})")
    for key, (ok, must) in CHECKS.items():
        if not ok(protocol[key]):
            raise ProtocolError(f"{head}: protocol.{key} is {protocol[key]!r}; it must be {must}")
    for i, dev in enumerate(protocol["deviations"]):
        if not isinstance(dev, dict) or set(dev) != set(DEVIATION_KEYS) or not all(_is_text(dev[k]) for k in DEVIATION_KEYS):
            raise ProtocolError(f"{head}: protocol.deviations[{i}] is {dev!r}; each deviation is "
                                "{what: ..., reason: ...}, both non-empty")


def summary(protocol: dict) -> str:
    """One line: shots, template, split, items, metric (aggregate); source."""
    shots = "subtask-default shots" if protocol["shots"] is None else f"{protocol['shots']}-shot"
    chat = "chat template" if protocol["chat_template"] else "no chat template"
    items = "all items" if protocol["n_items"] is None else f"{protocol['n_items']} items"
    return (f"{shots}, {chat}, {protocol['split']} split, {items}, {protocol['metric']} ({protocol['aggregate']}); "
            f"source: {protocol['source']}")


def deviation_lines(protocol: dict) -> list[str]:
    """'DEVIATION: what (reason)' for each declared deviation.

    Example:
        >>> deviation_lines({"deviations": [{"what": "local task", "reason": "the hub copy needs a script"}]})
        ['DEVIATION: local task (the hub copy needs a script)']
    """
    return [f"DEVIATION: {d['what']} ({d['reason']})" for d in protocol.get("deviations") or []]


def record_view(protocol: dict) -> dict:
    """What a result stores of its protocol (all of it: a result describes itself)."""
    return {k: protocol[k] for k in KEYS}
