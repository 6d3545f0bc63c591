"""BFCL through the real bfcl-eval (the bfcl environment): the tiny model served by `transformers serve` answers one
item of each non-live category, and BFCL's own scoring of its ground truth scores 1.0 while wrong answers score 0.0."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ftstudy.config import registry
from ftstudy.core import tool_envs as envs
from ftstudy.eval.harness import BenchContext, bfcl, pick_subset
from tests.conftest import CANARY

pytestmark = pytest.mark.tools
BENCH = registry.benchmark("bfcl")
CATS = bfcl.categories(BENCH)
HANDLER_DIR = "Qwen_Qwen3-8B-FC"  # where BFCL keeps the handler's answers: result/<registry name, / as _>/non_live/
OMIT = object()


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def first(choices: list, required: bool = False):
    """The value BFCL's possible answer accepts first: nothing when it accepts leaving an optional argument out ("",
    and the function may not even declare it), else its first value, nested dicts resolved the same way."""
    if "" in choices and not required:
        return OMIT
    return resolve(next(c for c in choices if c != ""))


def resolve(value):
    if isinstance(value, dict):
        return {k: v for k, v in ((k, first(c)) for k, c in value.items()) if v is not OMIT}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def source(value, spec: dict, lang: str) -> str:
    """A Java or JavaScript argument as source text, which is how BFCL's checker wants those languages' values."""
    kind, inner = spec.get("type"), (spec.get("items") or {}).get("type")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # a string, or a collection the item gives as a variable's name
        return value
    if lang == "java" and kind in ("ArrayList", "Array"):
        # ArrayList elements are Java literals; Array elements of a declared type are bare (BFCL's two parsers)
        quote = kind == "ArrayList" and inner != "char" or inner is None
        items = [(f"'{v}'" if inner == "char" else f'"{v}"') if isinstance(v, str) and (quote or inner == "char")
                 else source(v, {"type": inner}, lang) for v in value]
        if kind == "Array":
            return f"new {inner or 'Object'}[]{{{', '.join(items)}}}"
        return f"new ArrayList<>(Arrays.asList({', '.join(items)}))" if items else "new ArrayList<>()"
    if lang == "java" and kind == "HashMap":
        puts = " ".join(f'put("{k}", {json.dumps(v) if isinstance(v, str) else source(v, {}, lang)});'
                        for k, v in value.items())
        return f"new HashMap<String, String>() {{{{ {puts} }}}}"
    if lang == "javascript" and kind == "array":
        return "[" + ", ".join(f"'{v}'" if isinstance(v, str) else source(v, {}, lang) for v in value) + "]"
    if lang == "javascript" and kind == "dict":
        return "{" + ", ".join(f"'{k}': " + (f"'{v}'" if isinstance(v, str) else source(v, {"type": "array" if
                isinstance(v, list) else "dict" if isinstance(v, dict) else None}, lang)) for k, v in value.items()) + "}"
    suffix = {("java", "long"): "L", ("java", "float"): "f", ("javascript", "Bigint"): "n"}.get((lang, kind), "")
    return f"{value}{suffix}"


def tool_calls(calls: list[dict], functions: list[dict] | None = None, lang: str = "python") -> str:
    """Calls written as the Qwen FC handler's model writes them (Java and JavaScript values as source text)."""
    specs = {f["name"]: f["parameters"] for f in functions or []}
    out = []
    for call in calls:
        for name, args in call.items():
            spec = specs.get(name, {})
            chosen = {k: v for k, v in ((k, first(c, k in spec.get("required", ()))) for k, c in args.items())
                      if v is not OMIT}
            if lang != "python":
                chosen = {k: source(v, spec["properties"].get(k, {}), lang) for k, v in chosen.items()}
            out.append("<tool_call>\n" + json.dumps({"name": name, "arguments": chosen}) + "\n</tool_call>")
    return "\n".join(out)


def plant(root: Path, answers: dict[str, list[dict]]) -> None:
    """Answer files in the shape `bfcl generate` writes (one {"id", "result"} line per item)."""
    folder = root / "result" / HANDLER_DIR / "non_live"
    folder.mkdir(parents=True, exist_ok=True)
    for cat, rows in answers.items():
        (folder / f"BFCL_v4_{cat}_result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))


def known_answers(data: Path, right: bool, ids: dict[str, list[str]] | None = None) -> dict[str, list[dict]]:
    """Each item's answer: BFCL's ground truth (right) or a call no item wants; for irrelevance, no call (right) or
    a call of the item's first function."""
    out = {}
    for cat in CATS:
        items = [r for r in jsonl(data / f"BFCL_v4_{cat}.json") if ids is None or r["id"] in ids[cat]]
        if "irrelevance" in cat:
            wrong = lambda r: tool_calls([{r["function"][0]["name"]: {}}])
            out[cat] = [{"id": r["id"], "result": "I cannot do that with these tools." if right else wrong(r)} for r in items]
            continue
        truth = {t["id"]: t["ground_truth"] for t in jsonl(data / "possible_answer" / f"BFCL_v4_{cat}.json")}
        lang = {"simple_java": "java", "simple_javascript": "javascript"}.get(cat, "python")
        out[cat] = [{"id": r["id"], "result": tool_calls(truth[r["id"]], r["function"], lang) if right
                     else tool_calls([{"no_such_function": {}}])} for r in items]
    return out


def bfcl_table(root: Path) -> dict[str, str]:
    (row,) = csv.DictReader((root / "score" / "data_non_live.csv").open())
    return row


def percent(cell: str) -> float:
    return float(cell.rstrip("%")) / 100


def unweighted(metrics: dict) -> float:
    """BFCL's non-live AST summary from its category accuracies."""
    acc = lambda c: metrics[f"{c}.accuracy"]
    simple = (acc("simple_python") + acc("simple_java") + acc("simple_javascript")) / 3
    return (simple + acc("multiple") + acc("parallel") + acc("parallel_multiple")) / 4


# BFCL's checker reads the elements of a Java ArrayList<any> as strings, while these two items' ground truth holds
# ints and booleans there: no answer can match them, so BFCL's own ground truth scores 98/100 on simple_java.
UNREACHABLE = {"simple_java_36", "simple_java_65"}


@pytest.mark.parametrize("right", [True, False], ids=["ground-truth", "wrong"])
def test_bfcl_scores_its_ground_truth_1_and_wrong_answers_0(tmp_path, right):
    answers = known_answers(bfcl.data_dir(), right)
    assert {c: len(v) for c, v in answers.items()} == {
        "simple_python": 400, "simple_java": 100, "simple_javascript": 50, "multiple": 200, "parallel": 200,
        "parallel_multiple": 200, "irrelevance": 240}
    if right:  # BFCL's partial evaluation (the --limit path), of every item an answer can get right
        answers = {c: [r for r in rows if r["id"] not in UNREACHABLE] for c, rows in answers.items()}
    plant(tmp_path, answers)  # wrong: BFCL's full evaluation, which refuses a missing item
    out = bfcl.score(bfcl.evaluate_argv(envs.bin_path("bfcl", "bfcl"), CATS, partial=right), tmp_path, CATS)
    want = 1.0 if right else 0.0
    assert out.metrics["non_live_ast"] == want == percent(bfcl_table(tmp_path)["AST Summary"])
    assert out.metrics["irrelevance"] == want and all(out.metrics[f"{c}.accuracy"] == want for c in CATS)
    assert len(out.samples) == 1390 - 2 * right and {s["correct"] for s in out.samples} == {int(right)}


def test_bfcl_on_the_tiny_model_resumes_its_own_answers_only(served, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)  # bfcl inherits the environment: a judge key must land nowhere
    ctx = BenchContext("tool_use", str(tiny_model), out_dir=tmp_path, server_url=served, limit=1, seed=3)
    data = bfcl.data_dir()
    ids = {c: pick_subset(bfcl.item_ids(data, c), 1, 3) for c in CATS}
    right = known_answers(data, True, ids)
    plant(ctx.work_dir("bfcl"), right)  # where f4b1a28 kept every model's answers: to BFCL, another model's
    # An earlier, killed run of this model left, in its own folder, one answer and one request that failed.
    own, failed = right["parallel"][0], {"id": ids["multiple"][0], "result": "Error during inference: Connection error."}
    plant(bfcl.project_root(ctx, BENCH, sorted(i for v in ids.values() for i in v)), {"parallel": [own], "multiple": [failed]})
    out = bfcl.run(ctx, BENCH)
    root = Path(out.settings["bfcl_project_root"])
    assert root.parent == ctx.work_dir("bfcl") and "--run-ids" in ctx.commands[-2] and "--partial-eval" in ctx.commands[-1]
    assert sorted(s["id"] for s in out.samples) == out.subset_ids == sorted(i for v in ids.values() for i in v)
    planted = {r["id"]: r["result"] for rows in right.values() for r in rows}
    outputs = {s["id"]: s["output"] for s in out.samples}
    assert outputs[own["id"]] == own["result"]  # resumed, not regenerated
    assert not outputs[failed["id"]].startswith("Error")  # asked again
    assert out.settings["retried_failed_requests"] == 1 and out.settings["failed_requests"] == 0
    assert all(outputs[i] != planted[i] for i in outputs if i != own["id"])  # the tiny model's answers
    table = bfcl_table(root)  # the headline is BFCL's own number, from BFCL's own table
    assert out.metrics["non_live_ast"] == percent(table["AST Summary"]) == pytest.approx(unweighted(out.metrics), abs=5e-5)
    assert out.metrics["irrelevance"] == percent(table["Irrelevance Detection"])
    assert out.metrics["parallel.accuracy"] == 1.0 and out.metrics["non_live_ast"] >= 0.25
    ast = [s["score"] for s in out.samples if s["score"] is not None]
    assert len(ast) == 6 and sum(ast) / len(ast) == pytest.approx(out.metrics["non_live_ast"], abs=5e-5)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 20 and [p for p in written if CANARY.encode() in p.read_bytes()] == []


def test_bfcl_preflight(tiny_model, tmp_path, monkeypatch):
    ctx = BenchContext("tool_use", str(tiny_model), out_dir=tmp_path)
    assert bfcl.preflight(ctx, BENCH) == []
    problems = bfcl.preflight(ctx, {**BENCH, "task": "simple_python,simple_cobol"})
    assert len(problems) == 1 and "simple_cobol" in problems[0] and "\n" not in problems[0]
    ctx.adapter = str(tmp_path)
    assert any("merge" in p for p in bfcl.preflight(ctx, BENCH))
    monkeypatch.setenv("FTSTUDY_BFCL_ENV", str(tmp_path / "nowhere"))
    (problem,) = bfcl.preflight(BenchContext("tool_use", str(tiny_model)), BENCH)
    assert "ftstudy setup bfcl" in problem and "\n" not in problem


def test_bfcl_finds_a_hub_models_local_folder(tmp_path, monkeypatch):
    """BFCL names the model by a folder: a hub id becomes its snapshot in the Hugging Face cache (offline here)."""
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert bfcl.hub_folder("org/tiny", tmp_path / "log") == str(snapshot)
