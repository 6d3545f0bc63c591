"""The wheels an offline GPU machine needs to run gpu_axolotl_check.py: Axolotl's pinned environment
(ftstudy/core/tool_env_pins/train-cpu.txt, a pip freeze of axolotl==0.19.0) minus what the machine already has, fetched here
with `pip download` into the ignored folder .whl/ (no dependencies resolved: each pin is named).

The machine keeps its own CUDA torch, triton and nvidia-* (replacing them would not fit a call). flash-attn
and DeepSpeed publish no wheels (sdists built against the local CUDA): they are listed, not fetched; the
generated h100 config then needs `--variant attn_implementation=sdpa` there. Wheels travel with a device call
(64 MiB a call): the script prints them in batches that fit.

Usage (here, with PyPI reachable):
    .venv/bin/python tests/benchmarks/gpu_wheels.py [--have tests/benchmarks/h200_packages.txt] [--dry-run]
There (first command of the device call, `.whl` carried):
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "ftstudy" / "core" / "tool_env_pins" / "train-cpu.txt"
KEEP_THERE = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*)$")
NO_WHEEL = {"flash-attn": "sdist only: compiled against the machine's CUDA (minutes of nvcc)",
            "deepspeed": "sdist only: ZeRO/offload for full fine-tuning where one GPU is too small"}
ALWAYS = {"transformers", "peft", "accelerate", "trl", "datasets"}  # Axolotl pins these exactly: carry its versions
EXTRA = {"liger-kernel": "0.8.5", "bitsandbytes": "0.50.2"}  # ftstudy/core/tool_env_pins/train-gpu.txt's own pins
PLATFORM = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:", "--no-deps"] + [
    a for p in ("manylinux_2_35_x86_64", "manylinux_2_34_x86_64", "manylinux_2_31_x86_64", "manylinux_2_28_x86_64",
                "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                "manylinux1_x86_64", "any") for a in ("--platform", p)]
BATCH = 60 * 2**20


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def needed(have: set[str]) -> list[tuple[str, str]]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, ver = line.split("==", 1)
            pins[norm(name)] = ver.split("+")[0].strip()
    pins.update(EXTRA)
    return sorted((n, v) for n, v in pins.items() if (n not in have or n in ALWAYS) and not KEEP_THERE.match(n))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--have", default=str(Path(__file__).with_name("h200_packages.txt")),
                    help="names the GPU machine already has, one a line (its `pip list --format=freeze` will do)")
    ap.add_argument("--dest", default=str(ROOT / ".whl"))
    ap.add_argument("--dry-run", action="store_true", help="list what would be fetched")
    a = ap.parse_args(argv)
    have = {norm(x.split("==")[0].strip()) for x in Path(a.have).read_text().splitlines() if x.strip()}
    want = needed(have)
    print(f"{len(want)} packages the machine lacks (of {LOCK.name}); it keeps its torch/triton/nvidia-*:")
    for name in NO_WHEEL:
        print(f"  not fetched: {name}: {NO_WHEEL[name]}")
    failed = []
    for name, ver in want:
        if a.dry_run:
            print(f"  {name}=={ver}")
            continue
        res = subprocess.run([sys.executable, "-m", "pip", "download", "-q", *PLATFORM, "-d", a.dest, f"{name}=={ver}"],
                             capture_output=True, text=True)
        if res.returncode:
            failed.append(f"{name}=={ver}")
    if a.dry_run:
        return 0
    wheels = sorted(Path(a.dest).glob("*.whl"), key=lambda p: p.stat().st_size)
    batches, cur, size = [], [], 0
    for w in wheels:
        if cur and size + w.stat().st_size > BATCH:
            batches.append(cur)
            cur, size = [], 0
        cur.append(w)
        size += w.stat().st_size
    batches += [cur] if cur else []
    for i, b in enumerate(batches, 1):
        mib = sum(w.stat().st_size for w in b) / 2**20
        print(f"batch {i} ({mib:.1f} MiB): " + " ".join(w.name for w in b))
    if failed:
        print("no wheel for this platform (fetch by hand or do without): " + " ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
