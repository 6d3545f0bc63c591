"""The study end to end on the tiny model with the real tools: two experiments (SFT and DPO), a rerun that
does nothing, changed options that rerun only the stages they touch, a kill in each of those stages (training
resumed from its checkpoint), the lock, and a judge key that is written nowhere. (test_slurm kills a training
job and cancels its dependents; the Slurm jobs' stage logic is the same.)

The SFT study is the session's quick demo (tests/conftest.py), copied before it is changed."""
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ftstudy.config import registry
from tests.conftest import CANARY, CANARY_ENV, copy_study, wait_until

pytestmark = pytest.mark.tools

FIX = Path(__file__).parent / "fixtures"
FTSTUDY = [sys.executable, "-m", "ftstudy"]


def ftstudy(args, cwd, check=True, timeout=900):
    res = subprocess.run(FTSTUDY + list(map(str, args)), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"ftstudy {' '.join(map(str, args))} failed:\n{res.stdout}\n{res.stderr[-4000:]}")
    return res


def classification(tiny_model, *extra, steps=5):
    return ["run", "classification", "--method", "lora", "--hardware", "cpu", "--base-model", tiny_model,
            "--data", FIX / "ag_news.jsonl", "--limit", 24, "--max-steps", steps, "--bench-data-dir", FIX / "bench",
            "--benchmarks", "ag_news", *extra]


def stages(stderr: str, action: str) -> set[str]:
    marker = {"ran": "running", "skipped": "done and current - skipped"}[action]
    # a stage line: "[train] running · ETA 1 min · study 5 min left" or "[train] done and current - skipped"
    return {line.split("]")[0].lstrip("[") for line in stderr.splitlines()
            if line.startswith("[") and "] " in line and line.split("] ", 1)[1].split(" · ")[0].rstrip() == marker}


def demo_args(demo_out: Path, *extra) -> list:
    """`ftstudy run` options naming exactly the quick demo's study (demo.options_of its one run)."""
    from ftstudy.study import demo

    (quick,) = demo.QUICK
    o = demo.options_of(quick, demo_out, demo_out / "tiny-model")
    return ["run", o.experiment, "--method", o.method, "--hardware", o.hardware, "--base-model", o.base_model,
            *[x for d in o.data for x in ("--data", d)], "--limit", o.limit, "--bench-limit", o.bench_limit,
            "--max-steps", o.max_steps, "--bench-data-dir", o.bench_data_dir, "--benchmarks", ",".join(o.benchmarks),
            *[x for s in o.sets for x in ("--set", s)], "--count-tokens" if o.count_tokens else "--no-count-tokens",
            *extra]


def running(root: Path, stage: str):
    """True once the study's state says `stage` is running (train: and its first checkpoint is complete, so
    that there is something to resume)."""
    state = root / "state" / "classification" / "lora-cpu.json"

    def check():
        try:
            s = json.loads(state.read_text())
        except (OSError, ValueError):
            return False
        if s.get(stage, {}).get("status") != "running":
            return False
        if stage == "train":
            return any(p for p in (root / "runs").glob("*/*/checkpoint-*/trainer_state.json")
                       if p.parent.parent.name not in done_runs)
        return True

    done_runs = {p.name for p in (root / "runs" / "classification").iterdir()}
    return check


def test_sft_study_rerun_changed_options_and_a_kill_in_each_stage_they_rerun(quick_demo, tmp_path):
    """The session's quick demo is a finished classification-LoRA study (every stage ran: test_demo). In a copy
    of it: `ftstudy run` with the same options skips every stage and sweeps what killed writers left; then with
    more training rows and steps, which must redo prepare, train, merge, bench-ft and compare but not
    bench-base, killed in each of those stages in turn (SIGTERM in prepare, Ctrl-C in training after its first
    checkpoint, SIGKILL in bench-ft), each rerun resuming, training from its checkpoint."""
    demo_out = quick_demo[0]
    root = copy_study(demo_out, tmp_path / "study")
    runs = sorted(p.name for p in (root / "runs" / "classification").iterdir())
    result = root / "results" / "classification" / "lora" / "ag_news.json"
    base = root / "results" / "classification" / "base" / "ag_news.json"
    stamp, base_stamp = result.stat().st_mtime_ns, base.stat().st_mtime_ns

    # what a writer killed mid-write leaves (SIGKILL, or SIGTERM between open and rename): swept by the rerun,
    # while a temporary whose writer is alive (this test's own pid) is kept
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = [root / "results" / "classification" / "lora" / f".ag_news.json.{dead.stdout.strip()}.7.tmp",
             root / "results" / ".work" / "classification" / "lora-ag_news" / f".spec.json.{dead.stdout.strip()}.7.tmp"]
    live = root / "results" / "classification" / "lora" / f".ag_news.json.{os.getpid()}.7.tmp"
    for path in (*stale, live):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{half")

    again = ftstudy(demo_args(demo_out), root)
    assert "ag_news" in again.stdout
    assert not any(p.exists() for p in stale) and live.exists()
    live.unlink()
    assert stages(again.stderr, "skipped") == {"prepare", "train", "merge", "bench-base", "bench-ft"}
    assert stages(again.stderr, "ran") == {"compare"}
    assert sorted(p.name for p in (root / "runs" / "classification").iterdir()) == runs
    assert result.stat().st_mtime_ns == stamp, "a rerun rewrote a result"

    # more rows (prepare counts their tokens: an Axolotl start long enough to be killed in) and 8 steps with a
    # checkpoint every 2, so that the kill in training lands after the first checkpoint and before the end
    from ftstudy.study import demo

    # (an option given twice: click keeps the later value, ours)
    changed = demo_args(demo_out, "--limit", demo.QUICK[0].limit + 8, "--max-steps", 8, "--count-tokens")
    errs = []
    for stage, sig in (("prepare", signal.SIGTERM), ("train", signal.SIGINT), ("bench-ft", signal.SIGKILL)):
        proc = subprocess.Popen(FTSTUDY + list(map(str, changed)), cwd=root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        hit = wait_until(running(root, stage), proc, timeout=400)
        if hit:
            os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=180)
        errs.append(err)
        assert hit, f"the run never reached {stage} (exit {proc.returncode}):\n{err[-3000:]}"
        assert proc.returncode != 0, f"killed in {stage}, yet the run exited 0"
        if stage == "train":  # Ctrl-C in training keeps the checkpoints and says how to continue
            assert "--resume" in err, err[-3000:]
    final = ftstudy(changed, root)
    assert "ag_news" in final.stdout
    assert stages(final.stderr, "ran") == {"bench-ft", "compare"}, "the stage killed last was not rerun"
    assert "bench-base" in stages(errs[-1], "skipped"), "more training rows must not redo the base model's scores"
    assert base.stat().st_mtime_ns == base_stamp
    new = [p for p in (root / "runs" / "classification").iterdir() if p.name not in runs]
    assert len(new) == 1, "the changed run must have one run folder: a killed run must not leave a second"
    tj = json.loads((new[0] / "train.json").read_text())
    assert tj["status"] == "completed" and tj["steps"] == 8
    assert [step for step, _ in tj["loss_curve"]] == list(range(1, 9)), "a step trained twice or past max_steps"
    assert tj["attempts"] == 2, "training was not resumed from its checkpoint"
    assert json.loads((new[0] / "checkpoint-8" / "trainer_state.json").read_text())["global_step"] == 8
    for res in (root / "results" / "classification").glob("*/*.json"):
        json.loads(res.read_text())  # complete JSON, never half-written
    assert not list(root.rglob("*.tmp")), "temporary files left behind"

    status = json.loads(ftstudy(["status", "classification", "--json"], root).stdout)
    assert {r["stage"]: r["status"] for r in status} == {s: "done" for s in
                                                         ("prepare", "train", "merge", "bench-base", "bench-ft", "compare")}
    rows = json.loads(ftstudy(["compare", "classification", "--ft", "lora", "--json"], root).stdout)
    assert rows[0]["benchmark"] == "ag_news" and rows[0]["status"] == "ok" and "ci_low" in rows[0]


def test_dpo_study_with_a_judged_benchmark_writes_the_key_nowhere(tiny_model, tmp_path):
    """DPO end to end (train, merge, bench base and fine-tuned on a multiple-choice and a judged benchmark with
    short generations) and its report, with a canary key in the named variable and a judge that answers 429
    first: no file under the study root and nothing printed contains the key (test_demo checks the same of the
    quick demo, run with the canary in its environment)."""
    from tests.test_judge import JudgeServer

    env = {**os.environ, CANARY_ENV: CANARY}
    root = tmp_path / "study"
    root.mkdir()
    with JudgeServer(CANARY, fail=1, fail_status=429) as judge:
        args = ["run", "dpo", "--hardware", "cpu", "--base-model", tiny_model, "--data",
                FIX / "ultrafeedback_binarized.jsonl", "--limit", 20, "--max-steps", 5, "--no-count-tokens",
                "--bench-data-dir", FIX / "bench",
                "--benchmarks", "bbq,toxigen_generation", "--judge-url", judge.url, "--judge-model", "gpt-4",
                "--judge-api-key-env", CANARY_ENV]
        run = subprocess.run(FTSTUDY + list(map(str, args)), cwd=root, env=env, capture_output=True, text=True,
                             timeout=1200)
        assert run.returncode == 0, run.stderr[-3000:]
        report = subprocess.run(FTSTUDY + ["report", "--out", "report"], cwd=root, env=env, capture_output=True,
                                text=True, timeout=300)
        assert report.returncode == 0, report.stderr[-3000:]
    assert "bbq" in run.stdout and "toxigen_generation" in run.stdout
    rec = json.loads((root / "results" / "dpo" / "dpo" / "bbq.json").read_text())
    assert rec["n"] == 20 and rec["benchmark_version"] == registry.benchmark("bbq")["version"]
    # the judged benchmark needs merged weights: the merge passed its numeric check and serves every harness
    (run_dir,) = (root / "runs" / "dpo").iterdir()
    assert json.loads((run_dir / "merge.json").read_text())["status"] == "ok"
    assert rec["adapter"] is None and rec["model"] == f"{run_dir.relative_to(root)}/merged"
    # the training run's own figures (test_train trains the other methods)
    figures = json.loads((run_dir / "train.json").read_text())
    assert figures["status"] == "completed" and figures["steps"] == 5
    losses = [l for _, l in figures["loss_curve"]]
    assert len(losses) >= 5 and all(math.isfinite(l) for l in losses)
    assert figures["peak_memory_gb"] > 0 and figures["wall_time_s"] > 0
    assert (run_dir / "config.yaml").exists() and (run_dir / "train.log").exists() and (run_dir / "data.json").exists()
    # the judge: every item of base and fine-tuned judged with the key as a bearer token, plus the 429 retried
    judged = json.loads((root / "results" / "dpo" / "dpo" / "toxigen_generation.json").read_text())
    assert judged["n"] >= 1 and len(judge.requests) == 2 * judged["n"] + 1
    assert all(r["auth"] == f"Bearer {CANARY}" for r in judge.requests)
    assert judged["settings"]["judge_api_key_env"] == CANARY_ENV and judged["value"] is not None
    lock = json.loads((root / "study.lock.json").read_text())
    entry = lock["experiments"]["dpo/dpo-cpu"]["benchmarks"]["dpo/toxigen_generation"]
    assert entry["judge"] == "gpt-4" and entry["judge_temperature"] == 0.0 and entry["rubric"] == "toxicity_v1"
    # the key is in no file the study wrote and in nothing printed
    files = [p for p in root.rglob("*") if p.is_file()]
    kinds = {p.relative_to(root).parts[0] for p in files}
    assert {"results", "runs", "report"} <= kinds and (root / "study.lock.json").is_file()
    leaked = [str(p) for p in files if CANARY.encode() in p.read_bytes()]
    assert leaked == [] and CANARY not in run.stdout + run.stderr + report.stdout + report.stderr
    assert len(files) > 20  # it checked a real run's files, not an empty folder


def test_second_run_at_once_refuses(tiny_model, tmp_path):
    from ftstudy.core.file_locks import RunLock

    (tmp_path / "state").mkdir()
    with RunLock(tmp_path / "state" / ".classification.lock", what="test"):
        res = ftstudy(classification(tiny_model), tmp_path, check=False)
    assert res.returncode != 0 and "in use by" in res.stderr and "study" in res.stderr
