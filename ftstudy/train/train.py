"""Train one experiment through Axolotl: `accelerate launch -m axolotl.cli.train CONFIG` in the train environment.

Each run has its own folder, `runs/<exp>/<method>-<hardware>-<id>/`, where <id> is a hash of the config: the
same config always lands in the same folder (so a rerun resumes), a different one never reuses it. The folder
holds config.yaml (what was asked), launch.yaml (what Axolotl was given: output_dir, resume point), the data
manifest, train.log, Axolotl's checkpoints and train.json (figures parsed from the trainer).

Example:
    $ ftstudy train code --hardware cpu --base-model ./tiny --data tests/fixtures/magicoder.jsonl --max-steps 10
    $ ftstudy train runs/code/lora-cpu-1a2b3c4d/config.yaml --resume
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ftstudy.core import tool_envs as envs
from ftstudy.config import gen
from ftstudy.train import launch
from ftstudy.train.launch import tool_env
from ftstudy.config import profiles
from ftstudy.config import validate
from ftstudy.core.errors import UserError
from ftstudy.core.fsio import atomic_write, read_json, write_json
from ftstudy.core.file_locks import RunLock
from ftstudy.core.names import safe_name, under
from ftstudy.core.runner import ToolError, run, show
from ftstudy.train.trainlog import LogParser, history
from ftstudy.core.bundled import TOOL_SCRIPTS



class TrainError(UserError, RuntimeError):
    """A run that cannot start or did not finish; the message says why and what to do."""


@dataclass
class Request:
    """What to train: an experiment (generated config) or an existing config file."""

    cfg: dict[str, Any]
    experiment: str
    method: str
    hardware: str
    data: tuple[str, ...] = ()
    from_file: Path | None = None
    sources: tuple[str, ...] = ()


def resolve(target: str, method=None, hardware="dgx-spark", base_model=gen.DEFAULT_BASE_MODEL, data=(), sets=(),
            max_steps: int | None = None, sources=()) -> Request:
    """Generate the config for an experiment id, or read the given config file; apply --set and --max-steps."""
    overrides = gen.parse_set(tuple(sets))
    if max_steps:
        # short runs still need checkpoints to resume from: save a few times over the run instead of per epoch
        overrides.update({"max_steps": max_steps, "save_steps": max(1, max_steps // 4), "saves_per_epoch": None})
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise TrainError(f"config {path} does not exist")
        text = validate.read_config(path)
        cfg, problems = validate.load_yaml(text, str(path))
        if problems:
            raise TrainError(f"{path}: {problems[0].render()}")
        if not isinstance(cfg, dict):
            raise TrainError(f"{path}: the config must be a mapping of Axolotl keys, got {type(cfg).__name__}")
        meta = validate.header_meta(text)
        for key, value in overrides.items():
            gen.set_key(cfg, key, value)
        req = Request(cfg, meta.get("experiment", path.stem), meta.get("method", cfg.get("adapter") or "full"),
                      meta.get("hardware", hardware), from_file=path)
        for field in ("experiment", "method", "hardware"):  # they name the run folder: runs/<exp>/<method>-<hw>-<id>
            safe_name(getattr(req, field), field, f"{path} (its `# experiment: ... method: ... hardware: ...` header)")
        return req
    from ftstudy.config import registry

    exp = registry.experiment(target)
    method = method or exp.methods[0]
    cfg = gen.build(target, method, hardware, base_model, tuple(data), overrides, tuple(sources))
    return Request(cfg, target, method, hardware, data=tuple(data), sources=tuple(sources))


def config_text(req: Request) -> str:
    regen = gen.command_line(req.experiment, req.method, req.hardware, req.cfg.get("base_model", ""), req.data, (),
                             req.sources)
    return gen.render(req.cfg, req.experiment, req.method, req.hardware, regen, "config.yaml")


def run_id(cfg: dict[str, Any]) -> str:
    """Hash of everything that changes what is trained (output_dir is where, not what)."""
    canon = {k: v for k, v in cfg.items() if k not in ("output_dir", "resume_from_checkpoint")}
    return hashlib.sha256(json.dumps(canon, sort_keys=True, default=str).encode()).hexdigest()[:8]


def run_dir(req: Request, runs_root: Path = Path("runs")) -> Path:
    """runs_root/<experiment>/<method>-<hardware>-<id>, each name checked (core.names): never outside runs_root."""
    return under(runs_root, "{experiment}", "{method}-{hardware}-{run_id}", where=str(req.from_file or "train"),
                 experiment=req.experiment, method=req.method, hardware=req.hardware, run_id=run_id(req.cfg))


def launch_argv(accelerate: str | Path, config: str | Path, gpus: int = 1, cpu: bool = False,
                cluster: launch.Cluster | None = None) -> list[str]:
    """The exact launch command (pure: tests assert it); `gpus` counts every GPU of every node."""
    return launch.argv(str(accelerate), str(config), gpus, cpu, cluster)


def cluster_for(hardware: str, cluster: launch.Cluster | None, dry_run: bool) -> launch.Cluster:
    """This node's place in the job; a multi-node profile needs every node launched (srun, or flags per node)."""
    nodes = profiles.profile(hardware)["nodes"]
    if cluster is None:
        cluster = launch.Cluster(nodes, 0, "<node-0-address>") if dry_run and nodes > 1 else launch.resolve()
    if cluster.nodes != nodes:
        raise TrainError(f"profile {hardware} runs on {nodes} node(s) but this launch has {cluster.nodes}: run it "
                         f"with `srun` in a {nodes}-node Slurm job (see `ftstudy run --executor slurm`), or on "
                         "each node with --nodes N --machine-rank R --main-ip HOST")
    return cluster


def checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first. A checkpoint is complete once the trainer wrote its state file."""
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    done = [p for p in found if (p / "trainer_state.json").exists()]
    return sorted(done, key=lambda p: int(p.name.split("-")[-1]))


def resume_point(folder: Path) -> Path | None:
    """The checkpoint to resume from: the newest one the trainer has steps left after. A checkpoint at max_steps
    (a run killed after its last save, before it finished) is not one: the Trainer resumed from it trains one
    step more than asked (it checks max_steps only after a step), so the step before it is redone instead."""
    for ckpt in reversed(checkpoints(folder)):
        state = read_json(ckpt / "trainer_state.json")
        if not state.get("max_steps") or int(state.get("global_step") or 0) < int(state["max_steps"]):
            return ckpt
    return None


def check_inputs(req: Request) -> None:
    """Fail before spending any CPU/GPU time: a missing base model or dataset, an invalid config."""
    # ftstudy's layer only: Axolotl validates this same config itself at launch a moment later, on the machine
    # that trains (starting it here too would add its import time to every run).
    problems = validate.errors(validate.validate_text(config_text(req), req.hardware, axolotl=False))
    if problems:
        raise TrainError("the config does not validate:\n  " + "\n  ".join(p.render() for p in problems))
    base = str(req.cfg.get("base_model", ""))
    looks_local = base.startswith((".", "/", "~")) or Path(base).exists() or base.count("/") != 1
    if looks_local and not (Path(base).expanduser() / "config.json").is_file():
        raise TrainError(f"base model {base!r} not found: no config.json there. Pass a hub id (org/name) or a local "
                         "model folder (e.g. one made by `ftstudy tiny-model DIR`).")


def launch_config(cfg: dict[str, Any], folder: Path, root: Path) -> dict[str, Any]:
    """What Axolotl is given: the run folder as output_dir, prepared data read from the study root `root`, and
    Axolotl's own prepared-data cache inside the run folder, so nothing is written to the current folder (pure).

    Example:
        >>> launch_config({"datasets": [{"path": "data/prepared/x/a.jsonl"}], "dataset_prepared_path": "last_run_prepared"},
        ...               Path("/s/runs/r1"), Path("/s"))["dataset_prepared_path"]
        '/s/runs/r1/last_run_prepared'
    """
    out = {**cfg, "output_dir": str(folder)}
    if isinstance(cfg.get("datasets"), list):
        out["datasets"] = [{**ds, "path": str(root / ds["path"])} if isinstance(ds, dict) and
                           str(ds.get("path", "")).startswith(gen.PREPARED_DIR + "/") else ds for ds in cfg["datasets"]]
    prepared = cfg.get("dataset_prepared_path")
    if isinstance(prepared, str) and not Path(prepared).is_absolute():
        out["dataset_prepared_path"] = str(folder / prepared)
    return out


def train(req: Request, runs_root: Path = Path("runs"), resume: bool = False, dry_run: bool = False,
          progress=lambda s: print(s, file=sys.stderr, flush=True), cluster: launch.Cluster | None = None) -> dict[str, Any]:
    """Run (or resume) one training run; returns the train.json figures."""
    folder = run_dir(req, runs_root)
    launch_cfg = launch_config(req.cfg, folder, Path(runs_root).parent)
    ckpts = checkpoints(folder)
    if resume and ckpts and resume_point(folder):
        launch_cfg["resume_from_checkpoint"] = str(resume_point(folder))
    gpus = profiles.profile(req.hardware)["gpus"]
    cpu = not profiles.profile(req.hardware)["gpu"]
    cluster = cluster_for(req.hardware, cluster, dry_run)
    launch_file = folder / ("launch.yaml" if cluster.machine_rank == 0 else f"launch.node{cluster.machine_rank}.yaml")
    argv = launch_argv("<train-env>/bin/accelerate" if dry_run else envs.bin_path("train", "accelerate"),
                       launch_file, gpus, cpu, cluster)
    if dry_run:
        return {"run_dir": str(folder), "config": str(folder / "config.yaml"), "command": show(argv, tool_env(req.hardware))}
    check_inputs(req)
    if (folder / "train.json").exists() and read_json(folder / "train.json").get("status") == "completed":
        progress(f"already trained: {folder} (delete it to train again)")
        return read_json(folder / "train.json")
    if ckpts and not resume:
        raise TrainError(f"{folder} holds an interrupted run (last checkpoint {ckpts[-1].name}); "
                         "rerun with --resume to continue it, or delete the folder to start over")
    if cluster.machine_rank > 0:
        return _worker(req, folder, launch_cfg, launch_file, argv, cluster)
    with RunLock(folder / ".lock", what=f"training run {folder}"):
        return _launch(req, folder, launch_cfg, argv, progress)


def _worker(req: Request, folder: Path, launch_cfg: dict, launch_file: Path, argv: list[str],
            cluster: launch.Cluster) -> dict[str, Any]:
    """Nodes other than 0 only run their share: node 0 owns the folder's lock, state and figures."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(launch_file, yaml.safe_dump(launch_cfg, sort_keys=False))
    log = folder / f"train.node{cluster.machine_rank}.log"
    res = run(argv, env=tool_env(req.hardware), log=log, quiet=True)
    if res.returncode != 0:
        raise ToolError(f"node {cluster.machine_rank}: Axolotl training failed (exit {res.returncode}). Log: {log}")
    return {"run_dir": str(folder), "status": "worker", "machine_rank": cluster.machine_rank}


def _launch(req: Request, folder: Path, launch_cfg: dict, argv: list[str], progress) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "config.yaml").exists():
        atomic_write(folder / "config.yaml", config_text(req))
    atomic_write(folder / "launch.yaml", yaml.safe_dump(launch_cfg, sort_keys=False))
    write_json(folder / "data.json", data_manifest(launch_cfg))
    start = int(Path(launch_cfg["resume_from_checkpoint"]).name.split("-")[-1]) if launch_cfg.get("resume_from_checkpoint") else 0
    parser = LogParser(on_progress=progress, total=launch_cfg.get("max_steps"),
                       logging_steps=int(launch_cfg.get("logging_steps") or 1), start_step=start)
    measure = [sys.executable, str(TOOL_SCRIPTS / "measure.py"), str(folder / "measure.json"), "--"]
    started = time.time()
    write_json(folder / "status.json", {"status": "running", "started": started, "resumed_from": launch_cfg.get("resume_from_checkpoint")})
    res = run(measure + argv, env=tool_env(req.hardware), log=folder / "train.log", on_line=parser.feed)
    figures = parser.figures()
    measured = read_json(folder / "measure.json") if (folder / "measure.json").exists() else {}
    prev = read_json(folder / "train.json") if (folder / "train.json").exists() else {}
    figures = merge_figures(prev, figures, measured, time.time() - started)
    final = checkpoints(folder)
    if final and res.returncode == 0:
        # the last checkpoint's trainer state is the authority on the loss curve and the step count
        figures["loss_curve"] = history(final[-1]) or figures["loss_curve"]
        state = read_json(final[-1] / "trainer_state.json")
        figures["steps"] = int(state.get("global_step") or figures.get("steps") or 0)
    figures.update({"experiment": req.experiment, "method": req.method, "hardware": req.hardware,
                    "run_dir": str(folder), "checkpoints": [p.name for p in checkpoints(folder)]})
    if res.interrupted or res.returncode != 0:
        figures["status"] = "interrupted" if res.interrupted else "failed"
        write_json(folder / "train.json", figures)
        write_json(folder / "status.json", {"status": figures["status"], "log": str(folder / "train.log")})
        if res.interrupted:
            raise TrainError(f"interrupted; checkpoints kept in {folder}. Continue with: ftstudy train "
                             f"{folder / 'config.yaml'} --resume")
        raise ToolError(f"Axolotl training failed (exit {res.returncode}). Log: {folder / 'train.log'}\n  "
                        + "\n  ".join(res.tail[-12:]))
    figures["status"] = "completed"
    write_json(folder / "train.json", figures)
    write_json(folder / "status.json", {"status": "completed"})
    return figures


def merge_figures(prev: dict, new: dict, measured: dict, wall: float) -> dict:
    """Join a resumed run's figures onto the earlier attempt's: the loss curve continues, time adds up."""
    curve = {int(s): l for s, l in prev.get("loss_curve", [])}
    curve.update({int(s): l for s, l in new.get("loss_curve", [])})
    out = {**prev, **{k: v for k, v in new.items() if v is not None}}
    out["loss_curve"] = sorted(curve.items())
    out["wall_time_s"] = round(prev.get("wall_time_s", 0.0) + wall, 2)
    out["attempts"] = prev.get("attempts", 0) + 1
    # GB (1e9 bytes) everywhere. On GPU: the allocator's peak Axolotl logs, else nvidia-smi's sampled peak;
    # on CPU: the training process tree's peak resident set.
    gpu = new.get("gpu_peak_allocated_gb") or measured.get("peak_gpu_gb")
    peak = max(filter(None, [prev.get("peak_memory_gb"), gpu or measured.get("peak_rss_gb")]), default=None)
    out["peak_memory_gb"] = peak
    out["peak_memory_kind"] = "gpu" if gpu else "process_rss"
    return out


def data_manifest(cfg: dict) -> dict:
    """Which prepared files the run read, with their hashes and the manifests `prepare` wrote beside them."""
    out = []
    for ds in cfg.get("datasets") or []:
        p = Path(ds.get("path", ""))
        entry: dict[str, Any] = {"path": str(p), "type": ds.get("type")}
        if p.is_file():
            entry["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
            man = p.with_suffix(".manifest.json")
            if man.is_file():
                entry["manifest"] = read_json(man)
        out.append(entry)
    return {"datasets": out}
