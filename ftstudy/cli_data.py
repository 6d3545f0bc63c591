"""CLI verb of the data stage: prepare (hub rows -> the JSONL files the generated Axolotl configs read)."""
from __future__ import annotations

import click

from ftstudy.cli import HARDWARE, main


@main.command("prepare")
@click.argument("exp")
@click.option("--source", "sources", multiple=True, metavar="ID",
              help="Prepare these sources (ids from `ftstudy show EXP`) instead of the default mixture.")
@click.option("--data", multiple=True, metavar="FILE_OR_HUB_ID",
              help="JSONL/JSON/parquet file or hub id replacing the experiment's sources, in order (as in `gen`).")
@click.option("--max-rows", "--limit", "limit", type=click.IntRange(min=1),
              help="At most N rows in all, shared by the mixture weights (default: every row, the plan's size).")
@click.option("--skip-bad", is_flag=True, help="Drop malformed rows (counted and recorded) instead of stopping.")
@click.option("--hardware", type=HARDWARE, default="dgx-spark", show_default=True,
              help="Profile whose config (sequence_len, packing) the token counts are measured against.")
@click.option("--base-model", default="Qwen/Qwen2.5-7B", show_default=True, help="Model whose tokenizer counts tokens.")
def prepare_cmd(exp, sources, data, limit, skip_bad, hardware, base_model):
    """Convert an experiment's training sources into data/prepared/<exp>/, with a manifest per file.

    Applies each source's row cap and the mixture with the experiment's seed (same command, same rows), then
    counts tokens with Axolotl's own preprocess and stops if a source's rows are all longer than sequence_len.

    \b
    Example:
      ftstudy prepare tool_use                          # stream xLAM from the hub, convert, count tokens
      ftstudy prepare chat --data my_chats.jsonl --limit 2000 --skip-bad
      ftstudy prepare chat --source sharegpt --source wildchat
    """
    from ftstudy.prepare import PrepareError, prepare

    try:
        prepare(exp, data=data, sources=sources, limit=limit, skip_bad=skip_bad, hardware=hardware, base_model=base_model,
                progress=lambda m: click.echo(m, err=True))
    except PrepareError as exc:
        raise click.ClickException(str(exc)) from None
