"""Issue 11's attack table: each attack on the code sandbox, and whether it worked.

Not a speed benchmark (run_all.py does not run it): it measures the sandbox of a git revision against the one
in this checkout, so the closing note's "before -> after" is reproducible. Run as root (the attacks that read
root's files need it to mean anything):

    .venv/bin/python tests/benchmarks/sandbox_attacks.py --before 977abd7
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
WRONG = "def add(a, b):\n    return 0\n"
TAILS = {"sys.exit(0)": "import sys\nsys.exit(0)\n", "exit()": "exit()\n", "os._exit(0)": "import os\nos._exit(0)\n",
         "unittest.main() under __main__": "import unittest\nif __name__ == '__main__':\n    unittest.main()\n",
         "sys.exit(main())": "def main():\n    return 0\nimport sys\nsys.exit(main())\n",
         "raise SystemExit": "raise SystemExit\n"}


def load(rev: str | None):
    """The sandbox module at a git revision (it imports only the standard library), or this checkout's."""
    if rev is None:
        from ftstudy.eval import sandbox

        return sandbox
    src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:ftstudy/eval/sandbox.py"], capture_output=True,
                         text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "sandbox_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("sandbox_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["sandbox_before"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


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


def environ_probe(rev: str | None, unshare: bool) -> str:
    """/proc/<pid>/environ shows a process's environment as it started: so the sandbox is run from a fresh
    process that starts with a token in its environment, as ftstudy does with HF_TOKEN set."""
    argv = [sys.executable, __file__, "--probe-environ", rev or "current"] + ([] if unshare else ["--no-unshare"])
    out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "HF_TOKEN": "hf_SECRET_attack"},
                         timeout=120).stdout
    return "read the token" if "hf_SECRET" in out else "no token"


def attacks(sb, rev: str | None = None):
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
    rows.append(("read /proc/<ppid>/environ (HF_TOKEN)", environ_probe(rev, unshare=True)))
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
    rows.append(("/proc/<ppid>/environ, where unshare is refused", environ_probe(rev, unshare=False)))
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="977abd7", help="git revision of the sandbox before the change")
    ap.add_argument("--probe-environ")
    ap.add_argument("--no-unshare", action="store_true")
    args = ap.parse_args()
    if args.probe_environ:
        sb = load(None if args.probe_environ == "current" else args.probe_environ)
        if args.no_unshare and hasattr(sb, "_netns_prefix"):
            sb._netns_prefix = lambda: ()
        try:
            print(sb.run_code(ENVIRON_CODE).stdout)
        except Exception as exc:  # noqa: BLE001
            print(exc)
        sys.exit(0)
    before, after = attacks(load(args.before), args.before), attacks(load(None))
    width = max(len(n) for n, _ in before)
    print(f"| {'attack':<{width}} | before ({args.before}) | after |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for (name, b), (_, a) in zip(before, after):
        print(f"| {name:<{width}} | {b} | {a} |")
