"""Per-row token lengths of an Axolotl config's datasets, as Axolotl itself tokenizes them.

Runs in the train environment (stdlib + yaml + datasets + transformers + axolotl; it never imports ftstudy).
It copies the config with a few keys changed, runs Axolotl's own preprocess (`axolotl.cli.preprocess`) on the
copy, and reads back the tokenized dataset that preprocess saves. The changed keys make preprocess keep every
row, in order, so each length lines up with a row of the prepared JSONL files:

    sequence_len           2**30   nothing is dropped as too long (the caller applies the real limit,
                                   so it can say how many rows a limit would drop, and catch "all of them")
    shuffle_merged_datasets false  rows stay in file order, dataset after dataset
    sample_packing         false   one row per sequence (the caller simulates packing from the lengths)
    val_set_size           0       no row held back
    dataset_prepared_path  a scratch folder, removed afterwards

Output (JSON, to --out): {"kind": "sft" | "preference", "lengths": [...]} where a length is
len(input_ids) for SFT rows, and for preference rows (rl: dpo) [prompt+chosen, prompt+rejected] token counts,
measured the way Axolotl's length filter for DPO measures them (tokenizer(text, add_special_tokens=False)).

Example:
    $ python count_tokens.py --job run/config.yaml lengths.json [--job CONFIG2 OUT2 ...]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

NO_LIMIT = 2**30


def preprocess(config: Path, work: Path) -> Path:
    """Run Axolotl's preprocess on a copy of `config`; returns the folder of the saved tokenized dataset.

    It calls `axolotl.cli.preprocess.do_cli`, the function `python -m axolotl.cli.preprocess` runs, in this
    process: importing Axolotl costs ~20 s on CPU, paid once for all jobs. It also avoids a second import:
    `datasets` 4.8 saves through a *spawn* pool even for num_proc=1, and a spawned child re-imports the main
    module, which is Axolotl's CLI under `python -m` (another ~25 s) but only this small script here.
    """
    import yaml

    cfg = yaml.safe_load(config.read_text())
    cfg.update({"sequence_len": NO_LIMIT, "shuffle_merged_datasets": False, "sample_packing": False,
                "pad_to_sequence_len": False, "val_set_size": 0.0, "dataset_prepared_path": str(work / "prepared"),
                "output_dir": str(work / "out"), "excess_length_strategy": "drop"})
    for key in ("eval_sample_packing", "deepspeed", "plugins"):
        cfg.pop(key, None)  # DeepSpeed and Liger are training-time only; preprocess must not need a GPU for them
    copy = work / "config.yaml"
    copy.write_text(yaml.safe_dump(cfg, sort_keys=False))
    os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")
    from axolotl.cli.preprocess import do_cli

    # do_cli parses CLI flags from sys.argv. --download False: preprocess otherwise fetches the model's weights,
    # which counting does not need. --debug_num_examples 0: its default (1) prints a sample row picked with
    # randrange(0, len - 1), which raises on a one-row dataset.
    saved_argv, sys.argv = sys.argv, [sys.argv[0], "--download", "False", "--debug_num_examples", "0"]
    try:
        do_cli(config=str(copy))
    finally:
        sys.argv = saved_argv
    saved = [Path(p).parent for p in glob.glob(str(work / "prepared" / "*" / "dataset_info.json"))]
    if len(saved) != 1:
        raise SystemExit(f"expected one saved dataset under {work / 'prepared'}, found {len(saved)}")
    return saved[0]


def sft_lengths(ds) -> list[int]:
    return [len(ids) for ids in ds["input_ids"]]


def preference_lengths(ds, tokenizer_name: str) -> list[list[int]]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_name)

    def count(texts):
        return [len(ids) for ids in tok(list(texts), add_special_tokens=False)["input_ids"]]

    p, c, r = count(ds["prompt"]), count(ds["chosen"]), count(ds["rejected"])
    return [[a + b, a + d] for a, b, d in zip(p, c, r)]


def count(config: Path, out: Path) -> None:
    """One job: preprocess `config`, write the lengths JSON to `out`."""
    import yaml
    from datasets import load_from_disk

    cfg = yaml.safe_load(config.read_text())
    work = Path(tempfile.mkdtemp(prefix="ftstudy-count-"))
    try:
        ds = load_from_disk(str(preprocess(config.resolve(), work)))
        if cfg.get("rl"):
            result = {"kind": "preference",
                      "lengths": preference_lengths(ds, cfg.get("tokenizer_config") or cfg["base_model"])}
        else:
            result = {"kind": "sft", "lengths": sft_lengths(ds)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out.write_text(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--job", nargs=2, action="append", metavar=("CONFIG", "OUT"), required=True,
                    help="an Axolotl config and the JSON file to write its lengths to (repeatable)")
    args = ap.parse_args(argv)
    for config, out in args.job:
        count(Path(config), Path(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
