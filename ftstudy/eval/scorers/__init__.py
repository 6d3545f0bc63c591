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

import json
from pathlib import Path

from ftstudy.core.errors import UserError


class ScoreInputError(UserError, ValueError):
    """An input file or record is unusable; the message names the file and line, or the item id."""


def load_jsonl(path: str | Path) -> list[dict]:
    """Read one JSON object per line (blank lines skipped). A file whose first character is `[` is read as
    one JSON array instead, since hub exports often come that way.

    Example:
        >>> load_jsonl("refs.jsonl")[0]["id"]  # doctest: +SKIP
        0
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScoreInputError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise ScoreInputError(f"{path}: not valid JSON: {exc}") from None
        return [_object(row, f"{path}: item {i}") for i, row in enumerate(rows)]
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise ScoreInputError(f"{path}:{lineno}: not valid JSON: {exc}") from None
        rows.append(_object(row, f"{path}:{lineno}"))
    return rows


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


def _object(row, where: str) -> dict:
    if not isinstance(row, dict):
        raise ScoreInputError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row
