"""Dump a hub dataset split (streamed) or a local parquet file to JSON Lines, one row a line.

Runs in the train environment (stdlib + datasets; it never imports ftstudy). `ftstudy prepare` reads hub and
parquet sources through this dump, so every source reaches the converters the same way: as a local JSONL file,
streamed, hashed for the manifest, and cached so a rerun does not download again. Memory stays bounded:
`streaming=True` yields rows one at a time and each is written as soon as it arrives.

Example:
    $ python hub_rows.py --hub fancyzhx/ag_news --split train --out data/raw/classification/ag_news.jsonl
    $ python hub_rows.py --hub EleutherAI/hendrycks_math --config algebra --config geometry --out math.jsonl
    $ python hub_rows.py --hub bigcode/starcoderdata --data-dir python --limit 500000 --out code.jsonl
    $ python hub_rows.py --parquet rows.parquet --out rows.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def rows(args: argparse.Namespace):
    """The rows in order: each --config in turn (tagged `_config` when there are several), up to --limit."""
    from datasets import load_dataset

    if args.parquet:
        yield from load_dataset("parquet", data_files=args.parquet, split="train", streaming=True)
        return
    configs = args.config or [None]
    n = 0
    for config in configs:
        extra = {k: v for k, v in (("data_dir", args.data_dir), ("data_files", args.data_files),
                                   ("revision", args.revision)) if v}
        for row in load_dataset(args.hub, config, split=args.split, streaming=True, **extra):
            if args.limit is not None and n >= args.limit:
                return
            yield {**row, "_config": config} if len(configs) > 1 else row
            n += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--hub", help="hub dataset id, e.g. fancyzhx/ag_news")
    src.add_argument("--parquet", help="a local parquet file")
    ap.add_argument("--config", action="append", help="dataset config name (hub only; repeat to read several)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--data-dir", help="a folder of the hub repo (e.g. starcoderdata's per-language folder)")
    ap.add_argument("--data-files", help="one file of the hub repo")
    ap.add_argument("--revision", help="a hub revision (e.g. refs/convert/parquet)")
    ap.add_argument("--limit", type=int, help="stop after this many rows (hub order)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.{os.getpid()}.tmp")
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows(args):
                # default=str: dates and other non-JSON values arrive as text rather than stopping the dump
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(args.out)  # only a complete dump ever has the final name
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {n} rows to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
