"""core/fsio: the one temporary-file name (`temporary_for`) that every writer of a file beside its final one
uses, and the sweep that removes what killed writers left (a study run does it under the experiment lock)."""
import os
import subprocess
import sys
import threading

import pytest

from ftstudy.core import fsio
from tests.conftest import FIXTURES, ROOT

# Each writer, killed (SIGKILL) after writing its temporary and before renaming it over the final file.
KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
folder, writer = Path(sys.argv[1]), sys.argv[2]
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
if writer == "atomic_write":
    from ftstudy.core.fsio import atomic_write
    atomic_write(folder / "result.json", "{}")
elif writer == "convert_file":
    from ftstudy.data.stream import convert_file
    convert_file(Path(sys.argv[3]), folder / "train.jsonl", "ag_news", workers=1)
elif writer == "drop_lines":
    from ftstudy.data.decontam.ngrams import drop_lines
    drop_lines(folder / "rows.jsonl", {1})
"""


@pytest.mark.parametrize("writer", ["atomic_write", "convert_file", "drop_lines"])
def test_what_a_killed_writer_leaves_is_swept(tmp_path, writer):
    folder = tmp_path / "prepared" / "exp"
    folder.mkdir(parents=True)
    (folder / "rows.jsonl").write_text('{"a": 1}\n{"a": 2}\n')  # drop_lines rewrites it
    before = set(folder.iterdir())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(folder), writer, str(FIXTURES / "ag_news.jsonl")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == -9, res.stderr  # killed mid-write, as a SIGKILLed prepare or study is
    left = set(folder.iterdir()) - before
    assert len(left) == 1 and next(iter(left)).name.startswith("."), left
    assert fsio.remove_stale_temporaries(tmp_path / "prepared") == list(left)
    assert not any(p.exists() for p in left)


def test_each_writer_names_its_temporary_with_temporary_for(tmp_path):
    from ftstudy.data.stream import convert_file, discard

    res = convert_file(FIXTURES / "ag_news.jsonl", tmp_path / "train.jsonl", "ag_news", workers=1)
    try:
        assert res.tmp == fsio.temporary_for(tmp_path / "train.jsonl") and res.tmp.is_file()
    finally:
        discard(res)
    tmp = fsio.temporary_for(tmp_path / "a.json")
    assert tmp.parent == tmp_path
    assert tmp.name == f".a.json.{os.getpid()}.{threading.get_ident()}.tmp"


def test_sweep_keeps_live_writers_and_unrelated_files(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead_pid = proc.pid  # exited: no writer of that pid is alive
    live = fsio.temporary_for(tmp_path / "live.json")  # this process's own: its writer is alive
    stale = tmp_path / "sub" / live.name.replace(f".{os.getpid()}.", f".{dead_pid}.")
    huge = tmp_path / ".b.json.99999999999999.1.tmp"  # a number no pid can be
    unrelated = [tmp_path / ".gitignore", tmp_path / ".notes.tmp", tmp_path / ".a.json.tmp",
                 tmp_path / f".a.json.{dead_pid}.x.tmp", tmp_path / f"a.json.{dead_pid}.1.tmp"]
    folder_like = tmp_path / f".d.{dead_pid}.1.tmp"  # a directory is never a writer's temporary
    folder_like.mkdir()
    stale.parent.mkdir()
    for p in (live, stale, huge, *unrelated):
        p.write_text("{half")
    assert sorted(fsio.remove_stale_temporaries(tmp_path)) == sorted([stale, huge])
    assert not stale.exists() and not huge.exists() and live.exists() and folder_like.is_dir()
    assert all(p.exists() for p in unrelated)
    assert fsio.remove_stale_temporaries(tmp_path / "missing") == []
