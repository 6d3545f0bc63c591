"""AlpacaEval 2: the 805 instructions, judged by the `alpaca-eval` package itself (its own pinned environment,
`ftstudy setup alpaca_eval`) with its default annotator pointed at the user's judge endpoint.

* items: the package's reference file `alpaca_eval_gpt4_baseline.json` (instruction, output = GPT-4 Turbo's
  answer, generator, dataset), from `<data-dir>/alpaca_eval.json` or the tatsu-lab/alpaca_eval hub repo;
* the model answers each instruction (greedy, seed fixed, up to 2048 new tokens), served like every other
  generative benchmark;
* headline: `length_controlled_winrate` against the package's reference outputs (AlpacaEval's own GLM);
  also `win_rate` against them; secondary: `win_rate_vs_base` against the base model's answers (the base
  run's samples), judged by the same annotator. All as fractions (AlpacaEval prints percentages).

With `--limit`, the seeded subset keeps each instruction's position among the 805 (its item id): the package's
length-controlled GLM looks up each instruction's difficulty by that position (`glm_winrate._get_featurized_data`
reads the annotations' index), so the subset is scored with its own instructions' difficulties, not those of
the first N. Answers are cached per item (gencache): a killed run resumes without regenerating them.
`preflight` checks, before anything generates, the environment imports `alpaca_eval`, the items are readable
(all 805 for the length-controlled metric) and the judge answers and accepts the key.

Offline: the length-controlled metric downloads `df_gamed.csv` and `instruction_difficulty.csv` from the
tatsu-lab/alpaca_eval hub repo through huggingface_hub, so an offline machine needs them in its HF cache
(stage them on a connected one); a benchmark declaring `fn_metric: get_winrate` skips that metric.

Example:
    >>> comparisons(True, "ref.json", None)[0]["fn_metric"]
    'get_length_controlled_winrate'
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ftstudy.eval import client
from ftstudy.core import tool_envs as envs
from ftstudy.core import redact, runner
from ftstudy.core.fsio import atomic_write
from ftstudy.core.errors import UserError
from ftstudy.eval.harness import BenchContext, HarnessOutput, HarnessUnavailable, gencache
from ftstudy.data import benchmark_items as itemsets
from ftstudy.eval.harness import judge as judges
from ftstudy.eval.harness.generative import gen_settings, output, placeholder, subset
from ftstudy.eval.harness.judge import from_context
from ftstudy.core.bundled import TOOL_SCRIPTS

RUNNER = TOOL_SCRIPTS / "alpaca_eval_run.py"
LC = "get_length_controlled_winrate"
N_ITEMS = 805
LC_FILES = ("df_gamed.csv", "instruction_difficulty.csv")
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"


def comparisons(lc: bool, reference: str, base: str | None) -> list[dict]:
    """What the package is asked to judge: model vs its reference outputs, and vs the base model's answers."""
    out = [{"name": "reference", "reference_outputs": reference, "fn_metric": LC if lc else "get_winrate"}]
    if base:
        out.append({"name": "base", "reference_outputs": base, "fn_metric": "get_winrate"})
    return out


def alpaca_eval_argv(python: str | Path, spec: Path) -> list[str]:
    return [str(python), str(RUNNER), str(spec)]


def child_env(judge) -> tuple[dict[str, str], dict[str, str]]:
    """(environment, secret environment) of the package's run: the judge's URL for its OpenAI client, and
    the key, which reaches the child's environment only (runner logs it as <hidden>)."""
    key = judge.headers().get("Authorization", "Bearer EMPTY").split(" ", 1)[1]
    env, secret = {"OPENAI_CLIENT_CONFIG_PATH": os.devnull, "IS_ALPACA_EVAL_2": "True",
                   "HF_DATASETS_TRUST_REMOTE_CODE": "0"}, {"OPENAI_API_KEY": key}
    base = client.endpoint(judge.url, "/v1")
    # a URL that carries a credential (user-info, ?key=) is a secret too: logged as <hidden>, like the key
    (secret if redact.url(base) != base else env)["OPENAI_API_BASE"] = base
    return env, secret


def _rows(ctx: BenchContext) -> list[dict]:
    """The items, each with its position among the file's rows as its id (the GLM's instruction index)."""
    if ("alpaca-eval", "rows") not in ctx.cache:
        ctx.cache[("alpaca-eval", "rows")] = itemsets.rows(ctx, "alpaca_eval")
    rows = ctx.cache[("alpaca-eval", "rows")]
    bad = [i for i, r in enumerate(rows) if not isinstance(r.get("instruction"), str) or not isinstance(r.get("output"), str)]
    if bad:
        raise HarnessUnavailable(f"AlpacaEval rows {bad[:3]} have no `instruction` or `output`: is this "
                                 "alpaca_eval_gpt4_baseline.json?")
    return [{**r, "id": str(i)} for i, r in enumerate(rows)]


def version() -> str | None:
    """The installed alpaca_eval's version, read from its metadata without starting the environment."""
    try:
        found = sorted(envs.location("alpaca_eval").glob("lib/python*/site-packages/alpaca_eval-*.dist-info"))
    except UserError:
        return None
    return found[-1].name[len("alpaca_eval-"):-len(".dist-info")] if found else None


def judge_rubric(ctx: BenchContext, bench: dict) -> str:
    """The annotator is the package's own prompt and parsing: its name and the package version name it."""
    return f"alpaca_eval {version()} {ANNOTATOR}"


def preflight(ctx: BenchContext, bench: dict) -> list[str]:
    """Before any generation: the environment imports alpaca_eval, the items are there (all 805 for the
    length-controlled metric, whose GLM needs their positions, and its two hub files when offline), the judge."""
    found = []
    try:
        python = envs.bin_path("alpaca_eval")
        code, _ = runner.capture([str(python), "-c", "import alpaca_eval.main"], timeout=120)
        if code != 0:
            found.append(f"the alpaca_eval environment at {envs.location('alpaca_eval')} cannot import alpaca_eval "
                         f"(exit code {code}); rebuild it: rm -r that folder, then ftstudy setup alpaca_eval")
    except UserError as exc:
        found.append(" ".join(str(exc).split()))
    lc = bench.get("fn_metric", LC) == LC
    try:
        rows = _rows(ctx)
        if lc and len(rows) != N_ITEMS:
            found.append(f"AlpacaEval's length-controlled win rate needs all {N_ITEMS} instructions in their order (its "
                         f"GLM reads each one's difficulty by position); the items hold {len(rows)}: stage the whole "
                         "alpaca_eval_gpt4_baseline.json (ftstudy stage-data DIR) and take a subset with --limit")
    except UserError as exc:
        found.append(str(exc))
    home = Path(ctx.data_dir) / "hf_home" if ctx.data_dir else None
    if lc and home is not None and home.is_dir():
        missing = [f for f in LC_FILES if not any(home.rglob(f))]
        if missing:
            found.append(f"{home} lacks AlpacaEval's length-control file(s) {', '.join(missing)} (offline runs read "
                         "them there): rerun `ftstudy stage-data` on a connected machine, or declare fn_metric: get_winrate")
    return found + judges.preflight(ctx)


def _frac(v) -> float | None:
    return None if v is None or v != v else float(v) / 100.0


def run(ctx: BenchContext, bench: dict) -> HarnessOutput:
    """Generate the answers, let alpaca-eval judge them; metric `length_controlled_winrate` (fraction)."""
    if ctx.dry_run:
        return placeholder(ctx, bench, [alpaca_eval_argv("<alpaca_eval-env>/bin/python", Path("<work>/spec.json"))])
    python = envs.bin_path("alpaca_eval")
    judge = from_context(ctx)
    rows, ids = subset(_rows(ctx), ctx)
    base = {str(k): v for k, v in (ctx.base_outputs or {}).items()}
    if base and any(i not in base for i in ids):
        raise HarnessUnavailable("the base outputs lack some AlpacaEval items; rerun the base model with the same "
                                 "--limit and seed")
    gen = gen_settings(ctx, bench, 2048)
    cache = gencache.for_bench(ctx, bench, gen)
    answers, name = gencache.answers(ctx, cache, rows, lambda url, name, r: client.chat_reply(
        url, name, [{"role": "user", "content": r["instruction"]}], max_tokens=gen["max_tokens"], seed=gen["seed"]).text)
    work = ctx.work_dir(bench["id"])
    work.mkdir(parents=True, exist_ok=True)
    for old in work.iterdir():  # an earlier run's files (the package's annotation cache among them), not the answers
        if not old.name.startswith(gencache.PREFIX):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    strip = lambda r: {k: r.get(k) for k in ("instruction", "output", "generator", "dataset")}
    atomic_write(work / "reference.json", json.dumps([strip(r) for r in rows]))
    atomic_write(work / "model.json", json.dumps([{**strip(r), "output": a, "generator": ctx.tag} for r, a in zip(rows, answers)]))
    base_path = None
    if base and ctx.tag != "base":
        base_path = work / "base.json"
        atomic_write(base_path, json.dumps([{**strip(r), "output": base[r["id"]], "generator": "base"} for r in rows]))
    lc = bench.get("fn_metric", LC) == LC
    spec = {"work": str(work), "judge_model": judge.model, "model_outputs": str(work / "model.json"),
            "result": str(work / "result.json"), "index": {r["instruction"]: int(r["id"]) for r in rows},
            "comparisons": comparisons(lc, str(work / "reference.json"), str(base_path) if base_path else None)}
    atomic_write(work / "spec.json", json.dumps(spec, indent=2))
    argv = alpaca_eval_argv(python, work / "spec.json")
    ctx.commands.append(argv)
    env, secret = child_env(judge)
    from ftstudy.eval.harness.lmeval import staged_hf_env

    env.update(staged_hf_env(ctx.data_dir))  # the length-control files, staged by `ftstudy stage-data`
    log = work / "alpaca_eval.log"
    runner.check(runner.run(argv, env=env, secret_env=secret, log=log, quiet=True), "alpaca-eval", log)
    res = json.loads((work / "result.json").read_text())["comparisons"]
    ref_row = res["reference"]["leaderboard"][0]
    metrics = {"length_controlled_winrate": _frac(ref_row.get("length_controlled_winrate")),
               "win_rate": _frac(ref_row.get("win_rate")), "standard_error": _frac(ref_row.get("standard_error")),
               "n": len(rows), "n_total": ref_row.get("n_total"), "avg_length": ref_row.get("avg_length")}
    if "base" in res:
        metrics["win_rate_vs_base"] = _frac(res["base"]["leaderboard"][0].get("win_rate"))
    prefs = [a.get("preference") for a in res["reference"]["annotations"]]
    samples = []
    for r, a, p in zip(rows, answers, prefs):
        p = None if p is None or p != p else float(p)
        samples.append({"id": r["id"], "output": a, "preference": p,
                        "score": None if p is None else p - 1.0})  # 1 = reference preferred, 2 = model preferred
    settings = {**gen, **judge.settings(), "annotator": json.loads((work / "result.json").read_text())["annotator"],
                "rubric_version": judge_rubric(ctx, bench), "fn_metric": spec["comparisons"][0]["fn_metric"],
                "model_name": name, "instruction_index": "each item's position among the 805 (its id)",
                "resumed_items": len(rows) - cache.generated}
    cache.remove()  # the result is complete: it, not the cache, is what a rerun reuses
    out = output(metrics, samples, "score", ids, settings)
    out.harness_version = harness_version()
    return out


def harness_version() -> str:
    return f"alpaca_eval {version()}"
