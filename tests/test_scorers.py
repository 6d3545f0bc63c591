"""The tool-call and ROUGE scorers against hand-computed expectations, and the `ftstudy score` verbs."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ftstudy.cli.main import main
from ftstudy.eval.scorers import ScoreInputError, load_jsonl, rouge, toolcall


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


def block(*calls):
    return "".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>\n" for c in calls)


def ref(id_, *calls, as_string=True):
    answers = list(calls)
    return {"id": id_, "query": "q", "tools": "[]", "answers": json.dumps(answers) if as_string else answers}


# ---- parsing -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, calls, ok", [
    (block(call("f", x=1)), [call("f", x=1)], True),
    ('<tool_call>{"name": "f", "arguments": "{\\"x\\": 1}"}</tool_call>', [call("f", x=1)], True),  # string args
    ('[{"name": "f", "arguments": {}}, {"name": "g", "arguments": {"a": [1]}}]', [call("f"), call("g", a=[1])], True),
    ('```json\n{"name": "f", "arguments": {}}\n```', [call("f")], True),
    ('Calling {"name": "f", "arguments": {"q": "x"}} now.', [call("f", q="x")], True),  # JSON inside prose
    ('{"type": "function", "function": {"name": "f", "arguments": "{}"}}', [call("f")], True),
    ("I can't help with that.", [], True),    # no block, no JSON: zero calls, and it parses
    ("", [], True),                            # empty output: zero calls
    ('The list is [1, 2, 3].', [], True),     # JSON that is not a call is prose
    ('<tool_call>{"name": "f", "arguments": {</tool_call>', [], False),   # invalid JSON in a block
    ('<tool_call>{"name": "f", "arguments": {"x": 1}}', [], False),      # truncated: no closing tag
    (block(call("f")) + '<tool_call>{"name": "g", "argu', [call("f")], False),  # keeps the complete call
    ('{"name": "f", "arguments": {"x": 1', [], False),                   # bare JSON that does not decode
    ('{"name": "f"}', [], False),                                        # a call without arguments
    ('<tool_call>{"name": "f", "arguments": "not json"}</tool_call>', [], False),
    ('<tool_call>[1, 2]</tool_call>', [], False),                         # a block that holds no call
])
def test_parse_calls(text, calls, ok):
    got, error = toolcall.parse_calls(text)
    assert got == calls
    assert (error is None) == ok, error


# ---- metrics -------------------------------------------------------------------------------------------

def test_metrics_hand_computed():
    refs = [
        ref(1, call("get_weather", city="Paris", days=5)),               # exact, 5.0 vs 5, key order
        ref(2, call("a", x=1), call("b", y=[1, {"z": 2}])),             # reordered calls, nested args
        ref(3, call("a", x=1)),                                         # extra call predicted
        ref(4, call("a", x=1), call("a", x=2)),                         # one predicted call matches at most one
        ref(5, call("a", x="5")),                                       # "5" != 5
        ref(6, as_string=False),                                        # irrelevance, parsed list, no call
        ref(7),                                                         # irrelevance, model calls anyway
        ref(8, call("a", x=1), as_string=False),                        # missing prediction
        ref(9),                                                         # irrelevance, invalid JSON
    ]
    preds = [
        {"id": 1, "output": block({"name": "get_weather", "arguments": {"days": 5.0, "city": "Paris"}})},
        {"id": "2", "output": block(call("b", y=[1.0, {"z": 2}]), call("a", x=1))},  # string id matches int id
        {"id": 3, "output": block(call("a", x=1), call("c"))},
        {"id": 4, "output": block(call("a", x=1), call("a", x=1))},
        {"id": 5, "output": block(call("a", x=5))},
        {"id": 6, "output": "No tool can answer that."},
        {"id": 7, "output": block(call("a", x=1))},
        {"id": 9, "output": "<tool_call>{oops}</tool_call>"},
        {"id": 99, "output": "a prediction with no reference is ignored"},
    ]
    metrics, samples = toolcall.score(preds, refs)
    by_id = {s["id"]: s for s in samples}
    assert [s["id"] for s in samples] == list(range(1, 10))
    # parse fails on 8 (missing) and 9 (invalid)
    assert metrics["parse_rate"] == pytest.approx(7 / 9)
    # names match on 1, 2, 4 (a,a == a,a), 5, 6
    assert metrics["tool_selection_acc"] == pytest.approx(5 / 9)
    # reference calls: 1+2+1+2+1+1 = 8; matched: 1 + 2 + 1 + 1 (x=1 only once) + 0 + 0 = 5
    assert metrics["param_acc"] == pytest.approx(5 / 8)
    # exact on 1, 2, 6
    assert metrics["exact_match"] == pytest.approx(3 / 9)
    # irrelevance rows 6, 7, 9: only 6 abstains and parses
    assert metrics["no_call_acc"] == pytest.approx(1 / 3)
    assert metrics["n"] == 9
    assert by_id[4]["param_acc"] == 0.5 and by_id[4]["tool_selection_acc"] == 1.0
    assert by_id[8]["missing"] and by_id[8]["parse_ok"] is False and by_id[8]["param_acc"] == 0.0
    assert by_id[6]["param_acc"] is None and by_id[1]["no_call_acc"] is None
    assert by_id[2]["calls"] == [call("b", y=[1.0, {"z": 2}]), call("a", x=1)]
    assert set(metrics) == {*toolcall.METRICS, "n"}


def test_value_equality_rules():
    same = toolcall._canon
    assert same({"a": 5, "b": [1, {"c": 2.0}]}) == same({"b": [1.0, {"c": 2}], "a": 5.0})
    assert same(5) != same("5")
    assert same(True) != same(1)
    assert same([1, 2]) != same([2, 1])  # list order is part of the value
    assert same(None) != same(0)


def test_no_irrelevance_rows_gives_null_no_call_acc():
    metrics, _ = toolcall.score([{"id": 1, "output": block(call("f"))}], [ref(1, call("f"))])
    assert metrics["no_call_acc"] is None
    assert metrics["exact_match"] == 1.0


def test_truncated_block_still_earns_param_credit_but_not_exact_match():
    out = block(call("f", x=1)) + '<tool_call>{"name": "g", "arguments": {'
    metrics, _ = toolcall.score([{"id": 1, "output": out}], [ref(1, call("f", x=1))])
    assert metrics["param_acc"] == 1.0
    assert metrics["parse_rate"] == metrics["exact_match"] == metrics["tool_selection_acc"] == 0.0


def test_bad_inputs_are_refused():
    with pytest.raises(ScoreInputError, match="duplicate id"):
        toolcall.score([{"id": 1, "output": ""}, {"id": "1", "output": ""}], [ref(1)])
    with pytest.raises(ScoreInputError, match="reference 3"):
        toolcall.score([], [{"id": 3, "answers": "[{broken"}])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.text(),
    st.sampled_from(["<tool_call>", "</tool_call>", "{", "}", "[", "]", '"name"', '"arguments"', ":", ",", '"f"',
                     "5", "5.0", "```", '{"name": "f", "arguments": {}}', '"{}"', "null", "\n"]),
), max_size=30).map("".join))
def test_toolcall_scorer_never_crashes(text):
    refs = [ref(1, call("f")), ref(2), ref(3, call("f"), call("g", a=1))]
    preds = [{"id": i, "output": text} for i in (1, 2, 3)]
    metrics, samples = toolcall.score(preds, refs)
    for key in toolcall.METRICS:
        assert metrics[key] is None or 0.0 <= metrics[key] <= 1.0
    assert all(isinstance(s["calls"], list) for s in samples)


# ---- ROUGE ---------------------------------------------------------------------------------------------

PAIRS = [
    ("the cat sat on the mat .\nit was happy .", "a cat was sitting on the mat\nthe cat was happy"),
    ("police arrested two men on friday .", "two men were arrested by police"),
    ("stocks fell sharply .\ninvestors worried .\nmarkets closed lower .", "markets closed lower as stocks fell"),
]


def test_rouge_equals_rouge_score_directly():
    from rouge_score import rouge_scorer

    direct = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    refs = [{"id": i, "reference": r} for i, (r, _) in enumerate(PAIRS)]
    preds = [{"id": i, "output": p} for i, (_, p) in enumerate(PAIRS)]
    metrics, samples = rouge.score(preds, refs)
    for (target, prediction), sample in zip(PAIRS, samples):
        expected = direct.score(target, prediction)
        for t in rouge.ROUGE_TYPES:
            assert sample[t] == pytest.approx(100 * expected[t].fmeasure)
    for t in rouge.ROUGE_TYPES:
        mean = sum(s[t] for s in samples) / len(samples)
        assert metrics[t] == pytest.approx(mean)
        assert metrics[f"{t}_low"] <= metrics[t] <= metrics[f"{t}_high"]
    assert samples[0]["rougeLsum"] != samples[0]["rougeL"]  # the newline split did something
    assert metrics["n"] == 3


def test_rouge_missing_prediction_scores_zero_and_is_seeded():
    refs = [{"id": i, "reference": r} for i, (r, _) in enumerate(PAIRS)]
    preds = [{"id": 0, "output": PAIRS[0][0]}, {"id": 1, "output": ""}]
    metrics, samples = rouge.score(preds, refs)
    assert samples[0]["rouge1"] == 100.0
    assert samples[1]["rouge1"] == samples[2]["rouge1"] == 0.0 and samples[2]["missing"]
    assert metrics["rouge1"] == pytest.approx(100 / 3)
    assert rouge.score(preds, refs)[0] == metrics  # same seed, same CI


# ---- CLI -----------------------------------------------------------------------------------------------

def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_cli_toolcall(tmp_path):
    p = write_jsonl(tmp_path / "p.jsonl", [{"id": 1, "output": block(call("f", x=5.0))}, {"id": 2, "output": "no"}])
    r = write_jsonl(tmp_path / "r.jsonl", [ref(1, call("f", x=5)), ref(2)])
    res = CliRunner().invoke(main, ["score", "toolcall", "--predictions", p, "--references", r, "--json",
                                    "--samples", str(tmp_path / "s.jsonl")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out) == {"parse_rate", "tool_selection_acc", "param_acc", "exact_match", "no_call_acc", "n"}
    assert out["exact_match"] == 1.0 and out["n"] == 2
    assert len(load_jsonl(tmp_path / "s.jsonl")) == 2
    table = CliRunner().invoke(main, ["score", "toolcall", "-p", p, "-r", r])
    assert table.exit_code == 0 and "exact_match" in table.output and "1.0000" in table.output


def test_cli_rouge(tmp_path):
    p = write_jsonl(tmp_path / "p.jsonl", [{"id": i, "output": o} for i, (_, o) in enumerate(PAIRS)])
    r = write_jsonl(tmp_path / "r.jsonl", [{"id": i, "reference": t} for i, (t, _) in enumerate(PAIRS)])
    res = CliRunner().invoke(main, ["score", "rouge", "--predictions", p, "--references", r, "--json"])
    assert res.exit_code == 0, res.output
    keys = {f"{t}{s}" for t in ("rouge1", "rouge2", "rougeL", "rougeLsum") for s in ("", "_low", "_high")}
    assert set(json.loads(res.output)) == keys | {"n"}


def test_cli_errors_name_file_and_line(tmp_path):
    r = write_jsonl(tmp_path / "r.jsonl", [ref(1)])
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"id": 1, "output": ""}\n\n{not json\n')
    res = CliRunner().invoke(main, ["score", "toolcall", "-p", str(bad), "-r", r])
    assert res.exit_code == 1 and f"{bad}:3: not valid JSON" in res.output
    res = CliRunner().invoke(main, ["score", "rouge", "-p", str(tmp_path / "absent.jsonl"), "-r", r])
    assert res.exit_code == 1 and "cannot read" in res.output and "Traceback" not in res.output
