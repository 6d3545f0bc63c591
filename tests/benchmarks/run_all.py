"""`make bench`: run every CPU benchmark script in turn; the GPU checks run here as their CPU smoke test
(gpu_axolotl_check.py --device cpu --tiny: Axolotl and the baseline loop on the tiny model); on a CUDA host run
them without --device cpu.

Each prints its figures as a ratio against a baseline measured in the same run.
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [["bench_planner.py"], ["bench_convert.py"], ["bench_decontam.py"], ["bench_validate.py"], ["bench_demo.py"],
           ["bench_stats.py"], ["gpu_axolotl_check.py", "--device", "cpu", "--tiny", "--methods", "lora"]]

if __name__ == "__main__":
    failed = 0
    for script in SCRIPTS:
        print(f"\n=== {' '.join(script)} ===", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / script[0]), *script[1:]]).returncode != 0
    sys.exit(1 if failed else 0)
