"""HumanEval and MBPP through the real bigcode-evaluation-harness (installed by `ftstudy setup bigcode` from
../shared/third_party) on the tiny model, offline, with every program executed in ftstudy's sandbox.

Fixtures: tests/fixtures/bench/openai_humaneval.jsonl (HumanEval/0, /2, /23 from openai/human-eval's
HumanEval.jsonl.gz, MIT) and tests/fixtures/bench/mbpp.jsonl (MBPP tasks 11, 12, 14 of google-research's
mbpp.jsonl, CC-BY-4.0), in the rows shapes of the hub's openai_humaneval and mbpp (full) test splits.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ftstudy.core import tool_envs as envs
from ftstudy.config import registry
from ftstudy.eval.harness import BenchContext, HarnessUnavailable, code

FIX = Path(__file__).parent / "fixtures" / "bench"
ROWS = {"humaneval": FIX / "openai_humaneval.jsonl", "mbpp": FIX / "mbpp.jsonl"}
MBPP_SPLIT = 500  # bigcode's MBPP task asserts the test split has 500 rows (a guard against an old wrong split)


def rows(task: str) -> list[dict]:
    return [json.loads(line) for line in ROWS[task].read_text().splitlines()]


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """A data folder whose hf_home holds both datasets where bigcode's load_dataset(<hub id>) finds them offline.
    tests/ keeps only three real MBPP rows; they are repeated to the 500 rows bigcode's MBPP task insists on, and
    --limit 3 reads only the first three, distinct items."""
    folder = tmp_path_factory.mktemp("bigcode-data")
    mbpp = folder / "mbpp-test.jsonl"
    real = ROWS["mbpp"].read_text().splitlines()
    mbpp.write_text("\n".join(real[i % len(real)] for i in range(MBPP_SPLIT)) + "\n")
    code.stage_datasets({"humaneval": ROWS["humaneval"], "mbpp": mbpp}, folder)
    return folder


@pytest.fixture(scope="module")
def scored(staged, tiny_model, tmp_path_factory) -> dict:
    """Each benchmark run once, for real: bigcode generates with the tiny model, the sandbox executes."""
    out = tmp_path_factory.mktemp("bigcode-results")
    ctx = BenchContext("code", str(tiny_model), limit=3, data_dir=staged, out_dir=out, allow_code_execution=True)
    return {bid: (code.run(ctx, registry.benchmark(bid)), ctx.work_dir(bid)) for bid in ("humaneval", "mbpp")}


@pytest.mark.tools
@pytest.mark.parametrize("bid", ["humaneval", "mbpp"])
def test_real_bigcode_generates_offline_and_the_sandbox_scores(scored, bid):
    result, work = scored[bid]
    # bigcode wrote the files it really writes: generations_<task>.json and, in its cwd, references_<task>.json
    refs = json.loads((work / f"references_{bid}.json").read_text())
    gens = json.loads((work / f"generations_{bid}.json").read_text())
    docs = rows(bid)
    if bid == "humaneval":  # the references its task built from the staged rows, in their order
        assert refs == [f"\n{d['test']}\ncheck({d['entry_point']})" for d in docs]
        assert all(g[0].startswith(d["prompt"].strip()) for g, d in zip(gens, docs))
    else:
        assert refs == ["\n".join(d["test_list"]) for d in docs]
        assert all(g[0].startswith(f'"""\n{d["text"]}\n{d["test_list"][0]}\n"""\n') for g, d in zip(gens, docs))
    assert [s["id"] for s in result.samples] == ["0", "1", "2"]
    # the random tiny model writes no passing program: each fails or errors in the sandbox
    assert result.metrics["pass@1"] == 0.0 and {s["status"] for s in result.samples} <= {"failed", "error", "timeout"}
    assert result.settings["execution"] == "bigcode's code_eval inside ftstudy's jail"
    assert result.harness_version.startswith("bigcode")


@pytest.mark.tools
def test_known_right_and_wrong_generations_score_one_and_zero(scored):
    """The same jailed bigcode evaluation on bigcode's own references: the reference solutions pass (1.0),
    wrong ones do not (0.0), and ending the process early is no pass; one jailed run for all six files."""
    jobs, want = [], []
    for bid in ("humaneval", "mbpp"):
        refs = json.loads((scored[bid][1] / f"references_{bid}.json").read_text())
        docs = rows(bid)
        if bid == "humaneval":
            right = [[d["prompt"] + d["canonical_solution"]] for d in docs]
            wrong = [[d["prompt"] + "    return None\n"] for d in docs]
        else:
            right = [[f'"""\n{d["text"]}\n{d["test_list"][0]}\n"""\n' + d["code"]] for d in docs]
            wrong = [[d["code"].replace("return", "return None and")] for d in docs]
        early = [[g[0] + "\nimport os\nos._exit(0)\n"] for g in right]
        for gens, value in ((right, 1.0), (wrong, 0.0), (early, 0.0)):
            jobs.append({"task": bid, "generations": gens, "references": refs})
            want.append(value)
    outs = code.score(jobs)
    assert [o.metrics["pass@1"] for o in outs] == want, [[s["detail"] for s in o.samples] for o in outs]
    assert [s["status"] for s in outs[0].samples] == ["passed"] * 3


def test_preflight_names_each_missing_piece_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("FTSTUDY_BIGCODE_ENV", str(tmp_path / "no-env"))
    ctx = BenchContext("code", "m", data_dir=tmp_path)
    problems = code.preflight(ctx, registry.benchmark("mbpp"))
    assert any("--allow-code-execution" in p for p in problems)
    assert any("bigcode" in p and "ftstudy setup bigcode" in p for p in problems)
    assert all("\n" not in p for p in problems)


@pytest.mark.tools
def test_preflight_finds_the_staged_data_or_says_how_to_stage_it(staged, tmp_path):
    ready = BenchContext("code", "m", data_dir=staged, allow_code_execution=True)
    assert code.preflight(ready, registry.benchmark("humaneval")) == []
    (tmp_path / "hf_home").mkdir()
    empty = BenchContext("code", "m", data_dir=tmp_path, allow_code_execution=True)
    [line] = code.preflight(empty, registry.benchmark("mbpp"))
    assert "mbpp (full) is not staged" in line and "stage-data" in line


def test_setup_without_a_bigcode_source_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(envs, "THIRD_PARTY", tmp_path)
    monkeypatch.delenv("FTSTUDY_BIGCODE_SOURCE", raising=False)
    with pytest.raises(envs.EnvMissing) as err:
        envs.source_archive("bigcode")
    assert "--bigcode-source" in str(err.value) and "bigcode-evaluation-harness" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(envs.EnvMissing, match="does not exist"):
        envs.source_archive("bigcode", str(tmp_path / "missing.tar.gz"))
    assert envs.source_archive("eval") is None


def test_the_shared_archive_is_the_default_source():
    found = envs.source_archive("bigcode")
    assert Path(found).name == "bigcode-evaluation-harness-8fc5bae6.tar.gz" and os.path.exists(found)


def test_languages_bigcode_executes_itself_need_a_network_free_namespace(tmp_path, monkeypatch):
    """No `unshare` on PATH: MultiPL-E is refused, never run with the network."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(HarnessUnavailable, match="unshare"):
        code.no_network(["python", "main.py"])


def test_stage_data_puts_bigcodes_datasets_in_the_hf_cache():
    from ftstudy.data import stage_data

    steps = {s.out: s for s in stage_data.plan(["code"], {"eval": "/e/python", "bigcode": "/b/python"})}
    for hub in ("openai_humaneval", "mbpp"):
        step = steps[f"hf_home/datasets/{hub}"]
        assert step.argv == ["/b/python", "-c", stage_data.LOAD_SCRIPT, hub] and step.env_name == "bigcode"
        assert step.env == {"HF_HOME": "<DIR>/hf_home"}


def test_setup_with_a_missing_source_is_one_line_before_any_install(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ftstudy.cli.main import main

    monkeypatch.setenv("FTSTUDY_ENVS_DIR", str(tmp_path / "envs"))
    monkeypatch.delenv("FTSTUDY_BIGCODE_ENV", raising=False)
    res = CliRunner().invoke(main, ["setup", "bigcode", "--bigcode-source", str(tmp_path / "nope.tar.gz")])
    assert res.exit_code == 1 and "nope.tar.gz does not exist" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "envs").exists()  # refused before creating anything
