"""`ftstudy score`: score model outputs with ftstudy's own scorers (tool calls, ROUGE), for the benchmarks
that no harness covers. Each verb reads two JSONL files and calls one scorer."""
from __future__ import annotations

import json

import click

from ftstudy.cli import main

_FILES = [
    click.option("--predictions", "-p", required=True, type=click.Path(), help='JSONL of {"id", "output"}.'),
    click.option("--references", "-r", required=True, type=click.Path(), help="JSONL of reference rows."),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object of metrics instead of a table."),
    click.option("--samples", type=click.Path(), help="Also write per-sample records (JSONL) here, for paired comparisons."),
]


def _file_options(fn):
    for opt in reversed(_FILES):
        fn = opt(fn)
    return fn


@main.group("score")
def score_group():
    """Score model outputs against references with ftstudy's scorers.

    \b
    Example:
      ftstudy score toolcall -p preds.jsonl -r xlam-test.jsonl
      ftstudy score rouge -p summaries.jsonl -r cnndm-refs.jsonl --json
    """


@score_group.command("toolcall")
@_file_options
def toolcall_cmd(predictions, references, as_json, samples):
    """Tool-call metrics against xLAM references.

    Reports parse_rate, tool_selection_acc, param_acc, exact_match, no_call_acc (irrelevance rows only)
    and n. Calls are read from <tool_call> blocks or bare JSON; a missing prediction counts as wrong.

    \b
    Example:
      ftstudy score toolcall --predictions preds.jsonl --references xlam-test.jsonl
      ftstudy score toolcall -p preds.jsonl -r xlam-test.jsonl --json | jq .exact_match
    """
    from ftstudy.scorers import toolcall

    _run(toolcall.score, predictions, references, as_json, samples)


@score_group.command("rouge")
@_file_options
def rouge_cmd(predictions, references, as_json, samples):
    """ROUGE-1/2/L/Lsum F1 x 100 with seeded bootstrap 95% CIs.

    References are {"id", "reference"}; a missing prediction scores 0. rougeLsum splits summaries into
    sentences on newlines only (no NLTK data needed).

    \b
    Example:
      ftstudy score rouge --predictions summaries.jsonl --references refs.jsonl
      ftstudy score rouge -p summaries.jsonl -r refs.jsonl --json --samples per-item.jsonl
    """
    from ftstudy.scorers import rouge

    _run(rouge.score, predictions, references, as_json, samples)


def _run(score, predictions, references, as_json, samples_path):
    from ftstudy.fsio import atomic_write
    from ftstudy.scorers import ScoreInputError, load_jsonl

    try:
        metrics, samples = score(load_jsonl(predictions), load_jsonl(references))
    except ScoreInputError as exc:
        raise click.ClickException(str(exc)) from None
    if samples_path:
        atomic_write(samples_path, "".join(json.dumps(s, sort_keys=True) + "\n" for s in samples))
    click.echo(json.dumps(metrics, indent=2) if as_json else _table(metrics))


def _table(metrics: dict) -> str:
    width = max(len(k) for k in metrics)
    rows = [f"{'metric':<{width}}  value", f"{'-' * width}  -------"]
    for key, value in metrics.items():
        shown = "n/a" if value is None else f"{value}" if isinstance(value, int) else f"{value:.4f}"
        rows.append(f"{key:<{width}}  {shown}")
    return "\n".join(rows)
