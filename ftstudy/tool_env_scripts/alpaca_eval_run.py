"""Run AlpacaEval's own `evaluate` in the alpaca_eval environment, from a spec file written by
ftstudy.eval.harness.alpacaeval; writes one JSON of leaderboard rows and per-item preferences.

The annotator is AlpacaEval 2's default, `weighted_alpaca_eval_gpt4_turbo` (the judge's logprob of "m" vs
"M" on the package's own prompt), copied with the user's judge model name; the judge URL and key reach the
package's OpenAI client through OPENAI_API_BASE / OPENAI_API_KEY in this process's environment only.

The package numbers the annotations 0..n-1, and its length-controlled GLM reads each instruction's difficulty
by that number (its position among the 805). A --limit subset keeps its instructions' own positions: the spec's
`index` (instruction -> position), set as the annotations' index before the metric reads them.

    python alpaca_eval_run.py SPEC.json      # SPEC: see ftstudy/eval/harness/alpacaeval.py
"""
import json
import sys
from pathlib import Path

import yaml

ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"


def annotator_config(work: Path, judge_model: str) -> Path:
    import alpaca_eval

    configs = Path(alpaca_eval.__file__).parent / "evaluators_configs"
    base = yaml.safe_load((configs / ANNOTATOR / "configs.yaml").read_text())[ANNOTATOR]
    base["prompt_template"] = str(configs / base["prompt_template"])
    base["completions_kwargs"]["model_name"] = judge_model
    base["completions_kwargs"]["requires_chatml"] = True  # the prompt is ChatML whatever the judge is called
    folder = work / f"ftstudy_{ANNOTATOR}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "configs.yaml").write_text(yaml.safe_dump({folder.name: base}, sort_keys=False))
    return folder / "configs.yaml"


def with_original_index(fn_metric: str, index: dict):
    """The package's metric, given the annotations indexed by each instruction's position among the 805."""
    import pandas as pd
    from alpaca_eval import metrics

    fn = getattr(metrics, fn_metric)

    def metric(annotations, **kwargs):
        df = pd.DataFrame.from_records(list(annotations))
        df.index = pd.Index([int(index[i]) for i in df["instruction"]])
        metric.seen = [int(i) for i in df.index]  # what the metric was given, reported in the result
        return fn(df, **kwargs)

    return metric


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    from alpaca_eval import main as ae

    config = annotator_config(Path(spec["work"]), spec["judge_model"])
    out = {"annotator": ANNOTATOR, "comparisons": {}}
    for cmp in spec["comparisons"]:
        metric = with_original_index(cmp["fn_metric"], spec["index"])
        board, annotations = ae.evaluate(
            model_outputs=spec["model_outputs"], reference_outputs=cmp["reference_outputs"],
            annotators_config=str(config), output_path=str(Path(spec["work"]) / cmp["name"]),
            precomputed_leaderboard=None, is_return_instead_of_print=True,
            fn_metric=metric,
            sort_by="length_controlled_winrate" if "length" in cmp["fn_metric"] else "win_rate",
            is_cache_leaderboard=False)
        row = board.reset_index().to_dict(orient="records")
        out["comparisons"][cmp["name"]] = {
            "fn_metric": cmp["fn_metric"], "leaderboard": json.loads(json.dumps(row, default=float)),
            "metric_index": getattr(metric, "seen", None),
            "annotations": [{"instruction": a.get("instruction"), "preference": a.get("preference"),
                             "generator_1": a.get("generator_1"), "generator_2": a.get("generator_2")}
                            for a in json.loads(json.dumps(list(annotations), default=str))]}
    Path(spec["result"]).write_text(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
