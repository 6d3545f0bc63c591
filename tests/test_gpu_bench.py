"""The pure parts of tests/benchmarks/gpu_axolotl_check.py and gpu_wheels.py (the Axolotl runs themselves are
its CPU smoke test in `make bench`): the config it trains is the generated one, and tokens/s skips warm-up."""
import importlib.util
from pathlib import Path

import pytest

from ftstudy.config import gen
from ftstudy.config import tuning
from ftstudy.config import validate

BENCH = Path(__file__).parent / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


check = load("gpu_axolotl_check")
wheels = load("gpu_wheels")


@pytest.mark.parametrize("method", ["lora", "qlora", "full"])
def test_bench_trains_the_generated_config(tmp_path, method):
    data = check.rows_jsonl(tmp_path / "rows.jsonl", 5, ["a", "b", "c"])
    cfg = check.generated(method, "h100", "Qwen/Qwen2.5-7B", data, 4096, {"max_steps": 36}, tmp_path)
    for c in tuning.choices("h100", method):
        for key, value in c["set"].items():
            assert cfg[key] == value
    assert cfg["sequence_len"] == 4096 and cfg["max_steps"] == 36 and cfg["datasets"][0]["path"] == str(data)
    assert cfg.get("adapter") == (None if method == "full" else method)
    refill = tuning.fill({k: v for k, v in cfg.items()}, "h100")
    assert refill["micro_batch_size"] == cfg["micro_batch_size"]  # the fill was redone for the bench's length
    path = tmp_path / f"{method}.yaml"
    path.write_text(gen.render(cfg, "code", method, "h100", "test", str(path)))
    assert not validate.errors(validate.validate_file(path, "h100"))


def test_tokens_per_second_counts_only_steps_after_warmup():
    marks = [(0.0, 0, None), (10.0, 1000, 50.0), (11.0, 2000, 51.0), (12.0, 3000, 51.5), (13.0, 4000, 51.5)]
    got = check.figures({"returncode": 0, "marks": marks, "tail": []}, warmup=1)
    assert got["tokens_per_second"] == 1000.0 and got["steps_timed"] == 3  # the slow first step is not timed
    assert got["peak_memory_gb"] == round(51.5 * 2**30 / 1e9, 3)
    failed = check.figures({"returncode": 1, "marks": marks[:1], "tail": ["CUDA out of memory"]}, warmup=1)
    assert "exited 1" in failed["error"] and "out of memory" in failed["error"]


def test_wheel_list_leaves_the_machines_cuda_stack_and_carries_axolotls_pins(tmp_path):
    have = {"torch", "triton", "transformers", "numpy", "nvidia-cublas"}
    want = dict(wheels.needed(have))
    assert want["axolotl"] == "0.19.0" and want["liger-kernel"] == "0.8.5" and "bitsandbytes" in want
    assert "torch" not in want and "triton" not in want and "numpy" not in want
    assert "transformers" in want  # Axolotl pins it exactly: the machine's own version is not trusted
