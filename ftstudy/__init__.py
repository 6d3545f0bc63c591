"""ftstudy: one base model fine-tuned eleven ways, each benchmarked before and after.

The package imports no torch, transformers or vLLM at start-up; the heavy tools run in their own environments.
"""
__version__ = "0.1.0"


def results(root="results"):
    """Every result as a pandas DataFrame: one row per experiment × tag × benchmark × metric.

    Example:
        >>> import ftstudy
        >>> df = ftstudy.results("results")  # doctest: +SKIP
    """
    from pathlib import Path

    import pandas as pd

    from ftstudy.eval import records as _records

    rows = []
    for rec in _records.iter_results(Path(root)):
        for metric, value in (rec.get("metrics") or {rec["metric"]: rec.get("value")}).items():
            rows.append({"experiment": rec["experiment"], "tag": rec["tag"], "benchmark": rec["benchmark"],
                         "metric": metric, "value": value, "primary": metric == rec["metric"], "n": rec.get("n"),
                         "model": rec.get("model"), "harness": rec.get("harness"), "path": rec["_path"]})
        if not rec.get("metrics"):
            continue
    return pd.DataFrame(rows, columns=["experiment", "tag", "benchmark", "metric", "value", "primary", "n", "model",
                                       "harness", "path"])


def compare(experiment, base="base", ft=None, root="results"):
    """The comparison rows of one experiment (every fine-tuned tag, or `ft`) as a pandas DataFrame."""
    from pathlib import Path

    import pandas as pd

    from ftstudy.study import comparison as _comparison

    rows = [{**r, "tag": t} for t, got in _comparison.compare_tags(experiment, Path(root), base, ft).items() for r in got]
    return pd.DataFrame(rows)
