"""Hostile and careless input, issue 30: names that would leave their folder, nesting deep enough to crash a
recursive walker, and numbers no training run can mean. Each is one line naming what, where and the allowed
form, never a traceback, and nothing is written outside the study's folders."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftstudy.cli.main import main
from ftstudy.config import validate
from ftstudy.core.bundled import configs_dir

GOLDEN = configs_dir() / "code" / "lora.yaml"  # header: `# experiment: code   method: lora   hardware: dgx-spark`


def cli(*args: str):
    """Run the CLI in-process; a traceback (any exception but click's exit) fails the test here."""
    res = CliRunner().invoke(main, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), \
        f"{type(res.exception).__name__}: {res.exception}\n{res.output}"
    return res


def error_line(res) -> str:
    """The one `Error: ...` line of a refused command."""
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    return lines[0]


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


# ---------------------------------------------------------------- item 2: one path rule for names

HOSTILE_NAMES = ["../../..", "..", "/tmp/ftstudy-escape", "a/b", "x" * 300, ".hidden", "-rf"]


@pytest.mark.parametrize("field", ["experiment", "method", "hardware"])
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=["up3", "up1", "absolute", "slash", "long", "dot", "dash"])
def test_train_refuses_a_config_header_naming_a_folder_outside_runs(tmp_path, monkeypatch, field, name):
    """`train` builds runs/<experiment>/<method>-<hardware>-<id>/ from the config's header: a header that names
    a folder outside runs/ is refused in one line naming the field, the file and the allowed form, before
    anything is written (dry run and real run alike)."""
    study = tmp_path / "a" / "b" / "study"
    study.mkdir(parents=True)
    monkeypatch.chdir(study)
    header = {"experiment": "code", "method": "lora", "hardware": "dgx-spark", field: name}
    text = GOLDEN.read_text().replace(
        "# experiment: code   method: lora   hardware: dgx-spark",
        f"# experiment: {header['experiment']}   method: {header['method']}   hardware: {header['hardware']}")
    text = text.replace("base_model: Qwen/Qwen2.5-7B", f"base_model: {study / 'no-model'}")
    cfg = study / "cfg.yaml"
    cfg.write_text(text)
    before = files_under(tmp_path)
    for extra in (["--dry-run"], []):
        line = error_line(cli("train", str(cfg), "--runs-dir", str(study / "runs"), *extra))
        assert f"{field} " in line and str(cfg) in line and "letters, digits" in line, line
    assert files_under(tmp_path) == before
    assert not Path("/tmp/ftstudy-escape").exists()


def test_train_refuses_a_header_with_a_nul(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_bytes(GOLDEN.read_bytes().replace(b"experiment: code", b"experiment: co\0de"))
    line = error_line(cli("train", str(cfg), "--runs-dir", str(tmp_path / "runs"), "--dry-run"))
    assert str(cfg) in line and "binary" in line
    assert files_under(tmp_path) == {cfg}


@pytest.mark.parametrize("tag", ["../../escaped", "/tmp/x", "a/b", ".."])
def test_bench_refuses_a_tag_naming_a_folder_outside_results(tmp_path, tag):
    line = error_line(cli("bench", "code", "--model", str(tmp_path), "--tag", tag, "--dry-run"))
    assert "--tag" in line and "letters, digits" in line


@pytest.mark.parametrize("option", ["--ft", "--base"])
def test_compare_refuses_a_tag_naming_a_folder_outside_results(tmp_path, monkeypatch, option):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "code" / "base").mkdir(parents=True)
    line = error_line(cli("compare", "code", option, "../../../etc"))
    assert "tag '../../../etc' cannot name" in line, line


@pytest.mark.parametrize("where,bad", [("experiment", "../evil"), ("source", "../../x"), ("benchmark", "a/b")])
def test_registry_ids_are_safe_names(registry_copy, where, bad):
    """Registry ids name folders and files (data/prepared/<exp>/<source>.jsonl, results/<exp>/<tag>/<bench>.json):
    an edited experiments.yaml or benchmarks.yaml with an id that is not a safe name is refused when read."""
    if where == "benchmark":
        path = registry_copy / "evals" / "benchmarks.yaml"
        path.write_text(path.read_text().replace("\n  humaneval:\n", f"\n  {bad}:\n", 1))
    else:
        path = registry_copy / "experiments.yaml"
        old = "- id: code\n" if where == "experiment" else "  - id: magicoder\n"
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, old.split("id: ")[0] + f"id: {bad}\n", 1))
    line = error_line(cli("list"))
    assert str(path) in line and f"{where} id {bad!r} cannot name" in line, line


@pytest.mark.parametrize("key,bad", [("rubric", "../../../../etc/passwd"), ("rubric", "/etc/passwd"),
                                     ("task", "../../x")])
def test_benchmarks_yaml_paths_stay_under_evals(registry_copy, key, bad):
    """A benchmark's task names <data-dir>/<task>.jsonl and evals/tasks/<task>.yaml; rubric and questions
    are files under evals/: an edited benchmarks.yaml cannot point them elsewhere."""
    path = registry_copy / "evals" / "benchmarks.yaml"
    old = "    rubric: judge/single_v1.md\n" if key == "rubric" else "    task: humaneval\n"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, f"    {key}: {bad}\n", 1))
    line = error_line(cli("list"))
    assert str(path) in line and "cannot name a file or folder" in line, line


def test_under_refuses_a_symlink_out_of_its_root(tmp_path):
    from ftstudy.core import names

    root, outside = tmp_path / "runs", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "code").symlink_to(outside)
    with pytest.raises(names.BadName, match="outside"):
        names.under(root, "{experiment}", "x", experiment="code")
    assert names.under(root, "{experiment}", "x", experiment="chat") == root / "chat" / "x"


# ---------------------------------------------------------------- item 5: nesting, refused without recursion

def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [990, 100_000])
@pytest.mark.parametrize("shape", ["list", "map"])
def test_validate_refuses_deep_nesting(tmp_path, levels, shape):
    levels = levels if shape == "list" else min(levels, 50_000)  # 50,000 `{a: ` levels: just under the size cap
    value = nested(levels) if shape == "list" else "{a: " * levels + "1" + "}" * levels
    path = tmp_path / "deep.yaml"
    path.write_text(f"base_model: x\nfoo: {value}\n")
    res = cli("validate", str(path))
    assert res.exit_code == 1
    problems = [line for line in res.output.splitlines() if line.startswith("  ")]
    assert len(problems) == 1 and str(path) in problems[0] and "deeper than 100 levels" in problems[0], res.output


def test_validate_refuses_depth_that_aliases_add_up_to(tmp_path):
    """Each anchor is shallow, but what the aliases stand for is nested 20 × 60 levels deep."""
    text = "a0: &a0 " + nested(60) + "\n"
    for i in range(1, 20):
        text += f"a{i}: &a{i} " + "[" * 60 + f"*a{i - 1}" + "]" * 60 + "\n"
    path = tmp_path / "aliases.yaml"
    path.write_text(text)
    problems = [p.render() for p in validate.validate_file(path)]
    assert len(problems) == 1 and "deeper than 100 levels" in problems[0], problems


def test_validate_reads_nesting_up_to_the_limit_and_refuses_one_more(tmp_path):
    """99 levels under a key (100 with the top mapping) is still read and checked without a traceback; 100 is not."""
    path = tmp_path / "ok.yaml"
    for levels, ok in ((99, True), (100, False)):
        path.write_text(GOLDEN.read_text() + "overrides_of_model_config: " + "{a: " * levels + "1" + "}" * levels + "\n")
        errs = [p.render() for p in validate.errors(validate.validate_file(path))]
        assert errs == [] if ok else len(errs) == 1 and "deeper than 100 levels" in errs[0], errs


@pytest.mark.parametrize("levels", [990, 100_000])
def test_set_refuses_deep_nesting(levels):
    line = error_line(cli("plan", "code", "--hardware", "cpu", "--set", f"foo={nested(levels)}"))
    assert "--set foo" in line and "deeper than 100 levels" in line


@pytest.mark.parametrize("levels", [990, 100_000])
def test_experiments_yaml_refuses_deep_nesting(registry_copy, levels):
    path = registry_copy / "experiments.yaml"
    path.write_text(path.read_text() + f"\nnotes: {nested(levels)}\n")
    line = error_line(cli("list"))
    assert str(path) in line and "deeper than 100 levels" in line


def test_a_huge_integer_is_one_line(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("base_model: x\nmicro_batch_size: " + "9" * 5000 + "\n")
    problems = [p.render() for p in validate.validate_file(path)]
    assert len(problems) == 1 and "cannot be read" in problems[0] and str(path) in problems[0]


# ---------------------------------------------------------------- item 6: numbers no run can mean

NONSENSE = [  # (key, YAML value, interval): values the pinned Axolotl's validation accepts
    ("learning_rate", ".nan", "(0, 100]"), ("learning_rate", ".inf", "(0, 100]"), ("learning_rate", "-1.0e-4", "(0, 100]"),
    ("learning_rate", "0", "(0, 100]"), ("learning_rate", "'1e999'", "(0, 100]"),
    ("num_epochs", "0", "(0, 10000]"), ("num_epochs", "-3", "(0, 10000]"), ("num_epochs", "1.0e+308", "(0, 10000]"),
    ("lora_r", "0", "[1, "), ("lora_r", "-8", "[1, "), ("lora_alpha", "0", "(0, "),
    ("lora_dropout", "1.0", "[0, 1)"), ("lora_dropout", "-0.1", "[0, 1)"), ("lora_dropout", ".nan", "[0, 1)"),
    ("warmup_ratio", "1.5", "[0, 1]"), ("warmup_steps", "-5", "[0, "), ("weight_decay", "-0.1", "[0, inf)"),
    ("max_steps", "0", "[1, "), ("save_steps", "0", "(0, "), ("eval_steps", "-1", "(0, "),
    ("logging_steps", "0", "[1, "), ("adam_beta2", "1.0", "[0, 1)"), ("seed", "-1", "[0, "),
]


@pytest.mark.parametrize("key,value,interval", NONSENSE, ids=[f"{k}={v}" for k, v, _ in NONSENSE])
def test_validate_refuses_nonsense_numbers(key, value, interval):
    text = "\n".join(line for line in GOLDEN.read_text().splitlines() if not line.startswith(f"{key}:"))
    # ftstudy's own errors: with Axolotl asked, adding warmup_steps or eval_steps to this golden config is refused
    # by Axolotl too, whatever the value (warmup_ratio is set; val_set_size is 0): its own rule, not a range
    errs = [p.render() for p in validate.errors(validate.validate_text(f"{text}\n{key}: {value}\n"))
            if p.origin == "ftstudy"]
    assert len(errs) == 1 and errs[0].startswith(f"{key}: ") and interval in errs[0], errs
    assert "ftstudy's range rule, Axolotl accepts it" in errs[0]


def test_validate_cli_exits_1_on_a_nan_learning_rate(tmp_path):
    path = tmp_path / "nan.yaml"
    path.write_text(GOLDEN.read_text().replace("learning_rate: 0.0002", "learning_rate: .nan"))
    res = cli("validate", str(path))
    assert res.exit_code == 1 and "  learning_rate: nan is outside (0, 100]" in res.output, res.output


def test_no_axolotl_example_breaks_a_range_rule():
    """Every bound is outside what Axolotl's own example configs use (the corpus test compares verdicts)."""
    from ftstudy.config.validate_ranges import range_problems
    from ftstudy.core import untrusted_yaml
    from tests import axolotl_corpus as corpus

    cfgs = [untrusted_yaml.load(p.read_text()) for p in corpus.files()]
    assert len(cfgs) >= 200
    assert [p.render() for c in cfgs if isinstance(c, dict) for p in range_problems(c)] == []


@pytest.mark.parametrize("setting", ["num_epochs=-3", "num_epochs=nan", "num_epochs=1e308", "num_epochs=0",
                                     "learning_rate=inf", "lora_r=0", "micro_batch_size=lots"])
def test_plan_refuses_nonsense_numbers(setting):
    key = setting.split("=")[0]
    line = error_line(cli("plan", "code", "--hardware", "cpu", "--set", setting))
    assert line.startswith(f"Error: {key}: ") and "hours" not in line, line


def test_plan_refuses_negative_epochs_and_plans_positive_ones():
    """--set num_epochs=-3 once printed negative hours that "fit"; 2 epochs still plan, in positive hours."""
    error_line(cli("plan", "code", "--hardware", "cpu", "--set", "num_epochs=-3", "--json"))
    res = cli("plan", "code", "--hardware", "cpu", "--set", "num_epochs=2", "--set", "learning_rate=1e-4", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["hours"] > 0, res.output
