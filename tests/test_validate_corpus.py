"""`ftstudy validate` against the pinned Axolotl's own verdict on Axolotl's example configs, file by file.

The fast test compares the schema-only check (no train environment) with verdicts.json (committed); the
`tools` tests compare `validate` with Axolotl asked (the default wherever the train environment exists), re-run
Axolotl 0.19.0 on every example (one process) and fail when verdicts.json is stale, and check the schema tables
against Axolotl.
Refresh: tests/fixtures/refresh_axolotl_examples.py, then `.venv/bin/python -m tests.axolotl_corpus --write`.
"""
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from ftstudy.config import axolotl_rules
from ftstudy.core import tool_envs as envs
from ftstudy.config import gen
from ftstudy.config import validate
from tests import axolotl_corpus as corpus
from tests.test_validate import ACCEPTED, WARNED, mutate

# Files where ftstudy and Axolotl disagree on purpose, each with the reason: ftstudy's near-miss rule, labelled
# as ftstudy's in the message. The tests fail if one of them stops disagreeing, so the list cannot go stale.
FALSE_ALARMS = {  # Axolotl accepts; ftstudy rejects
    "examples/archived/cerebras/btlm-ft.yml": "adam_eps is a near-miss of adam_epsilon: Axolotl drops its value",
    "examples/llama-2/gptq-lora.yml": "adam_eps is a near-miss of adam_epsilon: Axolotl drops its value",
    "examples/falcon-h1/falcon-h1-1b-qlora-cp.yaml":
        "context_parapllel_size is a typo of context_parallel_size: Axolotl drops it and trains without context parallelism",
}
RING = "Axolotl refuses context_parallel_size > 1 here only because ring-flash-attn is not installed in the CPU train env"
CROSS = "an Axolotl cross-field validator: checked only where the train environment is (schema only otherwise)"
SCHEMA_ONLY_MISSES = {  # Axolotl rejects; the schema-only check accepts (with Axolotl asked: none)
    "examples/alst/llama3-8b-deepspeed-alst.yaml": RING,
    "examples/alst/llama3-8b-fsdp2-alst.yaml": RING,
    "examples/distributed-parallel/qwen3-8b-fsdp-tp-cp.yaml": RING,
    "examples/nemotron-h/nano-30b-a3b-qlora-cp.yaml": RING,
    "examples/llama-3/3b-fp8-fsdp2.yaml": "fp8 needs a GPU that has it: the verdict is of this machine, not the config",
    **{f: CROSS for f in ["examples/archived/falcon/config-7b-qlora.yml", "examples/archived/pythia-12b/config.yml",
                          "examples/archived/stablelm-2/1.6b/fft.yml", "examples/archived/stablelm-2/1.6b/lora.yml",
                          "examples/archived/xgen-7b/xgen-7b-8k-qlora.yml", "examples/ebft/llama-3b-ebft-strided-fft.yaml",
                          "examples/llama-4/scout-vision-qlora-fsdp2-flex.yaml", "examples/mistral4/fft-text.yml",
                          "examples/mistral4/fft-vision.yml"]},
}


def test_corpus_is_the_committed_examples_with_a_verdict_each():
    files = [corpus.rel(p) for p in corpus.files()]
    assert len(files) >= 200, "the corpus lost its files"
    assert sorted(corpus.load_verdicts()) == sorted(files)


def test_schema_only_check_agrees_with_axolotl_on_every_example():
    table = corpus.compare(corpus.load_verdicts(), corpus.ftstudy_verdicts(axolotl=False))
    assert len(table["agree"]) + len(table["false_alarms"]) + len(table["misses"]) == len(corpus.files())
    assert sorted(table["false_alarms"]) == sorted(FALSE_ALARMS), "false alarms changed"
    assert sorted(table["misses"]) == sorted(SCHEMA_ONLY_MISSES), "misses changed"


@pytest.mark.tools
def test_validate_with_axolotl_misses_nothing_and_labels_its_own_rules(axolotl_checks):
    """With Axolotl asked (the session's one warm process), `validate` refuses every example Axolotl refuses,
    and refuses one Axolotl accepts only by a rule labelled as ftstudy's."""
    ours = corpus.ftstudy_verdicts(axolotl=True)
    table = corpus.compare(corpus.load_verdicts(), ours)
    assert table["misses"] == []
    assert sorted(table["false_alarms"]) == sorted(FALSE_ALARMS), "false alarms changed"
    for f in table["false_alarms"]:
        assert ours[f]["ftstudy_only"] and all("[ftstudy's rule]" in e for e in ours[f]["errors"]), ours[f]


def test_known_renames_point_at_real_keys():
    keys = validate.schema()["properties"]
    for old, new in axolotl_rules.KNOWN_RENAMES.items():
        assert new in keys and old not in keys, (old, new)


def test_ftstudys_own_configs_pass_strict():
    for path in gen.golden():
        assert not validate.errors(validate.validate_file(path), strict=True), path


# ---------------------------------------------------------------- against Axolotl itself

def _train_python():
    return str(envs.bin_path("train"))


@pytest.mark.tools
def test_verdicts_json_is_axolotls_current_verdict(axolotl_checks):
    assert corpus.axolotl_verdicts(axolotl_checks["found"]) == corpus.load_verdicts(), \
        "verdicts.json is stale: run `.venv/bin/python -m tests.axolotl_corpus --write`"


# The RL dataset models Axolotl's validate_config keeps a DPO-only field (field_chosen) for, by rl value.
RL_FIELDS = (
    "import json\nfrom axolotl.utils.config import validate_config\nfrom axolotl.utils.dict import DictDefault\n"
    "out = {}\n"
    "for rl in ['dpo', 'ipo', 'simpo', 'kto', 'orpo']:\n"
    "    cfg = DictDefault(base_model='x', rl=rl, micro_batch_size=1, learning_rate=1e-4, num_epochs=1,\n"
    "                      output_dir='o', remove_unused_columns=False, datasets=[{'path': 'd.jsonl', 'type': 'chatml.intel', 'field_chosen': 'c'}])\n"
    "    ds = validate_config(cfg)['datasets'][0]\n"
    "    out[rl] = 'field_chosen' in dict(ds)\n"
    "print(json.dumps(out))\n")


@pytest.fixture(scope="module")
def axolotl_tables(tmp_path_factory):
    """The schema regenerated by axolotl_configs/schema/generate.py and RL_FIELDS's answer, in ONE train
    environment Python (importing Axolotl is most of the cost): (fresh schema, {rl: keeps field_chosen})."""
    from ftstudy.core.bundled import schema_path

    out = tmp_path_factory.mktemp("schema")
    driver = ("import runpy, sys\nsys.argv = ['generate.py', sys.argv[1]]\n"
              "runpy.run_path('axolotl_configs/schema/generate.py', run_name='__main__')\n" + RL_FIELDS)
    res = subprocess.run([_train_python(), "-c", driver, str(out)], check=True, capture_output=True, text=True,
                         cwd=corpus.HERE.parents[2])
    return json.loads((out / schema_path().name).read_text()), json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.tools
def test_mirrored_tables_match_the_pinned_axolotl(axolotl_tables):
    """The schema and its x-* tables (plugin keys, removed/deprecated keys, RL dataset types) regenerate
    identically from the installed Axolotl."""
    fresh = axolotl_tables[0]
    committed = validate.schema()
    for key in ("x-plugin-keys", "x-removed-keys", "x-deprecated-keys", "x-rl-dataset-types", "x-optimizers"):
        assert fresh[key] == committed[key], key
    assert fresh == committed, "the committed schema is stale: make schema"


@pytest.mark.tools
def test_dataset_model_by_rl_is_axolotls(axolotl_tables):
    """Axolotl's validate_config keeps a DPO-only field (field_chosen) exactly for the rl values that ftstudy
    validates as DPODataset."""
    kept = axolotl_tables[1]
    assert sorted(kept) == ["dpo", "ipo", "kto", "orpo", "simpo"]
    assert kept == {rl: axolotl_rules.DATASET_MODEL_BY_RL.get(rl) == "DPODataset" for rl in kept}


def mirrored_configs(tmp: Path) -> list[tuple[str, Path, bool]]:
    """(case, written config, Axolotl accepts it) for each warned or accepted form of test_validate (what
    ftstudy lets through, or only warns about, Axolotl must accept)."""
    tmp.mkdir(parents=True, exist_ok=True)
    cases = [(w[0], w[1], True) for w in WARNED] + [(a[0], mutate(a[1], None, "cpu", a[2]), True) for a in ACCEPTED]
    out = []
    for i, (name, cfg, accepted) in enumerate(cases):
        cfg = dict(cfg, bf16=False, attn_implementation="sdpa", lora_mlp_kernel=False, lora_qkv_kernel=False,
                   lora_o_kernel=False)  # a CPU host: only the case's own change should matter
        path = tmp / f"case{i}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        out.append((name, path, accepted))
    return out


@pytest.mark.tools
def test_axolotl_accepts_each_warned_or_accepted_form(axolotl_checks):
    """Each warned or accepted form of test_validate is accepted by Axolotl (checked in the session's one warm
    Axolotl). What Axolotl refuses is in test_validate.AXOLOTL, asked of Axolotl directly."""
    found = axolotl_checks["found"]
    for name, path, accepted in axolotl_checks["configs"]["mirrored"]:
        problems = [p.render() for p in found[str(path)]]
        assert (not problems) == accepted, f"{name}: Axolotl says {problems or 'ok'}"
