"""Benchmark of `ftstudy validate` on Axolotl's example configs (tests/fixtures/axolotl_examples/).

1. Agreement with Axolotl 0.19.0's own verdicts (verdicts.json): files, agree, false alarms, misses.
2. Fast validation of the whole corpus, beside a baseline measured in the same run: parsing the same YAML
   files alone (yaml.safe_load).
3. `--deep` (Axolotl's own validation, one process for all files; target: 250 files in under a minute on
   2 cores), beside the same tool side run on one file (what one process per file would pay each time).

Example:
    $ .venv/bin/python tests/benchmarks/bench_validate.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests import axolotl_corpus as corpus  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> int:
    files = corpus.files()
    ours, fast = timed(corpus.ftstudy_verdicts)
    table = corpus.compare(corpus.load_verdicts(), ours)
    print(f"1. agreement with Axolotl 0.19.0 on {len(files)} example configs\n"
          f"  files {len(files)}  agree {len(table['agree'])}  false alarms {len(table['false_alarms'])}  "
          f"misses {len(table['misses'])}  (expected disagreements are listed in tests/test_validate_corpus.py)\n")
    _, parse = timed(lambda: [yaml.safe_load(p.read_text()) for p in files])
    print(f"2. fast validate: {fast:.2f}s for {len(files)} files; baseline yaml.safe_load alone {parse:.2f}s "
          f"(ratio {fast / parse:.1f}x)\n")
    from ftstudy.core import tool_envs as envs
    from ftstudy.config.validate_deep import axolotl_check_many

    try:
        envs.bin_path("train")
    except Exception as exc:
        print(f"3. --deep skipped: {exc}")
        return 0
    _, one = timed(lambda: axolotl_check_many(files[:1]))
    found, deep = timed(lambda: axolotl_check_many(files))
    failed = sum(1 for probs in found.values() if any("could not run" in p.message for p in probs))
    print(f"3. --deep: {deep:.1f}s for {len(files)} files in one process ({failed} could not run); baseline one "
          f"file {one:.1f}s (one process per file would take about {one * len(files):.0f}s, "
          f"{one * len(files) / deep:.0f}x longer); target under 60s: {'PASS' if deep < 60 else 'FAIL'}")
    return 0 if deep < 60 and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
