"""CLI verb of the planning stage: plan (memory, tokens and time before a run; predicted vs measured after)."""
from __future__ import annotations

import json

import click

from ftstudy.cli.main import HARDWARE, METHOD, NODES, hardware_name, main


@main.command("plan")
@click.argument("targets", nargs=-1)
@click.option("--method", type=METHOD, help="Default: the experiment's first method.")
@click.option("--hardware", type=HARDWARE, default="dgx-spark", show_default=True, help="Hardware profile.")
@NODES
@click.option("--base-model", default="Qwen/Qwen2.5-7B", show_default=True, help="Hub id, model folder or config.json.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override an Axolotl key, as in `gen`.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (keys: memory_gb, fits, tokens, hours, plan_hours, ...).")
@click.option("--check", is_flag=True, help="TARGETS are run folders: predicted vs measured, error in %.")
@click.option("--calibrate", is_flag=True, help="TARGETS are run folders: update ftstudy/config/calibration.json from them.")
def plan_cmd(targets, method, hardware, nodes, base_model, sets, as_json, check, calibrate):
    """Plan a run from the model's config.json and the experiment's data: peak memory itemised and whether it
    fits (with the cheapest fix), tokens, and hours beside the study plan's estimate. No weights needed.

    \b
    Example:
      ftstudy plan math --method full --hardware h100 --json | jq .memory_gb
      ftstudy plan instruction --method full --set optimizer=adamw_torch_fused
      ftstudy plan instruction --method full --hardware h100 --nodes 2
      ftstudy plan --check runs/code/lora-cpu-1a2b3c4d
      ftstudy plan --calibrate runs/*/*-cpu-*
    """
    from ftstudy.cli import plan_actions as planner_cli

    out, text = planner_cli.run(targets, method, hardware_name(hardware, nodes), base_model, sets, check, calibrate)
    click.echo(json.dumps(out, indent=2) if as_json else text)
