"""Study progress: each stage's ETA and the study's time left, from expected seconds rescaled by measured ones."""
from ftstudy import demo, eta


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
