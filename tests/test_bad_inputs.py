"""Hostile and careless input: one clear line each, fast, in bounded memory, never a traceback (issue 11)."""
from __future__ import annotations

import http.server
import json
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftstudy.eval import client
from ftstudy.core import untrusted_yaml as safeload
from ftstudy.cli.main import main

FTSTUDY = [sys.executable, "-m", "ftstudy"]


def alias_bomb() -> str:
    """'Billion laughs': nine levels of nine aliases, 9**9 values from a few hundred bytes."""
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi"):
        key = "datasets" if name == "i" else name  # the schema check walks datasets item by item
        text += f"{key}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    return text


def _limit_memory():  # 1 GB of address space: the unbounded old path needed 5.8 GB of RSS on the bomb
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*FTSTUDY, "validate", str(path)], capture_output=True, text=True, timeout=120,
                          preexec_fn=_limit_memory)


def _one_problem(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    problems = [line for line in out.stdout.splitlines() if line.startswith("  ")]
    assert len(problems) == 1, out.stdout
    return problems[0]


def test_validate_alias_bomb(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    assert len(bomb.read_bytes()) < 500
    assert "alias bomb" in _one_problem(_validate(bomb))


def test_validate_huge_file(tmp_path):
    big = tmp_path / "big.yaml"
    with open(big, "w") as fh:
        fh.write("base_model: x\n" + "k: v\n" * 1000)
        fh.truncate(50 * 1024 * 1024)
    line = _one_problem(_validate(big))
    assert "too big" in line and str(big) in line


def test_validate_binary_file(tmp_path):
    binary = tmp_path / "model.safetensors"
    binary.write_bytes(bytes(range(256)) * 64)
    line = _one_problem(_validate(binary))
    assert "binary" in line and str(binary) in line


def test_validate_latin1_file(tmp_path):
    latin = tmp_path / "cfg.yaml"
    latin.write_bytes("base_model: caf\xe9\n".encode("latin-1"))
    assert "UTF-8" in _one_problem(_validate(latin))


def test_safeload_keeps_ordinary_aliases_and_syntax_errors():
    assert safeload.load("a: &x {lr: 1}\nb: *x\n") == {"a": {"lr": 1}, "b": {"lr": 1}}
    with pytest.raises(safeload.Refused):
        safeload.load(alias_bomb())
    import yaml

    with pytest.raises(yaml.MarkedYAMLError):
        safeload.load("a: [1, 2\nb: 3\n")


def test_compare_on_a_truncated_result(tmp_path):
    from tests.test_compare import put, scores

    put(tmp_path, "classification", "base", "ag_news", scores(20, 0.5, 1))
    put(tmp_path, "classification", "ft", "ag_news", scores(20, 0.6, 2))
    target = tmp_path / "classification" / "ft" / "ag_news.json"
    target.write_text(target.read_text()[:40])
    out = CliRunner().invoke(main, ["compare", "classification", "--results-dir", str(tmp_path)])
    assert out.exit_code == 1, out.output
    assert "Traceback" not in out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(target) in lines[0]
    assert "ftstudy bench classification" in lines[0] and "--tag ft --benchmarks ag_news" in lines[0]


def _score(tmp_path, preds: list[dict], refs: list[dict]):
    p, r = tmp_path / "preds.jsonl", tmp_path / "refs.jsonl"
    p.write_text("".join(json.dumps(x) + "\n" for x in preds))
    r.write_text("".join(json.dumps(x) + "\n" for x in refs))
    return CliRunner().invoke(main, ["score", "toolcall", "-p", str(p), "-r", str(r), "--json"])


REFS = [{"id": i, "query": "q", "answers": json.dumps([{"name": "f", "arguments": {"x": i}}])} for i in range(4)]


def _pred(i):
    return {"id": i, "output": f'<tool_call>{{"name": "f", "arguments": {{"x": {i}}}}}</tool_call>'}


def test_score_toolcall_with_no_overlap_is_an_error(tmp_path):
    out = _score(tmp_path, [_pred(i) | {"id": f"x{i}"} for i in range(4)], REFS)
    assert out.exit_code == 1 and "none of the 4 prediction ids" in out.stderr and out.stdout == ""


def test_score_toolcall_with_empty_predictions_is_an_error(tmp_path):
    out = _score(tmp_path, [], REFS)
    assert out.exit_code == 1 and "no predictions" in out.stderr


def test_score_toolcall_partial_overlap_warns_with_counts(tmp_path):
    out = _score(tmp_path, [_pred(0), _pred(1), {"id": 99, "output": ""}], REFS)
    assert out.exit_code == 0, out.stderr
    assert "2 of 4 references have a prediction (2 missing" in out.stderr and "1 predictions match no" in out.stderr
    assert json.loads(out.stdout)["exact_match"] == 0.5


def test_score_toolcall_full_overlap_is_silent(tmp_path):
    out = _score(tmp_path, [_pred(i) for i in range(4)], REFS)
    assert out.exit_code == 0 and out.stderr == "" and json.loads(out.stdout)["exact_match"] == 1.0


@pytest.fixture
def refusing_server():
    """A real HTTP server on loopback that answers every request with 401."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _deny(self):
            body = b'{"error": {"message": "Incorrect API key provided"}}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _deny

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_401_is_an_authentication_error_naming_the_key_variable(refusing_server):
    for call in (lambda: client.list_models(refusing_server),
                 lambda: client.chat(refusing_server, "judge", [{"role": "user", "content": "hi"}])):
        with pytest.raises(client.AuthenticationFailed) as err:
            call()
        msg = str(err.value)
        assert "authentication" in msg and client.KEY_VARIABLE in msg and "401" in msg
        assert "no model server answers" not in msg and "\n" not in msg
