"""The study's statistics as a whole (families declared in experiments.yaml, Holm/BH within each, the MDE at each
benchmark's item count) and cost per point gained, on constructed per-item results like tests/test_compare.py."""
import json
import math

import pytest
from click.testing import CliRunner

from ftstudy.cli.main import main
from ftstudy.config import registry
from ftstudy.eval import stats
from ftstudy.plan import power
from ftstudy.study import cost, families, report
from tests.test_compare import put

# Benjamini & Hochberg (1995), section 4.1: 15 p-values of a clinical trial; at q = 0.05 their procedure rejects
# the four smallest, Bonferroni (and Holm) only three.
BH_1995 = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
           0.6528, 0.7590, 1.0]


def test_holm_and_bh_match_the_worked_examples():
    assert sum(p <= 0.05 for p in stats.adjust(BH_1995, "bh")) == 4
    assert sum(p <= 0.05 for p in stats.adjust(BH_1995, "holm")) == 3
    # by hand (as R's p.adjust): sorted 0.005, 0.01, 0.03, 0.04; Holm x4, x3, x2, x1 with a running max,
    # BH x4/1, x4/2, x4/3, x4/4 with a running min from the top
    assert stats.adjust([0.01, 0.04, 0.03, 0.005], "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.adjust([0.01, 0.04, 0.03, 0.005], "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert stats.adjust([0.01, 0.04], "none") == [0.01, 0.04]
    # a declared family of 6 with one result so far: the other five count as p = 1
    assert stats.adjust([0.01], "holm", m=6) == pytest.approx([0.06])
    assert stats.adjust([0.01], "bh", m=6) == pytest.approx([0.06])
    with pytest.raises(ValueError, match="holm, bh or none"):
        stats.adjust([0.1], "bonferroni")


def test_mde_matches_a_hand_computation():
    k = 1.959964 + 0.841621  # z[0.975] + z[0.80]
    assert power.mde(60, 0.5)["mde"] == pytest.approx(k * math.sqrt(0.5 / 60), abs=1e-5)       # 0.2557
    at_90 = power.mde(60, 0.9)
    assert at_90["mde"] == pytest.approx(k * math.sqrt(2 * 0.9 * 0.1 / 60), abs=1e-5) and at_90["mde"] > 0.03
    assert power.text(at_90) == "15.3 pts"  # 60 items cannot detect +3 points
    # a 1-10 judge grade: base 5.5 is the middle of [1, 10], the MDE is in grade points
    assert power.mde(80, 5.5, "score10")["mde"] == pytest.approx(9 * k * math.sqrt(0.5 / 80), abs=1e-4)
    # a declared discordance replaces the 2m(1-m) assumption
    assert power.mde(100, 0.5, discordance=0.1)["mde"] == pytest.approx(k * math.sqrt(0.1 / 100), abs=1e-5)
    assert power.mde(None, 0.5) is None


def test_families_are_declared_from_the_registry_before_any_result():
    fams = families.declared()
    exps = registry.experiments()
    for e in exps:
        assert len(fams[f"primary of {e.id}"]) == len(e.primary) * len(e.methods)
    guards = sum(len(e.benchmarks.get("guards", [])) * len(e.methods) for e in exps)
    assert len(fams["guards of the study"]) == guards and guards > 0


def test_a_family_scope_and_bad_statistics_come_from_experiments_yaml(registry_copy):
    path = registry_copy / "experiments.yaml"
    text = path.read_text()
    path.write_text(text.replace("guards: study}", "guards: experiment}"))
    assert families.family("math", "guard") == "guards of math"
    path.write_text(text.replace("adjust: holm", "adjust: sidak"))
    registry._statistics.cache_clear()
    with pytest.raises(registry.RegistryError, match="statistics: adjust: 'sidak'"):
        registry.statistics()


def _pairs(n, both, base_only, ft_only):
    """Per-item 0/1 scores with exactly `both` items right in both, `base_only` only in base, `ft_only` only in ft."""
    base, ft = {}, {}
    for i in range(n):
        kind = 0 if i < both else 1 if i < both + base_only else 2 if i < both + base_only + ft_only else 3
        base[f"{i:03d}"] = float(kind in (0, 1))
        ft[f"{i:03d}"] = float(kind in (0, 2))
    return base, ft


@pytest.fixture
def study(tmp_path):
    res = tmp_path / "results"
    b, f = _pairs(60, 30, 0, 15)                                   # +25 points, every change a fix
    put(res, "classification", "base", "ag_news", b)
    put(res, "classification", "lora", "ag_news", f)
    b, f = _pairs(100, 45, 15, 5)                                  # -10 points: unadjusted p ~ 0.04
    put(res, "classification", "base", "mmlu", b)
    put(res, "classification", "lora", "mmlu", f)
    b, f = _pairs(60, 20, 3, 4)                                    # +1.7 points, CI includes 0
    put(res, "medical", "base", "medqa", b)
    put(res, "medical", "lora", "medqa", f)
    for exp, hw, wall in (("classification", "dgx-spark", 3600.0), ("medical", "h100x8", 1800.0)):
        run = tmp_path / "runs" / exp / f"lora-{hw}-1234abcd"
        run.mkdir(parents=True)
        (run / "train.json").write_text(json.dumps({"experiment": exp, "method": "lora", "hardware": hw, "steps": 3,
                                                    "wall_time_s": wall, "tokens_per_second": 900.0}))
    return tmp_path


def test_compare_shows_adjusted_and_unadjusted_verdicts_and_the_mde(study):
    res = CliRunner().invoke(main, ["compare", "classification", "--results-dir", str(study / "results")])
    assert res.exit_code == 0, res.output
    head, ag, mmlu = [l for l in res.output.splitlines() if l.startswith(("benchmark", "ag_news", "mmlu"))]
    assert "verdict (CI)" in head and "adjusted (family)" in head and "MDE" in head
    assert "holm" in ag and ag.endswith(": significant")
    assert power.text(power.mde(60, 0.5)) in ag                      # the MDE at the measured base, 30/60
    assert "GUARD REGRESSION" in mmlu and mmlu.endswith("not significant")  # the CI excludes 0; 26 guards do not
    assert "guards of the study" in res.output and "primary of classification (3 tests, holm)" in res.output
    out = json.loads(CliRunner().invoke(main, ["compare", "classification", "--results-dir", str(study / "results"),
                                               "--ft", "lora", "--json", "--adjust", "none"]).output)
    guard = next(r for r in out if r["benchmark"] == "mmlu")
    assert guard["significant"] and guard["p_value"] < 0.05 and guard["significant_adjusted"]  # none: raw p
    prim = next(r for r in out if r["benchmark"] == "ag_news")
    assert prim["family_size"] == 3 and prim["mde"]["n"] == 60


def test_the_report_shows_adjusted_verdicts_mde_and_cost_per_point(study):
    data = report.collect(study)
    md = report.markdown(data).replace("\\[", "[").replace("\\]", "]")  # report.md escapes link brackets
    assert "verdict (CI, unadjusted)" in md and "adjusted p (family)" in md and "MDE" in md
    assert "holm" in md and "guards of the study" in md
    rows = {(r["experiment"], r["hardware"]): r for r in data["cost"]}
    spark, h100 = rows["classification", "dgx-spark"], rows["medical", "h100x8"]
    # classification on a Spark: 1 hour for +25 points: 0.04 h per point, one GPU, 0.24 kWh at the rated 240 W
    assert spark["gain"] == pytest.approx(25.0) and spark["hours_per_point"]["value"] == pytest.approx(0.04)
    assert spark["kwh"] == pytest.approx(0.24) and spark["gpu_hours_per_point"]["value"] == pytest.approx(0.04)
    comp = next(r for r in data["rows"] if r["experiment"] == "classification" and r["benchmark"] == "ag_news")
    assert spark["hours_per_point"]["low"] == pytest.approx(1 / (comp["ci_high"] * 100))
    assert spark["hours_per_point"]["high"] == pytest.approx(1 / (comp["ci_low"] * 100))
    # medical on 8 H100s: half an hour, 4 GPU-hours; its gain's CI includes 0, so the cost per point is unbounded
    assert h100["gain_low"] < 0 < h100["gain_high"] and h100["gpu_hours"] == pytest.approx(4.0)
    assert h100["hours_per_point"]["high"] == math.inf and h100["kwh"] is None
    assert "## Cost per point gained" in md and "unbounded]" in md
    assert cost.text(h100["gpu_hours_per_point"]).endswith(", unbounded]")
    page = report.page(data, {})
    assert "Cost per point gained" in page and "adjusted p (family)" in page


def test_plan_shows_each_benchmarks_mde():
    res = CliRunner().invoke(main, ["plan", "medical", "--hardware", "h100"])
    assert res.exit_code == 0, res.output
    assert "minimum detectable effect per benchmark" in res.output
    ifeval = next(l for l in res.output.splitlines() if l.strip().startswith("ifeval"))
    assert "541 items" in ifeval and "tolerance 0.03: not reliably detectable" in ifeval
    out = json.loads(CliRunner().invoke(main, ["plan", "medical", "--hardware", "h100", "--json"]).output)
    assert [r["benchmark"] for r in out["mde"]] == registry.experiment("medical").all_benchmarks
