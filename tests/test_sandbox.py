"""The code-execution sandbox: time and memory limits, no network, a temp dir that disappears."""
from __future__ import annotations

import os
import socket
import time

import pytest

from ftstudy import sandbox


def test_passing_solution_passes():
    r = sandbox.check_solution("def add(a, b):\n    return a + b\n",
                               "def check(candidate):\n    assert candidate(2, 3) == 5\n", "add")
    assert r.passed and r.status == "passed" and r.duration > 0


def test_failing_assertion_fails():
    r = sandbox.check_solution("def add(a, b):\n    return a - b\n", "assert add(2, 3) == 5\n")
    assert not r.passed and r.status == "failed"
    assert "AssertionError" in r.stderr and "solution.py" in r.stderr


def test_other_exception_is_an_error():
    r = sandbox.run_code("undefined_name + 1")
    assert r.status == "error" and "NameError" in r.stderr


def test_infinite_loop_is_killed():
    r = sandbox.run_code("while True:\n    pass\n", timeout_s=1)
    assert r.status == "timeout" and not r.passed
    assert r.duration < 5


def test_children_are_killed_with_the_group():
    # the code forks a sleeper that prints its pid, then loops; the timeout must take the sleeper too
    code = "import os, time\nif os.fork() == 0:\n    print(os.getpid(), flush=True)\n    time.sleep(60)\nwhile True: pass\n"
    r = sandbox.run_code(code, timeout_s=3)  # long enough for the fork to happen on a loaded machine
    assert r.status == "timeout"
    pid = int(r.stdout.split()[0])
    state = "?"
    for _ in range(50):  # SIGKILL is delivered asynchronously: give the kernel a moment
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            state = "gone"
        if state in ("Z", "X", "gone"):
            break
        time.sleep(0.1)
    assert state in ("Z", "X", "gone"), f"the forked child survived the timeout (state {state})"


@pytest.mark.parametrize("code", [
    "x = bytearray(4 * 1024 ** 3)",
    "chunks = []\nwhile True:\n    chunks.append(' ' * 10 ** 7)",
])
def test_memory_bomb_reports_memory(code):
    r = sandbox.run_code(code, timeout_s=10, memory_mb=256)
    assert r.status == "memory" and "MemoryError" in r.stderr


def test_network_is_blocked():
    with socket.socket() as listener:  # a real listener on this machine: connecting would succeed unsandboxed
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
        r = sandbox.run_code(code, timeout_s=10)
    assert not r.passed and r.status in ("failed", "error")
    assert "connected" not in r.stdout
    assert "network" in r.stderr.lower()


def test_network_namespace_layer():
    """Where `unshare` works, the code runs in a fresh network namespace: only a loopback, so nothing is
    reachable even for code that got around the audit hook (ctypes could)."""
    if "netns" not in sandbox.network_layers():
        pytest.skip("no usable `unshare` here; only the audit-hook layer is active")
    r = sandbox.run_code("import socket\nprint(sorted(name for _, name in socket.if_nameindex()))")
    assert r.passed and r.stdout.strip() == "['lo']", r.stderr


def test_starting_programs_is_blocked():
    r = sandbox.run_code("import subprocess\nsubprocess.run(['true'])")
    assert r.status == "error" and "blocked" in r.stderr


def test_temp_dir_is_gone_afterwards():
    r = sandbox.run_code("import os\nopen('f.txt', 'w').write('x')\nos.makedirs('d/e')\nos.chmod('d', 0o500)\n"
                         "print(os.getcwd())")
    assert r.passed, r.stderr
    workdir = r.stdout.strip()
    assert "ftstudy-sandbox-" in workdir and not os.path.exists(os.path.dirname(workdir))


def test_temp_dir_is_gone_after_timeout():
    r = sandbox.run_code("import os\nprint(os.getcwd(), flush=True)\nwhile True: pass", timeout_s=1)
    assert r.status == "timeout" and not os.path.exists(os.path.dirname(r.stdout.strip()))
