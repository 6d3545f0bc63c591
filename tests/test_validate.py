"""Validation: a table of broken configs, each with its expected message; several errors reported at once;
random mutations never crash the validator."""
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
    ("packing without varlen attention on GPU", mutate("code", None, "h100", lambda c: c.update(attn_implementation="fp8")),
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
    ("LoRA without targets", mutate("code", None, "dgx-spark", lambda c: c.pop("lora_target_linear")),
     "dgx-spark", "trains nothing"),
    # Axolotl's own model validators, mirrored
    ("near-miss of a known key", mutate("code", None, "dgx-spark", lambda c: c.update(lora_droput=c.pop("lora_dropout"))),
     "dgx-spark", "lora_droput: unknown key — did you mean lora_dropout?"),
    ("known rename", mutate("code", None, "dgx-spark", lambda c: c.update(adam_eps=1e-8)),
     "dgx-spark", "adam_eps: unknown key — did you mean adam_epsilon?"),
    ("removed option", mutate("code", None, "dgx-spark", lambda c: c.update(flash_attn_rms_norm=True)),
     "dgx-spark", "flash_attn_rms_norm: Axolotl 0.19.0 refuses it: `flash_attn_rms_norm` is no longer supported"),
    ("learning rate that is not a number", mutate("code", None, "dgx-spark", lambda c: c.update(learning_rate="fast")),
     "dgx-spark", "learning_rate: 'fast' is not a number"),
    ("FSDP2 with a bitsandbytes 8-bit optimizer",
     mutate("code", None, "dgx-spark", lambda c: c.update(fsdp_version=2, fsdp_config={"offload_params": False},
                                                          optimizer="adamw_bnb_8bit")),
     "dgx-spark", "optimizer: FSDP2 is not compatible with adamw_bnb_8bit"),
    ("early stopping without eval steps", mutate("code", None, "dgx-spark", lambda c: c.update(early_stopping_patience=3)),
     "dgx-spark", "early_stopping_patience needs save_steps and eval_steps"),
    ("best checkpoint without a metric", mutate("code", None, "dgx-spark", lambda c: c.update(save_strategy="best")),
     "dgx-spark", "save_strategy: best needs metric_for_best_model"),
    ("unknown key where Axolotl forbids extras", mutate("code", None, "dgx-spark", lambda c: c.update(fp8_config={"color": 1})),
     "dgx-spark", "fp8_config.color: unknown key — Axolotl refuses it here"),
    ("kto keeping unused columns", mutate("dpo", None, "dgx-spark", lambda c: c.update(rl="kto")),
     "dgx-spark", "rl: kto needs remove_unused_columns: false"),
    ("dpo with a type the dpo loader lacks", mutate("dpo", None, "dgx-spark", lambda c: c["datasets"][0].update(type="chatml.ultraa")),
     "dgx-spark", "rl: dpo needs a preference dataset type, got 'chatml.ultraa' (did you mean chatml.ultra?)"),
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
    ("deprecated option", mutate("code", None, "dgx-spark", lambda c: c.update(dpo_beta=0.1)),
     "warning: dpo_beta: deprecated in Axolotl 0.19.0: dpo_beta is deprecated, use rl_beta instead"),
]


@pytest.mark.parametrize("name,cfg,hardware,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_gets_its_message(name, cfg, hardware, expected):
    found = problems_of(cfg, hardware)
    assert any(expected in p for p in found), f"{name}: expected {expected!r} in {found}"


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


# The keys Axolotl's mirrored validators read, given any value: a rule reports, it never crashes (a crash is raised).
RULE_KEYS = ["rl", "fsdp_config", "fsdp_version", "optimizer", "learning_rate", "early_stopping_patience", "save_steps",
             "eval_steps", "ebft", "plugins", "datasets", "torch_compile", "flash_attn_rms_norm", "load_in_4bit",
             "adapter", "dpo_beta", "micro_batch_size", "sequence_len", "lora_target_parameters"]
NESTED = st.recursive(VALUES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(["mode", "type", "path",
                                                       "fsdp_offload_params", "version", "cpu_ram_efficient_loading"]),
                                                                       inner, max_size=3)), max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exp=st.sampled_from(["code", "dpo"]), edits=st.dictionaries(st.sampled_from(RULE_KEYS), NESTED, max_size=6))
def test_rule_keys_with_any_value_never_crash(exp, edits):
    cfg = copy.deepcopy(base(exp, None, "dgx-spark"))
    cfg.update(edits)
    for p in validate.validate_text(yaml.safe_dump(cfg), "dgx-spark"):
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
