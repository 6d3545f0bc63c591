"""Benchmark of `ftstudy validate` on Axolotl's example configs (tests/fixtures/axolotl_examples/).

1. Agreement with Axolotl 0.19.0's own verdicts (verdicts.json): the schema-only check (no train environment)
   and `validate` with Axolotl asked (the default wherever the train environment exists).
2. `ftstudy validate` on the whole corpus cold: a fresh verdict cache, so one Axolotl start and every file
   checked in it (target: 250 files in at most 60 s on 2 cores), beside the schema-only check of the same files.
3. `ftstudy validate` on one file warm: its verdict cached (target: at most 2 s, a CLI start included), beside
   the same file cold (one Axolotl start: what each call would pay without the cache).

Example:
    $ .venv/bin/python tests/benchmarks/bench_validate.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests import axolotl_corpus as corpus  # noqa: E402

FTSTUDY = Path(sys.executable).with_name("ftstudy")


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def cli(args: list[str], cache: str) -> float:
    """Seconds of one `ftstudy validate ARGS` process with the verdict cache at `cache`."""
    env = {**os.environ, "FTSTUDY_VALIDATE_CACHE": cache}
    _, took = timed(lambda: subprocess.run([str(FTSTUDY), "validate", *args], env=env, capture_output=True))
    return took


def main() -> int:
    from ftstudy.config import axolotl_verdict

    files = corpus.files()
    verdicts = corpus.load_verdicts()
    schema_only, fast = timed(lambda: corpus.ftstudy_verdicts(axolotl=False))
    table = corpus.compare(verdicts, schema_only)
    print(f"1. agreement with Axolotl 0.19.0 on {len(files)} example configs\n"
          f"  schema only:   agree {len(table['agree'])}  false alarms {len(table['false_alarms'])}  "
          f"misses {len(table['misses'])}")
    if not axolotl_verdict.available():
        print("  with Axolotl: skipped (no train environment: ftstudy setup train)")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FTSTUDY_VALIDATE_CACHE"] = tmp
        ours = corpus.ftstudy_verdicts(axolotl=True)
        axolotl_verdict.stop()
    table = corpus.compare(verdicts, ours)
    labelled = all(ours[f]["ftstudy_only"] for f in table["false_alarms"])
    print(f"  with Axolotl:  agree {len(table['agree'])}  false alarms {len(table['false_alarms'])} (all ftstudy's "
          f"labelled rules: {labelled})  misses {len(table['misses'])}\n")
    folder = str(corpus.HERE / "examples")
    with tempfile.TemporaryDirectory() as cache:
        cold = cli([folder], cache)
        print(f"2. ftstudy validate, {len(files)} files cold (fresh cache, one Axolotl start): {cold:.1f}s "
              f"(target <= 60s: {'PASS' if cold <= 60 else 'FAIL'}); schema-only check alone {fast:.1f}s in-process\n")
        one = str(files[0])
        warm = min(cli([one], cache) for _ in range(3))
    with tempfile.TemporaryDirectory() as cache:
        single_cold = cli([one], cache)
    print(f"3. ftstudy validate, one file warm (cached verdict, CLI start included): {warm:.2f}s "
          f"(target <= 2s: {'PASS' if warm <= 2 else 'FAIL'}); the same file cold: {single_cold:.1f}s")
    return 0 if cold <= 60 and warm <= 2 and not table["misses"] and labelled else 1


if __name__ == "__main__":
    sys.exit(main())
