"""Training for real: Axolotl through `accelerate launch` on the tiny model, on CPU.

Covers SFT-LoRA (and loss going down), QLoRA, full fine-tuning with sample packing, a resume after the last
checkpoint, merge with its numeric check, and a zero-effect adapter being flagged. DPO training and a kill in
training then resume are in test_study (the DPO study; the kill in each stage).
"""
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftstudy.train import train
from ftstudy.cli.main import main

FIX = Path(__file__).parent / "fixtures"
FTSTUDY = [sys.executable, "-m", "ftstudy"]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("train-study")


def ftstudy(args, cwd, check=True, timeout=600):
    res = subprocess.run(FTSTUDY + list(map(str, args)), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"ftstudy {' '.join(map(str, args))} failed:\n{res.stdout}\n{res.stderr[-3000:]}")
    return res


def train_json(cwd, out):
    return json.loads((Path(cwd) / json.loads(out)["run_dir"] / "train.json").read_text())


def test_launch_argv_is_exact():
    assert train.launch_argv("/env/bin/accelerate", "runs/x/launch.yaml", 1, cpu=True) == [
        "/env/bin/accelerate", "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--cpu", "-m", "axolotl.cli.train", "runs/x/launch.yaml"]
    assert train.launch_argv("a", "c.yaml", 8) == [
        "a", "launch", "--multi_gpu", "--num_processes", "8", "--num_machines", "1", "--machine_rank", "0",
        "--main_process_ip", "127.0.0.1", "--main_process_port", "29500", "--rdzv_backend", "static",
        "--mixed_precision", "bf16", "--dynamo_backend", "no", "-m", "axolotl.cli.train", "c.yaml"]


def test_dry_run_prints_folder_config_and_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["train", "code", "--hardware", "h100x8", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "run folder: runs/code/lora-h100x8-" in res.output
    assert "launch --multi_gpu --num_processes 8" in res.output and "-m axolotl.cli.train" in res.output
    assert not (tmp_path / "runs").exists(), "a dry run writes nothing"


def test_run_folder_is_keyed_by_config():
    a = train.resolve("code", hardware="cpu", base_model="m")
    b = train.resolve("code", hardware="cpu", base_model="m", sets=("learning_rate=1e-3",))
    assert train.run_dir(a) == train.run_dir(train.resolve("code", hardware="cpu", base_model="m"))
    assert train.run_dir(a) != train.run_dir(b)


def test_errors_before_any_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["train", "code", "--hardware", "cpu", "--base-model", "./no-such-model",
                               "--set", f"datasets.0.path={FIX / 'magicoder.jsonl'}"])
    assert res.exit_code != 0 and "base model './no-such-model' not found" in res.output
    res = runner.invoke(main, ["train", "code", "--hardware", "cpu", "--base-model", "./m",
                               "--set", f"datasets.0.path={FIX / 'magicoder.jsonl'}", "--set", "adapterr=lora"])
    assert res.exit_code != 0 and "adapterr: unknown key" in res.output
    monkeypatch.setenv("FTSTUDY_TRAIN_ENV", str(tmp_path / "nowhere"))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    res = runner.invoke(main, ["train", "code", "--hardware", "cpu", "--base-model", "./m",
                               "--set", f"datasets.0.path={FIX / 'magicoder.jsonl'}"])
    assert res.exit_code != 0 and "ftstudy setup train" in res.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("checkpoint-*"))


# SFT-LoRA trains in long_lora_run below; DPO in test_study's DPO study (its train.json checked the same way)
METHODS = [
    ("qlora", ["classification", "--method", "qlora", "--data", FIX / "ag_news.jsonl", "--no-count-tokens"]),
    ("full-packed", ["code", "--method", "full", "--set", f"datasets.0.path={FIX / 'magicoder.jsonl'}",
                     "--set", "sample_packing=true", "--set", "pad_to_sequence_len=true", "--set", "learning_rate=1e-3"]),
]


def check_figures(figures: dict, run: Path, min_steps: int) -> list[float]:
    """A finished run's train.json and files; returns its losses."""
    assert figures["status"] == "completed" and figures["steps"] >= min_steps
    losses = [l for _, l in figures["loss_curve"]]
    assert len(losses) >= 5 and all(math.isfinite(l) for l in losses)
    assert figures["peak_memory_gb"] > 0 and figures["wall_time_s"] > 0
    assert (run / "config.yaml").exists() and (run / "train.log").exists() and (run / "data.json").exists()
    return losses


@pytest.mark.tools
@pytest.mark.parametrize("name,args", METHODS, ids=[m[0] for m in METHODS])
def test_each_method_trains(name, args, tiny_model, tmp_path):
    t0 = time.time()
    res = ftstudy(["train", *args, "--hardware", "cpu", "--base-model", tiny_model, "--max-steps", 6], tmp_path)
    figures = train_json(tmp_path, res.stdout)
    losses = check_figures(figures, tmp_path / figures["run_dir"], 5)
    print(f"\n{name}: {time.time() - t0:.1f} s wall, loss {losses[0]:.3f} -> {losses[-1]:.3f}")


@pytest.fixture(scope="module")
def long_lora_run(tiny_model, study_dir):
    """One SFT-LoRA run of 30 steps on a fixed fixture (shared by the LoRA, loss and merge tests)."""
    res = ftstudy(["train", "code", "--hardware", "cpu", "--base-model", tiny_model, "--max-steps", 30,
                   "--set", f"datasets.0.path={FIX / 'magicoder.jsonl'}", "--set", "learning_rate=0.003"], study_dir)
    return Path(study_dir) / json.loads(res.stdout)["run_dir"]


@pytest.mark.tools
def test_loss_goes_down_over_30_steps(long_lora_run):
    figures = json.loads((long_lora_run / "train.json").read_text())
    assert figures["method"] == "lora"
    losses = check_figures(figures, long_lora_run, 30)  # all 30 steps logged
    assert len(losses) >= 30
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.3, f"loss did not go down: {first:.3f} -> {last:.3f}"


@pytest.mark.tools
def test_merge_passes_the_numeric_check(long_lora_run, study_dir):
    res = ftstudy(["merge", long_lora_run], study_dir)
    report = json.loads(res.stdout)
    assert report["status"] == "ok"
    assert report["max_abs_diff_merged_vs_adapter"] < 1e-3 < report["max_abs_diff_merged_vs_base"]
    assert (long_lora_run / "merged" / "config.json").exists() and not (long_lora_run / ".merge-tmp").exists()


ZERO_LR = ["train", "code", "--hardware", "cpu", "--max-steps", 2, "--set", f"datasets.0.path={FIX / 'magicoder.jsonl'}",
           "--set", "learning_rate=1e-30"]  # too small to move B from its zero start (0 itself is refused: validate_ranges)


@pytest.fixture(scope="module")
def zero_lr_run(tiny_model, study_dir):
    """A 2-step LoRA run at learning rate 1e-30 (shared by the zero-effect and the resume-at-the-end tests)."""
    res = ftstudy(ZERO_LR + ["--base-model", tiny_model], study_dir)
    return Path(study_dir) / json.loads(res.stdout)["run_dir"]


@pytest.mark.tools
def test_zero_effect_adapter_is_flagged(zero_lr_run, study_dir):
    run = zero_lr_run
    res = ftstudy(["merge", run], study_dir, check=False)
    assert res.returncode != 0 and "changed nothing" in (res.stdout + res.stderr)


@pytest.mark.tools
def test_killed_after_the_last_checkpoint_resumes_without_an_extra_step(zero_lr_run, tiny_model, study_dir):
    """Killed after its final checkpoint was saved but before it finished: the Trainer, resumed from that
    checkpoint, would train a step past max_steps; the resume must end at exactly max_steps."""
    tj = zero_lr_run / "train.json"
    tj.write_text(json.dumps({**json.loads(tj.read_text()), "status": "interrupted"}))
    assert train.resume_point(zero_lr_run).name == "checkpoint-1"
    ftstudy(ZERO_LR + ["--base-model", tiny_model, "--resume"], study_dir)
    figures = json.loads(tj.read_text())
    assert figures["status"] == "completed" and figures["steps"] == 2
    assert sorted(p.name for p in zero_lr_run.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert json.loads((zero_lr_run / "checkpoint-2" / "trainer_state.json").read_text())["global_step"] == 2
