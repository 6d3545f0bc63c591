"""Axolotl's raw verdict on config files (no ftstudy layer): what the corpus tests and the benchmark compare
`ftstudy validate` with. Each file is checked for the hardware its header names (none: this machine), all in
ftstudy's one warm Axolotl (axolotl_verdict.py)."""
from __future__ import annotations

from pathlib import Path

from ftstudy.config import axolotl_verdict
from ftstudy.config.validate_schema import Problem


def axolotl_check_many(configs: list[str | Path], hardware: str | None = None,
                       use_cache: bool = True) -> dict[str, list[Problem]]:
    """Problems Axolotl itself finds in each config (an empty list when it accepts it), in one process."""
    from ftstudy.config.validate import header_meta

    texts = [Path(c).read_text(encoding="utf-8", errors="replace") for c in configs]
    items = [(t, axolotl_verdict.capabilities(hardware or header_meta(t).get("hardware"))) for t in texts]
    found = axolotl_verdict.verdicts(items, use_cache=use_cache)
    return {str(c): [Problem(e["loc"], f"Axolotl: {e['msg']}", "", origin="axolotl") for e in v["errors"]]
            for c, v in zip(configs, found)}
