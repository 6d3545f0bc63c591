"""CLI verbs of the study: run, status, compare, report, demo."""
from __future__ import annotations

import json
import sys

import click

from ftstudy.cli.main import COUNT_TOKENS, HARDWARE, METHOD, NODES, hardware_name, judge_options, main

STAGE = click.Choice(["prepare", "train", "merge", "bench-base", "bench-ft", "compare"])


@main.command("run")
@click.argument("exp", required=False)
@click.option("--all", "all_", is_flag=True,
              help="Every experiment and method, in the study plan's recommended order (see `ftstudy list`).")
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
              help="slurm: submit each stage as a job (afterok chains); without --method, every method of EXP.")
@click.option("--partition", help="Slurm partition.")
@click.option("--account", help="Slurm account.")
@click.option("--time", "time_limit", help="Slurm time limit for every job (default: the planner's, with a margin).")
@NODES
@click.option("--method", type=METHOD, help="Default: the experiment's first method.")
@click.option("--hardware", type=HARDWARE, default="dgx-spark", show_default=True)
@click.option("--base-model", default="Qwen/Qwen2.5-7B", show_default=True)
@click.option("--source", "sources", multiple=True, metavar="ID",
              help="Train on these sources (ids from `ftstudy show EXP`) instead of the default mixture.")
@click.option("--data", multiple=True, help="Training file or hub id replacing the experiment's sources, in order.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any Axolotl key.")
@click.option("--limit", type=int, help="Cap training rows and benchmark items (seeded, same items for every model).")
@click.option("--max-rows", type=click.IntRange(min=1),
              help="Training rows only (default: every row of the sources, the plan's size).")
@click.option("--bench-limit", type=int, help="Benchmark items only (default: --limit).")
@click.option("--max-steps", type=int, help="Stop training after N steps.")
@COUNT_TOKENS
@click.option("--bench-data-dir", type=click.Path(exists=True, file_okay=False), help="Local benchmark data.")
@click.option("--benchmarks", help="Comma-separated subset of the experiment's benchmarks.")
@judge_options
@click.option("--from", "from_stage", type=STAGE, help="Redo this stage and every later one.")
@click.option("--dry-run", is_flag=True, help="Print the plan (stages and commands); run nothing.")
def run_cmd(exp, all_, executor, partition, account, time_limit, nodes, method, hardware, base_model, sources, data, sets,
            limit, max_rows, bench_limit, max_steps, count_tokens, bench_data_dir, benchmarks, judge_url, judge_model,
            judge_api_key_env, judge_concurrency, from_stage, dry_run):
    """Run one experiment end to end: prepare → train → merge → bench base → bench fine-tuned → compare.

    Each stage is keyed by a hash of its inputs: a rerun skips what is done and current, redoes what changed,
    and resumes what was interrupted. Two runs of the same experiment at once: the second refuses.

    \b
    Example:
      ftstudy run tool_use --hardware dgx-spark
      ftstudy run classification --method full --hardware h100 --limit 2000
      ftstudy run code --dry-run
      ftstudy run --all --hardware dgx-spark        # the whole study, phase by phase; a rerun resumes
      ftstudy run --all --executor slurm --hardware h100x8 --partition gpu --account proj42 --dry-run
    """
    from ftstudy.config import registry
    from ftstudy.study import study

    if bool(exp) == all_:
        raise click.UsageError("give one experiment id, or --all for the whole study")
    if all_ and (method or sources or data or benchmarks):
        raise click.UsageError("--all runs every experiment's own methods, sources and benchmarks: drop "
                               "--method/--source/--data/--benchmarks, or run one experiment")
    hardware = hardware_name(hardware, nodes)
    every = registry.plan_order() if all_ else (
        [(exp, method)] if method or executor == "local" else [(exp, m) for m in registry.experiment(exp).methods])
    many = [study.Options(e, m, hardware, base_model, tuple(data), tuple(sets), limit, max_steps, bench_data_dir,
                          benchmarks.split(",") if benchmarks else None, judge_url, judge_model, from_stage,
                          bench_limit=bench_limit, sources=tuple(sources), max_rows=max_rows,
                          judge_api_key_env=judge_api_key_env, judge_concurrency=judge_concurrency,
                          count_tokens=count_tokens) for e, m in every]
    if executor == "slurm":
        from pathlib import Path

        from ftstudy.study.slurm import submit as slurm_exec

        rows = slurm_exec.submit(many, Path("."), partition, account, time_limit, dry_run, echo=click.echo)
        click.echo(f"{len(rows)} job(s) {'planned' if dry_run else 'submitted or kept'}; follow with `ftstudy status`")
        return
    clock = None
    if not dry_run:  # one clock for the whole run: each stage line gives its ETA and the study's time left
        from ftstudy.study import eta, preflight

        preflight.check(many, echo=lambda m: click.echo(m, err=True))  # before the first stage, or nothing runs

        # each run's resolved method (Options fills in the experiment's first method when none is given)
        clock = eta.study_clock([(o.experiment, o.method) for o in many], hardware, base_model)
    for i, opts in enumerate(many, 1):  # in the plan's order with --all; each resumes from its stage cache
        if all_:
            click.echo(f"[{i}/{len(many)}] {opts.experiment} × {opts.method}", err=True)
        _run_local(opts, dry_run, clock)


def _run_local(opts, dry_run: bool, clock=None) -> None:
    from ftstudy.study import comparison
    from ftstudy.study import study

    out = study.Study(opts, progress=lambda m: click.echo(m, err=True), clock=clock).run(dry_run=dry_run)
    if dry_run:
        for stage, action in out["plan"]:
            click.echo(f"{stage:11} {action}")
        click.echo(f"train command: {out['train_command']}")
        return
    click.echo(comparison.table(out.get("compare", {}).get("output", {}).get("rows", [])))


@main.command("status")
@click.argument("exp", required=False)
@click.option("--json", "as_json", is_flag=True)
def status_cmd(exp, as_json):
    """Show each stage of each experiment: done, stale (and why), failed (with the log), not started.

    \b
    Example:
      ftstudy status
      ftstudy status classification --json
    """
    from ftstudy.study import study

    from pathlib import Path

    from ftstudy.study.slurm import submit as slurm_exec

    rows = slurm_exec.annotate(study.status(experiment=exp), Path("."))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no study state here yet: start one with `ftstudy run EXP`")
    for r in rows:
        job = f"{r.get('job_id', ''):>7} {r.get('slurm', ''):12} " if "job_id" in r else ""
        click.echo(f"{r['experiment']:15} {r['method']:6} {r['hardware']:10} {r['stage']:11} {r['status']:12} {job}{r['detail']}")


@main.command("cancel")
@click.argument("exp", required=False)
def cancel_cmd(exp):
    """Cancel the study's Slurm jobs that are still queued or running (all, or one experiment's).

    Stage state is kept: `ftstudy run ... --executor slurm` later submits only what is not done.

    \b
    Example:
      ftstudy cancel
      ftstudy cancel classification
    """
    from pathlib import Path

    from ftstudy.study.slurm import submit as slurm_exec

    ids = slurm_exec.cancel(Path("."), exp)
    click.echo(f"cancelled {len(ids)} job(s){': ' + ' '.join(ids) if ids else ''}")


@main.command("compare")
@click.argument("exp")
@click.option("--base", "base_tag", default="base", show_default=True, help="Tag of the base model's results.")
@click.option("--ft", "ft_tag", help="Tag of the fine-tuned results (default: every other tag found).")
@click.option("--results-dir", default="results", show_default=True, type=click.Path())
@click.option("--adjust", type=click.Choice(["holm", "bh", "none"]),
              help="Correction within each declared family (default: experiments.yaml's statistics.adjust, holm).")
@click.option("--json", "as_json", is_flag=True)
def compare_cmd(exp, base_tag, ft_tag, results_dir, adjust, as_json):
    """Compare base and fine-tuned results of an experiment, benchmark by benchmark.

    Shows base, fine-tuned, delta, a paired bootstrap 95% CI over the same items, the plan's expected gain and
    the verdict (met, below/above the plan's range, not significant, regressed); guards flag regressions
    beyond their tolerance. Beside each unadjusted CI: the permutation p-value adjusted within its family of
    tests (declared in experiments.yaml: each experiment's primaries, the study's guards) and the benchmark's
    minimum detectable effect at its item count. Also writes results/<exp>.json in the plan's workflow shape.

    \b
    Example:
      ftstudy compare classification
      ftstudy compare classification --ft full --json
      ftstudy compare math --adjust bh
    """
    from pathlib import Path

    from ftstudy.study import comparison, families
    from ftstudy.config import registry

    root = Path(results_dir)
    comparison.check_args(exp, root, base_tag, ft_tag)
    out: dict[str, list] = {}
    for r in families.study_rows(root, base_tag, adjust):  # the families span experiments: adjust over all
        if r["experiment"] == exp and (ft_tag is None or r["method"] == ft_tag):
            out.setdefault(r["method"], []).append(r)
    if not out:
        raise click.ClickException(f"no fine-tuned results for {exp} under {root}")
    from ftstudy.study import plan_results

    for t, rows in out.items():  # results/<exp>.json, the plan's workflow shape, for each method compared
        ok = [r for r in rows if r.get("status") == "ok"]
        if ok and t in registry.experiment(exp).methods:
            plan_results.write(root, exp, t, ok[0].get("base_model") or base_tag, ok[0].get("model") or t, rows)
    if as_json:
        click.echo(json.dumps(out if not ft_tag else out[ft_tag], indent=2, default=str))
        return
    for t, rows in out.items():
        click.echo(f"\n{exp}: {base_tag} vs {t}\n" + comparison.table(rows))


@main.command("report")
@click.option("--out", "out_dir", default="report", show_default=True, type=click.Path(), help="Output folder.")
@click.option("--root", default=".", show_default=True, type=click.Path(exists=True, file_okay=False),
              help="Study root (holds results/, runs/, state/).")
@click.option("--adjust", type=click.Choice(["holm", "bh", "none"]),
              help="Correction within each declared family (default: experiments.yaml's statistics.adjust, holm).")
def report_cmd(out_dir, root, adjust):
    """Write the study report: a self-contained HTML page and a Markdown summary.

    Each verdict shows its unadjusted CI and its p-value adjusted within its declared family, the benchmark's
    minimum detectable effect, and each method's training hours (and GPU-hours) per point gained.

    \b
    Example:
      ftstudy report --out report/
    """
    from pathlib import Path

    from ftstudy.study import report

    paths = report.write(Path(root), Path(out_dir), adjust)
    for p in paths:
        click.echo(f"wrote {p}")


@main.command("demo")
@click.option("--out", "out_dir", default="demo-study", show_default=True, type=click.Path(),
              help="Folder for the demo study (runs, results, report).")
@click.option("--quick", is_flag=True, help="A minimal pass through every stage (CI smoke test; no improvement claimed).")
def demo_cmd(out_dir, quick):
    """Run a small but real study on CPU with the tiny local model and bundled data, and report it.

    Builds the tiny model, then for the demo experiments: prepare, train with Axolotl, merge, bench base and
    fine-tuned, compare, and write the report. Ends with the summary table and the report's path.

    \b
    Example:
      ftstudy demo
      ftstudy demo --quick --out /tmp/demo
    """
    from pathlib import Path

    from ftstudy.study import demo

    ok = demo.run(Path(out_dir), quick=quick, progress=lambda m: click.echo(m, err=True), echo=click.echo)
    sys.exit(0 if ok else 1)
