"""CLI verb of the benchmark stage: bench."""
from __future__ import annotations

import json
import sys

import click

from ftstudy.cli.main import judge_options, main


@main.command("bench")
@click.argument("exp")
@click.option("--model", required=True, help="Hub id or local folder (base, merged, or full fine-tune).")
@click.option("--adapter", type=click.Path(exists=True, file_okay=False), help="LoRA adapter on top of --model.")
@click.option("--tag", help="Name of this model in the results (default: base, or ft with --adapter).")
@click.option("--benchmarks", help="Comma-separated subset of the experiment's benchmarks.")
@click.option("--limit", type=int, help="Seeded subset of N items, the same for every model.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), help="Read benchmark data from local files.")
@judge_options
@click.option("--allow-code-execution", is_flag=True, help="Run model-written code (sandboxed) to score code benchmarks.")
@click.option("--force", is_flag=True, help="Measure again even if the same result exists.")
@click.option("--results-dir", default="results", show_default=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--dry-run", is_flag=True, help="Print the commands each harness would run; run nothing.")
@click.option("--engine", type=click.Choice(["vllm", "transformers"]),
              help="Server of the generative benchmarks. Default: vllm with a GPU, else transformers; "
                   "vllm on CPU needs `ftstudy setup vllm` (opt-in).")
def bench_cmd(exp, model, adapter, tag, benchmarks, limit, data_dir, judge_url, judge_model, judge_api_key_env,
              judge_concurrency, allow_code_execution, force, results_dir, as_json, dry_run, engine):
    """Benchmark a model on an experiment's benchmarks, each through the harness that fits it.

    Results go to results/<exp>/<tag>/<benchmark>.json with per-item records beside them; the same
    measurement is reused unless --force, and never overwritten by a different model's.

    \b
    Example:
      ftstudy bench classification --model Qwen/Qwen2.5-7B --tag base --limit 500
      ftstudy bench classification --model Qwen/Qwen2.5-7B --adapter runs/classification/lora-h100-1a2b3c4d
      ftstudy bench chat --model ./merged --judge-url http://127.0.0.1:8001/v1 --judge-model judge
      ftstudy bench instruction --model ./merged --judge-url https://api.openai.com/v1 --judge-model gpt-4-0613
    """
    from pathlib import Path

    from ftstudy.eval import bench

    rows = bench.bench(exp, model, adapter, tag, benchmarks.split(",") if benchmarks else None, limit, data_dir,
                       judge_url, judge_model, allow_code_execution, dry_run, force, results_root=Path(results_dir),
                       progress=lambda s: click.echo(s, err=True), judge_api_key_env=judge_api_key_env,
                       judge_concurrency=judge_concurrency, engine=engine)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        for r in rows:
            detail = r.get("value") if r["status"] in ("ok", "reused") else r.get("reason") or r.get("commands") or ""
            click.echo(f"{r['benchmark']:15} {r['status']:8} {r['metric']:30} {detail}")
    if any(r["status"] == "failed" for r in rows):
        sys.exit(1)


@main.command("stage-data")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--experiments", help="Comma-separated experiments (default: all).")
@click.option("--dry-run", is_flag=True, help="List what would be downloaded, and how; download nothing.")
def stage_data_cmd(folder, experiments, dry_run):
    """Download every benchmark item set a study reads into FOLDER (on a machine with network), for offline
    runs with --data-dir FOLDER: public item sets in their sources' row shapes, the local lm-eval tasks' rows,
    and a Hugging Face cache for lm-eval's built-in tasks.

    \b
    Example:
      ftstudy stage-data /data/bench --experiments instruction,chat
      ftstudy bench instruction --model ./merged --data-dir /data/bench --judge-url http://127.0.0.1:8001/v1
    """
    from pathlib import Path

    from ftstudy.config import registry
    from ftstudy.core import runner
    from ftstudy.data import stage_data as stage

    ids = experiments.split(",") if experiments else registry.experiment_ids()
    steps = stage.plan(ids)
    for s in steps:
        how = runner.show(s.argv, s.env) if s.argv else f"GET {s.url}"
        click.echo(f"{s.out:34} {s.what}\n{'':34} {how if dry_run else ''}".rstrip())
    if not dry_run:
        stage.run_plan(stage.plan(ids, {"eval": "eval", "alpaca_eval": "alpaca_eval"}), Path(folder),
                       progress=lambda m: click.echo(m, err=True))
