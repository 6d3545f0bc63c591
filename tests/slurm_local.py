"""A one-machine Slurm cluster for the tests: Debian's munge, slurmctld and slurmd on localhost.

`start()` installs the packages if missing (apt-get), writes /etc/slurm/slurm.conf and cgroup.conf for this
host, starts munged, slurmctld and slurmd, and waits until `sinfo` shows the node idle. If a controller already
answers `scontrol ping`, that cluster is used and left running. `stop()` ends only the daemons start() began,
by pid. Anything that fails raises: a test that needs Slurm fails, it never skips. Also runnable by hand:

    python tests/slurm_local.py start     # (and stop)
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ["slurmd", "slurmctld", "slurm-client", "munge"]
CONF = """ClusterName=ftstudy-test
SlurmctldHost={host}
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
KillWait=30
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName={host} CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class SlurmUnavailable(RuntimeError):
    pass


def _run(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kw)


def install() -> None:
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged")):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        deadline = time.time() + 600
        while True:  # another process may hold the dpkg lock for a while
            res = _run(argv, env=env)
            if res.returncode == 0:
                break
            if "lock" not in res.stderr or time.time() > deadline:
                raise SlurmUnavailable(f"{' '.join(argv)} failed: {res.stderr[-500:]}")
            time.sleep(5)


def _wait(what: str, check, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise SlurmUnavailable(f"{what} not ready after {timeout:.0f} s; see /var/log/slurm/")


def _pid(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running() -> bool:
    return shutil.which("scontrol") is not None and _run(["scontrol", "ping"]).stdout.count("UP") > 0


def start() -> list[int]:
    """Start the cluster (or find it running); returns the pids this call started."""
    install()
    if running():
        _wait("the node", lambda: "idle" in _run(["sinfo", "-h", "-o", "%T"]).stdout or
              "mix" in _run(["sinfo", "-h", "-o", "%T"]).stdout)
        return []
    host = socket.gethostname().split(".")[0]
    mem = int(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 * 0.8)
    Path("/etc/slurm").mkdir(parents=True, exist_ok=True)
    Path("/etc/slurm/slurm.conf").write_text(CONF.format(host=host, cpus=os.cpu_count(), mem=mem))
    Path("/etc/slurm/cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n")
    for d in ("/var/spool/slurmctld", "/var/spool/slurmd", "/var/log/slurm", "/run/munge"):
        Path(d).mkdir(parents=True, exist_ok=True)
    started = []
    if _run(["sh", "-c", "munge -n | unmunge"]).returncode != 0:
        shutil.chown("/run/munge", "munge", "munge")
        res = _run(["/usr/sbin/munged", "--force"], user="munge" if os.geteuid() == 0 else None)
        if res.returncode != 0:
            raise SlurmUnavailable(f"munged did not start: {res.stderr.strip()}")
        _wait("munge", lambda: _run(["sh", "-c", "munge -n | unmunge"]).returncode == 0)
        started.append(_pid("/run/munge/munged.pid"))
    for daemon, pidfile in (("slurmctld", "/run/slurmctld.pid"), ("slurmd", "/run/slurmd.pid")):
        res = _run([f"/usr/sbin/{daemon}"])
        if res.returncode != 0:
            raise SlurmUnavailable(f"{daemon} did not start: {res.stderr.strip()}")
        _wait(daemon, lambda: _pid(pidfile) is not None)
        started.append(_pid(pidfile))
        if daemon == "slurmctld":
            _wait("slurmctld", running)
    _wait("the node", lambda: _run(["sinfo", "-h", "-o", "%T"]).stdout.strip() in ("idle", "mixed", "allocated"))
    return [p for p in started if p]


def stop(pids: list[int]) -> None:
    for pid in reversed(pids):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    if sys.argv[1:] == ["start"]:
        print(" ".join(map(str, start())))
    elif sys.argv[1:2] == ["stop"]:
        stop([int(p) for p in sys.argv[2:]])
    else:
        sys.exit("usage: slurm_local.py start | stop PID...")
