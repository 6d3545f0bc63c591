"""Issues 11 and 30's attack table: each attack on the code sandbox, and whether it worked.

Not a speed benchmark (run_all.py does not run it): it measures the sandbox of a git revision against the one
in this checkout, so the closing note's "before -> after" is reproducible. Each side runs in a process of its
own with its own whole `ftstudy` package (the revision's is `git archive`d to a temporary folder), so the
jail, its cgroups and its filter are the revision's too. Run as root (the attacks that read root's files need
it to mean anything):

    .venv/bin/python tests/benchmarks/sandbox_attacks.py --before f4b1a28
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
WRONG = "def add(a, b):\n    return 0\n"
TAILS = {"sys.exit(0)": "import sys\nsys.exit(0)\n", "exit()": "exit()\n", "os._exit(0)": "import os\nos._exit(0)\n",
         "unittest.main() under __main__": "import unittest\nif __name__ == '__main__':\n    unittest.main()\n",
         "sys.exit(main())": "def main():\n    return 0\nimport sys\nsys.exit(main())\n",
         "raise SystemExit": "raise SystemExit\n"}


def load(tree: str):
    """The sandbox module of the `ftstudy` package in `tree` (this checkout, or a revision's archive)."""
    sys.path.insert(0, tree)
    from ftstudy.eval import sandbox

    assert Path(sandbox.__file__).is_relative_to(tree), sandbox.__file__
    return sandbox


def extract(rev: str) -> str:
    """The revision's `ftstudy` package, unpacked into a temporary folder."""
    tree = tempfile.mkdtemp(prefix="sandbox-attacks-")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "ftstudy"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    return tree


def rows_of(tree: str) -> list[tuple[str, str]]:
    out = subprocess.run([sys.executable, __file__, "--rows", tree], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"the attacks on {tree} failed:\n{out.stderr[-3000:]}")
    return [tuple(r) for r in json.loads(out.stdout.splitlines()[-1])]


def comm_alive(token: str) -> list[int]:
    """Pids of the attack's own escaped process (named by the attack with a unique token)."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "comm").read_text().strip() == token:
                pids.append(int(d.name))
        except OSError:
            pass
    return pids


ENVIRON_CODE = "import os\nprint(open(f'/proc/{os.getppid()}/environ').read())"


def environ_probe(tree: str, unshare: bool) -> str:
    """/proc/<pid>/environ shows a process's environment as it started: so the sandbox is run from a fresh
    process that starts with a token in its environment, as ftstudy does with HF_TOKEN set."""
    argv = [sys.executable, __file__, "--probe-environ", tree] + ([] if unshare else ["--no-unshare"])
    out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "HF_TOKEN": "hf_SECRET_attack"},
                         timeout=120).stdout
    return "read the token" if "hf_SECRET" in out else "no token"


def attacks(sb, tree: str):
    """(name, outcome) for each attack: the outcome says what the attacker got."""
    rows = []
    for tail, code in TAILS.items():
        for style, tests, entry in (("HumanEval", "def check(candidate):\n    assert candidate(2, 3) == 5\n", "add"),
                                    ("MBPP", "assert add(2, 3) == 5\n", None)):
            r = sb.check_solution(WRONG + code, tests, entry)
            rows.append((f"wrong solution + {tail} ({style})", "scored PASSED" if r.passed else f"{r.status}"))

    def run(code, **kw):
        try:
            return sb.run_code(code, **kw)
        except Exception as exc:  # noqa: BLE001 - the new sandbox refuses where the jail is missing
            return type("R", (), {"stdout": "", "stderr": str(exc), "status": "refused", "passed": False})()

    r = run("import os\nprint(os.getuid())")
    rows.append(("uid of the code", f"uid {r.stdout.strip()}"))
    r = run("print(open('/etc/shadow').read()[:5])")
    rows.append(("read /etc/shadow", "read it" if r.stdout.startswith("root:") else "not found"))
    secret = Path(tempfile.mkdtemp()) / "secret.txt"
    secret.write_text("SECRET-42")
    secret.chmod(0o600)
    r = run(f"print(open({str(secret)!r}).read())")
    rows.append(("read a root-only secret file", "read it" if "SECRET-42" in r.stdout else "not found"))
    for where in (REPO / "pwned-by-attack.txt",
                  Path(os.environ.get("FTSTUDY_ENVS_DIR", Path.home() / ".cache/ftstudy/envs")) / "pwned-by-attack.txt"):
        run(f"open({str(where)!r}, 'w').write('x')")
        rows.append((f"write {where.parent.name}/", "wrote it" if where.exists() else "refused"))
        where.unlink(missing_ok=True)
    sock = str(Path(tempfile.mkdtemp()) / "s.sock")
    os.chmod(Path(sock).parent, 0o777)
    for label, family, name in (("connect a host unix socket", socket.AF_UNIX, sock),
                                ("TCP to 127.0.0.1 via ctypes", socket.AF_INET, ("127.0.0.1", 0))):
        with socket.socket(family) as listener:
            listener.bind(name)
            listener.listen()
            if family == socket.AF_UNIX:
                addr = f"(1).to_bytes(2, 'little') + {sock.encode()!r}"
            else:
                port = listener.getsockname()[1]
                addr = f"bytes([2, 0, {port >> 8}, {port & 255}, 127, 0, 0, 1]) + bytes(8)"
            run(LIBC + f"s = libc.socket({int(family)}, 1, 0)\na = {addr}\nprint(libc.connect(s, a, len(a)))")
            listener.setblocking(False)
            try:
                listener.accept()
                rows.append((label, "connected"))
            except BlockingIOError:
                rows.append((label, "no connection"))
    token = f"atk{os.getpid() % 100000}"
    run(LIBC + f"if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        libc.prctl(15, {token.encode()!r}, 0, 0, 0)\n"
        "        import time\n        time.sleep(30)\n    os._exit(0)\nimport time\ntime.sleep(0.5)\n")
    time.sleep(1)
    rows.append(("double fork + setsid outlives the check", "still running" if comm_alive(token) else "killed"))
    for pid in comm_alive(token):
        os.kill(pid, 9)  # the attack's own escaped process, by its id
    r = run(LIBC + "argv = (ctypes.c_char_p * 3)(b'echo', b'EXEC-OK', None)\nif os.fork() == 0:\n"
            "    libc.execv(b'/bin/echo', argv)\n    os._exit(1)\nos.wait()\n")
    rows.append(("start a program via ctypes execv", "started it" if "EXEC-OK" in r.stdout else "nothing to start"))
    victim = subprocess.Popen(["sleep", "60"])
    run(f"import os, signal\nos.kill({victim.pid}, signal.SIGKILL)")
    time.sleep(0.2)
    rows.append(("SIGKILL a host process (stands in for ftstudy)", "killed it" if victim.poll() is not None else "refused"))
    victim.kill()
    victim.wait()
    rows.append(("read /proc/<ppid>/environ (HF_TOKEN)", environ_probe(tree, unshare=True)))
    r = run("import os, time\nfor i in range(4):\n    if os.fork() == 0:\n        b = b'x' * (400 << 20)\n"
            "        print('held', flush=True)\n        time.sleep(3)\n        os._exit(0)\nfor i in range(4):\n    os.wait()\n",
            timeout_s=60, memory_mb=512)
    rows.append(("4 children x 400 MB under a 512 MB limit", f"{r.stdout.count('held')} x 400 MB held ({r.status})"))
    r = run("import os, time\nn = 0\nfor _ in range(200):\n    try:\n        if os.fork() == 0:\n            time.sleep(10)\n"
            "            os._exit(0)\n        n += 1\n    except OSError:\n        break\nprint(n)\n", timeout_s=30)
    rows.append(("fork 200 sleepers", f"{r.stdout.strip() or '?'} started"))
    # Many containers refuse `unshare`; the sandbox before then ran with its audit hook only.
    if hasattr(sb, "_netns_prefix"):
        sb._netns_prefix = lambda: ()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        addr = f"bytes([2, 0, {port >> 8}, {port & 255}, 127, 0, 0, 1]) + bytes(8)"
        run(LIBC + f"s = libc.socket(2, 1, 0)\na = {addr}\nprint(libc.connect(s, a, len(a)))")
        listener.setblocking(False)
        try:
            listener.accept()
            rows.append(("TCP via ctypes, where unshare is refused", "connected"))
        except BlockingIOError:
            rows.append(("TCP via ctypes, where unshare is refused", "no connection"))
    rows.append(("/proc/<ppid>/environ, where unshare is refused", environ_probe(tree, unshare=False)))
    return rows + scoring_attacks(sb) + leftovers_and_hardening(run)


# ---- issue 30: wrong solutions that still passed, leftovers, hardening --------------------------------------
HE_TESTS = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n    assert True\n"
MBPP_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
SCORING = {  # name: (wrong program, tests, entry point)
    "__eq__ always true (HumanEval)": ("class Yes:\n    def __eq__(self, other):\n        return True\n"
                                       "def add(a, b):\n    return Yes()\n", HE_TESTS, "add"),
    "__eq__ always true (MBPP)": ("class Yes:\n    def __eq__(self, other):\n        return True\n"
                                  "def add(a, b):\n    return Yes()\n", MBPP_TESTS, None),
    "sys.settrace jumps over the asserts": (
        "import sys, linecache\ndef add(a, b):\n    return 0\ndef _skip(frame, event, arg):\n    if event == 'line':\n"
        "        line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()\n"
        "        if line.startswith('assert') and line != 'assert True':\n            try:\n"
        "                frame.f_lineno = frame.f_lineno + 1\n            except ValueError:\n                pass\n"
        "    return _skip\nsys.settrace(lambda frame, event, arg: _skip)\n", HE_TESTS, "add"),
    "read the tests under /task, answer from them": (
        "import os, re\n_answers = {}\nfor _root, _dirs, _files in os.walk('/task'):\n    for _f in _files:\n"
        "        try:\n            _text = open(os.path.join(_root, _f)).read()\n        except OSError:\n            continue\n"
        "        for _args, _want in re.findall(r'(?:candidate|add)\\(([^()]*)\\) == (\\S+)', _text):\n            try:\n"
        "                _answers[_args.replace(' ', '')] = int(_want)\n            except ValueError:\n                pass\n"
        "def add(a, b):\n    return _answers.get(f'{a},{b}', 0)\n", HE_TESTS, "add"),
    "shadow abs": ("abs = lambda x: 0\n" + WRONG, "assert abs(add(0.1, 0.2) - 0.3) < 1e-9\n", None),
    "patch math.isclose": ("import math\nmath.isclose = lambda *a, **k: True\n" + WRONG,
                           "assert math.isclose(add(2, 3), 5)\n", None),
    "patch unittest's assertEqual": ("import unittest\nunittest.TestCase.assertEqual = lambda *a, **k: None\n" + WRONG,
                                     "import unittest\nunittest.TestCase().assertEqual(add(2, 3), 5)\n", None),
    "write the end marker (every fd it holds)": (
        WRONG + "import os\n_got = b''\nfor _fd in range(3, 64):\n    try:\n        os.set_blocking(_fd, False)\n"
        "        _got += os.read(_fd, 64)\n    except OSError:\n        pass\nfor _fd in range(3, 64):\n    try:\n"
        "        os.write(_fd, _got)\n    except OSError:\n        pass\nos._exit(0)\n", MBPP_TESTS, None),
}


def scoring_attacks(sb):
    rows = []
    for name, (program, tests, entry) in SCORING.items():
        r = sb.check_solution(program, tests, entry)
        rows.append((f"wrong solution, {name}", "scored PASSED" if r.passed else r.status))
    return rows


def cgroup_parents() -> list[Path]:
    """tests/cgroup_probe.py's, loaded by path (this script imports nothing that pins the package's revision)."""
    spec = importlib.util.spec_from_file_location("cgroup_probe", REPO / "tests" / "cgroup_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    return probe.cgroup_parents()


def leftovers_and_hardening(run):
    """A kill -9'd run's cgroups and folders met by a later process with the same pid; ptrace, userns."""
    pid, old = os.getpid(), time.time() - 3600
    stale = [p / f"ftstudy-sandbox-{pid}-{n}" for p in cgroup_parents() for n in range(300)]
    stale += [Path(tempfile.gettempdir()) / f"ftstudy-sandbox-{pid}.1-deadbeef", Path(tempfile.gettempdir()) / "ftstudy-sandbox-k3j2h1g0"]
    for d in stale:
        d.mkdir(exist_ok=True)
        os.utime(d, (old, old))
    r = run("print('ran')")
    left = [d for d in stale if d.exists()]
    for d in left:
        d.rmdir()
    got = "ran" if r.stdout.strip() == "ran" else "FileExistsError" if "File exists" in r.stderr else r.status
    rows = [("a killed run's cgroups + folders, same pid", f"{got}; {len(stale) - len(left)} of {len(stale)} swept")]
    r = run(LIBC + "print(libc.ptrace(16, 1, 0, 0), os.strerror(ctypes.get_errno()))")
    rows.append(("ptrace its own init (pid 1)", "attached" if r.stdout.startswith("0") else f"refused ({r.stdout.split(' ', 1)[-1].strip()})"))
    r = run(LIBC + "print(libc.unshare(0x10000000), os.strerror(ctypes.get_errno()))")
    rows.append(("create a nested user namespace", "created" if r.stdout.startswith("0") else f"refused ({r.stdout.split(' ', 1)[-1].strip()})"))
    r = run(LIBC + "print(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), os.strerror(ctypes.get_errno()))")
    rows.append(("mount a tmpfs", "mounted" if r.stdout.startswith("0") else f"refused ({r.stdout.split(' ', 1)[-1].strip()})"))
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="f4b1a28", help="git revision of the sandbox before the change")
    ap.add_argument("--rows", help="(internal) print the attacks' rows on the package in this folder, as JSON")
    ap.add_argument("--probe-environ")
    ap.add_argument("--no-unshare", action="store_true")
    args = ap.parse_args()
    if args.probe_environ:
        sb = load(args.probe_environ)
        if args.no_unshare and hasattr(sb, "_netns_prefix"):
            sb._netns_prefix = lambda: ()
        try:
            print(sb.run_code(ENVIRON_CODE).stdout)
        except Exception as exc:  # noqa: BLE001
            print(exc)
        sys.exit(0)
    if args.rows:
        print(json.dumps(attacks(load(args.rows), args.rows)))
        sys.exit(0)
    before, after = rows_of(extract(args.before)), rows_of(str(REPO))
    width = max(len(n) for n, _ in before)
    print(f"| {'attack':<{width}} | before ({args.before}) | after |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for (name, b), (_, a) in zip(before, after):
        print(f"| {name:<{width}} | {b} | {a} |")
