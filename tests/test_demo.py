"""`ftstudy demo --quick` end to end: every stage of every demo experiment ran and the report exists.
(Improvement is not asserted here: the quick mode trains a few steps; the full demo's benchmark measures it.)"""
import json
import subprocess
import sys
import time

import pytest

from ftstudy import demo

pytestmark = pytest.mark.tools

STAGES = {"prepare", "train", "merge", "bench-base", "bench-ft", "compare"}


def test_demo_data_splits_never_overlap():
    def rows(name, key):
        return {tuple(json.loads(l)[k] for k in key) for l in (demo.DATA / name).read_text().splitlines()}

    assert not rows("ag_news_train.jsonl", ["text"]) & rows("bench/ag_news_mc.jsonl", ["text"])
    assert not rows("xlam_train.jsonl", ["query", "tools"]) & rows("bench/xlam_heldout.jsonl", ["query", "tools"])


def test_quick_demo_runs_every_stage(tmp_path, tiny_model):
    """...and a second demo started on the same folder meanwhile refuses at once; nothing lands outside --out."""
    out, cwd = tmp_path / "demo", tmp_path / "cwd"
    cwd.mkdir()
    argv = [sys.executable, "-m", "ftstudy", "demo", "--quick", "--out", str(out)]
    first = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = out / "state" / ".demo.lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and "pid" in lock.read_text()) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    stdout, stderr = first.communicate(timeout=1200)
    res = subprocess.CompletedProcess(argv, first.returncode, stdout, stderr)
    assert res.returncode == 0, res.stderr[-4000:]
    refusal = [line for line in (second.stdout + second.stderr).splitlines() if line.strip()]
    assert second.returncode != 0 and len(refusal) == 1 and f"in use by pid {first.pid}" in refusal[0], refusal
    assert list(cwd.iterdir()) == []  # data/prepared and Axolotl's last_run_prepared stay under --out
    assert (out / "data" / "prepared").is_dir() and list(out.glob("runs/*/*/last_run_prepared"))
    seen = 0
    for r in demo.QUICK:
        state = json.loads((out / "state" / r.experiment / f"{r.method}-cpu.json").read_text())
        assert {s for s in STAGES if state[s]["status"] == "done"} == STAGES, (r, state)
        seen += 1
    assert seen == len(demo.QUICK) == 1
    assert (out / "report" / "report.html").exists() and (out / "report" / "report.md").exists()
    assert (out / "study.lock.json").exists()
    assert "report:" in res.stdout and "demo finished" in res.stdout
    for r in demo.QUICK:
        for tag in ("base", r.method):
            rec = json.loads((out / "results" / r.experiment / tag / f"{r.benchmarks[0]}.json").read_text())
            assert rec["n"] == r.bench_limit
    # no training row shares a 13-gram with the demo's benchmark items: prepare, the lock and the report say so
    lock = json.loads((out / "study.lock.json").read_text())
    md = (out / "report" / "report.md").read_text()
    for r in demo.QUICK:
        fig = json.loads((out / "state" / r.experiment / f"{r.method}-cpu.json").read_text())["prepare"]["output"]["contamination"]
        assert lock["experiments"][f"{r.experiment}/{r.method}-cpu"]["contamination"] == fig
        for b in r.benchmarks:
            assert (fig["benchmarks"][b]["status"], fig["benchmarks"][b]["rows"]) == ("checked", 0)
            assert f"| {r.experiment} | {r.method}-cpu | {b} | checked | {fig['benchmarks'][b]['items']:,} | 0 | - |" in md
