"""Hand-edited or damaged results and state: `compare`, `report` and `status` answer in one line naming the file
and the field and how to fix it, exit non-zero without a traceback, and change nothing in the study. ftstudy
never writes NaN or Infinity, which strict JSON readers (jq, JSON.parse) refuse.

The files are the quick demo's own (a copy): every kind of file those three commands read back."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftstudy.cli.main import main
from ftstudy.core.errors import UserError
from tests.conftest import copy_study

RESULT = "results/classification/lora/ag_news.json"
SAMPLES = "results/classification/lora/ag_news.samples.jsonl"
STATE = "state/classification/lora-cpu.json"
LOCK = "study.lock.json"
TRAIN = "runs/classification/*/train.json"
VIEW = "results/classification.json"
READERS = {RESULT: ("compare", "report"), SAMPLES: ("compare", "report"), STATE: ("status", "compare", "report"),
           LOCK: ("report",), TRAIN: ("report",), VIEW: ("compare",)}


def strict(text: str):
    """Parse as a strict JSON reader does: NaN and Infinity are errors."""
    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _set(path: list, value):
    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return doc
    return edit


def _drop(path: list):
    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        return doc
    return edit


def _first_line(edit):
    """An edit of the first line of a JSON Lines file."""
    def lines(text: str) -> str:
        first, *rest = text.splitlines()
        return "\n".join([json.dumps(edit(json.loads(first)))] + rest) + "\n"
    return lines


# (file, edit of its parsed JSON, or of its text when `text`, the field the one line must name)
CASES = {
    "result value as a string": (RESULT, _set(["value"], "0.5"), "value"),
    "result value as a list": (RESULT, _set(["value"], [0.5]), "value"),
    "result missing a key": (RESULT, _drop(["benchmark_version"]), "benchmark_version"),
    "result a list, not an object": (RESULT, lambda d: [d], "(top level)"),
    "result settings a list": (RESULT, _set(["settings"], []), "settings"),
    "result value NaN": (RESULT, _set(["value"], float("nan")), "value"),
    "sample score 'high'": (SAMPLES, _first_line(_set(["score"], "high")), "score"),
    "sample a list, not an object": (SAMPLES, _first_line(lambda d: [d]), "(top level)"),
    "sample missing its id": (SAMPLES, _first_line(_drop(["id"])), "id"),
    "state stage as a string": (STATE, _set(["train"], "done"), "train"),
    "state stage missing its status": (STATE, _drop(["train", "status"]), "train.status"),
    "state a list, not an object": (STATE, lambda d: [d], "(top level)"),
    "state contamination rows 'high'": (STATE, _set(["prepare", "output", "contamination", "benchmarks", "ag_news", "rows"],
                                                    "high"), "prepare.output.contamination.benchmarks.ag_news.rows"),
    "lock a list, not an object": (LOCK, lambda d: [d], "(top level)"),
    "lock experiments a list": (LOCK, _set(["experiments"], []), "experiments"),
    "train.json a list, not an object": (TRAIN, lambda d: [d], "(top level)"),
    "train.json loss curve 'high'": (TRAIN, _set(["loss_curve"], "high"), "loss_curve"),
    "results/<exp>.json method a string": (VIEW, _set(["methods", "full"], "oops"), "methods.full"),
    "results/<exp>.json holding NaN": (VIEW, _set(["methods", "lora", "improvement", "ag_news", "absolute"], float("nan")),
                                       "methods.lora.improvement.ag_news.absolute"),
}


@pytest.fixture(scope="module")
def study(quick_demo, tmp_path_factory) -> Path:
    return copy_study(quick_demo[0], tmp_path_factory.mktemp("hand-edited") / "demo")


def command(name: str, study: Path, out: Path) -> list[str]:
    return {"compare": ["compare", "classification", "--results-dir", str(study / "results")],
            "report": ["report", "--root", str(study), "--out", str(out)],
            "status": ["status"]}[name]


def run(name: str, study: Path, out: Path, monkeypatch):
    monkeypatch.chdir(study)  # status reads the study in the working folder
    return CliRunner().invoke(main, command(name, study, out))


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_the_demo_study_reads_back_clean_and_every_file_it_wrote_is_strict_json(study, tmp_path, monkeypatch):
    from ftstudy.core import checked_json

    for name in ("compare", "status", "report"):
        res = run(name, study, tmp_path / "report", monkeypatch)
        assert res.exit_code == 0, (name, res.output, res.exception)
    files = [p for pattern in ("results/*.json", "results/*/*/*.json", "results/*/*/*.samples.jsonl", "state/*/*.json",
                               LOCK, TRAIN) for p in study.glob(pattern)]
    for kind, pattern in (("result", "results/*/*/*.json"), ("state", "state/*/*.json"), ("study_lock", LOCK),
                          ("train_run", TRAIN)):
        found = sorted(study.glob(pattern))
        assert found, pattern
        for p in found:
            checked_json.read(p, kind)
    assert len(files) > 6
    for p in files:  # the readers' schemas accept what ftstudy writes, and it writes no NaN
        for line in (p.read_text().splitlines() if p.suffix == ".jsonl" else [p.read_text()]):
            strict(line)


@pytest.mark.parametrize("case", CASES)
def test_a_hand_edited_file_is_named_in_one_line_by_every_command_that_reads_it(case, study, tmp_path, monkeypatch):
    pattern, edit, field = CASES[case]
    path = next(iter(sorted(study.glob(pattern))))
    rel = str(path.relative_to(study))
    original = path.read_text()
    try:
        path.write_text(edit(original) if pattern == SAMPLES else json.dumps(edit(json.loads(original)), indent=1))
        for name in READERS[pattern]:
            before = snapshot(study)
            res = run(name, study, tmp_path / "report", monkeypatch)
            lines = [l for l in res.output.splitlines() if l.strip()]
            assert isinstance(res.exception, SystemExit) and res.exit_code != 0, (name, res.output, res.exception)
            assert len(lines) == 1 and lines[0].startswith("Error: "), (name, res.output)
            assert rel in lines[0] and f'field "{field}"' in lines[0], (name, lines[0])
            assert "delete" in lines[0] or "put the field back" in lines[0], lines[0]  # says how to fix it
            assert snapshot(study) == before, f"{name} changed the study"  # nothing lost, nothing half-written
            assert not (tmp_path / "report").exists()
    finally:
        path.write_text(original)


def test_results_and_samples_are_written_without_nan_and_say_why_a_value_is_null(tmp_path):
    from ftstudy.eval import records
    from ftstudy.study import comparison
    from tests.test_compare import put, scores

    put(tmp_path, "classification", "base", "ag_news", scores(30, 0.3, 1))
    put(tmp_path, "classification", "lora", "ag_news", scores(30, 0.6, 1), value=float("nan"))
    path, samples = records.paths(tmp_path, "classification", "lora", "ag_news")
    rec = strict(path.read_text())
    assert rec["value"] is None and "NaN" in rec["undefined_values"]["value"]
    row = comparison.compare("classification", "base", "lora", tmp_path, ["ag_news"])[0]
    assert row["status"] == "missing" and "NaN" in row["reason"], row
    rec = {**records.read_record(path), "tag": "full", "model_fingerprint": "fp-full"}
    records.save(tmp_path, rec, [{"id": "0", "score": float("inf"), "output": "x"}])
    line = strict(records.paths(tmp_path, "classification", "full", "ag_news")[1].read_text())
    assert line["score"] is None and line["undefined_values"] == {"score": "was Infinity, which JSON cannot hold"}


def test_the_plan_view_and_the_state_are_written_without_nan(tmp_path):
    from ftstudy.study import plan_results, study_state

    rows = [{"benchmark": "ag_news", "status": "ok", "base": float("nan"), "ft": 0.5},
            {"benchmark": "mmlu", "status": "ok", "base": 0.5, "ft": 0.6}]
    path = plan_results.write(tmp_path, "classification", "lora", "base-model", "ft-model", rows)
    entry = strict(path.read_text())["methods"]["lora"]
    assert set(entry["base_model_scores"]) == {"mmlu"}  # an undefined score is left out, like a missing one
    state = tmp_path / "state.json"
    study_state.save_state(state, {"train": {"status": "done", "output": {"train_loss": float("nan")}}})
    saved = strict(state.read_text())
    assert saved["train"]["output"]["train_loss"] is None and "train.output.train_loss" in saved["undefined_values"]


@pytest.mark.parametrize("text,where", [
    ('{"value": NaN}', 'field "value": NaN'), ('{"a": [1, Infinity]}', 'field "a.1": Infinity'),
    ('{"a": -Infinity}', 'field "a": -Infinity'), ('{"value": 0.5', "not valid JSON at line 1 column 14"),
    (b'{"value": "\xff"}', "not UTF-8 text")])
def test_the_reader_refuses_what_strict_json_refuses_in_one_line(tmp_path, text, where):
    from ftstudy.core import checked_json

    path = tmp_path / "x.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(UserError) as err:
        checked_json.read(path, {"type": "object"}, fix="delete it")
    msg = str(err.value)
    assert msg.startswith(str(path)) and where in msg and msg.endswith("delete it") and "\n" not in msg, msg


@pytest.mark.parametrize("jobs,field", [
    ({"classification.prepare": ["12"]}, "classification.prepare"),
    ({"classification.prepare": {"job_id": 12, "stage": "prepare", "experiment": "classification",
                                 "hardware": "cpu", "log": "x.log"}}, "classification.prepare.job_id"),
    ([], "(top level)"),
])
def test_a_hand_edited_slurm_jobs_file_is_one_line_in_status(tmp_path, monkeypatch, jobs, field):
    """slurm/jobs.json (what `run --executor slurm` submitted) is read through the checked reader too: `status`
    names the file and the field instead of a traceback, and the file is left as it was."""
    (tmp_path / "slurm").mkdir()
    path = tmp_path / "slurm" / "jobs.json"
    path.write_text(json.dumps(jobs))
    before = path.read_bytes()
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["status"])
    lines = [l for l in res.output.splitlines() if l.strip()]
    assert res.exit_code != 0 and isinstance(res.exception, SystemExit), res.output
    err = [l for l in lines if l.startswith("Error:")]
    assert len(err) == 1 and "slurm/jobs.json" in err[0] and f'field "{field}"' in err[0] and "squeue" in err[0], res.output
    assert path.read_bytes() == before
