"""The one executor: its children get back the default action of the signals ftstudy stops them with."""
import signal
import sys

from ftstudy.core import runner


def test_a_tool_started_under_nohup_background_still_obeys_hup_int_term():
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGHUP)}
    try:
        lines: list[str] = []
        code = "print(open('/proc/self/status').read().split('SigIgn:')[1].split()[0])"
        res = runner.run([sys.executable, "-c", code], on_line=lines.append, quiet=True)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    assert res.returncode == 0
    ignored = int(lines[-1], 16)
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        assert not ignored & (1 << (sig - 1)), f"the tool inherited an ignored {sig.name}"


WAITS = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.05)"


def test_ctrl_c_reaches_a_tool_run_from_a_worker_thread_and_no_new_tool_starts():
    """The demo's lanes run their tools from worker threads: with the main thread inside forwarding_signals(),
    a Ctrl-C reaches each running tool's process group, its result says interrupted, and a tool a lane would
    start next is refused instead of running behind the user's back."""
    import os
    import threading

    from tests.conftest import wait_until

    lines: list[str] = []
    out: dict = {}

    def lane():
        out["first"] = runner.run([sys.executable, "-c", WAITS], on_line=lines.append, quiet=True)
        try:
            runner.run([sys.executable, "-c", "print('must not run')"], on_line=lines.append, quiet=True)
        except runner.Interrupted as exc:
            out["refused"] = str(exc)

    with runner.forwarding_signals():
        worker = threading.Thread(target=lane)
        worker.start()
        assert wait_until(lambda: "ready" in lines, timeout=60)
        os.kill(os.getpid(), signal.SIGINT)  # what the terminal sends on Ctrl-C
        worker.join(timeout=60)
    assert not worker.is_alive()
    assert out["first"].interrupted and out["first"].returncode != 0
    assert "not started" in out["refused"] and "must not run" not in lines
    assert runner.run([sys.executable, "-c", "print('after')"], quiet=True).returncode == 0  # stopping is over


def test_a_probe_past_its_timeout_is_killed_with_its_children():
    code = ("import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            "time.sleep(600)")
    import subprocess

    before = set(subprocess.run(["pgrep", "-f", "time.sleep\\(600\\)"], capture_output=True, text=True).stdout.split())
    assert runner.capture([sys.executable, "-c", code], timeout=2) == (-1, "")
    from tests.conftest import wait_until

    left = lambda: set(subprocess.run(["pgrep", "-f", "time.sleep\\(600\\)"], capture_output=True,  # noqa: E731
                                      text=True).stdout.split()) - before
    assert wait_until(lambda: not left(), timeout=30), "the probe's child outlived the timeout"
