"""Config generation: every experiment × method × profile validates; committed configs are current."""
import pytest
import yaml

from ftstudy.config import gen
from ftstudy.config import profiles
from ftstudy.config import registry
from ftstudy.config import validate

CASES = [(e.id, m, hw) for e in registry.experiments() for m in e.methods for hw in profiles.HARDWARE]


def test_every_experiment_method_profile_validates():
    checked = 0
    for exp_id, method, hw in CASES:
        regen = gen.command_line(exp_id, method, hw, gen.DEFAULT_BASE_MODEL, (), ())
        text = gen.render(gen.build(exp_id, method, hw), exp_id, method, hw, regen, None)
        problems = validate.errors(validate.validate_text(text, axolotl=False))  # Axolotl's: test_deep.py
        assert not problems, f"{exp_id}/{method}/{hw}: {[p.render() for p in problems]}"
        checked += 1
    methods = sum(len(e.methods) for e in registry.experiments())
    assert checked == methods * len(profiles.HARDWARE) == len(CASES) > 0


def test_committed_configs_are_current():
    golden = gen.golden()
    assert len(golden) == sum(len(e.methods) for e in registry.experiments())
    stale = gen.write_all(check=True)
    assert not stale, f"stale: {stale}; run `ftstudy gen --all`"


def test_header_names_experiment_and_commands():
    text = gen.golden()[gen.golden_path("tool_use", "lora")]
    head = text.splitlines()[:5]
    assert "experiment: tool_use   method: lora   hardware: dgx-spark" in head[1]
    assert head[2] == "# regenerate: ftstudy gen tool_use --method lora --hardware dgx-spark"
    assert "ftstudy train axolotl_configs/tool_use/lora.yaml" in head[3]
    assert "accelerate launch -m axolotl.cli.train" in head[4]


def test_output_is_deterministic():
    a = gen.build("math", "full", "h100x8")
    b = gen.build("math", "full", "h100x8")
    assert yaml.safe_dump(a, sort_keys=False) == yaml.safe_dump(b, sort_keys=False)
    assert a["deepspeed"] == "axolotl_configs/deepspeed/zero2.json"  # 8 GPUs: ZeRO-2 fits (the planner's choice)


def test_profiles_shape_the_config():
    cpu = gen.build("classification", "qlora", "cpu")
    assert cpu["attn_implementation"] == "sdpa" and cpu["bf16"] is False and cpu["sample_packing"] is False
    assert cpu["lora_mlp_kernel"] is False and cpu["load_in_4bit"] is True
    spark = gen.build("classification", "full", "dgx-spark")
    assert spark["optimizer"] == "adamw_8bit"  # mixed-precision AdamW (~122 GB) does not fit; paging is moot on unified memory
    assert spark["attn_implementation"] == "sdpa" and spark["sdpa_varlen"] is True and spark["sample_packing"] is True
    assert "axolotl.integrations.liger.LigerPlugin" in spark["plugins"]
    dpo = gen.build("dpo")
    assert dpo["rl"] == "dpo" and dpo["datasets"][0]["type"] == "chatml.ultra" and dpo["rl_beta"] == 0.1


def test_set_overrides_are_typed_and_dotted():
    sets = gen.parse_set(["learning_rate=1e-4", "sample_packing=false", "lora_target_modules=[q_proj, v_proj]",
                          "datasets.0.split=train[:10]", "num_epochs=3"])
    cfg = gen.build("code", overrides=sets)
    assert cfg["learning_rate"] == 1e-4 and cfg["sample_packing"] is False and cfg["num_epochs"] == 3
    assert cfg["lora_target_modules"] == ["q_proj", "v_proj"] and cfg["datasets"][0]["split"] == "train[:10]"
    with pytest.raises(gen.GenError, match="KEY=VALUE"):
        gen.parse_set(["learning_rate"])
    with pytest.raises(gen.GenError, match="does not exist"):
        gen.build("code", overrides={"datasets.5.split": "x"})


def test_data_replaces_sources_and_changes_the_path():
    cfg = gen.build("math", data=["my/math.jsonl"])
    assert cfg["datasets"][0]["path"].startswith("data/prepared/math/metamath-")
    assert cfg["datasets"][1]["path"] == "data/prepared/math/gsm8k.jsonl"
    with pytest.raises(gen.GenError, match="2 source"):
        gen.build("math", data=["a", "b", "c"])
