"""The study end to end on the tiny model with the real tools: two experiments (SFT and DPO), a rerun that
does nothing, a changed hyperparameter that reruns only train onward, kills in each stage, the lock."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.tools

FIX = Path(__file__).parent / "fixtures"
FTSTUDY = [sys.executable, "-m", "ftstudy"]


def ftstudy(args, cwd, check=True, timeout=900):
    res = subprocess.run(FTSTUDY + list(map(str, args)), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"ftstudy {' '.join(map(str, args))} failed:\n{res.stdout}\n{res.stderr[-4000:]}")
    return res


def classification(tiny_model, *extra):
    return ["run", "classification", "--method", "lora", "--hardware", "cpu", "--base-model", tiny_model,
            "--data", FIX / "ag_news.jsonl", "--limit", 24, "--max-steps", 5, "--bench-data-dir", FIX / "bench",
            "--benchmarks", "ag_news", *extra]


def stages(stderr: str, action: str) -> set[str]:
    marker = {"ran": "running", "skipped": "done and current - skipped"}[action]
    # a stage line: "[train] running · ETA 1 min · study 5 min left" or "[train] done and current - skipped"
    return {line.split("]")[0].lstrip("[") for line in stderr.splitlines()
            if line.startswith("[") and "] " in line and line.split("] ", 1)[1].split(" · ")[0].rstrip() == marker}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("study")


def test_sft_study_rerun_and_changed_hyperparameter(tiny_model, root):
    first = ftstudy(classification(tiny_model), root)
    assert "ag_news" in first.stdout
    assert stages(first.stderr, "ran") == {"prepare", "train", "merge", "bench-base", "bench-ft", "compare"}
    runs = sorted(p.name for p in (root / "runs" / "classification").iterdir())
    result = root / "results" / "classification" / "lora" / "ag_news.json"
    stamp = result.stat().st_mtime_ns

    again = ftstudy(classification(tiny_model), root)
    assert stages(again.stderr, "skipped") == {"prepare", "train", "merge", "bench-base", "bench-ft"}
    assert sorted(p.name for p in (root / "runs" / "classification").iterdir()) == runs
    assert result.stat().st_mtime_ns == stamp, "a rerun rewrote a result"

    changed = ftstudy(classification(tiny_model, "--set", "learning_rate=0.001"), root)
    assert stages(changed.stderr, "skipped") == {"prepare", "bench-base"}
    assert {"train", "merge", "bench-ft", "compare"} <= stages(changed.stderr, "ran")
    assert len(list((root / "runs" / "classification").iterdir())) == len(runs) + 1

    status = json.loads(ftstudy(["status", "classification", "--json"], root).stdout)
    assert {r["stage"]: r["status"] for r in status} == {s: "done" for s in
                                                         ("prepare", "train", "merge", "bench-base", "bench-ft", "compare")}
    rows = json.loads(ftstudy(["compare", "classification", "--ft", "lora", "--json"], root).stdout)
    assert rows[0]["benchmark"] == "ag_news" and rows[0]["status"] == "ok" and "ci_low" in rows[0]


def test_dpo_study(tiny_model, root):
    res = ftstudy(["run", "dpo", "--hardware", "cpu", "--base-model", tiny_model,
                   "--data", FIX / "ultrafeedback_binarized.jsonl", "--limit", 20, "--max-steps", 5,
                   "--bench-data-dir", FIX / "bench", "--benchmarks", "bbq"], root)
    assert "bbq" in res.stdout
    rec = json.loads((root / "results" / "dpo" / "dpo" / "bbq.json").read_text())
    assert rec["n"] == 20 and rec["adapter"] and rec["benchmark_version"] == 1


def wait_for(predicate, proc, timeout=400):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)  # polls a condition (no fixed wait): a stage of a second is still caught running
    return False


def test_kill_in_each_stage_then_rerun_completes(tiny_model, tmp_path):
    args = classification(tiny_model, "--set", "seed=3")
    state = tmp_path / "state" / "classification" / "lora-cpu.json"

    def running(stage):
        def check():
            try:
                s = json.loads(state.read_text())
            except (OSError, ValueError):
                return False
            if s.get(stage, {}).get("status") != "running":
                return False
            if stage == "train":  # kill after the first checkpoint, so there is something to resume
                return any(p.glob("checkpoint-*/trainer_state.json") for p in (tmp_path / "runs").glob("*/*"))
            return True
        return check

    for stage, sig in (("prepare", signal.SIGTERM), ("train", signal.SIGINT), ("bench-base", signal.SIGKILL),
                       ("bench-ft", signal.SIGTERM)):
        proc = subprocess.Popen(FTSTUDY + list(map(str, args)), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        hit = wait_for(running(stage), proc)
        if hit:
            os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=180)
        assert hit, f"the run never reached {stage} (exit {proc.returncode}):\n{err[-3000:]}"
        assert proc.returncode != 0, f"killed in {stage}, yet the run exited 0"
    final = ftstudy(args, tmp_path)
    assert "ag_news" in final.stdout
    assert "bench-ft" in stages(final.stderr, "ran"), "the stage killed last was not rerun"
    runs = list((tmp_path / "runs" / "classification").iterdir())
    assert len(runs) == 1, "a killed run must not leave a second run folder"
    tj = json.loads((runs[0] / "train.json").read_text())
    assert tj["status"] == "completed" and tj["steps"] == 5
    assert [step for step, _ in tj["loss_curve"]] == [1, 2, 3, 4, 5], "a step trained twice or past max_steps"
    for res in (tmp_path / "results" / "classification").glob("*/*.json"):
        json.loads(res.read_text())  # complete JSON, never half-written
    assert not list(tmp_path.rglob("*.tmp")), "temporary files left behind"


def test_second_run_at_once_refuses(tiny_model, tmp_path):
    from ftstudy.core.file_locks import RunLock

    (tmp_path / "state").mkdir()
    with RunLock(tmp_path / "state" / ".classification.lock", what="test"):
        res = ftstudy(classification(tiny_model), tmp_path, check=False)
    assert res.returncode != 0 and "in use by" in res.stderr and "study" in res.stderr
