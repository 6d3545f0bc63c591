"""Run model-written Python and decide, without being fooled, whether its tests passed.

What it guarantees (each point is a test in tests/test_sandbox.py):
- Isolation (ftstudy/eval/jail.py): the code runs under bubblewrap as uid 65534 in its own user, pid, mount,
  network, ipc and uts namespaces; it sees read-only only the interpreter, its standard library and their
  shared libraries, plus its own task folder; its only writable place is a private tmpfs; `/proc` lists only
  its own processes; no network at all (TCP, UDP, abstract unix sockets), and no host unix socket is in its
  view; a clean environment without secrets. One cgroup holds the whole process tree: `memory_mb` in all,
  at most 32 processes, everything killed at the deadline and after every run, so no double fork or
  `setsid` outlives the check. Where this isolation is missing, `run_code` raises `jail.JailUnavailable`
  (one line: what to install) and runs nothing.
- Scoring: the code is not `__main__` (an `if __name__ == '__main__':` block does not run); "passed" needs
  the process to reach the end of the program *and* of the tests, where the runner writes a per-run random
  marker, which the code never receives, on a channel apart from stdout. Any early end -- `sys.exit(0)`,
  `exit()`, `raise SystemExit`, `os._exit(0)`, a signal to itself, an atexit hook, a replaced `print` or
  `sys.stdout` -- leaves no marker and is "failed". Limit: code written against this runner (reading the
  marker pipe named in its argv) could forge a pass; it cannot reach anything outside the jail by doing so.

Example:
    >>> from ftstudy.eval.sandbox import run_code
    >>> run_code("print(1 + 1)").stdout  # doctest: +SKIP
    '2\\n'
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass

from ftstudy.core.fsio import atomic_write
from ftstudy.eval import jail

_OUTPUT_LIMIT = 64 * 1024  # bytes of each stream kept in the result: enough for a traceback
# Exit codes the runner uses to say how the code ended; chosen far from 0/1/2 that code itself may use.
_EXIT_ASSERT, _EXIT_MEMORY, _EXIT_ERROR, _EXIT_EARLY = 81, 82, 83, 84
EARLY = "the code ended the process before its tests finished"

# The jail's program (/task/runner.py). It keeps its own references to what it needs, so that code that
# replaces builtins, print, sys.stdout or os.write cannot change what the runner does after the code. It
# executes the code as module "solution" (never __main__), then reads the marker (only now: the code could
# not know it) and writes it to the result channel, then ends without running atexit hooks.
_RUNNER = r"""
import os, sys, traceback, builtins
_read, _write, _exit = os.read, os.write, os._exit
_print_exc = traceback.print_exc
_Assertion, _Memory, _Exit = AssertionError, MemoryError, SystemExit
_marker_fd, _result_fd = int(sys.argv[1]), int(sys.argv[2])
_hook_blocked = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn")
def _hook(event, args):  # readable messages for the usual ways; the jail is the boundary
    if event in _hook_blocked:
        raise PermissionError(f"sandbox: starting other programs is blocked ({event})")
    if event.startswith("socket.") and event not in ("socket.__new__", "socket.gethostname"):
        raise PermissionError(f"sandbox: network access is blocked ({event})")
with open("/task/solution.py", encoding="utf-8") as fh:
    source = fh.read()
sys.argv = ["solution.py"]
sys.addaudithook(_hook)
def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
code_ok = False
try:
    exec(compile(source, "/task/solution.py", "exec"),
         {"__name__": "solution", "__file__": "/task/solution.py", "__builtins__": dict(builtins.__dict__)})
    code_ok = True
except _Assertion:
    _flush(); _print_exc(); _flush(); _exit(%d)
except _Memory:
    _flush(); _write(2, b"MemoryError: the sandbox memory limit was reached\n"); _exit(%d)
except _Exit:
    _flush(); _write(2, b"SystemExit: %s\n"); _exit(%d)
except BaseException:
    _flush(); _print_exc(); _flush(); _exit(%d)
if code_ok:
    _flush()
    _write(_result_fd, _read(_marker_fd, 64))
    _exit(0)
""" % (_EXIT_ASSERT, _EXIT_MEMORY, EARLY, _EXIT_EARLY, _EXIT_ERROR)


@dataclass
class ExecResult:
    """How one run ended. status: passed (the tests ran to the end), failed (an assertion, a nonzero exit or
    any early end), timeout, memory (the limit was reached) or error (another exception, a crash, a signal)."""

    passed: bool
    status: str
    stdout: str
    stderr: str
    duration: float


def run_code(code: str, timeout_s: float = 10, memory_mb: int = 512) -> ExecResult:
    """Run `code` as module `solution` in the jail; "passed" only when it ran to its end.

    Example:
        >>> run_code("assert 1 + 1 == 3").status  # doctest: +SKIP
        'failed'
        >>> run_code("while True: pass", timeout_s=1).status  # doctest: +SKIP
        'timeout'
    """
    jail.require()
    root = tempfile.mkdtemp(prefix="ftstudy-sandbox-")
    marker = secrets.token_hex(16).encode()
    marker_r, marker_w = os.pipe()
    result_r, result_w = os.pipe()
    try:
        task = os.path.join(root, "task")
        os.mkdir(task)
        os.chmod(root, 0o711)
        os.chmod(task, 0o755)
        for name, text in (("solution.py", code), ("runner.py", _RUNNER)):
            atomic_write(os.path.join(task, name), text)
            os.chmod(os.path.join(task, name), 0o644)
        os.write(marker_w, marker)
        os.close(marker_w)
        marker_w = -1
        with open(os.path.join(root, "stdout"), "w+b") as out, open(os.path.join(root, "stderr"), "w+b") as err:
            start = time.monotonic()
            ran = jail.run_jailed(task, ["/task/runner.py", str(marker_r), str(result_w)], timeout_s=timeout_s,
                                  memory_mb=memory_mb, stdout=out, stderr=err, pass_fds=(marker_r, result_w))
            duration = time.monotonic() - start
            os.close(result_w)
            result_w = -1
            got = _drain(result_r)
            stdout, stderr = _read(out), _read(err)
    finally:
        for fd in (marker_r, marker_w, result_r, result_w):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(root, ignore_errors=True)
    status = _status(ran, got == marker)
    if status == "memory" and "MemoryError" not in stderr:
        stderr += "\nMemoryError: the sandbox memory limit was reached"
    elif status == "timeout":
        stderr += f"\nTimeout: killed after {timeout_s:g}s"
    elif status == "failed" and ran.returncode == 0:
        stderr += f"\n{EARLY} (it exited without the runner's end marker)"
    return ExecResult(status == "passed", status, stdout, stderr, duration)


def _status(ran: jail.Jailed, marked: bool) -> str:
    if ran.timed_out:
        return "timeout"
    if ran.oom or ran.returncode == _EXIT_MEMORY:
        return "memory"
    if ran.returncode == 0:
        return "passed" if marked else "failed"
    if ran.returncode == _EXIT_ERROR or ran.returncode < 0:  # an exception, or a signal (a crash, SIGXFSZ)
        return "error"
    return "failed"  # an assertion, an early SystemExit, or the code's own nonzero exit


def check_solution(program: str, tests: str, entry_point: str | None = None, timeout_s: float = 10,
                   memory_mb: int = 512) -> ExecResult:
    """HumanEval-style check: the program, then the tests, then `check(entry_point)` when one is named
    (HumanEval's tests define `check(candidate)`; MBPP-style tests are bare asserts, so leave it out).

    Example:
        >>> check_solution("def add(a, b):\\n    return a + b", "def check(f):\\n    assert f(2, 3) == 5", "add").passed  # doctest: +SKIP
        True
    """
    code = f"{program}\n\n{tests}\n"
    if entry_point:
        code += f"\ncheck({entry_point})\n"
    return run_code(code, timeout_s=timeout_s, memory_mb=memory_mb)


def _drain(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 64)
    except BlockingIOError:
        return b""


def _read(fh) -> str:
    fh.seek(0)
    data = fh.read(_OUTPUT_LIMIT + 1)
    text = data[:_OUTPUT_LIMIT].decode("utf-8", errors="replace")
    return text + ("\n[output truncated]" if len(data) > _OUTPUT_LIMIT else "")
