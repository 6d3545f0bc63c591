"""Exact command lines of the seams that cannot run here (bigcode, BFCL, vLLM) and of the pure argv builders
whose docstrings say "tests assert it": every element, in order."""
from __future__ import annotations

import json
import os
import sys
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
    assert code.bigcode_argv("/env/bin/python", "/src/main.py", ctx, {"task": "humaneval"}, OUT) == [
        "/env/bin/python", "/src/main.py", "--model", "/models/tiny", "--tasks", "humaneval", "--n_samples", "1",
        "--do_sample", "False", "--temperature", "0", "--batch_size", "1", "--max_length_generation", "1024",
        "--precision", "fp32", "--allow_code_execution", "--metric_output_path", "/r/.work/base-x/evaluation_results.json",
        "--save_generations", "--save_generations_path", "/r/.work/base-x/generations.json"]


def test_bigcode_argv_gpu_adapter_and_limit():
    ctx = BenchContext("code", "Qwen/Qwen2.5-7B", adapter="/runs/a", device="cuda", limit=5)
    assert code.bigcode_argv("py", "main.py", ctx, {"task": "multiple-js,multiple-rs"}, OUT) == [
        "py", "main.py", "--model", "Qwen/Qwen2.5-7B", "--tasks", "multiple-js,multiple-rs", "--n_samples", "1",
        "--do_sample", "False", "--temperature", "0", "--batch_size", "1", "--max_length_generation", "1024",
        "--precision", "bf16", "--allow_code_execution", "--metric_output_path", "/r/.work/base-x/evaluation_results.json",
        "--save_generations", "--save_generations_path", "/r/.work/base-x/generations.json",
        "--peft_model", "/runs/a", "--limit", "5"]


# A stand-in for bigcode-evaluation-harness's environment (a git install this machine cannot fetch): its
# python answers bigcode_available()'s import probe and bigcode_main()'s folder probe, and as main.py records
# its argv and writes generations and references in bigcode's shapes (one right, one wrong completion).
FAKE_BIGCODE_PY = '''#!{python}
import json, sys
args = sys.argv[1:]
if args[0] == "-c":
    print({root!r})
    sys.exit(0)
json.dump(args, open({log!r}, "w"))
opt = lambda k: args[args.index(k) + 1]
json.dump([["def add(a, b):\\n    return a + b\\n"], ["def add(a, b):\\n    return a - b\\n"]],
          open(opt("--save_generations_path"), "w"))
if "--save_references_path" in args:
    json.dump(["assert add(2, 3) == 5\\n", "assert add(2, 3) == 5\\n"], open(opt("--save_references_path"), "w"))
else:
    json.dump({{"multiple-js": {{"pass@1": 0.25}}, "multiple-rs": {{"pass@1": 0.75}}}},
              open(opt("--metric_output_path"), "w"))
'''


@pytest.fixture
def fake_bigcode(tmp_path, monkeypatch):
    env = tmp_path / "bigcode-env"
    (env / "bin").mkdir(parents=True)
    log = tmp_path / "argv.json"
    py = env / "bin" / "python"
    py.write_text(FAKE_BIGCODE_PY.format(python=sys.executable, root=str(tmp_path / "src"), log=str(log)))
    py.chmod(0o755)
    monkeypatch.setenv("FTSTUDY_BIGCODE_ENV", str(env))
    return py, log


def test_run_bigcode_python_task_generates_only_and_executes_in_the_sandbox(fake_bigcode, tmp_path):
    py, log = fake_bigcode
    ctx = BenchContext("code", "/models/tiny", out_dir=tmp_path / "results", allow_code_execution=True)
    out = code.run(ctx, registry.benchmark("humaneval"))
    work = tmp_path / "results" / ".work" / "code" / "base-humaneval"
    expected = [str(py), str(tmp_path / "src" / "main.py"), "--model", "/models/tiny", "--tasks", "humaneval",
                "--n_samples", "1", "--do_sample", "False", "--temperature", "0", "--batch_size", "1",
                "--max_length_generation", "1024", "--precision", "fp32",
                "--metric_output_path", f"{work}/evaluation_results.json", "--save_generations",
                "--save_generations_path", f"{work}/generations.json",
                "--generation_only", "--save_references", "--save_references_path", f"{work}/references.json"]
    assert ctx.commands == [expected] and json.loads(log.read_text()) == expected[1:]
    assert [(s["id"], s["status"], s["score"]) for s in out.samples] == [("0", "passed", 1.0), ("1", "failed", 0.0)]
    assert out.metrics == {"pass@1": 0.5} and out.settings["execution"] == "ftstudy sandbox"


def test_run_bigcode_other_languages_run_without_network(fake_bigcode, tmp_path):
    py, log = fake_bigcode
    ctx = BenchContext("code", "/models/tiny", out_dir=tmp_path / "results", allow_code_execution=True)
    out = code.run(ctx, registry.benchmark("multipl_e"))
    work = tmp_path / "results" / ".work" / "code" / "base-multipl_e"
    inner = [str(py), str(tmp_path / "src" / "main.py"), "--model", "/models/tiny", "--tasks",
             "multiple-js,multiple-java,multiple-rs", "--n_samples", "1", "--do_sample", "False", "--temperature", "0",
             "--batch_size", "1", "--max_length_generation", "1024", "--precision", "fp32", "--allow_code_execution",
             "--metric_output_path", f"{work}/evaluation_results.json", "--save_generations",
             "--save_generations_path", f"{work}/generations.json"]
    import shutil

    assert ctx.commands == [[shutil.which("unshare"), "-rn", *inner]]
    assert json.loads(log.read_text()) == inner[1:]
    assert out.metrics == {"multiple-js.pass@1": 0.25, "multiple-rs.pass@1": 0.75, "pass@1": 0.5}


def test_bigcode_without_a_network_namespace_refuses_and_runs_nothing(fake_bigcode, tmp_path, monkeypatch):
    """No `unshare` on PATH: the languages bigcode executes itself are refused, never run with the network."""
    py, log = fake_bigcode
    only = tmp_path / "path"
    only.mkdir()
    os.symlink("/usr/bin/bwrap", only / "bwrap")  # the jail itself is there; only the network namespace is not
    monkeypatch.setenv("PATH", str(only))
    ctx = BenchContext("code", "/models/tiny", out_dir=tmp_path / "results", allow_code_execution=True)
    with pytest.raises(HarnessUnavailable) as err:
        code.run_bigcode(ctx, registry.benchmark("multipl_e"))
    assert str(err.value).startswith("code execution refused") and "\n" not in str(err.value)
    assert not log.exists() and ctx.commands == []


def test_bfcl_argv_exact():
    cats = registry.benchmark("bfcl")["task"]
    assert bfcl.generate_argv("/e/bin/bfcl", "/runs/a/merged", cats) == [
        "/e/bin/bfcl", "generate", "--model", "Qwen/Qwen3-8B-FC", "--test-category",
        "simple_python,multiple,parallel,parallel_multiple,irrelevance", "--backend", "vllm",
        "--local-model-path", "/runs/a/merged", "--skip-server-setup"]
    assert bfcl.evaluate_argv("/e/bin/bfcl", cats) == [
        "/e/bin/bfcl", "evaluate", "--model", "Qwen/Qwen3-8B-FC", "--test-category",
        "simple_python,multiple,parallel,parallel_multiple,irrelevance"]
    assert bfcl.serve_argv("/e/bin/vllm", "/runs/a/merged") == [
        "/e/bin/vllm", "serve", "/runs/a/merged", "--host", "127.0.0.1", "--port", "1053", "--max-model-len", "8192"]


def test_bfcl_dry_run_shows_both_commands_with_their_environment(tmp_path):
    ctx = BenchContext("tool_use", "/runs/a/merged", out_dir=tmp_path, dry_run=True)
    out = bfcl.run(ctx, registry.benchmark("bfcl"))
    work = tmp_path / ".work" / "tool_use" / "base-bfcl"
    env = f"BFCL_PROJECT_ROOT={work} LOCAL_SERVER_ENDPOINT=127.0.0.1 LOCAL_SERVER_PORT=1053"
    cats = "simple_python,multiple,parallel,parallel_multiple,irrelevance"
    assert out.settings["command"] == (
        f"{env} '<bfcl-env>/bin/bfcl' generate --model Qwen/Qwen3-8B-FC --test-category {cats} --backend vllm "
        f"--local-model-path /runs/a/merged --skip-server-setup\n"
        f"{env} '<bfcl-env>/bin/bfcl' evaluate --model Qwen/Qwen3-8B-FC --test-category {cats}")
    assert not work.exists()


def test_bfcl_refuses_an_adapter_and_a_cpu_host():
    with pytest.raises(HarnessUnavailable, match="merged weights"):
        bfcl.run(BenchContext("tool_use", "m", adapter="/runs/a"), registry.benchmark("bfcl"))
    with pytest.raises(HarnessUnavailable, match="GPU host"):
        bfcl.run(BenchContext("tool_use", "m"), registry.benchmark("bfcl"))


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
        "seed": 3, "device": "cpu", "num_fewshot": 0, "batch_size": 32, "apply_chat_template": False,
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
