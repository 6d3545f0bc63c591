"""Make sure a generated config's prepared data exists before training (runs `prepare` when it does not)."""
from __future__ import annotations

import sys
from pathlib import Path


def missing_data(cfg: dict) -> list[str]:
    return [ds["path"] for ds in cfg.get("datasets") or [] if not Path(ds.get("path", "")).exists()]


def ensure_prepared(req, count_tokens: bool = True) -> None:
    """Run `ftstudy prepare` for the request's experiment when any of its prepared files is missing (counting
    tokens with the request's base model unless `count_tokens` is false)."""
    if not missing_data(req.cfg):
        return
    from ftstudy.data import prepare

    prepare.prepare(req.experiment, data=req.data, sources=req.sources, sequence_len=req.cfg.get("sequence_len"),
                    base_model=req.cfg.get("base_model"), hardware=req.hardware, count_tokens=count_tokens,
                    progress=lambda m: print(m, file=sys.stderr, flush=True))
    still = missing_data(req.cfg)
    if still:
        from ftstudy.core.errors import UserError

        raise UserError(f"prepare did not produce {', '.join(still)}")
