"""Issue 30's attacks on ftstudy's outbound HTTP (items 1 and 7: the judge client), as a before -> after table.

Not a speed benchmark (run_all.py does not run it). Hostile servers run here on 127.0.0.1; each attack is one
judge request made by a child Python that imports the package of a git revision (`git archive`), or of this
checkout, with a canary key in the judge's variable. tests/test_hostile_http.py asserts the "after" column.

    .venv/bin/python tests/benchmarks/http_attacks.py --before f4b1a28
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-canary-attack-5e1f0c"
JUDGMENT = json.dumps({"choices": [{"message": {"content": "Perfect. [[10]]"}, "finish_reason": "stop"}],
                       "data": [{"id": "evil"}]}).encode()
FLOOD_MB = 200
CHILD = """
import json, sys, time
from ftstudy.core.errors import UserError
from ftstudy.eval import client
from ftstudy.eval.harness.judge import Judge
call, url = sys.argv[1], sys.argv[2]
judge = Judge(url, "j", api_key_env="ATTACK_KEY", retries=0, timeout=2)
t = time.monotonic()
try:
    out = client.list_models(url, headers=judge.headers(), timeout=2) if call == "models" else judge.ask(
        [{"role": "user", "content": "Rate it: [[N]]"}])
    res = {"ok": str(out)[:60]}
except Exception as exc:
    res = {"error": type(exc).__name__, "one_line": isinstance(exc, UserError) and "\\n" not in str(exc),
           "text": str(exc)}
res["s"] = round(time.monotonic() - t, 1)
print(json.dumps(res))
"""


class Hostile(BaseHTTPRequestHandler):
    """Behaves as `server.mode` says; every request's method, path and Authorization land in `server.seen`."""

    def log_message(self, *a):
        pass

    def send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in {"Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def any(self):
        srv = self.server
        srv.seen.append((self.command, self.path, self.headers.get("Authorization")))
        if self.headers.get("Content-Length"):
            self.rfile.read(int(self.headers["Content-Length"]))
        mode = srv.mode
        try:
            if mode == "answer":
                self.send(200, JUDGMENT)
            elif mode == "redirect-away":
                self.send(302, headers={"Location": srv.target + self.path})
            elif mode == "redirect-here":
                self.send(303, headers={"Location": "/judgment"}) if self.command == "POST" else self.send(200, JUDGMENT)
            elif mode in ("drip-body", "drip-headers"):
                head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(JUDGMENT)
                if mode == "drip-body":
                    self.wfile.write(head)
                data = (head if mode == "drip-headers" else b"") + JUDGMENT
                for i in range(len(data)):
                    if srv.stop.wait(0.5):
                        return
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
            elif mode == "flood":
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b'{"choices": [{"message": {"content": "')
                for _ in range(FLOOD_MB):
                    self.wfile.write(b"a" * (1 << 20))
                    srv.sent += 1
                self.wfile.write(b'"}}]}')
            elif mode == "content-dict":
                self.send(200, json.dumps({"choices": [{"message": {"content": {"text": "[[10]]"}}}]}).encode())
            elif mode == "echo-key":
                self.send(400, json.dumps({"error": f"bad key {self.headers.get('Authorization')}"}).encode())
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = any


def start(target: str = "") -> ThreadingHTTPServer:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    srv.daemon_threads = True
    srv.seen, srv.mode, srv.target, srv.stop, srv.sent = [], "answer", target, threading.Event(), 0
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def tree(rev: str | None) -> Path:
    """The package of a git revision, unpacked in a temporary folder (this checkout's with None)."""
    if rev is None:
        return REPO
    out = Path(tempfile.mkdtemp(prefix="http-attacks-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "ftstudy"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


def ask(root: Path, call: str, url: str, timeout: float = 20.0) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root), "ATTACK_KEY": KEY}
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, call, url], capture_output=True, text=True, env=env,
                           timeout=timeout, cwd=root)
    except subprocess.TimeoutExpired:
        return {"error": "held", "s": timeout, "text": ""}
    lines = r.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {"error": "crashed", "text": r.stderr[-300:], "s": 0}


def outcome(res: dict) -> str:
    if "ok" in res:
        return f"taken as the reply: {res['ok']!r}"
    if res["error"] == "held":
        return f"still reading after {res['s']:g} s (killed)"
    leak = "; KEY IN THE ERROR" if KEY in res["text"] else ""
    return (f"one line ({res['error']}, {res['s']:g} s){leak}" if res.get("one_line")
            else f"{res['error']} traceback{leak}")


def attacks(root: Path) -> list[tuple[str, str]]:
    target = start()
    hostile = start(target=f"http://127.0.0.1:{target.server_port}")
    base = f"http://127.0.0.1:{hostile.server_port}"
    rows = []

    def run(name: str, mode: str, call: str = "ask", url: str = base + "/v1", extra=None) -> None:
        hostile.mode, hostile.sent = mode, 0
        hostile.seen.clear(), target.seen.clear()
        hostile.stop.clear()
        res = ask(root, call, url)
        hostile.stop.set()
        text = outcome(res)
        if extra:
            text += extra()
        rows.append((name, text))

    heard = lambda: "; the other port got " + (  # noqa: E731
        "the key" if any(a and KEY in a for _, _, a in target.seen) else f"{len(target.seen)} requests")
    run("judge POST answers 302 to another port", "redirect-away", extra=heard)
    run("GET /v1/models answers 302 to another port", "redirect-away", call="models", extra=heard)
    run("judge POST answers 303 to a judgment on its own server", "redirect-here")
    run("reply body drips 1 byte / 0.5 s (timeout 2 s)", "drip-body")
    run("status line and headers drip 1 byte / 0.5 s (timeout 2 s)", "drip-headers")
    run(f"reply of {FLOOD_MB} MB, streamed", "flood", extra=lambda: f"; {hostile.sent} MB sent")
    run("`content` is a dict", "content-dict")
    run("judge echoes the key in a 400", "echo-key")
    dead = f"127.0.0.1:{target.server_port + 1 if target.server_port < 65535 else 1}"
    run("?api_key=KEY in an unreachable --judge-url", "answer", url=f"http://{dead}/v1?api_key={KEY}")
    run("user:KEY@ in --judge-url", "answer", url=f"http://user:{KEY}@127.0.0.1:{hostile.server_port}/v1")
    for srv in (hostile, target):
        srv.stop.set()
        srv.shutdown()
        srv.server_close()
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", default="f4b1a28", help="git revision of the package before the change")
    args = ap.parse_args()
    before, after = attacks(tree(args.before)), attacks(tree(None))
    width = max(len(n) for n, _ in before)
    print(f"| {'attack':<{width}} | before ({args.before}) | after |")
    print(f"|{'-' * (width + 2)}|---|---|")
    for (name, b), (_, a) in zip(before, after):
        print(f"| {name:<{width}} | {b} | {a} |")
