"""The tiny model: files and shape, byte-for-byte determinism, caching, the chat template as the train
environment's transformers renders it, and the CLI verb."""
from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from click.testing import CliRunner

from ftstudy.core import tool_envs as envs
from ftstudy.train import tiny
from ftstudy.cli.main import main

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
    {"role": "tool", "content": '{"temp": 20}'},
    {"role": "assistant", "content": "Paris is at 20."},
]
# What follows the system block: both argument forms (dict and JSON string) render the same way.
EXPECTED_TURNS = (
    "<|im_start|>user\nWeather in Paris and Rome?<|im_end|>\n"
    "<|im_start|>assistant\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call><|im_end|>\n'
    '<|im_start|>user\n<tool_response>\n{"temp": 20}\n</tool_response><|im_end|>\n'
    "<|im_start|>assistant\nParis is at 20.<|im_end|>\n"
    "<|im_start|>assistant\n"
)

# Runs in the train environment (the test process has no transformers): renders, tokenizes, runs the model.
PROBE = r"""
import json, sys
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer
path, case = sys.argv[1], json.loads(sys.argv[2])
tok = AutoTokenizer.from_pretrained(path)
text = tok.apply_chat_template(case["messages"], tools=case["tools"], tokenize=False, add_generation_prompt=True)
plain = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
ids = tok(text)["input_ids"]
raw = Tokenizer.from_file(path + "/tokenizer.json")
model = AutoModelForCausalLM.from_pretrained(path)
with torch.no_grad():
    logits = model(torch.tensor([ids[:64]])).logits
print(json.dumps({
    "text": text, "plain": plain, "same_as_raw": raw.encode(text).ids == ids,
    "single": {t: len(tok(t)["input_ids"]) for t in case["markup"]},
    "skip_special": tok.decode(tok("<tool_call>x</tool_call><|im_end|>")["input_ids"], skip_special_tokens=True),
    "logits": list(logits.shape), "eos": tok.eos_token, "pad": tok.pad_token,
}))
"""


def hashes(path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def config(path):
    return json.loads((path / "config.json").read_text())


def test_cli_help_has_an_example():
    result = CliRunner().invoke(main, ["tiny-model", "--help"])
    assert result.exit_code == 0 and "Example" in result.output


def test_refuses_bad_sizes_and_folders_that_are_not_tiny_models(tmp_path):
    with pytest.raises(ValueError, match="multiple of 8"):
        tiny.build(tmp_path / "m", hidden=12)
    with pytest.raises(ValueError, match="at least 300"):
        tiny.build(tmp_path / "m", vocab=100)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a tiny model"):
        tiny.build(mine)
    assert (mine / "notes.txt").read_text() == "keep me"


@pytest.mark.tools
def test_default_model_files_and_shape(tiny_model):
    names = {p.name for p in tiny_model.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", tiny.MANIFEST} <= names
    cfg = config(tiny_model)
    assert cfg["model_type"] == "qwen2" and cfg["architectures"] == ["Qwen2ForCausalLM"]
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"]) == (4, 128, 256)
    assert (cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"]) == (4, 2, 1000)
    assert cfg["max_position_embeddings"] == 4096 and cfg["tie_word_embeddings"] is False
    assert (tiny_model / "model.safetensors").stat().st_size < 5_000_000  # ~0.85M float32 parameters
    assert not list(tiny_model.parent.glob(f".{tiny_model.name}.*"))  # no temp folders left behind


SMALL = dict(layers=1, hidden=32, vocab=400, pretrain_steps=5)  # the same recipe as the default, in seconds


@pytest.mark.tools
def test_same_seed_same_bytes_other_seed_other_weights_and_a_cached_build_is_copied_whole(tmp_path):
    """A small shape (honoured), built twice without the cache, pretraining included: the same bytes; two builds
    into one cold cache at once (two pytest workers, two demos): one builds, the other waits and copies it whole;
    other parameters rebuild in place. (The default shape runs the same script with more steps: the session's
    tiny model is built, or copied, once.)"""
    import threading

    cache = tmp_path / "cache"
    logs: dict[str, list[str]] = {"one": [], "two": []}
    both = [threading.Thread(target=tiny.build, args=(tmp_path / name,), daemon=True,
                             kwargs=dict(seed=0, cache=cache, log=logs[name].append, **SMALL)) for name in logs]
    for t in both:
        t.start()
    for t in both:
        t.join(timeout=600)
    first, second = tmp_path / "one", tmp_path / "two"
    cfg = config(first)
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["vocab_size"]) == (1, 32, 400)
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    kinds = sorted(log[0].split()[0] for log in logs.values())
    assert kinds == ["building", "copying"], logs
    assert f"copying the tiny model from {entry} to " in "".join(logs["one"] + logs["two"])
    assert hashes(first) == hashes(second)
    again = tiny.build(tmp_path / "again", seed=0, cache=None, **SMALL)  # built again, not copied
    assert hashes(again) == hashes(first)
    stamp = (again / "model.safetensors").stat().st_mtime_ns
    assert tiny.build(again, seed=0, cache=None, **SMALL) == again and (again / "model.safetensors").stat().st_mtime_ns == stamp
    before = hashes(again)
    tiny.build(again, seed=1, cache=None, **{**SMALL, "pretrain_steps": 0})  # other parameters: rebuilt in place
    after = hashes(again)
    assert after["model.safetensors"] != before["model.safetensors"]
    assert after["tokenizer.json"] == before["tokenizer.json"]  # the tokenizer depends on the corpus only
    assert json.loads((again / tiny.MANIFEST).read_text())["params"]["seed"] == 1


@pytest.mark.tools
def test_the_base_is_pretrained(tiny_model):
    log = json.loads((tiny_model / "pretraining.json").read_text())
    assert log["steps"] == tiny.PRETRAIN_STEPS and log["threads"] == tiny.THREADS
    assert log["loss"][-1] < 0.6 * log["loss"][0], log["loss"]  # it learned the corpus, it is not random


def test_pretraining_corpus_holds_neither_demo_task():
    """The base must not have seen the demo's tasks: no test or training row, no label prompt, no tool markup."""
    from ftstudy.study import demo

    text = tiny.PRETRAIN_CORPUS.read_text()
    assert len(text) > 300_000 and "<tool_call>" not in text and "<tools>" not in text and "Classify" not in text
    for name, keys in (("ag_news_train.jsonl", ["text"]), ("bench/ag_news_mc.jsonl", ["text"]),
                       ("xlam_train.jsonl", ["query"]), ("bench/xlam_heldout.jsonl", ["query"])):
        rows = [json.loads(l) for l in (demo.DATA / name).read_text().splitlines()]
        assert rows and not [r for r in rows if any(r[k] in text for k in keys)], name


def test_pretraining_corpus_is_what_its_script_writes():
    from ftstudy.tool_env_scripts import make_corpus

    assert make_corpus.corpus() == tiny.PRETRAIN_CORPUS.read_text()


@pytest.mark.tools
def test_chat_template_renders_tools_and_tool_calls(tiny_model):
    markup = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<tool_call>", "</tool_call>", "<tools>", "</tools>"]
    case = {"messages": CONVERSATION, "tools": [TOOL], "markup": markup}
    res = subprocess.run([str(envs.bin_path("train")), "-c", PROBE, str(tiny_model), json.dumps(case)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    text = out["text"]
    assert text.startswith("<|im_start|>system\nBe brief.\n\n")
    system, turns = text.split("<|im_end|>\n", 1)
    assert "<tools>\n" + json.dumps(TOOL) + "\n</tools>" in system and "<tool_call>" in system
    assert turns == EXPECTED_TURNS
    assert out["plain"] == "<|im_start|>user\nhi<|im_end|>\n"  # no tools, no system: no system block
    assert out["same_as_raw"]  # AutoTokenizer (Qwen2Tokenizer) and tokenizer.json agree
    assert out["single"] == {t: 1 for t in markup}
    assert out["skip_special"] == "<tool_call>x</tool_call>"  # servers strip ChatML, keep tool markup
    assert out["logits"][-1] == 1000 and (out["eos"], out["pad"]) == ("<|im_end|>", "<|endoftext|>")
