"""A lock file per run or study folder: two ftstudy processes never write the same place at once."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ftstudy.core.errors import UserError


class Busy(UserError, RuntimeError):
    """Another ftstudy process holds the lock."""


class RunLock:
    """Exclusive, non-blocking lock on `path` (released by the OS if the holder dies, so a killed run never
    leaves a stale lock behind).

    Example:
        >>> import tempfile, pathlib
        >>> with RunLock(pathlib.Path(tempfile.mkdtemp()) / ".lock", what="demo"):
        ...     pass
    """

    def __init__(self, path: Path, what: str, wait: bool = False):
        self.path, self.what, self.wait = Path(path), what, wait
        self.fh = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "another process"
            self.fh.close()
            raise Busy(f"{self.what} is in use by {holder}; wait for it to finish (or stop it) and retry") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()}\n")
        self.fh.flush()
        return self

    def __exit__(self, *exc) -> None:
        if self.fh:
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
