"""Resume at the request (issue 23): a killed lm-eval benchmark, rerun, recomputes none of the requests it had
finished (lm-eval's sqlite request cache, in the benchmark's work folder, named by model and protocol)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ftstudy.config import registry
from ftstudy.eval import bench, records
from ftstudy.eval.harness import lmeval
from tests.conftest import wait_until

FIX = Path(__file__).parent / "fixtures"


def cached_rows(cache_dir: Path) -> int:
    """Requests answered so far: rows of lm-eval's cache databases (0 while none exists)."""
    total = 0
    for db in cache_dir.glob("*.db"):
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                total += con.execute("SELECT COUNT(*) FROM unnamed").fetchone()[0]
        except sqlite3.Error:
            pass  # the table is not made yet
    return total


def children(pid: int) -> list[int]:
    """The ids of pid's child processes (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_the_request_cache_is_per_model_and_protocol(tmp_path):
    b = registry.benchmark("mmlu")
    one = lmeval.cache_path(tmp_path, "dir:aaaa", b)
    assert one != lmeval.cache_path(tmp_path, "dir:bbbb", b)  # another model never reads these answers
    assert one != lmeval.cache_path(tmp_path, "dir:aaaa", {**b, "protocol": {**b["protocol"], "shots": 0}})
    assert one == lmeval.cache_path(tmp_path, "dir:aaaa", registry.benchmark("mmlu"))
    assert one != lmeval.cache_path(tmp_path, "dir:aaaa", b, "vllm:pretrained=/m,dtype=bfloat16")  # nor another engine


@pytest.mark.tools
def test_a_killed_run_resumes_without_recomputing_finished_requests(tiny_model, tmp_path):
    results = tmp_path / "results"
    argv = [sys.executable, "-m", "ftstudy", "bench", "classification", "--model", str(tiny_model),
            "--benchmarks", "ag_news", "--data-dir", str(FIX / "bench"), "--results-dir", str(results)]
    first = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache_dir = results / ".work" / "classification" / "base-ag_news" / "request_cache"
    try:
        assert wait_until(lambda: cached_rows(cache_dir) > 0, first, timeout=600), "no request was ever cached"
    finally:
        # a hard kill of the whole tree, as a lost machine or a job's time limit: lm-eval runs in its own group
        for group in [os.getpgid(pid) for pid in children(first.pid)] + [first.pid]:
            os.killpg(group, signal.SIGKILL)
        first.wait()
    done = cached_rows(cache_dir)
    assert not (results / "classification" / "base" / "ag_news.json").exists(), "the run finished before the kill"
    row = bench.bench("classification", str(tiny_model), benchmarks=["ag_news"], data_dir=str(FIX / "bench"),
                      results_root=results, progress=lambda s: None)[0]
    assert row["status"] == "ok" and row["n"] == 48
    rec = records.read_json(results / "classification" / "base" / "ag_news.json")
    total, counts = 48 * 4, rec["settings"]["request_cache"]  # one log-likelihood request per choice
    # every request answered before the kill is read back, not recomputed (a cached answer may serve several
    # identical requests: the fixture repeats some articles)
    assert counts["cached"] + counts["computed"] == total and counts["cached"] >= done > 0, (done, counts)
    assert counts["computed"] < total and cached_rows(cache_dir) <= total
    assert rec["protocol"] == registry.benchmark("ag_news")["protocol"]
