"""Atomic file writes: a reader (or a rerun after a kill) never sees half a file."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, text: str) -> Path:
    """Write `text` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # per writer thread too
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
    """Delete the temporaries `atomic_write` left under `folder` when its process was killed mid-write (SIGKILL,
    or SIGTERM without a handler); a temporary whose writer is still alive here is kept.

    Example:
        >>> import tempfile; d = Path(tempfile.mkdtemp()); _ = (d / ".a.json.999999999.1.tmp").write_text("{")
        >>> [p.name for p in remove_stale_temporaries(d)]
        ['.a.json.999999999.1.tmp']
    """
    gone = []
    for tmp in Path(folder).rglob(".*.tmp") if Path(folder).is_dir() else ():
        parts = tmp.name.split(".")
        if len(parts) >= 5 and parts[-3].isdigit() and not _alive(int(parts[-3])):
            tmp.unlink(missing_ok=True)
            gone.append(tmp)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**22  # another user's process (or a number no pid can be)
    return True


def write_json(path: str | Path, data: Any) -> Path:
    return atomic_write(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
