"""The CLI verbs through Click's CliRunner; every command's --help carries an example."""
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ftstudy.cli.main import main
from ftstudy.config import registry


def all_commands(group=main, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from all_commands(cmd, prefix + (name,))


# Every verb, spelled out: a command module that fails to import makes its verbs vanish, which this catches.
COMMANDS = {"bench", "cancel", "compare", "decontaminate", "demo", "doctor", "gen", "list", "merge", "plan", "prepare", "report", "run",
            "score", "score rouge", "score toolcall", "serve", "setup", "show", "stage-data", "status", "tiny-model",
            "train", "validate"}


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    paths = [path for path, _cmd in all_commands()]
    assert {" ".join(p) for p in paths} == COMMANDS
    for path in paths:
        res = runner.invoke(main, [*path, "--help"])
        assert res.exit_code == 0, path
        assert "Example" in res.output, f"`ftstudy {' '.join(path)} --help` has no example"
    assert "Example" in runner.invoke(main, ["--help"]).output


def test_import_pulls_no_heavy_module():
    code = ("import sys, ftstudy.cli.main; heavy = [m for m in ('torch', 'transformers', 'datasets', 'vllm', 'peft', "
            "'pandas', 'matplotlib', 'jsonschema') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_list_and_json():
    runner = CliRunner()
    res = runner.invoke(main, ["list"])
    n = len(registry.experiments())
    assert res.exit_code == 0 and "tool_use" in res.output and f"{n} experiments" in res.output
    rows = json.loads(runner.invoke(main, ["list", "--json"]).output)
    assert [r["id"] for r in rows] == registry.experiment_ids() and all({"id", "methods", "benchmarks"} <= set(r) for r in rows)


def test_show_and_unknown_id():
    runner = CliRunner()
    res = runner.invoke(main, ["show", "classification"])
    assert res.exit_code == 0
    for needle in ("fancyzhx/ag_news", "qlora", "lora_r=16", "sequence_len: 512", "guard", "Done with QLoRA (95.14%)",
                   "training time on one DGX Spark"):
        assert needle in res.output, needle
    bad = runner.invoke(main, ["show", "clasification"])
    assert bad.exit_code != 0 and "Did you mean classification" in bad.output


def test_gen_with_no_options_then_validate(tmp_path):
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        res = runner.invoke(main, ["gen", "code"])
        assert res.exit_code == 0, res.output
        assert "axolotl_configs/code/lora-dgx-spark.yaml" in res.output
        assert runner.invoke(main, ["validate", "axolotl_configs/code/lora-dgx-spark.yaml"]).exit_code == 0
        res = runner.invoke(main, ["gen", "code", "--set", "adapterr=lora", "-o", "bad.yaml"])
        assert res.exit_code == 0
        res = runner.invoke(main, ["validate", "bad.yaml"])
        assert res.exit_code == 1 and "adapterr: unknown key — did you mean adapter?" in res.output


def test_gen_to_stdout_and_bad_set():
    runner = CliRunner()
    res = runner.invoke(main, ["gen", "dpo", "--hardware", "cpu", "-o", "-"])
    assert res.exit_code == 0 and res.output.startswith("# ftstudy") and "rl: dpo" in res.output
    res = runner.invoke(main, ["gen", "dpo", "--set", "oops"])
    assert res.exit_code != 0 and "KEY=VALUE" in res.output
    res = runner.invoke(main, ["gen", "chat", "--method", "qlora"])
    assert res.exit_code != 0 and "unknown method" in res.output


def test_gen_all_check_and_validate_all():
    runner = CliRunner()
    res = runner.invoke(main, ["gen", "--all", "--check"])
    pairs = sum(len(e.methods) for e in registry.experiments())
    assert res.exit_code == 0 and f"checked {pairs} configs; 0 stale" in res.output
    res = runner.invoke(main, ["validate", "--all"])
    assert res.exit_code == 0 and f"{pairs} file(s) checked, 0 invalid" in res.output


def test_gen_all_check_names_stale_files(tmp_path, monkeypatch):
    import ftstudy.config.gen as gen

    src = gen.golden()
    victim = next(iter(src))
    monkeypatch.setattr(gen, "golden", lambda: {**src, victim: src[victim] + "# drift\n"})
    res = CliRunner().invoke(main, ["gen", "--all", "--check"])
    assert res.exit_code == 1 and str(victim) in res.output


def test_doctor_reports_each_missing_environment_with_its_install_command(tmp_path, monkeypatch):
    from ftstudy.core import tool_envs as envs

    monkeypatch.setenv("FTSTUDY_ENVS_DIR", str(tmp_path))
    for name in envs.ENVS:
        monkeypatch.delenv(f"FTSTUDY_{name.upper()}_ENV", raising=False)
    res = CliRunner().invoke(main, ["doctor", "--json"])
    assert res.exit_code == 0, res.output
    found = json.loads(res.output)["envs"]
    assert set(found) == {"train", "eval", "bfcl", "alpaca_eval", "bigcode", "vllm"}
    for name, env in found.items():
        assert env["ok"] is False and env["install"] == f"ftstudy setup {name}", env
        assert Path(env["path"]).parent == tmp_path and env["optional"] is (name in ("bfcl", "alpaca_eval", "bigcode", "vllm"))
    text = CliRunner().invoke(main, ["doctor"]).output
    for name in found:
        status = "missing" if found[name]["optional"] else "MISSING"  # a required one shouts
        assert any(line.split()[:2] == [name, status] for line in text.splitlines()), text
        assert f"install: ftstudy setup {name}" in text


@pytest.mark.tools
def test_doctor_finds_the_built_environments_at_their_pins():
    found = json.loads(CliRunner().invoke(main, ["doctor", "--json"]).output)["envs"]
    pins = {}
    for req in ("train-cpu.txt", "eval-cpu.txt"):
        for line in (Path(__file__).parent.parent / "ftstudy" / "core" / "tool_env_pins" / req).read_text().splitlines():
            if "==" in line and not line.startswith("#"):
                name, version = line.split(";")[0].split("==")
                pins.setdefault(req.split("-")[0], {})[name.strip().split("[")[0]] = version.strip()
    assert found["train"]["ok"] and found["train"]["versions"]["axolotl"] == pins["train"]["axolotl"]
    assert found["eval"]["ok"] and found["eval"]["versions"]["lm_eval"] == pins["eval"]["lm_eval"]


def test_unwritable_results_folder_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    from tests.test_compare import put, scores

    put(tmp_path / "results", "classification", "base", "ag_news", scores(5, 0.5, 1))
    put(tmp_path / "results", "classification", "ft", "ag_news", scores(5, 0.6, 1))
    res = CliRunner().invoke(main, ["report", "--root", str(tmp_path), "--out", str(blocker / "report")])
    assert res.exit_code != 0 and "cannot write or read" in res.output and "Traceback" not in res.output
    assert blocker.read_text() == "not a folder"
