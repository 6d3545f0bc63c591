"""Two runs, one study (issue 11): the demo takes its lock before any work; every output of a study is under
its root, never in the current folder."""
from __future__ import annotations

import subprocess
import sys
import time

from ftstudy.config import gen
from ftstudy.train import train

HOLD = ("import sys, time\nfrom pathlib import Path\nfrom ftstudy.core.file_locks import RunLock\n"
        "with RunLock(Path(sys.argv[1]) / 'state' / '.demo.lock', what='demo'):\n"
        "    print('holding', flush=True)\n    time.sleep(120)\n")


def test_a_second_demo_on_the_same_folder_refuses_before_any_work(tmp_path):
    out, cwd = tmp_path / "study", tmp_path / "cwd"
    cwd.mkdir()
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "holding"  # the first run holds the study's lock
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "ftstudy", "demo", "--quick", "--out", str(out)], cwd=cwd,
                                capture_output=True, text=True, timeout=120)
        took = time.monotonic() - started
    finally:
        first.kill()
        first.wait()
    assert second.returncode != 0 and "Traceback" not in second.stderr
    lines = [line for line in (second.stdout + second.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "in use by pid" in lines[0], lines
    assert sorted(p.name for p in out.iterdir()) == ["state"]  # no tiny model, nothing else built
    assert list(cwd.iterdir()) == []  # nothing written outside --out
    print(f"second demo refused in {took:.1f} s")


def test_axolotl_reads_and_caches_under_the_study_root(tmp_path):
    cfg = {"datasets": [{"path": f"{gen.PREPARED_DIR}/classification/ag_news.jsonl", "type": "alpaca"},
                        {"path": "org/hub-dataset", "type": "alpaca"}],
           "dataset_prepared_path": "last_run_prepared", "base_model": "x"}
    folder = tmp_path / "runs" / "r1"
    got = train.launch_config(cfg, folder, tmp_path)
    assert got["datasets"][0]["path"] == str(tmp_path / gen.PREPARED_DIR / "classification" / "ag_news.jsonl")
    assert got["datasets"][1]["path"] == "org/hub-dataset"  # a hub id is left alone
    assert got["dataset_prepared_path"] == str(folder / "last_run_prepared") and got["output_dir"] == str(folder)
    assert cfg["dataset_prepared_path"] == "last_run_prepared"  # the asked config (and its run id) is unchanged
