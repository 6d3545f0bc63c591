"""CLI verbs of the training stage: train, merge."""
from __future__ import annotations

import json

import click

from ftstudy.cli.main import COUNT_TOKENS, HARDWARE, METHOD, NODES, hardware_name, main


@main.command("train")
@click.argument("target")
@click.option("--method", type=METHOD, help="Default: the experiment's first method.")
@click.option("--hardware", type=HARDWARE, default="dgx-spark", show_default=True)
@click.option("--base-model", default="Qwen/Qwen2.5-7B", show_default=True, help="Hub id or local model folder.")
@click.option("--source", "sources", multiple=True, metavar="ID",
              help="Train on these sources (ids from `ftstudy show EXP`) instead of the default mixture.")
@click.option("--data", multiple=True, help="File or hub id replacing the experiment's sources, in order.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any Axolotl key.")
@click.option("--max-steps", type=int, help="Stop after N optimizer steps (smoke tests).")
@COUNT_TOKENS
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path())
@NODES
@click.option("--machine-rank", type=click.IntRange(min=0), help="This node's rank (default: SLURM_NODEID, else 0).")
@click.option("--main-ip", help="Address of node 0 (default: first host of SLURM_JOB_NODELIST).")
@click.option("--main-port", type=int, help="Port on node 0 (default: 29500 + Slurm job id mod 1000).")
@click.option("--dry-run", is_flag=True, help="Print the run folder, config path and exact command; run nothing.")
def train_cmd(target, method, hardware, base_model, sources, data, sets, max_steps, count_tokens, resume, runs_dir, nodes,
              machine_rank, main_ip, main_port, dry_run):
    """Train an experiment (or a given Axolotl config) with `accelerate launch -m axolotl.cli.train`.

    Prepares the data first (see `ftstudy prepare`), validates the config, and writes everything to its own
    run folder runs/<exp>/<method>-<hardware>-<id>/. Ctrl-C keeps the last checkpoint; --resume continues.

    \b
    Example:
      ftstudy train tool_use --hardware dgx-spark
      ftstudy train code --hardware cpu --base-model ./tiny --data tests/fixtures/magicoder.jsonl --max-steps 20
      ftstudy train runs/code/lora-cpu-1a2b3c4d/config.yaml --resume
      srun --ntasks-per-node=1 ftstudy train instruction --method full --hardware h100x8 --nodes 2
    """
    from pathlib import Path

    from ftstudy.train import launch
    from ftstudy.train import train

    req = train.resolve(target, method, hardware_name(hardware, nodes), base_model, data, sets, max_steps,
                        sources)
    cluster = None
    if any(v is not None for v in (machine_rank, main_ip, main_port)):
        cluster = launch.resolve(nodes, machine_rank, main_ip, main_port)
    if not dry_run and req.from_file is None:
        from ftstudy.train.ensure_prepared import ensure_prepared

        ensure_prepared(req, count_tokens=count_tokens)
    out = train.train(req, Path(runs_dir), resume=resume, dry_run=dry_run, cluster=cluster)
    if dry_run:
        click.echo(f"run folder: {out['run_dir']}\nconfig:     {out['config']}\ncommand:    {out['command']}")
        return
    losses = out.get("loss_curve") or []
    click.echo(json.dumps({k: out.get(k) for k in ("run_dir", "status", "steps", "train_loss", "tokens_per_second",
                                                   "peak_memory_gb", "wall_time_s")}, indent=2))
    if losses:
        click.echo(f"loss {losses[0][1]:.4f} -> {losses[-1][1]:.4f} over {len(losses)} logged steps", err=True)


@main.command("merge")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--tolerance", default=1e-3, show_default=True, help="Max |logit difference| merged vs base+adapter.")
def merge_cmd(run, tolerance):
    """Merge a LoRA run's adapter into the base weights (Axolotl merge-lora) and check the result.

    Writes RUN/merged/, then checks that the merged model loads, that its logits on fixed prompts equal
    base+adapter logits within --tolerance, and that they differ from the base model's (an adapter that
    changed nothing is reported). Full fine-tuning runs need no merge and say so.

    \b
    Example:
      ftstudy merge runs/code/lora-cpu-1a2b3c4d
    """
    from pathlib import Path

    from ftstudy.train import merge

    report = merge.merge(Path(run), tolerance=tolerance)
    click.echo(json.dumps(report, indent=2))
    if report["status"] == "zero_effect":
        raise click.ClickException("the adapter changed nothing: merged, base+adapter and base give the same logits "
                                   "(a learning rate near 0? too few steps? wrong target modules?)")
