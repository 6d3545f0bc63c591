"""ROUGE-1/2/L/Lsum F1 x 100 with `rouge_score`, plus seeded bootstrap 95% CIs and per-sample scores.

Sentence splitting for rougeLsum: rouge_score splits both summaries on newlines when
`split_summaries=False`, which is what we use. `split_summaries=True` would call NLTK's `sent_tokenize`,
which needs the punkt data that offline machines lack. So a prediction is split on "\\n" only: a model that
writes its summary as one paragraph gets rougeLsum computed as if it were one sentence (CNN/DM
references are one highlight per line already). Prompt for one sentence per line if that matters.

Unlike `rouge_score.scoring.BootstrapAggregator`, which draws from numpy's global random state, the CIs
here are seeded (`ftstudy.eval.stats.bootstrap_ci`), so a rerun reports the same bounds.

Example:
    >>> metrics, samples = score([{"id": 1, "output": "the cat sat"}], [{"id": 1, "reference": "the cat sat"}])
    >>> metrics["rouge1"], metrics["n"]
    (100.0, 1)
"""
from __future__ import annotations

from ftstudy.eval.scorers import ScoreInputError, index_by_id
from ftstudy.eval.stats import bootstrap_ci

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def scorer():
    """The one rouge_score configuration used everywhere (stemming on, newline sentence split).

    Example:
        >>> scorer().score("the cats sat", "the cat sat")["rouge1"].fmeasure
        1.0
    """
    from rouge_score import rouge_scorer  # imported here: it pulls in nltk, slow for `ftstudy --help`

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True, split_summaries=False)


def score(
    predictions: list[dict], references: list[dict], n_resamples: int = 2000, seed: int = 0
) -> tuple[dict, list[dict]]:
    """Score predictions `{"id", "output"}` against references `{"id", "reference"}`.

    Returns (metrics, samples): metrics has rouge1, rouge2, rougeL, rougeLsum (mean F1 x 100), each with
    `_low`/`_high` (95% bootstrap CI), and n, the number of references; samples has one record per
    reference with its four F1 x 100 scores. A reference without a prediction scores 0.

    Example:
        >>> m, s = score([], [{"id": "a", "reference": "some text"}])
        >>> m["rougeL"], s[0]["missing"]
        (0.0, True)
    """
    preds = index_by_id(predictions, "predictions")
    refs = index_by_id(references, "references")
    rs = scorer()
    samples = []
    for key, ref in refs.items():
        target = ref.get("reference")
        if not isinstance(target, str):
            raise ScoreInputError(f"reference {ref['id']!r} has no string 'reference'")
        pred = preds.get(key)
        output = pred.get("output") if pred is not None else None
        record = {"id": ref["id"], "missing": pred is None}
        if isinstance(output, str) and output.strip():
            result = rs.score(target, output)  # rouge_score's order: target first
            record.update({t: 100.0 * result[t].fmeasure for t in ROUGE_TYPES})
        else:  # missing, null or empty output: nothing overlaps, and rouge_score would say 0 too
            record.update({t: 0.0 for t in ROUGE_TYPES})
        samples.append(record)
    metrics: dict = {}
    for t in ROUGE_TYPES:
        if samples:
            ci = bootstrap_ci([s[t] for s in samples], n_resamples=n_resamples, seed=seed)
            metrics.update({t: ci.mean, f"{t}_low": ci.low, f"{t}_high": ci.high})
        else:
            metrics.update({t: None, f"{t}_low": None, f"{t}_high": None})
    metrics["n"] = len(samples)
    return metrics, samples
