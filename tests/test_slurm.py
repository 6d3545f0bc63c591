"""The study on a real Slurm cluster (munge + slurmctld + slurmd on this machine, started by the fixture).

The quick demo's classification study (tests/conftest.py) by two methods (its own LoRA run and a full
fine-tuning, sharing the prepared data and the base model's benchmark), as Slurm jobs in a fresh folder: the
full run's training job is cancelled mid-train with scancel, its dependents are cancelled with `ftstudy cancel`,
the study is resubmitted and runs to completion, training resuming from its checkpoint; a further rerun submits
nothing. The LoRA chain is the quick demo's study run a second time from nothing, so it is also the demo's
determinism test: its results must equal the quick demo's, item by item. If Slurm cannot start, the tests
fail: they never skip.
"""
import dataclasses
import json
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftstudy.study.slurm import graph as slurm
from ftstudy.study.slurm import submit as slurm_exec
from ftstudy.study import study
from ftstudy.train import train
from ftstudy.cli.main import main
from ftstudy.study import demo
from ftstudy.train import tiny
from tests import slurm_local
from tests.test_demo import results_of

pytestmark = pytest.mark.tools


@pytest.fixture(scope="module")
def cluster():
    pids = slurm_local.start()  # raises (the test fails) when Slurm cannot start
    yield
    slurm_local.stop(pids)


def wait_for(what, check, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def options(root: Path, demo_out: Path) -> list[study.Options]:
    """The quick demo's own study (demo.QUICK: data, limits, steps, its seeded LoRA start) and a full run."""
    (quick,) = demo.QUICK
    lora = demo.options_of(quick, demo_out, demo_out / "tiny-model", root=root)
    # long enough to be caught mid-train: a checkpoint every 3 steps
    return [lora, dataclasses.replace(lora, method="full", sets=("learning_rate=0.001",), max_steps=12)]


def stage_states(root: Path) -> dict:
    return {(r["method"], r["stage"]): r["status"] for r in study.status(root)}


def test_demo_study_as_slurm_jobs_survives_a_killed_job_resumes_and_repeats_the_demo(cluster, quick_demo, tmp_path,
                                                                                      monkeypatch):
    started = time.time()
    root = tmp_path / "study"
    root.mkdir()
    monkeypatch.chdir(root)
    for name, value in tiny.THREAD_ENV.items():  # what `ftstudy demo` exports to its tools; the jobs inherit it
        monkeypatch.setenv(name, value)
    demo_out = quick_demo[0]
    opts = options(root, demo_out)

    rows = slurm_exec.submit(opts, root, time_limit="0:30:00", echo=lambda m: None)
    names = [r["name"] for r in rows]
    assert names == ["classification.prepare", "classification.bench-base",
                     *[f"classification.{m}-cpu.{s}" for m in ("lora", "full") for s in ("train", "merge", "bench-ft", "compare")]]
    jobs = slurm_exec.load_jobs(root)
    assert jobs["classification.full-cpu.train"]["deps"] == ["classification.prepare"]
    assert jobs["classification.lora-cpu.compare"]["deps"] == ["classification.lora-cpu.bench-ft", "classification.bench-base"]
    script = Path(jobs["classification.full-cpu.train"]["script"]).read_text()
    assert "#SBATCH --time=0:30:00" in script and "-m ftstudy.study.slurm.job" in script

    # kill the full run's training once it has written a checkpoint
    full = study.Study(opts[1], progress=lambda m: None)
    run_dir = train.run_dir(full.req, root / "runs")
    train_id = jobs["classification.full-cpu.train"]["job_id"]
    wait_for("a checkpoint of the full run", lambda: train.checkpoints(run_dir), 600)
    assert slurm_exec.states([train_id])[train_id][0] == "RUNNING"
    assert subprocess.run(slurm.scancel_argv([train_id]), capture_output=True).returncode == 0
    wait_for("the cancelled job to end", lambda: slurm_exec.states([train_id])[train_id][0] == "CANCELLED", 120)
    merge_id = jobs["classification.full-cpu.merge"]["job_id"]
    wait_for("the dependents to be held", lambda: slurm_exec.states([merge_id]).get(merge_id, ("", ""))[1]
             == slurm_exec.DEAD_REASON, 120)

    res = CliRunner().invoke(main, ["status", "classification"])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if " full " in ln and " train " in ln)
    assert "CANCELLED" in line and f"log: {jobs['classification.full-cpu.train']['log']}" in line
    assert Path(jobs["classification.full-cpu.train"]["log"]).is_file()

    # the LoRA chain is not affected; let it finish so that `cancel` only finds the held jobs
    last = jobs["classification.lora-cpu.compare"]["job_id"]
    wait_for("the LoRA chain", lambda: slurm_exec.states([last])[last][0] == "COMPLETED", 900)
    assert stage_states(root)[("lora", "compare")] == "done"
    res = CliRunner().invoke(main, ["cancel"])
    assert res.exit_code == 0 and "cancelled 3 job(s)" in res.output, res.output

    # resubmit: only the full run's unfinished stages go back in
    rows = slurm_exec.submit(opts, root, time_limit="0:30:00", echo=lambda m: None)
    assert [r["name"] for r in rows] == [f"classification.full-cpu.{s}" for s in ("train", "merge", "bench-ft", "compare")]
    wait_for("the full chain", lambda: stage_states(root).get(("full", "compare")) == "done", 900)

    states = stage_states(root)
    assert all(states[(m, s)] == "done" for m in ("lora", "full") for s in study.STAGES), states
    figures = json.loads((run_dir / "train.json").read_text())
    assert figures["status"] == "completed" and figures["attempts"] == 2 and figures["steps"] == 12
    assert slurm_exec.submit(opts, root, echo=lambda m: None) == []  # nothing left to do

    # the LoRA chain ran the quick demo's study again from nothing: the same results, item by item, and the
    # same training (seeds, the seeded LoRA start, greedy decoding, one thread per tool)
    one, two = results_of(demo_out), results_of(root)
    assert len(one) == 2 * len(demo.QUICK) and set(one) <= set(two)
    for key in one:
        assert one[key] == two[key], f"{key} differs between the quick demo and the same study as Slurm jobs"
    lora_dir = train.run_dir(study.Study(opts[0], progress=lambda m: None).req, root / "runs")
    (demo_run,) = (demo_out / "runs" / "classification").glob("lora-*/train.json")
    assert json.loads(demo_run.read_text())["loss_curve"] == json.loads((lora_dir / "train.json").read_text())["loss_curve"]
    print(f"\nslurm study: {time.time() - started:.0f} s")
