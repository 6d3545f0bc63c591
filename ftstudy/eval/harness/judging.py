"""LLM-as-judge harnesses: a 1-10 grade per answer (`judge-single`, MT-Bench style) and a pairwise win rate
of the fine-tuned model against the base (`judge-pairwise`, AlpacaEval style), with a judge model served at
`ctx.judge_url` (any OpenAI-compatible server; keep the judge fixed across a study, since scores from
different judges do not compare).

Rubrics are files under evals/judge/ (the bench's `rubric:` key) with a `version:` line, a `## System`
section and a `## Prompt` section whose {{placeholders}} ftstudy fills: conversation, reference, persona,
instruction, answer_a, answer_b. The rubric's version and the judge model go into HarnessOutput.settings.

Single: every turn of every question is judged on the conversation up to that turn; a judgment without a
readable "Rating: [[N]]" (N in 1..10) is recorded as None and counted in `unparseable`, never guessed. An
item's score is the mean of its readable ratings; `score` is the mean over items that have one.

Pairwise: each item is judged twice, fine-tuned as A then as B, which cancels a judge's preference for a
position; per order win = 1, tie = 0.5, loss = 0, and the item scores the mean of its readable orders.
The base answers come from `ctx.base_outputs` (id -> text: the base run's samples). The base run itself
(`ctx.tag == "base"`, no base_outputs) is the reference run: it only generates, needs no judge, and scores
0.5 per item by definition, so its samples are the base outputs a later run is compared with.

Example:
    >>> parse_rating("Clear and correct. Rating: [[8]]"), parse_verdict("A is better. [[A]]")
    (8.0, 'A')
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ftstudy.eval.harness import BenchContext, HarnessOutput, HarnessUnavailable, capped, gencache
from ftstudy.eval.harness import judge as judges
from ftstudy.eval.harness.judge import Judge, from_context, graded_turns
from ftstudy.data import benchmark_items as itemsets
from ftstudy.eval.harness.generative import converse, evals_items, gen_settings, output, placeholder, subset
from ftstudy.core.bundled import evals_dir
from ftstudy.eval.stats import mean

_RATING = re.compile(r"Rating:\s*\[\[\s*(\d+(?:\.\d+)?)\s*\]\]", re.I)
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")
_FT_SCORE = {("ft_first", "A"): 1.0, ("ft_first", "B"): 0.0, ("base_first", "A"): 0.0, ("base_first", "B"): 1.0}


@dataclass
class Rubric:
    path: Path
    version: str
    system: str
    prompt: str

    def messages(self, **values: str) -> list[dict]:
        """The judge's messages with the rubric's {{placeholders}} filled (unknown ones are left visible)."""
        text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.get(m.group(1), m.group(0)), self.prompt)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": text}]


def load_rubric(bench: dict) -> Rubric:
    """Read evals/<bench rubric>: `version: X`, `## System`, `## Prompt` (see the rubric files).

    Example:
        >>> load_rubric({"rubric": "judge/single_v1.md"}).version
        'single_v1'
    """
    if not bench.get("rubric"):
        raise HarnessUnavailable(f"benchmark {bench.get('id', bench.get('task'))!r} declares no rubric file")
    path = evals_dir() / bench["rubric"]
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessUnavailable(f"cannot read the rubric {path}: {exc.strerror}") from None
    version = re.search(r"^version:\s*(\S+)", text, re.M)
    parts = re.split(r"^## (System|Prompt)\s*$", text, flags=re.M)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    if not version or set(sections) != {"System", "Prompt"}:
        raise HarnessUnavailable(f"{path} needs a 'version:' line and '## System' and '## Prompt' sections")
    return Rubric(path, version.group(1), sections["System"], sections["Prompt"])


def parse_rating(text: str) -> float | None:
    """The last "Rating: [[N]]" in a judgment, N in 1..10; None when there is none (or it is out of range).

    Example:
        >>> parse_rating("Rating: [[11]]") is None, parse_rating("rating: [[ 7.5 ]]")
        (True, 7.5)
    """
    found = _RATING.findall(text or "")
    value = float(found[-1]) if found else None
    return value if value is not None and 1.0 <= value <= 10.0 else None


def parse_verdict(text: str) -> str | None:
    """The last [[A]], [[B]] or [[C]] (tie) in a pairwise judgment; None when there is none.

    Example:
        >>> parse_verdict("[[C]]"), parse_verdict("no idea")
        ('C', None)
    """
    found = _VERDICT.findall(text or "")
    return found[-1] if found else None


def transcript(turns: list[str], replies: list[str], system: str | None = None) -> str:
    """The conversation as the judge reads it.

    Example:
        >>> print(transcript(["Hi"], ["Hello!"]))
        [User]
        Hi
        <BLANKLINE>
        [Assistant]
        Hello!
    """
    parts = [f"[System prompt given to the assistant]\n{system}"] if system else []
    for user, reply in zip(turns, replies):
        parts += [f"[User]\n{user}", f"[Assistant]\n{reply}"]
    return "\n\n".join(parts)


def judge_settings(bench: dict, rubric: Rubric, judge: Judge) -> dict:
    return {**judge.settings(), "rubric": str(rubric.path.relative_to(evals_dir())), "rubric_version": rubric.version,
            "judge_seed": judge.seed, "judge_max_tokens": int(bench.get("judge_max_tokens", 512))}


def preflight(ctx: BenchContext, bench: dict) -> list[str]:
    """Before any generation: the rubric file, and the judge (a pairwise base run is the reference: no judge)."""
    found = []
    try:
        load_rubric(bench)
    except HarnessUnavailable as exc:
        found.append(str(exc))
    if bench["harness"] == "judge-pairwise" and ctx.tag == "base" and ctx.base_outputs is None:
        return found
    return found + judges.preflight(ctx)


def _reference(row: dict, turn: int) -> str:
    ref = row.get("reference")
    if isinstance(ref, list):
        ref = ref[turn] if turn < len(ref) else None
    elif turn:
        ref = None
    return str(ref) if ref else "none"


def run_single(ctx: BenchContext, bench: dict) -> HarnessOutput:
    """Answer every question (all turns), then grade every turn 1-10 with the judge; metric `score`."""
    rubric = load_rubric(bench)
    if ctx.dry_run:
        return placeholder(ctx, bench, [])
    judge = from_context(ctx)  # before generating: a missing judge should not cost a generation run
    settings = judge_settings(bench, rubric, judge)
    rows, ids = subset(evals_items(bench), ctx)
    gen = gen_settings(ctx, bench, 1024)
    cache = gencache.for_bench(ctx, bench, gen)
    replies, name = gencache.answers(ctx, cache, rows, lambda url, name, r: converse(url, name, r["turns"], r.get("system"), gen))

    def grade(job: tuple[dict, list[str], int]) -> str:
        row, rep, k = job
        convo = transcript(row["turns"][: k + 1], rep[: k + 1], row.get("system"))
        msgs = rubric.messages(conversation=convo, reference=_reference(row, k),
                               persona=str(row.get("persona") or row.get("system") or "none"))
        return judge.ask(msgs, max_tokens=settings["judge_max_tokens"])

    jobs = [(row, rep, k) for row, rep in zip(rows, replies) for k in range(len(rep))]
    samples, by_turn = graded_turns(rows, replies, judge.map(grade, jobs), parse_rating)
    scored = [s["score"] for s in samples if s["score"] is not None]
    metrics = {"score": mean(scored), "n": len(samples), "rated": len(scored),
               "n_judgments": len(jobs), "unparseable": sum(r is None for s in samples for r in s["ratings"])}
    metrics.update({f"score_turn{k}": mean(v) for k, v in sorted(by_turn.items())})
    cache.remove()  # the result is complete: it, not the cache, is what a rerun reuses
    return output(metrics, samples, "score", ids, {**gen, **settings, "model_name": name})


def bench_items(ctx: BenchContext, bench: dict) -> list[dict]:
    """The items a judged benchmark asks about: a public item set (`items:`, see ftstudy.data.benchmark_items),
    cut to a seeded `max_items` subset when it declares one, or its probe file under evals/ (`questions:`)."""
    if not bench.get("items"):
        return evals_items(bench)
    return capped(itemsets.prompt_items(itemsets.rows(ctx, bench["items"])), bench)


def instruction_of(row: dict) -> str:
    return str(row.get("instruction") or row.get("prompt") or row["turns"][0])


def run_pairwise(ctx: BenchContext, bench: dict) -> HarnessOutput:
    """Fine-tuned vs base answers, judged in both orders; metric `win_rate` (0.5 = no difference)."""
    rubric = load_rubric(bench)
    if ctx.dry_run:
        return placeholder(ctx, bench, [])
    rows, ids = subset(bench_items(ctx, bench), ctx)
    reference_run = ctx.base_outputs is None
    if reference_run and ctx.tag != "base":
        raise HarnessUnavailable(
            f"pairwise judging compares with the base model's answers, and none were given: run this benchmark "
            f"on the base model first (its samples are the base outputs), then on {ctx.tag!r}")
    base = {str(k): v for k, v in (ctx.base_outputs or {}).items()}  # JSON round trips turn int ids into str
    if not reference_run:
        missing = [i for i in ids if i not in base]
        if missing:
            raise HarnessUnavailable(f"the base outputs lack {len(missing)} item(s) (e.g. {missing[:3]}); rerun the "
                                     f"base model with the same --limit and seed")
        judge = from_context(ctx)
    gen = gen_settings(ctx, bench, 1024)
    cache = gencache.for_bench(ctx, bench, gen)
    answers, name = gencache.answers(ctx, cache, rows,
                                     lambda url, name, r: converse(url, name, [instruction_of(r)], r.get("system"), gen)[0])
    if reference_run:
        cache.remove()  # the result is complete: it, not the cache, is what a rerun reuses
        samples = [{"id": r["id"], "output": a, "score": 0.5} for r, a in zip(rows, answers)]
        return output({"win_rate": 0.5, "n": len(samples)}, samples, "win_rate", ids,
                      {**gen, "reference_run": True, "rubric_version": rubric.version, "model_name": name})
    settings = judge_settings(bench, rubric, judge)

    def compare(job: tuple[dict, str, str]) -> str:
        row, ans, order = job
        ref = base[str(row["id"])]
        a, b = (ans, ref) if order == "ft_first" else (ref, ans)
        msgs = rubric.messages(instruction=instruction_of(row), answer_a=a, answer_b=b)
        return judge.ask(msgs, max_tokens=settings["judge_max_tokens"])

    orders = ("ft_first", "base_first")
    judgments = iter(judge.map(compare, [(r, a, o) for r, a in zip(rows, answers) for o in orders]))
    samples = []
    for row, ans in zip(rows, answers):
        texts = [next(judgments) for _ in orders]
        verdicts = [parse_verdict(t) for t in texts]
        per_order = [None if v is None else 0.5 if v == "C" else _FT_SCORE[(o, v)] for o, v in zip(orders, verdicts)]
        readable = [s for s in per_order if s is not None]
        samples.append({"id": row["id"], "output": ans, "base_output": base[str(row["id"])],
                        "verdicts": dict(zip(orders, verdicts)), "order_scores": per_order, "judgments": texts,
                        "score": mean(readable)})
    scored = [s["score"] for s in samples if s["score"] is not None]
    both = [s for s in samples if None not in s["order_scores"]]
    flat = [x for s in samples for x in s["order_scores"] if x is not None]
    metrics = {"win_rate": mean(scored), "n": len(samples), "rated": len(scored),
               "unparseable": sum(v is None for s in samples for v in s["verdicts"].values()),
               "wins": flat.count(1.0), "ties": flat.count(0.5), "losses": flat.count(0.0),
               # how often the judge gives the same verdict whichever answer it read first
               "position_consistency": mean([s["order_scores"][0] == s["order_scores"][1] for s in both])}
    cache.remove()
    return output(metrics, samples, "win_rate", ids, {**gen, **settings, "orders": list(orders), "model_name": name})


def harness_version() -> str:
    """ftstudy's own harness: ftstudy's version (what generative.output records)."""
    from ftstudy import __version__

    return f"ftstudy {__version__}"
