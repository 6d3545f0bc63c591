"""Run model-written Python in a child process: a time limit (the whole process group is killed), a memory
limit (RLIMIT_AS), no network, and a throw-away working directory that is deleted afterwards.

No network comes in two layers; `network_layers()` says which are active:
1. "netns": the child runs under `unshare -rn` (or `unshare -n` as root), a fresh network namespace with
   only a loopback that is down, so nothing, not even 127.0.0.1, is reachable. This holds for anything
   the code starts, C extensions included. Needs util-linux `unshare` and namespaces allowed by the host.
2. "audit-hook": always on. The child runs `python -I` with a `sys.addaudithook` hook, installed before
   the code runs and impossible to remove from Python, that raises on socket connect/bind/send/DNS events
   and on starting other programs (which would run without the hook). This is the layer that produces the
   readable "network access is blocked" message. On its own it is best-effort: ctypes can go around it.

This is a guard against accidents and sloppy code, not a security boundary for hostile code: run that in
a container or VM as well.

Example:
    >>> from ftstudy.sandbox import run_code
    >>> run_code("print(1 + 1)").stdout
    '2\\n'
"""
from __future__ import annotations

import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

STATUSES = ("passed", "failed", "timeout", "memory", "error")
_OUTPUT_LIMIT = 64 * 1024  # bytes of each stream kept in the result: enough for a traceback
_FILE_LIMIT = 256 * 1024 * 1024  # RLIMIT_FSIZE: a print loop cannot fill the disk
# Exit codes the runner uses to say how the code ended; chosen far from 0/1/2 that code itself may use.
_EXIT_ASSERT, _EXIT_MEMORY, _EXIT_ERROR = 81, 82, 83

# The child's program. It reads the code from solution.py (so tracebacks show the lines), installs the
# audit hook, then runs the code as __main__ and maps the way it ended onto the exit codes above.
_RUNNER = r"""
import sys, traceback
_BLOCKED = ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
            "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.getnameinfo",
            "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.startfile")
def _hook(event, args):
    if event in _BLOCKED:
        what = "starting other programs" if event.startswith(("subprocess", "os.")) else "network access"
        raise PermissionError(f"sandbox: {what} is blocked ({event})")
path = sys.argv[1]
with open(path) as fh:
    source = fh.read()
sys.addaudithook(_hook)
sys.argv = [path]
try:
    exec(compile(source, path, "exec"), {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__})
except SystemExit:
    raise
except AssertionError:
    traceback.print_exc(); sys.exit(%d)
except MemoryError:
    sys.stderr.write("MemoryError: the sandbox memory limit was reached\n"); sys.exit(%d)
except BaseException:
    traceback.print_exc(); sys.exit(%d)
""" % (_EXIT_ASSERT, _EXIT_MEMORY, _EXIT_ERROR)


@dataclass
class ExecResult:
    """How one run ended. status: passed (exit 0), failed (an assertion or a nonzero exit), timeout,
    memory (MemoryError under the limit) or error (any other exception, a crash, a blocked call)."""

    passed: bool
    status: str
    stdout: str
    stderr: str
    duration: float


@functools.lru_cache(maxsize=None)
def _netns_prefix() -> tuple[str, ...]:
    """The `unshare` argv that works on this machine, or () when none does; probed once per process."""
    exe = shutil.which("unshare")
    if not exe:
        return ()
    for flags in ("-rn", "-n"):
        try:
            probe = subprocess.run([exe, flags, "true"], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return (exe, flags)
    return ()


def network_layers() -> list[str]:
    """The no-network layers active here, strongest first.

    Example:
        >>> network_layers()  # doctest: +SKIP
        ['netns', 'audit-hook']
    """
    return (["netns"] if _netns_prefix() else []) + ["audit-hook"]


def run_code(code: str, timeout_s: float = 10, memory_mb: int = 512) -> ExecResult:
    """Run `code` as a script in the sandbox and report how it ended.

    Example:
        >>> run_code("assert 1 + 1 == 3").status
        'failed'
        >>> run_code("while True: pass", timeout_s=1).status
        'timeout'
    """
    root = tempfile.mkdtemp(prefix="ftstudy-sandbox-")
    try:
        work = os.path.join(root, "work")
        os.mkdir(work)
        script = os.path.join(work, "solution.py")
        with open(script, "w", encoding="utf-8") as fh:
            fh.write(code)
        argv = [*_netns_prefix(), sys.executable, "-I", "-c", _RUNNER, script]
        with open(os.path.join(root, "stdout"), "w+b") as out, open(os.path.join(root, "stderr"), "w+b") as err:
            start = time.monotonic()
            status = _execute(argv, work, out, err, timeout_s, memory_mb)
            duration = time.monotonic() - start
            stdout, stderr = _read(out), _read(err)
    finally:
        _remove(root)
    if status == "memory" and "MemoryError" not in stderr:
        stderr += "\nMemoryError: the sandbox memory limit was reached"
    elif status == "timeout":
        stderr += f"\nTimeout: killed after {timeout_s:g}s"
    return ExecResult(status == "passed", status, stdout, stderr, duration)


def check_solution(program: str, tests: str, entry_point: str | None = None, timeout_s: float = 10,
                   memory_mb: int = 512) -> ExecResult:
    """HumanEval-style check: the program, then the tests, then `check(entry_point)` when one is named
    (HumanEval's tests define `check(candidate)`; MBPP-style tests are bare asserts, so leave it out).

    Example:
        >>> check_solution("def add(a, b):\\n    return a + b", "def check(f):\\n    assert f(2, 3) == 5", "add").passed
        True
    """
    code = f"{program}\n\n{tests}\n"
    if entry_point:
        code += f"\ncheck({entry_point})\n"
    return run_code(code, timeout_s=timeout_s, memory_mb=memory_mb)


def _execute(argv, cwd, out, err, timeout_s: float, memory_mb: int) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                            start_new_session=True,  # its own process group, so a kill reaches every child
                            preexec_fn=functools.partial(_limits, memory_mb))
    try:
        proc.wait(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(proc)  # also after a normal exit: children left running in the background die too
    if timed_out:
        return "timeout"
    rc = proc.returncode
    if rc == 0:
        return "passed"
    if rc == _EXIT_MEMORY:
        return "memory"
    if rc == _EXIT_ERROR or rc < 0:  # an exception, or a signal (a crash, SIGXFSZ from the file limit)
        return "error"
    return "failed"  # an assertion, or the code's own nonzero sys.exit()


def _limits(memory_mb: int) -> None:
    """Runs in the child between fork and exec; limits are inherited across the exec into Python."""
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_FSIZE, (_FILE_LIMIT, _FILE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _read(fh) -> str:
    fh.seek(0)
    data = fh.read(_OUTPUT_LIMIT + 1)
    text = data[:_OUTPUT_LIMIT].decode("utf-8", errors="replace")
    return text + ("\n[output truncated]" if len(data) > _OUTPUT_LIMIT else "")


def _remove(root: str) -> None:
    """Delete the temp tree even where the code made files read-only."""

    def unlock(func, path, _exc):
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
        func(path)

    shutil.rmtree(root, onerror=unlock)
