"""Decontamination: benchmark items planted in training data are found and dropped (or kept and marked), clean
data gives zero, a benchmark whose items cannot be loaded is "not checked", and the demo data is clean.

Benchmark items are staged under tests/fixtures/decontam/ in the hub's row shapes and folder layout
(<dataset_path>/<dataset_name>/<split>.jsonl): GSM8K `main` test (question, answer) and TruthfulQA
`multiple_choice` validation (question, mc1_targets, mc2_targets), the split lm-eval's truthfulqa_mc2 reads.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftstudy.data.decontam import ngrams as decontam
from ftstudy.data.decontam import check as decontam_check
from ftstudy.data.decontam import items as decontam_items
from ftstudy.config import registry
from ftstudy.cli.main import main
from ftstudy.data.prepare import prepare

FIX = Path(__file__).resolve().parent / "fixtures"
STAGED = FIX / "decontam"
DEMO = Path(__file__).resolve().parents[1] / "ftstudy" / "study" / "demo_data"
quiet = lambda m: None  # noqa: E731


def jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


GSM = jsonl(STAGED / "openai/gsm8k/main/test.jsonl")
TQA = jsonl(STAGED / "truthfulqa/truthful_qa/multiple_choice/validation.jsonl")


def planted_metamath(tmp_path: Path) -> tuple[Path, list[str]]:
    """MetaMathQA fixture rows with three GSM8K test questions planted (query, reworded case and punctuation,
    and inside a response), and one honest rephrasing of the fourth that must not be flagged."""
    rows = jsonl(FIX / "metamath.jsonl")
    plants = [
        {"query": GSM[0]["question"], "response": "7 * 12 = 84 and 84 - 15 = 69.\nThe answer is: 69",
         "type": "GSM_AnsAug", "original_question": GSM[0]["question"]},
        {"query": "SOLVE: " + GSM[2]["question"].upper().replace(",", " ;"),
         "response": "450 - 210 + 20 = 260.\nThe answer is: 260", "type": "GSM_AnsAug", "original_question": "x"},
        {"query": "Restate the word problem, then stop.", "response": "The problem: " + GSM[1]["question"],
         "type": "GSM_Rephrased", "original_question": "x"},
    ]
    honest = {"query": "If Theo purchases three notebooks costing four dollars apiece plus a couple of pens at one "
                       "fifty each, and hands over twenty dollars, what change comes back?",
              "response": "12 + 3 = 15, 20 - 15 = 5.\nThe answer is: 5", "type": "GSM_Rephrased", "original_question": "x"}
    mixed = rows[:5] + [plants[0]] + rows[5:10] + [plants[1], honest] + rows[10:] + [plants[2]]
    return write(tmp_path / "metamath_planted.jsonl", mixed), [p["query"] for p in plants]


def test_gsm8k_questions_planted_in_metamath_are_found_and_dropped(tmp_path):
    data, queries = planted_metamath(tmp_path)
    rep = prepare("math", data=[str(data), str(FIX / "gsm8k.jsonl")], out_root=tmp_path / "out", progress=quiet,
                  bench_data_dir=STAGED)
    fig = rep.contamination
    assert fig["action"] == "dropped" and fig["benchmarks"]["gsm8k"]["status"] == "checked"
    assert fig["benchmarks"]["gsm8k"]["items"] == len(GSM) and fig["benchmarks"]["gsm8k"]["rows"] == 3
    meta = rep.sources[0]
    assert meta.contamination["benchmarks"]["gsm8k"]["rows"] == 3
    assert meta.converted == len(jsonl(data)) - 3 == len(jsonl(meta.path))
    text = meta.path.read_text()
    assert all(q not in text for q in queries) and "Theo purchases three notebooks" in text  # the rephrasing stays
    examples = meta.contamination["benchmarks"]["gsm8k"]["examples"]
    assert [e["item"] for e in examples] == [0, 2, 1] and "12 tulips in each vase" in examples[0]["ngram"]
    manifest = json.loads(meta.path.with_suffix(".manifest.json").read_text())
    assert manifest["contamination"]["benchmarks"]["gsm8k"]["rows"] == 3 and manifest["output"]["rows"] == meta.converted
    # GSM8K's own train split (the second source) shares nothing with these test items
    assert rep.sources[1].contamination["benchmarks"]["gsm8k"]["rows"] == 0
    # the benchmarks with nothing staged (MATH, MMLU) are not checked, and never reported clean
    for b in ("math", "mmlu_math", "mmlu"):
        assert fig["benchmarks"][b]["status"] == "not checked" and "rows" not in fig["benchmarks"][b]
        assert decontam_check.cell(fig["benchmarks"][b]) == "not checked"
    assert any("gsm8k" in line and "3 row(s)" in line for line in rep.lines())


def planted_ultrafeedback(tmp_path: Path) -> tuple[Path, str]:
    rows = jsonl(FIX / "ultrafeedback_binarized.jsonl")
    q = TQA[0]["question"]
    plant = json.loads(json.dumps(rows[0]).replace(rows[0]["prompt"], q))
    assert plant["prompt"] == q and plant["chosen"][0]["content"] == q
    return write(tmp_path / "uf_planted.jsonl", rows[:3] + [plant] + rows[3:]), q


def test_truthfulqa_question_among_ultrafeedback_prompts_is_found_and_dropped(tmp_path):
    data, q = planted_ultrafeedback(tmp_path)
    rep = prepare("dpo", data=[str(data)], out_root=tmp_path / "out", progress=quiet, bench_data_dir=STAGED)
    tqa = rep.contamination["benchmarks"]["truthfulqa"]
    assert (tqa["status"], tqa["items"], tqa["rows"]) == ("checked", len(TQA), 1)
    assert tqa["examples"][0]["line"] == 4 and tqa["examples"][0]["ngram"] == " ".join(decontam.words(q))
    assert q not in rep.sources[0].path.read_text()
    assert rep.sources[0].converted == len(jsonl(data)) - 1


def test_keep_contaminated_keeps_the_rows_and_says_so(tmp_path):
    data, q = planted_ultrafeedback(tmp_path)
    rep = prepare("dpo", data=[str(data)], out_root=tmp_path / "out", progress=quiet, bench_data_dir=STAGED,
                  keep_contaminated=True)
    assert rep.contamination["action"] == "kept" and q in rep.sources[0].path.read_text()
    assert decontam_check.left_in(rep.contamination) == {"truthfulqa": 1}
    assert any("KEPT" in line for line in rep.lines())


def test_clean_fixtures_give_zero(tmp_path):
    fig = decontam_check.check("math", data=[str(FIX / "metamath.jsonl"), str(FIX / "gsm8k.jsonl")],
                               data_dir=STAGED, raw_root=tmp_path, progress=quiet)
    assert fig["benchmarks"]["gsm8k"]["status"] == "checked" and fig["rows_contaminated"] == 0
    assert fig["rows_scanned"] == len(jsonl(FIX / "metamath.jsonl")) + len(jsonl(FIX / "gsm8k.jsonl"))
    fig = decontam_check.check("dpo", data=[str(FIX / "ultrafeedback_binarized.jsonl")], data_dir=STAGED,
                               raw_root=tmp_path, progress=quiet)
    # AlpacaEval's 805 instructions (tatsu-lab/alpaca_eval) are not staged here: not checked, never "clean"
    assert fig["benchmarks"]["truthfulqa"]["rows"] == 0 and fig["benchmarks"]["alpaca_eval"]["status"] == "not checked"
    assert fig["rows_contaminated"] == 0


def test_a_benchmark_without_loadable_items_is_not_checked(tmp_path):
    # nothing staged, hub offline (conftest): not checked, with a reason that says how to stage
    items = decontam_items.load("gsm8k", tmp_path)
    assert not items.checked and "stage it with --data-dir" in items.reason
    # a staged file that is not JSON, and an empty one: not checked either
    (tmp_path / "gsm8k.jsonl").write_text("{not json\n")
    assert "not valid JSON" in decontam_items.load("gsm8k", tmp_path).reason
    (tmp_path / "gsm8k.jsonl").write_text("")
    chk = decontam_check.build("math", tmp_path, progress=quiet)
    assert chk.benchmarks["gsm8k"] == {"status": "not checked", "reason": f"no items in {tmp_path / 'gsm8k.jsonl'}"}
    assert chk.checked == [] and not chk.index.targets
    # MultiPL-E's items live inside bigcode-evaluation-harness only
    assert not decontam_items.load("multipl_e").checked


def test_demo_data_is_clean_for_the_demo_benchmarks(tmp_path):
    for exp, data, benches in (("classification", "ag_news_train.jsonl", ["ag_news"]),
                               ("tool_use", "xlam_train.jsonl", ["xlam_toolcall", "xlam_tool_selection"])):
        rep = prepare(exp, data=[str(DEMO / data)], out_root=tmp_path, progress=quiet, bench_data_dir=DEMO / "bench")
        for b in benches:
            v = rep.contamination["benchmarks"][b]
            assert (v["status"], v["rows"]) == ("checked", 0) and v["items"] > 0, (exp, b, v)
        assert rep.sources[0].converted == rep.sources[0].selected


def test_index_rules():
    idx = decontam.Index(ngram=13)
    idx.add("a", [{"question": "Why do veins look blue?", "answer": "Because of how light scatters in skin."},
                  {"question": "What happens if you swallow a cherry pit whole?", "choices": ["It passes through you"]}])
    idx.add("b", [{"prompt": "What happens if you swallow a cherry pit whole?"}])
    # a prompt of 8+ words is one target; shorter prompts and short non-prompt fields are not evidence
    assert idx.lengths == {9} and len(idx.targets) == 1
    hits = idx.scan_row({"messages": [{"role": "user", "content": "so, what happens if you SWALLOW a cherry pit whole"}]})
    assert [(h.bench, h.item) for h in hits] == [("a", 1), ("b", 0)]
    assert idx.scan_row({"text": "Because of how light scatters in skin."}) == []
    assert idx.scan_row({"text": "what happens if you swallow a cherry"}) == []


def test_decontaminate_cli_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, _ = planted_ultrafeedback(tmp_path)
    res = CliRunner().invoke(main, ["decontaminate", "dpo", "--data", str(data), "--data-dir", str(STAGED), "--json"])
    assert res.exit_code == 0, res.output
    fig = json.loads(res.stdout)
    assert fig["experiment"] == "dpo" and fig["action"] == "measured" and fig["benchmarks"]["truthfulqa"]["rows"] == 1
    assert json.loads(data.read_text().splitlines()[3])  # the input is left as it was
    res = CliRunner().invoke(main, ["decontaminate", "dpo", "--data", "missing.jsonl"])
    assert res.exit_code == 1 and "no such file" in res.output and "Traceback" not in res.output


@pytest.mark.tools
def test_pinned_datasets_match_the_installed_lm_eval():
    tasks_dir = decontam_items.installed_tasks_dir()
    assert tasks_dir is not None, "the eval environment is missing: `ftstudy setup eval` (make test builds it)"
    builtin = {registry.benchmark(b)["task"] for b in registry.benchmarks() if registry.benchmark(b)["harness"] == "lm-eval"
               and not registry.benchmark(b).get("local_task")}
    checked = 0
    for task, spec in decontam_items.PINNED.items():
        assert decontam_items.task_datasets(task, tasks_dir) == [spec], task
        checked += 1
    assert checked == len(decontam_items.PINNED) and {"gsm8k", "truthfulqa_mc2"} <= builtin
    assert len(decontam_items.task_datasets("mmlu", tasks_dir)) == 57


def test_contamination_left_in_is_marked_and_shown_in_status_and_report(tmp_path):
    from ftstudy.study import comparison
    from ftstudy.study import report
    from ftstudy.study import study
    from tests.test_compare import put, scores

    res = tmp_path / "results"
    put(res, "dpo", "base", "truthfulqa", scores(60, 0.3, 1))
    put(res, "dpo", "dpo", "truthfulqa", scores(60, 0.9, 1))
    data, _ = planted_ultrafeedback(tmp_path)
    figs = {}
    for keep in (False, True):
        figs[keep] = prepare("dpo", data=[str(data)], out_root=tmp_path / f"out{keep}", progress=quiet,
                             bench_data_dir=STAGED, keep_contaminated=keep).contamination
    state = tmp_path / "state" / "dpo" / "dpo-cpu.json"
    state.parent.mkdir(parents=True)
    for keep, marked in ((False, False), (True, True)):
        state.write_text(json.dumps({"prepare": {"status": "done", "key": "k", "output": {"contamination": figs[keep]}}}))
        row = comparison.compare("dpo", "base", "dpo", res, ["truthfulqa"])[0]
        assert row["status"] == "ok" and ("contamination" in row) == marked
        assert ("contamination left in: 1 training row(s) share a 13-gram with truthfulqa items" in row["verdict"]) == marked
        assert row["verdict"].startswith(("met", "above the plan's range", "below the plan's range")), row["verdict"]
    prep = [r for r in study.status(tmp_path, "dpo") if r["stage"] == "prepare"][0]
    assert prep["contamination"] == figs[True] and "truthfulqa 1 rows KEPT" in prep["detail"]
    assert "bbq not checked" in prep["detail"]
    md = report.write(tmp_path, tmp_path / "report")[1].read_text()
    assert "## Contamination" in md and "| dpo | dpo-cpu | truthfulqa | checked | 3 | 1 | kept |" in md
    assert "| dpo | dpo-cpu | bbq | not checked |" in md and "contamination left in" in md


def test_show_carries_the_figures_of_the_prepared_default_sources(tmp_path, monkeypatch):
    import shutil

    from ftstudy.config import gen
    from ftstudy.cli import show

    monkeypatch.chdir(tmp_path)
    assert show.experiment_dict("classification")["contamination"] is None
    assert "contamination: not measured" in show.show_text("classification")
    src = registry.experiment("classification").active_sources[0]
    raw = Path("data/raw/classification") / f"{gen.source_name(src, None)}.jsonl"  # a hub dump prepare reuses
    raw.parent.mkdir(parents=True)
    shutil.copy(DEMO / "ag_news_train.jsonl", raw)
    raw.with_name(raw.name + ".source.json").write_text(json.dumps({"hub": src.hub, "config": src.config,
                                                                      "split": src.split}))
    prepare("classification", bench_data_dir=DEMO / "bench", progress=quiet)
    fig = show.experiment_dict("classification")["contamination"]
    assert fig["benchmarks"]["ag_news"] == {**fig["benchmarks"]["ag_news"], "status": "checked", "rows": 0, "items": 200}
    text = show.show_text("classification")
    assert "0 row(s) of 200 items" in text and "mmlu" in text and "not checked" in text
