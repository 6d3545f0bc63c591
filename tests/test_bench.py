"""Benchmark dispatch: every declared benchmark resolves to a harness and a task; a real lm-eval run (hf
backend) on a local task YAML with the tiny model, base and with a LoRA adapter; results are reused and never
overwritten by another model's; seeded subsets; exact argv of the seams that cannot run here."""
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from ftstudy.eval import bench
from ftstudy.core import tool_envs as envs
from ftstudy.eval import harness
from ftstudy.eval import records
from ftstudy.config import registry
from ftstudy.eval.harness import BenchContext, lmeval
from ftstudy.core.bundled import evals_dir
from ftstudy.data.decontam.items import task_yaml

FIX = Path(__file__).parent / "fixtures"


def test_every_benchmark_resolves_to_a_harness_and_task():
    checked = 0
    for e in registry.experiments():
        for bid in e.all_benchmarks:
            b = registry.benchmark(bid)
            assert callable(harness.get(b["harness"])), bid
            if b.get("local_task"):
                task = evals_dir() / "tasks" / f"{b['task']}.yaml"
                assert task.is_file(), f"{bid}: {task} missing"
                doc = task_yaml(task)
                assert (doc["group"] if "group" in doc else doc["task"]) == b["task"]
            for key in ("rubric", "questions"):
                if key in b:
                    assert (evals_dir() / b[key]).is_file(), f"{bid}: {b[key]} missing"
            checked += 1
    assert checked == sum(len(e.all_benchmarks) for e in registry.experiments()) > 0
    declared = registry.benchmarks()
    used = {b for e in registry.experiments() for b in e.all_benchmarks}
    assert used == {b for b, d in declared.items() if not d.get("probe_set")}  # probe sets: tests and demos only
    for bid, d in declared.items():
        assert callable(harness.get(d["harness"])), bid


def test_subset_is_seeded_and_the_same_for_every_model():
    ids = [str(i) for i in range(100)]
    a = harness.pick_subset(ids, 10, seed=3)
    assert a == harness.pick_subset(list(reversed(ids)), 10, seed=3) and a != ids[:10]
    assert a != harness.pick_subset(ids, 10, seed=4) and len(set(a)) == 10


def test_lm_eval_spec_is_the_same_for_base_and_adapter(tmp_path):
    bench_decl = registry.benchmark("ag_news")
    base = lmeval.spec(BenchContext("classification", "/m", tag="base"), bench_decl, tmp_path, None, None)
    (tmp_path / "ad").mkdir()
    (tmp_path / "ad" / "adapter_config.json").write_text('{"r": 8}')
    ft = lmeval.spec(BenchContext("classification", "/m", adapter=str(tmp_path / "ad"), tag="ft"), bench_decl, tmp_path,
                     None, None)
    differ = {k for k in base if base[k] != ft[k]}
    assert differ == {"model_args"} and ft["model_args"].endswith(f"peft={tmp_path / 'ad'}")
    gpu = lmeval.spec(BenchContext("classification", "/m", adapter=str(tmp_path / "ad"), device="cuda"), bench_decl,
                      tmp_path, None, None)
    assert gpu["model"] == "vllm" and "enable_lora=True" in gpu["model_args"] and "max_lora_rank=16" in gpu["model_args"]


def test_dry_run_lists_commands_and_runs_nothing(tmp_path):
    rows = bench.bench("classification", "/m", benchmarks=["ag_news"], dry_run=True, results_root=tmp_path,
                       progress=lambda s: None)
    assert rows[0]["status"] == "dry-run" and "lmeval_run.py" in rows[0]["commands"]
    assert not list(tmp_path.rglob("*.json"))


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    """A real (random, non-zero) LoRA adapter made with peft in the train environment."""
    out = tmp_path_factory.mktemp("adapter")
    code = ("import sys, torch; from peft import LoraConfig, get_peft_model; "
            "from transformers import AutoModelForCausalLM; torch.manual_seed(0); "
            "m = AutoModelForCausalLM.from_pretrained(sys.argv[1]); "
            "p = get_peft_model(m, LoraConfig(r=8, lora_alpha=1024, target_modules=['q_proj', 'v_proj', 'down_proj', 'lm_head'], "
            "init_lora_weights=False)); p.save_pretrained(sys.argv[2])")
    subprocess.run([str(envs.bin_path("train")), "-c", code, str(tiny_model), str(out)], check=True, capture_output=True)
    return out


@pytest.mark.tools
def test_real_lm_eval_base_and_adapter(tiny_model, adapter, tmp_path):
    common = dict(benchmarks=["ag_news"], limit=16, data_dir=str(FIX / "bench"), results_root=tmp_path,
                  progress=lambda s: None)
    base = bench.bench("classification", str(tiny_model), **common)[0]
    ft = bench.bench("classification", str(tiny_model), adapter=str(adapter), **common)[0]
    assert base["status"] == ft["status"] == "ok" and base["n"] == ft["n"] == 16
    rb = json.loads((tmp_path / "classification" / "base" / "ag_news.json").read_text())
    rf = json.loads((tmp_path / "classification" / "ft" / "ag_news.json").read_text())
    assert rb["subset_ids"] == rf["subset_ids"] and rb["model_fingerprint"] != rf["model_fingerprint"]
    for rec in (rb, rf):
        assert rec["harness"] == "lm-eval" and rec["harness_version"] == "0.4.13" and rec["higher_is_better"]
        assert 0 <= rec["value"] <= 1 and rec["settings"]["lm_eval"]["apply_chat_template"] is True  # its protocol
    sb = records.load_samples(tmp_path / "classification" / "base" / "ag_news.json")
    sf = records.load_samples(tmp_path / "classification" / "ft" / "ag_news.json")
    assert [s["id"] for s in sb] == [s["id"] for s in sf] and len(sb) == 16
    assert [s["output"] for s in sb] != [s["output"] for s in sf], "the adapter changed no choice"
    again = bench.bench("classification", str(tiny_model), **common)[0]
    assert again["status"] == "reused"
    shared = bench.bench("tool_use", str(tiny_model), benchmarks=["mmlu"], dry_run=True, results_root=tmp_path,
                         progress=lambda s: None)
    assert shared[0]["status"] == "dry-run"


def test_code_benchmark_refuses_without_permission(tmp_path):
    # refused by the preflight, before any generation: no result and no scratch folder is written
    with pytest.raises(harness.PreflightFailed, match="humaneval: it runs model-written code: pass "
                                                      "--allow-code-execution"):
        bench.bench("code", str(tmp_path), benchmarks=["humaneval"], results_root=tmp_path,
                    progress=lambda s: None, data_dir=str(FIX / "bench"))
    assert not list(tmp_path.rglob("*.json"))


def test_pubmedqa_scores_its_test_fold_only(tmp_path):
    """pubmedqa_local reads pqa_labeled rows (1,000 on the hub) and keeps the 500 test-fold PMIDs: a seeded subset
    is drawn from the rows it keeps, and the overlay keeps the task's own hook (`include`)."""
    rows = [json.loads(l) for l in (FIX / "lmeval_hub" / "qiaojin___PubMedQA.jsonl").read_text().splitlines()]
    (tmp_path / "pubmedqa_local.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    overlay, n_docs = lmeval.local_overlay(registry.benchmark("pubmedqa"), tmp_path, tmp_path / "work")
    assert len(rows) == 4 and n_docs == 3  # one fixture row is outside the fold
    task = yaml.safe_load((overlay / "pubmedqa_local.yaml").read_text())
    assert task["include"] == str(evals_dir() / "tasks" / "pubmedqa_local.yaml") and task["dataset_path"] == "json"
