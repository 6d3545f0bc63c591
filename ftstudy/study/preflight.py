"""The whole study's preflight, printed by `ftstudy run` before its first stage: every experiment × benchmark it
will still run, checked for what its scoring needs (ftstudy.eval.harness.preflight: items, references, tool
environments, the judge reachable and accepting the key). A problem stops the study before anything trains or
generates, so it costs seconds, not the hours of a training run and a generation run.

Example:
    $ ftstudy run instruction --hardware h100 --judge-url https://api.openai.com/v1 --judge-model gpt-4-0613
    preflight: every benchmark this run will score, checked before the first stage
      instruction × lora  mt_bench     ready
      instruction × lora  alpaca_eval  the judge at https://api.openai.com refused the key (HTTP 401): ...
    Error: preflight: 1 problem(s), listed above; nothing was run: fix them and run again
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ftstudy.config import registry
from ftstudy.core.errors import UserError


def of_study(study, cache: dict | None = None) -> list[tuple[str, list[str] | None]]:
    """(benchmark, problems) for every benchmark the bench stages of one Study still have to run (problems None:
    its harness has no preflight); none when both bench stages are done and current. The context is the
    fine-tuned run's (a pairwise judge is needed there)."""
    from ftstudy.eval import harness

    o = study.o
    if all(action == "cached" for stage, action in study.stage_plan() if stage.startswith("bench-")):
        return []
    ctx = harness.BenchContext(o.experiment, o.base_model, tag=o.method, limit=study.blimit,
                               data_dir=Path(o.bench_data_dir) if o.bench_data_dir else None, out_dir=study.results,
                               judge_url=o.judge_url, judge_model=o.judge_model, judge_api_key_env=o.judge_api_key_env,
                               cache={} if cache is None else cache)
    out = []
    for b in study.bench_ids():
        bench = registry.benchmark(b)
        checked = getattr(harness.module_of(bench), "preflight", None) is not None
        out.append((b, harness.preflight(ctx, bench) if checked else None))
    return out


def check(many: list, echo: Callable[[str], None] = print) -> None:
    """Print every experiment × benchmark of the study with "ready" or its problems (one line each); raise a
    UserError when there are any. `many`: the study.Options of the run, in order."""
    from ftstudy.study.study import Study

    cache: dict = {}  # the judge is asked once for the whole study
    rows = []
    for o in many:
        for bench, problems in of_study(Study(o, progress=lambda m: None), cache):
            said = problems or ["ready" if problems is not None else "ready (its harness has no preflight)"]
            rows += [(f"{o.experiment} × {o.method}", bench, p) for p in said]
    if not rows:
        return
    echo("preflight: every benchmark this run will score, checked before the first stage")
    wide = [max(len(r[i]) for r in rows) for i in (0, 1)]
    for who, bench, line in rows:
        echo(f"  {who:{wide[0]}}  {bench:{wide[1]}}  {line}")
    bad = [r for r in rows if not r[2].startswith("ready")]
    if bad:
        raise UserError(f"preflight: {len(bad)} problem(s), listed above; nothing was run: fix them and run again")
