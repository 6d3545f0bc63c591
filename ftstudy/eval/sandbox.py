"""Run model-written Python and decide, without being fooled, whether its tests passed.

What it guarantees (each point is a test in tests/test_sandbox.py):
- Isolation (ftstudy/eval/jail.py): the code runs under bubblewrap as uid 65534 in its own user, pid, mount,
  network, ipc and uts namespaces, with no nested user namespace and a seccomp filter (no ptrace, mount,
  unshare, keyrings, bpf...); it sees read-only only the interpreter, its standard library and their
  shared libraries, plus its own task folder; its only writable place is a private tmpfs; `/proc` lists only
  its own processes; no network at all (TCP, UDP, abstract unix sockets), and no host unix socket is in its
  view; a clean environment without secrets. One cgroup holds the whole process tree: `memory_mb` in all,
  at most 32 processes, everything killed at the deadline and after every run, so no double fork or
  `setsid` outlives the check. Where this isolation is missing, `run_code` raises `jail.JailUnavailable`
  (one line: what to install) and runs nothing.
- Scoring: the program and its tests run in two jails, side by side
  (tool_env_scripts/sandbox_program.py and sandbox_tests.py). The program is module `solution` (never
  __main__) in its jail, which holds neither the tests nor the run's marker. The tests run in the other jail,
  with their own builtins and imports (shadowing `abs`, patching `math.isclose` or `unittest` in the program
  changes nothing there), calling the program's functions through two pipes; what comes back is decoded into
  plain builtin values (tool_env_scripts/sandbox_wire.py), so an object whose `__eq__` is always true, or a
  `sys.settrace` that skips lines, acts only in the program's own process. "passed" needs the tests'
  process to reach the end of the tests and copy a per-run random marker, which only it holds, to a pipe only
  it holds. Any early end of the program -- `sys.exit(0)`, `exit()`, `os._exit(0)`, a signal to itself, an
  atexit hook, a replaced `print` or `sys.stdout` -- is "failed" ("error" for a signal).
- What changes against HumanEval's reference harness (one namespace): a name the tests use that is one of
  Python's builtins is the tests' own, never the program's; an argument a test passes must be a plain value
  or one of the program's own objects (an object of a class the tests define cannot cross); a mutation of an
  argument by the program is not seen by the tests (each side has its own copy).

Example:
    >>> from ftstudy.eval.sandbox import run_code
    >>> run_code("print(1 + 1)").stdout  # doctest: +SKIP
    '2\\n'
"""
from __future__ import annotations

import os
import secrets
import shutil
import time
from dataclasses import dataclass

from ftstudy.core.bundled import TOOL_SCRIPTS
from ftstudy.core.fsio import atomic_write
from ftstudy.eval import jail

_OUTPUT_LIMIT = 64 * 1024  # bytes of each stream kept in the result: enough for a traceback
# Exit codes of the tests' side, saying how the check ended; chosen far from 0/1/2 that code itself may use.
_EXIT_ASSERT, _EXIT_MEMORY, _EXIT_ERROR, _EXIT_EARLY = 81, 82, 83, 84
EARLY = "the code ended the process before its tests finished"
_SIDES = {"program": ("sandbox_program.py", "sandbox_wire.py"), "tests": ("sandbox_tests.py", "sandbox_wire.py")}


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
    return _run(code, "", timeout_s, memory_mb)


def _run(program: str, tests: str, timeout_s: float, memory_mb: int) -> ExecResult:
    """The program in one jail, the tests in another; only the tests' jail holds the marker and its pipe."""
    jail.require()
    root = jail.temporary_folder()
    marker = secrets.token_hex(16).encode()
    req_r, req_w = os.pipe()        # tests -> program: what to look up or call
    reply_r, reply_w = os.pipe()    # program -> tests: values
    marker_r, marker_w = os.pipe()  # ftstudy -> tests: the marker, read only after the tests ran
    result_r, result_w = os.pipe()  # tests -> ftstudy: the marker back
    fds = [req_r, req_w, reply_r, reply_w, marker_r, marker_w, result_r, result_w]
    try:
        os.chmod(root, 0o711)
        for side, files in _SIDES.items():
            os.mkdir(os.path.join(root, side), 0o755)
            texts = {name: (TOOL_SCRIPTS / name).read_text() for name in files}
            texts["solution.py" if side == "program" else "tests.py"] = program if side == "program" else tests
            for name, text in texts.items():
                atomic_write(os.path.join(root, side, name), text)
                os.chmod(os.path.join(root, side, name), 0o644)
        os.write(marker_w, marker)
        _close(fds, marker_w)
        outs = {name: open(os.path.join(root, name), "w+b") for name in ("p.out", "p.err", "t.out", "t.err")}
        try:
            start = time.monotonic()
            prog = jail.start_jailed(os.path.join(root, "program"), ["/task/sandbox_program.py", str(req_r),
                                     str(reply_w)], memory_mb, stdout=outs["p.out"], stderr=outs["p.err"],
                                     pass_fds=(req_r, reply_w))
            try:
                codes = f"{_EXIT_ASSERT},{_EXIT_MEMORY},{_EXIT_ERROR},{_EXIT_EARLY}"
                tested = jail.start_jailed(os.path.join(root, "tests"), ["/task/sandbox_tests.py", str(req_w),
                                           str(reply_r), str(marker_r), str(result_w), codes], memory_mb,
                                           stdout=outs["t.out"], stderr=outs["t.err"],
                                           pass_fds=(req_w, reply_r, marker_r, result_w))
            except BaseException:
                prog.finish(0)
                raise
            for fd in (req_r, reply_w, req_w, reply_r, marker_r, result_w):  # EOF reaches a side when the other ends
                _close(fds, fd)
            t = tested.finish(timeout_s)
            p = prog.finish(0 if t.timed_out else 2)  # the program's side ends by itself once the tests' side is gone
            duration = time.monotonic() - start
            got = _drain(result_r)
            stdout = _read(outs["p.out"]) + _read(outs["t.out"])
            stderr = _read(outs["p.err"]) + _read(outs["t.err"])
        finally:
            for fh in outs.values():
                fh.close()
    finally:
        for fd in fds:
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(root, ignore_errors=True)
    status = _status(t, p, got == marker)
    if status == "memory" and "MemoryError" not in stderr:
        stderr += "\nMemoryError: the sandbox memory limit was reached"
    elif status == "timeout":
        stderr += f"\nTimeout: killed after {timeout_s:g}s"
    elif status == "failed" and t.returncode in (0, _EXIT_EARLY):
        stderr += f"\n{EARLY} (the tests did not reach their end)"
    return ExecResult(status == "passed", status, stdout, stderr, duration)


def _close(fds: list[int], fd: int) -> None:
    os.close(fd)
    fds[fds.index(fd)] = -1


def _status(tests: jail.Jailed, program: jail.Jailed, marked: bool) -> str:
    if tests.timed_out:
        return "timeout"
    if tests.oom or program.oom or tests.returncode == _EXIT_MEMORY:
        return "memory"
    if tests.returncode == 0:
        return "passed" if marked else "failed"
    if tests.returncode == _EXIT_EARLY:  # the program's process ended: by a signal (a crash) or by itself
        return "error" if program.returncode < 0 and not program.timed_out else "failed"
    if tests.returncode == _EXIT_ERROR or tests.returncode < 0:  # an exception, or a signal (SIGXFSZ)
        return "error"
    return "failed"  # an assertion


def check_solution(program: str, tests: str, entry_point: str | None = None, timeout_s: float = 10,
                   memory_mb: int = 512) -> ExecResult:
    """HumanEval-style check: the program in its jail, the tests in theirs, then `check(entry_point)` when one
    is named (HumanEval's tests define `check(candidate)`; MBPP-style tests are bare asserts, so leave it out).

    Example:
        >>> check_solution("def add(a, b):\\n    return a + b", "def check(f):\\n    assert f(2, 3) == 5", "add").passed  # doctest: +SKIP
        True
    """
    if entry_point:
        tests = f"{tests}\n\ncheck({entry_point})\n"
    return _run(program, tests, timeout_s, memory_mb)


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
