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
* the judge's reply is read as FastChat does: `[[N]]`, else `[N]`; a judgment with neither is FastChat's -1:
  counted in `unparseable` and left out of the means. A rating outside FastChat's 1-10 scale (`[[1000]]`) is
  read the same way, counted in `out_of_scale` too (a deviation: FastChat would average it in, and one such
  rating moves the mean by more than the whole scale);
* `score` is the mean of all readable turn grades; `score_turn1/2` and `score_<category>` break it down.

Items are FastChat's own files at the pinned commit, keyed by its `question_id`: `question.jsonl` (80 questions,
81-160), `reference_answer/gpt-4.jsonl` (the GPT-4 reference answers of the 30 math, reasoning and coding
questions, 101-130) and `judge_prompts.jsonl`, read from `<data-dir>/mt_bench.jsonl`,
`mt_bench_reference.jsonl` and `mt_bench_judge_prompts.jsonl` (`ftstudy stage-data DIR` writes them), else
from FastChat's repository. `preflight` checks, before anything generates, that all 80 questions are there,
that each of the 30 joins its two-turn reference, that the judge prompts are FastChat's, and that the judge
answers and accepts the key. Generations are cached per item (gencache), so a killed run resumes.

Example:
    >>> parse_score("The answer is right. Rating: [[9]]"), parse_score("score [7.5]"), parse_score("none")
    (9.0, 7.5, None)
    >>> on_scale(parse_score("Rating: [[1000]]")) is None
    True
"""
from __future__ import annotations

import hashlib
import json
import re

from ftstudy.core.errors import UserError
from ftstudy.eval import client
from ftstudy.eval.harness import BenchContext, HarnessOutput, HarnessUnavailable
from ftstudy.data import benchmark_items as itemsets
from ftstudy.eval.harness import gencache, judge as judges
from ftstudy.eval.harness.generative import gen_settings, output, placeholder, subset
from ftstudy.eval.harness.judge import from_context, graded_turns
from ftstudy.eval.stats import mean

NEED_REF = ("math", "reasoning", "coding")
TEMPERATURE = {"writing": 0.7, "roleplay": 0.7, "extraction": 0.0, "math": 0.0, "coding": 0.0, "reasoning": 0.0,
               "stem": 0.1, "humanities": 0.1}
PROMPTS = ("single-v1", "single-math-v1", "single-v1-multi-turn", "single-math-v1-multi-turn")
N_QUESTIONS, N_REFERENCES = 80, 30  # FastChat's question.jsonl, and its questions that need a reference
ITEM_FILES = ("mt_bench", "mt_bench_reference", "mt_bench_judge_prompts")
_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")
_FIELDS = {"question": "Q", "answer": "A", "ref_answer_1": "R1", "ref_answer_2": "R2", "question_1": "Q1",
           "question_2": "Q2", "answer_1": "A1", "answer_2": "A2"}


def parse_score(text: str) -> float | None:
    """FastChat's reading of a single-answer judgment: the first [[N]], else the first [N]; None if neither."""
    for pattern in (_SCORE, _SCORE_BACKUP):
        found = pattern.search(text or "")
        if found:
            return float(found.group(1))
    return None


def on_scale(value: float | None) -> float | None:
    """A rating on FastChat's 1-10 scale, else None (unreadable, as FastChat's -1)."""
    return value if value is not None and 1.0 <= value <= 10.0 else None


def question(row: dict, i: int) -> dict:
    """One question.jsonl row -> {id, category, turns}.

    Example:
        >>> question({"question_id": 81, "category": "writing", "turns": ["a", "b"]}, 0)
        {'id': '81', 'category': 'writing', 'turns': ['a', 'b']}
    """
    turns = row.get("turns", row.get("prompt"))
    qid = row.get("question_id", row.get("prompt_id", i))
    if not (isinstance(turns, list) and turns and all(isinstance(t, str) for t in turns)):
        raise HarnessUnavailable(f"MT-Bench row {qid!r} (line {i + 1}) has no list of turns; is this FastChat's "
                                 "question.jsonl?")
    return {"id": str(qid), "category": str(row.get("category") or ""), "turns": list(turns)}


def judge_prompts(rows: list[dict]) -> dict[str, dict]:
    """FastChat's judge prompts by name; the four single-answer ones must be there."""
    by_name = {str(r.get("name")): r for r in rows}
    missing = [n for n in PROMPTS if n not in by_name or "prompt_template" not in by_name[n]]
    if missing:
        raise HarnessUnavailable(f"the MT-Bench judge prompts lack {', '.join(missing)}; stage FastChat's "
                                 f"judge_prompts.jsonl as mt_bench_judge_prompts.jsonl ({itemsets.FASTCHAT_RAW})")
    return by_name


def references(rows: list[dict]) -> dict[str, list[str]]:
    """FastChat's reference answers (reference_answer/gpt-4.jsonl) by question_id."""
    return {str(r["question_id"]): [str(t) for t in r["choices"][0]["turns"]] for r in rows
            if "question_id" in r and isinstance(r.get("choices"), list) and r["choices"]
            and isinstance(r["choices"][0], dict) and isinstance(r["choices"][0].get("turns"), list)}


def items(ctx: BenchContext) -> tuple[list[dict], dict[str, list[str]], dict[str, dict]]:
    """(questions, references by id, judge prompts by name), each file read once per run (ctx.cache)."""
    rows = {}
    for name in ITEM_FILES:
        if ("mt-bench", name) not in ctx.cache:
            ctx.cache[("mt-bench", name)] = itemsets.rows(ctx, name)
        rows[name] = ctx.cache[("mt-bench", name)]
    return ([question(r, i) for i, r in enumerate(rows["mt_bench"])], references(rows["mt_bench_reference"]),
            judge_prompts(rows["mt_bench_judge_prompts"]))


def problems(questions: list[dict], refs: dict[str, list[str]], prompts: dict[str, dict]) -> list[str]:
    """What stops MT-Bench from being scored as FastChat scores it, one line each (empty: ready)."""
    out, fix = [], "restage FastChat's files with `ftstudy stage-data DIR`"
    ids = [q["id"] for q in questions]
    if len(questions) != N_QUESTIONS or len(set(ids)) != len(ids):
        out.append(f"MT-Bench holds {len(set(ids))} distinct questions, FastChat's question.jsonl has {N_QUESTIONS} "
                   f"(question_id 81-160): {fix}")
    odd = sorted({q["category"] for q in questions} - set(TEMPERATURE))
    short = [q["id"] for q in questions if len(q["turns"]) != 2]
    if odd or short:
        out.append(f"MT-Bench questions of unknown categories {odd} or without two turns {short[:5]}: {fix}")
    need = [q["id"] for q in questions if q["category"] in NEED_REF]
    missing = [i for i in need if len(refs.get(i) or []) < 2]
    if missing:
        hashed = " (the questions carry hashed ids, as HuggingFaceH4/mt_bench_prompts does; FastChat's answers are "\
                 "keyed by question_id)" if not set(need) & set(refs) else ""
        out.append(f"{len(missing)} of the {len(need)} math, reasoning and coding MT-Bench questions have no two-turn "
                   f"reference answer (question_id {', '.join(missing[:5])}){hashed}: stage FastChat's "
                   f"question.jsonl and reference_answer/gpt-4.jsonl together ({fix.split(' with ')[1]})")
    elif len(need) != N_REFERENCES and not out:
        out.append(f"MT-Bench has {len(need)} questions needing a reference answer, FastChat's has {N_REFERENCES}: {fix}")
    for name in PROMPTS:
        try:
            str(prompts[name]["prompt_template"]).format(**_FIELDS)
        except (KeyError, IndexError, ValueError) as exc:
            out.append(f"MT-Bench judge prompt {name!r} has a placeholder ftstudy does not fill ({exc}): {fix}")
    return out


def preflight(ctx: BenchContext, bench: dict) -> list[str]:
    """Before any generation: FastChat's items complete, a reference for each of the 30, the judge ready."""
    found = []
    try:
        found += problems(*items(ctx))
    except UserError as exc:  # a file missing or unreadable: the message names it and how to stage it
        found.append(str(exc))
    return found + judges.preflight(ctx)


def judge_rubric(ctx: BenchContext, bench: dict) -> str:
    """The judge prompts' identity: their names and a hash of the four prompts used (records, find_reusable)."""
    return prompts_version(items(ctx)[2])


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
        if not ref or len(ref) < 2:
            raise HarnessUnavailable(f"MT-Bench question {q['id']} ({q['category']}) has no reference answer; stage "
                                     "FastChat's reference_answer/gpt-4.jsonl as mt_bench_reference.jsonl")
        values.update({"ref_answer_1": ref[0], "ref_answer_2": ref[1]})  # FastChat fills both, whichever turn
    text = str(p["prompt_template"]).format(**values)
    return name, [{"role": "system", "content": str(p.get("system_prompt", ""))}, {"role": "user", "content": text}]


def prompts_version(prompts: dict[str, dict]) -> str:
    """A version naming the judge prompts actually used: their names and a hash of their text."""
    used = json.dumps([[prompts[n].get("system_prompt"), prompts[n]["prompt_template"]] for n in PROMPTS])
    return "fastchat-single-v1:" + hashlib.sha256(used.encode()).hexdigest()[:10]


def run(ctx: BenchContext, bench: dict) -> HarnessOutput:
    """Answer the questions (both turns), grade each turn with the judge; metric `score` (1-10)."""
    if ctx.dry_run:
        return placeholder(ctx, bench, [])
    questions, refs, prompts = items(ctx)
    trouble = problems(questions, refs, prompts)  # bench runs preflight first; a direct caller is checked too
    if trouble:
        raise HarnessUnavailable(trouble[0])
    judge = from_context(ctx)  # before generating: a missing judge should not cost a generation run
    judge.temperature = judges.temperature_of(ctx, bench)
    rows, ids = subset(questions, ctx)
    gen = gen_settings(ctx, bench, 1024)
    cache = gencache.for_bench(ctx, bench, {**gen, "temperature": TEMPERATURE})

    def answer(url: str, name: str, q: dict) -> list[str]:
        return client.converse(url, name, q["turns"][:2], max_tokens=gen["max_tokens"], seed=gen["seed"],
                               temperature=TEMPERATURE.get(q["category"], 0.7))

    answers, name = gencache.answers(ctx, cache, rows, answer)
    jobs = [(q, rep, k) for q, rep in zip(rows, answers) for k in range(len(rep))]
    max_tokens = int(bench.get("judge_max_tokens", 2048))
    built = [judge_messages(prompts, q, rep, k, refs.get(q["id"])) for q, rep, k in jobs]
    # judgments are cached per turn too (keyed by the judge and the exact messages): a rerun after a judge
    # failure asks again only what was not answered
    judged = gencache.GenCache(ctx.work_dir(bench["id"]), {"judgments": {**judge.settings(), "judge_concurrency": None,
                               "judge_url": judges.host(judge.url), "seed": judge.seed, "max_tokens": max_tokens}}, root=ctx.out_dir)
    asks = [{"id": f"{q['id']}:{k + 1}", "messages": b[1]} for (q, _, k), b in zip(jobs, built)]
    texts = gencache.generate(judged, asks, lambda a: judge.ask(a["messages"], max_tokens=max_tokens),
                              workers=max(1, int(judge.concurrency)))
    samples, by_turn = graded_turns(rows, answers, texts, lambda t: on_scale(parse_score(t)))
    by_cat: dict[str, list] = {}
    for s in samples:
        by_cat.setdefault(s["category"], []).extend(g for g in s["ratings"] if g is not None)
    metrics = {"score": mean([g for v in by_turn.values() for g in v]), "n": len(samples), "n_judgments": len(jobs),
               "unparseable": sum(g is None for s in samples for g in s["ratings"]),
               "out_of_scale": sum(parse_score(t) is not None and on_scale(parse_score(t)) is None for t in texts)}
    metrics.update({f"score_turn{k}": mean(v) for k, v in sorted(by_turn.items())})
    metrics.update({f"score_{c}": mean(v) for c, v in sorted(by_cat.items()) if v})
    settings = {**gen, "temperature": "per category (FastChat): " + ", ".join(f"{k} {v}" for k, v in TEMPERATURE.items()),
                **judge.settings(), "judge_max_tokens": max_tokens, "judge_prompts": list(PROMPTS),
                "rubric_version": prompts_version(prompts), "model_name": name,
                "reference_answers": f"FastChat reference_answer/gpt-4.jsonl ({itemsets.FASTCHAT_COMMIT[:8]}), "
                                     f"joined by question_id for all {sum(q['category'] in NEED_REF for q in questions)}",
                "rating_rule": "FastChat's [[N]], else [N]; none, or outside 1-10, is unparseable and left out",
                "resumed_items": len(rows) - cache.generated, "resumed_judgments": len(asks) - judged.generated}
    cache.remove()  # the result is complete: it, not the caches, is what a rerun reuses
    judged.remove()
    return output(metrics, samples, "score", ids, settings)


def harness_version() -> str:
    """ftstudy's own harness: ftstudy's version (what generative.output records)."""
    from ftstudy import __version__

    return f"ftstudy {__version__}"
