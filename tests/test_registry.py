"""The experiment and benchmark registries: every entry is complete and every reference resolves."""
import pytest
from click.testing import CliRunner

from ftstudy.cli.main import main
from ftstudy.config import profiles
from ftstudy.config import registry
from ftstudy.config.row_formats import SHAPES

# The study plan's experiments, in the architecture's order; the registry may hold more (added as data).
STUDY = ["classification", "instruction", "chat", "code", "math", "medical", "legal", "dpo", "tool_use",
         "summarization", "creative"]


def test_the_study_plans_experiments_in_order():
    ids = registry.experiment_ids()
    assert len(set(ids)) == len(ids)
    assert [i for i in ids if i in STUDY] == STUDY


@pytest.mark.parametrize("exp_id", registry.experiment_ids())
def test_experiment_is_complete(exp_id):
    e = registry.experiment(exp_id)
    assert e.active_sources, "an experiment needs training data"
    assert set(e.methods) <= set(registry.METHODS)
    assert e.primary
    for s in e.sources:
        assert s.shape in SHAPES, f"{exp_id}: source {s.hub} has unknown shape {s.shape}"
    for b in e.all_benchmarks:
        registry.benchmark(b)  # raises if undeclared
    assert set(e.plan["hours"]) <= set(e.methods), "plan hours only for the experiment's methods"
    for b in e.plan.get("expected", {}):
        assert b in e.all_benchmarks or b in e.plan.get("not_run", {}), f"{exp_id}: plan figure for unknown {b}"
    for m in e.methods:
        assert e.hyper(m)["learning_rate"] > 0


def test_every_declared_benchmark_is_used_and_described():
    used = {b for e in registry.experiments() for b in e.all_benchmarks}
    declared = registry.benchmarks()
    probes = {bid for bid, b in declared.items() if b.get("probe_set")}
    # the probe sets written for this project serve CPU tests and demos; no experiment reports them
    assert used == set(declared) - probes, f"unused: {set(declared) - probes - used}, undeclared: {used - set(declared)}"
    for bid, b in declared.items():
        assert {"harness", "task", "metric", "higher_is_better", "version", "scale"} <= set(b), bid
    assert probes and probes == {b for b in declared if b.endswith("_mini")}
    assert all("not " in declared[b]["title"] for b in probes)


def test_unknown_id_suggests_near_matches():
    with pytest.raises(registry.UnknownName) as err:
        registry.experiment("tool-use")
    assert "tool_use" in str(err.value) and err.value.near == ["tool_use"]
    with pytest.raises(registry.UnknownName):
        registry.check_method(registry.experiment("chat"), "qlora")


def test_profiles_give_a_sensible_global_batch():
    for hw, prof in profiles.PROFILES.items():
        for method in registry.METHODS:
            b = profiles.batch_settings(hw, method)
            assert b["micro_batch_size"] * b["gradient_accumulation_steps"] * prof["gpus"] == prof["global_batch"]
            assert profiles.OPTIMIZERS[hw][method] in profiles.OPTIMIZER_WHY


def test_show_names_the_real_item_sets_and_what_is_not_run():
    from ftstudy.cli import show

    text = show.show_text("instruction")
    assert "mt_bench: 80 items; FastChat" in text and "question.jsonl" in text
    assert "alpaca_eval: 805 items; tatsu-lab/alpaca_eval alpaca_eval_gpt4_baseline.json" in text
    assert "PROBE SET" in show.item_text(registry.benchmark("mt_bench_mini"))
    skipped = registry.not_run()
    assert skipped and all(v["experiment"] in registry.experiment_ids() and v["reason"] for v in skipped.values())
    for v in skipped.values():
        assert v["reason"] in show.show_text(v["experiment"])
    assert "lm-eval task legalbench: legalbench_abercrombie" in show.show_text("legal")


def test_a_source_on_an_undefined_row_shape_is_one_clear_refusal(registry_copy):
    exps = registry_copy / "experiments.yaml"
    exps.write_text(exps.read_text().replace("shape: ag_news", "shape: ag_newz", 1))
    with pytest.raises(registry.RegistryError, match=r"'classification'.*ag_news \(ag_newz\).*row_formats.yaml"):
        registry.experiments()


def test_a_malformed_row_format_is_refused_with_its_name(tmp_path):
    from ftstudy.config import row_formats

    path = tmp_path / "row_formats.yaml"
    path.write_text("formats:\n  mine: {fields: text, convert: keep, axolotl: {type: alpaca}}\n")
    with pytest.raises(row_formats.RowFormatError, match="row format 'mine' needs `fields` \\(a list\\)"):
        row_formats.load(path)
    path.write_text("formats:\n  mine: {fields: [text], convert: keep, axolotl: {type: completion, field: text}}\n")
    assert row_formats.load(path) == {"mine": {"fields": ["text"], "convert": "keep",
                                               "axolotl": {"type": "completion", "field": "text"}}}


def test_a_typo_or_a_missing_key_in_experiments_yaml_is_one_line_naming_the_entry(registry_copy):
    text = (registry_copy / "experiments.yaml").read_text()
    cases = [("    weight:", "    wieght:", r"experiment '\w+', source '\w+': unknown key 'wieght' \(did you mean 'weight'\?\)"),
             ("  sequence_len:", "  sequence_lenght:", r"experiment '\w+': unknown key 'sequence_lenght' \(did you mean 'sequence_len'\?\)"),
             ("    hub:", "    hubb:", r"experiment '\w+', source '\w+': unknown key 'hubb' \(did you mean 'hub'\?\)"),
             ("    title:", "    # title:", r"experiment '\w+': missing 'title'"),
             ("    sequence_len:", "    seed: 7\n    sequence_len:", r"experiment '\w+': the seed is the study's")]
    for old, new, message in cases:
        assert old in text
        (registry_copy / "experiments.yaml").write_text(text.replace(old, new, 1))
        with pytest.raises(registry.RegistryError, match=str(registry_copy / "experiments.yaml") + ": " + message):
            registry.experiments()
    cli = CliRunner().invoke(main, ["list"])
    assert cli.exit_code == 1 and "experiment 'classification': the seed is the study's" in cli.output
    assert "Traceback" not in cli.output


def test_every_benchmark_states_its_protocol_and_the_defaults_hold():
    """Issue 23: each entry has a protocol; no log-likelihood or few-shot lm-eval task uses a chat template unless
    declared; MMLU is 5-shot (the Qwen2.5 report's setting); PubMedQA scores its 500-item test fold."""
    from ftstudy.config import protocol

    benches = registry.benchmarks()
    for bid in benches:
        protocol.check(bid, registry.benchmark(bid)["protocol"])  # the loader checked it; the view is complete
    lm = {b: d for b, d in benches.items() if d["harness"] == "lm-eval"}
    chat = {b for b, d in lm.items() if d["protocol"]["chat_template"]}
    # IFEval is chat by definition; ag_news declares it (its training format); every other task runs without one
    assert chat == {"ifeval", "ag_news"}, chat
    assert any("chat template" in d["what"] for d in benches["ag_news"]["protocol"]["deviations"])
    assert benches["mmlu"]["protocol"]["shots"] == 5 and benches["mmlu_math"]["protocol"]["shots"] == 5
    assert benches["pubmedqa"]["protocol"]["n_items"] == 500
    pmids = [l for l in (registry.evals_dir() / "tasks" / "pubmedqa_test_pmids.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert len(set(pmids)) == 500
    assert len(lm) >= 15 and all(d["protocol"]["source"] for d in benches.values())
    assert {"pubmedqa", "bbq", "ag_news", "casehold"} <= {b for b, d in lm.items() if d["protocol"]["deviations"]}


@pytest.mark.parametrize("edit, message", [
    (lambda p: p.pop("protocol"), "benchmark 'gsm8k' has no `protocol:` mapping"),
    (lambda p: p["protocol"].update(shot=5), r"benchmark 'gsm8k': unknown protocol keys \['shot'\]"),
    (lambda p: p["protocol"].pop("split"), r"benchmark 'gsm8k': missing \['split'\]"),
    (lambda p: p["protocol"].update(chat_template="no"), "benchmark 'gsm8k': protocol.chat_template is 'no'"),
    (lambda p: p["protocol"].update(deviations=[{"what": "x"}]), r"benchmark 'gsm8k': protocol.deviations\[0\]"),
])
def test_a_missing_or_malformed_protocol_is_one_line_naming_the_benchmark(registry_copy, edit, message):
    import yaml

    path = registry_copy / "evals" / "benchmarks.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc["benchmarks"]["gsm8k"])
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(registry.UserError, match=message) as exc:
        registry.benchmarks()
    assert "\n" not in str(exc.value)


def test_show_prints_each_benchmarks_protocol_source_and_deviations():
    res = CliRunner().invoke(main, ["show", "medical"])
    assert res.exit_code == 0, res.output
    assert ("mmlu: 14042 items; lm-eval task mmlu\n      protocol: 5-shot, no chat template, test (few-shot from dev, "
            "first 5) split, 14042 items, acc") in res.output
    assert "source: Qwen2.5 technical report, base-model setting" in res.output
    assert "      DEVIATION: local task pubmedqa_local reads qiaojin/PubMedQA" in res.output
