"""Converters: one hub row in, the row Axolotl reads out. Pure functions, no I/O.

Each converter is named in ftstudy/config/row_formats.yaml (`convert:`). `convert(shape, row)` checks the
row's fields, then converts it. A malformed row raises RowError with a one-line reason, which prepare reports
with the file and line; a well-formed row that yields no training example (a raw UltraFeedback row whose
completions are all rated the same) raises RowSkip and is counted, never a reason to stop.

Reasons a row is malformed, as reported:
    missing field 'X'                      the shape's required field is absent or null
    field 'X' must be T, got U             wrong type (e.g. an AG News label given as a string)
    field 'X' is empty                     a required text field is blank
    label N out of range 0-K               classification / multiple-choice label
    empty conversation                     UltraChat `data` with no user/assistant pair
    bad JSON in 'tools' (...)              xLAM `tools` / `answers` are JSON strings; they must parse
    answer calls unknown tool 'X'          an xLAM answer names a function not in the row's tools

Example:
    >>> from ftstudy.data.converters.common import convert
    >>> convert("ag_news", {"text": "Rates rise.", "label": 2})["messages"][1]
    {'role': 'assistant', 'content': 'Business'}
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Callable

from ftstudy.data.converters import plan_sources as convert_more
from ftstudy.data.converters.xlam import xlam
from ftstudy.data.row_errors import RowError, RowSkip, msg
from ftstudy.config.row_formats import SHAPES

__all__ = ["RowError", "RowSkip", "convert", "check_fields", "CONVERTERS", "AG_NEWS_LABELS"]

AG_NEWS_LABELS = ("World", "Sports", "Business", "Sci/Tech")
LETTERS = "ABCDEFGHIJ"

# Field types that are not plain text, per shape; every other required field must be a non-empty string.
FIELD_TYPES: dict[str, dict[str, type]] = {
    "ag_news": {"label": int},
    "ultrachat": {"data": list},
    "pubmedqa": {"context": dict},
    "casehold": {"label": int, "endings": list},
    "ultrafeedback_binarized": {"chosen": list, "rejected": list},
    "ultrafeedback_raw": {"completions": list},
    **convert_more.FIELD_TYPES,
}
_TYPE_NAMES = {int: "int", list: "a list", dict: "an object", str: "a string"}


def check_fields(shape: str, row: dict[str, Any]) -> None:
    """Raise RowError when a required field of the shape is missing, of the wrong type or blank.

    Example:
        >>> check_fields("gsm8k", {"question": "1+1?", "answer": "#### 2"})
        >>> check_fields("gsm8k", {"question": "1+1?"})
        Traceback (most recent call last):
        ftstudy.data.row_errors.RowError: missing field 'answer'
    """
    if not isinstance(row, (dict, Mapping)):  # Mapping: `datasets` hands map() functions a lazy row
        raise RowError(f"row must be a JSON object, got {type(row).__name__}")
    types = FIELD_TYPES.get(shape, {})
    for name in SHAPES[shape]["fields"]:
        value = row.get(name)
        if value is None:
            raise RowError(f"missing field {name!r}")
        want = types.get(name, str)
        # bool is an int subclass in Python; a label of `true` is still the wrong type.
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise RowError(f"field {name!r} must be {_TYPE_NAMES[want]}, got {type(value).__name__}")
        if want is str and not value.strip():
            raise RowError(f"field {name!r} is empty")


def _label(row: dict[str, Any], n: int) -> int:
    label = row["label"]
    if not 0 <= label < n:
        raise RowError(f"label {label} out of range 0-{n - 1}")
    return label


def keep(row: dict[str, Any]) -> dict[str, Any]:
    """The hub row unchanged: an Axolotl built-in type (field map, alpaca, chatml.ultra) reads its fields.

    Example:
        >>> keep({"question": "2+2?", "answer": "#### 4"})
        {'question': '2+2?', 'answer': '#### 4'}
    """
    return row


def ag_news(row: dict[str, Any]) -> dict[str, Any]:
    """Article -> user prompt listing the four topics; label -> the topic's name as the assistant's answer.

    Example:
        >>> ag_news({"text": "A striker scored twice.", "label": 1})["messages"][1]["content"]
        'Sports'
    """
    name = AG_NEWS_LABELS[_label(row, len(AG_NEWS_LABELS))]
    prompt = (f"Classify the news article into one of these topics: {', '.join(AG_NEWS_LABELS)}.\n\n"
              f"Article: {row['text'].strip()}\n\nAnswer with the topic name only.")
    return {"messages": [msg("user", prompt), msg("assistant", name)]}


def openorca(row: dict[str, Any]) -> dict[str, Any]:
    """System prompt (when not blank) + question + response as chat messages.

    Example:
        >>> [m["role"] for m in openorca({"system_prompt": "Be brief.", "question": "Q?", "response": "A."})["messages"]]
        ['system', 'user', 'assistant']
    """
    system = (row.get("system_prompt") or "").strip()
    head = [msg("system", system)] if system else []
    return {"messages": head + [msg("user", row["question"]), msg("assistant", row["response"])]}


def ultrachat(row: dict[str, Any]) -> dict[str, Any]:
    """`data` alternates user, assistant, user, ...; a trailing user turn has no answer to learn and is dropped.

    Example:
        >>> [m["role"] for m in ultrachat({"data": ["hi", "hello", "bye"]})["messages"]]
        ['user', 'assistant']
    """
    turns = row["data"]
    for i, turn in enumerate(turns):
        if not isinstance(turn, str):
            raise RowError(f"turn {i} of 'data' must be a string, got {type(turn).__name__}")
        if not turn.strip():
            raise RowError(f"turn {i} of 'data' is empty")
    pairs = len(turns) // 2 * 2
    if pairs == 0:
        raise RowError("empty conversation")
    return {"messages": [msg("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(turns[:pairs])]}


def pubmedqa(row: dict[str, Any]) -> dict[str, Any]:
    """Question + labelled abstract passages -> 'Answer: yes|no|maybe' and the long answer.

    Example:
        >>> pubmedqa({"question": "Q?", "final_decision": "yes", "context": {"contexts": ["p"], "labels": ["RESULTS"]}}
        ...          )["messages"][1]["content"]
        'Answer: yes'
    """
    decision = row["final_decision"].strip().lower()
    if decision not in ("yes", "no", "maybe"):
        raise RowError(f"final_decision must be yes, no or maybe, got {row['final_decision']!r}")
    ctx = row["context"]
    passages = ctx.get("contexts")
    if not isinstance(passages, list) or not passages or not all(isinstance(p, str) for p in passages):
        raise RowError("field 'context.contexts' must be a non-empty list of strings")
    labels = ctx.get("labels") or []
    # Section labels (BACKGROUND, METHODS, ...) help the model read the abstract; use them only when aligned.
    if len(labels) == len(passages):
        body = "\n".join(f"{lab}: {p}" for lab, p in zip(labels, passages))
    else:
        body = "\n".join(passages)
    prompt = (f"Read the abstract and answer the question with yes, no or maybe, then explain.\n\n{body}\n\n"
              f"Question: {row['question'].strip()}")
    answer = f"Answer: {decision}"
    if isinstance(row.get("long_answer"), str) and row["long_answer"].strip():
        answer += "\n\n" + row["long_answer"].strip()
    return {"messages": [msg("user", prompt), msg("assistant", answer)]}


def casehold(row: dict[str, Any]) -> dict[str, Any]:
    """Context with <HOLDING> + lettered candidate holdings -> 'B. <holding text>'.

    Example:
        >>> casehold({"context": "See X (<HOLDING>).", "endings": ["a", "b"], "label": 1})["messages"][1]["content"]
        'B. b'
    """
    endings = row["endings"]
    if len(endings) < 2 or not all(isinstance(e, str) and e.strip() for e in endings):
        raise RowError("field 'endings' must hold at least two non-empty strings")
    label = _label(row, len(endings))
    choices = "\n".join(f"{LETTERS[i]}. {e.strip()}" for i, e in enumerate(endings))
    prompt = (f"{row['context'].strip()}\n\nWhich holding belongs at <HOLDING>?\n{choices}\n\n"
              "Answer with the letter and the holding.")
    return {"messages": [msg("user", prompt), msg("assistant", f"{LETTERS[label]}. {endings[label].strip()}")]}


def _score(completion: dict[str, Any]) -> float | None:
    # overall_score is the dataset's own summary rating; fine-grained_score (mean of the four aspect ratings)
    # is the fallback. "N/A" and missing ratings make a completion unrated.
    for key in ("overall_score", "fine-grained_score"):
        value = completion.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def ultrafeedback_raw(row: dict[str, Any]) -> dict[str, Any]:
    """Binarize rated completions: the best as `chosen`, a lower-rated one as `rejected` (chatml.ultra rows).

    The rejected completion is picked among the strictly lower-rated ones by a hash of the instruction, so the
    choice is reproducible without a random generator. Ties at the top keep the first completion.

    Example:
        >>> r = ultrafeedback_raw({"instruction": "Hi?", "completions": [
        ...     {"response": "meh", "overall_score": 3.0}, {"response": "Hello!", "overall_score": 8.0}]})
        >>> r["chosen"][1]["content"], r["rejected"][1]["content"]
        ('Hello!', 'meh')
    """
    rated = []
    for i, c in enumerate(row["completions"]):
        if not isinstance(c, dict):
            raise RowError(f"completion {i} must be an object, got {type(c).__name__}")
        response, score = c.get("response"), _score(c)
        if isinstance(response, str) and response.strip() and score is not None:
            rated.append((score, response))
    if len(rated) < 2:
        raise RowSkip("fewer than two rated completions")
    best = max(rated, key=lambda sr: sr[0])
    lower = [sr for sr in rated if sr[0] < best[0]]
    if not lower:
        raise RowSkip("all completions rated the same")
    return convert_more.binarized(row["instruction"], best, lower, "score")


_TAG = re.compile(r"^\s*(?:\[\s*[A-Za-z]{2,3}\s*\]\s*)+")
_NEWLINE = re.compile(r"[ \t]*<newline>[ \t]*")


def writingprompts(row: dict[str, Any]) -> dict[str, Any]:
    """Strip the leading `[ WP ]`-style tag(s); `<newline>` tokens (kept in some dumps) become newlines.

    Example:
        >>> writingprompts({"prompt": "[ WP ] A cat runs a bank.", "story": "It began."})["messages"][0]["content"]
        'Write a story for this prompt: A cat runs a bank.'
    """
    prompt = _TAG.sub("", row["prompt"]).strip()
    story = _NEWLINE.sub("\n", row["story"]).strip()
    if not prompt:
        raise RowError("field 'prompt' is empty after removing its tag")
    return {"messages": [msg("user", f"Write a story for this prompt: {prompt}"), msg("assistant", story)]}


def _binarized_pairs(row: dict[str, Any]) -> None:
    # chatml.ultra reads chosen[1]["content"] and rejected[1]["content"]: check them here, with a reason,
    # rather than let Axolotl fail on an index deep inside a map.
    for side in ("chosen", "rejected"):
        pair = row[side]
        if len(pair) < 2 or not isinstance(pair[1], dict) or not isinstance(pair[1].get("content"), str):
            raise RowError(f"field {side!r} must be [user message, assistant message]")
        if not pair[1]["content"].strip():
            raise RowError(f"field {side!r} has an empty assistant message")


CONVERTERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "keep": keep, "ag_news": ag_news, "openorca": openorca, "ultrachat": ultrachat, "pubmedqa": pubmedqa,
    "casehold": casehold, "ultrafeedback_raw": ultrafeedback_raw, "xlam": xlam, "writingprompts": writingprompts,
    **convert_more.CONVERTERS,
}
# Checks for shapes kept as they are, beyond their fields' presence and types.
EXTRA_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {"ultrafeedback_binarized": _binarized_pairs,
                                                            **convert_more.EXTRA_CHECKS}


def convert(shape: str, row: dict[str, Any]) -> dict[str, Any]:
    """Check and convert one hub row of `shape`; raises RowError (malformed) or RowSkip (no example).

    Example:
        >>> convert("ultrachat", {"id": "0", "data": ["Hi", "Hello!"]})
        {'messages': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]}
    """
    check_fields(shape, row)
    extra = EXTRA_CHECKS.get(shape)
    if extra:
        extra(row)
    return CONVERTERS[SHAPES[shape]["convert"]](row)
