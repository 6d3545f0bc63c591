"""Speed choices per profile × method (ftstudy/config/tuning.py): each has a reason and a source, the generated config
carries them, and the planner's memory fill keeps the global batch and stays under the headroom."""
import pytest

from ftstudy.config import gen
from ftstudy.plan import estimate as planner
from ftstudy.config import profiles
from ftstudy.config import registry
from ftstudy.config import tuning
from ftstudy.config.axolotl_setup import setup_from_config
from ftstudy.config.memory import memory

GPU = [hw for hw in profiles.HARDWARE if profiles.profile(hw)["gpu"]]
CASES = [(e.id, m, hw) for e in registry.experiments() for m in e.methods for hw in GPU]


def test_every_choice_has_a_reason_and_a_source():
    for hw, rows in tuning.CHOICES.items():
        assert hw in profiles.PROFILES
        for c in rows:
            assert c["set"] and len(c["why"]) > 40 and c["source"], (hw, c)
            assert set(c["methods"]) <= set(tuning.ALL)


@pytest.mark.parametrize("exp,method,hw", CASES)
def test_generated_config_carries_the_choices_and_fits(exp, method, hw):
    cfg = gen.build(exp, method, hw)
    sharded = profiles.profile(hw)["gpus"] > 1  # several GPUs: sharding.choose picks the optimizer that fits
    for c in tuning.choices(hw, method):
        for key, value in c["set"].items():
            if not (sharded and key == "optimizer"):
                assert cfg[key] == value, (key, c["why"])
    prof = profiles.profile(hw)
    default = profiles.batch_settings(hw, method)
    assert cfg["micro_batch_size"] * cfg["gradient_accumulation_steps"] == \
        default["micro_batch_size"] * default["gradient_accumulation_steps"]  # same global batch
    total = memory(setup_from_config(cfg, hw))["total"]
    assert total <= tuning.HEADROOM * prof["usable_gb"]
    bigger = {**cfg, "micro_batch_size": cfg["micro_batch_size"] * 2}  # the fill took the largest that fits
    if bigger["micro_batch_size"] <= default["micro_batch_size"] * default["gradient_accumulation_steps"]:
        assert memory(setup_from_config(bigger, hw))["total"] > tuning.HEADROOM * prof["usable_gb"]


def test_profile_specific_choices():
    h100, spark = gen.build("code", "lora", "h100"), gen.build("code", "lora", "dgx-spark")
    assert h100["attn_implementation"] == "flash_attention_2" and h100["torch_compile"] is True
    assert spark["attn_implementation"] == "sdpa" and spark["sdpa_varlen"] is True and spark["torch_compile"] is False
    assert gen.build("code", "full", "h100")["optimizer"] == "paged_adamw_8bit"
    assert gen.build("code", "full", "dgx-spark")["optimizer"] == "adamw_8bit"  # no paging on unified memory
    assert gen.build("classification", "qlora", "h100")["torch_compile"] is False
    cpu = gen.build("code", "lora", "cpu")  # tiny CPU runs keep the profile's plain settings
    assert "torch_compile" not in cpu and cpu["micro_batch_size"] == 2


def test_checkpointing_granularity_follows_memory():
    cfg = gen.build("chat", "full", "h100")
    assert cfg["gradient_checkpointing"] is False  # fits without: no recompute
    long = tuning.fill({**cfg, "sequence_len": 8192}, "h100")
    assert long["gradient_checkpointing"] is True and "none did not fit" in long["why"]
    spark = gen.build("chat", "full", "dgx-spark")
    sel = tuning.fill({**spark, "sequence_len": 16384}, "dgx-spark")  # compile off: selective comes before full
    assert sel["selective_checkpointing"] == {"save": ["attention"]}
    assert sel["gradient_checkpointing_kwargs"] == {"use_reentrant": False}
    huge = tuning.fill({**cfg, "sequence_len": 65536}, "h100")
    assert huge["gradient_checkpointing"] == "offload"  # a discrete GPU can keep layer inputs in host RAM
    assert "offload" not in tuning.levels("dgx-spark", spark)  # unified memory has no separate host RAM


def test_planner_counts_selective_and_offloaded_checkpointing():
    cfg = gen.build("chat", "full", "h100", overrides={"micro_batch_size": 1})
    acts = {}
    for level, keys in tuning.LEVELS.items():
        acts[level] = memory(setup_from_config({**cfg, **keys}, "h100"))["activations"]
    assert acts["offload"] < acts["full"] < acts["selective"] < acts["none"]


def test_explain_lists_reasons_and_the_fill():
    cfg = gen.build("code", "lora", "h100")
    rows = tuning.explain(cfg, "h100", "lora")
    assert any("flash" in r["why"] for r in rows) and "micro-batch" in rows[-1]["why"]
    assert all(r["measured"] is False for r in rows)  # nothing measured on a GPU through Axolotl yet


def test_a_measured_entry_calibrates_plan_h100_within_15_percent(tmp_path, monkeypatch):
    from ftstudy.plan import check as planner_check
    from ftstudy.config import calibration as planner_data

    cal = tmp_path / "calibration.json"
    monkeypatch.setenv("FTSTUDY_CALIBRATION", str(cal))
    planner_data.forget_calibration()
    before = planner.plan("instruction", "lora", "h100")["throughput"]["tokens_per_second"]
    # what gpu_axolotl_check.py records: Axolotl on a random Qwen2.5-7B, the generated h100 config, seq 4096
    fpt = planner.plan("chat", "lora", "h100")["flops_per_token"]
    tps = 13_500.0
    entry = {"gpu": "NVIDIA H100 80GB HBM3", "profile": "h100", "method": "lora", "tokens_per_second": tps,
             "flops_per_token": fpt, "mfu": tps * fpt / 989e12, "peak_memory_gb": 60.1, "date": "2026-12-01",
             "versions": {"axolotl": "0.19.0", "torch": "2.11.0"}, "settings": {"sequence_len": 4096}}
    planner_check.record_measured([entry])
    planner_check.record_measured([entry])  # the same measurement again replaces, not duplicates
    assert len(planner_data.load_calibration()["measured"]) == 1
    p = planner.plan("chat", "lora", "h100")
    assert abs(p["throughput"]["tokens_per_second"] - tps) / tps <= 0.15
    assert "measured through Axolotl on NVIDIA H100 80GB HBM3" in p["throughput"]["mfu_source"]
    after = planner.plan("instruction", "lora", "h100")["throughput"]["tokens_per_second"]
    assert after != before  # the measured MFU moved the prediction for other experiments too
    q = planner.plan("classification", "qlora", "h100")["throughput"]
    assert q["mfu_source"] == "profiles.py" and q["method_speed"] == 0.75  # no QLoRA measurement: defaults
    with pytest.raises(planner_check.PlanError, match="lacks date"):
        planner_check.record_measured([{**entry, "date": ""}])
    planner_data.forget_calibration()
