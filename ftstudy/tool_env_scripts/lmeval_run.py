"""Run lm-evaluation-harness from a JSON spec (tool side: runs in the eval environment, no `import ftstudy`).

Usage: python lmeval_run.py SPEC.json [SPEC.json ...]   (several specs: run in turn in one process)

The same as `lm-eval run ...` with the spec's settings, with one difference: when every task is one of our
local task YAMLs, lm-eval's index of its ~14,000 built-in tasks is not built (include_defaults=False), which
saves ~15 s per call on a CPU. Shots and chat template are the spec's (the benchmark's protocol); `use_cache` is
lm-eval's sqlite request cache, so a killed run resumes at the request. Results and per-sample files are written by lm-eval's own EvaluationTracker, in
the layout its CLI uses (output_path/<model>/results_<time>.json and samples_<task>_<time>.jsonl).
"""
import json
import logging
import sys


def main(*spec_paths: str) -> int:
    # lm-eval tells how many requests its cache answered at INFO ("Cached requests: N, Requests remaining: M");
    # ftstudy reads that line from the log to record what a resumed run did not recompute
    cache_log = logging.getLogger("lm_eval.api.model")
    cache_log.setLevel(logging.INFO)
    cache_log.addHandler(logging.StreamHandler(sys.stdout))
    managers = {}  # building lm-eval's task index is the slow part of a start: once per include path
    for spec_path in spec_paths:
        run_one(json.load(open(spec_path)), managers)
    return 0


def run_one(spec: dict, managers: dict) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    key = (spec.get("include_path"), not spec.get("local_only", False))
    if key not in managers:
        managers[key] = TaskManager(include_path=key[0], include_defaults=key[1])
    tm = managers[key]
    tracker = EvaluationTracker(output_path=spec["output_path"])
    seed = spec.get("seed", 1234)
    res = simple_evaluate(
        model=spec["model"], model_args=spec["model_args"], tasks=spec["tasks"], num_fewshot=spec.get("num_fewshot"),
        batch_size=spec.get("batch_size"), device=spec.get("device"), samples=spec.get("samples"),
        log_samples=True, evaluation_tracker=tracker, apply_chat_template=spec.get("apply_chat_template", False),
        fewshot_as_multiturn=spec.get("fewshot_as_multiturn", False), gen_kwargs=spec.get("gen_kwargs"),
        task_manager=tm, random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        confirm_run_unsafe_code=spec.get("confirm_run_unsafe_code", False), bootstrap_iters=spec.get("bootstrap_iters", 1000),
        predict_only=spec.get("predict_only", False), use_cache=spec.get("use_cache"))
    samples = res.pop("samples")
    tracker.save_results_aggregated(results=res, samples=samples)
    for task in res["configs"]:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    print(json.dumps({"results": res["results"]}, default=str))


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
