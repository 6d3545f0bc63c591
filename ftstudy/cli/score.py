"""`ftstudy score`: score model outputs with ftstudy's own scorers (tool calls, ROUGE), for the benchmarks
that no harness covers. Each verb reads two JSONL files and calls one scorer."""
from __future__ import annotations

import json

import click

from ftstudy.cli.main import main

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
    from ftstudy.eval.scorers import toolcall

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
    from ftstudy.eval.scorers import rouge

    _run(rouge.score, predictions, references, as_json, samples)


def _run(score, predictions, references, as_json, samples_path):
    from ftstudy.core.fsio import atomic_write
    from ftstudy.eval.scorers import ScoreInputError, load_jsonl

    try:
        preds, refs = load_jsonl(predictions), load_jsonl(references)
        _check_overlap(preds, refs, predictions, references)
        metrics, samples = score(preds, refs)
    except ScoreInputError as exc:
        raise click.ClickException(str(exc)) from None
    if samples_path:
        atomic_write(samples_path, "".join(json.dumps(s, sort_keys=True) + "\n" for s in samples))
    click.echo(json.dumps(metrics, indent=2) if as_json else metrics_table(metrics))


def _check_overlap(preds: list, refs: list, pred_path: str, ref_path: str) -> None:
    """No predictions, or none for these references, is an error (scores of 0.0 would look like a result);
    a partial overlap is a warning with the counts."""
    from ftstudy.eval.scorers import ScoreInputError

    if not preds:
        raise ScoreInputError(f"{pred_path}: no predictions (the file is empty): generate outputs first")
    pred_ids = {str(p.get("id")) for p in preds if isinstance(p, dict)}
    ref_ids = {str(r.get("id")) for r in refs if isinstance(r, dict)}
    both = pred_ids & ref_ids
    if ref_ids and not both:
        raise ScoreInputError(f"none of the {len(pred_ids)} prediction ids in {pred_path} is among the {len(ref_ids)} "
                              f"reference ids in {ref_path} (e.g. {sorted(pred_ids)[0]!r} vs {sorted(ref_ids)[0]!r}): "
                              "are they outputs for these references?")
    if both and (len(both) < len(ref_ids) or len(both) < len(pred_ids)):
        click.echo(f"warning: {len(both)} of {len(ref_ids)} references have a prediction ({len(ref_ids) - len(both)} "
                   f"missing, scored as wrong); {len(pred_ids) - len(both)} predictions match no reference (ignored)",
                   err=True)


def metrics_table(metrics: dict) -> str:
    from ftstudy.core import tables

    rows = [[k, "n/a" if v is None else f"{v}" if isinstance(v, int) else f"{v:.4f}"] for k, v in metrics.items()]
    return tables.text(["metric", "value"], rows, widths=[max(len(k) for k in metrics), 7])
