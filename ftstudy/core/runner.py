"""The one executor. Every external tool (accelerate/axolotl, vllm, transformers serve, lm_eval, bigcode,
bfcl) is started from a list[str] built by a pure function, through `run()`, never with shell=True.

Example:
    >>> from ftstudy.core.runner import run
    >>> run(["python3", "-c", "print('hi')"], quiet=True).returncode
    0
"""
from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ftstudy.core.errors import UserError


class ToolError(UserError, RuntimeError):
    """An external tool failed; the message names the command, exit code and the log to read."""


class Interrupted(UserError, KeyboardInterrupt):
    """A tool was not started because ftstudy is stopping (Ctrl-C or SIGTERM while another thread's tool ran)."""


# The children run() waits on, in every thread: pid -> whether a signal was passed on to it.
_LIVE: dict[int, bool] = {}
_LIVE_LOCK = threading.Lock()
_STOPPING: list[int] = []  # the signal that asked ftstudy to stop, while forwarding_signals() is active


def interrupt_children(signum: int) -> None:
    """Pass `signum` to the process group of every child run() is waiting on, in any thread, and mark each of
    those runs interrupted (Axolotl then keeps its checkpoints and the caller says how to continue)."""
    with _LIVE_LOCK:
        pids = list(_LIVE)
        _LIVE.update(dict.fromkeys(pids, True))
    for pid in pids:
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            pass


@contextlib.contextmanager
def forwarding_signals():
    """On the main thread: while inside, Ctrl-C and SIGTERM go to every running tool (interrupt_children), and
    run() refuses to start a new one (Interrupted). run() does this itself when it runs on the main thread; a
    caller whose tools run in worker threads (the demo's lanes) wraps the wait for them in it."""
    def stop(signum, _frame):
        _STOPPING.append(signum)
        interrupt_children(signum)

    mine = len(_STOPPING)
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        del _STOPPING[mine:]


@dataclass
class Result:
    argv: list[str]
    returncode: int
    tail: list[str]
    interrupted: bool = False


def show(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """The command as a user would paste it into a shell (for --dry-run and logs)."""
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted((env or {}).items()))
    return (prefix + " " if prefix else "") + shlex.join(list(argv))


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    secret_env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    log: str | Path | None = None,
    on_line: Callable[[str], None] | None = None,
    quiet: bool = False,
    tail_lines: int = 40,
) -> Result:
    """Run argv to completion, streaming its output to `log` (appended) and `on_line`.

    `secret_env` (API keys) reaches the child like `env` but is logged as `NAME=<hidden>`, never by value.
    Ctrl-C (SIGINT) or SIGTERM is passed on to the child's whole process group, which is given time to stop
    cleanly (Axolotl saves nothing half-written on a signal), and the result says it was interrupted. From a
    worker thread, that needs the main thread to wait inside forwarding_signals().
    """
    argv = [str(a) for a in argv]
    if _STOPPING:
        raise Interrupted(f"stopping (signal {_STOPPING[0]}): {argv[0]} not started; completed work is kept, "
                          "and a rerun resumes")
    full_env = {**os.environ, **(env or {}), **(secret_env or {})}
    shown_env = {**(env or {}), **{k: "<hidden>" for k in (secret_env or {})}}
    tail: list[str] = []
    log_fh = open(log, "a", buffering=1) if log else None
    try:
        if log_fh:
            log_fh.write(f"$ {show(argv, shown_env)}\n")
        proc = start(argv, stdout=subprocess.PIPE, env=full_env, cwd=cwd, stdin=None, text=True, errors="replace",
                     bufsize=1)
    except FileNotFoundError as exc:
        if log_fh:
            log_fh.close()
        raise ToolError(f"cannot start {argv[0]!r}: {exc.strerror}. Is its environment installed? Try `ftstudy doctor`.") from None
    with _LIVE_LOCK:
        _LIVE[proc.pid] = False
    on_main = threading.current_thread() is threading.main_thread()  # only the main thread may set handlers
    forwarding = forwarding_signals() if on_main else contextlib.nullcontext()
    try:
        with forwarding:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                del tail[:-tail_lines]
                if log_fh:
                    log_fh.write(line + "\n")
                if on_line:
                    on_line(line)
                elif not quiet:
                    print(line, file=sys.stderr)
            proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if log_fh:
            log_fh.close()
        with _LIVE_LOCK:
            interrupted = _LIVE.pop(proc.pid)
    return Result(argv, proc.returncode, tail, interrupted)


def start(argv: Sequence[str], *, stdout=None, stderr=subprocess.STDOUT, env: Mapping[str, str] | None = None,
          cwd: str | Path | None = None, pass_fds: Sequence[int] = (), preexec: Callable[[], None] | None = None,
          stdin=subprocess.DEVNULL, **popen) -> subprocess.Popen:
    """Start a child and return at once; the caller reads, waits for and stops it (`run()` does, and so do the
    model server and the jail). Every child runs in its own process group (stop it with os.killpg) and dies
    with ftstudy. `env`, when given, is the child's whole environment; `preexec` runs in the child just before
    exec; `popen`: more subprocess.Popen arguments (text=True, ...).

    Example:
        >>> proc = start(["python3", "-c", "pass"], stdout=subprocess.DEVNULL)
        >>> proc.wait()
        0
    """
    def before_exec() -> None:
        _die_with_parent()
        if preexec:
            preexec()

    return subprocess.Popen([str(a) for a in argv], stdout=stdout, stderr=stderr, stdin=stdin,
                            env=None if env is None else dict(env), cwd=cwd, pass_fds=tuple(pass_fds),
                            start_new_session=True, preexec_fn=before_exec, **popen)


def capture(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 60) -> tuple[int, str]:
    """Run a short probe and return (exit code, what it printed on stdout, stripped); -1 when it could not start or
    ran past `timeout`. `env`, when given, is the probe's whole environment.

    Example:
        >>> capture(["python3", "-c", "print(42)"])
        (0, '42')
    """
    try:
        proc = start(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True, errors="replace")
    except (OSError, subprocess.SubprocessError):
        return -1, ""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the probe's whole group, not only its first process
        proc.wait()
        return -1, ""
    return proc.returncode, out.strip()


def check(result: Result, what: str, log: str | Path | None = None) -> Result:
    """Raise ToolError with the tail of the output when a tool failed."""
    if result.returncode != 0:
        where = f" Full log: {log}." if log else ""
        last = "\n  ".join(result.tail[-15:])
        raise ToolError(f"{what} failed (exit {result.returncode}).{where}\n  {last}")
    return result


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGHUP if ftstudy dies (even by SIGKILL), so that no tool
    keeps running, and writing, behind a killed run's back (tool_env_scripts/measure.py passes it on to its tree).
    The signals ftstudy stops its tools with get their default action back: an ignored disposition is
    inherited through exec, and ftstudy started with `nohup` (SIGHUP ignored) or `&` from a script (SIGINT
    ignored) would otherwise leave a tool that outlives a killed ftstudy or cannot be stopped cleanly."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):  # libc, not signal.signal: any thread may fork
            libc.signal(int(sig), ctypes.c_void_p(0))  # SIG_DFL
        libc.prctl(1, signal.SIGHUP)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
