"""MT-Bench (Zheng et al. 2023): the 80 two-turn questions, graded 1-10 per turn by a judge with FastChat's
official single-answer prompts, reference-guided for the math, reasoning and coding categories.

The procedure is FastChat llm_judge's (`gen_api_answer.py` + `gen_judgment.py --mode single` +
`show_result.py`), run through ftstudy's own OpenAI-compatible client (FastChat's judge pins the legacy
`openai<1` SDK and accepts only judge names from its own list, so a user's judge endpoint and API key could
not be used through it):

* answers: both turns in one conversation, max 1024 new tokens, FastChat's per-category temperature
  (writing/roleplay 0.7, stem/humanities 0.1, others 0);
* turn 1 is judged with `single-v1` (`single-math-v1` with the reference answer for math, reasoning and
  coding), turn 2 with the `-multi-turn` prompts, which show the whole conversation;
* the judge's reply is read as FastChat does: `[[N]]`, else `[N]`; a judgment with neither counts in
  `unparseable` and is left out of the means (FastChat's -1);
* `score` is the mean of all readable turn grades; `score_turn1/2` and `score_<category>` break it down.

Items: `<data-dir>/mt_bench.jsonl` (HuggingFaceH4/mt_bench_prompts rows, or FastChat's question.jsonl rows),
the reference answers `<data-dir>/mt_bench_reference.jsonl` (FastChat's reference_answer/gpt-4.jsonl; when
absent, the rows' own `reference` field) and the judge prompts `<data-dir>/mt_bench_judge_prompts.jsonl`
(FastChat's judge_prompts.jsonl) - or, without --data-dir, their sources (ftstudy.data.benchmark_items).

Example:
    >>> parse_score("The answer is right. Rating: [[9]]"), parse_score("score [7.5]"), parse_score("none")
    (9.0, 7.5, None)
"""
from __future__ import annotations

import hashlib
import json
import re

from ftstudy.eval import client
from ftstudy.eval.harness import BenchContext, HarnessOutput, HarnessUnavailable
from ftstudy.data import benchmark_items as itemsets
from ftstudy.eval.harness.generative import gen_settings, output, placeholder, serving, subset
from ftstudy.eval.harness.judge import from_context, graded_turns
from ftstudy.eval.stats import mean

NEED_REF = ("math", "reasoning", "coding")
TEMPERATURE = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
               "stem": 0.1, "humanities": 0.1}
PROMPTS = ("single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn")
_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


def parse_score(text: str) -> float | None:
    """FastChat's reading of a single-answer judgment: the first [[N]], else the first [N]; None if neither."""
    for pattern in (_SCORE, _SCORE_BACKUP):
        found = pattern.search(text or "")
        if found:
            return float(found.group(1))
    return None


def question(row: dict, i: int) -> dict:
    """One row of either published shape -> {id, category, turns, reference}.

    Example:
        >>> question({"prompt": ["a", "b"], "prompt_id": 7, "category": "math", "reference": ["1", "2"]}, 0)
        {'id': '7', 'category': 'math', 'turns': ['a', 'b'], 'reference': ['1', '2']}
    """
    turns = row.get("turns", row.get("prompt"))
    qid = row.get("question_id", row.get("prompt_id", i))
    if not (isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns)):
        raise HarnessUnavailable(f"MT-Bench row {qid!r} (line {i + 1}) has no list of turns (`turns` or `prompt`); "
                                 "is this HuggingFaceH4/mt_bench_prompts or FastChat's question.jsonl?")
    ref = row.get("reference") or []
    return {"id": str(qid), "category": str(row.get("category") or ""), "turns": list(turns),
            "reference": [str(r) for r in ref] if isinstance(ref, list) else [str(ref)]}


def judge_prompts(rows: list[dict]) -> dict[str, dict]:
    """FastChat's judge prompts by name; the four single-answer ones must be there."""
    by_name = {str(r.get("name")): r for r in rows}
    missing = [n for n in PROMPTS if n not in by_name or "prompt_template" not in by_name[n]]
    if missing:
        raise HarnessUnavailable(f"the MT-Bench judge prompts lack {', '.join(missing)}; stage FastChat's "
                                 f"judge_prompts.jsonl as mt_bench_judge_prompts.jsonl ({itemsets.FASTCHAT_RAW})")
    return by_name


def references(ctx: BenchContext, questions: list[dict]) -> tuple[dict[str, list[str]], str]:
    """Reference answers by question id: FastChat's GPT-4 reference file when it can be had, else the rows'."""
    try:
        ref_rows = itemsets.rows(ctx, "mt_bench_reference")
    except HarnessUnavailable:
        ref_rows = None
    if ref_rows:
        refs = {str(r["question_id"]): list(r["choices"][0]["turns"]) for r in ref_rows
                if isinstance(r.get("choices"), list) and r["choices"]}
        return refs, "FastChat reference_answer/gpt-4.jsonl"
    return {q["id"]: q["reference"] for q in questions if q["reference"]}, "the question rows' `reference` field"


def judge_messages(prompts: dict[str, dict], q: dict, replies: list[str], turn: int,
                   ref: list[str] | None) -> tuple[str, list[dict]]:
    """(prompt name, messages) for grading `turn` (0 or 1) of one answered question."""
    use_ref = q["category"] in NEED_REF
    name = ("single-math-v1" if use_ref else "single-v1") + ("-multi-turn" if turn else "")
    p = prompts[name]
    values = {"question": q["turns"][0], "answer": replies[0]}
    if turn:
        values = {"question_1": q["turns"][0], "question_2": q["turns"][1], "answer_1": replies[0],
                  "answer_2": replies[1]}
    if use_ref:
        if not ref or len(ref) <= turn:
            raise HarnessUnavailable(f"MT-Bench question {q['id']} ({q['category']}) has no reference answer for "
                                     f"turn {turn + 1}; stage FastChat's reference_answer/gpt-4.jsonl as "
                                     "mt_bench_reference.jsonl")
        values.update({"ref_answer_1": ref[0]} if not turn else {"ref_answer_1": ref[0], "ref_answer_2": ref[1]})
    try:
        text = str(p["prompt_template"]).format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise HarnessUnavailable(f"MT-Bench judge prompt {name!r} has a placeholder ftstudy does not fill ({exc}); "
                                 "stage FastChat's own judge_prompts.jsonl") from None
    return name, [{"role": "system", "content": str(p.get("system_prompt", ""))}, {"role": "user", "content": text}]


def prompts_version(prompts: dict[str, dict]) -> str:
    """A version naming the judge prompts actually used: their names and a hash of their text."""
    used = json.dumps([[prompts[n].get("system_prompt"), prompts[n]["prompt_template"]] for n in PROMPTS])
    return "fastchat-single-v1:" + hashlib.sha256(used.encode()).hexdigest()[:10]


def run(ctx: BenchContext, bench: dict) -> HarnessOutput:
    """Answer the questions (both turns), grade each turn with the judge; metric `score` (1-10)."""
    if ctx.dry_run:
        return placeholder(ctx, bench, [])
    judge = from_context(ctx)  # before generating: a missing judge should not cost a generation run
    judge.temperature = float(bench.get("judge_temperature", 0.0))
    prompts = judge_prompts(itemsets.rows(ctx, "mt_bench_judge_prompts"))
    questions = [question(r, i) for i, r in enumerate(itemsets.rows(ctx, "mt_bench"))]
    refs, ref_source = references(ctx, questions)
    rows, ids = subset(questions, ctx)
    gen = gen_settings(ctx, bench, 1024)

    def answer(q: dict) -> list[str]:
        return client.converse(url, name, q["turns"][:2], max_tokens=gen["max_tokens"], seed=gen["seed"],
                               temperature=TEMPERATURE.get(q["category"], 0.7))

    with serving(ctx) as (url, name):
        answers = client.pmap(answer, rows)
    jobs = [(q, rep, k) for q, rep in zip(rows, answers) for k in range(len(rep))]
    max_tokens = int(bench.get("judge_max_tokens", 2048))
    built = [judge_messages(prompts, q, rep, k, refs.get(q["id"])) for q, rep, k in jobs]
    samples, by_turn = graded_turns(rows, answers, judge.map(lambda b: judge.ask(b[1], max_tokens=max_tokens), built),
                                    parse_score)
    by_cat: dict[str, list] = {}
    for s in samples:
        by_cat.setdefault(s["category"], []).extend(g for g in s["ratings"] if g is not None)
    metrics = {"score": mean([g for v in by_turn.values() for g in v]), "n": len(samples), "n_judgments": len(jobs),
               "unparseable": sum(g is None for s in samples for g in s["ratings"])}
    metrics.update({f"score_turn{k}": mean(v) for k, v in sorted(by_turn.items())})
    metrics.update({f"score_{c}": mean(v) for c, v in sorted(by_cat.items()) if v})
    settings = {**gen, "temperature": "per category (FastChat): " + ", ".join(f"{k} {v}" for k, v in TEMPERATURE.items()),
                **judge.settings(), "judge_max_tokens": max_tokens, "judge_prompts": list(PROMPTS),
                "rubric_version": prompts_version(prompts), "reference_answers": ref_source,
                "model_name": name}
    return output(metrics, samples, "score", ids, settings)
