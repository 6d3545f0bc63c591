"""The `accelerate launch` command for one training job on one or many GPUs and nodes (pure builders).

Every node runs the same command with its own `--machine_rank`; node 0 is the main process, the others reach
it at `--main_process_ip:--main_process_port` (static rendezvous: ranks are fixed, node 0 writes the
checkpoints). Where these come from, first match wins: flags (`ftstudy train --nodes 2 --machine-rank 1
--main-ip 10.0.0.4`), then Slurm's environment (SLURM_NNODES, SLURM_NODEID, and the first host of
SLURM_JOB_NODELIST as `scontrol show hostnames` expands it), then one machine on loopback.

Example:
    >>> c = from_slurm({"SLURM_NNODES": "2", "SLURM_NODEID": "1", "SLURM_JOB_ID": "4242"}, ["gpu-a", "gpu-b"])
    >>> c
    Cluster(nodes=2, machine_rank=1, main_ip='gpu-a', main_port=29742)
    >>> argv("accelerate", "run/launch.yaml", gpus=16, cluster=c)[2:12]
    ['--multi_gpu', '--num_processes', '16', '--num_machines', '2', '--machine_rank', '1', '--main_process_ip', 'gpu-a', '--main_process_port']
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

from ftstudy.config import profiles
from ftstudy.core.errors import UserError

DEFAULT_PORT = 29500
AXOLOTL = ("-m", "axolotl.cli.train")


@dataclass(frozen=True)
class Cluster:
    """Where this process sits in a multi-node job."""

    nodes: int = 1
    machine_rank: int = 0
    main_ip: str = "127.0.0.1"
    main_port: int = DEFAULT_PORT


def hostnames_argv(nodelist: str) -> list[str]:
    """Slurm's own expansion of a compressed node list (`gpu[01-02]` -> gpu01, gpu02)."""
    return ["scontrol", "show", "hostnames", nodelist]


def from_slurm(env: Mapping[str, str], hostnames: Sequence[str]) -> Cluster | None:
    """The cluster a Slurm job step sees; None outside Slurm. The port is derived from the job id so that two
    jobs sharing a node do not collide."""
    nodes = env.get("SLURM_NNODES") or env.get("SLURM_JOB_NUM_NODES")
    if not nodes:
        return None
    job = int(env.get("SLURM_JOB_ID") or 0)
    return Cluster(int(nodes), int(env.get("SLURM_NODEID") or 0), hostnames[0] if hostnames else "127.0.0.1",
                   DEFAULT_PORT + job % 1000 if job else DEFAULT_PORT)


def resolve(nodes: int | None = None, machine_rank: int | None = None, main_ip: str | None = None,
            main_port: int | None = None, env: Mapping[str, str] | None = None) -> Cluster:
    """Flags over Slurm's environment over one local machine; asks `scontrol` only inside a multi-node job."""
    env = os.environ if env is None else env
    slurm = None
    if env.get("SLURM_NNODES", "1") != "1" and not main_ip:
        from ftstudy.core.runner import run

        lines: list[str] = []
        res = run(hostnames_argv(env.get("SLURM_JOB_NODELIST", "")), quiet=True, on_line=lines.append)
        if res.returncode != 0:
            raise UserError(f"cannot expand SLURM_JOB_NODELIST with scontrol: {' '.join(res.tail[-2:])}; "
                            "pass --main-ip HOST instead")
        slurm = from_slurm(env, [ln.strip() for ln in lines if ln.strip()])
    elif env.get("SLURM_NNODES"):
        slurm = from_slurm(env, [main_ip] if main_ip else [])
    base = slurm or Cluster()
    out = Cluster(nodes or base.nodes, base.machine_rank if machine_rank is None else machine_rank,
                  main_ip or base.main_ip, main_port or base.main_port)
    if not 0 <= out.machine_rank < out.nodes:
        raise UserError(f"--machine-rank {out.machine_rank} is outside 0..{out.nodes - 1} for {out.nodes} node(s)")
    return out


def argv(accelerate: str, config: str, gpus: int = 1, cpu: bool = False, cluster: Cluster | None = None,
         target: Sequence[str] = AXOLOTL) -> list[str]:
    """`accelerate launch` for `gpus` processes in all (every GPU of every node) running `target` on `config`.

    One process: the simple launcher (`--cpu` on a CPU). Several: `--multi_gpu`, i.e. torchrun, which starts
    one process per GPU (per CPU rank with gloo when ACCELERATE_USE_CPU is set) whatever this node has."""
    cluster = cluster or Cluster()
    out = [str(accelerate), "launch"]
    if gpus > 1:
        out.append("--multi_gpu")
    out += ["--num_processes", str(gpus), "--num_machines", str(cluster.nodes)]
    if gpus > 1:
        out += ["--machine_rank", str(cluster.machine_rank), "--main_process_ip", cluster.main_ip,
                "--main_process_port", str(cluster.main_port), "--rdzv_backend", "static"]
        if cluster.nodes > 1:
            out.append("--same_network")
    out += ["--mixed_precision", "no" if cpu else "bf16", "--dynamo_backend", "no"]
    if cpu and gpus == 1:
        out.append("--cpu")
    return out + [*target, str(config)]


def tool_env(hardware: str) -> dict[str, str]:
    """Extra environment for Axolotl on a hardware profile (training and merging): the profile's own, and
    ACCELERATE_USE_CPU for data parallel on CPUs, which runs gloo (accelerate picks it from this)."""
    prof = profiles.profile(hardware)
    env = {"AXOLOTL_DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    env.update(prof.get("env", {}))
    if not prof["gpu"] and prof["gpus"] > 1:
        env["ACCELERATE_USE_CPU"] = "true"
    return env
