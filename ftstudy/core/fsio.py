"""Atomic file writes: a reader (or a rerun after a kill) never sees half a file."""
from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

# `.{name}.{pid}.{thread id}.tmp`: the one name every writer of a file beside its final one uses (temporary_for)
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.(\d+)\.tmp$")


def temporary_for(path: str | Path) -> Path:
    """The temporary file beside `path` that this process and thread write before renaming it over `path`.
    Its name carries the writer's pid, so `remove_stale_temporaries` can tell a killed writer's from a live one's.

    Example:
        >>> temporary_for("/d/a.json") == Path(f"/d/.a.json.{os.getpid()}.{threading.get_ident()}.tmp")
        True
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def atomic_write(path: str | Path, text: str) -> Path:
    """Write `text` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_for(path)  # per writer thread too
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries (`temporary_for`) left under `folder` by writers killed mid-write (SIGKILL, or
    SIGTERM without a handler); a temporary whose writer is still alive here is kept, and so is any file not
    named by `temporary_for`.

    Example:
        >>> import tempfile; d = Path(tempfile.mkdtemp()); _ = (d / ".a.json.999999999.1.tmp").write_text("{")
        >>> [p.name for p in remove_stale_temporaries(d)]
        ['.a.json.999999999.1.tmp']
    """
    gone = []
    for tmp in Path(folder).rglob(".*.tmp") if Path(folder).is_dir() else ():
        m = _TEMPORARY.match(tmp.name)
        if m and tmp.is_file() and not _alive(int(m.group(1))):
            tmp.unlink(missing_ok=True)
            gone.append(tmp)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):  # no such process, or a number no pid can be
        return False
    except PermissionError:  # another user's process
        return True
    return True


def write_json(path: str | Path, data: Any) -> Path:
    return atomic_write(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
