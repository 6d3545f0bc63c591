"""MT-Bench on FastChat's own files (../shared/third_party/fastchat_mt_bench: question.jsonl, the GPT-4 reference
answers, the judge prompts), staged under the names `ftstudy stage-data` writes: every one of the 30 math,
reasoning and coding questions joins its reference by question_id, checked before anything generates; a judge
that refuses the key, or a missing reference, stops the run in seconds with nothing generated; ratings off
FastChat's 1-10 scale are unparseable and counted; a run killed mid-way resumes without regenerating an item.

The judge is a scripted OpenAI-compatible server on loopback (tests/test_judge.py), as is the model where the
tiny model is not needed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ftstudy.config import registry
from ftstudy.data import benchmark_items as itemsets
from ftstudy.eval import bench
from ftstudy.eval.harness import BenchContext, HarnessUnavailable, PreflightFailed, get, mtbench
from tests.conftest import CANARY, CANARY_ENV as KEY_ENV, ROOT, wait_until
from tests.test_judge import JudgeServer

FASTCHAT = ROOT.parent / "shared" / "third_party" / "fastchat_mt_bench"
STAGED = {"mt_bench.jsonl": "question.jsonl", "mt_bench_reference.jsonl": "gpt-4.jsonl",
          "mt_bench_judge_prompts.jsonl": "judge_prompts.jsonl"}


def stage(folder: Path, edit=None) -> Path:
    """FastChat's three files under the names the harness reads; `edit(name, rows) -> rows` alters one."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in STAGED.items():
        rows = itemsets.load_jsonl(FASTCHAT / source)
        rows = edit(name, rows) if edit else rows
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture(scope="module")
def fastchat(tmp_path_factory) -> Path:
    if not (FASTCHAT / "question.jsonl").is_file():
        pytest.fail(f"FastChat's MT-Bench files are expected at {FASTCHAT} (shared/ beside the checkout)")
    return stage(tmp_path_factory.mktemp("fastchat"))


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, CANARY)
    return CANARY


def test_all_thirty_references_join_fastchats_questions(fastchat):
    ctx = BenchContext("instruction", "m", data_dir=fastchat)
    questions, refs, prompts = mtbench.items(ctx)
    need = [q for q in questions if q["category"] in mtbench.NEED_REF]
    assert len(questions) == 80 and {int(q["id"]) for q in questions} == set(range(81, 161))
    assert len(need) == 30 and {int(q["id"]) for q in need} == set(range(101, 131))
    assert all(len(refs[q["id"]]) == 2 for q in need) and mtbench.problems(questions, refs, prompts) == []
    # the rows as FastChat writes them, and its reading of a judgment
    assert mtbench.question({"question_id": 81, "category": "writing", "turns": ["a", "b"]}, 0)["id"] == "81"
    with pytest.raises(HarnessUnavailable, match="no list of turns"):
        mtbench.question({"question_id": 1, "text": "?"}, 0)
    assert mtbench.parse_score("[[10]] then [[2]]") == 10.0 and mtbench.parse_score("Rating: [ 4 ]") is None
    assert [mtbench.on_scale(v) for v in (1.0, 10.0, 0.0, 11.0, 1000.0)] == [1.0, 10.0, None, None, None]


def without(qid: int):
    return lambda name, rows: [r for r in rows if r.get("question_id") != qid] if name == "mt_bench_reference.jsonl" else rows


def hashed(name, rows):
    """The HuggingFaceH4/mt_bench_prompts shape: the same questions under hashed prompt_ids."""
    if name != "mt_bench.jsonl":
        return rows
    return [{"prompt": r["turns"], "prompt_id": 44067400 + r["question_id"], "category": r["category"]} for r in rows]


@pytest.mark.parametrize("edit, expected", [(without(117), r"1 of the 30 .*question_id 117\)"),
                                            (hashed, r"30 of the 30 .*hashed ids")], ids=["one-missing", "hashed-ids"])
def test_a_missing_reference_stops_the_run_before_any_generation(tmp_path, key, edit, expected):
    data = stage(tmp_path / "data", edit)
    with JudgeServer(key) as judge:
        started = time.monotonic()
        with pytest.raises(PreflightFailed, match=expected) as err:
            bench.bench("instruction", "some/model", benchmarks=["mt_bench"], data_dir=str(data),
                        judge_url=judge.url, judge_model="gpt-4", judge_api_key_env=KEY_ENV,
                        results_root=tmp_path / "results", progress=lambda m: None)
    assert time.monotonic() - started < 60 and "nothing was run" in str(err.value)
    assert judge.requests == [] and not (tmp_path / "results").exists()  # nothing generated, nothing judged


def test_a_judge_answering_401_fails_in_seconds_with_nothing_generated(fastchat, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong-" + CANARY)
    with JudgeServer("sk-right") as judge, JudgeServer(None) as model:
        started = time.monotonic()
        with pytest.raises(PreflightFailed) as err:
            bench.bench("instruction", "some/model", benchmarks=["mt_bench"], data_dir=str(fastchat),
                        judge_url=judge.url, judge_model="gpt-4", judge_api_key_env=KEY_ENV,
                        results_root=tmp_path / "results", progress=lambda m: None)
    message = str(err.value)
    assert time.monotonic() - started < 30 and "HTTP 401" in message and KEY_ENV in message
    assert CANARY not in message and "sk-" not in message
    assert [line for line in message.splitlines() if "mt_bench:" in line] and len(message.splitlines()) == 2
    assert judge.gets == 1 and judge.requests == [] and model.requests == []
    assert not (tmp_path / "results").exists()


def run(ctx: BenchContext, limit: int):
    return get("mt-bench")(BenchContext(**{**ctx.__dict__, "limit": limit, "commands": [], "cache": {}}),
                           registry.benchmark("mt_bench"))


def test_mt_bench_on_fastchats_items_against_a_scripted_model_and_judge(fastchat, tmp_path, key):
    """A seeded subset through the real harness: FastChat's prompts, the reference joined into the math prompts,
    FastChat's per-category answer temperatures; a hostile judge's [[1000]] is unparseable, not averaged."""
    with JudgeServer(key) as judge, JudgeServer(None) as model:
        ctx = BenchContext("instruction", "m", data_dir=fastchat, out_dir=tmp_path, server_url=lambda: model.url,
                           judge_url=judge.url, judge_model="gpt-4", judge_api_key_env=KEY_ENV, seed=11)
        out = run(ctx, 8)
    cats = {s["id"]: s["category"] for s in out.samples}
    assert len(out.samples) == 8 and {c in mtbench.NEED_REF for c in cats.values()} == {True, False}
    for s in out.samples:  # the scripted judge: 8 then 9 against a reference; 6 then 3 otherwise
        assert s["ratings"] == ([8.0, 9.0] if s["category"] in mtbench.NEED_REF else [6.0, 3.0]), s
    refs = {str(r["question_id"]): r["choices"][0]["turns"] for r in itemsets.load_jsonl(FASTCHAT / "gpt-4.jsonl")}
    prompts = [r["body"]["messages"][1]["content"] for r in judge.requests]
    for qid in (i for i, c in cats.items() if c in mtbench.NEED_REF):
        assert sum(refs[qid][0] in p for p in prompts) == 2 and sum(refs[qid][1] in p for p in prompts) == 1
    questions = {str(r["question_id"]): r for r in itemsets.load_jsonl(FASTCHAT / "question.jsonl")}
    temps = {r["body"]["messages"][0]["content"]: r["body"]["temperature"] for r in model.requests
             if len(r["body"]["messages"]) == 1}
    assert {temps[questions[i]["turns"][0]] for i in cats} <= {0.0, 0.1, 0.7}
    assert all(temps[questions[i]["turns"][0]] == mtbench.TEMPERATURE[c] for i, c in cats.items())
    m, s = out.metrics, out.settings
    assert m["unparseable"] == m["out_of_scale"] == 0 and m["n_judgments"] == 16
    assert "for all 30" in s["reference_answers"] and s["rubric_version"].startswith("fastchat-single-v1:")
    assert not list(tmp_path.rglob("generations-*"))  # a finished run leaves no cache

    def hostile(body):
        return "Perfect. Rating: [[1000]]" if "### User" in body["messages"][-1]["content"] else "Fine. [[6]]"

    with JudgeServer(key, grader=hostile) as judge, JudgeServer(None) as model:
        ctx = BenchContext("instruction", "m", data_dir=fastchat, out_dir=tmp_path, server_url=lambda: model.url,
                           judge_url=judge.url, judge_model="gpt-4", judge_api_key_env=KEY_ENV, seed=11)
        out = run(ctx, 3)
    m = out.metrics
    assert m["out_of_scale"] == m["unparseable"] == 3 and m["score"] == 6.0 and m["score_turn1"] == 6.0
    assert "score_turn2" not in m and all(s["ratings"] == [6.0, None] for s in out.samples)


CHILD = """
import sys
from pathlib import Path
from ftstudy.config import registry
from ftstudy.eval.harness import BenchContext, get
data, out, model_url, judge_url, env = sys.argv[1:6]
ctx = BenchContext("instruction", "m", data_dir=Path(data), out_dir=Path(out), server_url=lambda: model_url,
                   judge_url=judge_url, judge_model="gpt-4", judge_api_key_env=env, limit=6, seed=11)
get("mt-bench")(ctx, registry.benchmark("mt_bench"))
"""


def test_a_killed_run_resumes_without_regenerating_finished_items(fastchat, tmp_path, key):
    """Killed (SIGKILL) after a few conversations were answered: the rerun answers only the others; another
    model never takes the first model's answers."""
    def first_turns(srv):
        return [r["body"]["messages"][0]["content"] for r in srv.requests if len(r["body"]["messages"]) == 1]

    with JudgeServer(key) as judge, JudgeServer(None, delay=0.4) as slow:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(fastchat), str(tmp_path), slow.url, judge.url,
                                  KEY_ENV], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        cached = lambda: [l for p in tmp_path.rglob("generations-*.jsonl") for l in p.read_text().splitlines()]
        try:
            assert wait_until(lambda: len(cached()) >= 2, child, timeout=120), child.stderr.read().decode()[-2000:]
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        done = {json.loads(line)["id"] for line in cached()}
        assert 2 <= len(done) < 6 and judge.requests == []
    questions = {str(r["question_id"]): r["turns"][0] for r in itemsets.load_jsonl(FASTCHAT / "question.jsonl")}
    base = dict(data_dir=fastchat, out_dir=tmp_path, judge_model="gpt-4", judge_api_key_env=KEY_ENV, seed=11)
    with JudgeServer(key) as judge, JudgeServer(None) as other:  # another model: nothing of the first one's
        out = run(BenchContext("instruction", "m2", server_url=lambda: other.url, judge_url=judge.url, **base), 6)
        assert len(first_turns(other)) == 6 and out.settings["resumed_items"] == 0
    with JudgeServer(key) as judge, JudgeServer(None) as model:
        out = run(BenchContext("instruction", "m", server_url=lambda: model.url, judge_url=judge.url, **base), 6)
    asked = first_turns(model)
    assert len(asked) == 6 - len(done) and not {questions[i] for i in done} & set(asked)
    assert out.metrics["n"] == 6 and out.settings["resumed_items"] == len(done)
    assert not list(tmp_path.rglob("generations-*"))


@pytest.mark.tools
def test_mt_bench_on_the_tiny_model_with_a_local_judge(tiny_model, served, fastchat, tmp_path, key):
    """FastChat's questions, a seeded 3, answered by the tiny model through `transformers serve` (the session's)."""
    with JudgeServer(key) as judge:
        ctx = BenchContext("x", str(tiny_model), data_dir=fastchat, out_dir=tmp_path, server_url=served,
                           judge_url=judge.url, judge_model="gpt-4", judge_api_key_env=KEY_ENV, seed=3, limit=3)
        out = get("mt-bench")(ctx, {**registry.benchmark("mt_bench"), "max_new_tokens": 12})
    assert out.metrics["n"] == 3 and out.metrics["n_judgments"] == 6 and 1.0 <= out.metrics["score"] <= 10.0
    assert all(len(s["replies"]) == 2 and isinstance(s["replies"][1], str) for s in out.samples)
    assert all(int(s["id"]) in range(81, 161) for s in out.samples) and out.subset_ids == [s["id"] for s in out.samples]


def test_ftstudy_run_prints_the_study_preflight_and_stops_before_its_first_stage(fastchat, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ftstudy.cli.main import main

    monkeypatch.setenv(KEY_ENV, "sk-wrong-" + CANARY)
    monkeypatch.chdir(tmp_path)
    with JudgeServer("sk-right") as judge:
        res = CliRunner().invoke(main, ["run", "chat", "--hardware", "cpu", "--base-model", "Qwen/Qwen2.5-0.5B",
                                        "--benchmarks", "mt_bench", "--bench-data-dir", str(fastchat), "--judge-url",
                                        judge.url, "--judge-model", "gpt-4", "--judge-api-key-env", KEY_ENV])
    lines = res.output.splitlines()
    assert res.exit_code == 1 and lines[0].startswith("preflight: every benchmark this run will score")
    assert "chat × lora" in lines[1] and "mt_bench" in lines[1] and f"HTTP 401): put a valid key in {KEY_ENV}" in lines[1]
    assert "nothing was run" in lines[-1] and CANARY not in res.output
    assert not (tmp_path / "state").exists() and judge.requests == []  # no stage started


def test_a_judge_failure_midway_keeps_the_answers_and_the_judgments_already_made(fastchat, tmp_path, key):
    from ftstudy.eval import client

    second_turn = lambda body: "### User" in body["messages"][-1]["content"]
    base = dict(data_dir=fastchat, out_dir=tmp_path, judge_model="gpt-4", judge_api_key_env=KEY_ENV, seed=11)
    with JudgeServer(key, refuse=second_turn) as judge, JudgeServer(None) as model:
        with pytest.raises(client.RequestFailed, match="HTTP 400"):
            run(BenchContext("instruction", "m", server_url=lambda: model.url, judge_url=judge.url, **base), 4)
        assert len(model.requests) == 8
    caches = list(tmp_path.rglob("generations-*.jsonl"))  # the answers' and the judgments' caches: never the key
    assert len(caches) == 2 and not [p for p in caches if key.encode() in p.read_bytes()]
    # the judgments in flight when the first refusal came were finished and cached; queued ones were not started
    judged = [json.loads(line)["id"] for p in caches for line in p.read_text().splitlines() if ":" in json.loads(line)["id"]]
    assert judged and all(i.endswith(":1") for i in judged)
    with JudgeServer(key) as judge, JudgeServer(None) as model:
        out = run(BenchContext("instruction", "m", server_url=lambda: model.url, judge_url=judge.url, **base), 4)
    assert model.requests == [] and len(judge.requests) == 8 - len(judged)
    assert sum(second_turn(r["body"]) for r in judge.requests) == 4
    assert out.settings["resumed_items"] == 4 and out.settings["resumed_judgments"] == len(judged)
    assert out.metrics["n_judgments"] == 8
