"""Benchmark one model (base, merged, or base + adapter) on an experiment's benchmarks, each through its harness.

Example:
    $ ftstudy bench classification --model ./tiny --tag base --limit 50 --data-dir tests/fixtures/bench
    $ ftstudy bench classification --model ./tiny --adapter runs/classification/lora-cpu-1a2b3c4d --tag ft
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable

from ftstudy.core import tool_envs as envs
from ftstudy.eval import harness
from ftstudy.eval import records
from ftstudy.config import registry
from ftstudy.core.errors import UserError
from ftstudy.core.runner import ToolError


def wanted(exp_id: str, tag: str, model: str, adapter: str | None, bench: dict, limit, seed, data_dir) -> dict:
    """The identity and description of one measurement, before it runs."""
    return {
        "experiment": exp_id, "tag": tag, "model": model, "adapter": adapter,
        "model_fingerprint": records.fingerprint_of(model, adapter),
        "benchmark": bench["id"], "benchmark_version": bench["version"], "harness": bench["harness"],
        "task": bench["task"], "metric": bench["metric"], "higher_is_better": bench["higher_is_better"],
        "scale": bench["scale"], "protocol": bench["protocol"], "limit": limit, "seed": seed,
        "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
    }


def bench(experiment: str, model: str, adapter: str | None = None, tag: str | None = None,
          benchmarks: list[str] | None = None, limit: int | None = None, data_dir: str | None = None,
          judge_url: str | None = None, judge_model: str | None = None, allow_code_execution: bool = False,
          dry_run: bool = False, force: bool = False, seed: int = 1234, results_root: Path = Path("results"),
          base_outputs: dict | None = None, progress: Callable[[str], None] = print,
          judge_api_key_env: str = "OPENAI_API_KEY", judge_concurrency: int = 4) -> list[dict[str, Any]]:
    """Run each benchmark; returns one summary row per benchmark (status: ok, reused, skipped, failed)."""
    exp = registry.experiment(experiment)
    ids = benchmarks or exp.all_benchmarks
    for b in ids:
        registry.benchmark(b)  # unknown names fail before anything runs
    if not dry_run and not Path(model).exists() and Path(model).is_absolute():
        raise UserError(f"model {model} does not exist")
    tag = tag or ("ft" if adapter else "base")
    rows = []
    with contextlib.ExitStack() as stack:
        ctx = harness.BenchContext(
            experiment=experiment, model=model, adapter=adapter, tag=tag, limit=limit, seed=seed,
            data_dir=Path(data_dir) if data_dir else None, out_dir=results_root, judge_url=judge_url,
            judge_model=judge_model, judge_api_key_env=judge_api_key_env, judge_concurrency=judge_concurrency,
            allow_code_execution=allow_code_execution, dry_run=dry_run,
            device="cuda" if (not dry_run and envs.has_gpu()) else "cpu", base_outputs=base_outputs)
        if not dry_run:  # one server for all generative benchmarks, started by the first that asks
            from ftstudy.eval import serve

            ctx.server_url = serve.LazyServer(model, adapter, commands=ctx.commands)
            stack.callback(ctx.server_url.close)
        for bid in ids:
            rows.append(_one(ctx, registry.benchmark(bid), force, results_root, progress))
    return rows


def _one(ctx: harness.BenchContext, bench: dict, force: bool, root: Path, progress) -> dict[str, Any]:
    want = wanted(ctx.experiment, ctx.tag, ctx.model, ctx.adapter, bench, ctx.limit, ctx.seed, ctx.data_dir)
    target, _ = records.paths(root, ctx.experiment, ctx.tag, bench["id"])
    row = {"benchmark": bench["id"], "harness": bench["harness"], "metric": bench["metric"], "path": str(target)}
    if not force and not ctx.dry_run:
        found = records.find_reusable(root, want)
        if found:
            if found != target:
                records.copy_result(found, root, ctx.experiment, ctx.tag)
            rec = records.read_json(target)
            progress(f"{bench['id']}: reusing {found}")
            return {**row, "status": "reused", "value": rec.get("value"), "n": rec.get("n")}
        records.check_overwrite(target, want)
    progress(f"{bench['id']}: running {bench['harness']} ({bench['task']})")
    started = time.time()
    given = ctx.base_outputs
    if given is None and ctx.tag != "base":  # judged comparisons with the base: its answers are the base run's samples
        base_result = records.paths(root, ctx.experiment, "base", bench["id"])[0]
        if base_result.is_file():
            ctx.base_outputs = {str(s["id"]): s.get("output") for s in records.load_samples(base_result)}
    try:
        out = harness.get(bench["harness"])(ctx, bench)
    except harness.HarnessUnavailable as exc:
        progress(f"{bench['id']}: skipped - {exc}")
        return {**row, "status": "skipped", "reason": str(exc)}
    except ToolError as exc:
        progress(f"{bench['id']}: FAILED - {exc}")
        return {**row, "status": "failed", "reason": str(exc)}
    finally:
        ctx.base_outputs = given
    if ctx.dry_run:
        return {**row, "status": "dry-run", "commands": out.settings.get("command")}
    value = out.metrics.get(bench["metric"])
    rec = records.record(**want, metrics=out.metrics, value=value, harness_version=out.harness_version,
                         settings=out.settings, subset_ids=out.subset_ids, n=len(out.samples),
                         wall_time_s=round(time.time() - started, 2), commands=[list(map(str, c)) for c in ctx.commands])
    records.save(root, rec, out.samples)
    progress(f"{bench['id']}: {bench['metric']} = {value} (n={len(out.samples)})")
    return {**row, "status": "ok", "value": value, "n": len(out.samples)}
