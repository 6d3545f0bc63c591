"""Exact command lines of the seams that cannot run here (bigcode's MultiPL-E toolchains, BFCL, vLLM) and of the pure argv builders
whose docstrings say "tests assert it": every element, in order."""
from __future__ import annotations

from pathlib import Path

import pytest

from ftstudy.eval import jail
from ftstudy.train import merge
from ftstudy.config import registry
from ftstudy.train import train
from ftstudy.eval.harness import BenchContext, HarnessUnavailable, bfcl, code, lmeval

OUT = Path("/r/.work/base-x")


def test_bigcode_argv_cpu_base():
    ctx = BenchContext("code", "/models/tiny")
    # Python tasks: generation only (their programs run in ftstudy's sandbox); bigcode writes references_<task>.json
    # to its current directory, so no --save_references_path (which its main.py ignores)
    assert code.bigcode_argv("/env/bin/python", "/src/main.py", ctx, {"task": "humaneval"}, OUT) == [
        "/env/bin/python", "/src/main.py", "--model", "/models/tiny", "--tasks", "humaneval", "--n_samples", "1",
        "--do_sample", "False", "--temperature", "0", "--batch_size", "1", "--max_length_generation", "1024",
        "--precision", "fp32", "--generation_only", "--save_generations", "--save_generations_path",
        "/r/.work/base-x/generations.json", "--save_references"]


def test_bigcode_argv_gpu_adapter_and_limit():
    ctx = BenchContext("code", "Qwen/Qwen2.5-7B", adapter="/runs/a", device="cuda", limit=5)
    assert code.bigcode_argv("py", "main.py", ctx, {"task": "multiple-js,multiple-rs"}, OUT) == [
        "py", "main.py", "--model", "Qwen/Qwen2.5-7B", "--tasks", "multiple-js,multiple-rs", "--n_samples", "1",
        "--do_sample", "False", "--temperature", "0", "--batch_size", "1", "--max_length_generation", "1024",
        "--precision", "bf16", "--allow_code_execution", "--metric_output_path", "/r/.work/base-x/evaluation_results.json",
        "--save_generations", "--save_generations_path", "/r/.work/base-x/generations.json",
        "--peft_model", "/runs/a", "--limit", "5"]


def test_bfcl_argv_exact():
    cats = bfcl.categories(registry.benchmark("bfcl"))
    assert cats == ["simple_python", "simple_java", "simple_javascript", "multiple", "parallel", "parallel_multiple",
                    "irrelevance"]  # BFCL's non_live group: what its non-live AST summary averages, and irrelevance
    joined = ",".join(cats)
    assert bfcl.generate_argv("/e/bin/bfcl", "/runs/a/merged", cats) == [
        "/e/bin/bfcl", "generate", "--model", "Qwen/Qwen3-8B-FC", "--test-category", joined, "--skip-server-setup",
        "--local-model-path", "/runs/a/merged"]
    assert bfcl.generate_argv("/e/bin/bfcl", "/m", cats, run_ids=True, threads=1)[-3:] == ["--run-ids", "--num-threads", "1"]
    assert bfcl.evaluate_argv("/e/bin/bfcl", cats) == [
        "/e/bin/bfcl", "evaluate", "--model", "Qwen/Qwen3-8B-FC", "--test-category", joined]
    assert bfcl.evaluate_argv("/e/bin/bfcl", cats, partial=True)[-1] == "--partial-eval"


def test_bfcl_dry_run_shows_both_commands_with_their_environment(tmp_path):
    ctx = BenchContext("tool_use", "/runs/a/merged", out_dir=tmp_path, dry_run=True)
    bench = registry.benchmark("bfcl")
    out = bfcl.run(ctx, bench)
    root = bfcl.project_root(ctx, bench, None)
    assert root.parent == tmp_path / ".work" / "tool_use" / "base-bfcl"
    env = f"BFCL_PROJECT_ROOT={root} HF_HUB_OFFLINE=1"
    off = "WANDB_BFCL_PROJECT=''"  # the server's URL is known once it runs
    cats = bench["task"]
    assert out.settings["command"] == (
        f"{env} REMOTE_OPENAI_BASE_URL='<server>/v1' {off} '<bfcl-env>/bin/bfcl' generate --model Qwen/Qwen3-8B-FC "
        f"--test-category {cats} --skip-server-setup --local-model-path '<hub snapshot folder>' --num-threads 1\n"
        f"{env} {off} '<bfcl-env>/bin/bfcl' evaluate --model Qwen/Qwen3-8B-FC --test-category {cats}")
    assert not root.exists()


def test_bfcl_keys_its_work_folder_by_model_and_protocol(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, weights in ((a, b"1"), (b, b"2")):
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(weights)
    bench = registry.benchmark("bfcl")
    ctx = lambda m: BenchContext("tool_use", str(m), out_dir=tmp_path / "results")
    assert bfcl.project_root(ctx(a), bench, None) == bfcl.project_root(ctx(a), bench, None)  # a rerun resumes
    assert bfcl.project_root(ctx(a), bench, None) != bfcl.project_root(ctx(b), bench, None)  # never another model's
    assert bfcl.project_root(ctx(a), bench, None) != bfcl.project_root(ctx(a), bench, ["simple_python_0"])
    assert bfcl.project_root(ctx(a), bench, None) != bfcl.project_root(ctx(a), {**bench, "version": 99}, None)


def test_bfcl_refuses_an_adapter():
    with pytest.raises(HarnessUnavailable, match="merged weights"):
        bfcl.run(BenchContext("tool_use", "m", adapter="/runs/a"), registry.benchmark("bfcl"))


def test_merge_and_check_argv_exact():
    assert merge.merge_argv("/t/bin/python", "runs/x/launch.yaml", "runs/x", "runs/x") == [
        "/t/bin/python", "-m", "axolotl.cli.merge_lora", "runs/x/launch.yaml", "--lora_model_dir=runs/x",
        "--output_dir=runs/x"]
    assert merge.check_argv("/t/bin/python", "/m", "runs/x", "runs/x/merged") == [
        "/t/bin/python", str(merge.TOOL_SCRIPTS / "merge_check.py"), "/m", "runs/x", "runs/x/merged"]


def test_train_launch_argv_gpu_exact():
    # two GPUs on one machine: data parallel over loopback with a static rendezvous (ftstudy/train/launch.py)
    assert train.launch_argv("/t/bin/accelerate", "runs/x/launch.yaml", 2) == [
        "/t/bin/accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--machine_rank", "0", "--main_process_ip", "127.0.0.1", "--main_process_port", "29500",
        "--rdzv_backend", "static", "--mixed_precision", "bf16", "--dynamo_backend", "no",
        "-m", "axolotl.cli.train", "runs/x/launch.yaml"]


def test_lm_eval_spec_exact(tmp_path):
    ctx = BenchContext("classification", "/m", seed=3)
    assert lmeval.spec(ctx, registry.benchmark("ag_news"), tmp_path, Path("/inc"), {"ag_news_mc": [1, 4]},
                       tmp_path / "c") == {
        "model": "hf", "model_args": "pretrained=/m,dtype=float32", "tasks": ["ag_news_mc"], "output_path": str(tmp_path),
        "seed": 3, "device": "cpu", "num_fewshot": 0, "batch_size": 32, "apply_chat_template": True,
        "fewshot_as_multiturn": False, "include_path": "/inc", "local_only": True, "samples": {"ag_news_mc": [1, 4]},
        "confirm_run_unsafe_code": False, "gen_kwargs": None, "predict_only": False, "use_cache": str(tmp_path / "c")}
    # the protocol decides shots and template: MMLU 5-shot as the Qwen2.5 report, IFEval chat by definition
    mmlu = lmeval.spec(ctx, registry.benchmark("mmlu"), tmp_path, None, None)
    ifeval = lmeval.spec(ctx, registry.benchmark("ifeval"), tmp_path, None, None)
    assert (mmlu["num_fewshot"], mmlu["apply_chat_template"], mmlu["fewshot_as_multiturn"]) == (5, False, False)
    assert (ifeval["num_fewshot"], ifeval["apply_chat_template"]) == (0, True)
    (tmp_path / "ad").mkdir()
    (tmp_path / "ad" / "adapter_config.json").write_text('{"r": 32}')
    gpu = lmeval.spec(BenchContext("classification", "/m", adapter=str(tmp_path / "ad"), device="cuda"),
                      registry.benchmark("ag_news"), tmp_path, None, None)
    assert (gpu["model"], gpu["model_args"], gpu["batch_size"], gpu["device"]) == (
        "vllm", f"pretrained=/m,dtype=bfloat16,gpu_memory_utilization=0.85,enable_lora=True,max_lora_rank=32,"
                f"lora_local_path={tmp_path / 'ad'}", "auto", "cuda")
    assert lmeval.lm_eval_argv("/e/bin/python", tmp_path / "spec.json") == [
        "/e/bin/python", str(lmeval.RUNNER), str(tmp_path / "spec.json")]


def test_jail_bind_args_exact(tmp_path):
    """Each path read-only at its real place; a symlinked folder on the way is recreated as that symlink;
    a symlinked file is shown at both names."""
    real = tmp_path / "usr" / "lib"
    real.mkdir(parents=True)
    (real / "libpython.so").write_text("")
    (real / "ld.so.2").symlink_to("libpython.so")
    (tmp_path / "lib").symlink_to("usr/lib")
    assert jail.bind_args((str(tmp_path / "lib" / "libpython.so"), str(real / "ld.so.2"))) == [
        "--ro-bind", f"{real}/libpython.so", f"{real}/libpython.so",
        "--ro-bind", f"{real}/libpython.so", f"{real}/libpython.so", "--ro-bind", f"{real}/libpython.so", f"{real}/ld.so.2",
        "--symlink", "usr/lib", f"{tmp_path}/lib"]


def test_jail_bwrap_argv_exact(tmp_path):
    (tmp_path / "py").write_text("")
    assert jail.bwrap_argv("/usr/bin/bwrap", "/x/task", ["/usr/bin/python3", "-I", "-c", "pass"], (str(tmp_path / "py"),)) == [
        "/usr/bin/bwrap", "--ro-bind", f"{tmp_path}/py", f"{tmp_path}/py", "--ro-bind", "/x/task", "/task",
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--remount-ro", "/", "--unshare-all", "--die-with-parent",
        "--new-session", "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534", "--hostname", "sandbox",
        "--chdir", "/tmp", "/usr/bin/python3", "-I", "-c", "pass"]
