"""`ftstudy validate` against the pinned Axolotl's own verdict on Axolotl's example configs, file by file.

The fast test compares with verdicts.json (committed); the `tools` tests re-run Axolotl 0.19.0 on every example
(one process) and fail when verdicts.json is stale, and check the tables ftstudy mirrors against Axolotl.
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
from tests.test_validate import ACCEPTED, BROKEN, WARNED, mutate

# Files where ftstudy and Axolotl disagree on purpose, each with the reason. The test fails if one of them
# stops disagreeing, so the list cannot go stale.
FALSE_ALARMS = {  # Axolotl accepts; ftstudy rejects
    "examples/archived/cerebras/btlm-ft.yml": "adam_eps is a near-miss of adam_epsilon: Axolotl drops its value",
    "examples/llama-2/gptq-lora.yml": "adam_eps is a near-miss of adam_epsilon: Axolotl drops its value",
    "examples/falcon-h1/falcon-h1-1b-qlora-cp.yaml":
        "context_parapllel_size is a typo of context_parallel_size: Axolotl drops it and trains without context parallelism",
}
RING = "Axolotl refuses context_parallel_size > 1 here only because ring-flash-attn is not installed in the CPU train env"
MISSES = {  # Axolotl rejects; ftstudy accepts
    "examples/alst/llama3-8b-deepspeed-alst.yaml": RING,
    "examples/alst/llama3-8b-fsdp2-alst.yaml": RING,
    "examples/distributed-parallel/qwen3-8b-fsdp-tp-cp.yaml": RING,
    "examples/nemotron-h/nano-30b-a3b-qlora-cp.yaml": RING,
    "examples/llama-3/3b-fp8-fsdp2.yaml": "fp8 needs a GPU that has it: the verdict is of this machine, not the config",
}


def test_corpus_is_the_committed_examples_with_a_verdict_each():
    files = [corpus.rel(p) for p in corpus.files()]
    assert len(files) >= 200, "the corpus lost its files"
    assert sorted(corpus.load_verdicts()) == sorted(files)


def test_validate_agrees_with_axolotl_on_every_example():
    table = corpus.compare(corpus.load_verdicts(), corpus.ftstudy_verdicts())
    assert len(table["agree"]) + len(table["false_alarms"]) + len(table["misses"]) == len(corpus.files())
    assert sorted(table["false_alarms"]) == sorted(FALSE_ALARMS), "false alarms changed"
    assert sorted(table["misses"]) == sorted(MISSES), "misses changed"


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


@pytest.mark.tools
def test_mirrored_tables_match_the_pinned_axolotl(tmp_path):
    """The schema and its x-* tables (plugin keys, removed/deprecated keys, RL dataset types) regenerate
    identically from the installed Axolotl."""
    from ftstudy.core.bundled import schema_path

    subprocess.run([_train_python(), "axolotl_configs/schema/generate.py", str(tmp_path)], check=True,
                   capture_output=True, cwd=corpus.HERE.parents[2])
    fresh = json.loads((tmp_path / schema_path().name).read_text())
    committed = validate.schema()
    for key in ("x-plugin-keys", "x-removed-keys", "x-deprecated-keys", "x-rl-dataset-types", "x-optimizers"):
        assert fresh[key] == committed[key], key
    assert fresh == committed, "the committed schema is stale: make schema"


@pytest.mark.tools
def test_dataset_model_by_rl_is_axolotls():
    """Axolotl's validate_config keeps a DPO-only field (field_chosen) exactly for the rl values that ftstudy
    validates as DPODataset."""
    script = (
        "import json\nfrom axolotl.utils.config import validate_config\nfrom axolotl.utils.dict import DictDefault\n"
        "out = {}\n"
        "for rl in ['dpo', 'ipo', 'simpo', 'kto', 'orpo']:\n"
        "    cfg = DictDefault(base_model='x', rl=rl, micro_batch_size=1, learning_rate=1e-4, num_epochs=1,\n"
        "                      output_dir='o', remove_unused_columns=False, datasets=[{'path': 'd.jsonl', 'type': 'chatml.intel', 'field_chosen': 'c'}])\n"
        "    ds = validate_config(cfg)['datasets'][0]\n"
        "    out[rl] = 'field_chosen' in dict(ds)\n"
        "print(json.dumps(out))\n")
    res = subprocess.run([_train_python(), "-c", script], check=True, capture_output=True, text=True)
    kept = json.loads(res.stdout.strip().splitlines()[-1])
    assert kept == {rl: axolotl_rules.DATASET_MODEL_BY_RL.get(rl) == "DPODataset" for rl in kept}


MIRRORED = {"removed option", "unknown key where Axolotl forbids extras", "kto keeping unused columns",
            "best checkpoint without a metric", "learning rate that is not a number",
            "FSDP2 with a bitsandbytes 8-bit optimizer", "early stopping without eval steps"}


def mirrored_configs(tmp: Path) -> list[tuple[str, Path, bool]]:
    """(case, written config, Axolotl accepts it) for each broken case of test_validate that mirrors an Axolotl
    validator (refused) and each warned or accepted form (accepted)."""
    tmp.mkdir(parents=True, exist_ok=True)
    cases = [(b[0], b[1], False) for b in BROKEN if b[0] in MIRRORED]
    cases += [(w[0], w[1], True) for w in WARNED] + [(a[0], mutate(a[1], None, "cpu", a[2]), True) for a in ACCEPTED]
    assert len(cases) == len(MIRRORED) + len(WARNED) + len(ACCEPTED)
    out = []
    for i, (name, cfg, accepted) in enumerate(cases):
        cfg = dict(cfg, bf16=False, attn_implementation="sdpa", lora_mlp_kernel=False, lora_qkv_kernel=False,
                   lora_o_kernel=False)  # a CPU host: only the case's own change should matter
        path = tmp / f"case{i}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        out.append((name, path, accepted))
    return out


@pytest.mark.tools
def test_axolotl_agrees_with_each_mirrored_case(axolotl_checks):
    """Each broken case of test_validate that mirrors an Axolotl validator is refused by Axolotl too; each
    warned or accepted form is accepted by Axolotl (checked in the session's one Axolotl start)."""
    found = axolotl_checks["found"]
    for name, path, accepted in axolotl_checks["configs"]["mirrored"]:
        problems = [p.render() for p in found[str(path)]]
        assert (not problems) == accepted, f"{name}: Axolotl says {problems or 'ok'}"
