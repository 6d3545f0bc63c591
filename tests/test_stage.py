"""`ftstudy stage-data`: the plan (what is fetched, from where, into which file, by which exact command) for
every benchmark of the chosen experiments; downloads are run against a local HTTP server (no network here)."""
import functools
import http.server
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftstudy.config import registry
from ftstudy.data import stage_data as stage
from ftstudy.cli.main import main
from ftstudy.data import benchmark_items as itemsets
from ftstudy.eval.harness.lmeval import staged_hf_env

PY = {"eval": "/env/eval/python", "alpaca_eval": "/env/ae/python"}


def test_plan_covers_every_benchmark_of_the_experiments():
    steps = stage.plan(["instruction", "tool_use", "legal", "creative"], PY)
    outs = [s.out for s in steps]
    assert len(outs) == len(set(outs))  # each file fetched once, however many benchmarks read it
    assert {"mt_bench.jsonl", "mt_bench_reference.jsonl", "mt_bench_judge_prompts.jsonl", "alpaca_eval.json",
            "xlam_heldout.jsonl", "casehold.jsonl", "writingprompts.jsonl", "hf_home/datasets"} <= set(outs)
    by_out = {s.out: s for s in steps}
    # MT-Bench: FastChat's own files at the pinned commit, keyed by question_id (the references join them)
    assert by_out["mt_bench.jsonl"].url == itemsets.FASTCHAT_RAW + "mt_bench/question.jsonl"
    assert by_out["mt_bench_reference.jsonl"].url == itemsets.FASTCHAT_RAW + "mt_bench/reference_answer/gpt-4.jsonl"
    assert by_out["mt_bench_judge_prompts.jsonl"].url == itemsets.FASTCHAT_RAW + "judge_prompts.jsonl"
    assert by_out["casehold.jsonl"].argv[3:] == ["coastalcph/lex_glue", "case_hold", "test", "casehold.jsonl"]
    builtin = by_out["hf_home/datasets"]
    assert builtin.env["HF_HOME"] == "<DIR>/hf_home" and builtin.argv[:2] == ["/env/eval/python", "-c"]
    wanted = {registry.benchmark(b)["task"] for e in ("instruction", "tool_use", "legal", "creative")
              for b in registry.experiment(e).all_benchmarks
              if registry.benchmark(b)["harness"] == "lm-eval" and not registry.benchmark(b).get("local_task")}
    assert set(builtin.argv[3:]) == wanted
    lc = by_out["hf_home/alpaca_eval"]
    assert lc.argv[0] == "/env/ae/python" and "df_gamed.csv" in lc.argv[2] and lc.env_name == "alpaca_eval"


def test_every_experiment_can_be_planned_and_the_cli_lists_it():
    steps = stage.plan(registry.experiment_ids(), PY)
    assert any("mmlu_abstract_algebra" in (s.argv or []) for s in steps)  # a local group of built-in tasks
    res = CliRunner().invoke(main, ["stage-data", "/tmp/nowhere", "--experiments", "chat", "--dry-run"])
    assert res.exit_code == 0 and "mt_bench.jsonl" in res.output and "lm-sys/FastChat" in res.output
    assert not Path("/tmp/nowhere").exists()


@pytest.fixture
def file_server(tmp_path):
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "judge_prompts.jsonl").write_text('{"name": "single-v1"}\n')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "srv"))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_downloads_land_under_the_names_the_harnesses_read(file_server, tmp_path):
    dest = tmp_path / "staged"
    stage.run_plan([stage.Step("judge prompts", "mt_bench_judge_prompts.jsonl", url=file_server + "/judge_prompts.jsonl")],
                   dest, progress=lambda m: None)
    assert itemsets.local_file(dest, "mt_bench_judge_prompts") == dest / "mt_bench_judge_prompts.jsonl"
    with pytest.raises(Exception, match="cannot download .*missing.jsonl"):
        stage.run_plan([stage.Step("x", "x.jsonl", url=file_server + "/missing.jsonl")], dest, progress=lambda m: None)


def test_a_staged_hf_cache_is_read_offline(tmp_path):
    assert staged_hf_env(tmp_path) == {} and staged_hf_env(None) == {}
    (tmp_path / "hf_home").mkdir()
    env = staged_hf_env(tmp_path)
    assert env["HF_HOME"] == str((tmp_path / "hf_home").resolve()) and env["HF_HUB_OFFLINE"] == env["HF_DATASETS_OFFLINE"] == "1"


@pytest.mark.tools
def test_hub_export_reads_a_local_repo_in_the_hubs_layout(tmp_path):
    """The eval environment's `datasets` exports a repo laid out as the hub has it (README configs, parquet per
    split): several ToxiGen prompt splits tagged with their split; the harness then reads the staged file."""
    import subprocess

    from ftstudy.core import tool_envs as envs
    from ftstudy.eval.harness import BenchContext
    from ftstudy.eval.harness.toxicity import items

    py = envs.bin_path("eval")
    repo = tmp_path / "toxigen-data"
    (repo / "prompts").mkdir(parents=True)
    make = f"""
import pyarrow as pa, pyarrow.parquet as pq
for g in ("women", "asian"):
    pq.write_table(pa.table({{"prompt": [f"- one {{g}}\\n-", f"- two {{g}}\\n-"]}}), "{repo}/prompts/hate_" + g + "_1k-00000-of-00001.parquet")
"""
    subprocess.run([str(py), "-c", make], check=True)
    (repo / "README.md").write_text("---\nconfigs:\n- config_name: prompts\n  data_files:\n"
                                    "  - split: hate_women_1k\n    path: prompts/hate_women_1k-*\n"
                                    "  - split: hate_asian_1k\n    path: prompts/hate_asian_1k-*\n---\n")
    staged = tmp_path / "staged"
    staged.mkdir()
    src = itemsets.Source(hub=str(repo), config="prompts", split="hate_women_1k,hate_asian_1k")
    subprocess.run(itemsets.hub_argv(py, src, staged / "toxigen_prompts.jsonl"), check=True, capture_output=True)
    ctx = BenchContext("x", "m", data_dir=staged)
    rows = items(ctx, {"max_items": 3})
    assert len(rows) == 3 and {r["group"] for r in items(ctx, {})} == {"women", "asian"}


# a hub export's stand-in: writes 60 xLAM-like rows to its last argument; with "fail", half of them and exit 1
EXPORT = ("import json, sys\nrows = 30 if sys.argv[1] == 'fail' else 60\nwith open(sys.argv[-1], 'w') as fh:\n"
          "    fh.writelines(json.dumps({'id': i}) + '\\n' for i in range(rows))\nsys.exit(sys.argv[1] == 'fail')\n")


def _export(out: str, how: str = "ok") -> stage.Step:
    return stage.Step(out, out, ["<eval-env>/bin/python", "-c", EXPORT, how, out])


def test_hub_exports_replace_their_file_only_when_finished(tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(stage.envs, "bin_path", lambda name: Path(sys.executable))
    dest = tmp_path / "staged"
    stage.run_plan([_export("xlam_heldout.jsonl"), _export("mt_bench.jsonl")], dest, progress=lambda m: None)
    held = itemsets.load_jsonl(dest / "xlam_heldout.jsonl")
    assert [r["id"] for r in held] == itemsets.heldout_ids(60) and len(held) == 2  # the held-out rows only
    assert len(itemsets.load_jsonl(dest / "mt_bench.jsonl")) == 60
    assert sorted(p.name for p in dest.iterdir()) == ["mt_bench.jsonl", "xlam_heldout.jsonl"]  # no temporary left

    # a failed export, or a stop between the export and the held-out rows: the older file stays, no temporary
    with pytest.raises(Exception, match="mt_bench.jsonl failed"):
        stage.run_plan([_export("mt_bench.jsonl", "fail")], dest, progress=lambda m: None)
    assert len(itemsets.load_jsonl(dest / "mt_bench.jsonl")) == 60

    def stopped(path):
        raise KeyboardInterrupt
    monkeypatch.setattr(itemsets, "load_jsonl", stopped)
    (dest / "xlam_heldout.jsonl").write_text('{"id": "old"}\n')
    with pytest.raises(KeyboardInterrupt):
        stage.run_plan([_export("xlam_heldout.jsonl")], dest, progress=lambda m: None)
    assert (dest / "xlam_heldout.jsonl").read_text() == '{"id": "old"}\n'
    assert sorted(p.name for p in dest.iterdir()) == ["mt_bench.jsonl", "xlam_heldout.jsonl"]
