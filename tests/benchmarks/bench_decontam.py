"""Benchmark of the n-gram decontamination check against a plain Python substring scan on the same data.

1. Generates B benchmark items (default 10,000, GSM8K-shaped: a ~45-word question, a ~60-word answer) and
   N training rows (default 200,000, MetaMathQA-shaped: query + response) from a Zipf-distributed 30,000-word
   vocabulary; every 100th training row carries a benchmark question verbatim.
2. Indexes the benchmark (ftstudy.data.decontam.ngrams.Index, 13-grams) and scans the training file with
   ftstudy.data.decontam.ngrams.scan_file on the available cores (2 on the build machine); records rows/min and peak RSS.
3. In the same run, the baseline scans a sample of the same rows the plain way: for every row, `ngram in text`
   for every 13-gram string of every benchmark item (normalised the same way). Its rate is per row, so a
   sample gives it; both must flag the same rows of the sample.
Target: >= 100,000 training rows/min on 2 cores against 10,000 benchmark items.

Example:
    $ .venv/bin/python tests/benchmarks/bench_decontam.py
    $ .venv/bin/python tests/benchmarks/bench_decontam.py --rows 50000 --items 2000
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ftstudy.data.decontam import ngrams as decontam  # noqa: E402


def vocabulary(rng: random.Random, n: int = 30000) -> tuple[list[str], list[float]]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = list(dict.fromkeys("".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(n * 2)))[:n]
    cum, total = [], 0.0
    for r in range(len(vocab)):
        total += 1.0 / (r + 1)
        cum.append(total)
    return vocab, cum


def text(rng: random.Random, vocab, cum, k: int) -> str:
    return " ".join(rng.choices(vocab, cum_weights=cum, k=k)) + "."


def generate(items: int, rows: int, path: Path, seed: int = 0) -> tuple[list[dict], set[int]]:
    rng = random.Random(seed)
    vocab, weights = vocabulary(rng)
    bench = [{"question": text(rng, vocab, weights, rng.randint(30, 60)),
              "answer": text(rng, vocab, weights, rng.randint(40, 80)) + " #### 7"} for _ in range(items)]
    planted = set()
    with open(path, "w") as fh:  # streamed: the training rows are never held in memory
        for i in range(rows):
            query = text(rng, vocab, weights, rng.randint(30, 70))
            if i % 100 == 5:
                query = rng.choice(bench)["question"]
                planted.add(i + 1)
            fh.write(json.dumps({"query": query, "response": text(rng, vocab, weights, rng.randint(60, 140)),
                                 "type": "GSM_Rephrased", "original_question": query}) + "\n")
    return bench, planted


def baseline(path: Path, bench: list[dict], sample: int, n: int) -> tuple[float, set[int]]:
    """Plain substring scan: every 13-gram string of every item, `in` every row's normalised text."""
    grams = []
    for item in bench:
        for field in item.values():
            w = decontam.words(field)
            grams += [" ".join(w[j:j + n]) for j in range(len(w) - n + 1)]
    found = set()
    started = time.perf_counter()
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if lineno > sample:
                break
            row = json.loads(line)
            texts = [" " + " ".join(decontam.words(s)) + " " for _, s in decontam.strings(row)]
            if any(f" {g} " in t for t in texts for g in grams):
                found.add(lineno)
    return sample / (time.perf_counter() - started), found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--sample", type=int, default=40, help="rows the baseline scans (its rate is per row)")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ftstudy-bench-decontam-") as tmp:
        path = Path(tmp) / "train.jsonl"
        t0 = time.perf_counter()
        bench, planted = generate(args.items, args.rows, path)
        print(f"generated {args.items:,} benchmark items and {args.rows:,} training rows "
              f"({path.stat().st_size / 1e6:.0f} MB, {len(planted):,} planted) in {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        index = decontam.Index()
        index.add("gsm8k", bench)
        t_index = time.perf_counter() - t0
        rss_index = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        rows, hits = decontam.scan_file(path, index, workers=args.workers)
        t_scan = time.perf_counter() - t0
        rate = rows / t_scan * 60
        workers = args.workers or decontam_workers()
        print(f"ftstudy: indexed {len(index.targets):,} n-grams in {t_index:.1f} s (peak RSS {rss_index:.0f} MB); "
              f"scanned {rows:,} rows in {t_scan:.1f} s on {workers} core(s) = {rate:,.0f} rows/min; "
              f"flagged {len(hits):,} (planted {len(planted):,})")
        missed = planted - set(hits)

        base_rate, base_found = baseline(path, bench, args.sample, index.ngram)
        ours = {ln for ln in hits if ln <= args.sample}
        print(f"baseline (plain substring scan, {args.sample} rows): {base_rate * 60:,.1f} rows/min")
        print(f"ratio: {rate / (base_rate * 60):,.0f}x the baseline's rate; target >= 100,000 rows/min: "
              f"{'met' if rate >= 100_000 else 'MISSED'}")
        agree = ours == base_found
        print(f"same rows flagged on the baseline's sample: {'yes' if agree else 'NO'} ({len(ours)} vs {len(base_found)}); "
              f"planted rows missed by ftstudy: {len(missed)}")
        return 0 if agree and not missed else 1


def decontam_workers() -> int:
    from ftstudy.data.stream import default_workers

    return default_workers()


if __name__ == "__main__":
    sys.exit(main())
