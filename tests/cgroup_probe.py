"""Where the code sandbox makes its cgroups, found from the kernel rather than from ftstudy's code: used by
tests/test_sandbox.py and the attack script tests/benchmarks/sandbox_attacks.py (which loads this file by path, so
it imports nothing from ftstudy: the script measures other revisions of the package)."""
from __future__ import annotations

import os
from pathlib import Path


def cgroup_parents() -> list[Path]:
    """Where the sandbox makes its cgroups: this process's own cgroup (or the hierarchy's root) in v1's
    memory and pids hierarchies, or in the unified v2 one (found from the kernel, not from the code)."""
    lines = [line.split(":", 2) for line in Path("/proc/self/cgroup").read_text().splitlines()]
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    wanted = [("", Path("/sys/fs/cgroup"))] if v2 else [(c, Path("/sys/fs/cgroup") / c) for c in ("memory", "pids")]
    found = []
    for ctrl, mount in wanted:
        own = next(p for _, c, p in lines if (ctrl in c.split(",") if ctrl else c == ""))
        for cand in (mount / own.lstrip("/"), mount):
            probe = cand / f"h30-probe-{os.getpid()}"
            try:
                probe.mkdir()
                probe.rmdir()
                found.append(cand)
                break
            except OSError:
                continue
    return found
