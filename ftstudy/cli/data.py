"""CLI verbs of the data stage: prepare (hub rows -> the JSONL files the generated Axolotl configs read) and
decontaminate (training rows that share an n-gram with a benchmark item)."""
from __future__ import annotations

import click

from ftstudy.cli.main import COUNT_TOKENS, HARDWARE, main


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
@COUNT_TOKENS
@click.option("--bench-data-dir", type=click.Path(exists=True, file_okay=False),
              help="Staged benchmark items for the contamination check (as `bench --data-dir`); default: the hub.")
@click.option("--ngram", type=click.IntRange(min=3), default=13, show_default=True,
              help="Words in the n-grams a training row must not share with a benchmark item.")
@click.option("--keep-contaminated", is_flag=True,
              help="Keep rows that share an n-gram with a benchmark item (counted, recorded, and marked in verdicts).")
def prepare_cmd(exp, sources, data, limit, skip_bad, hardware, base_model, count_tokens, bench_data_dir, ngram,
                keep_contaminated):
    """Convert an experiment's training sources into data/prepared/<exp>/, with a manifest per file.

    Applies each source's row cap and the mixture with the experiment's seed (same command, same rows), then
    counts tokens with Axolotl's own preprocess and stops if a source's rows are all longer than sequence_len.
    Rows sharing a 13-gram with an item of any of the experiment's benchmarks are dropped and counted in the
    manifest (a benchmark whose items cannot be loaded is reported as not checked).

    \b
    Example:
      ftstudy prepare tool_use                          # stream xLAM from the hub, convert, count tokens
      ftstudy prepare chat --data my_chats.jsonl --limit 2000 --skip-bad
      ftstudy prepare chat --source sharegpt --source wildchat
      ftstudy prepare math --bench-data-dir staged/ --keep-contaminated
      ftstudy prepare code --data my_code.jsonl --no-count-tokens      # no Axolotl start: seconds, not minutes
    """
    from ftstudy.data.prepare import PrepareError, prepare

    try:
        prepare(exp, data=data, sources=sources, limit=limit, skip_bad=skip_bad, hardware=hardware, base_model=base_model,
                count_tokens=count_tokens,
                progress=lambda m: click.echo(m, err=True), bench_data_dir=bench_data_dir, ngram=ngram,
                keep_contaminated=keep_contaminated)
    except PrepareError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("decontaminate")
@click.argument("exp")
@click.option("--data", multiple=True, metavar="FILE_OR_HUB_ID", help="Training data replacing the sources, as in `prepare`.")
@click.option("--ngram", type=click.IntRange(min=3), default=13, show_default=True, help="Words per n-gram.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False),
              help="Staged benchmark items (<task>.jsonl, or <dataset>/<config>/<split>.jsonl); default: the hub.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def decontaminate_cmd(exp, data, ngram, data_dir, as_json):
    """Measure how many training rows share an n-gram with an item of each of the experiment's benchmarks.

    Reads every row of each source (as `prepare` reads them) and writes nothing; `prepare` drops the rows it
    finds. A benchmark whose items cannot be loaded is reported as not checked, never as clean.

    \b
    Example:
      ftstudy decontaminate math                              # GSM8K, MATH, MMLU items from the hub
      ftstudy decontaminate dpo --data-dir staged/ --ngram 8 --json
    """
    import json

    from ftstudy.data.decontam import check as decontam_check
    from ftstudy.data.prepare import PrepareError

    try:
        fig = decontam_check.check(exp, data, ngram, data_dir, progress=lambda m: click.echo(m, err=True))
    except PrepareError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(fig, indent=2) if as_json else "\n".join(decontam_check.lines(fig)))
