"""Compare on constructed per-sample results with known deltas: CIs that must include / exclude zero,
refusals, identical outputs, guards, the plan's expectation; the notebook API."""
from pathlib import Path

import pytest

from ftstudy.study import comparison
from ftstudy.eval import records


def put(root: Path, exp: str, tag: str, bench: str, scores: dict, outputs: dict | None = None, version=1,
        fingerprint=None, value=None):
    ids = sorted(scores)
    rec = records.record(experiment=exp, tag=tag, model=f"model-{tag}", adapter=None,
                         model_fingerprint=fingerprint or f"fp-{tag}", benchmark=bench, benchmark_version=version,
                         harness="lm-eval", task=bench, metric="acc,none", higher_is_better=True, scale="fraction",
                         limit=None, seed=1, data_dir=None, metrics={}, subset_ids=ids, n=len(ids),
                         value=value if value is not None else sum(scores.values()) / len(scores), settings={})
    samples = [{"id": i, "score": scores[i], "output": (outputs or {}).get(i, f"{tag}-{i}")} for i in ids]
    records.save(root, rec, samples)


def scores(n, p, seed):
    import random

    r = random.Random(seed)
    return {str(i): float(r.random() < p) for i in range(n)}


def test_clear_gain_excludes_zero_and_no_effect_includes_it(tmp_path):
    base = scores(300, 0.3, 1)
    put(tmp_path, "classification", "base", "ag_news", base)
    put(tmp_path, "classification", "ft", "ag_news", {k: 1.0 if i % 10 else v for i, (k, v) in enumerate(base.items())})
    row = comparison.compare("classification", "base", "ft", tmp_path, ["ag_news"])[0]
    assert row["status"] == "ok" and row["verdict"] == "improved (no plan figure)" and row["significant"]
    assert row["ci_low"] > 0 and row["delta"] == pytest.approx(row["ft"] - row["base"])
    ref = row["plan"]["reference"]  # AG News: the plan's measured QLoRA accuracy is what other methods face
    assert ref["value"] == 0.9514 and ref["provenance"] == "plan" and ref["ft_vs_reference"] == pytest.approx(row["ft"] - 0.9514)
    put(tmp_path, "classification", "noise", "ag_news", scores(300, 0.3, 2))
    row = comparison.compare("classification", "base", "noise", tmp_path, ["ag_news"])[0]
    assert row["ci_low"] < 0 < row["ci_high"] and row["verdict"] == "not significant"


def test_different_items_or_versions_are_refused(tmp_path):
    put(tmp_path, "classification", "base", "ag_news", scores(50, 0.5, 1))
    put(tmp_path, "classification", "ft", "ag_news", scores(40, 0.5, 1))
    assert comparison.compare("classification", "base", "ft", tmp_path, ["ag_news"])[0]["status"] == "refused"
    put(tmp_path, "classification", "v2", "ag_news", scores(50, 0.5, 1), version=2)
    row = comparison.compare("classification", "base", "v2", tmp_path, ["ag_news"])[0]
    assert row["status"] == "refused" and "versions" in row["reason"]


def test_identical_outputs_say_adapter_not_applied(tmp_path):
    s = scores(30, 0.5, 3)
    same = {k: "X" for k in s}
    put(tmp_path, "classification", "base", "ag_news", s, same)
    put(tmp_path, "classification", "ft", "ag_news", s, same)
    row = comparison.compare("classification", "base", "ft", tmp_path, ["ag_news"])[0]
    assert row["verdict"] == "adapter probably not applied"


def test_guard_regression_is_flagged(tmp_path):
    put(tmp_path, "classification", "base", "mmlu", {str(i): 1.0 for i in range(40)})
    put(tmp_path, "classification", "ft", "mmlu", {str(i): float(i % 2) for i in range(40)})
    row = [r for r in comparison.compare("classification", "base", "ft", tmp_path) if r["benchmark"] == "mmlu"][0]
    assert row["role"] == "guard" and row["guard_regression"] and "GUARD REGRESSION" in row["verdict"]
    assert "GUARD REGRESSION" in comparison.table([row])


def test_results_never_overwritten_by_another_model(tmp_path):
    put(tmp_path, "classification", "base", "ag_news", scores(10, 0.5, 1), fingerprint="A")
    with pytest.raises(records.ResultConflict):
        put(tmp_path, "classification", "base", "ag_news", scores(10, 0.5, 1), fingerprint="B")


def test_notebook_api(tmp_path):
    import ftstudy

    put(tmp_path, "classification", "base", "ag_news", scores(20, 0.3, 1))
    put(tmp_path, "classification", "ft", "ag_news", scores(20, 0.9, 1))
    df = ftstudy.results(tmp_path)
    assert set(df["tag"]) == {"base", "ft"} and {"experiment", "benchmark", "metric", "value"} <= set(df.columns)
    cmp = ftstudy.compare("classification", root=tmp_path)
    assert "delta" in cmp.columns and len(cmp[cmp["benchmark"] == "ag_news"]) == 1


def test_a_new_model_supersedes_a_tag_without_losing_the_old_result(tmp_path):
    put(tmp_path, "classification", "lora", "ag_news", scores(10, 0.5, 1), fingerprint="dir:old")
    moved = records.supersede(tmp_path, "classification", "lora", ["ag_news"], "dir:new", progress=lambda s: None)
    assert len(moved) == 1 and moved[0].parent.name == "lora-old" and moved[0].exists()
    assert not (tmp_path / "classification" / "lora" / "ag_news.json").exists()
    assert records.tags(tmp_path, "classification") == ["lora"]
    put(tmp_path, "classification", "lora", "ag_news", scores(10, 0.7, 1), fingerprint="dir:new")
    assert records.supersede(tmp_path, "classification", "lora", ["ag_news"], "dir:new") == []
