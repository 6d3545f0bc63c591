"""The server-backed harnesses: held-out split, data and probe files, rubric parsing, dry runs, pairwise
logic against a scripted judge, and the real paths (tool calls, ROUGE, probes, relevance, judging) on one
shared `transformers serve` of the tiny model (scores are ~0 for a random model: the plumbing is checked)."""
from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ftstudy.eval import client
from ftstudy.core import tool_envs as envs
from ftstudy.config import registry
from ftstudy.eval import serve
from ftstudy.eval.harness import BenchContext, HarnessUnavailable, get
from ftstudy.data.benchmark_items import heldout_ids
from ftstudy.eval.harness.judging import load_rubric, parse_rating, parse_verdict
from ftstudy.core.bundled import evals_dir
from ftstudy.eval.scorers import load_jsonl

XLAM_ROWS = [
    {"id": 11, "query": "What is the weather in Oslo for 2 days?",
     "tools": json.dumps([{"name": "forecast", "description": "Daily forecast",
                           "parameters": {"city": {"type": "str", "description": "City"},
                                          "days": {"type": "int, optional", "default": 3}}}]),
     "answers": json.dumps([{"name": "forecast", "arguments": {"city": "Oslo", "days": 2}}])},
    {"id": 12, "query": "Convert 10 USD to EUR and 5 GBP to EUR.",
     "tools": json.dumps([{"name": "convert", "description": "Currency conversion",
                           "parameters": {"amount": {"type": "float"}, "src": {"type": "str"}, "dst": {"type": "str"}}}]),
     "answers": json.dumps([{"name": "convert", "arguments": {"amount": 10, "src": "USD", "dst": "EUR"}},
                            {"name": "convert", "arguments": {"amount": 5, "src": "GBP", "dst": "EUR"}}])},
    {"id": 13, "query": "Tell me a joke about cats.",
     "tools": json.dumps([{"name": "stock_price", "description": "Price of a ticker",
                           "parameters": {"symbol": {"type": "str"}}}]),
     "answers": "[]"},
]
CNN_ROWS = [  # hub field names (article/highlights), as abisee/cnn_dailymail has them
    {"id": "c1", "article": "The city council approved a new park on Monday. It will open next year.",
     "highlights": "Council approves a new park.\nIt opens next year."},
    {"id": "c2", "article": "A storm closed the harbour for two days. Ferries resumed on Friday.",
     "highlights": "Storm closes harbour for two days."},
    {"id": "c3", "article": "The library extended its opening hours to 9 pm on weekdays.",
     "highlights": "Library opens until 9 pm on weekdays."},
]
SHORT = {"max_new_tokens": 12, "judge_max_tokens": 12}  # random weights: short replies keep the tests quick


def bench(bench_id: str, **over) -> dict:
    return {**registry.benchmark(bench_id), **over}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---- held-out split, data files, rubrics -------------------------------------------------------------------

def test_heldout_ids_are_seeded_sorted_and_sized():
    ids = heldout_ids(60000)
    assert len(ids) == 2000 == len(set(ids)) and ids == sorted(ids) and ids == heldout_ids(60000)
    assert 60000 - len(ids) == 58000  # the tool_use experiment's row cap: every other row can be trained on
    assert heldout_ids(60000, seed=7) != ids and all(0 <= i < 60000 for i in ids)
    assert len(heldout_ids(90)) == 3 and len(heldout_ids(5)) == 1


def test_probe_and_question_files_are_complete():
    retention = load_jsonl(evals_dir() / "chat/retention_probes.jsonl")
    assert len(retention) >= 10
    for p in retention:  # the fact comes in the first turn and is asked for at least four turns later
        assert len(p["turns"]) >= 6 and p["expected"] and any(e.lower() in p["turns"][0].lower() for e in p["expected"][:1])
    assert len(load_jsonl(evals_dir() / "chat/persona_probes.jsonl")) >= 8
    assert len(load_jsonl(evals_dir() / "chat/relevance_probes.jsonl")) >= 10
    mt = load_jsonl(evals_dir() / "judge/mt_bench_questions.jsonl")
    assert len(mt) >= 10 and all(len(q["turns"]) == 2 and q["category"] for q in mt)
    for name in ("alpaca_eval_instructions", "writing_prompts"):
        assert len(load_jsonl(evals_dir() / f"judge/{name}.jsonl")) >= 10
    for b in registry.benchmarks().values():  # every declared file exists
        for key in ("questions", "rubric"):
            if b.get(key) and b["harness"] in ("judge-single", "judge-pairwise", "chat-probe", "embedding"):
                assert (evals_dir() / b[key]).exists(), b[key]


@pytest.mark.parametrize("name", ["single_v1", "pairwise_v1", "persona_v1", "creative_pairwise_v1"])
def test_rubrics_load_with_their_version(name):
    rubric = load_rubric({"rubric": f"judge/{name}.md"})
    assert rubric.version == name and rubric.system
    text = rubric.messages(conversation="C", reference="R", persona="P", instruction="I", answer_a="A", answer_b="B")[1]["content"]
    assert "{{" not in text
    assert ("Rating: [[N]]" in text) == (not name.endswith("pairwise_v1"))


@pytest.mark.parametrize("text, rating", [("Good. Rating: [[7]]", 7.0), ("Rating: [[3]] then Rating: [[9]]", 9.0),
                                          ("Rating: [[0]]", None), ("Rating: 8", None), ("", None), (None, None)])
def test_parse_rating(text, rating):
    assert parse_rating(text) == rating


def test_parse_verdict():
    assert [parse_verdict(t) for t in ("[[A]]", "x [[B]] y", "[[ C ]]", "[[D]]", "A")] == ["A", "B", "C", None, None]


# ---- dry runs and refusals (nothing starts) -----------------------------------------------------------------

@pytest.mark.parametrize("harness, bench_id", [("toolcall", "xlam_toolcall"), ("rouge", "cnn_dm"),
                                                ("chat-probe", "chat_retention"), ("embedding", "chat_relevance"),
                                                ("judge-single", "mt_bench_mini"), ("judge-pairwise", "alpaca_eval_mini")])
def test_dry_run_lists_commands_and_runs_nothing(harness, bench_id):
    ctx = BenchContext("x", "Qwen/Qwen2.5-7B", dry_run=True, server_url=lambda: pytest.fail("server started"))
    out = get(harness)(ctx, registry.benchmark(bench_id))
    assert out.settings["dry_run"] and out.metrics == {} and out.samples == []
    assert "serve Qwen/Qwen2.5-7B" in out.settings["commands"][0] and len(ctx.commands) == len(out.settings["commands"])
    assert any("embed.py" in c for c in out.settings["commands"]) == (harness == "embedding")
    assert any("load_dataset" in c for c in out.settings["commands"]) == (harness in ("toolcall", "rouge"))


def test_judging_without_a_judge_or_base_outputs_says_what_to_do():
    ctx = BenchContext("x", "m", tag="lora", server_url=lambda: pytest.fail("server started"))
    with pytest.raises(HarnessUnavailable, match="judge-url"):
        get("judge-single")(ctx, registry.benchmark("mt_bench_mini"))
    with pytest.raises(HarnessUnavailable, match="base model first"):
        get("judge-pairwise")(ctx, registry.benchmark("alpaca_eval_mini"))


def test_dead_server_error_names_the_url(tmp_path):
    url = f"http://127.0.0.1:{serve.free_port()}"
    ctx = BenchContext("x", "m", data_dir=tmp_path, server_url=lambda: url, limit=1)
    write_jsonl(tmp_path / "xlam_heldout.jsonl", XLAM_ROWS)
    with pytest.raises(client.ServerUnreachable, match=url):
        get("toolcall")(ctx, bench("xlam_toolcall"))


class _StartedServer:
    """Stands in for serve.Server's process (no engine here): started, it has a URL and its launch argv."""
    url, argv = None, ["/e/bin/transformers", "serve", "tiny", "--port", "1"]

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        pass

    def start(self) -> None:
        self.url = "http://127.0.0.1:1"


def test_a_shared_server_is_recorded_once():
    """`ftstudy bench` gives its LazyServer ctx.commands (which records the launch) and every generative harness
    asks it for the URL through serving(): the launch argv is in the recorded commands exactly once."""
    from ftstudy.eval.harness.generative import serving

    ctx = BenchContext("x", "tiny")
    lazy = serve.LazyServer("tiny", commands=ctx.commands)
    lazy.server, ctx.server_url = _StartedServer(), lazy
    for _ in range(2):  # two benchmarks on the one server
        with serving(ctx) as (url, name):
            assert (url, name) == ("http://127.0.0.1:1", "tiny")
    assert ctx.commands == [_StartedServer.argv]


# ---- harness logic against a scripted server -------------------------------------------------------------
# It judges "[[A]]" every time, answers tool requests with structured calls (HTTP 500 when the query says
# "boom", as transformers serve does on a malformed call), and says "my answer" otherwise.

CANNED_CALLS = {"Oslo": [{"name": "forecast", "arguments": '{"city": "Oslo", "days": 2}'}],
                "USD": [{"name": "convert", "arguments": '{"amount": 10, "src": "USD", "dst": "EUR"}'}]}


class _Scripted(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        last = body["messages"][-1]["content"]
        message = {"content": "my answer"}
        if body["messages"][0]["role"] == "system" and "[Answer A]" in last:
            message = {"content": "A reads better. [[A]]"}
        elif "Rating: [[N]]" in last:  # a 1-10 grading request: 7 for a first turn, 4 for later turns
            message = {"content": "Fine.\nRating: [[7]]" if last.count("[User]") == 1 else "Weaker. Rating: [[4]]"}
        elif body.get("tools"):
            if body.get("tool_choice") != "none":  # as vLLM without --enable-auto-tool-choice answers
                self.send_response(400)
                self.end_headers()
                return
            if "boom" in last:
                self.send_response(500)
                self.end_headers()
                return
            calls = next((c for key, c in CANNED_CALLS.items() if key in last), [])
            message = {"content": "", "tool_calls": [{"type": "function", "function": c} for c in calls]}
        data = json.dumps({"choices": [{"message": message, "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def scripted():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_toolcall_scores_structured_calls_and_survives_a_malformed_one(scripted, tmp_path):
    rows = XLAM_ROWS + [{**XLAM_ROWS[0], "id": 14, "query": "boom"}]
    write_jsonl(tmp_path / "xlam_heldout.jsonl", rows)
    ctx = BenchContext("x", "m", data_dir=tmp_path, server_url=lambda: scripted)
    out = get("toolcall")(ctx, bench("xlam_toolcall"))
    by_id = {s["id"]: s for s in out.samples}
    assert by_id[11]["exact_match"] == 1.0 and by_id[11]["output"].startswith("<tool_call>")
    assert by_id[12]["exact_match"] == 0.0 and by_id[12]["param_acc"] == 0.5  # one of two parallel calls
    assert by_id[13]["no_call_acc"] == 1.0
    assert by_id[14]["parse_ok"] is False and "HTTP 500" in by_id[14]["server_error"]
    assert out.metrics["server_errors"] == 1 and out.metrics["exact_match"] == 0.5 and out.metrics["parse_rate"] == 0.75
    assert out.metrics["e2e_success"] == 0.5 and by_id[11]["e2e_success"] == 1.0 and by_id[12]["e2e_success"] == 0.0
    write_jsonl(tmp_path / "xlam_heldout.jsonl", [{**XLAM_ROWS[0], "query": "boom"}])
    with pytest.raises(client.RequestFailed, match="every tool-call request failed"):
        get("toolcall")(ctx, bench("xlam_toolcall"))


@pytest.mark.parametrize("bench_id, turns", [("mt_bench_mini", 2), ("chat_persona", 4)])
def test_single_grades_every_turn(scripted, bench_id, turns):
    ctx = BenchContext("x", "m", limit=3, server_url=lambda: scripted, judge_url=scripted + "/v1", judge_model="j")
    out = get("judge-single")(ctx, registry.benchmark(bench_id))
    m = out.metrics
    assert m["n"] == 3 and m["n_judgments"] == 3 * turns and m["unparseable"] == 0
    assert m["score_turn1"] == 7.0 and m[f"score_turn{turns}"] == 4.0
    assert m["score"] == pytest.approx((7 + 4 * (turns - 1)) / turns)
    assert all(s["ratings"] == [7.0] + [4.0] * (turns - 1) for s in out.samples)
    assert out.settings["rubric_version"] == registry.benchmark(bench_id)["rubric"].split("/")[-1][:-3]


def test_pairwise_cancels_a_judge_that_always_prefers_position_a(scripted):
    base_run = BenchContext("x", "m", tag="base", limit=3, server_url=lambda: scripted)
    ref = get("judge-pairwise")(base_run, registry.benchmark("alpaca_eval_mini"))
    assert ref.metrics["win_rate"] == 0.5 and ref.settings["reference_run"]
    ctx = BenchContext("x", "m", tag="lora", limit=3, server_url=lambda: scripted, judge_url=scripted, judge_model="j",
                       base_outputs={s["id"]: s["output"] for s in ref.samples})
    out = get("judge-pairwise")(ctx, registry.benchmark("alpaca_eval_mini"))
    assert out.subset_ids == ref.subset_ids
    assert out.metrics["win_rate"] == 0.5 and out.metrics["position_consistency"] == 0.0
    assert out.metrics["wins"] == out.metrics["losses"] == 3 and out.metrics["unparseable"] == 0
    assert all(s["verdicts"] == {"ft_first": "A", "base_first": "A"} and s["score"] == 0.5 for s in out.samples)
    assert out.settings["judge_model"] == "j" and out.settings["rubric_version"] == "pairwise_v1"


# ---- the real server: the session's `served` (tests/conftest.py), one transformers serve of the tiny model ---

@pytest.fixture
def ctx(served, tmp_path):
    return BenchContext("x", "tiny", tag="base", data_dir=tmp_path, server_url=served, seed=7)


@pytest.mark.tools
def test_toolcall_end_to_end(ctx):
    write_jsonl(ctx.data_dir / "xlam_heldout.jsonl", XLAM_ROWS)
    out = get("toolcall")(ctx, bench("xlam_toolcall", max_new_tokens=24))
    m = out.metrics
    assert m["n"] == 3
    # each figure is exactly the mean of the per-sample scores, and the irrelevance row (answers "[]", id 13) alone
    # makes no_call_acc
    for key in ("parse_rate", "exact_match", "tool_selection_acc", "param_acc"):
        vals = [s[key] for s in out.samples if s[key] is not None]  # a metric that does not apply to a row is None
        assert m[key] == (pytest.approx(sum(vals) / len(vals), abs=1e-12) if vals else None), key
    assert m["no_call_acc"] == next(s["no_call_acc"] for s in out.samples if s["id"] == 13)
    assert [s["id"] for s in out.samples] == [11, 12, 13] and out.subset_ids == ["11", "12", "13"]
    assert all(isinstance(s["output"], str) and s["score"] in (0.0, 1.0) for s in out.samples)
    assert sum(c[1:3] == ["serve", str(Path(ctx.server_url.server.model).resolve())] for c in ctx.commands) == 1
    assert out.settings["temperature"] == 0.0 and out.settings["max_tokens"] == 24


@pytest.mark.tools
def test_rouge_path_on_three_rows(ctx):
    write_jsonl(ctx.data_dir / "cnn_dailymail.jsonl", CNN_ROWS)
    out = get("rouge")(ctx, bench("cnn_dm", max_new_tokens=16))
    from rouge_score import rouge_scorer  # recomputed here with rouge-score itself: stemmed F1 x 100

    by_hand = rouge_scorer.RougeScorer(["rouge2"], use_stemmer=True)
    refs = {r["id"]: r["highlights"] for r in CNN_ROWS}
    expect = {s["id"]: (100.0 * by_hand.score(refs[s["id"]], s["output"])["rouge2"].fmeasure if s["output"].strip() else 0.0)
              for s in out.samples}
    assert {s["id"]: s["rouge2"] for s in out.samples} == pytest.approx(expect, abs=1e-9)
    assert out.metrics["n"] == 3 and out.metrics["rouge2"] == pytest.approx(sum(expect.values()) / 3, abs=1e-9)
    assert sorted(s["id"] for s in out.samples) == ["c1", "c2", "c3"]
    assert all(s["score"] == s["rouge1"] for s in out.samples) and "Summarize" in out.settings["prompt"]  # CNN/DM headline


@pytest.mark.tools
def test_retention_probes_play_every_turn(ctx):
    ctx.limit = 2
    out = get("chat-probe")(ctx, bench("chat_retention", **SHORT))
    assert out.metrics["n"] == 2 and len(out.subset_ids) == 2
    turns = {p["id"]: p["turns"] for p in load_jsonl(evals_dir() / "chat/retention_probes.jsonl")}
    for s in out.samples:  # one reply per turn; a hit only when an expected string is in the last reply
        assert len(s["replies"]) == len(turns[s["id"]]) and s["output"] == s["replies"][-1]
        assert s["score"] == float(any(e.lower() in s["output"].lower() for e in s["expected"]))
    assert out.metrics["exact_match"] == sum(s["score"] for s in out.samples) / 2


@pytest.mark.tools
def test_judge_single_counts_unparseable_ratings(ctx):
    ctx.limit, ctx.judge_url = 2, served_url(ctx)  # the tiny model judges itself: its ratings are gibberish
    out = get("judge-single")(ctx, bench("mt_bench_mini", **SHORT))
    m = out.metrics
    assert m["n"] == 2 and m["n_judgments"] == 4
    assert m["unparseable"] == sum(r is None for s in out.samples for r in s["ratings"])
    assert m["unparseable"] + sum(len([r for r in s["ratings"] if r is not None]) for s in out.samples) == 4
    assert out.settings["judge_model"] == ctx.server_url.model_name and out.settings["rubric_version"] == "single_v1"


@pytest.mark.tools
def test_pairwise_with_the_tiny_judge(ctx):
    ctx.limit, ctx.judge_url, ctx.tag = 2, served_url(ctx), "lora"
    ctx.base_outputs = {"a1": "base answer", "a2": "another", "a3": "x", "a4": "y", "a5": "z", "a6": "w",
                        "a7": "v", "a8": "u", "a9": "t", "a10": "s", "a11": "r", "a12": "q"}
    out = get("judge-pairwise")(ctx, bench("alpaca_eval_mini", **SHORT))
    assert all(len(s["judgments"]) == 2 and len(s["verdicts"]) == 2 for s in out.samples)
    m = out.metrics
    assert m["n"] == 2 and m["unparseable"] == sum(v is None for s in out.samples for v in s["verdicts"].values())
    assert m["wins"] + m["ties"] + m["losses"] + m["unparseable"] == 4  # 2 items x 2 orders, each counted once
    assert m["rated"] == sum(any(v is not None for v in s["verdicts"].values()) for s in out.samples)


@pytest.mark.tools
def test_relevance_embeds_question_and_answer(ctx):
    ctx.limit = 2
    out = get("embedding")(ctx, bench("chat_relevance", **SHORT))
    assert out.metrics["n"] == 2 and all(-1.0 <= s["cosine"] <= 1.0 for s in out.samples)
    assert out.metrics["cosine"] == pytest.approx(sum(s["cosine"] for s in out.samples) / 2, abs=1e-12)
    assert any(c[1].endswith("embed.py") for c in ctx.commands)


def served_url(ctx) -> str:
    return ctx.server_url()


def forcing(model: Path, texts: list[str]) -> list[dict]:
    """Request fields that make the random tiny model write exactly each text, then stop: a bias on every
    prefix of the text's tokens, growing with its length, so that greedy decoding follows it."""
    code = ("import json, sys\nfrom transformers import AutoTokenizer\nt = AutoTokenizer.from_pretrained(sys.argv[1])\n"
            "end = t.convert_tokens_to_ids('<|im_end|>')\n"
            "print(json.dumps([t(x, add_special_tokens=False)['input_ids'] + [end] for x in sys.argv[2:]]))")
    out = subprocess.run([str(envs.bin_path("eval")), "-c", code, str(model), *texts], capture_output=True, text=True,
                         check=True).stdout
    fields = []
    for ids in json.loads(out.strip().splitlines()[-1]):
        bias = [[ids[: k + 1], 100.0 + k] for k in range(len(ids))]
        fields.append({"generation_config": json.dumps({"max_new_tokens": len(ids) + 2, "do_sample": False,
                                                        "sequence_bias": bias})})
    return fields


@pytest.mark.tools
def test_real_server_tool_calls_come_back_as_tool_call_text(served, tiny_model):
    call = '{"name": "forecast", "arguments": {"city": "Oslo", "days": 2}}'
    good, broken = forcing(tiny_model, [f"<tool_call>\n{call}\n</tool_call>", "<tool_call>\n" + call[:-1] + "\n</tool_call>"])
    tools = [{"type": "function", "function": {"name": "forecast", "description": "Daily forecast",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    messages = [{"role": "user", "content": "Weather in Oslo for 2 days?"}]
    reply = client.chat_reply(served(), served.model_name, messages, tools=tools, extra=good)
    assert reply.tool_calls and reply.finish_reason == "tool_calls"  # transformers serve parsed the call itself
    assert reply.text == f"<tool_call>\n{call}\n</tool_call>"    # and the client wrote it back as text
    with pytest.raises(client.RequestFailed) as failed:           # a malformed call: the server cannot parse it
        client.chat_reply(served(), served.model_name, messages, tools=tools, extra=broken)
    assert failed.value.status == 500
