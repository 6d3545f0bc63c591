"""Validation: a table of broken configs, each with its expected message; several errors reported at once;
random mutations never crash the validator."""
import copy

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftstudy import gen, validate


def base(exp="code", method=None, hw="dgx-spark"):
    return gen.build(exp, method, hw)


def problems_of(cfg, hardware="dgx-spark"):
    return [p.render() for p in validate.errors(validate.validate_text(yaml.safe_dump(cfg), hardware))]


def mutate(exp, method, hw, fn):
    cfg = base(exp, method, hw)
    fn(cfg)
    return cfg


BROKEN = [
    ("typo at top level", mutate("code", None, "dgx-spark", lambda c: c.update(adapterr=c.pop("adapter"))),
     "dgx-spark", "adapterr: unknown key — did you mean adapter?"),
    ("typo inside a dataset entry", mutate("chat", None, "dgx-spark", lambda c: c["datasets"][0].update(feild_messages="m")),
     "dgx-spark", "datasets[0].feild_messages: unknown key — did you mean field_messages?"),
    ("typo inside a field map", mutate("code", None, "dgx-spark", lambda c: c["datasets"][0]["type"].update(field_outptu="x")),
     "dgx-spark", "datasets[0].type.field_outptu: unknown key — did you mean field_output?"),
    ("wrong type", mutate("code", None, "dgx-spark", lambda c: c.update(lora_r="sixteen")),
     "dgx-spark", "lora_r: 'sixteen' is not valid here"),
    ("unknown optimizer", mutate("code", None, "dgx-spark", lambda c: c.update(optimizer="adamw_torch_fussed")),
     "dgx-spark", "did you mean adamw_torch_fused?"),
    ("qlora without 4-bit", mutate("classification", "qlora", "dgx-spark", lambda c: c.update(load_in_4bit=False)),
     "dgx-spark", "adapter: qlora needs load_in_4bit: true"),
    ("dpo with an SFT dataset type", mutate("dpo", None, "dgx-spark", lambda c: c["datasets"][0].update(type="alpaca")),
     "dgx-spark", "rl: dpo needs a preference dataset type"),
    ("packing without varlen attention on GPU", mutate("code", None, "h100", lambda c: c.update(attn_implementation="sdpa")),
     "h100", "sample_packing: sample packing on GPU without a varlen attention"),
    ("cpu with CUDA-only kernels", mutate("code", None, "cpu", lambda c: c.update(lora_qkv_kernel=True)),
     "cpu", "lora_qkv_kernel: the Triton LoRA kernels are CUDA-only"),
    ("cpu with flash attention", mutate("code", None, "cpu", lambda c: c.update(attn_implementation="flash_attention_2")),
     "cpu", "flash-attn needs a CUDA GPU"),
    ("zero micro batch", mutate("code", None, "dgx-spark", lambda c: c.update(micro_batch_size=0)),
     "dgx-spark", "must both be ≥ 1"),
    ("absurd global batch", mutate("code", None, "dgx-spark", lambda c: c.update(gradient_accumulation_steps=4096)),
     "dgx-spark", "is implausible"),
    ("missing dataset file", mutate("code", None, "dgx-spark", lambda c: c["datasets"][0].update(path="nope/train.jsonl")),
     "dgx-spark", "dataset file nope/train.jsonl does not exist"),
    ("plugin key without its plugin", mutate("code", None, "dgx-spark", lambda c: c.update(plugins=[])),
     "dgx-spark", "belongs to the plugin axolotl.integrations.liger"),
    ("LoRA without targets", mutate("code", None, "dgx-spark", lambda c: c.pop("lora_target_linear")),
     "dgx-spark", "trains nothing"),
]


@pytest.mark.parametrize("name,cfg,hardware,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_gets_its_message(name, cfg, hardware, expected):
    found = problems_of(cfg, hardware)
    assert any(expected in p for p in found), f"{name}: expected {expected!r} in {found}"


def test_every_problem_is_reported_at_once():
    cfg = base("code", None, "cpu")
    cfg["adapterr"] = "lora"
    cfg["datasets"][0]["typ"] = "alpaca"
    cfg["lora_mlp_kernel"] = True
    cfg["micro_batch_size"] = 0
    found = problems_of(cfg, "cpu")
    assert len(found) == 4, found


def test_yaml_syntax_error_names_line_and_column():
    found = [p.render() for p in validate.validate_text("base_model: x\nadapter: [lora\nlora_r: 8\n")]
    assert len(found) == 1 and "line 3, column" in found[0]


def test_valid_config_has_no_errors_and_header_sets_hardware():
    text = gen.golden()[gen.golden_path("code", "lora")]
    assert validate.header_meta(text) == {"experiment": "code", "method": "lora", "hardware": "dgx-spark"}
    assert not validate.errors(validate.validate_text(text))


def test_schema_is_of_the_pinned_axolotl_and_rejects_unknown_keys_everywhere():
    sch = validate.schema()
    assert sch["x-axolotl-version"] == "0.19.0"
    closed = [n for n, d in sch["$defs"].items() if "properties" in d]
    assert {"SFTDataset", "DPODataset", "UserDefinedPrompterType"} <= set(closed)
    assert all(sch["$defs"][n]["additionalProperties"] is False for n in closed)
    assert sch["additionalProperties"] is False


# Random mutations of valid configs: the validator reports, it never crashes.
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=12),
                   st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exp=st.sampled_from(["code", "dpo", "tool_use", "classification"]),
       hw=st.sampled_from(["dgx-spark", "cpu", "h100x8"]),
       edits=st.lists(st.tuples(st.text(min_size=1, max_size=15), VALUES), max_size=5),
       drop=st.lists(st.integers(0, 60), max_size=4),
       dataset_edit=st.tuples(st.text(min_size=1, max_size=10), VALUES))
def test_mutations_never_crash(exp, hw, edits, drop, dataset_edit):
    cfg = copy.deepcopy(base(exp, None, hw))
    keys = list(cfg)
    for i in drop:
        cfg.pop(keys[i % len(keys)], None)
    for k, v in edits:
        cfg[k] = v
    if isinstance(cfg.get("datasets"), list) and cfg["datasets"]:
        cfg["datasets"][0][dataset_edit[0]] = dataset_edit[1]
    for p in validate.validate_text(yaml.safe_dump(cfg), hw):
        assert isinstance(p.render(), str)
        assert "could not check this config" not in p.message, p.render()  # a rule crashed: validate hides it as a warning
