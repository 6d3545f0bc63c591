"""End-to-end tool-use success: calls executed against each row's deterministic tool stubs, so it differs
from exact match where an API would (defaults, coercible types) and agrees where it should (wrong values)."""
import json

import pytest

from ftstudy.eval.scorers import toolcall, toolexec

TOOLS = [{"name": "forecast", "description": "Daily forecast",
          "parameters": {"city": {"type": "str"}, "days": {"type": "int, optional", "default": 3},
                         "metric": {"type": "bool, optional", "default": True}}},
         {"name": "sort_numbers", "parameters": {"numbers": {"type": "List[float]"}}}]


def row(rid, answers):
    return {"id": rid, "query": "q", "tools": json.dumps(TOOLS), "answers": json.dumps(answers)}


def reply(*calls):
    return "".join(f"<tool_call>{json.dumps(c)}</tool_call>" for c in calls)


CASES = [  # (prediction, reference, end-to-end success, exact match)
    ({"name": "forecast", "arguments": {"city": "Oslo"}}, {"name": "forecast", "arguments": {"city": "Oslo", "days": 3}}, 1.0, 0.0),
    ({"name": "forecast", "arguments": {"city": "Oslo", "days": "2"}}, {"name": "forecast", "arguments": {"city": "Oslo", "days": 2}}, 1.0, 0.0),
    ({"name": "forecast", "arguments": {"city": "Oslo", "metric": "false"}}, {"name": "forecast", "arguments": {"city": "Oslo", "metric": False}}, 1.0, 0.0),
    ({"name": "forecast", "arguments": {"city": "Bergen"}}, {"name": "forecast", "arguments": {"city": "Oslo"}}, 0.0, 0.0),
    ({"name": "forecast", "arguments": {"city": "Oslo", "hours": 2}}, {"name": "forecast", "arguments": {"city": "Oslo"}}, 0.0, 0.0),
    ({"name": "forecast", "arguments": {"days": 2}}, {"name": "forecast", "arguments": {"city": "Oslo", "days": 2}}, 0.0, 0.0),
    ({"name": "forecast", "arguments": {"city": 5}}, {"name": "forecast", "arguments": {"city": "5"}}, 0.0, 0.0),
    ({"name": "weather", "arguments": {"city": "Oslo"}}, {"name": "forecast", "arguments": {"city": "Oslo"}}, 0.0, 0.0),
    ({"name": "sort_numbers", "arguments": {"numbers": [3, 1]}}, {"name": "sort_numbers", "arguments": {"numbers": [3, 1]}}, 1.0, 1.0),
]


@pytest.mark.parametrize("pred, ref, e2e, exact", CASES)
def test_end_to_end_executes_rather_than_compares(pred, ref, e2e, exact):
    rows = [row(1, [ref])]
    metrics, samples = toolcall.score([{"id": 1, "output": reply(pred)}], rows)
    assert toolexec.score(samples, rows) == e2e and metrics["exact_match"] == exact
    assert (samples[0]["e2e_error"] is None) == bool(e2e)


def test_parallel_calls_in_any_order_irrelevance_and_broken_replies():
    a = {"name": "forecast", "arguments": {"city": "Oslo"}}
    b = {"name": "forecast", "arguments": {"city": "Rome", "days": 1}}
    rows = [row(1, [a, b]), row(2, []), row(3, []), row(4, [a])]
    preds = [{"id": 1, "output": reply(b, a)}, {"id": 2, "output": "No tool fits."}, {"id": 3, "output": reply(a)},
             {"id": 4, "output": '<tool_call>{"name": "forecast", "arguments": </tool_call>'}]
    _, samples = toolcall.score(preds, rows)
    assert toolexec.score(samples, rows) == 0.5
    assert [s["e2e_success"] for s in samples] == [1.0, 1.0, 0.0, 0.0]
    assert "irrelevance" in samples[2]["e2e_error"] and samples[3]["e2e_error"]


def test_a_reference_its_own_tools_refuse_is_left_out_not_failed():
    good = {"name": "forecast", "arguments": {"city": "Oslo"}}
    rows = [row(1, [good]), row(2, [{"name": "forecast", "arguments": {"days": 2}}])]  # 2: required city missing
    _, samples = toolcall.score([{"id": 1, "output": reply(good)}, {"id": 2, "output": reply(good)}], rows)
    assert toolexec.score(samples, rows) == 1.0
    assert samples[1]["e2e_success"] is None and "reference call fails" in samples[1]["e2e_error"]
