"""A new experiment on an existing row format, and a new lm-eval benchmark, added as data only (issue 12).

The registry (experiments.yaml and evals/) is copied into a temporary folder named by $FTSTUDY_REGISTRY_DIR;
the copy gains one experiment entry, one benchmark entry with its lm-eval task YAML, and one fixture file
found by the new source's id. Then `list`, `show`, `gen`, `validate --strict`, `prepare` on the fixture,
`stage-data --dry-run` and `plan` run through the CLI and must show the new entries with their own values:
any of them needing a Python edit fails here. No tool environment is used (prepare reports its tokens as not
counted), so this is not a `tools` test.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ftstudy.cli.main import main
from ftstudy.core import tool_envs as envs

# What a user writes: one experiment entry (row shape `alpaca` exists) ...
EXPERIMENT = yaml.safe_load("""
id: finance
title: Financial question answering
teaches: answer questions on personal finance and markets
sources:
  - id: finance_alpaca
    hub: gbharti/finance-alpaca
    split: train
    shape: alpaca
    fields: {instruction: instruction, input: input, output: output}
    to_axolotl: type alpaca
    weight: 1.0
    cap: null
    split_rows: 68912
    mean_tokens: 230
methods: [lora]
sequence_len: 1024
hyperparameters:
  num_epochs: 2
  lora: {learning_rate: 0.0003, lora_r: 8, lora_alpha: 16}
benchmarks: {primary: [fin_sentiment], secondary: [], guards: []}
plan: {phase: null, order: null, size: 68912, hours: {}}
""")
# ... one benchmark entry on the lm-eval harness ...
BENCHMARK = yaml.safe_load("""
fin_sentiment:
  n_items: 2388
  title: Financial tweet sentiment accuracy (3-way multiple choice)
  harness: lm-eval
  task: fin_sentiment_mc
  local_task: true
  metric: acc,none
  higher_is_better: true
  scale: fraction
  version: 1
  protocol:
    source: ftstudy local task evals/tasks/fin_sentiment_mc.yaml
    shots: 0
    chat_template: false
    split: validation
    n_items: 2388
    metric: acc
    aggregate: mean over items
    deviations: []
""")
# ... and its task file.
TASK = """task: fin_sentiment_mc
dataset_path: zeroshot/twitter-financial-news-sentiment
output_type: multiple_choice
test_split: validation
doc_to_text: "Is this financial tweet bearish, bullish or neutral?\\n\\n{{text.strip()}}\\n\\nAnswer with one word."
doc_to_choice: ["Bearish", "Bullish", "Neutral"]
doc_to_target: label
metric_list:
  - {metric: acc, aggregation: mean, higher_is_better: true}
metadata: {version: 1.0}
"""
TERMS = ["bond", "stock", "dividend", "yield curve", "index fund", "margin call", "credit score", "mortgage",
         "annuity", "exchange-traded fund", "call option", "futures contract", "REIT", "certificate of deposit",
         "IRA", "401(k)", "hedge", "bid-ask spread", "coupon", "bear market"]
LEAKED = "Shares of the regional bank fell sharply after it cut its full year profit forecast for the second time"
FIXTURE = [{"instruction": f"What is a {t}?", "input": "", "output": f"A {t} is term {i} of this glossary, in plain words."}
           for i, t in enumerate(TERMS)] + [{"instruction": "Summarise the headline.", "input": "", "output": LEAKED + "."}]
ITEMS = [{"text": LEAKED, "label": 0}, {"text": "Chipmaker beats estimates and raises guidance", "label": 1}]


@pytest.fixture
def added(tmp_path, monkeypatch, registry_copy):
    """The registry copy with the new entries; cwd is an empty work folder. Returns (bundled count, folder)."""
    reg = registry_copy
    exps = yaml.safe_load((reg / "experiments.yaml").read_text())
    bundled_count = len(exps["experiments"])
    exps["experiments"].append(EXPERIMENT)
    (reg / "experiments.yaml").write_text(yaml.safe_dump(exps, sort_keys=False))
    benches = yaml.safe_load((reg / "evals" / "benchmarks.yaml").read_text())
    benches["benchmarks"].update(BENCHMARK)
    (reg / "evals" / "benchmarks.yaml").write_text(yaml.safe_dump(benches, sort_keys=False))
    (reg / "evals" / "tasks" / "fin_sentiment_mc.yaml").write_text(TASK)
    fixtures = tmp_path / "fixtures"  # found by source id, as tests/fixtures/<source id>.jsonl
    fixtures.mkdir()
    (fixtures / f"{EXPERIMENT['sources'][0]['id']}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in FIXTURE))
    staged = tmp_path / "staged" / "zeroshot" / "twitter-financial-news-sentiment" / "default"
    staged.mkdir(parents=True)
    (staged / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ITEMS))
    monkeypatch.setenv("FTSTUDY_ENVS_DIR", str(tmp_path / "no-envs"))  # no tool environment: nothing heavy runs
    for name in envs.ENVS:
        monkeypatch.delenv(f"FTSTUDY_{name.upper()}_ENV", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return bundled_count, tmp_path


def ok(*args: str) -> str:
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, f"ftstudy {' '.join(args)}:\n{res.output}"
    return res.output


def test_a_new_experiment_and_benchmark_need_no_python(added):
    bundled_count, tmp = added
    out = ok("list")
    assert f"{bundled_count + 1} experiments" in out
    assert [line.split() for line in out.splitlines() if line.startswith("finance ")] == [
        ["finance", "-", "lora", "fin_sentiment", "gbharti/finance-alpaca"]]
    rows = json.loads(ok("list", "--json"))
    assert rows[-1]["id"] == "finance" and rows[-1]["benchmarks"] == ["fin_sentiment"] and len(rows) == bundled_count + 1

    text = ok("show", "finance")
    for needle in ("finance_alpaca: gbharti/finance-alpaca split=train  (weight 1.0, cap none)",
                   "row shape alpaca: instruction -> instruction", "learning_rate=0.0003", "lora_r=8",
                   "primary   fin_sentiment   lm-eval        fin_sentiment_mc  [acc,none]",
                   "fin_sentiment: 2388 items; lm-eval task fin_sentiment_mc (local YAML in evals/tasks)",
                   "sequence_len: 1024", "dataset size: 68,912 rows"):
        assert needle in text, needle
    shown = json.loads(ok("show", "finance", "--json"))
    assert shown["sources"][0]["split_rows"] == 68912 and shown["sources"][0]["mean_tokens"] == 230
    assert shown["benchmark_details"]["fin_sentiment"]["task"] == "fin_sentiment_mc"

    ok("gen", "finance", "--hardware", "cpu")
    path = Path("axolotl_configs/finance/lora-cpu.yaml")
    cfg = yaml.safe_load(path.read_text())
    assert [(d["path"], d["type"]) for d in cfg["datasets"]] == [("data/prepared/finance/finance_alpaca.jsonl", "alpaca")]
    assert (cfg["sequence_len"], cfg["num_epochs"], cfg["learning_rate"], cfg["lora_r"], cfg["lora_alpha"]) == (
        1024, 2, 0.0003, 8, 16)
    assert "1 file(s) checked, 0 invalid" in ok("validate", "--strict", str(path))

    fixture = tmp / "fixtures" / "finance_alpaca.jsonl"
    out = ok("prepare", "finance", "--data", str(fixture), "--bench-data-dir", str(tmp / "staged"))
    assert "tokens not counted" in out  # no train environment here
    [manifest] = Path("data/prepared/finance").glob("finance_alpaca-*.manifest.json")
    man = json.loads(manifest.read_text())
    assert man["source"]["id"] == "finance_alpaca" and man["counts"]["rows_read"] == len(FIXTURE)
    found = man["contamination"]["benchmarks"]["fin_sentiment"]  # items read through the new task YAML
    assert (found["status"], found["items"], found["rows"]) == ("checked", len(ITEMS), 1)
    prepared = [json.loads(line) for line in manifest.with_name(man["output"]["path"]).read_text().splitlines()]
    assert prepared and sorted(map(json.dumps, prepared)) == sorted(map(json.dumps, FIXTURE[:-1]))

    assert "fin_sentiment_mc: hub zeroshot/twitter-financial-news-sentiment (split validation)" in ok(
        "stage-data", str(tmp / "stage"), "--experiments", "finance", "--dry-run")

    plan = json.loads(ok("plan", "finance", "--json"))
    assert (plan["experiment"], plan["method"]) == ("finance", "lora")
    tokens = plan["tokens"]
    assert (tokens["source"], tokens["rows"], tokens["mean_tokens_per_row"], tokens["epochs"]) == (
        "estimate", 68912, 230.0, 2)
    assert "68,912 rows × 230 tokens/row × 2 epoch(s)" in ok("plan", "finance")


def test_the_bundled_registry_is_untouched_by_the_copy(added, monkeypatch):
    from ftstudy.config import registry

    assert "finance" in registry.experiment_ids() and "fin_sentiment" in registry.benchmarks()
    monkeypatch.delenv("FTSTUDY_REGISTRY_DIR")
    assert "finance" not in registry.experiment_ids() and "fin_sentiment" not in registry.benchmarks()
