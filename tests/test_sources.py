"""The study plan's further sources (issue 10): each converter by example, the registry's access notes as `show`
prints them, the hub request each source makes, and the errors a user gets when a source cannot come from the
hub as is. Fixture-wide conversion of every source is in test_data.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftstudy.config import registry
from ftstudy.cli import show
from ftstudy.cli.main import main
from ftstudy.data.converters.common import RowError, RowSkip, convert
from ftstudy.data.converters.plan_sources import CUAD_WINDOW, NO_CLAUSE
from ftstudy.data.prepare import PrepareError, prepare
from ftstudy.data.sources import access_lines, hub_failure, hub_request

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def roles(out: dict) -> list[str]:
    return [m["role"] for m in out["messages"]]


# --- converters by example -------------------------------------------------------------------------------------

def test_sharegpt_maps_roles_and_trims_to_an_exchange():
    def conv(*turns):
        return {"id": "x", "conversations": [{"from": f, "value": v} for f, v in turns]}

    out = convert("sharegpt", conv(("system", "Be kind."), ("gpt", "...as I said"), ("human", "Q1"), ("gpt", "A1"),
                                   ("human", "Q2"), ("chatgpt", "A2"), ("human", "unanswered")))
    assert [(m["role"], m["content"]) for m in out["messages"]] == [
        ("system", "Be kind."), ("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2")]
    with pytest.raises(RowSkip, match="no user/assistant exchange"):
        convert("sharegpt", conv())
    with pytest.raises(RowSkip, match="do not alternate"):
        convert("sharegpt", conv(("human", "a"), ("human", "b"), ("gpt", "c")))
    with pytest.raises(RowError, match="item 1 of 'conversations' has unknown from 'robot'"):
        convert("sharegpt", conv(("human", "a"), ("robot", "b")))
    with pytest.raises(RowError, match="field 'conversations' must be a list, got str"):
        convert("sharegpt", {"conversations": "human: hi"})


def test_wildchat_reads_role_and_content_and_ignores_turn_metadata():
    row = json.loads((FIXTURES / "wildchat.jsonl").read_text().splitlines()[1])
    out = convert("wildchat", row)
    assert roles(out) == ["user", "assistant"] * (len(row["conversation"]) // 2)
    assert out["messages"][0] == {"role": "user", "content": row["conversation"][0]["content"]}
    with pytest.raises(RowError, match="'content' must be a string, got NoneType"):
        convert("wildchat", {"conversation": [{"role": "user", "content": None}]})


def test_starcoder_rows_are_completion_text_without_the_repo_header():
    assert convert("starcoder", {"id": "1", "content": "<reponame>o/r<filename>a.py<gh_stars>10-100\nimport os\n"}) == {
        "text": "import os\n"}
    assert convert("starcoder", {"content": "x = '<reponame>'\n"}) == {"text": "x = '<reponame>'\n"}  # only a header
    with pytest.raises(RowSkip, match="no code after the repository header"):
        convert("starcoder", {"content": "<reponame>o/r<filename>empty.py\n"})


def test_math_rows_keep_the_worked_solution_and_need_a_boxed_answer():
    row = {"problem": "Solve $2x=4$.", "solution": "Divide: $x=\\boxed{2}$.", "level": "Level 1", "type": "Algebra"}
    assert convert("hendrycks_math", row)["messages"] == [
        {"role": "user", "content": "Solve $2x=4$."}, {"role": "assistant", "content": "Divide: $x=\\boxed{2}$."}]
    with pytest.raises(RowSkip, match="no \\\\boxed"):
        convert("hendrycks_math", {**row, "solution": "x is 2."})


def test_nectar_binarizes_rank_one_against_a_lower_rank_reproducibly():
    answers = [{"answer": f"answer {r}", "model": f"m{r}", "rank": float(r)} for r in (3, 1, 2, 7)]
    row = {"prompt": "\n\nHuman: Why is the sea salty?\n\nAssistant:", "answers": answers, "turns": 1}
    out = convert("nectar", row)
    assert out["prompt"] == "Why is the sea salty?" and out["chosen"][1]["content"] == "answer 1"
    assert out["rejected"][1]["content"] in ("answer 2", "answer 3", "answer 7") and out["rank_rejected"] > 1
    assert convert("nectar", {**row, "answers": list(reversed(answers))}) == out  # order of answers does not matter
    multi = {**row, "prompt": "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Why?\n\nAssistant:", "turns": 2}
    with pytest.raises(RowSkip, match="multi-turn prompt"):
        convert("nectar", multi)
    with pytest.raises(RowSkip, match="all answers ranked the same"):
        convert("nectar", {**row, "answers": [{"answer": "a", "rank": 1.0}, {"answer": "b", "rank": 1.0}]})
    with pytest.raises(RowError, match="does not start with 'Human:'"):
        convert("nectar", {**row, "prompt": "Why is the sea salty?"})


def test_toolbench_function_turns_become_tool_messages():
    row = json.loads((FIXTURES / "toolbench.jsonl").read_text().splitlines()[0])
    out = convert("toolbench", row)
    assert roles(out) == ["system", "user", "assistant", "tool", "assistant"]
    assert out["messages"][2]["content"].startswith("\nThought:") and "Action Input:" in out["messages"][2]["content"]
    trailing = {"conversations": row["conversations"][:4]}  # ends on an observation: dropped, ends on the action
    assert roles(convert("toolbench", trailing)) == ["system", "user", "assistant"]
    bad = {"conversations": [{"from": "user", "value": "u"}, {"from": "function", "value": "{}"},
                             {"from": "assistant", "value": "a"}]}
    with pytest.raises(RowError, match="function observation must follow an assistant action"):
        convert("toolbench", bad)


def test_gorilla_splits_instruction_from_output():
    out = convert("gorilla", {"code": "###Instruction: Classify reviews.\n###Output: <<<domain>>>: NLP\n"
                                      "<<<api_call>>>: pipeline('x')", "api_call": "pipeline('x')"})
    assert out["messages"] == [{"role": "user", "content": "Classify reviews."},
                               {"role": "assistant", "content": "<<<domain>>>: NLP\n<<<api_call>>>: pipeline('x')"}]
    with pytest.raises(RowError, match="no '###Output:' section"):
        convert("gorilla", {"code": "###Instruction: only a question"})
    # torchhub_train.json's layout (as in the Gorilla repo): the answer is rebuilt from the row's own fields
    torch_row = {"code": "{'Instruction': I need depth from one image., 'Output': {'domain': 'Classification', "
                         "'api_call': \"model = torch.hub.load('intel-isl/MiDaS', 'DPT_Hybrid')\", 'code': 'x'}}",
                 "api_call": "torch.hub.load(repo_or_dir='intel-isl/MiDaS', model='DPT_Hybrid')", "provider": "PyTorch",
                 "api_data": {"domain": "Classification", "framework": "PyTorch", "description": "MiDaS depth."}}
    out = convert("gorilla", torch_row)
    assert convert("gorilla", {**torch_row, "api_data": json.dumps(torch_row["api_data"])}) == out  # parquet copies
    assert out["messages"][0]["content"] == "I need depth from one image."
    assert out["messages"][1]["content"] == ("<<<domain>>>: Classification\n<<<api_call>>>: torch.hub.load(repo_or_dir="
                                             "'intel-isl/MiDaS', model='DPT_Hybrid')\n<<<api_provider>>>: PyTorch\n"
                                             "<<<explanation>>>: MiDaS depth.")


def test_booksum_legalbench_task_and_tinystories_by_example():
    bs = convert("booksum", {"chapter": "  Long chapter.  ", "summary_text": " Short. ", "book_id": "b.1"})
    assert bs["messages"][1]["content"] == "Short." and bs["messages"][0]["content"].endswith("Long chapter.")
    lb = convert("legalbench_task", {"text": "Clause.", "answer": " No ", "index": 0, "_config": "contract_nli_limited_use"})
    assert lb["messages"] == [{"role": "user", "content": "LegalBench task: contract nli limited use\n\nClause.\n\nAnswer:"},
                              {"role": "assistant", "content": "No"}]
    assert convert("legalbench_task", {"text": "T", "answer": "A"})["messages"][0]["content"] == "T\n\nAnswer:"
    ts = convert("tinystories", {"text": "Once there was a frog.\n\nHe sang. Then he slept."})
    assert ts["messages"][0]["content"] == "Continue this story:\n\nOnce there was a frog."
    assert ts["messages"][1]["content"] == "He sang. Then he slept."
    with pytest.raises(RowSkip, match="too short"):
        convert("tinystories", {"text": "One line. Two lines."})


def test_cuad_shows_an_excerpt_that_holds_the_answer():
    clause = "This Agreement is governed by the laws of Norland."
    context = ("Recital. " * 2000) + clause + (" Boilerplate." * 500)
    start = context.index(clause)
    out = convert("cuad", {"id": "c1", "title": "T", "context": context, "question": "Governing Law?",
                           "answers": {"text": [clause, clause], "answer_start": [start, start]}})
    prompt, answer = out["messages"][0]["content"], out["messages"][1]["content"]
    assert clause in prompt and len(prompt) < CUAD_WINDOW + 200 and answer == clause  # repeats collapse
    none = convert("cuad", {"context": context, "question": "Non-compete?", "answers": {"text": [], "answer_start": []}})
    assert none["messages"][1]["content"] == NO_CLAUSE
    with pytest.raises(RowError, match="outside the context"):
        convert("cuad", {"context": "short", "question": "q?", "answers": {"text": ["x"], "answer_start": [99]}})
    with pytest.raises(RowError, match="one length"):
        convert("cuad", {"context": "c", "question": "q?", "answers": {"text": ["x"], "answer_start": []}})


# --- registry, show and the hub request -------------------------------------------------------------------------

PLAN_SOURCES = {  # the plan's sources, by experiment (issue 10 section 3): every one selectable with --source
    "instruction": ["openorca"], "chat": ["sharegpt", "wildchat"], "code": ["starcoderdata"], "math": ["math_train"],
    "dpo": ["nectar"], "tool_use": ["toolbench", "gorilla"], "summarization": ["booksum"],
    "medical": ["meadow_wikidoc", "meadow_wikidoc_patient", "meadow_mediqa", "meadow_health_advice",
                "meadow_pubmed_causal", "meadow_medqa", "meadow_cord19"],
    "legal": ["legalbench_tasks", "cuad"], "creative": ["tinystories"],
}


def test_every_plan_source_is_a_selectable_alternative_that_leaves_the_default_mixture_alone():
    for exp_id, ids in PLAN_SOURCES.items():
        exp = registry.experiment(exp_id)
        for sid in ids:
            src = next(s for s in exp.sources if s.id == sid)
            assert src.alternative and src.weight == 0.0 and src not in exp.active_sources
            assert [s.id for s in exp.select([sid])] == [sid]
            assert src.split.startswith("train"), (sid, src.split)  # benchmark test splits never enter training
            assert set(src.access) <= set(registry.ACCESS)
            assert not src.access or src.note, f"{sid}: an access restriction needs a note saying what to do"


def test_show_names_sources_and_says_what_access_needs(tmp_path):
    text = show.show_text("code")
    assert "- starcoderdata: bigcode/starcoderdata split=train data_dir=python" in text
    assert "select with --source starcoderdata" in text
    assert "access: gated, very large -- accept the terms on https://huggingface.co/datasets/bigcode/starcoderdata" in text
    assert "set HF_TOKEN" in text and "first 500,000 rows in hub order" in text
    doc = json.loads(show.show_json("tool_use"))
    tb = next(s for s in doc["sources"] if s["id"] == "toolbench")
    assert tb["access"] == ["not on the hub"] and "--data" in tb["note"]
    r = CliRunner().invoke(main, ["show", "legal"])
    assert r.exit_code == 0 and "legalbench_tasks: nguha/legalbench [abercrombie,proa,contract_nli_" in r.output
    assert access_lines(registry.experiment("classification").sources[0]) == []


def test_hub_requests_carry_configs_folders_files_revisions_and_limits():
    def req(exp, sid, hub=None):
        src = next(s for s in registry.experiment(exp).sources if s.id == sid)
        return hub_request(src, hub or src.hub)

    args, want = req("math", "math_train")
    assert args[:4] == ["--hub", "EleutherAI/hendrycks_math", "--split", "train"] and args.count("--config") == 7
    assert want["configs"][0] == "algebra"
    assert req("chat", "sharegpt")[0][-2:] == ["--data-files", "ShareGPT_V3_unfiltered_cleaned_split.json"]
    assert req("legal", "cuad")[0][-2:] == ["--revision", "refs/convert/parquet"]
    assert req("medical", "meadow_cord19")[0][-2:] == ["--limit", "50000"]
    # an existing source's cache key is unchanged, so dumps made before keep being reused
    assert req("math", "gsm8k")[1] == {"hub": "openai/gsm8k", "config": "main", "split": "train"}
    # another hub id given with --data gets its train split as is
    assert req("math", "math_train", "someone/other")[0] == ["--hub", "someone/other", "--split", "train"]


def test_a_source_not_on_the_hub_asks_for_a_local_file(tmp_path):
    with pytest.raises(PrepareError) as err:
        prepare("tool_use", sources=["toolbench"], out_root=tmp_path, progress=lambda m: None)
    text = str(err.value)
    assert "source 'toolbench' (OpenBMB/ToolBench) is not on the hub" in text and "--data" in text
    assert not list(tmp_path.rglob("*.jsonl"))
    r = CliRunner().invoke(main, ["prepare", "tool_use", "--source", "toolbench"])
    assert r.exit_code == 1 and "is not on the hub" in r.output and "Traceback" not in r.output
    rep = prepare("tool_use", sources=["toolbench"], data=[str(FIXTURES / "toolbench.jsonl")], out_root=tmp_path,
                  progress=lambda m: None)
    assert rep.sources[0].converted == 21 and rep.sources[0].path.name.startswith("toolbench-")


def test_hub_failure_says_what_to_do():
    src = next(s for s in registry.experiment("code").sources if s.id == "starcoderdata")
    text = hub_failure(src, src.hub, "streaming bigcode/starcoderdata from the hub failed (exit 1).")
    assert text.startswith("streaming bigcode/starcoderdata from the hub failed")
    assert "accept the terms on https://huggingface.co/datasets/bigcode/starcoderdata and set HF_TOKEN" in text
    assert "pass --data with a local JSONL/JSON/parquet file" in text
    plain = registry.experiment("math").sources[1]
    assert "check https://huggingface.co/datasets/openai/gsm8k" in hub_failure(plain, plain.hub, "x")


def test_the_planner_has_a_token_estimate_for_every_shape():
    from ftstudy.plan.data_stats import MEAN_TOKENS
    from ftstudy.config.row_formats import SHAPES

    assert set(SHAPES) <= set(MEAN_TOKENS)


# --- with the train environment (datasets), offline ----------------------------------------------------------

def _hub_rows(*args: str):
    from ftstudy.core import tool_envs as envs
    from ftstudy.core.runner import run

    script = Path(__file__).resolve().parents[1] / "ftstudy" / "tool_env_scripts" / "hub_rows.py"
    return run([str(envs.bin_path("train")), str(script), *args], quiet=True)


@pytest.mark.tools
def test_hub_rows_reads_configs_in_turn_tags_them_and_stops_at_the_limit(tmp_path, monkeypatch):
    """A local repo laid out like a hub dataset with two configs (as nguha/legalbench or hendrycks_math are)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "repo"
    for name, n in (("alpha", 3), ("beta", 2)):
        (repo / name).mkdir(parents=True)
        (repo / name / "train.jsonl").write_text("".join(json.dumps({"text": f"{name} {i}", "answer": "Yes"}) + "\n"
                                                         for i in range(n)))
    (repo / "README.md").write_text("---\nconfigs:\n" + "".join(
        f"- config_name: {c}\n  data_files:\n  - split: train\n    path: {c}/train.jsonl\n" for c in ("alpha", "beta")) + "---\n")
    out = tmp_path / "out.jsonl"
    res = _hub_rows("--hub", str(repo), "--config", "alpha", "--config", "beta", "--split", "train", "--out", str(out))
    assert res.returncode == 0, res.tail
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["text"], r["_config"]) for r in got] == [("alpha 0", "alpha"), ("alpha 1", "alpha"), ("alpha 2", "alpha"),
                                                        ("beta 0", "beta"), ("beta 1", "beta")]
    assert all(convert("legalbench_task", r)["messages"][0]["content"].startswith("LegalBench task: ") for r in got)
    res = _hub_rows("--hub", str(repo), "--config", "alpha", "--limit", "2", "--out", str(out))
    assert res.returncode == 0 and [json.loads(line) for line in out.read_text().splitlines()] == [
        {"text": "alpha 0", "answer": "Yes"}, {"text": "alpha 1", "answer": "Yes"}]  # one config: rows as they are


@pytest.mark.tools
def test_a_refused_hub_dump_says_what_to_do(tmp_path, monkeypatch):
    """Offline, the hub cannot be reached (as with a gated dataset and no token): the error keeps the tool's
    reason and adds the access steps; nothing is left behind under data/raw."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PrepareError) as err:
        prepare("code", sources=["starcoderdata"], out_root=tmp_path / "prepared", progress=lambda m: None)
    text = str(err.value)
    assert "streaming bigcode/starcoderdata from the hub failed" in text
    assert "What to do: if the hub refused access, accept the terms on https://huggingface.co/datasets/bigcode/starcoderdata" in text
    assert not list((tmp_path / "raw").rglob("*.jsonl"))
