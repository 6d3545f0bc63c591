"""`ftstudy validate`'s verdict against Axolotl's own on generated configs: mutations of ftstudy's golden configs
and Axolotl's example configs (dropped keys, swapped enum values, conflicting pairs) and random schema-valid
configs, each checked for a hardware profile. Every config goes to the session's one warm Axolotl.

The property: where Axolotl refuses, validate refuses with Axolotl's own messages; where Axolotl accepts,
validate refuses only by a rule labelled as ftstudy's; and the schema-only check (no train environment) never
refuses what Axolotl accepts except by a labelled ftstudy rule. Bounded: a fixed, derandomized set of examples.
"""
import copy
import functools

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftstudy.config import axolotl_verdict, gen, validate
from tests import axolotl_corpus

pytestmark = pytest.mark.tools

HARDWARE = ["cpu", "h100", "dgx-spark", "dgx-spark-x2", "h100x8-2nodes"]
BOUNDED = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@functools.cache
def sources() -> list[dict]:
    """ftstudy's golden configs and Axolotl's example configs, as mappings."""
    texts = list(gen.golden().values()) + [p.read_text() for p in axolotl_corpus.files()]
    return [cfg for cfg in (yaml.safe_load(t) for t in texts) if isinstance(cfg, dict)]


def resolve(sch: dict) -> dict:
    while "$ref" in sch:
        sch = validate.schema()["$defs"][sch["$ref"].rsplit("/", 1)[-1]]
    return sch


def branches(prop: dict) -> list[dict]:
    return [resolve(b) for b in prop.get("anyOf", [prop])]


@functools.cache
def enums() -> dict[str, list]:
    """Top-level keys whose schema lists allowed values: {key: values}."""
    out = {}
    for key, prop in validate.schema()["properties"].items():
        values = [v for b in branches(prop) for v in b.get("enum", [])]
        if values:
            out[key] = values
    return out


@functools.cache
def simple_keys() -> dict[str, str]:
    """Top-level keys of one scalar JSON type (besides null) that take no file path or model id: {key: type}."""
    out = {}
    for key, prop in validate.schema()["properties"].items():
        types = {b.get("type") for b in branches(prop)} - {"null"}
        if len(types) == 1 and types <= {"boolean", "integer", "number"} and key not in enums():
            out[key] = types.pop()
    return dict(sorted(out.items()))


# Pairs that Axolotl's cross-field validators read together (the misses and the old mirrored rules).
CONFLICTS = [
    {"save_strategy": "epoch", "save_steps": 10}, {"liger_swiglu": False, "liger_glu_activation": True},
    {"adapter": "qlora", "load_in_4bit": False}, {"rl": "dpo", "sample_packing": True},
    {"attn_implementation": "sdpa", "sdp_attention": True}, {"attn_implementation": "flash"},
    {"fsdp_version": 2, "fsdp_config": {"offload_params": False}, "optimizer": "adamw_bnb_8bit"},
    {"early_stopping_patience": 3}, {"save_strategy": "best"}, {"quantize_moe_experts": True, "adapter": None},
    {"torch_compile": True, "torch_compile_options": {"nonsense": 1}}, {"lora_target_modules": ["q_proj["]},
    {"bf16": True, "fp16": True}, {"attn_implementation": "fp8"}, {"sample_packing": True, "attn_implementation": "eager"},
    {"mora": {"mora_type": 1}}, {"eval_strategy": "no", "eval_steps": 10}, {"adapter": "bogus"},
    {"gradient_checkpointing": True, "activation_offloading": True}, {"flash_attention": True},
]


@st.composite
def mutated(draw) -> dict:
    cfg = copy.deepcopy(draw(st.sampled_from(sources())))
    keys = sorted(cfg)
    for i in draw(st.lists(st.integers(0, 200), max_size=3)):
        cfg.pop(keys[i % len(keys)], None)
    for key in draw(st.lists(st.sampled_from(sorted(enums())), max_size=2)):
        cfg[key] = draw(st.sampled_from(enums()[key]))
    for key, value in (draw(st.sampled_from(CONFLICTS)) if draw(st.booleans()) else {}).items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = copy.deepcopy(value)
    return cfg


VALUE = {"boolean": st.booleans(), "integer": st.integers(0, 4096),
         "number": st.floats(0, 10, allow_nan=False).map(lambda x: round(x, 4))}


@st.composite
def random_valid(draw) -> dict:
    """A schema-valid config: the keys every config needs, plus random scalar and enum keys of the right type."""
    cfg = {"base_model": "Qwen/Qwen2.5-0.5B", "datasets": [{"path": "org/data", "type": "alpaca"}],
           "micro_batch_size": 1, "num_epochs": 1, "learning_rate": 1e-4, "output_dir": "out"}
    for key in draw(st.lists(st.sampled_from(sorted(simple_keys())), max_size=6, unique=True)):
        cfg[key] = draw(VALUE[simple_keys()[key]])
    for key in draw(st.lists(st.sampled_from(sorted(enums())), max_size=3, unique=True)):
        cfg[key] = draw(st.sampled_from(enums()[key]))
    return cfg


def agree(cfg: dict, hardware: str) -> None:
    text = yaml.safe_dump(cfg)
    raw = axolotl_verdict.verdicts([(text, axolotl_verdict.capabilities(hardware))], use_cache=False)[0]
    assert raw["ok"] is not None, raw  # Axolotl answered
    ours = validate.errors(validate.validate_text(text, hardware, axolotl=True))  # the verdict raw just cached
    theirs = {e["msg"] for e in raw["errors"]}
    if raw["ok"]:
        unlabelled = [p.render() for p in ours if p.origin != "ftstudy" or "ftstudy's" not in p.render()]
        assert not unlabelled, f"Axolotl accepts on {hardware}, validate refuses: {unlabelled}\n{text}"
    else:
        said = {p.message.removeprefix("Axolotl: ") for p in ours if p.origin == "axolotl"}
        assert theirs <= said, f"Axolotl refuses on {hardware} ({theirs}), validate says {said}\n{text}"
    schema_only = validate.errors(validate.validate_text(text, hardware, axolotl=False))
    if raw["ok"]:
        unlabelled = [p.render() for p in schema_only if p.origin != "ftstudy"]
        assert not unlabelled, f"Axolotl accepts on {hardware}, the schema-only check refuses: {unlabelled}\n{text}"


@BOUNDED
@given(cfg=mutated(), hardware=st.sampled_from(HARDWARE))
def test_validate_agrees_with_axolotl_on_mutated_configs(cfg, hardware):
    agree(cfg, hardware)


@BOUNDED
@given(cfg=random_valid(), hardware=st.sampled_from(HARDWARE))
def test_validate_agrees_with_axolotl_on_random_schema_valid_configs(cfg, hardware):
    agree(cfg, hardware)


def test_generators_reach_both_verdicts():
    """The generated configs are not all accepted nor all refused (else the property would be idle): a
    conflicting pair is refused, its source accepted."""
    base = yaml.safe_load(gen.golden()[gen.golden_path("code", "lora")])
    got = axolotl_verdict.verdicts([(yaml.safe_dump(base), axolotl_verdict.capabilities("h100")),
                                    (yaml.safe_dump({**base, **CONFLICTS[0]}), axolotl_verdict.capabilities("h100"))])
    assert [g["ok"] for g in got] == [True, False]


def test_the_warm_axolotl_gets_no_key(monkeypatch):
    """Validation reads no credential: the judge/HF/W&B keys of the shell stay out of the warm process."""
    from tests.conftest import CANARY, CANARY_ENV

    for name in (CANARY_ENV, "OPENAI_API_KEY", "HF_TOKEN", "WANDB_API_KEY"):
        monkeypatch.setenv(name, CANARY)
    env = axolotl_verdict.tool_env()
    assert CANARY not in "".join(env.values()) and env["HF_HUB_OFFLINE"] == "1"
