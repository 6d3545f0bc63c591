"""Scorers for benchmarks that no harness covers: tool calls against xLAM references (`toolcall`) and
ROUGE with seeded CIs (`rouge`). Each module has `score(predictions, references) -> (metrics, samples)`:
`metrics` is one flat dict (what `--json` prints), `samples` one record per reference, for item-by-item
comparison (see `ftstudy.eval.stats.paired_bootstrap`).

Example:
    >>> from ftstudy.eval.scorers import load_jsonl
    >>> load_jsonl("preds.jsonl")  # doctest: +SKIP
    [{'id': 1, 'output': '...'}]
"""
from __future__ import annotations

from ftstudy.data.benchmark_items import ScoreInputError, load_jsonl  # the JSONL reader the data stage uses too


def index_by_id(rows: list[dict], what: str) -> dict[str, dict]:
    """Key rows by str(id) (hub ids are ints, model outputs often carry strings); duplicates are refused
    because they would silently drop or double-count an item."""
    out: dict[str, dict] = {}
    for i, row in enumerate(rows):
        if "id" not in row:
            raise ScoreInputError(f"{what} record {i} has no 'id'")
        key = str(row["id"])
        if key in out:
            raise ScoreInputError(f"{what}: duplicate id {row['id']!r}")
        out[key] = row
    return out
