"""One cgroup per sandbox run: a memory limit (no swap) and a process-count limit for the whole process tree,
kill-all, removal. cgroup v2 where its memory and pids controllers can be delegated here, else v1.

Names: `ftstudy-sandbox-<pid>.<start>-<random>`, where <start> is the owner's start time (clock ticks since
boot, /proc/<pid>/stat), so a later process with the same pid (after a kill -9, in another container, after
wrap-around) never meets its predecessor's name. A cgroup or temporary folder left by a killed owner is swept
at the start of a later run (`sweep`): only one with this prefix, whose owner is gone (no process with that pid
and start time) and which is older than STALE_AFTER_S. Cgroups still open at exit are removed then.

Example:
    >>> cg = Cgroup(memory_mb=256, max_procs=16)  # doctest: +SKIP
    >>> cg.kill_all(); cg.remove()                # doctest: +SKIP
"""
from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import signal
import time
from pathlib import Path

from ftstudy.core.errors import UserError

PREFIX = "ftstudy-sandbox-"
STALE_AFTER_S = 300.0  # far longer than one sandbox run lives (its deadline plus a few seconds)
_OWNER = re.compile(r"(\d+)(?:\.(\d+))?-")  # <pid>[.<start>]- ; f4b1a28 wrote <pid>-<n> (no start time)
_open: set["Cgroup"] = set()


class CgroupUnavailable(UserError):
    """No cgroup can be made here to limit a whole process tree."""


class Cgroup:
    """One cgroup for one run: memory (no swap) and process-count limits, kill-all, removal."""

    def __init__(self, memory_mb: int, max_procs: int):
        self.dirs: list[Path] = []
        name = unique_name()
        v2 = _v2_parent()
        if v2 is not None:
            sweep(v2, _remove_stale_cgroup)
            d = v2 / name
            d.mkdir()
            self.dirs = [d]
            _open.add(self)
            _write(d / "memory.max", memory_mb * 1024 * 1024)
            _write(d / "memory.swap.max", 0, optional=True)
            _write(d / "pids.max", max_procs)
            self.v2 = True
            return
        self.v2 = False
        mem, pids = _v1_parent("memory"), _v1_parent("pids")
        if mem is None or pids is None:
            raise CgroupUnavailable("code execution refused: no writable cgroup to limit the memory and processes "
                                  "of the whole sandbox (run ftstudy as root, or delegate a cgroup v2 with the "
                                  "memory and pids controllers to this user)")
        for parent in (mem, pids):
            sweep(parent, _remove_stale_cgroup)
            (parent / name).mkdir()
            self.dirs.append(parent / name)
            _open.add(self)
        _write(self.dirs[0] / "memory.limit_in_bytes", memory_mb * 1024 * 1024)
        _write(self.dirs[0] / "memory.memsw.limit_in_bytes", memory_mb * 1024 * 1024, optional=True)
        _write(self.dirs[1] / "pids.max", max_procs)

    def enter(self) -> None:
        """Move the calling process (the child, between fork and exec) into the cgroup."""
        for d in self.dirs:
            _write(d / "cgroup.procs", os.getpid())

    def oom(self) -> bool:
        if self.v2:
            events = (self.dirs[0] / "memory.events").read_text()
            return int(re.search(r"oom_kill (\d+)", events).group(1)) > 0
        control = (self.dirs[0] / "memory.oom_control").read_text()
        kills = re.search(r"oom_kill (\d+)", control)
        return (int(kills.group(1)) if kills else int((self.dirs[0] / "memory.failcnt").read_text())) > 0

    def kill_all(self, deadline_s: float = 10) -> None:
        """SIGKILL every process in the cgroup until none is left (pids.max bounds how fast they fork)."""
        if self.v2 and (self.dirs[0] / "cgroup.kill").exists():
            _write(self.dirs[0] / "cgroup.kill", 1)
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            pids = [int(p) for d in self.dirs for p in (d / "cgroup.procs").read_text().split()]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        _open.discard(self)
        for d in self.dirs:
            for _ in range(500):  # a killed process leaves the cgroup a moment after it is reaped
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


def start_time(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def unique_name(prefix: str = PREFIX) -> str:
    """`<prefix><pid>.<start>-<random>`: this process's, and no other process's, even one with the same pid."""
    return f"{prefix}{os.getpid()}.{start_time(os.getpid())}-{secrets.token_hex(4)}"


def owner_gone(name: str, prefix: str = PREFIX) -> bool:
    """Whether the process that made `name` is gone: no process with its pid and start time. A name without a
    start time (f4b1a28's `<pid>-<n>`, or its temporary folders' random suffix) is gone when its pid is not
    running, or is this process (which no longer writes such names)."""
    m = _OWNER.match(name[len(prefix):])
    if not m:
        return True  # no owner recorded at all: only the age rule protects it
    pid, start = int(m.group(1)), m.group(2)
    if start is None:
        return pid == os.getpid() or start_time(pid) is None
    return start_time(pid) != start


def sweep(parent: Path, remove, prefix: str = PREFIX, older_than_s: float | None = None) -> list[Path]:
    """Remove (with `remove(path)`) each entry of `parent` named `prefix...` whose owner is gone and which is
    older than `older_than_s` (STALE_AFTER_S by default); returns what it removed."""
    age = STALE_AFTER_S if older_than_s is None else older_than_s
    swept = []
    try:
        entries = [e for e in parent.iterdir() if e.name.startswith(prefix)]
    except OSError:
        return swept
    for entry in entries:
        try:
            old = time.time() - entry.lstat().st_mtime > age
        except OSError:
            continue
        if old and owner_gone(entry.name, prefix):
            remove(entry)
            swept.append(entry)
    return swept


def remove_folder(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _remove_stale_cgroup(d: Path) -> None:
    """A dead owner's cgroup: kill what is left in it (a jail outlives its owner only by a moment), remove it."""
    stale = Cgroup.__new__(Cgroup)
    stale.dirs, stale.v2 = [d], (d / "cgroup.kill").exists() or (d / "memory.max").exists()
    try:
        stale.kill_all(deadline_s=2)
    except OSError:
        pass
    stale.remove()


@atexit.register
def _remove_open() -> None:
    """At exit: nothing of this process's runs stays behind (a kill -9 is swept by the next run instead)."""
    for cg in list(_open):
        try:
            cg.kill_all(deadline_s=2)
        except OSError:
            pass
        cg.remove()


def _write(path: Path, value: object, optional: bool = False) -> None:
    """A cgroup control file: written in place (cgroupfs has no rename; a write is applied whole or refused)."""
    try:
        path.write_text(str(value))
    except OSError:
        if not optional:
            raise


def _own(controller: str) -> str:
    """This process's cgroup path in a hierarchy ('' for v2's unified line)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            return path
    return "/"


def _writable_child_parent(parent: Path) -> bool:
    probe = parent / f"ftstudy-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
        return True
    except OSError:
        return False


def _v2_parent() -> Path | None:
    for mount in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if not os.path.exists(f"{mount}/cgroup.controllers"):
            continue
        parent = Path(mount + _own("")).resolve()
        ctrls = set((parent / "cgroup.controllers").read_text().split())
        if {"memory", "pids"} <= ctrls and _writable_child_parent(parent):
            subtree = set((parent / "cgroup.subtree_control").read_text().split())
            if not {"memory", "pids"} <= subtree:
                _write(parent / "cgroup.subtree_control", "+memory +pids", optional=True)
                subtree = set((parent / "cgroup.subtree_control").read_text().split())
            if {"memory", "pids"} <= subtree:
                return parent
    return None


def _v1_parent(controller: str) -> Path | None:
    mount = Path("/sys/fs/cgroup") / controller
    if not (mount / "cgroup.procs").exists():
        return None
    parent = Path(str(mount) + _own(controller))
    for candidate in (parent, mount):
        if candidate.exists() and _writable_child_parent(candidate):
            return candidate
    return None
