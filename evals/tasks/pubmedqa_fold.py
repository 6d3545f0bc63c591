"""lm-eval hook of pubmedqa_local (runs inside lm-eval, imports nothing from ftstudy): keep PubMedQA's
500-question test fold, the PMIDs listed in pubmedqa_test_pmids.txt beside this file, as lm-eval's pubmedqa does."""
from pathlib import Path


def test_fold(dataset):
    listed = Path(__file__).with_name("pubmedqa_test_pmids.txt").read_text().splitlines()
    pmids = {line.strip() for line in listed if line.strip() and not line.startswith("#")}
    return dataset.filter(lambda doc: str(doc["pubid"]) in pmids)
