"""Judge grades on named criteria (`judge-criteria`): each answer graded 1-5 on every criterion the rubric
lists, as the study plan asks for creative writing (creativity, coherence, engagement, grammar).

The rubric (evals/judge/<rubric>, versioned) ends each judgment with one `Name: [[N]]` line per criterion; a
criterion without a readable grade in 1..5 is recorded as None, counted in `unparseable`, never guessed.
Metrics: the mean of each criterion over the items that have it, and `criteria_mean`, the mean over items of
an item's mean readable grade (the item's `score`). Items come as in judge-pairwise (`items:` or
`questions:`), so the criteria and the pairwise win rate of one experiment grade the same prompts.

Example:
    >>> parse_grades("Fresh idea. Creativity: [[4]]\\nCoherence: [[5]]\\nGrammar: [[9]]", CRITERIA)
    {'creativity': 4.0, 'coherence': 5.0, 'engagement': None, 'grammar': None}
"""
from __future__ import annotations

import re

from ftstudy.eval import client
from ftstudy.eval.harness import BenchContext, HarnessOutput, capped
from ftstudy.eval.harness.generative import converse, gen_settings, output, placeholder, serving, subset
from ftstudy.eval.harness.judge import from_context
from ftstudy.eval.harness.judging import instruction_of, judge_settings, bench_items, load_rubric
from ftstudy.eval.stats import mean

CRITERIA = ("creativity", "coherence", "engagement", "grammar")


def parse_grades(text: str, criteria: tuple[str, ...] | list[str], top: int = 5) -> dict[str, float | None]:
    """The last `Name: [[N]]` per criterion (N in 1..top), None where absent or out of range."""
    out: dict[str, float | None] = {}
    for name in criteria:
        found = re.findall(rf"{re.escape(name)}\s*:\s*\[\[\s*(\d+(?:\.\d+)?)\s*\]\]", text or "", re.I)
        value = float(found[-1]) if found else None
        out[name] = value if value is not None and 1.0 <= value <= top else None
    return out


def summary_items(ctx: BenchContext, bench: dict) -> list[dict]:
    """Summarization rows (the rouge benchmark's data: `<data-dir>/<task>.jsonl` or the hub) as requests to
    summarize, worded as the rouge harness words them."""
    from ftstudy.data.benchmark_items import data_rows
    from ftstudy.eval.harness.generative import SUMMARY_PROMPTS, summary_row

    task = bench["summaries_of"]
    prompt = SUMMARY_PROMPTS.get(task, "Summarize the following article.")
    rows = [{"id": r["id"], "instruction": f"{prompt}\n\n{r['document']}"}
            for r in (summary_row(x, i) for i, x in enumerate(data_rows(task, ctx.data_dir, ctx.commands)))]
    return capped(rows, bench)


def answer_then_judge(ctx: BenchContext, judge, rubric, rows: list[dict], gen: dict, max_tokens: int,
                      system=lambda r: r.get("system")) -> tuple[list[str], list[str], str]:
    """Serve the model, answer every row, then have the judge read each (instruction, answer) with the rubric.
    Returns (answers, judge replies, the served model's name)."""
    with serving(ctx) as (url, name):
        answers = client.pmap(lambda r: converse(url, name, [instruction_of(r)], system(r), gen)[0], rows)
    replies = judge.map(lambda job: judge.ask(rubric.messages(instruction=instruction_of(job[0]), answer=job[1]),
                                              max_tokens=max_tokens), list(zip(rows, answers)))
    return answers, replies, name


def run(ctx: BenchContext, bench: dict) -> HarnessOutput:
    """Answer every item, then grade each answer on every criterion; metric `criteria_mean` (1-5)."""
    rubric = load_rubric(bench)
    if ctx.dry_run:
        return placeholder(ctx, bench, [])
    judge = from_context(ctx)
    criteria = tuple(bench.get("criteria", CRITERIA))
    settings = judge_settings(bench, rubric, judge)
    rows, ids = subset(summary_items(ctx, bench) if bench.get("summaries_of") else bench_items(ctx, bench), ctx)
    gen = gen_settings(ctx, bench, 1024)
    answers, judgments, name = answer_then_judge(ctx, judge, rubric, rows, gen, settings["judge_max_tokens"])
    samples = []
    for row, ans, text in zip(rows, answers, judgments):
        grades = parse_grades(text, criteria)
        readable = [g for g in grades.values() if g is not None]
        samples.append({"id": row["id"], "output": ans, "grades": grades, "judgment": text,
                        "score": mean(readable)})
    metrics: dict = {"n": len(samples), "unparseable": sum(g is None for s in samples for g in s["grades"].values())}
    for c in criteria:
        vals = [s["grades"][c] for s in samples if s["grades"][c] is not None]
        metrics[c] = mean(vals)
    scored = [s["score"] for s in samples if s["score"] is not None]
    metrics["criteria_mean"] = mean(scored)
    return output(metrics, samples, "score", ids, {**gen, **settings, "criteria": list(criteria), "model_name": name})


def preflight(ctx: BenchContext, bench: dict) -> list[str]:
    """Before any generation: the rubric file and the judge (reachable, accepting the key)."""
    from ftstudy.eval.harness import judging

    return judging.preflight(ctx, bench)
