"""Benchmark one model (base, merged, or base + adapter) on an experiment's benchmarks, each through its harness.

Before anything generates, every benchmark that will run (not reused) is preflighted (harness.preflight: its
items, references, environment, judge); any problem stops the run at once, one line each, so a missing reference
or a judge that refuses the key costs seconds, not hours of generation.

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
from ftstudy.core.names import under
from ftstudy.core.runner import ToolError


def wanted(ctx: harness.BenchContext, bench: dict) -> dict:
    """The identity and description of one measurement, before it runs: with its protocol, its judge (None
    when nobody judges it) and the harness version when it can be known beforehand (records.mismatch)."""
    from ftstudy.eval.harness import judge

    return {
        "experiment": ctx.experiment, "tag": ctx.tag, "model": ctx.model, "adapter": ctx.adapter,
        "model_fingerprint": records.fingerprint_of(ctx.model, ctx.adapter),
        "benchmark": bench["id"], "benchmark_version": bench["version"], "harness": bench["harness"],
        "task": bench["task"], "metric": bench["metric"], "higher_is_better": bench["higher_is_better"],
        "scale": bench["scale"], "limit": ctx.limit, "seed": ctx.seed,
        "data_dir": str(Path(ctx.data_dir).resolve()) if ctx.data_dir else None,
        "protocol": bench["protocol"], "judge": judge.identity(ctx, bench),
        "harness_version": harness.expected_version(bench),
    }


def preflight_all(ctx: harness.BenchContext, benches: list[dict]) -> list[str]:
    """Every problem of the benchmarks about to run, one line each prefixed by the benchmark (empty: ready)."""
    return [f"{b['id']}: {p}" for b in benches for p in harness.preflight(ctx, b)]


def _resolve_judge(ctx: harness.BenchContext, benches: list[dict]) -> None:
    """The judge model a run will use, named before results are matched (a judge without --judge-model is the
    first its server lists); an unreachable judge is left to the preflight to report."""
    from ftstudy.eval.harness import judge

    if ctx.judge_url and not ctx.judge_model and any(b["harness"] in judge.JUDGED for b in benches):
        try:
            ctx.judge_model = judge.from_context(ctx).model
        except UserError:
            pass


def bench(experiment: str, model: str, adapter: str | None = None, tag: str | None = None,
          benchmarks: list[str] | None = None, limit: int | None = None, data_dir: str | None = None,
          judge_url: str | None = None, judge_model: str | None = None, allow_code_execution: bool = False,
          dry_run: bool = False, force: bool = False, seed: int = 1234, results_root: Path = Path("results"),
          base_outputs: dict | None = None, progress: Callable[[str], None] = print,
          judge_api_key_env: str = "OPENAI_API_KEY", judge_concurrency: int = 4,
          engine: str | None = None) -> list[dict[str, Any]]:
    """Run each benchmark; returns one summary row per benchmark (status: ok, reused, skipped, failed)."""
    exp = registry.experiment(experiment)
    ids = benchmarks or exp.all_benchmarks
    for b in ids:
        registry.benchmark(b)  # unknown names fail before anything runs
    if not dry_run and not Path(model).exists() and Path(model).is_absolute():
        raise UserError(f"model {model} does not exist")
    tag = tag or ("ft" if adapter else "base")
    # the tag names results/<exp>/<tag>/ and the harnesses' scratch folders: one path rule (core.names)
    under(results_root, "{experiment}", "{tag}", where="--tag", experiment=experiment, tag=tag)
    rows = []
    with contextlib.ExitStack() as stack:
        ctx = harness.BenchContext(
            experiment=experiment, model=model, adapter=adapter, tag=tag, limit=limit, seed=seed,
            data_dir=Path(data_dir) if data_dir else None, out_dir=results_root, judge_url=judge_url,
            judge_model=judge_model, judge_api_key_env=judge_api_key_env, judge_concurrency=judge_concurrency,
            allow_code_execution=allow_code_execution, dry_run=dry_run,
            device="cuda" if (not dry_run and envs.has_gpu()) else "cpu", base_outputs=base_outputs, engine=engine)
        if not dry_run:  # one server for all generative benchmarks, started by the first that asks
            from ftstudy.eval import serve

            ctx.server_url = serve.LazyServer(model, adapter, commands=ctx.commands, engine=engine)
            stack.callback(ctx.server_url.close)
        benches = [registry.benchmark(bid) for bid in ids]
        if not dry_run:
            _resolve_judge(ctx, benches)
        wants = {b["id"]: None if dry_run else wanted(ctx, b) for b in benches}  # a dry run reads no items
        found = {b["id"]: None if force or dry_run else records.find_reusable(results_root, wants[b["id"]])
                 for b in benches}
        problems = preflight_all(ctx, [b for b in benches if found[b["id"]] is None])
        if problems:
            raise harness.PreflightFailed(f"{len(problems)} problem(s) found before any generation (nothing was run):\n"
                                          + "\n".join(f"  {p}" for p in problems))
        for b in benches:
            rows.append(_one(ctx, b, wants[b["id"]], found[b["id"]], results_root, progress))
    return rows


def _one(ctx: harness.BenchContext, bench: dict, want: dict | None, found: Path | None, root: Path,
         progress) -> dict[str, Any]:
    target, _ = records.paths(root, ctx.experiment, ctx.tag, bench["id"])
    row = {"benchmark": bench["id"], "harness": bench["harness"], "metric": bench["metric"], "path": str(target)}
    if not ctx.dry_run:
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
    judged = want["judge"] and out.settings.get("judge_model") is not None  # a pairwise base run is nobody's
    want = {**want, "harness_version": out.harness_version,
            "judge": {**want["judge"], "model": out.settings["judge_model"]} if judged else None}
    rec = records.record(**want, metrics=out.metrics, value=value,
                         settings=out.settings, subset_ids=out.subset_ids, n=len(out.samples),
                         wall_time_s=round(time.time() - started, 2), commands=[list(map(str, c)) for c in ctx.commands])
    records.save(root, rec, out.samples)
    progress(f"{bench['id']}: {bench['metric']} = {value} (n={len(out.samples)})")
    return {**row, "status": "ok", "value": value, "n": len(out.samples)}
