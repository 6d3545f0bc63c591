"""Validation: tables of broken configs, each with its expected message (ftstudy's layer alone; what only
Axolotl's own validation finds, with the profile's capabilities); several errors reported at once; random
mutations never crash the validator. Axolotl's verdict against validate's on generated configs:
test_validate_property.py."""
import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftstudy.config import gen
from ftstudy.config import validate


def base(exp="code", method=None, hw="dgx-spark"):
    return gen.build(exp, method, hw)


def problems_of(cfg, hardware="dgx-spark", axolotl=None):
    return [p.render() for p in validate.errors(validate.validate_text(yaml.safe_dump(cfg), hardware, axolotl=axolotl))]


def mutate(exp, method, hw, fn):
    cfg = base(exp, method, hw)
    fn(cfg)
    return cfg


def without(*keys):
    return lambda c: [c.pop(k, None) for k in keys]


# ftstudy's own layer (the schema check, near-miss hints, ftstudy's rules): no Axolotl needed.
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
    ("dpo with an SFT dataset type", mutate("dpo", None, "dgx-spark", lambda c: c["datasets"][0].update(type="alpaca")),
     "dgx-spark", "rl: dpo needs a preference dataset type"),
    ("cpu with CUDA-only kernels", mutate("code", None, "cpu", lambda c: c.update(lora_qkv_kernel=True)),
     "cpu", "lora_qkv_kernel: the Triton LoRA kernels are CUDA-only"),
    ("cpu with flash attention", mutate("code", None, "cpu", lambda c: c.update(attn_implementation="flash_attention_2")),
     "cpu", "flash-attn needs a CUDA GPU"),
    ("zero micro batch", mutate("code", None, "dgx-spark", lambda c: c.update(micro_batch_size=0)),
     "dgx-spark", "micro_batch_size: 0 is outside [1, "),
    ("missing dataset file", mutate("code", None, "dgx-spark", lambda c: c["datasets"][0].update(path="nope/train.jsonl")),
     "dgx-spark", "dataset file nope/train.jsonl does not exist"),
    ("LoRA without targets", mutate("code", None, "dgx-spark", without("lora_target_linear")),
     "dgx-spark", "trains nothing (Axolotl's validation accepts it; PEFT refuses it when the model loads) "
     "(set lora_target_linear: true or list lora_target_modules) [ftstudy's rule]"),
    ("near-miss of a known key", mutate("code", None, "dgx-spark", lambda c: c.update(lora_droput=c.pop("lora_dropout"))),
     "dgx-spark", "lora_droput: unknown key — did you mean lora_dropout? Axolotl drops its value [ftstudy's rule]"),
    ("known rename", mutate("code", None, "dgx-spark", lambda c: c.update(adam_eps=1e-8)),
     "dgx-spark", "adam_eps: unknown key — did you mean adam_epsilon?"),
    ("unknown key where Axolotl forbids extras", mutate("code", None, "dgx-spark", lambda c: c.update(fp8_config={"color": 1})),
     "dgx-spark", "fp8_config.color: unknown key — Axolotl refuses it here"),
    ("dpo with a type the dpo loader lacks", mutate("dpo", None, "dgx-spark", lambda c: c["datasets"][0].update(type="chatml.ultraa")),
     "dgx-spark", "rl: dpo needs a preference dataset type, got 'chatml.ultraa'"),
]

# What only Axolotl's own validation finds (its cross-field validators, with the profile's capabilities): its
# message first, then ftstudy's hint. Includes each validator ftstudy used to mirror by hand, and the misses
# the issue found (scheduling, model-family, adapter and Liger rules, regexes, compile options, ...).
AXOLOTL = [
    ("qlora without 4-bit", mutate("classification", "qlora", "dgx-spark", lambda c: c.update(load_in_4bit=False)),
     "dgx-spark", "<root>: Axolotl: Value error, Require cfg.load_in_4bit to be True for qlora (set load_in_4bit: true)"),
    ("removed option", mutate("code", None, "dgx-spark", lambda c: c.update(flash_attn_rms_norm=True)),
     "dgx-spark", "`flash_attn_rms_norm` is no longer supported"),
    ("learning rate that is not a number", mutate("code", None, "dgx-spark", lambda c: c.update(learning_rate="fast")),
     "dgx-spark", "learning_rate: Axolotl: Value error, could not convert string to float: 'fast'"),
    ("FSDP2 with a bitsandbytes 8-bit optimizer",
     mutate("code", None, "dgx-spark", lambda c: c.update(fsdp_version=2, fsdp_config={"offload_params": False},
                                                          optimizer="adamw_bnb_8bit")),
     "dgx-spark", "FSDP2 not compatible with adamw_bnb_8bit"),
    ("early stopping without eval steps", mutate("code", None, "dgx-spark", lambda c: c.update(early_stopping_patience=3)),
     "dgx-spark", "`early_stopping_patience` requires save_steps and eval_steps"),
    ("best checkpoint without a metric", mutate("code", None, "dgx-spark", lambda c: c.update(save_strategy="best")),
     "dgx-spark", "requires metric_for_best_model"),
    ("kto keeping unused columns", mutate("dpo", None, "dgx-spark", lambda c: c.update(rl="kto")),
     "dgx-spark", "remove_unused_columns"),
    ("an extra key where Axolotl forbids extras, with ftstudy's hint",
     mutate("code", None, "dgx-spark", lambda c: c.update(fp8=True, fp8_config={"color": 1})),
     "dgx-spark", "fp8_config.color: Axolotl: Extra inputs are not permitted (unknown key — Axolotl refuses it here)"),
    ("save strategy epoch with save steps", mutate("code", None, "h100", lambda c: c.update(save_strategy="epoch", save_steps=10)),
     "h100", "save_strategy and save_steps mismatch"),
    ("no datasets at all", mutate("code", None, "h100", without("datasets")),
     "h100", "either datasets or pretraining_dataset is required (add a datasets: entry (path and type))"),
    ("attn_implementation: flash", mutate("code", None, "h100", lambda c: c.update(attn_implementation="flash")),
     "h100", "attn_implementation: Axolotl: Value error, attn_implementation='flash' is not accepted"),
    ("quantize_moe_experts without a LoRA adapter",
     mutate("code", "full", "h100", lambda c: c.update(quantize_moe_experts=True)),
     "h100", "quantize_moe_experts requires adapter: lora or qlora"),
    ("Liger conflict", mutate("code", None, "h100", lambda c: c.update(liger_swiglu=False)),
     "h100", "You cannot have both `liger_swiglu` and `liger_glu_activation` set"),
    ("invalid regex in lora_target_modules", mutate("code", None, "h100", lambda c: c.update(lora_target_modules=["q_proj["])),
     "h100", "lora_target_modules contains invalid regex pattern(s)"),
    ("unknown torch_compile_options", mutate("code", None, "h100", lambda c: c.update(torch_compile=True,
                                                                                      torch_compile_options={"nonsense": 1})),
     "h100", "torch_compile_options contains disallowed inductor flags: ['nonsense']"),
    ("deprecated sharegpt type", mutate("code", None, "h100", lambda c: c["datasets"][0].update(type="sharegpt.load_role")),
     "h100", "`type: sharegpt.*` is deprecated"),
    ("an adapter no plugin registers", mutate("code", None, "h100", lambda c: c.update(adapter="bogus")),
     "h100", "Adapter 'bogus' is not built in and was not registered by a plugin"),
    # the profile's capabilities reach Axolotl: the GPU hosts' torch (2.9) is too old for fp8 attention
    ("fp8 attention with the profile's torch", mutate("code", None, "h100", lambda c: c.update(attn_implementation="fp8")),
     "h100", "attn_implementation=fp8 requires PyTorch >= 2.11.0. Detected 2.9.0."),
]


# Axolotl accepts these and ignores (or migrates) part of them: a warning, an error only with --strict.
WARNED = [
    ("plugin key without its plugin", mutate("code", None, "dgx-spark", lambda c: c.update(plugins=[])),
     "warning: liger_rope: liger_rope belongs to the plugin axolotl.integrations.liger, which is not listed in plugins"),
    ("a legacy key Axolotl ignores", mutate("code", None, "dgx-spark", lambda c: c.update(gptq_groupsize=128)),
     "warning: gptq_groupsize: not an Axolotl 0.19.0 key; Axolotl ignores it"),
    ("an unknown key that is no near-miss gets no hint", mutate("code", None, "dgx-spark", lambda c: c.update(secrets=1)),
     "warning: secrets: not an Axolotl 0.19.0 key; Axolotl ignores it"),
    ("fsdp_ prefix Axolotl migrates", mutate("code", None, "dgx-spark", lambda c: c.update(fsdp_config={"fsdp_offload_params": True})),
     "warning: fsdp_config.fsdp_offload_params: the fsdp_ prefix is deprecated in Axolotl 0.19.0, which reads it as offload_params"),
    ("absurd global batch", mutate("code", None, "dgx-spark", lambda c: c.update(gradient_accumulation_steps=4096)),
     "warning: gradient_accumulation_steps: a global batch of 16384 sequences per GPU is implausible"),
    # the packing rule is a warning about speed, and only where Axolotl pays a full mask
    ("packing with eager attention", mutate("code", None, "h100", lambda c: c.update(attn_implementation="eager")),
     "warning: sample_packing: packed rows with eager attention pay a full T×T block-diagonal mask"),
]


@pytest.mark.parametrize("name,cfg,hardware,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_gets_its_message(name, cfg, hardware, expected):
    found = problems_of(cfg, hardware, axolotl=False)
    assert any(expected in p for p in found), f"{name}: expected {expected!r} in {found}"


@pytest.mark.tools
@pytest.mark.parametrize("name,cfg,hardware,expected", AXOLOTL, ids=[b[0] for b in AXOLOTL])
def test_what_only_axolotl_finds_comes_with_its_own_message(name, cfg, hardware, expected):
    found = problems_of(cfg, hardware, axolotl=True)
    assert any(expected in p for p in found), f"{name}: expected {expected!r} in {found}"
    assert found[0].split(": ", 1)[1].startswith("Axolotl: "), found  # Axolotl's message first
    assert not problems_of(cfg, hardware, axolotl=False) or name in SCHEMA_SEES, f"{name}: the schema sees it"


SCHEMA_SEES = {"an extra key where Axolotl forbids extras, with ftstudy's hint", "removed option"}


@pytest.mark.tools
@pytest.mark.parametrize("hardware", ["h100", "dgx-spark", "dgx-spark-x2", "h100x8-2nodes"])
@pytest.mark.parametrize("attention", [{}, {"sdp_attention": True}, {"attn_implementation": "sdpa"}],
                         ids=["no attention setting", "legacy sdp_attention", "sdpa"])
def test_packing_rule_is_silent_where_axolotl_accepts_sdpa(hardware, attention):
    """The issue's false alarms: packing with sdpa (given, legacy, or transformers' default) on a GPU profile."""
    cfg = mutate("code", None, hardware, lambda c: (c.pop("attn_implementation"), c.update(attention)))
    found = validate.validate_text(yaml.safe_dump(cfg), hardware, axolotl=True)
    assert not validate.errors(found, strict=True), [p.render() for p in found]


@pytest.mark.tools
def test_mora_type_1_is_no_false_alarm():
    cfg = mutate("code", None, "h100", lambda c: c.update(plugins=c["plugins"] + ["axolotl.integrations.mora.MoraPlugin"],
                                                          adapter="mora", mora={"mora_type": 1}))
    for axolotl in (True, False):
        found = validate.validate_text(yaml.safe_dump(cfg), "h100", axolotl=axolotl)
        assert not validate.errors(found, strict=True), [p.render() for p in found]


def test_schema_only_check_is_labelled():
    found = validate.validate_text(gen.golden()[gen.golden_path("code", "lora")], axolotl=False)
    assert found[-1].render() == ("note: <root>: schema only: Axolotl's cross-field rules not checked "
                                  "(install Axolotl's train environment with `ftstudy setup train`)")


@pytest.mark.parametrize("name,cfg,expected", WARNED, ids=[w[0] for w in WARNED])
def test_what_axolotl_ignores_is_a_warning(name, cfg, expected):
    found = validate.validate_text(yaml.safe_dump(cfg), "dgx-spark")
    assert not validate.errors(found), [p.render() for p in found]
    rendered = [p.render() for p in found]
    assert any(r.startswith(expected) for r in rendered), f"{name}: expected {expected!r} in {rendered}"
    assert all("did you mean" not in r for r in rendered)


ACCEPTED = [  # forms Axolotl normalises or coerces before validating
    ("preference fields of a DPO dataset", "dpo", lambda c: c["datasets"][0].update(field_chosen="c", field_rejected="r")),
    ("plugin keys with their plugin", "code", lambda c: c.update(
        plugins=c.get("plugins", []) + ["axolotl.integrations.swanlab.SwanLabPlugin"], use_swanlab=True, swanlab_project="p")),
    ("a number written as a string", "code", lambda c: c.update(learning_rate="2e-4", weight_decay="0.01")),
    ("a bool where an int is expected", "code", lambda c: c.update(save_total_limit=False)),
]


@pytest.mark.parametrize("name,exp,fn", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_forms_axolotl_normalises_are_accepted_silently(name, exp, fn):
    found = validate.validate_text(yaml.safe_dump(mutate(exp, None, "dgx-spark", fn)), "dgx-spark")
    assert not validate.errors(found, strict=True), [p.render() for p in found]


def test_a_crash_inside_a_rule_is_raised_not_reported(monkeypatch):
    def broken(cfg, ctx):
        raise ZeroDivisionError("bug in a rule")
        yield

    monkeypatch.setattr(validate, "RULES", validate.RULES + [broken])
    with pytest.raises(ZeroDivisionError):
        validate.validate_text(gen.golden()[gen.golden_path("code", "lora")])


def test_every_problem_is_reported_at_once():
    cfg = base("code", None, "cpu")
    cfg["adapterr"] = "lora"
    cfg["datasets"][0]["typ"] = "alpaca"
    cfg["lora_mlp_kernel"] = True
    cfg["micro_batch_size"] = 0
    found = problems_of(cfg, "cpu", axolotl=False)
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
    for p in validate.validate_text(yaml.safe_dump(cfg), hw, axolotl=False):  # Axolotl's: test_validate_property
        assert isinstance(p.render(), str)


# The keys ftstudy's rules and normalisations read, given any value: a rule reports, it never crashes (a crash is raised).
RULE_KEYS = ["rl", "fsdp_config", "fsdp_version", "optimizer", "learning_rate", "plugins", "datasets", "mora",
             "adapter", "micro_batch_size", "gradient_accumulation_steps", "sequence_len", "lora_target_parameters",
             "attn_implementation", "sdp_attention", "sample_packing", "sdpa_varlen", "lora_qkv_kernel"]
NESTED = st.recursive(VALUES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(["mode", "type", "path",
                                                       "fsdp_offload_params", "version", "mora_type"]),
                                                                       inner, max_size=3)), max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exp=st.sampled_from(["code", "dpo"]), edits=st.dictionaries(st.sampled_from(RULE_KEYS), NESTED, max_size=6))
def test_rule_keys_with_any_value_never_crash(exp, edits):
    cfg = copy.deepcopy(base(exp, None, "dgx-spark"))
    cfg.update(edits)
    for p in validate.validate_text(yaml.safe_dump(cfg), "dgx-spark", axolotl=False):
        assert isinstance(p.render(), str)


def test_validate_a_folder_strict_and_json(tmp_path):
    import json

    from click.testing import CliRunner

    from ftstudy.cli.main import main

    good = gen.golden()[gen.golden_path("code", "lora")]
    (tmp_path / "sub").mkdir()
    (tmp_path / "good.yaml").write_text(good)
    (tmp_path / "sub" / "warned.yml").write_text(good + "gptq_groupsize: 128\n")
    (tmp_path / "sub" / "bad.yaml").write_text(good + "lora_droput: 0.1\n")
    (tmp_path / "notes.txt").write_text("not a config")
    runner = CliRunner()
    res = runner.invoke(main, ["validate", str(tmp_path)])
    assert res.exit_code == 1 and "3 file(s) checked, 1 invalid, 1 ok with warnings" in res.output, res.output
    res = runner.invoke(main, ["validate", "--strict", str(tmp_path)])
    assert res.exit_code == 1 and "3 file(s) checked, 2 invalid" in res.output, res.output
    res = runner.invoke(main, ["validate", "--json", str(tmp_path)])
    rows = {Path(r["path"]).name: r for r in json.loads(res.output)["files"]}
    assert {n: r["ok"] for n, r in rows.items()} == {"good.yaml": True, "warned.yml": True, "bad.yaml": False}
    assert rows["warned.yml"]["problems"][0]["severity"] == "warning"
    assert runner.invoke(main, ["validate", "--strict", str(tmp_path / "good.yaml")]).exit_code == 0
    (tmp_path / "empty").mkdir()
    res = runner.invoke(main, ["validate", str(tmp_path / "empty")])
    assert res.exit_code == 1 and "no YAML files under" in res.output


def test_unknown_profile_in_a_header_is_a_warning_not_a_crash():
    text = gen.golden()[gen.golden_path("code", "lora")].replace("hardware: dgx-spark", "hardware: h200", 1)
    found = [p.render() for p in validate.validate_text(text, axolotl=False)]
    assert any(r.startswith("warning: <root>: the header's unknown hardware profile 'h200'") for r in found), found


def test_profiles_state_their_capabilities_for_axolotl():
    """What `validate` passes to Axolotl's validate_config per profile (multi-node: every GPU of every node)."""
    from ftstudy.config.profiles import axolotl_capabilities

    caps, env = axolotl_capabilities("h100x8-2nodes")
    assert (caps["n_gpu"], caps["n_node"], caps["compute_capability"], caps["bf16"]) == (16, 2, "sm_90", True)
    assert axolotl_capabilities("cpu")[0] == {"bf16": False, "fp8": False, "tf32": False, "n_gpu": 1, "n_node": 1,
                                              "compute_capability": None}
    assert env["torch_version"] == "2.9.0" and axolotl_capabilities("cpu")[1]["torch_version"].startswith("2.")


def test_without_the_train_environment_validate_is_schema_only_and_deep_refuses(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ftstudy.cli.main import main

    monkeypatch.setenv("FTSTUDY_TRAIN_ENV", str(tmp_path / "no-env"))
    text = gen.golden()[gen.golden_path("code", "lora")]
    assert validate.validate_text(text)[-1] == validate.SCHEMA_ONLY
    (tmp_path / "c.yaml").write_text(text)
    res = CliRunner().invoke(main, ["validate", str(tmp_path / "c.yaml")])
    assert res.exit_code == 0 and "schema only: Axolotl's cross-field rules not checked" in res.output, res.output
    res = CliRunner().invoke(main, ["validate", "--deep", str(tmp_path / "c.yaml")])
    assert res.exit_code != 0 and "ftstudy setup train" in res.output, res.output
