"""The isolation under ftstudy's code sandbox: bubblewrap (`bwrap`) plus a cgroup for the whole process tree.

`run_jailed()` starts a program inside a bwrap jail whose only view of the machine is:
- read-only: a Python interpreter (the one ftstudy runs on, or the system's python3 where uid 65534 cannot
  read that one), its standard library and the shared libraries they load (found with `ldd`), and one task
  folder (at /task); nothing else of the host (no /etc, /home, /root, project tree, tool environments, /run
  sockets); the jail's own root is remounted read-only;
- writable: a private tmpfs at /tmp, gone when the jail ends (its pages count against the memory limit);
- its own user (uid/gid 65534 inside; outside it runs as uid 65534 too when ftstudy is root), pid, mount,
  network (only its own loopback: no host address, no abstract unix socket of the host), ipc, uts and cgroup namespaces; `/proc` shows only the jail's processes;
- a fresh session (no terminal injection), `--die-with-parent`, and a clean environment (no secrets);
- no nested user namespace (`--disable-userns`, where the installed bwrap has it: `hardening()` says) and a
  seccomp filter (ftstudy/eval/syscall_filter.py: no ptrace, no new namespaces, mounts, keyrings, bpf,
  perf_event_open, io_uring, personality changes...), as Flatpak runs its apps;
- a cgroup (ftstudy/eval/cgroups.py: v2, or v1 memory + pids) holding every process of the jail: `memory_mb`
  for the whole tree (no swap), at most `max_procs` processes, all killed at the deadline and at the end of
  every run; per process also RLIMIT_AS (a readable MemoryError), RLIMIT_FSIZE and no core files.

Where bwrap, user namespaces, libseccomp or a writable cgroup are missing, `require()` raises `JailUnavailable`
with one line saying what to install or change: code never runs with less. `start_jailed()` starts a jail and
returns at once (ftstudy/eval/sandbox.py runs the program and its tests in two jails side by side).

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryFile() as out:  # doctest: +SKIP
    ...     ran = run_jailed(tempfile.mkdtemp(), ["-c", "import os; print(os.getuid())"], stdout=out)
    ...     _ = out.seek(0); print(ran.returncode, out.read())
    0 b'65534\\n'
"""
from __future__ import annotations

import functools
import os
import re
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ftstudy.eval import cgroups, syscall_filter
from ftstudy.eval.cgroups import Cgroup, CgroupUnavailable
from ftstudy.core import runner
from ftstudy.core.errors import UserError

NOBODY = 65534
_FILE_LIMIT = 256 * 1024 * 1024  # RLIMIT_FSIZE: one file cannot grow past this


class JailUnavailable(UserError):
    """The isolation model-written code needs is missing here; the message says what to install."""


@dataclass
class Jailed:
    returncode: int     # the program's exit status; negative: killed by that signal
    timed_out: bool
    oom: bool           # the cgroup's memory limit killed a process


@functools.lru_cache(maxsize=None)
def python() -> str:
    """The interpreter run inside the jail (standard library only): the one ftstudy runs on, by its real
    path, when uid 65534 can read it; otherwise the system's python3 (a Python under /root is out of reach)."""
    dropping = os.getuid() == 0
    for cand in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        real = os.path.realpath(cand)
        if os.path.exists(real) and (not dropping or others_can_reach(real)):
            return real
    raise JailUnavailable("code execution refused: no Python that uid 65534 can read (install python3 from "
                          "your distribution, e.g. apt-get install python3)")


@functools.lru_cache(maxsize=None)
def python_files() -> tuple[str, ...]:
    """What the interpreter needs, as host paths: itself, its standard library and the libraries they load."""
    py = python()
    rc, out = runner.capture([py, "-I", "-S", "-c", "import os; print(os.path.dirname(os.__file__))"], env=ENV)
    if rc != 0 or not os.path.isabs(out):  # never realpath(""): that is the current folder, bound into the jail
        why = "it did not start or timed out" if rc == -1 else f"exit {rc}, printed {out[:80]!r}"
        raise JailUnavailable(f"code execution refused: {py} could not report its standard library ({why}); install "
                              "python3 from your distribution (e.g. apt-get install python3) or run ftstudy on a "
                              "working Python")
    stdlib = os.path.realpath(out)
    needed = {py, stdlib}
    ldd = shutil.which("ldd")
    if ldd:
        objects = [py] + [str(p) for p in Path(stdlib).glob("lib-dynload/*.so")]
        out = runner.capture([ldd, *objects])[1]
        needed |= set(re.findall(r"(?:=>\s*)?(/\S+\.so[^\s:]*)\s+\(0x", out))
    else:  # no ldd: the usual library folders
        needed |= {p for p in ("/lib", "/lib64", "/usr/lib", "/usr/lib64") if os.path.exists(p)}
    return tuple(sorted(needed))


def others_can_reach(path: str) -> bool:
    """Whether uid 65534 can open `path`: every folder on the way searchable by others, the path readable."""
    parts = Path(path).parts
    for i in range(1, len(parts)):
        if not os.stat(Path(*parts[:i])).st_mode & 0o001:
            return False
    return bool(os.stat(path).st_mode & 0o004)


def bind_args(paths: tuple[str, ...]) -> list[str]:
    """bwrap arguments that show each host path read-only at the same place; a symlink on the way
    (/lib -> usr/lib) is recreated as a symlink so both spellings resolve (pure: tests assert it)."""
    args: list[str] = []
    links: dict[str, str] = {}
    for p in paths:
        real = os.path.realpath(p)
        args += ["--ro-bind", real, real]
        shown = os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))
        if shown != real:  # the path itself is a link (ld-linux-x86-64.so.2): the file there too
            args += ["--ro-bind", real, shown]
        parts = Path(p).parts
        for i in range(2, len(parts)):
            sub = str(Path(*parts[:i]))
            if os.path.islink(sub):
                links[sub] = os.readlink(sub)
    for link, target in sorted(links.items()):
        args += ["--symlink", target, link]
    return args


def bwrap_argv(bwrap: str, task_dir: str | Path, program: list[str], paths: tuple[str, ...], *,
               seccomp_fd: int | None = None, disable_userns: bool = False) -> list[str]:
    """The jail's command line (pure: tests assert it); `seccomp_fd`: an fd holding the BPF filter."""
    harden = (["--unshare-user", "--disable-userns"] if disable_userns else []) + \
        (["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else [])
    return [bwrap, *bind_args(paths), "--ro-bind", str(task_dir), "/task", "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--remount-ro", "/", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            *harden, "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox", "--chdir", "/tmp", *program]


@functools.lru_cache(maxsize=None)
def has_disable_userns(bwrap: str) -> bool:
    """Whether this bwrap has --disable-userns (0.8.0 and later)."""
    return "--disable-userns" in runner.capture([bwrap, "--help"])[1]


def hardening(bwrap: str | None = None) -> dict[str, str]:
    """What the jail adds to its namespaces here, in words (a harness can record it beside its scores): the
    seccomp filter, and whether nested user namespaces are also disabled by bwrap or refused by the filter only
    (an older bwrap: the jail runs without --disable-userns, and this says so)."""
    bwrap = bwrap or shutil.which("bwrap") or "bwrap"
    userns = ("disabled (bwrap --disable-userns) and refused by the seccomp filter" if has_disable_userns(bwrap) else
              "refused by the seccomp filter only: this bwrap has no --disable-userns (0.8.0 and later have it)")
    return {"seccomp": f"{len(syscall_filter.DENIED)} calls refused, clone3 and the new mount API absent, clone "
                       "without namespace flags, 4 socket families (Flatpak's rules)",
            "nested user namespaces": userns}


ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}


def _preexec(cgroup: Cgroup, memory_mb: int) -> None:
    """In the child between fork and exec: join the cgroup, set per-process limits, drop root."""
    cgroup.enter()
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # one process's bomb ends as a readable MemoryError
    resource.setrlimit(resource.RLIMIT_FSIZE, (_FILE_LIMIT, _FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.getuid() == 0:  # outside the jail too, the code is nobody: no root-owned file or process is its own
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


class Running:
    """One started jail. `finish()` waits for it up to a deadline, then kills whatever is left of its tree and
    removes its cgroup, every time."""

    def __init__(self, proc: subprocess.Popen, cgroup: Cgroup):
        self.proc, self.cgroup = proc, cgroup

    def finish(self, timeout_s: float | None) -> Jailed:
        try:
            try:
                self.proc.wait(timeout=timeout_s)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                self.cgroup.kill_all()  # also after a normal end: nothing the code started outlives the run
                self.proc.wait()
            rc = self.proc.returncode
            return Jailed(rc - 256 if rc > 128 else rc, timed_out, self.cgroup.oom())
        finally:
            self.cgroup.remove()


def start_jailed(task_dir: str | Path, py_args: list[str], memory_mb: int = 512, max_procs: int = 32,
                 stdout=None, stderr=None, pass_fds: tuple[int, ...] = ()) -> Running:
    """Start the jail's Python with `py_args` (task_dir is /task inside; `pass_fds` stay open, same numbers) and
    return at once; call `.finish(timeout_s)` on the result."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise JailUnavailable("code execution refused: bubblewrap is not installed "
                              "(apt-get install bubblewrap, or your distribution's bubblewrap package)")
    try:
        bpf = syscall_filter.bpf_program()
    except syscall_filter.FilterUnavailable as exc:
        raise JailUnavailable(f"code execution refused: {exc}") from None
    filter_r, filter_w = os.pipe()  # bwrap reads the filter from this fd, then closes it
    cgroup = None
    try:
        os.write(filter_w, bpf)
        os.close(filter_w)
        filter_w = -1
        argv = bwrap_argv(bwrap, task_dir, [python(), "-I", *py_args], python_files(), seccomp_fd=filter_r,
                          disable_userns=has_disable_userns(bwrap))
        try:
            cgroup = Cgroup(memory_mb, max_procs)
        except CgroupUnavailable as exc:
            raise JailUnavailable(str(exc)) from None
        proc = runner.start(argv, cwd="/", env=ENV, stdout=stdout, stderr=stderr, pass_fds=(*pass_fds, filter_r),
                            preexec=functools.partial(_preexec, cgroup, memory_mb))
        return Running(proc, cgroup)
    except BaseException:
        if cgroup is not None:
            cgroup.remove()
        raise
    finally:
        for fd in (filter_r, filter_w):
            if fd >= 0:
                os.close(fd)


def run_jailed(task_dir: str | Path, py_args: list[str], timeout_s: float = 10, memory_mb: int = 512,
               max_procs: int = 32, stdout=None, stderr=None, pass_fds: tuple[int, ...] = ()) -> Jailed:
    """Run the jail's Python with `py_args` (task_dir is /task inside; `pass_fds` stay open, same numbers);
    kill the whole tree at the deadline."""
    return start_jailed(task_dir, py_args, memory_mb, max_procs, stdout, stderr, pass_fds).finish(timeout_s)


def temporary_folder() -> str:
    """A private folder for one run, named for its owner (cgroups.unique_name); stale ones of dead owners are
    swept first."""
    import tempfile

    cgroups.sweep(Path(tempfile.gettempdir()), cgroups.remove_folder)
    return tempfile.mkdtemp(prefix=cgroups.unique_name() + "-", dir=tempfile.gettempdir())


@functools.lru_cache(maxsize=None)
def _self_check() -> str | None:
    """None when the jail works here, else the one-line reason (probed once per process)."""
    task = temporary_folder()
    os.chmod(task, 0o755)
    try:
        with open(os.path.join(task, "out"), "w+b") as out, open(os.path.join(task, "err"), "w+b") as err:
            probe = "import os, json, re, math, hashlib; print(os.getuid(), os.path.exists('/etc'), os.getpid())"
            res = run_jailed(task, ["-c", probe], timeout_s=30, memory_mb=256, stdout=out, stderr=err)
            out.seek(0)
            err.seek(0)
            got, why = out.read().decode(errors="replace").split(), err.read().decode(errors="replace").strip()
    except JailUnavailable as exc:
        return str(exc)
    except OSError as exc:
        return f"code execution refused: the sandbox could not start ({exc})"
    finally:
        shutil.rmtree(task, ignore_errors=True)
    if res.returncode != 0 or got[:2] != [str(NOBODY), "False"]:
        detail = (why.splitlines() or [f"exit {res.returncode}, output {got}"])[-1]
        return ("code execution refused: bubblewrap failed its self-check (" + detail[:200] + "); it needs user "
                "namespaces (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1)")
    return None


def require() -> None:
    """Raise JailUnavailable (one line: what to install) unless the jail works on this machine."""
    reason = _self_check()
    if reason:
        raise JailUnavailable(reason)
