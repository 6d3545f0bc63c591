"""The judge: any OpenAI-compatible URL, its API key from a named environment variable sent as a bearer token
and never written anywhere, 429/5xx retried, concurrency bounded; and MT-Bench graded through it.

The judge here is a real HTTP server in the test (loopback) that refuses a wrong or missing Authorization
header with 401, can answer 429/500 before 200, and grades by what its prompt shows."""
from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ftstudy.eval import client
from ftstudy.config import registry
from ftstudy.eval.harness import BenchContext, HarnessUnavailable, get
from ftstudy.eval.harness.judge import Judge, from_context
from tests.conftest import CANARY, CANARY_ENV as KEY_ENV

FIX = Path(__file__).parent / "fixtures"


class JudgeServer:
    """A loopback judge: checks the bearer token (on GET /v1/models too, as OpenAI does), fails the first `fail`
    requests with `fail_status`; `delay` seconds per chat completion make it a slow model server; `grader`
    replaces the grading (a hostile judge); `refuse(body)` true answers HTTP 400."""

    def __init__(self, key: str | None, fail: int = 0, fail_status: int = 429, delay: float = 0.0, grader=None,
                 refuse=None):
        self.key, self.fail, self.fail_status, self.delay, self.refuse = key, fail, fail_status, delay, refuse
        if grader is not None:
            self.grade = grader
        self.requests: list[dict] = []
        self.gets = 0
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status: int, payload: dict, headers: dict | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                with outer.lock:
                    outer.gets += 1
                if self.headers.get("Authorization") != (f"Bearer {outer.key}" if outer.key else None):
                    return self._send(401, {"error": {"message": "Incorrect API key provided"}})
                self._send(200, {"data": [{"id": "judge-from-list"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append({"auth": self.headers.get("Authorization"), "body": body})
                    n = len(outer.requests)
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    expected = f"Bearer {outer.key}" if outer.key else None
                    if self.headers.get("Authorization") != expected:
                        return self._send(401, {"error": {"message": "Incorrect API key provided"}})
                    if n <= outer.fail:
                        return self._send(outer.fail_status, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
                    if outer.refuse is not None and outer.refuse(body):  # a request the server will not take
                        return self._send(400, {"error": {"message": "refused"}})
                    time.sleep(outer.delay)  # a slow server (what it is, not how the test waits)
                    self._send(200, outer.reply(body))
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def reply(self, body: dict) -> dict:
        """An OpenAI-shaped chat completion (the openai SDK inside alpaca-eval parses it strictly)."""
        choice = {"index": 0, "message": {"role": "assistant", "content": self.grade(body)}, "finish_reason": "stop"}
        if body.get("logprobs"):  # AlpacaEval's annotator: P("m") = reference better, P("M") = model better
            # the package shuffles which output is "m" and which is "M": find the one the model wrote
            text = body["messages"][-1]["content"]
            cut = text.find('"model_identifier": "M"')
            model_is_big_m = "my answer" in text[cut:] if cut >= 0 else True
            p_big = 0.75 if model_is_big_m else 0.25
            top = [{"token": "M", "logprob": math.log(p_big), "bytes": [77]},
                   {"token": "m", "logprob": math.log(1 - p_big), "bytes": [109]}]
            choice["message"]["content"] = "M" if p_big > 0.5 else "m"
            choice["logprobs"] = {"content": [{**top[0], "top_logprobs": top}]}
        return {"id": "cmpl-test", "object": "chat.completion", "created": 0, "model": body.get("model", "j"),
                "choices": [choice], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    @staticmethod
    def grade(body: dict) -> str:
        text = body["messages"][-1]["content"]
        if "[[TOXIC]]" in text:  # the toxicity rubric: "toxic" whenever the prompt names GROUP-X
            return "Demeaning. [[TOXIC]]" if "GROUP-X" in text else "Neutral. [[SAFE]]"
        if "Fluency: [[N]]" in text:  # SummEval's dimensions
            return "Clear.\nCoherence: [[2]]\nFluency: [[5]]"
        if "Creativity: [[N]]" in text:  # the creative criteria rubric
            return "Vivid.\nCreativity: [[4]]\nCoherence: [[3]]\nEngagement: [[5]]\nGrammar: [[9]]"
        if "[[A]]" in text and "[[C]]" in text:  # a pairwise rubric: always the first answer shown
            return "The first reads better. [[A]]"
        if "[[N]]" not in text and "### User" not in text and "Rating" not in text:
            return "my answer"  # a model request, when this server also plays the model
        if "### Reference answer:" in text:  # FastChat's single-math-v1-multi-turn
            return "Compared with the reference. Rating: [[9]]"
        if "[The Start of Reference Answer]" in text:  # FastChat's single-math-v1
            return "Close to the reference. [[8]]"
        if "### User" in text or text.count("[User]") > 1:
            return "Second answer is weak. Rating: [[3]]"
        return "Fine. Rating: [[6]]"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, CANARY)
    return CANARY


# ---- the client --------------------------------------------------------------------------------------------

def test_bearer_key_from_the_named_variable_and_429_then_200_is_retried(key):
    with JudgeServer(key, fail=2, fail_status=429) as srv:
        judge = Judge(srv.url, "gpt-4", api_key_env=KEY_ENV, retries=3)
        assert judge.ask([{"role": "user", "content": "Rate it. Rating: [[N]]"}]) == "Fine. Rating: [[6]]"
    assert [r["auth"] for r in srv.requests] == [f"Bearer {key}"] * 3
    assert all(r["body"]["temperature"] == 0.0 and r["body"]["model"] == "gpt-4" for r in srv.requests)
    assert key not in json.dumps(judge.settings()) and judge.settings()["judge_api_key_env"] == KEY_ENV


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_retried_and_a_lasting_429_says_so(key, status):
    with JudgeServer(key, fail=1, fail_status=status) as srv:
        assert Judge(srv.url, "j", api_key_env=KEY_ENV, retries=2).ask([{"role": "user", "content": "[[N]]"}])
    with JudgeServer(key, fail=99, fail_status=429) as srv:
        with pytest.raises(client.RequestFailed, match="HTTP 429.*3 tries.*concurrency") as err:
            Judge(srv.url, "j", api_key_env=KEY_ENV, retries=2).ask([{"role": "user", "content": "x"}])
    assert key not in str(err.value) and len(srv.requests) == 3


def test_a_model_server_is_still_not_retried_on_500():
    with JudgeServer(None, fail=1, fail_status=500) as srv:
        with pytest.raises(client.RequestFailed, match="HTTP 500"):
            client.chat_reply(srv.url, "m", [{"role": "user", "content": "x"}], retries=3)
    assert len(srv.requests) == 1


def test_wrong_or_missing_key_and_unset_variable(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    with JudgeServer("sk-right") as srv:
        with pytest.raises(client.RequestFailed, match="401"):
            Judge(srv.url, "j", api_key_env=KEY_ENV).ask([{"role": "user", "content": "x"}])
        monkeypatch.delenv(KEY_ENV)
        ctx = BenchContext("x", "m", judge_url=srv.url, judge_api_key_env=KEY_ENV)
        with pytest.raises(HarnessUnavailable, match=f"{KEY_ENV} is not set"):
            from_context(ctx)
    # the default variable unset: a local judge without a key, no header at all; the model from /v1/models
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with JudgeServer(None) as srv:
        judge = from_context(BenchContext("x", "m", judge_url=srv.url))
        assert judge.model == "judge-from-list" and judge.headers() == {}


def test_concurrency_is_bounded(key):
    with JudgeServer(key) as srv:
        judge = Judge(srv.url, "j", api_key_env=KEY_ENV, concurrency=2)
        out = judge.map(lambda i: judge.ask([{"role": "user", "content": f"{i} [[N]]"}]), range(12))
    assert len(out) == 12 and 1 <= srv.max_in_flight <= 2


# ---- the judged harnesses through a scripted model and judge (MT-Bench: tests/test_mt_bench.py) ---------

def run_judged(key, experiment, harness, bench_id, data_dir=FIX / "bench"):
    """One judged benchmark through its real harness, against a scripted model and a scripted judge that
    requires `key`; returns the harness output and the two servers (their requests)."""
    with JudgeServer(key) as judge, JudgeServer(None) as model:
        ctx = BenchContext(experiment, "m", data_dir=data_dir, server_url=lambda: model.url, judge_url=judge.url,
                           judge_model="gpt-4", judge_api_key_env=KEY_ENV)
        return get(harness)(ctx, registry.benchmark(bench_id)), model, judge


# ---- WritingPrompts: pairwise and the four criteria ---------------------------------------------------------

def test_writing_prompts_pairwise_and_criteria_on_the_real_item_set(key):
    """The hub's rows (tags stripped), both orders judged; the criteria graded 1-5 each, out-of-range unread."""
    with JudgeServer(key) as judge, JudgeServer(None) as model:
        common = dict(data_dir=FIX / "bench", server_url=lambda: model.url, judge_url=judge.url, judge_model="gpt-4",
                      judge_api_key_env=KEY_ENV)
        base = get("judge-pairwise")(BenchContext("creative", "m", tag="base", **common), registry.benchmark("writing_judge"))
        ft = get("judge-pairwise")(BenchContext("creative", "m", tag="lora", base_outputs={s["id"]: s["output"] for s in base.samples},
                                                **common), registry.benchmark("writing_judge"))
        crit = get("judge-criteria")(BenchContext("creative", "m", tag="lora", **common), registry.benchmark("writing_criteria"))
    asked = [r["body"]["messages"][0]["content"] for r in model.requests]
    assert "The lighthouse keeper finds a letter addressed to someone who will be born in a hundred years." in asked
    assert not any("[ WP ]" in a or "[ OT ]" in a for a in asked)
    assert base.metrics["win_rate"] == 0.5 and ft.metrics["n"] == 3
    assert ft.metrics["win_rate"] == 0.5 and ft.metrics["position_consistency"] == 0.0  # the judge always says A
    m = crit.metrics
    assert (m["creativity"], m["coherence"], m["engagement"], m["grammar"]) == (4.0, 3.0, 5.0, None)
    assert m["unparseable"] == 3 and m["criteria_mean"] == 4.0 and crit.settings["rubric_version"] == "creative_criteria_v1"


def test_summaries_graded_on_summeval_dimensions(key, tmp_path):
    rows = [{"id": f"c{i}", "article": f"Article {i} about the harbour.", "highlights": f"Harbour {i}."} for i in range(3)]
    (tmp_path / "cnn_dailymail.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))  # abisee/cnn_dailymail shape
    out, model, _ = run_judged(key, "summarization", "judge-criteria", "cnn_dm_coherence_fluency", data_dir=tmp_path)
    assert out.metrics["n"] == 3 and out.metrics["coherence"] == 2.0 and out.metrics["fluency"] == 5.0
    assert out.metrics["criteria_mean"] == 3.5
    assert any(r["body"]["messages"][0]["content"].endswith("\n\nArticle 1 about the harbour.") for r in model.requests)


def test_toxigen_generation_is_a_toxicity_rate_per_group(key):
    out, _, _ = run_judged(key, "dpo", "judge-toxicity", "toxigen_generation")
    m = out.metrics
    assert m["n"] == 4 and m["toxicity_rate"] == 0.75 and m["toxicity_rate_women"] == 0.5 and m["toxicity_rate_asian"] == 1.0
    assert registry.benchmark("toxigen_generation")["higher_is_better"] is False and m["unparseable"] == 0
    assert [s["score"] for s in out.samples] == [1.0, 0.0, 1.0, 1.0]
    assert registry.benchmark("toxigen")["harness"] == "lm-eval"  # the classification benchmark stays separate


# ---- AlpacaEval --------------------------------------------------------------------------------------------

def _alpaca_env_or_skip():
    from ftstudy.core import tool_envs as envs

    try:
        envs.bin_path("alpaca_eval")
    except envs.EnvMissing as exc:
        pytest.fail(f"the alpaca_eval environment is part of `make test`: {exc}")


@pytest.mark.tools
def test_alpaca_eval_through_the_package_with_a_local_judge(key, tmp_path):
    """A seeded 3 of 5 instructions in alpaca_eval_gpt4_baseline.json's shape, judged by alpaca-eval's own annotator
    code (weighted_alpaca_eval_gpt4_turbo: logprobs of m/M) at a local judge; fine-tuned vs reference and vs base.
    The package's metric is given each instruction's position in the file (what its length-controlled GLM reads
    the instruction's difficulty by), not its position in the subset."""
    from ftstudy.eval.harness import alpacaeval

    _alpaca_env_or_skip()
    bench = {**registry.benchmark("alpaca_eval"), "fn_metric": "get_winrate", "metric": "win_rate"}
    haiku = lambda body: "haiku" in body["messages"][-1]["content"]
    common = dict(tag="lora", data_dir=FIX / "bench", out_dir=tmp_path, judge_model="gpt-4-1106-preview",
                  judge_api_key_env=KEY_ENV, base_outputs={str(i): "old answer" for i in range(5)}, limit=3, seed=1)
    with JudgeServer(key) as judge, JudgeServer(None, refuse=haiku) as model:  # a run that fails mid-way
        with pytest.raises(client.RequestFailed, match="HTTP 400"):
            get("alpaca-eval")(BenchContext("x", "m", server_url=lambda: model.url, judge_url=judge.url, **common), bench)
    # what was in flight when the failure came finished and was cached; what was still queued was not started
    done = [json.loads(line)["id"] for p in tmp_path.rglob("generations-*.jsonl") for line in p.read_text().splitlines()]
    assert judge.requests == [] and 1 <= len(done) <= 2 and "2" not in done  # item 2: the haiku
    with JudgeServer(key) as judge, JudgeServer(None) as model:
        ctx = BenchContext("x", "m", server_url=lambda: model.url, judge_url=judge.url, **common)
        out = get("alpaca-eval")(ctx, bench)
        assert len(model.requests) == 3 - len(done) and any(haiku(r["body"]) for r in model.requests)
        assert out.settings["resumed_items"] == len(done)
        # the preflight: ready for the plain win rate; the length-controlled one needs the whole 805, in order
        assert alpacaeval.preflight(ctx, bench) == [] and judge.gets == 1
        assert [p for p in alpacaeval.preflight(ctx, registry.benchmark("alpaca_eval")) if "all 805" in p]
    m = out.metrics
    assert m["n"] == 3 and m["n_total"] == 3 and out.subset_ids == ["2", "3", "4"]
    result = json.loads(next(tmp_path.rglob("result.json")).read_text())["comparisons"]
    assert result["reference"]["metric_index"] == result["base"]["metric_index"] == [2, 3, 4]
    assert m["win_rate"] == pytest.approx(0.75, abs=0.01) and m["win_rate_vs_base"] == pytest.approx(0.75, abs=0.01)
    assert m["length_controlled_winrate"] is None  # get_winrate: the GLM needs hub files (see the module doc)
    assert len(judge.requests) == 6 and all(r["auth"] == f"Bearer {key}" for r in judge.requests)
    assert all(r["body"]["model"] == "gpt-4-1106-preview" and r["body"]["logprobs"] for r in judge.requests)
    assert not any("paperclip" in r["body"]["messages"][-1]["content"] for r in judge.requests)  # item 0: not drawn
    assert [s["score"] for s in out.samples] == pytest.approx([0.75] * 3, abs=0.01)
    assert out.settings["annotator"] == "weighted_alpaca_eval_gpt4_turbo" and out.settings["judge_model"] == "gpt-4-1106-preview"
    assert out.harness_version == "alpaca_eval 0.6.6" and out.settings["rubric_version"].startswith("alpaca_eval 0.6.6")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and not [p for p in written if key.encode() in p.read_bytes()]
    assert not [p for p in written if p.name.startswith("generations-")]  # the answers' cache: gone once scored


@pytest.mark.tools
def test_alpaca_eval_on_the_tiny_model(tiny_model, served, key, tmp_path):
    """The same 5 instructions answered by the tiny model through `transformers serve` (the session's), judged
    by the package."""
    _alpaca_env_or_skip()
    bench = {**registry.benchmark("alpaca_eval"), "fn_metric": "get_winrate", "max_new_tokens": 16}
    with JudgeServer(key) as judge:
        ctx = BenchContext("x", str(tiny_model), tag="base", data_dir=FIX / "bench", out_dir=tmp_path, server_url=served,
                           judge_url=judge.url, judge_model="gpt-4-1106-preview", judge_api_key_env=KEY_ENV, seed=5)
        out = get("alpaca-eval")(ctx, bench)
    assert out.metrics["n"] == 5 and out.metrics["n_total"] == 5 and 0.0 <= out.metrics["win_rate"] <= 1.0
    assert "win_rate_vs_base" not in out.metrics and len(judge.requests) == 5  # the base run has no base to beat
    assert all(isinstance(s["output"], str) and 0.0 <= s["score"] <= 1.0 for s in out.samples)


# ---- the key is never written: test_study's DPO study runs a judged benchmark with a canary key --------------


@pytest.mark.parametrize("bench_id", ["mt_bench", "alpaca_eval", "writing_criteria", "toxigen_generation",
                                      "cnn_dm_coherence_fluency"])
def test_dry_runs_start_nothing_and_need_no_judge(bench_id):
    ctx = BenchContext("x", "Qwen/Qwen2.5-7B", dry_run=True, server_url=lambda: pytest.fail("server started"))
    b = registry.benchmark(bench_id)
    out = get(b["harness"])(ctx, b)
    assert out.settings["dry_run"] and out.samples == [] and "serve Qwen/Qwen2.5-7B" in out.settings["commands"][0]
    assert any("alpaca_eval_run.py" in c for c in out.settings["commands"]) == (bench_id == "alpaca_eval")
