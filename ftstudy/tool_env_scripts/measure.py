"""Run a command as a child and record its peak memory (tool side: stdlib only).

Usage: python measure.py OUT.json -- ARGV...
Writes {"returncode", "wall_s", "peak_rss_gb", "peak_gpu_gb"} to OUT.json and exits with the child's code.
Peak RSS is the largest resident set of any process in the child's tree that was waited for (training runs in
accelerate's child), read from getrusage(RUSAGE_CHILDREN) in this otherwise idle wrapper so that nothing else
ftstudy ran before is counted. GPU peak is sampled from nvidia-smi when there is one.
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time


def gpu_sampler(stop: threading.Event, peak: list) -> None:
    while not stop.wait(1.0):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=10).stdout
            used = max(float(x) for x in out.split()) * 1024 * 1024 / 1e9  # MiB -> GB
            peak[0] = max(peak[0], used)
        except Exception:
            pass


def main() -> int:
    out, sep, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    assert sep == "--", "usage: measure.py OUT.json -- ARGV..."
    start = time.time()
    proc = subprocess.Popen(argv)
    # SIGINT/SIGTERM from ftstudy reach the whole process group (this wrapper, accelerate, the trainer): the
    # wrapper itself ignores them and waits for the tool to stop cleanly. SIGHUP means ftstudy died (see
    # runner._die_with_parent): then the wrapper stops the tool tree itself, once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def parent_died(_sig, _frame):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        os.killpg(os.getpgrp(), signal.SIGTERM)

    signal.signal(signal.SIGHUP, parent_died)
    stop, peak = threading.Event(), [0.0]
    if shutil.which("nvidia-smi"):
        threading.Thread(target=gpu_sampler, args=(stop, peak), daemon=True).start()
    code = proc.wait()
    stop.set()
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    tmp = f"{out}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump({"returncode": code, "wall_s": round(time.time() - start, 3),
                   "peak_rss_gb": round(rss_kb * 1024 / 1e9, 4), "peak_gpu_gb": round(peak[0], 3) or None}, fh)
    os.replace(tmp, out)
    return code


if __name__ == "__main__":
    sys.exit(main())
