"""Training-data row formats (a source's `shape:`): the hub fields its rows hold, the converter that rewrites
them (or `keep`), and the Axolotl `datasets:` keys that read the prepared rows. Plain data in
row_formats.yaml beside this module (its header says what each key means).

Example:
    >>> SHAPES["alpaca"]
    {'fields': ['instruction', 'output'], 'convert': 'keep', 'axolotl': {'type': 'alpaca'}}
    >>> SHAPES["xlam"]["convert"], SHAPES["xlam"]["axolotl"]["field_tools"]
    ('xlam', 'tools')
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ftstudy.core.errors import UserError

ROW_FORMATS = Path(__file__).with_name("row_formats.yaml")


class RowFormatError(UserError, ValueError):
    """row_formats.yaml holds an entry ftstudy cannot use; the message names it."""


def load(path: Path = ROW_FORMATS) -> dict[str, dict[str, Any]]:
    """Row format -> {fields, convert, axolotl}; a malformed entry is refused with its name."""
    formats = (yaml.safe_load(Path(path).read_text()) or {}).get("formats") or {}
    for name, fmt in formats.items():
        ok = isinstance(fmt, dict) and isinstance(fmt.get("fields"), list) and isinstance(fmt.get("convert"), str)
        if not ok or not isinstance(fmt.get("axolotl"), dict):
            raise RowFormatError(f"{path}: row format {name!r} needs `fields` (a list), `convert` (a converter name "
                             "or keep) and `axolotl` (the dataset keys)")
    return formats


SHAPES: dict[str, dict[str, Any]] = load()
