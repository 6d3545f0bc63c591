"""Score saved generations with bigcode-evaluation-harness's own evaluation: for each job, the task's
`process_results(generations, references)` (bigcode's code_eval: its programs, its executor, its timeout, its
pass@k estimator), as bigcode's Evaluator.evaluate does after `--load_generations_path`.

Runs inside ftstudy's bubblewrap jail (no network, read-only view, limits on the whole tree) with the jail's
Python, so it finds the bigcode environment's packages and source at the paths given in argv, and the jobs
as a JSON file. It never imports ftstudy. Prints one JSON line: per job, {"metrics": {"pass@1": ...}, "outcomes": [[code_eval's result per candidate]]}.

Example:
    $ python -I bigcode_score.py /task/jobs.json /task/lib /task/site-packages /task/src
"""
import json
import os
import sys


def main(jobs_path: str, libs: str, *paths: str) -> None:
    if os.environ.get("LD_LIBRARY_PATH") != libs:  # the shared libraries the packages' extensions load
        os.execve(sys.executable, [sys.executable, "-I", *sys.argv], {**os.environ, "LD_LIBRARY_PATH": libs})
    sys.path[:0] = list(paths)
    # offline: the jail has no network; bigcode's Task loads its dataset at construction and, failing, goes on
    # without it (process_results needs only the generations and references)
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": "/tmp/hf",
                       "TOKENIZERS_PARALLELISM": "false", "HF_ALLOW_CODE_EVAL": "1"})
    import warnings

    warnings.simplefilter("ignore")
    from bigcode_eval import tasks
    from bigcode_eval.tasks.custom_metrics import code_eval

    with open(jobs_path, encoding="utf-8") as fh:
        jobs = json.load(fh)
    out = []
    for job in jobs:
        task = tasks.get_task(job["task"])
        # the per-program outcomes, read from the same code_eval call the task makes
        seen = {}
        compute = code_eval.compute_code_eval

        def recording(*args, **kwargs):
            pass_at_k, results = compute(*args, **kwargs)
            seen.update(results)
            return pass_at_k, results

        setattr(sys.modules[type(task).__module__], "compute_code_eval", recording)
        metrics = task.process_results(job["generations"], job["references"])
        setattr(sys.modules[type(task).__module__], "compute_code_eval", compute)
        outcomes = [[r[1]["result"] for r in sorted(seen.get(i, []), key=lambda r: r[0])]
                    for i in range(len(job["generations"]))]
        out.append({"metrics": {k: float(v) for k, v in metrics.items()}, "outcomes": outcomes})
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
