"""`make bench`: run every CPU benchmark script in turn (the GPU check needs a CUDA host: run it there).

Each prints its figures as a ratio against a baseline measured in the same run.
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [["bench_planner.py"], ["bench_convert.py"], ["bench_decontam.py"], ["bench_demo.py"]]

if __name__ == "__main__":
    failed = 0
    for script in SCRIPTS:
        print(f"\n=== {' '.join(script)} ===", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / script[0]), *script[1:]]).returncode != 0
    sys.exit(1 if failed else 0)
