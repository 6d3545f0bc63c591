"""Benchmark of prepare's conversion path against plain `datasets.map` of the same converter.

1. Generates N synthetic rows (default 1,000,000) in the xLAM and UltraChat hub shapes, streamed to JSONL.
2. Converts each file with ftstudy's streaming path (convert_stream.convert_file: a process pool over chunks,
   order kept, written atomically) and records rows/s and peak RSS (this process and its largest worker).
3. In the same run, converts the same file in the train environment with the plain `datasets` way:
   load_dataset("json") -> Dataset.map(convert) -> to_json, single process, and records rows/s and peak RSS.
Both times cover JSONL in -> JSONL out. Targets: ftstudy >= 1x the baseline's speed, < 2 GB peak RSS.

Example:
    $ FTSTUDY_TRAIN_ENV=/tmp/envtest/train .venv/bin/python tests/benchmarks/bench_convert.py
    $ .venv/bin/python tests/benchmarks/bench_convert.py --rows 100000 --no-baseline
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

WORDS = ("alpha beta gamma delta river stone cloud paper orange seven light market garden signal north "
         "quiet rapid number table window story").split()


def _text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi)))


def xlam_row(rng: random.Random, i: int) -> dict:
    tools, answers = [], []
    for t in range(rng.randint(1, 3)):
        params = {f"p{k}": {"type": rng.choice(["str", "int", "float, optional", "List[int]", "bool"]),
                            "description": _text(rng, 3, 8), **({"default": 1} if k % 2 else {})}
                  for k in range(rng.randint(1, 4))}
        tools.append({"name": f"tool_{t}", "description": _text(rng, 5, 12), "parameters": params})
    for _ in range(rng.randint(0, 2)):
        answers.append({"name": f"tool_{rng.randrange(len(tools))}", "arguments": {"p0": rng.randint(0, 99)}})
    return {"id": i, "query": _text(rng, 8, 30), "tools": json.dumps(tools), "answers": json.dumps(answers)}


def ultrachat_row(rng: random.Random, i: int) -> dict:
    return {"id": str(i), "data": [_text(rng, 10, 60) for _ in range(2 * rng.randint(1, 4))]}


def generate(shape: str, n: int, path: Path) -> None:
    make = xlam_row if shape == "xlam" else ultrachat_row
    rng = random.Random(0)
    with open(path, "w") as fh:  # streamed: the rows are never held in memory
        for i in range(n):
            fh.write(json.dumps(make(rng, i)) + "\n")


def ours(shape: str, src: Path, dst: Path) -> dict:
    from ftstudy.data.stream import commit, convert_file, default_workers

    start = time.perf_counter()
    res = convert_file(src, dst, shape)
    commit(res, dst)
    secs = time.perf_counter() - start
    return {"rows": res.converted, "seconds": secs, "workers": default_workers()}


def baseline_child(shape: str, src: str, dst: str, cache: str) -> None:
    """Runs in the train environment: the plain `datasets` way, timed the same (JSONL in -> JSONL out)."""
    from datasets import disable_progress_bars, load_dataset

    from ftstudy.data.converters.common import convert

    disable_progress_bars()
    start = time.perf_counter()
    ds = load_dataset("json", data_files=src, split="train", cache_dir=cache)
    loaded = time.perf_counter()
    out = ds.map(lambda row: convert(shape, row), remove_columns=ds.column_names)
    mapped = time.perf_counter()
    out.to_json(dst, lines=True, force_ascii=False)
    end = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": len(out), "seconds": end - start, "load_s": loaded - start, "map_s": mapped - loaded,
                      "write_s": end - mapped, "peak_rss_mb": rss}))


def baseline(shape: str, src: Path, dst: Path, work: Path) -> dict | str:
    from ftstudy.core import tool_envs as envs

    try:
        python = envs.bin_path("train")
    except envs.EnvMissing as exc:
        return f"skipped: {str(exc).splitlines()[0]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([str(python), __file__, "--baseline-child", shape, str(src), str(dst), str(work / "hf-cache")],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return "failed: " + " | ".join(proc.stderr.strip().splitlines()[-3:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--baseline-child", nargs=4, metavar=("SHAPE", "SRC", "DST", "CACHE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline_child:
        baseline_child(*args.baseline_child)
        return
    with tempfile.TemporaryDirectory(prefix="ftstudy-bench-convert-") as tmp:
        work = Path(tmp)
        shapes = ("xlam", "ultrachat")
        sizes, mine, base = {}, {}, {}
        for shape in shapes:
            generate(shape, args.rows, work / f"{shape}.jsonl")
            sizes[shape] = (work / f"{shape}.jsonl").stat().st_size / 1e6
        for shape in shapes:  # ftstudy's path first, so the RSS figures below are its own
            mine[shape] = ours(shape, work / f"{shape}.jsonl", work / f"{shape}-ours.jsonl")
            (work / f"{shape}-ours.jsonl").unlink()
        self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest pool worker
        for shape in shapes:
            base[shape] = None if args.no_baseline else baseline(shape, work / f"{shape}.jsonl",
                                                                 work / f"{shape}-datasets.jsonl", work)
            (work / f"{shape}-datasets.jsonl").unlink(missing_ok=True)
        print(f"bench_convert: {args.rows:,} rows per shape, {os.cpu_count()} cores\n")
        for shape in shapes:
            m, b = mine[shape], base[shape]
            rate = m["rows"] / m["seconds"]
            print(f"{shape} ({sizes[shape]:,.0f} MB of JSONL)")
            print(f"  ftstudy stream ({m['workers']} workers): {rate:>10,.0f} rows/s  ({m['seconds']:.1f} s)")
            if isinstance(b, dict):
                brate = b["rows"] / b["seconds"]
                print(f"  datasets.map (1 process):   {brate:>10,.0f} rows/s  ({b['seconds']:.1f} s: load {b['load_s']:.1f}"
                      f" + map {b['map_s']:.1f} + write {b['write_s']:.1f}; peak RSS {b['peak_rss_mb']:,.0f} MB)")
                print(f"  ratio ftstudy / datasets:   {rate / brate:>10.2f}x  (target >= 1x)")
            elif b:
                print(f"  datasets.map baseline {b}")
        print(f"\npeak RSS of ftstudy's path: main process {self_rss:,.0f} MB, largest worker {worker_rss:,.0f} MB "
              f"(target < 2,048 MB each)")


if __name__ == "__main__":
    main()
