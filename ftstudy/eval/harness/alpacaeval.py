"""AlpacaEval 2: the 805 instructions, judged by the `alpaca-eval` package itself (its own pinned environment,
`ftstudy setup alpaca_eval`) with its default annotator pointed at the user's judge endpoint.

* items: the package's reference file `alpaca_eval_gpt4_baseline.json` (instruction, output = GPT-4 Turbo's
  answer, generator, dataset), from `<data-dir>/alpaca_eval.json` or the tatsu-lab/alpaca_eval hub repo;
* the model answers each instruction (greedy, seed fixed, up to 2048 new tokens), served like every other
  generative benchmark;
* headline: `length_controlled_winrate` against the package's reference outputs (AlpacaEval's own GLM);
  also `win_rate` against them; secondary: `win_rate_vs_base` against the base model's answers (the base
  run's samples), judged by the same annotator. All as fractions (AlpacaEval prints percentages).

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
from ftstudy.eval.harness import BenchContext, HarnessOutput, HarnessUnavailable
from ftstudy.data import benchmark_items as itemsets
from ftstudy.eval.harness.generative import gen_settings, output, placeholder, serving, subset
from ftstudy.eval.harness.judge import from_context
from ftstudy.core.bundled import TOOL_SCRIPTS

RUNNER = TOOL_SCRIPTS / "alpaca_eval_run.py"
LC = "get_length_controlled_winrate"


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
    rows = itemsets.rows(ctx, "alpaca_eval")
    bad = [i for i, r in enumerate(rows) if not isinstance(r.get("instruction"), str)]
    if bad:
        raise HarnessUnavailable(f"AlpacaEval rows {bad[:3]} have no `instruction`: is this alpaca_eval_gpt4_baseline.json?")
    return [{**r, "id": str(i)} for i, r in enumerate(rows)]


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
    with serving(ctx) as (url, name):
        answers = client.pmap(lambda r: client.chat_reply(url, name, [{"role": "user", "content": r["instruction"]}],
                                                          max_tokens=gen["max_tokens"], seed=gen["seed"]).text, rows)
    work = ctx.work_dir(bench["id"])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    strip = lambda r: {k: r.get(k) for k in ("instruction", "output", "generator", "dataset")}
    atomic_write(work / "reference.json", json.dumps([strip(r) for r in rows]))
    atomic_write(work / "model.json", json.dumps([{**strip(r), "output": a, "generator": ctx.tag} for r, a in zip(rows, answers)]))
    base_path = None
    if base and ctx.tag != "base":
        base_path = work / "base.json"
        atomic_write(base_path, json.dumps([{**strip(r), "output": base[r["id"]], "generator": "base"} for r in rows]))
    lc = bench.get("fn_metric", LC) == LC
    spec = {"work": str(work), "judge_model": judge.model, "model_outputs": str(work / "model.json"),
            "result": str(work / "result.json"),
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
                "rubric_version": "alpaca_eval 0.6.6 weighted_alpaca_eval_gpt4_turbo",
                "fn_metric": spec["comparisons"][0]["fn_metric"], "model_name": name}
    return output(metrics, samples, "score", ids, settings)
