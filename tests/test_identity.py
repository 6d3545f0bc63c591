"""A result's identity holds its harness version, protocol and judge: a result judged by one judge is never
reused for a request naming another, and `compare` refuses to compare across judges, protocols or harness
versions, saying why in one line."""
from __future__ import annotations

import json
from pathlib import Path

from ftstudy.config import registry
from ftstudy.eval import bench, records
from ftstudy.eval.harness import BenchContext
from ftstudy.study import comparison

MINI = {"model": "gpt-4o-mini", "host": "api.openai.com", "temperature": 0.0, "rubric": "fastchat-single-v1:abc"}
GPT4 = {**MINI, "model": "gpt-4-0613"}


def result(root: Path, tag: str, judge: dict | None, protocol: dict | None = None, value: float = 6.0,
           harness_version: str = "ftstudy 0.1.0", fingerprint: str = "dir:base") -> dict:
    """A saved MT-Bench result of the chat experiment (two items), as bench writes one."""
    b = registry.benchmark("mt_bench")
    rec = records.record(experiment="chat", tag=tag, model=f"/models/{tag}", adapter=None, model_fingerprint=fingerprint,
                         benchmark="mt_bench", benchmark_version=b["version"], harness="mt-bench", task="mt_bench",
                         metric="score", higher_is_better=True, scale="score10", limit=None, seed=1234, data_dir=None,
                         protocol=protocol, judge=judge, harness_version=harness_version, value=value,
                         metrics={"score": value}, settings={}, subset_ids=["81", "101"], n=2)
    records.save(root, rec, [{"id": "81", "score": value, "output": f"{tag} a"},
                             {"id": "101", "score": value, "output": f"{tag} b"}])
    return rec


def test_a_result_is_reused_only_for_the_same_judge_protocol_and_harness_version(tmp_path):
    have = result(tmp_path, "base", MINI, protocol={"shots": 0, "source": "FastChat"})
    want = {k: v for k, v in have.items() if k not in ("value", "metrics", "settings", "n", "subset_ids")}
    found = records.paths(tmp_path, "chat", "base", "mt_bench")[0]
    assert records.find_reusable(tmp_path, want) == found
    assert records.find_reusable(tmp_path, {**want, "harness_version": None}) == found  # not knowable beforehand
    assert records.find_reusable(tmp_path, {**want, "judge": GPT4}) is None              # gpt-4o-mini for gpt-4-0613
    assert records.find_reusable(tmp_path, {**want, "judge": {**MINI, "temperature": 0.7}}) is None
    assert records.find_reusable(tmp_path, {**want, "judge": {**MINI, "rubric": "other"}}) is None
    assert records.find_reusable(tmp_path, {**want, "protocol": {"shots": 5, "source": "FastChat"}}) is None
    assert records.find_reusable(tmp_path, {**want, "protocol": None}) is None
    assert records.find_reusable(tmp_path, {**want, "harness_version": "ftstudy 9.9"}) is None


def test_the_judge_of_a_request_is_named_before_it_runs_and_without_credentials(monkeypatch):
    ctx = BenchContext("creative", "/models/tiny", judge_url="https://user:sk-SECRET@API.openai.com/v1?key=sk-SECRET",
                       judge_model="gpt-4-0613")
    want = bench.wanted(ctx, registry.benchmark("writing_criteria"))
    j = want["judge"]
    assert (j["model"], j["host"], j["temperature"]) == ("gpt-4-0613", "api.openai.com", 0.0)
    assert j["rubric"].startswith("sha256:") and "SECRET" not in json.dumps(want)
    assert want["protocol"] == registry.benchmark("writing_criteria").get("protocol")
    assert bench.wanted(ctx, registry.benchmark("ag_news"))["judge"] is None  # lm-eval: nobody judges it
    other = bench.wanted(BenchContext("creative", "/models/tiny", judge_url="https://api.openai.com/v1",
                                      judge_model="gpt-4o-mini"), registry.benchmark("writing_criteria"))
    assert other["judge"] != j and records.mismatch(other, want, reuse=True).startswith("judged by different judges")


def test_compare_refuses_across_judges_protocols_and_harness_versions(tmp_path):
    result(tmp_path, "base", MINI)
    result(tmp_path, "lora", MINI, value=7.0, fingerprint="dir:lora")
    ok = comparison.compare("chat", "base", "lora", tmp_path, ["mt_bench"])[0]
    assert ok["status"] == "ok" and ok["delta"] == 1.0
    cases = [(dict(judge=GPT4), "judged by different judges (gpt-4o-mini at api.openai.com"),
             (dict(judge=MINI, protocol={"shots": 5}), "protocols differ (shots)"),
             (dict(judge=MINI, harness_version="ftstudy 9.9"), "harness versions differ (ftstudy 0.1.0 vs ftstudy 9.9)")]
    for change, reason in cases:
        result(tmp_path, "lora", value=7.0, fingerprint="dir:lora", **change)
        row = comparison.compare("chat", "base", "lora", tmp_path, ["mt_bench"])[0]
        assert row["status"] == "refused" and row["reason"].startswith(reason) and "\n" not in row["reason"], row
        assert "delta" not in row
