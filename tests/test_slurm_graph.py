"""The Slurm job graph, scripts and argv (pure); the real cluster run is in test_slurm.py."""
from pathlib import Path

from click.testing import CliRunner

from ftstudy.config import registry
from ftstudy.study.slurm import graph as slurm
from ftstudy.study import study
from ftstudy.cli.main import main


def test_dry_run_prints_every_job_of_the_whole_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["run", "--all", "--executor", "slurm", "--hardware", "h100x8", "--nodes", "2",
                                    "--partition", "gpu", "--account", "proj42", "--dry-run"])
    assert res.exit_code == 0, res.output
    exps = registry.experiments()
    expected = sum(2 + 4 * len(e.methods) for e in exps)  # shared prepare + bench-base, four stages per method
    heads = [ln for ln in res.output.splitlines() if ln.startswith("# ") and "after:" in ln]
    assert len(heads) == expected and f"{expected} job(s) planned" in res.output
    assert res.output.count("#SBATCH --partition=gpu") == expected and res.output.count("#SBATCH --account=proj42") == expected
    assert res.output.count("#SBATCH --nodes=2") == sum(len(e.methods) for e in exps)  # only training spans nodes
    assert "exec srun --ntasks-per-node=1 " in res.output
    assert not (tmp_path / "slurm").exists() and not (tmp_path / "state").exists(), "a dry run writes nothing"


def test_graph_chains_with_afterok_and_shares_prepare_and_base_bench():
    o = [study.Options("classification", m, "cpu", "./tiny") for m in ("lora", "full")]
    jobs = {j.name: j for j in slurm.graph(o, done=lambda o, s: False)}
    assert jobs["classification.full-cpu.train"].deps == ["classification.prepare"]
    assert jobs["classification.full-cpu.merge"].deps == ["classification.full-cpu.train"]
    assert jobs["classification.lora-cpu.compare"].deps == ["classification.lora-cpu.bench-ft", "classification.bench-base"]
    assert sum(j.stage == "prepare" for j in jobs.values()) == 1
    # what the cache holds as done is not submitted and nothing waits for it
    jobs = slurm.graph(o, done=lambda o, s: s in ("prepare", "bench-base") or (o.method == "lora"))
    assert [j.name for j in jobs] == [f"classification.full-cpu.{s}" for s in ("train", "merge", "bench-ft", "compare")]
    assert jobs[0].deps == [] and jobs[-1].deps == ["classification.full-cpu.bench-ft"]


def test_resources_and_time_come_from_the_profile_and_the_planner():
    r = slurm.resources("train", "h100x8-2nodes", slurm.train_minutes(10.0))
    assert r == {"nodes": 2, "gpus_per_node": 8, "cpus": 64, "mem_gb": 512, "minutes": 930}
    assert slurm.resources("bench-ft", "dgx-spark-x2")["gpus_per_node"] == 1
    assert slurm.resources("train", "cpu")["gpus_per_node"] == 0 and slurm.train_minutes(None) == 24 * 60
    assert [slurm.hhmm(m) for m in (15, 95, 1440, 6854)] == ["0:15:00", "1:35:00", "1-00:00:00", "4-18:14:00"]
    job = slurm.graph([study.Options("code", "full", "h100x8-2nodes", "./m")], lambda o, s: False,
                      lambda o: 95)[2]
    text = slurm.script(job, python="/v/bin/python", options_file=Path("/r/o.json"), cwd=Path("/r"),
                        log=Path("/r/slurm/logs/x.%j.log"), partition="gpu")
    assert "#SBATCH --time=1:35:00" in text and "#SBATCH --gpus-per-node=8" in text
    assert text.splitlines()[-1] == ("exec srun --ntasks-per-node=1 /v/bin/python -m ftstudy.study.slurm.job /r/o.json "
                                     "train")
    assert slurm.sbatch_argv(Path("a.sh"), ["11", "12"]) == ["sbatch", "--parsable", "--dependency=afterok:11:12", "a.sh"]
    assert slurm.sbatch_argv(Path("a.sh"), []) == ["sbatch", "--parsable", "a.sh"]
    assert slurm.squeue_argv(["1", "2"]) == ["squeue", "--noheader", "--states=all", "--format=%i|%T|%r", "--jobs=1,2"]
    assert slurm.scancel_argv(["7"]) == ["scancel", "7"]
