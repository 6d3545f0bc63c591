"""The data stage: converters on every experiment's fixtures, hand-computed conversions, malformed rows,
deterministic prepare, --limit, packing arithmetic, and (marked `tools`) Axolotl's own preprocess on every
experiment's prepared fixtures with the tiny model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftstudy.data import stream as convert_stream
from ftstudy.config import gen
from ftstudy.config import registry
from ftstudy.data import token_counts as tokens
from ftstudy.cli.main import main
from ftstudy.data.converters.common import AG_NEWS_LABELS, RowError, RowSkip, convert
from ftstudy.data.converters.xlam import NO_CALL_REPLY, json_type, xlam
from ftstudy.data.prepare import PrepareError, budgets, prepare
from ftstudy.config.row_formats import SHAPES

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture(src: registry.Source) -> Path:
    """Each source's fixture is found by its id: tests/fixtures/<source id>.jsonl, in the hub's row shape."""
    return FIXTURES / f"{src.id}.jsonl"


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def quiet(_msg: str) -> None:
    pass


def check_axolotl_row(shape: str, out: dict) -> None:
    """The converted row has what the shape's Axolotl dataset type reads."""
    kind = SHAPES[shape]["axolotl"]["type"]
    if kind == "chat_template":
        msgs = out["messages"]
        assert msgs and msgs[-1]["role"] == "assistant"
        turns = [m["role"] for m in msgs if m["role"] != "system"]
        # a tool observation (ToolBench's function turns) answers an assistant action and leads to another
        plain = [r for i, r in enumerate(turns) if not (r == "tool" or (r == "assistant" and i + 1 < len(turns)
                                                                       and turns[i + 1] == "tool"))]
        assert plain == ["user", "assistant"] * (len(plain) // 2), turns
        assert all(turns[i - 1] in ("assistant", "tool") for i, r in enumerate(turns) if r == "tool")
    elif kind == "completion":
        assert isinstance(out[SHAPES[shape]["axolotl"]["field"]], str) and out["text"].strip()
    elif kind == "chatml.ultra":
        assert out["prompt"] and out["chosen"][1]["content"] and out["rejected"][1]["content"]
    else:  # `alpaca`, or a field map naming the row's own fields
        names = ["instruction", "output"] if kind == "alpaca" else [kind["field_instruction"], kind["field_output"]]
        assert all(isinstance(out[n], str) and out[n].strip() for n in names)


def test_every_experiments_fixtures_convert():
    """Every source of every experiment (alternatives included) has a fixture in its hub row shape, and its rows
    convert into what the shape's Axolotl type reads; most rows of each give an example."""
    seen = []
    for exp in registry.experiments():
        for src in exp.sources:
            path = fixture(src)
            data = rows(path)
            assert len(data) >= (60 if src.shape in ("ag_news", "xlam") else 20), path
            converted = 0
            for i, row in enumerate(data, 1):
                try:
                    check_axolotl_row(src.shape, convert(src.shape, row))
                    converted += 1
                except RowSkip:
                    pass
                except RowError as exc:
                    pytest.fail(f"{path}:{i}: {exc}")
            assert converted >= 0.75 * len(data), (path, converted)
            seen.append((exp.id, src.id))
    assert len({e for e, _ in seen}) == len(registry.experiments())
    assert len(seen) == sum(len(e.sources) for e in registry.experiments())
    on_disk = {p.stem for p in FIXTURES.glob("*.jsonl")}
    assert {s for _, s in seen} <= on_disk


XLAM_ROW = {
    "id": 7,
    "query": "Forecast for Oslo, and the primes up to 20?",
    "tools": json.dumps([
        {"name": "forecast", "description": "Weather forecast.",
         "parameters": {"city": {"type": "str", "description": "City name"},
                        "days": {"type": "int, optional", "description": "Days ahead", "default": 3}}},
        {"name": "primes", "description": "Primes in a range.",
         "parameters": {"bounds": {"type": "List[int]", "description": "Low and high"},
                        "strict": {"type": "bool", "description": "Exclude the bounds", "default": False}}},
    ]),
    "answers": json.dumps([{"name": "forecast", "arguments": {"city": "Oslo"}},
                           {"name": "primes", "arguments": {"bounds": [1, 20]}}]),
}


def test_xlam_conversion_by_hand():
    out = xlam(XLAM_ROW)
    assert out["messages"][0] == {"role": "user", "content": XLAM_ROW["query"]}
    assert out["messages"][1] == {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "forecast", "arguments": '{"city": "Oslo"}'}},
        {"type": "function", "function": {"name": "primes", "arguments": '{"bounds": [1, 20]}'}},
    ]}
    specs = [t["function"] for t in out["tools"]]
    assert [t["type"] for t in out["tools"]] == ["function", "function"]
    assert [(s["name"], s["description"]) for s in specs] == [("forecast", "Weather forecast."), ("primes", "Primes in a range.")]
    assert json.loads(specs[0]["parameters"]) == {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"},
                       "days": {"type": "integer", "description": "Days ahead", "default": 3}},
        "required": ["city"]}
    assert json.loads(specs[1]["parameters"]) == {
        "type": "object",
        "properties": {"bounds": {"type": "array", "items": {"type": "integer"}, "description": "Low and high"},
                       "strict": {"type": "boolean", "description": "Exclude the bounds", "default": False}},
        "required": ["bounds"]}


@pytest.mark.parametrize("text, schema, optional", [
    ("str", {"type": "string"}, False), ("int", {"type": "integer"}, False), ("float", {"type": "number"}, False),
    ("bool", {"type": "boolean"}, False), ("Dict", {"type": "object"}, False), ("dict", {"type": "object"}, False),
    ("List[int]", {"type": "array", "items": {"type": "integer"}}, False),
    ("List[List[str]]", {"type": "array", "items": {"type": "array", "items": {"type": "string"}}}, False),
    ("str, optional", {"type": "string"}, True), ("List[float], optional", {"type": "array", "items": {"type": "number"}}, True),
    ("Optional[int]", {"type": "integer"}, True), ("Union[int, float]", {"type": ["integer", "number"]}, False),
    ("Union[str, None]", {"type": "string"}, True), ("Tuple[float, float]", {"type": "array", "items": {"type": "number"}}, False),
    ("Dict[str, Any]", {"type": "object"}, False), ("Any", {}, False), ("Callable", {}, False), ("list", {"type": "array"}, False),
])
def test_xlam_type_mapping(text, schema, optional):
    assert json_type(text) == (schema, optional)


def test_xlam_without_calls_answers_in_words():
    row = {**XLAM_ROW, "answers": "[]"}
    out = xlam(row)
    assert out["messages"][1] == {"role": "assistant", "content": NO_CALL_REPLY}
    assert sum(1 for r in rows(FIXTURES / "xlam.jsonl") if json.loads(r["answers"]) == []) >= 4
    assert sum(1 for r in rows(FIXTURES / "xlam.jsonl") if len(json.loads(r["answers"])) >= 2) >= 8


def test_ultrachat_alternates_and_drops_an_unanswered_turn():
    out = convert("ultrachat", {"id": "1", "data": ["q1", "a1", "q2", "a2", "q3"]})
    assert [(m["role"], m["content"]) for m in out["messages"]] == [
        ("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2")]
    for data, reason in (([], "empty conversation"), (["only a question"], "empty conversation"),
                         (["q", ""], "turn 1 of 'data' is empty"), (["q", 5], "turn 1 of 'data' must be a string, got int")):
        with pytest.raises(RowError, match=reason):
            convert("ultrachat", {"id": "x", "data": data})


def test_raw_ultrafeedback_binarizes_best_against_lower_rated():
    def comp(text, score, fine=None):
        return {"model": "m", "response": text, "overall_score": score, "fine-grained_score": fine, "annotations": {}}

    row = {"source": "s", "instruction": "Why is the sky blue?", "models": ["m"] * 4,
           "completions": [comp("ok", 6.0), comp("best", 9.0), comp("worst", 2.0), comp("unrated", "N/A")]}
    out = convert("ultrafeedback_raw", row)
    assert out["chosen"] == [{"role": "user", "content": row["instruction"]}, {"role": "assistant", "content": "best"}]
    assert out["rejected"][1]["content"] in ("ok", "worst") and out["score_rejected"] < out["score_chosen"] == 9.0
    assert out["prompt"] == row["instruction"]
    with pytest.raises(RowSkip, match="all completions rated the same"):
        convert("ultrafeedback_raw", {**row, "completions": [comp("a", 5.0), comp("b", 5.0)]})
    for raw in rows(FIXTURES / "ultrafeedback_raw.jsonl"):
        out = convert("ultrafeedback_raw", raw)
        best = max(c["overall_score"] for c in raw["completions"])
        assert out["score_chosen"] == best > out["score_rejected"]


def test_ag_news_names_the_label_and_refuses_bad_ones():
    out = convert("ag_news", {"text": "Chip makers unveil designs.", "label": 3})
    assert out["messages"][1]["content"] == "Sci/Tech" and AG_NEWS_LABELS == ("World", "Sports", "Business", "Sci/Tech")
    assert all(name in out["messages"][0]["content"] for name in AG_NEWS_LABELS)
    with pytest.raises(RowError, match="label 4 out of range 0-3"):
        convert("ag_news", {"text": "x", "label": 4})
    with pytest.raises(RowError, match="field 'label' must be int, got bool"):
        convert("ag_news", {"text": "x", "label": True})


def test_other_converters_by_example():
    wp = convert("writingprompts", {"prompt": "[ WP ] The moon apologises.", "story": "First. <newline> <newline> Second."})
    assert wp["messages"][0]["content"] == "Write a story for this prompt: The moon apologises."
    assert wp["messages"][1]["content"] == "First.\n\nSecond."
    ch = convert("casehold", {"context": "Held (<HOLDING>).", "endings": ["a", "b", "c", "d", "e"], "label": 2})
    assert ch["messages"][1]["content"] == "C. c" and "\nE. e\n" in ch["messages"][0]["content"]
    pq = convert("pubmedqa", {"question": "Does it work?", "final_decision": "maybe", "long_answer": "Unclear.",
                              "context": {"contexts": ["p1", "p2"], "labels": ["BACKGROUND", "RESULTS"], "meshes": []}})
    assert "BACKGROUND: p1\nRESULTS: p2" in pq["messages"][0]["content"]
    assert pq["messages"][1]["content"] == "Answer: maybe\n\nUnclear."
    oo = convert("openorca", {"id": "x.1", "system_prompt": "", "question": "Q", "response": "R"})
    assert [m["role"] for m in oo["messages"]] == ["user", "assistant"]


def test_malformed_rows_stop_prepare_with_file_line_and_reason(tmp_path):
    with pytest.raises(PrepareError) as err:
        prepare("tool_use", data=[str(FIXTURES / "malformed" / "xlam.jsonl")], out_root=tmp_path, progress=quiet)
    text = str(err.value)
    src = FIXTURES / "malformed" / "xlam.jsonl"
    assert text.startswith("4 malformed row(s)")
    assert f"{src}:2: bad JSON in 'tools' (" in text
    assert f"{src}:3: bad JSON in 'answers' (" in text
    assert f"{src}:4: missing field 'tools'" in text
    assert f"{src}:5: answer calls unknown tool 'not_a_listed_tool'" in text
    assert "--skip-bad" in text and not list(tmp_path.rglob("*.jsonl"))  # nothing half-written
    with pytest.raises(PrepareError) as err:
        prepare("classification", data=[str(FIXTURES / "malformed" / "ag_news.jsonl")], out_root=tmp_path, progress=quiet)
    src = FIXTURES / "malformed" / "ag_news.jsonl"
    for expected in (f"{src}:2: field 'label' must be int, got str", f"{src}:3: label 7 out of range 0-3",
                     f"{src}:4: missing field 'text'"):
        assert expected in str(err.value)
    with pytest.raises(PrepareError, match=r"not_json.jsonl:2: not valid JSON \("):
        prepare("classification", data=[str(FIXTURES / "malformed" / "not_json.jsonl")], out_root=tmp_path, progress=quiet)


def test_skip_bad_counts_and_records(tmp_path):
    rep = prepare("chat", data=[str(FIXTURES / "malformed" / "ultrachat.jsonl")], out_root=tmp_path, skip_bad=True,
                  progress=quiet).sources[0]
    assert (rep.rows_read, rep.converted, rep.malformed) == (3, 1, 2)
    man = json.loads(rep.path.with_suffix(".manifest.json").read_text())
    assert man["counts"]["malformed_by_reason"] == {"empty conversation": 1, "field 'data' must be a list, got str": 1}
    assert len(rows(rep.path)) == 1


def test_prepare_is_deterministic_and_limit_selects_a_seeded_subset(tmp_path, monkeypatch):
    data = [str(FIXTURES / "xlam.jsonl")]
    a = prepare("tool_use", data=data, limit=20, out_root=tmp_path / "a", progress=quiet).sources[0]
    # A second run with several worker processes over many small ranges gives the same bytes.
    monkeypatch.setattr(convert_stream, "CHUNK_BYTES", 2048)
    b = prepare("tool_use", data=data, limit=20, out_root=tmp_path / "b", progress=quiet, workers=2).sources[0]
    assert a.path.read_bytes() == b.path.read_bytes() and (a.converted, a.selected, a.rows_read) == (20, 20, 64)
    small = prepare("tool_use", data=data, limit=8, out_root=tmp_path / "c", progress=quiet).sources[0]
    queries = {r["messages"][0]["content"] for r in rows(a.path)}
    assert len(rows(small.path)) == 8 and {r["messages"][0]["content"] for r in rows(small.path)} < queries
    full = prepare("tool_use", data=data, out_root=tmp_path / "d", progress=quiet).sources[0]
    assert full.converted == 64 and [r["messages"][0]["content"] for r in rows(full.path)] == [r["query"] for r in rows(FIXTURES / "xlam.jsonl")]
    man = json.loads(a.path.with_suffix(".manifest.json").read_text())
    assert man["output"]["sha256"] == __import__("hashlib").sha256(a.path.read_bytes()).hexdigest()
    assert man["input"]["path"] == data[0] and man["seed"] == 42 and man["selection"]["budget"] == 20
    assert man["source"]["converter"] == "xlam" and man["counts"]["converted"] == 20


def test_inputs_json_array_missing_file_and_empty(tmp_path):
    src = FIXTURES / "ag_news.jsonl"
    arr = tmp_path / "ag.json"
    arr.write_text(json.dumps(rows(src), indent=1))
    a = prepare("classification", data=[str(src)], out_root=tmp_path / "a", progress=quiet).sources[0]
    b = prepare("classification", data=[str(arr)], out_root=tmp_path / "b", progress=quiet).sources[0]
    assert a.path.read_bytes() == b.path.read_bytes() and b.input == {"path": str(arr)}
    with pytest.raises(PrepareError, match="no such file, and not a hub dataset id"):
        prepare("classification", data=["missing/ag.jsonl"], out_root=tmp_path, progress=quiet)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(PrepareError, match="no training rows left"):
        prepare("classification", data=[str(tmp_path / "empty.jsonl")], out_root=tmp_path, progress=quiet)


def test_paths_match_the_generated_config_and_limit_follows_weights(tmp_path):
    math = registry.experiment("math")
    assert budgets(math.active_sources, 100) == [90, 10] and budgets(math.active_sources, None) == [None, None]
    data = [str(fixture(s)) for s in math.active_sources]
    rep = prepare("math", data=data, limit=20, out_root=tmp_path, progress=quiet)
    assert [s.converted for s in rep.sources] == [18, 2]
    cfg = gen.build("math", data=data)  # the paths gen writes into configs are the files prepare wrote
    assert [d["path"] for d in cfg["datasets"]] == [f"data/prepared/math/{s.path.name}" for s in rep.sources]
    assert [s.path for s in rep.sources] == [tmp_path / "math" / Path(d["path"]).name for d in cfg["datasets"]]


def test_ffd_and_efficiency_formulas():
    assert tokens.ffd_bins([6, 5, 4, 3, 2], 10) == 2 and tokens.ffd_bins([], 10) == 0
    assert tokens.ffd_bins([7] * 5, 10) == 5 and tokens.ffd_bins([5] * 6, 10) == 3
    st = tokens.stats([100, 300, 500, 700], 512)
    assert (st.too_long, st.tokens, st.bins) == (1, 900, 2)
    assert st.padded == pytest.approx(900 / (3 * 512)) and st.packed == pytest.approx(900 / (2 * 512))
    pref = tokens.stats([[10, 20], [30, 600]], 512)
    assert (pref.too_long, pref.tokens, pref.packed) == (1, 30, None) and pref.padded == pytest.approx(30 / 1024)


def test_all_rows_too_long_is_an_error_before_training():
    lengths = [600, 700, 800, 900, 1000]
    with pytest.raises(tokens.TooLong) as err:
        tokens.check_not_all_too_long(tokens.stats(lengths, 512), "data/prepared/x/y.jsonl", lengths)
    assert str(err.value).startswith("all 5 rows of data/prepared/x/y.jsonl are longer than sequence_len=512")
    assert "--set sequence_len=1024" in str(err.value)
    tokens.check_not_all_too_long(tokens.stats([600, 100], 512), "f", [600, 100])  # one fits: no error


def test_cli_prepare_reports_errors_cleanly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # prepare's default output folder is under the current one, never the checkout
    res = CliRunner().invoke(main, ["prepare", "classification", "--data", str(FIXTURES / "malformed" / "ag_news.jsonl")])
    assert res.exit_code == 1 and "Error: 3 malformed row(s)" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["prepare", "nope"])
    assert res.exit_code == 1 and "unknown experiment 'nope'" in res.output
    res = CliRunner().invoke(main, ["prepare", "classification", "--data", str(FIXTURES / "ag_news.jsonl"),
                                    "--bench-data-dir", str(FIXTURES / "bench"), "--base-model", "./no-such-model"])
    assert res.exit_code == 1 and "no config.json for base model './no-such-model'" in res.output
    assert "Traceback" not in res.output


def test_cli_prepare_without_counting_tokens_starts_no_axolotl(tmp_path, monkeypatch):
    """--no-count-tokens: no train environment is needed (one that does not exist is never reached) and the
    manifest records no token figures; without it, the same missing environment is reported."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FTSTUDY_TRAIN_ENV", str(tmp_path / "no-train-env"))
    args = ["prepare", "classification", "--data", str(FIXTURES / "ag_news.jsonl"), "--bench-data-dir",
            str(FIXTURES / "bench")]
    res = CliRunner().invoke(main, [*args, "--no-count-tokens"])
    assert res.exit_code == 0, res.output
    assert "tokens not counted (--no-count-tokens)" in res.output
    (manifest,) = (tmp_path / "data" / "prepared" / "classification").glob("*.manifest.json")
    assert json.loads(manifest.read_text())["tokens"] is None
    counted = CliRunner().invoke(main, args)
    assert counted.exit_code == 0 and "tokens not counted: " in counted.output and "no-train-env" in counted.output


# --- with the train environment and the tiny model -------------------------------------------------------------

def _configs_for_every_experiment(tmp_path: Path, model: str) -> list[tuple[str, dict, list[tuple[str, int]]]]:
    """(experiment, cpu-profile config, [(source, rows written)]) per experiment: its default sources and then
    every alternative one, selected with --source as a user would, prepared from their fixtures into ONE config
    (Axolotl preprocesses each dataset with its own type; a config per source would only add start-ups)."""
    out = []
    for exp in registry.experiments():
        picked = tuple(s.id for s in exp.active_sources) + tuple(s.id for s in exp.sources if s.alternative)
        data = [str(fixture(s)) for s in exp.select(picked)]
        rep = prepare(exp.id, data=data, out_root=tmp_path, progress=quiet, sources=picked)
        cfg = gen.build(exp.id, hardware="cpu", base_model=model, data=data, sources=picked)
        assert len(cfg["datasets"]) == len(rep.sources) == len(picked)
        for entry, src in zip(cfg["datasets"], rep.sources):
            entry["path"] = str(src.path)
        out.append((exp.id, cfg, [(i, src.converted) for i, src in zip(picked, rep.sources)]))
    return out


@pytest.mark.tools
def test_every_experiment_passes_axolotl_preprocess(tmp_path, tiny_model):
    jobs = _configs_for_every_experiment(tmp_path, str(tiny_model))
    results = tokens.count([cfg for _, cfg, _ in jobs], progress=quiet)
    checked = []
    for (name, cfg, sources), result in zip(jobs, results):
        lengths = result["lengths"]  # file after file, in the config's order
        assert len(lengths) == sum(n for _, n in sources), f"{name}: Axolotl kept {len(lengths)} of {sources}"
        for source, n in sources:
            st = tokens.stats(lengths[:n], cfg["sequence_len"])
            lengths = lengths[n:]
            assert n > 0 and st.too_long == 0 and st.tokens > 0, f"{name}/{source}: {st}"
            checked.append(f"{name}/{source}")
        assert result["kind"] == ("preference" if cfg.get("rl") else "sft")


@pytest.mark.tools
def test_prepare_counts_tokens_and_refuses_all_too_long(tmp_path, tiny_model):
    data = [str(FIXTURES / "ultrachat.jsonl")]
    rep = prepare("chat", data=data, out_root=tmp_path, tokenizer=str(tiny_model), hardware="cpu", progress=quiet)
    t = rep.sources[0].tokens
    assert t["rows"] == 21 and t["too_long"] == 0 and t["sequence_len"] == 1024 and 0 < t["padded"] < t["packed"] <= 1
    man = json.loads(rep.sources[0].path.with_suffix(".manifest.json").read_text())
    assert man["tokens"]["tokens"] == t["tokens"] and man["tokens"]["tokenizer"] == str(tiny_model)
    with pytest.raises(PrepareError) as err:
        prepare("chat", data=data, out_root=tmp_path, tokenizer=str(tiny_model), hardware="cpu", sequence_len=16,
                progress=quiet)
    assert f"all 21 rows of {rep.sources[0].path} are longer than sequence_len=16" in str(err.value)
    assert not rep.sources[0].path.exists()  # removed, so `train` cannot start on it


@pytest.mark.tools
def test_parquet_input_gives_the_same_rows(tmp_path):
    from ftstudy.core import tool_envs as envs
    from ftstudy.core.runner import check, run

    pq = tmp_path / "xlam.parquet"
    code = ("import sys, pyarrow.json as j, pyarrow.parquet as p; p.write_table(j.read_json(sys.argv[1]), sys.argv[2])")
    check(run([str(envs.bin_path("train")), "-c", code, str(FIXTURES / "xlam.jsonl"), str(pq)], quiet=True), "write parquet")
    a = prepare("tool_use", data=[str(FIXTURES / "xlam.jsonl")], out_root=tmp_path / "a", progress=quiet).sources[0]
    b = prepare("tool_use", data=[str(pq)], out_root=tmp_path / "b", progress=quiet).sources[0]
    assert b.converted == 64 and a.path.read_bytes() == b.path.read_bytes()


def test_xlam_heldout_rows_never_enter_training(tmp_path):
    """The rows the tool-call benchmark holds out are dropped from a hub dump before conversion."""
    from ftstudy.data.benchmark_items import heldout_ids
    from ftstudy.data.sources import drop_heldout

    raw = tmp_path / "xlam.jsonl"
    raw.write_text("".join(json.dumps({"id": i}) + "\n" for i in range(300)))
    drop_heldout(raw, lambda m: None)
    kept = [json.loads(l)["id"] for l in raw.read_text().splitlines()]
    held = set(heldout_ids(300))
    assert len(held) == 10 and not held & set(kept) and len(kept) == 290


def test_two_sources_of_one_shape_keep_their_own_prepared_files(tmp_path):
    """Issue 10: MedInstruct-52k and the medical flashcards share the alpaca row shape. Each must reach
    training: the config names two distinct prepared files, and each holds its own source's rows."""
    med = registry.experiment("medical")
    assert [s.shape for s in med.active_sources].count("alpaca") == 2
    cfg_paths = [d["path"] for d in gen.build("medical")["datasets"]]
    assert len(set(cfg_paths)) == len(cfg_paths) == len(med.active_sources), cfg_paths
    data = [str(fixture(s)) for s in med.active_sources]
    rep = prepare("medical", out_root=tmp_path, progress=quiet, data=data)
    assert len({s.path for s in rep.sources}) == len(med.active_sources)
    for src, r, d in zip(med.active_sources, rep.sources, data):
        wanted = {json.dumps(convert(src.shape, row), sort_keys=True) for row in rows(Path(d))}
        got = {json.dumps(row, sort_keys=True) for row in rows(r.path)}
        assert got and got <= wanted, f"{r.path} does not hold {src.hub}'s rows"


def test_no_two_sources_share_a_prepared_file_anywhere():
    """Every experiment, default sources and every --data/--source combination: distinct file per source."""
    checked = 0
    for exp in registry.experiments():
        combos = [[], [str(fixture(s)) for s in exp.active_sources], ["same.jsonl"] * len(exp.active_sources)]
        for data in combos:
            paths = [d["path"] for d in gen.dataset_entries(exp, data)]
            assert len(set(paths)) == len(paths), (exp.id, data, paths)
            checked += 1
        for src in exp.sources:
            paths = [d["path"] for d in gen.dataset_entries(exp, sources=[src.id])]
            assert len(paths) == 1 and src.id in paths[0]
    assert checked == 3 * len(registry.experiments())


def test_prepare_refuses_to_overwrite_another_sources_file(tmp_path):
    med = registry.experiment("medical")
    data = [str(fixture(s)) for s in med.active_sources]
    rep = prepare("medical", data=data, out_root=tmp_path, progress=quiet)
    victim = rep.sources[0].path
    manifest = victim.with_suffix(".manifest.json")
    doc = json.loads(manifest.read_text())
    doc["source"]["id"] = "medical_flashcards"  # as if another source had written this file
    manifest.write_text(json.dumps(doc))
    before = victim.read_bytes()
    with pytest.raises(PrepareError, match="refusing to overwrite another source's prepared rows"):
        prepare("medical", data=data, out_root=tmp_path, progress=quiet)
    assert victim.read_bytes() == before


def test_source_selects_an_alternative_and_unknown_ids_get_near_matches():
    cfg = gen.build("instruction", sources=("openorca",))
    assert [d["path"] for d in cfg["datasets"]] == ["data/prepared/instruction/openorca.jsonl"]
    with pytest.raises(registry.UnknownName, match="Did you mean openorca"):
        gen.build("instruction", sources=("openorka",))
    r = CliRunner().invoke(main, ["gen", "instruction", "--source", "openorca", "-o", "-"])
    assert r.exit_code == 0 and "--source openorca" in r.output and "openorca.jsonl" in r.output
