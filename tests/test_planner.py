"""The planner: parameter counts, published memory figures, fits/fix logic, tokens, JSON keys, checks, CLI."""
from __future__ import annotations

import json
import time

import pytest
import yaml
from click.testing import CliRunner

from ftstudy.config import expectations
from ftstudy.config import gen
from ftstudy.plan import estimate as planner
from ftstudy.plan import published as planner_cases
from ftstudy.plan import check as planner_check
from ftstudy.config import registry
from ftstudy.cli.main import main
from ftstudy.config.memory import Setup, memory
from ftstudy.config.model_shape import ModelConfigMissing, load_shape

TINY_CONFIG = {  # the shape of ftstudy's tiny test model (tool_env_scripts/build_tiny.py): 4 layers, hidden 128
    "model_type": "qwen2", "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 4,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 544, "tie_word_embeddings": False,
}
MEMORY_PARTS = {"weights", "trainable", "gradients", "optimizer", "reference_model", "activations", "logits",
                "zero3_buffers", "overhead", "total"}


def test_parameter_counts():
    qwen = load_shape("Qwen/Qwen2.5-7B")
    assert round(qwen.params_total / 1e9, 3) == 7.616  # model card 7.61B; performance-reference: 7.616B
    assert round(qwen.params_non_embedding / 1e9, 3) == 6.526
    assert round(qwen.lora_params(16, qwen.LINEARS) / 1e6, 1) == 40.4  # §4.1: 40.4M (0.53%)
    assert round(qwen.params_16bit_under_qlora / 1e9, 2) == 1.09  # §4.1: embed + lm_head stay bf16
    assert round(load_shape("meta-llama/Llama-3.1-8B").params_total / 1e9, 2) == 8.03


# (case id, source, published figure, unit): each must be predicted within 15%.
DPO_SOURCE = "superkaiba/explore-persona-space#36, in HF dataset odyn-network/benchmark-finetune-dpo-v1"
PUBLISHED = [
    ("qwen7b-lora-dpo", DPO_SOURCE, 19.08, "GB"),
    ("llama8b-qlora-4090", "pytorch/torchtune README, 'Memory and training speed' table", 7.4, "GiB"),
    ("llama8b-lora-4090", "pytorch/torchtune README, 'Memory and training speed' table", 16.2, "GiB"),
    ("llama8b-lora-a6000", "pytorch/torchtune README, 'Memory and training speed' table", 30.3, "GiB"),
    ("qwen7b-full-8bit-states", "performance-reference.md §4.1 table (also architecture.md: '~46 GB')", 45.7, "GB"),
    ("qwen7b-full-mixed-adamw-states", "performance-reference.md §4.1 table", 121.8, "GB"),
    ("qwen7b-qlora-nf4-weights", "performance-reference.md §4.1 table", 5.5, "GB"),
    ("qwen7b-lora-r16-states", "performance-reference.md §4.1 table", 0.65, "GB"),
]


@pytest.mark.parametrize("case_id,source,published,unit", PUBLISHED, ids=[p[0] for p in PUBLISHED])
def test_published_case_within_15_percent(case_id, source, published, unit):
    c = planner_cases.case(case_id)
    assert (c["source"], c["published"], c["unit"]) == (source, published, unit)
    assert abs(planner_cases.error_pct(c)) <= 15.0, f"{case_id}: predicted {planner_cases.predict(c):.2f} {unit}"


def test_every_published_case_is_listed():
    assert [c["id"] for c in planner_cases.CASES] == [p[0] for p in PUBLISHED]
    assert len(planner_cases.table()) == len(PUBLISHED)


def test_mixed_precision_adamw_full_ft_does_not_fit_the_spark_and_8bit_is_the_fix():
    p = planner.plan("instruction", "full", "dgx-spark", overrides={"optimizer": "adamw_torch_fused", "micro_batch_size": 1,
                                                                    "gradient_checkpointing": True})
    assert p["usable_gb"] == 120.0 and p["fits"] is False
    assert p["memory_gb"]["weights"] + p["memory_gb"]["gradients"] + p["memory_gb"]["optimizer"] > 120
    assert p["fix"]["set"] == {"optimizer": "paged_adamw_8bit"}
    assert p["fix"]["memory_gb"] < 60
    ok = planner.plan("instruction", "full", "dgx-spark")  # the profile's own choice
    assert ok["settings"]["optimizer"] == "adamw_8bit" and ok["fits"] and ok["fix"] is None
    assert 45 < ok["memory_gb"]["total"] <= 0.9 * 120  # tuning.fill spends the rest on micro-batch and activations


def test_too_large_micro_batch_is_fixed_by_the_largest_micro_batch_that_fits():
    p = planner.plan("chat", "lora", "h100", overrides={"micro_batch_size": 32, "gradient_accumulation_steps": 1})
    assert not p["fits"]
    change = p["fix"]["set"]
    assert set(change) == {"micro_batch_size", "gradient_accumulation_steps"}
    assert change["micro_batch_size"] * change["gradient_accumulation_steps"] == 32  # same global batch
    bigger = planner.plan("chat", "lora", "h100", overrides={"micro_batch_size": change["micro_batch_size"] * 2})
    assert not bigger["fits"] and p["fix"]["memory_gb"] <= 79.0


def test_cpu_fix_never_suggests_cuda_only_changes():
    cpu = json.dumps(planner.fix_candidates(gen.build("chat", "lora", "cpu"), "cpu"))
    plain = {"optimizer": "adamw_torch", "liger_fused_linear_cross_entropy": False, "gradient_checkpointing": True}
    gpu = json.dumps(planner.fix_candidates(gen.build("chat", "lora", "h100", overrides=plain), "h100"))
    for cuda_only in ("liger", "8bit", "qlora", "activation_offloading"):
        assert cuda_only not in cpu and cuda_only in gpu
    p = planner.plan("chat", "lora", "cpu")  # 7.6B in fp32 on a 16 GB CPU profile: nothing is enough
    assert not p["fits"] and p["fix"] is None


def test_dpo_reference_model():
    lora = planner.plan("dpo", "dpo", "h100")
    assert lora["memory_gb"]["reference_model"] == 0 and "adapters disabled" in lora["reference_model"]
    assert lora["settings"]["tokens_per_micro_batch"] == 2 * lora["settings"]["micro_batch_size"] * 2048  # chosen + rejected
    full = planner.plan("dpo", "dpo", "h100", overrides={"adapter": None, "optimizer": "paged_adamw_8bit"})
    assert full["memory_gb"]["reference_model"] == pytest.approx(full["memory_gb"]["weights"])
    pre = planner.plan("dpo", "dpo", "h100", overrides={"adapter": None, "precompute_ref_log_probs": True})
    assert pre["memory_gb"]["reference_model"] == 0 and "precomputed" in pre["reference_model"]


def test_activations_with_and_without_checkpointing():
    assert planner.plan("code", "full", "h100")["activations_gb"]["used"] == "without_checkpointing"  # it fits
    p = planner.plan("code", "full", "h100", overrides={"gradient_checkpointing": True})
    acts = p["activations_gb"]
    assert acts["used"] == "with_checkpointing" and p["memory_gb"]["activations"] == acts["with_checkpointing"]
    assert acts["without_checkpointing"] > 5 * acts["with_checkpointing"]
    qwen = load_shape("Qwen/Qwen2.5-7B")  # §4.1: checkpointed layer inputs ≈ 0.41 GB per 2k-token sequence
    assert qwen.layers * 2 * qwen.hidden * 2048 / 1e9 == pytest.approx(0.41, abs=0.01)


def test_logits_for_the_152k_vocabulary():
    s = Setup(load_shape("Qwen/Qwen2.5-7B"), "lora", "adamw_torch", 1, 2048, lora_r=16, loss="hf")
    assert memory(s)["logits"] == pytest.approx(0.62 + 1.25 + 1.25, abs=0.02)  # bf16 + fp32 upcast + log-softmax
    fused = memory(Setup(s.model, "lora", "adamw_torch", 1, 2048, lora_r=16, loss="fused"))["logits"]
    assert fused < 0.1  # Liger: one chunk of logits at a time


def test_zero_shards_mixed_precision_states_over_eight_gpus():
    p = planner.plan("code", "full", "h100x8")  # ZeRO-2 fits on 8 GPUs: the planner picks it (less traffic)
    assert p["settings"]["zero_stage"] == 2 and p["settings"]["gpus"] == 8
    assert p["memory_gb"]["optimizer"] == pytest.approx(7.616 * 12 / 8, rel=0.01)
    assert p["memory_gb"]["weights"] == pytest.approx(7.616 * 2, rel=0.01) and p["fits"]
    z3 = planner.plan("code", "full", "h100x8", overrides={"deepspeed": "axolotl_configs/deepspeed/zero3_bf16.json"})
    assert z3["settings"]["zero_stage"] == 3 and z3["memory_gb"]["weights"] == pytest.approx(7.616 * 2 / 8, rel=0.01)


def test_flops_per_token_full_vs_lora():
    full = planner.plan("instruction", "full", "h100")["flops_per_token"]
    lora = planner.plan("instruction", "lora", "h100")["flops_per_token"]
    assert 6 * 7.07e9 < full < 6 * 7.07e9 + 3e9  # 6N + attention (N without the embedding lookup)
    assert 0.6 < lora / full < 0.75  # LoRA ≈ 2/3 of full fine-tuning (§7.1)


def test_tokens_from_manifest_beat_the_estimate(tmp_path):
    est = planner.plan("code", "lora", "dgx-spark", data_dir=tmp_path)["tokens"]
    assert est["source"] == "estimate" and est["rows"] == 75_197 and est["epochs"] == 2
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "magicoder.manifest.json").write_text(json.dumps({"rows": 1000, "tokens": 400_000}))
    got = planner.plan("code", "lora", "dgx-spark", data_dir=tmp_path)["tokens"]
    assert got["source"] == "manifest" and got["rows"] == 1000 and got["mean_tokens_per_row"] == 400
    assert got["train_tokens"] == 800_000 and got["packing_efficiency"] == 0.97


def test_every_experiment_and_method_plans_on_spark_and_h100():
    seen = 0
    start = time.perf_counter()
    for hw in ("dgx-spark", "h100"):
        for exp in registry.experiments():
            for method in exp.methods:
                p = planner.plan(exp.id, method, hw)
                assert p["fits"], (exp.id, method, hw)
                assert p["hours"] > 0 and p["plan_hours"] == expectations.planned_hours(exp, method)
                seen += 1
    assert seen == 2 * sum(len(e.methods) for e in registry.experiments())
    assert time.perf_counter() - start < 5  # the benchmark holds the real figure (< 1 s)


def test_unknown_base_model_names_the_bundled_configs():
    with pytest.raises(ModelConfigMissing, match="Qwen/Qwen2.5-7B"):
        load_shape("nobody/nothing")


def _tiny_run(tmp_path, tps=5000.0, peak_gib=1.3):
    model = tmp_path / "tiny"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(TINY_CONFIG))
    cfg = gen.build("code", "lora", "cpu", base_model=str(model))
    run = tmp_path / "runs" / "code" / "lora-cpu-abc"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(gen.render(cfg, "code", "lora", "cpu", "ftstudy gen code", "config.yaml"))
    (run / "data.json").write_text(json.dumps({"datasets": [{"path": "x", "manifest": {"rows": 100, "tokens": 20_000}}]}))
    (run / "train.json").write_text(json.dumps({"tokens_per_second": tps, "peak_memory_gb": peak_gib,
                                                "peak_memory_kind": "process_rss", "experiment": "code",
                                                "method": "lora", "hardware": "cpu", "tokens_per_epoch": 21_000}))
    return run


def test_predict_and_check_a_tiny_cpu_run(tmp_path):
    run = _tiny_run(tmp_path)
    pred = planner_check.predict_for_run(run)
    assert pred["tokens"]["source"] == "manifest" and pred["params"]["total"] < 1e6
    assert pred["settings"]["precision"] == "fp32"
    rows = {r["quantity"]: r for r in planner_check.check(run)["rows"]}
    assert rows["peak_memory_gb"]["measured"] == pytest.approx(1.3)  # train.json records GB
    assert rows["peak_memory_gb"]["error_pct"] is not None and rows["tokens_per_second"]["measured"] == 5000
    assert rows["tokens_per_epoch"]["error_pct"] == pytest.approx(100 * (20_000 - 21_000) / 21_000, abs=0.1)


def test_calibrate_updates_a_versioned_file_and_the_plan_uses_it(tmp_path, monkeypatch):
    cal = tmp_path / "calibration.json"
    monkeypatch.setenv("FTSTUDY_CALIBRATION", str(cal))
    run = _tiny_run(tmp_path)
    before = planner_check.check(run)["rows"][1]["predicted"]
    res = CliRunner().invoke(main, ["plan", "--calibrate", str(run)])
    assert res.exit_code == 0, res.output
    data = json.loads(cal.read_text())
    prof = data["profiles"]["cpu"]
    assert data["version"] == 1 and len(prof["runs"]) == 1 and prof["mfu"] > 0 and prof["overhead_gb"] >= 0
    CliRunner().invoke(main, ["plan", "--calibrate", str(run)])  # the same run again replaces, not appends
    assert len(json.loads(cal.read_text())["profiles"]["cpu"]["runs"]) == 1
    after = planner_check.check(run)["rows"]
    assert after[1]["predicted"] != before and abs(after[1]["error_pct"]) < 1  # calibrated on this very run
    assert abs(after[0]["error_pct"]) < 1


def test_cli_plan_text_and_json_keys():
    runner = CliRunner()
    text = runner.invoke(main, ["plan", "code", "--hardware", "h100"])
    assert text.exit_code == 0, text.output
    assert "peak memory per GPU" in text.output and "fits" in text.output and "study plan: ~20-30 h (section), ~25 h (table) on dgx-spark" in text.output
    res = runner.invoke(main, ["plan", "classification", "--method", "qlora", "--json"])
    out = json.loads(res.output)
    assert {"memory_gb", "fits", "tokens", "hours", "plan_hours"} <= set(out)
    assert set(out["memory_gb"]) == MEMORY_PARTS
    assert out["memory_gb"]["total"] == pytest.approx(sum(v for k, v in out["memory_gb"].items() if k != "total"), abs=0.01)
    assert {"rows", "mean_tokens_per_row", "epochs", "packing_efficiency", "train_tokens"} <= set(out["tokens"])
    assert out["plan_hours"] is None and out["fits"] is True  # the plan gives AG News no hours


def test_cli_plan_fix_is_printed_as_set_options():
    res = CliRunner().invoke(main, ["plan", "instruction", "--method", "full", "--set", "optimizer=adamw_torch_fused"])
    assert res.exit_code == 0 and "DOES NOT FIT" in res.output
    assert "cheapest fix: --set optimizer=paged_adamw_8bit" in res.output


def test_cli_plan_errors_are_one_line():
    runner = CliRunner()
    res = runner.invoke(main, ["plan", "cod"])
    assert res.exit_code != 0 and "Did you mean code" in res.output
    res = runner.invoke(main, ["plan", "code", "--base-model", "nobody/nothing"])
    assert res.exit_code == 1 and "bundled ids" in res.output and "Traceback" not in res.output
    assert runner.invoke(main, ["plan"]).exit_code == 2
    res = runner.invoke(main, ["plan", "--check", "/nonexistent-run"])
    assert res.exit_code == 1 and "no config.yaml" in res.output


def test_cli_plan_help_has_an_example():
    res = CliRunner().invoke(main, ["plan", "--help"])
    assert res.exit_code == 0 and "Example:" in res.output and "--check" in res.output


def test_plan_of_a_local_model_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY_CONFIG))
    p = planner.plan("classification", "lora", "cpu", base_model=str(tmp_path))
    assert p["params"]["total"] < 1e6 and p["fits"]
    assert p["memory_gb"]["overhead"] / p["memory_gb"]["total"] > 0.9  # a tiny model's RSS is the framework
    assert yaml.safe_load(json.dumps(p))  # JSON-able throughout


def test_the_bundled_calibration_file_is_the_one_read(monkeypatch):
    from ftstudy.config import calibration as data_stats

    monkeypatch.delenv("FTSTUDY_CALIBRATION", raising=False)
    assert data_stats.calibration_path().is_file(), data_stats.calibration_path()
    assert "measured" in data_stats.load_calibration()


def test_check_view_lines_up_predicted_measured_and_error():
    from ftstudy.plan.views import render_check

    c = {"run": "runs/code/lora-cpu-1", "experiment": "code", "method": "lora", "hardware": "cpu", "rows": [
        {"quantity": "peak_memory_gb", "predicted": 12.345, "measured": 13.0, "kind": "rss", "error_pct": -5.0},
        {"quantity": "tokens_per_second", "predicted": 1234567.891, "measured": None, "error_pct": None},
        {"quantity": "tokens_per_epoch", "predicted": 0.0, "measured": 98765.4, "error_pct": -100.0}]}
    assert render_check(c) == (
        "check: runs/code/lora-cpu-1 (code × lora on cpu)\n"
        "                         predicted    measured    error\n"
        "  peak_memory_gb             12.35       13.00    -5.0%  (rss)\n"
        "  tokens_per_second   1,234,567.89           -        -\n"
        "  tokens_per_epoch            0.00   98,765.40  -100.0%")
