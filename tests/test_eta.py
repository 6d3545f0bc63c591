"""Study progress: each stage's ETA and the study's time left, from expected seconds rescaled by measured ones."""
from ftstudy.study import demo
from ftstudy.study import eta


def test_eta_rescales_by_measured_speed_once_it_means_something():
    clock = eta.Clock({("a", "prepare"): 1, ("a", "train"): 60, ("a", "bench"): 30, ("b", "train"): 60})
    assert clock.start("a", "prepare") == "ETA 1 s · study 2 min 31 s left"
    clock.finish("a", "prepare", seconds=0.05)  # a fast bookkeeping stage does not make training look instant
    assert clock.ratio() == 1.0 and clock.start("a", "train") == "ETA 1 min · study 2 min 30 s left"
    clock.finish("a", "train", seconds=180)      # three times slower than expected: everything left is too
    assert round(clock.ratio(), 1) == 3.0
    assert clock.start("a", "bench") == "ETA 1 min 29 s · study 4 min 26 s left"  # 180.05 s for 61 expected
    clock.skip("b", "train")                     # cached: nothing left for it
    assert clock.left() == clock.ratio() * 30


def test_fmt_is_short():
    assert [eta.fmt(s) for s in (0, 59, 61, 600, 3725)] == ["0 s", "59 s", "1 min 01 s", "10 min", "1 h 02 min"]


def test_demo_expects_every_stage_of_every_run(tmp_path):
    expected = demo.expected_seconds(tmp_path, demo.FULL)
    assert len(expected) == 6 * len(demo.FULL) and all(v >= 0 for v in expected.values())


def test_study_clock_uses_measured_seconds_then_the_planner(tmp_path):
    state = tmp_path / "state" / "classification" / "lora-dgx-spark.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"bench-base": {"status": "done", "seconds": 42.0}}')
    clock = eta.study_clock([("classification", "lora"), ("math", "full")], "dgx-spark", "Qwen/Qwen2.5-7B", tmp_path)
    assert clock.expected[("classification", "lora", "bench-base")] == 42.0           # measured here before
    assert clock.expected[("math", "full", "bench-base")] == eta.OTHER_STAGE_S["bench-base"]
    assert clock.expected[("classification", "lora", "train")] > 60                    # the planner's hours
    assert "study" in clock.start("classification", "lora", "prepare")


def test_full_demo_runs_each_experiment_in_order_in_its_own_lane():
    lanes = demo.lanes_of(demo.FULL)
    assert [[(r.experiment, r.method) for r in lane] for lane in lanes] == [
        [("classification", "lora"), ("classification", "full")], [("tool_use", "full")]]
    seen = []
    demo.tagged(seen.append, "tool_use·full")("[train] running\n\nstep 1/170")
    assert seen == ["[tool_use·full] [train] running\n\n[tool_use·full] step 1/170"]
    clock = eta.Clock({"a": 100.0, "b": 100.0})
    clock.lanes = len(lanes)
    assert clock.left() == 100.0  # two lanes of 100 s each: 100 s left, not 200
