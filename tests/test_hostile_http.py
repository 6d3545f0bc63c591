"""Hostile and broken servers against ftstudy's one HTTP policy (core.outbound) and its URL redaction
(core.redact): real servers on 127.0.0.1, the canary key (tests/conftest.py) in the judge's variable.

A judge that redirects gets no key across origins and its target's reply is never the judgment; a server that
drips its reply is cut off at the total deadline; an oversized reply is refused at the cap, not read whole; a
reply of the wrong shape is one clear error; a credential in a URL is in no error, state file or Slurm file.
"""
import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ftstudy.core import outbound, redact
from ftstudy.core.errors import UserError
from ftstudy.eval import client
from ftstudy.eval.harness.judge import Judge, safe_url
from ftstudy.eval.serve import free_port
from tests.conftest import CANARY, CANARY_ENV as KEY_ENV

ASK = [{"role": "user", "content": "Rate it. Rating: [[N]]"}]
JUDGMENT = {"choices": [{"message": {"role": "assistant", "content": "Perfect. Rating: [[10]]"},
                         "finish_reason": "stop"}]}


@contextmanager
def server(answer):
    """A loopback server: `answer(handler)` replies to every GET and POST; each request's method, path and
    headers are recorded in the yielded object's `seen`."""
    seen: list[dict] = []
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def handle_any(self):
            seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
            if self.headers.get("Content-Length"):
                self.rfile.read(int(self.headers["Content-Length"]))
            try:
                answer(self)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: what these tests want of it

        do_GET = do_POST = handle_any

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.seen, httpd.stop = seen, stop
    httpd.url = f"http://127.0.0.1:{httpd.server_port}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()


def send_json(h, payload, status=200):
    data = json.dumps(payload).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def judge_at(url, **kw) -> Judge:
    return Judge(url, "judge", api_key_env=KEY_ENV, retries=0, **kw)


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, CANARY)
    return CANARY


# ---- redirects ---------------------------------------------------------------------------------------------

def test_a_redirect_to_another_port_gets_no_key_and_its_reply_is_not_the_judgment(key):
    with server(lambda h: send_json(h, {**JUDGMENT, "data": [{"id": "evil"}]})) as target:
        def redirect(h):
            h.send_response(302)
            h.send_header("Location", target.url + h.path)
            h.send_header("Content-Length", "0")
            h.end_headers()

        with server(redirect) as judge_srv:
            with pytest.raises(client.RequestFailed, match="redirect") as post_err:
                judge_at(judge_srv.url + "/v1").ask(ASK)
            with pytest.raises(UserError, match="redirect to another server") as get_err:
                client.list_models(judge_srv.url + "/v1", headers=judge_at(judge_srv.url).headers())
        assert [r["method"] for r in judge_srv.seen] == ["POST", "GET"]
        assert judge_srv.seen[0]["headers"]["Authorization"] == f"Bearer {key}"  # the judge itself gets its key
    # the other port heard nothing: no key, no request, so nothing of its reply can be taken as a judgment
    assert target.seen == []
    assert key not in str(post_err.value) + str(get_err.value)


def test_a_redirect_on_the_same_server_is_followed_for_a_get_only(key):
    """A GET with the key follows a redirect on its own server; a POST is not redirected at all (urllib would
    repeat it as a GET, whose answer, here a judgment, is not the answer to the request)."""
    def answer(h):
        if h.command == "POST" or h.path == "/v1/models":
            h.send_response(303 if h.command == "POST" else 307)
            h.send_header("Location", "/v1/judgment" if h.command == "POST" else "/v1/models/")
            h.send_header("Content-Length", "0")
            h.end_headers()
        else:
            send_json(h, {**JUDGMENT, "data": [{"id": "judge-a"}]})

    with server(answer) as srv:
        judge = judge_at(srv.url + "/v1")
        assert client.list_models(srv.url, headers=judge.headers()) == ["judge-a"]
        with pytest.raises(client.RequestFailed, match="does not follow a redirected POST"):
            judge.ask(ASK)
    assert [(r["method"], r["path"]) for r in srv.seen] == [
        ("GET", "/v1/models"), ("GET", "/v1/models/"), ("POST", "/v1/chat/completions")]


# ---- the total deadline and the size cap -------------------------------------------------------------------

@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_dripping_reply_is_cut_off_at_the_total_deadline(key, where):
    def drip(h):  # a valid reply, one byte every half second (of its body, or of all of it): 60 s or more
        data = json.dumps({**JUDGMENT, "data": [{"id": "j"}]}).encode()
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data)
        if where == "body":
            h.wfile.write(head)
        for i in range(len(data) + (len(head) if where == "headers" else 0)):
            if h.server.stop.wait(0.5):
                return
            h.wfile.write(((head if where == "headers" else b"") + data)[i:i + 1])
            h.wfile.flush()

    with server(drip) as srv:
        started = time.monotonic()
        with pytest.raises(UserError, match="no complete reply within 2 s"):
            if where == "body":
                judge_at(srv.url, timeout=2).ask(ASK)
            else:
                client.list_models(srv.url, timeout=2)
        took = time.monotonic() - started
    assert took < 30, took  # the deadline is 2 s; the drip would take over 60 s


def test_an_oversized_reply_is_refused_at_the_cap_not_read_whole(key, monkeypatch):
    sent = []

    def flood(h):  # a judgment whose text is 400 MB, streamed without a declared length
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b'{"choices": [{"message": {"content": "')
        chunk, total = b"a" * (1 << 20), 0
        while total < 400 << 20 and not h.server.stop.is_set():
            h.wfile.write(chunk)
            total += len(chunk)
            sent.append(len(chunk))
        h.wfile.write(b'"}}]}')

    def declared(h):
        h.send_response(200)
        h.send_header("Content-Length", str(400 << 20))
        h.end_headers()
        h.wfile.write(b"{")

    monkeypatch.setattr(outbound, "MAX_REPLY_BYTES", 1 << 20)  # 1 MiB keeps the test cheap
    with server(flood) as srv:
        with pytest.raises(client.RequestFailed, match=r"more than 1,048,576 bytes.*stopped reading"):
            judge_at(srv.url).ask(ASK)
    assert sum(sent) < 64 << 20, sum(sent)  # it stopped reading: the server could not push 400 MB
    with server(declared) as srv:
        with pytest.raises(client.RequestFailed, match=r"419,430,400 bytes, over .* limit of 1,048,576"):
            judge_at(srv.url).ask(ASK)


# ---- replies of the wrong shape ----------------------------------------------------------------------------

@pytest.mark.parametrize("reply, field", [
    ({"choices": [{"message": {"content": {"text": "[[10]]"}}}]}, "message.content` is a dict"),
    ({"choices": [{"message": {"content": [{"type": "text", "text": "[[10]]"}]}}]}, "message.content` is a list"),
    ({"choices": [{"message": ["[[10]]"]}]}, "message` is a list"),
    ({"choices": [{"message": {"content": "x", "tool_calls": {"name": "f"}}}]}, "tool_calls` is a dict"),
])
def test_a_reply_of_the_wrong_shape_is_one_clear_line(key, reply, field):
    with server(lambda h: send_json(h, reply)) as srv:
        with pytest.raises(client.RequestFailed, match="wrong shape") as err:
            judge_at(srv.url).ask(ASK)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_a_model_list_of_the_wrong_shape_is_one_clear_line():
    with server(lambda h: send_json(h, [{"id": "m"}])) as srv:
        with pytest.raises(client.RequestFailed, match="without a `data` list"):
            client.list_models(srv.url)


# ---- credentials in URLs and in replies --------------------------------------------------------------------

def test_url_credentials_are_in_no_error(key):
    port = free_port()
    dead, userinfo = f"http://127.0.0.1:{port}/v1?api_key={key}", f"http://user:{key}@127.0.0.1:{port}/v1"
    with pytest.raises(client.ServerUnreachable) as err:
        judge_at(dead).ask(ASK)
    assert key not in str(err.value) and f"127.0.0.1:{port}" in str(err.value)
    with pytest.raises(client.ServerUnreachable) as err:
        client.list_models(dead)
    assert key not in str(err.value) and "api_key=***" in str(err.value)
    for call in (lambda: judge_at(userinfo).ask(ASK), lambda: client.list_models(userinfo)):
        with pytest.raises(client.RequestFailed, match=r"http://\*\*\*@127.0.0.1.*password in the URL") as err:
            call()
        assert key not in str(err.value)
    # a judge that echoes the key back in its refusal does not put it into the message either
    with server(lambda h: send_json(h, {"error": f"bad request from {h.headers['Authorization']}"}, 400)) as srv:
        with pytest.raises(client.RequestFailed, match="HTTP 400") as err:
            judge_at(srv.url + f"/v1?key={key}").ask(ASK)
    assert key not in str(err.value) and srv.seen[0]["path"] == f"/v1/chat/completions?key={key}"
    assert key not in safe_url(dead) and key not in redact.text(f"at {dead}: refused")


def test_url_credentials_are_in_no_state_file_and_no_slurm_file(key, tmp_path):
    """A study stage that fails on a judge URL with a credential records the error without it; Slurm, whose
    jobs would have to read the URL from a file, refuses it before writing anything."""
    from ftstudy.study import study
    from ftstudy.study.slurm import submit

    url = f"http://judge:{key}@127.0.0.1:{free_port()}/v1?api_key={key}"
    o = study.Options("dpo", "dpo", "cpu", base_model="Qwen/Qwen2.5-0.5B", root=tmp_path, benchmarks=["toxigen_generation"],
                      judge_url=url, judge_api_key_env=KEY_ENV)
    with pytest.raises(UserError) as err:
        study.Study(o, progress=lambda m: None).run(only="bench-base")
    assert key not in str(err.value)
    state = study.state_path(o).read_text()
    assert json.loads(state)["bench-base"]["status"] == "failed" and "api_key=***" in state
    with pytest.raises(UserError, match="carries a credential") as err:
        submit.submit([o], tmp_path)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and [str(p) for p in written if key.encode() in p.read_bytes()] == []
    assert key not in str(err.value)


def test_the_cli_prints_no_credential_of_a_redirecting_judge(key, tmp_path):
    """`ftstudy bench` with a judge that redirects to another port, its URL carrying the key as a query: one
    line, no key in it, and the other port never asked."""
    from click.testing import CliRunner

    from ftstudy.cli.main import main

    with server(lambda h: send_json(h, {"data": [{"id": "evil"}]})) as target:
        def redirect(h):
            h.send_response(302)
            h.send_header("Location", target.url + "/v1/models")
            h.send_header("Content-Length", "0")
            h.end_headers()

        with server(redirect) as judge_srv:
            res = CliRunner().invoke(main, [
                "bench", "dpo", "--model", "Qwen/Qwen2.5-0.5B", "--benchmarks", "toxigen_generation",
                "--results-dir", str(tmp_path / "results"), "--judge-url", f"{judge_srv.url}/v1?api_key={key}",
                "--judge-api-key-env", KEY_ENV])
    assert res.exit_code == 1 and "redirect to another server" in res.output, res.output
    assert key not in res.output and "api_key=***" in res.output
    assert target.seen == [] and judge_srv.seen[0]["path"] == f"/v1/models?api_key={key}"


def test_alpaca_eval_logs_no_judge_url_that_carries_a_credential(key):
    """The package's OpenAI client gets the judge URL through its environment, which runner logs: a URL with
    a credential goes with the key, logged as <hidden>; a plain one stays visible."""
    from ftstudy.core import runner
    from ftstudy.eval.harness.alpacaeval import child_env

    env, secret = child_env(judge_at(f"http://127.0.0.1:8001/v1?key={key}"))
    assert secret["OPENAI_API_BASE"].endswith(f"?key={key}") and key not in runner.show([], env)
    env, _ = child_env(judge_at("http://127.0.0.1:8001/v1"))
    assert env["OPENAI_API_BASE"] == "http://127.0.0.1:8001/v1"
