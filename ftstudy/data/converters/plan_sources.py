"""Converters for the study plan's further sources (ShareGPT, WildChat, starcoderdata, MATH, Nectar, ToolBench,
Gorilla, BookSum, LegalBench tasks, CUAD, TinyStories). Pure functions, one hub row in, the row Axolotl reads out;
ftstudy/data/converters/common.py registers them next to its own, and `convert(shape, row)` checks fields first.

A malformed row raises RowError (prepare reports file:line and stops unless --skip-bad); a well-formed row
that holds no training example (an empty ShareGPT conversation, a multi-turn Nectar prompt) raises RowSkip
and is counted.

The conversation-shaped ones (ShareGPT, WildChat, ToolBench) live in ftstudy/data/converters/dialogue.py.

Example:
    >>> booksum({"chapter": "It rained all day.", "summary_text": "Rain."})["messages"][1]
    {'role': 'assistant', 'content': 'Rain.'}
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Callable

from ftstudy.data.converters.dialogue import sharegpt, toolbench, wildchat
from ftstudy.data.row_errors import RowError, RowSkip, msg

# Field types that are not plain text, per shape (merged into convert.FIELD_TYPES).
FIELD_TYPES: dict[str, dict[str, type]] = {
    "sharegpt": {"conversations": list},
    "wildchat": {"conversation": list},
    "nectar": {"answers": list},
    "toolbench": {"conversations": list},
    "cuad": {"answers": dict},
}

_REPO_TAGS = re.compile(r"\A(?:<(?:reponame|filename|gh_stars)>[^<\n]*)+\n?")


def starcoder(row: dict[str, Any]) -> dict[str, Any]:
    """A source file as a code-completion row ({"text": ...} for Axolotl's `completion` type), without the
    `<reponame>…<filename>…<gh_stars>…` header some starcoderdata files carry.

    Example:
        >>> starcoder({"content": "<reponame>a/b<filename>x.py<gh_stars>1-10\\nprint(1)\\n"})
        {'text': 'print(1)\\n'}
    """
    text = _REPO_TAGS.sub("", row["content"])
    if not text.strip():
        raise RowSkip("no code after the repository header")
    return {"text": text}


def hendrycks_math(row: dict[str, Any]) -> dict[str, Any]:
    """MATH problem -> worked solution ending in its \\boxed{} answer.

    Example:
        >>> hendrycks_math({"problem": "1+1?", "solution": "It is $\\\\boxed{2}$.", "level": "Level 1",
        ...                 "type": "Prealgebra"})["messages"][1]["content"]
        'It is $\\\\boxed{2}$.'
    """
    if "\\boxed" not in row["solution"] and "\\fbox" not in row["solution"]:
        raise RowSkip("solution has no \\boxed{} answer")
    return {"messages": [msg("user", row["problem"]), msg("assistant", row["solution"])]}


_HUMAN = re.compile(r"(?:^|\n)\s*Human:\s*")
_ASSISTANT = re.compile(r"\n\s*Assistant:\s*")


def nectar(row: dict[str, Any]) -> dict[str, Any]:
    """Binarize a Nectar row: rank 1 as `chosen`, one strictly lower-ranked answer (picked by a hash of the
    prompt, reproducibly) as `rejected`, for `chatml.ultra`. Multi-turn prompts are skipped: chatml.ultra
    takes one user turn.

    Example:
        >>> r = nectar({"prompt": "\\n\\nHuman: Hi?\\n\\nAssistant: ", "answers": [
        ...     {"answer": "Hello!", "model": "m1", "rank": 1.0}, {"answer": "meh", "model": "m2", "rank": 2.0}]})
        >>> r["prompt"], r["chosen"][1]["content"], r["rejected"][1]["content"]
        ('Hi?', 'Hello!', 'meh')
    """
    humans = _HUMAN.split(row["prompt"])
    if len(humans) < 2 or humans[0].strip():
        raise RowError("field 'prompt' does not start with 'Human:'")
    if len(humans) > 2:
        raise RowSkip("multi-turn prompt: chatml.ultra takes one user turn")
    parts = _ASSISTANT.split(humans[1])
    if len(parts) > 2 or (len(parts) == 2 and parts[1].strip()):
        raise RowSkip("multi-turn prompt: chatml.ultra takes one user turn")
    prompt = parts[0].strip()
    if not prompt:
        raise RowError("field 'prompt' has an empty Human turn")
    ranked = []
    for i, a in enumerate(row["answers"]):
        if not isinstance(a, dict) or not isinstance(a.get("answer"), str):
            raise RowError(f"answer {i} must be an object with an 'answer' string")
        rank = a.get("rank")
        if isinstance(rank, (int, float)) and not isinstance(rank, bool) and a["answer"].strip():
            ranked.append((float(rank), a["answer"]))
    if len(ranked) < 2:
        raise RowSkip("fewer than two ranked answers")
    best = min(ranked, key=lambda r: r[0])
    lower = sorted(r for r in ranked if r[0] > best[0])  # sorted: the pick does not depend on the answers' order
    if not lower:
        raise RowSkip("all answers ranked the same")
    return binarized(prompt, best, lower, "rank")


def binarized(prompt: str, best: tuple[float, str], lower: list[tuple[float, str]], rating: str) -> dict[str, Any]:
    """A chatml.ultra row: `best` (rating, answer) as chosen, and as rejected one of `lower`, picked by a hash
    of the prompt so that the choice is reproducible without a random generator."""
    worse = lower[int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % len(lower)]
    user = msg("user", prompt)
    return {"prompt": prompt, "chosen": [user, msg("assistant", best[1])], "rejected": [user, msg("assistant", worse[1])],
            f"{rating}_chosen": best[0], f"{rating}_rejected": worse[0]}


def _api_data(value: Any) -> dict[str, Any]:
    """APIBench's api_data: an object in Gorilla's files, a JSON string in parquet copies; anything else: none."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def gorilla(row: dict[str, Any]) -> dict[str, Any]:
    """APIBench row -> instruction as the user turn, the answer with its API call as the assistant's.

    huggingface_train.json's `code` reads '###Instruction: …\\n###Output: <<<domain>>>: … <<<api_call>>>: …
    <<<api_provider>>>: … <<<explanation>>>: … <<<code>>>: …' and is split there. torchhub_train.json and
    tensorflow_train.json hold "{'Instruction': …, 'Output': {…}}" (not valid JSON or Python): the instruction is
    cut out of it and the answer rebuilt in the same <<<…>>> layout from the row's `api_call`, `provider` and
    `api_data`.

    Example:
        >>> gorilla({"code": "###Instruction: Detect cats.\\n###Output: <<<api_call>>>: load('cat')",
        ...          "api_call": "load('cat')", "provider": "Hugging Face"})["messages"][1]["content"]
        "<<<api_call>>>: load('cat')"
    """
    code = row["code"]
    head, sep, output = code.partition("###Output:")
    if sep:
        instruction = head.split("###Instruction:", 1)[-1].strip()
    elif code.lstrip().startswith("{'Instruction':"):
        instruction, sep, _ = code.split("'Instruction':", 1)[1].partition(", 'Output':")
        instruction = instruction.strip().strip("\"'").strip()
        call, data = row.get("api_call"), _api_data(row.get("api_data"))
        if not sep or not isinstance(call, str) or not call.strip():
            raise RowError("field 'code' holds {'Instruction': ...} without 'Output', or the row has no 'api_call'")
        output = (f"<<<domain>>>: {data.get('domain') or 'N/A'}\n<<<api_call>>>: {call}\n"
                  f"<<<api_provider>>>: {row.get('provider') or data.get('framework') or 'N/A'}\n"
                  f"<<<explanation>>>: {data.get('description') or ''}")
    else:
        raise RowError("field 'code' has no '###Output:' section")
    if not instruction or not output.strip():
        raise RowError("field 'code' has an empty instruction or output")
    return {"messages": [msg("user", instruction), msg("assistant", output.strip())]}


def booksum(row: dict[str, Any]) -> dict[str, Any]:
    """A book chapter -> its human-written summary.

    Example:
        >>> booksum({"chapter": "It rained.", "summary_text": "Rain."})["messages"][0]["content"]
        'Summarize this chapter.\\n\\nIt rained.'
    """
    return {"messages": [msg("user", f"Summarize this chapter.\n\n{row['chapter'].strip()}"),
                         msg("assistant", row["summary_text"].strip())]}


def legalbench_task(row: dict[str, Any]) -> dict[str, Any]:
    """A LegalBench train-split row; `_config` (the task, written by the hub dump of a multi-task source)
    names the task so that rows of different tasks with the same text are told apart.

    Example:
        >>> legalbench_task({"text": "Clause X.", "answer": "Yes", "_config": "proa"})["messages"][0]["content"]
        'LegalBench task: proa\\n\\nClause X.\\n\\nAnswer:'
    """
    task = row.get("_config")
    prefix = f"LegalBench task: {task.replace('_', ' ')}\n\n" if isinstance(task, str) and task else ""
    return {"messages": [msg("user", f"{prefix}{row['text'].strip()}\n\nAnswer:"), msg("assistant", row["answer"].strip())]}


CUAD_WINDOW = 3000  # characters of contract shown: CUAD contracts run to ~50k characters
NO_CLAUSE = "No such clause."


def cuad(row: dict[str, Any]) -> dict[str, Any]:
    """CUAD (SQuAD shape) -> an excerpt of the contract around the first answer, the question, and the clause
    text(s) as the answer; a question without an answer gets NO_CLAUSE over the contract's opening (which then
    holds no such clause either, as none exists in the whole contract).

    Example:
        >>> cuad({"context": "This Agreement is governed by Ohio law.", "question": "Governing law?",
        ...       "answers": {"text": ["governed by Ohio law"], "answer_start": [18]}})["messages"][1]["content"]
        'governed by Ohio law'
    """
    texts, starts = row["answers"].get("text") or [], row["answers"].get("answer_start") or []
    if not isinstance(texts, list) or not isinstance(starts, list) or len(texts) != len(starts):
        raise RowError("field 'answers' must hold lists 'text' and 'answer_start' of one length")
    ctx = row["context"]
    if texts:
        first = min(starts)
        if not isinstance(first, int) or not 0 <= first < len(ctx):
            raise RowError(f"answer_start {first!r} is outside the context")
        lo = max(0, first - CUAD_WINDOW // 3)
    else:
        lo = 0
    excerpt = ctx[lo:lo + CUAD_WINDOW]
    answer = "\n".join(dict.fromkeys(t.strip() for t in texts if isinstance(t, str) and t.strip())) or NO_CLAUSE
    prompt = f"Contract excerpt:\n{excerpt.strip()}\n\nQuestion: {row['question'].strip()}\nQuote the clause, or say '{NO_CLAUSE}'"
    return {"messages": [msg("user", prompt), msg("assistant", answer)]}


_SENTENCE = re.compile(r"(?<=[.!?\"])\s+")


def tinystories(row: dict[str, Any]) -> dict[str, Any]:
    """A story -> continuation: its opening (first paragraph, or first two sentences) as the prompt, the rest as
    the answer, which trains keeping a story's thread.

    Example:
        >>> tinystories({"text": "Tom had a red kite. It flew high. Then the wind stopped. Tom smiled."})["messages"][1]["content"]
        'Then the wind stopped. Tom smiled.'
    """
    text = row["text"].strip()
    head, sep, rest = text.partition("\n\n")
    if not sep or not rest.strip():
        parts = _SENTENCE.split(text)
        head, rest = " ".join(parts[:2]), " ".join(parts[2:])
    if not rest.strip():
        raise RowSkip("story too short to continue")
    return {"messages": [msg("user", f"Continue this story:\n\n{head.strip()}"), msg("assistant", rest.strip())]}


def _nectar_answers(row: dict[str, Any]) -> None:
    if not row["answers"]:
        raise RowError("field 'answers' is empty")


CONVERTERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "sharegpt": sharegpt, "wildchat": wildchat, "starcoder": starcoder, "hendrycks_math": hendrycks_math,
    "nectar": nectar, "toolbench": toolbench, "gorilla": gorilla, "booksum": booksum,
    "legalbench_task": legalbench_task, "cuad": cuad, "tinystories": tinystories,
}
EXTRA_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {"nectar": _nectar_answers}
