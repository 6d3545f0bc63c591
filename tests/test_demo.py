"""`ftstudy demo --quick` end to end: every stage of every demo experiment ran and the report exists. Its study
run a second time from nothing gives the same results, item by item (seeds, greedy decoding, fixed threads):
test_slurm runs it again, as Slurm jobs, and compares with `results_of`. (Improvement is not asserted here: the
quick mode trains a few steps; the full demo's benchmark measures it.)"""
import json

import pytest

from ftstudy.study import demo
from tests.conftest import CANARY
from tests.test_report import MAX_SCREENS, SCREEN, chromium, layout

pytestmark = pytest.mark.tools

STAGES = {"prepare", "train", "merge", "bench-base", "bench-ft", "compare"}


def test_demo_data_splits_never_overlap():
    def rows(name, key):
        return {tuple(json.loads(l)[k] for k in key) for l in (demo.DATA / name).read_text().splitlines()}

    assert not rows("ag_news_train.jsonl", ["text"]) & rows("bench/ag_news_mc.jsonl", ["text"])
    assert not rows("xlam_train.jsonl", ["query", "tools"]) & rows("bench/xlam_heldout.jsonl", ["query", "tools"])


def results_of(out):
    """Every result's value and every item's output and score, by (experiment, tag, benchmark)."""
    found = {}
    for path in sorted((out / "results").glob("*/*/*.json")):
        if any(part.startswith(".") for part in path.relative_to(out).parts):
            continue  # the harnesses' work folders
        rec = json.loads(path.read_text())
        samples = [json.loads(l) for l in path.with_suffix(".samples.jsonl").read_text().splitlines()]
        found[path.relative_to(out / "results").as_posix()] = {
            "value": rec["value"], "n": rec["n"], "subset_ids": rec.get("subset_ids"),
            "items": [(s["id"], s.get("output"), s.get("score")) for s in samples]}
    return found


def test_quick_demo_runs_every_stage(quick_demo):
    out, res, second, pid, cwd = quick_demo
    refusal = [line for line in (second.stdout + second.stderr).splitlines() if line.strip()]
    assert second.returncode != 0 and len(refusal) == 1 and f"in use by pid {pid}" in refusal[0], refusal
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
    # each run's training hours per point of its primary gain (a row even when the quick run gained nothing)
    assert "## Cost per point gained" in md and "hours per point" in md
    assert all(f"| {r.experiment} | {r.method} | cpu | {r.benchmarks[0]} |" in md for r in demo.QUICK)
    for r in demo.QUICK:
        fig = json.loads((out / "state" / r.experiment / f"{r.method}-cpu.json").read_text())["prepare"]["output"]["contamination"]
        assert lock["experiments"][f"{r.experiment}/{r.method}-cpu"]["contamination"] == fig
        for b in r.benchmarks:
            assert (fig["benchmarks"][b]["status"], fig["benchmarks"][b]["rows"]) == ("checked", 0)
            assert f"| {r.experiment} | {r.method}-cpu | {b} | checked | {fig['benchmarks'][b]['items']:,} | 0 | - |" in md
    assert "ETA" in res.stderr and "study" in res.stderr  # per-stage progress with the study's time left


def test_the_judge_key_in_its_environment_is_written_nowhere(quick_demo):
    """The session's quick demo ran with a canary key in the judge key's default variable, OPENAI_API_KEY, and in
    the tests' own (tests/conftest.py; test_study's DPO study sends it to a judge for real): no file it wrote (tiny model, prepared data, runs, results, report, lock) and nothing it printed holds the key."""
    out, res = quick_demo[:2]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20 and {"runs", "results", "report", "tiny-model"} <= {p.relative_to(out).parts[0] for p in files}
    assert [str(p) for p in files if CANARY.encode() in p.read_bytes()] == []
    assert CANARY not in res.stdout + res.stderr


def test_demo_report_is_short_and_its_chart_labels_never_overlap(quick_demo, tmp_path):
    out = quick_demo[0]
    page = (out / "report" / "report.html").read_text()
    assert page.index("Base vs fine-tuned") < page.index("<svg") and "<details" in page  # verdicts first, lock folded
    seen = layout(out / "report" / "report.html", tmp_path)
    assert seen["labels"] >= 10 and seen["overlaps"] == [], seen
    assert seen["height"] <= MAX_SCREENS * SCREEN, seen
    shot = tmp_path / "demo-report.png"
    res = chromium([f"--screenshot={shot}", f"--window-size=1280,{seen['height']}", (out / "report" / "report.html").as_uri()],
                   tmp_path)
    assert res.returncode == 0 and shot.stat().st_size > 20_000

