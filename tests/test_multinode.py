"""One job on many GPUs and nodes: profiles with nodes, ZeRO/FSDP chosen by the planner, the multi-node launch.

The launch is a pure builder: its exact argv and environment are asserted for every profile, on one node and
on two. What runs here for real: `ftstudy validate --deep` (Axolotl's own validation) of the multi-node
configs, and a 2-process data-parallel run over gloo through the same `accelerate launch` path.
Axolotl 0.19 itself cannot train with 2 processes on CPU (it places the model on device index LOCAL_RANK
whenever world_size > 1, an accelerator device), so the 2-process run starts a plain torch.distributed script.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftstudy.config import gen
from ftstudy.train import launch
from ftstudy.plan import estimate as planner
from ftstudy.config import profiles
from ftstudy.config import sharding
from ftstudy.train import train
from ftstudy.cli.main import main

FIX = Path(__file__).parent / "fixtures"


def expected_argv(prof: dict, cluster: launch.Cluster) -> list[str]:
    """The launch written out by hand from accelerate's documented flags, to compare with the builder."""
    gpus, cpu = prof["gpus"], not prof["gpu"]
    argv = ["acc", "launch"] + (["--multi_gpu"] if gpus > 1 else [])
    argv += ["--num_processes", str(gpus), "--num_machines", str(prof["nodes"])]
    if gpus > 1:
        argv += ["--machine_rank", str(cluster.machine_rank), "--main_process_ip", cluster.main_ip,
                 "--main_process_port", str(cluster.main_port), "--rdzv_backend", "static"]
        argv += ["--same_network"] if prof["nodes"] > 1 else []
    argv += ["--mixed_precision", "no" if cpu else "bf16", "--dynamo_backend", "no"]
    argv += ["--cpu"] if cpu and gpus == 1 else []
    return argv + ["-m", "axolotl.cli.train", "run/launch.yaml"]


def test_every_profile_on_one_and_two_nodes_has_its_exact_launch():
    env = {"SLURM_NNODES": "2", "SLURM_NODEID": "1", "SLURM_JOB_ID": "123456", "SLURM_JOB_NODELIST": "n[1-2]"}
    checked = 0
    for name in profiles.PROFILES:
        for hw in {name, profiles.with_nodes(name, 2)}:
            prof = profiles.profile(hw)
            cluster = launch.from_slurm({**env, "SLURM_NNODES": str(prof["nodes"]),
                                         "SLURM_NODEID": str(prof["nodes"] - 1)}, ["n1", "n2"])
            argv = train.launch_argv("acc", "run/launch.yaml", prof["gpus"], not prof["gpu"], cluster)
            assert argv == expected_argv(prof, cluster), hw
            assert cluster.main_ip == "n1" and cluster.main_port == 29500 + 456
            assert cluster.machine_rank == prof["nodes"] - 1
            env_cpu = train.tool_env(hw).get("ACCELERATE_USE_CPU")
            assert env_cpu == ("true" if not prof["gpu"] and prof["gpus"] > 1 else None), hw
            checked += 1
    assert checked == len(profiles.PROFILES) * 2 - sum(p["nodes"] == 2 for p in profiles.PROFILES.values())


def test_two_spark_and_multi_node_h100_launch_exactly():
    c = launch.Cluster(2, 1, "spark-a", 29577)
    assert train.launch_argv("acc", "l.yaml", profiles.profile("dgx-spark-x2")["gpus"], False, c) == [
        "acc", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "2", "--machine_rank", "1",
        "--main_process_ip", "spark-a", "--main_process_port", "29577", "--rdzv_backend", "static", "--same_network",
        "--mixed_precision", "bf16", "--dynamo_backend", "no", "-m", "axolotl.cli.train", "l.yaml"]
    p = profiles.profile("h100x8-4nodes")
    assert (p["nodes"], p["gpus_per_node"], p["gpus"]) == (4, 8, 32)
    assert launch.hostnames_argv("gpu[01-04]") == ["scontrol", "show", "hostnames", "gpu[01-04]"]


def test_flags_override_slurm_and_bad_ranks_are_one_line():
    env = {"SLURM_NNODES": "2", "SLURM_NODEID": "0", "SLURM_JOB_ID": "7"}
    c = launch.resolve(None, 1, "10.0.0.4", 6000, env=env)
    assert c == launch.Cluster(2, 1, "10.0.0.4", 6000)
    assert launch.resolve(env={}) == launch.Cluster()
    with pytest.raises(Exception, match="--machine-rank 3 is outside 0..1"):
        launch.resolve(2, 3, "h", env={})
    with pytest.raises(train.TrainError, match="runs on 2 node"):
        train.cluster_for("dgx-spark-x2", launch.Cluster(), dry_run=False)


def test_slurm_nodelist_is_expanded_by_scontrol_when_available(tmp_path, monkeypatch):
    """Outside a cluster scontrol cannot answer: the user is told to pass --main-ip, in one line."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no scontrol on PATH
    with pytest.raises(Exception, match="pass --main-ip HOST instead|cannot start"):
        launch.resolve(env={"SLURM_NNODES": "2", "SLURM_NODEID": "1", "SLURM_JOB_NODELIST": "n[1-2]"})


def test_planner_chooses_sharding_for_full_fine_tuning_of_7b():
    """One GPU: no sharding and an 8-bit optimizer. Several: the cheapest ZeRO stage that fits fused AdamW."""
    seen = {}
    for hw in ("h100", "h100-2nodes", "h100x8", "dgx-spark", "dgx-spark-x2", "cpu"):
        cfg = gen.build("instruction", "full", hw)
        p = planner.estimate(cfg, hw, None, "full")
        seen[hw] = (cfg.get("deepspeed"), (cfg.get("fsdp_config") or {}).get("reshard_after_forward"),
                    cfg["optimizer"], p["settings"]["zero_stage"], p["fits"])
    assert seen["h100"] == (None, None, "paged_adamw_8bit", 0, True)
    assert seen["h100-2nodes"][0] == sharding.DEEPSPEED[2] and seen["h100-2nodes"][2] == "adamw_torch_fused"
    assert seen["h100x8"][:3] == (sharding.DEEPSPEED[2], None, "adamw_torch_fused")
    assert seen["dgx-spark-x2"][1:4] == (False, "adamw_torch_fused", 2)
    assert all(v[4] for k, v in seen.items() if k != "cpu")
    # adapters: ZeRO-2 under DeepSpeed, plain DDP under FSDP2 profiles
    assert gen.build("code", "lora", "h100x8")["deepspeed"] == sharding.DEEPSPEED[2]
    assert "fsdp_config" not in gen.build("code", "lora", "dgx-spark-x2")


def test_zero3_is_chosen_when_zero2_does_not_fit():
    cfg = gen.build("instruction", "full", "h100")
    tight = {**cfg, "micro_batch_size": 8}
    keys = sharding.choose(tight, "h100-2nodes")
    assert keys["deepspeed"] == sharding.DEEPSPEED[3], keys


def test_per_gpu_memory_falls_as_sharding_predicts():
    p = planner.plan("instruction", "full", "h100-2nodes")
    rows = {r["gpus"]: r for r in p["scaling"]}
    assert sorted(rows) == [1, 2, 8]
    assert rows[1]["total_gb"] > rows[2]["total_gb"] > rows[8]["total_gb"]
    # ZeRO-3 divides weights, gradients and optimizer states by the number of GPUs
    for w in (2, 8):
        assert rows[w]["sharded_states_gb"] == pytest.approx(rows[1]["sharded_states_gb"] / w, rel=1e-3)
    link = p["interconnect"]
    assert link["gpus"] == 2 and link["nodes"] == 2 and link["gb_per_s"] == 50.0 and link["hours"] > 0


def test_plan_nodes_2_says_what_fits_per_gpu():
    res = CliRunner().invoke(main, ["plan", "instruction", "--method", "full", "--hardware", "h100", "--nodes", "2"])
    assert res.exit_code == 0, res.output
    assert "peak memory per GPU (GB), each of 2 GPUs on 2 nodes" in res.output
    assert "of 79 usable: fits" in res.output and "interconnect:" in res.output
    assert "1 GPU:" in res.output and "2 GPUs:" in res.output and "8 GPUs:" in res.output


def test_gen_nodes_header_regenerates_with_the_same_flags(tmp_path):
    out = tmp_path / "c.yaml"
    res = CliRunner().invoke(main, ["gen", "instruction", "--method", "full", "--hardware", "h100", "--nodes", "2",
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "hardware: h100-2nodes" in text and "--hardware h100 --nodes 2" in text
    assert "deepspeed: axolotl_configs/deepspeed/zero2.json" in text


@pytest.mark.tools
def test_multi_node_configs_pass_axolotls_own_validation(tmp_path):
    paths = []
    for args in (["--hardware", "h100", "--nodes", "2"], ["--hardware", "dgx-spark-x2"], ["--hardware", "h100x8", "--nodes", "2"]):
        out = tmp_path / f"{'-'.join(a.strip('-') for a in args)}.yaml"
        res = CliRunner().invoke(main, ["gen", "instruction", "--method", "full", *args, "-o", str(out)])
        assert res.exit_code == 0, res.output
        paths.append(str(out))
    res = CliRunner().invoke(main, ["validate", "--deep", *paths])
    assert res.exit_code == 0, res.output
    assert f"{len(paths)} file(s) checked, 0 invalid" in res.output


@pytest.mark.tools
def test_two_process_data_parallel_run_through_accelerate_launch(tmp_path):
    """The launch path of a 2-GPU job (torchrun under accelerate, static rendezvous, gloo on CPU) for real."""
    from ftstudy.core import tool_envs as envs

    hw = "cpu-2nodes"
    prof = profiles.profile(hw)
    cluster = launch.Cluster(1, 0, "127.0.0.1", 29400 + os.getpid() % 500)  # both ranks on this one machine
    argv = launch.argv(str(envs.bin_path("train", "accelerate")), str(tmp_path / "out"), prof["gpus"], True,
                       cluster, target=[str(FIX / "ddp_check.py")])
    env = {**os.environ, **train.tool_env(hw)}
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    ranks = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world"] for r in ranks] == [2, 2] and {r["backend"] for r in ranks} == {"gloo"}
    assert ranks[0]["grad"] == pytest.approx(ranks[1]["grad"])
    assert ranks[0]["grad"] == pytest.approx(ranks[0]["full_batch_grad"])  # averaged shards = the full batch
