"""Put local test-split rows into the HF datasets cache where bigcode's `load_dataset(<hub id>)` finds them offline.

Runs in the bigcode environment (datasets; it never imports ftstudy). bigcode-evaluation-harness loads its
datasets by hub id only (`openai_humaneval`, `mbpp`); with HF_DATASETS_OFFLINE=1, `datasets` falls back to the
newest cache entry `<cache>/<id>/<config>/<version>/<hash>/` whose dataset_info names that config -- the layout
an online `load_dataset(<id>)` leaves behind. This script writes that entry from rows in the hub's shape, so
tests and machines without the hub use bigcode's own loading code unchanged.

Example:
    $ python bigcode_stage.py DIR/hf_home/datasets openai_humaneval=openai_humaneval=rows/openai_humaneval.jsonl \
          mbpp=full=rows/mbpp.jsonl
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from datasets.packaged_modules.json.json import Json


def stage(cache: Path, hub_id: str, config: str, rows: Path) -> Path:
    builder = Json(cache_dir=str(cache), dataset_name=hub_id, config_name=config, data_files={"test": str(rows)},
                   hash="staged")
    builder.download_and_prepare()
    # data_files give the config a suffixed id (full-1a2b...); the offline lookup wants the plain config name
    built = Path(builder.cache_dir).parent.parent
    target = cache / hub_id / config
    if built != target:
        shutil.rmtree(target, ignore_errors=True)
        built.rename(target)
    return target


def main(argv: list[str]) -> None:
    cache = Path(argv[0])
    for spec in argv[1:]:
        hub_id, config, rows = spec.split("=", 2)
        print(stage(cache, hub_id, config, Path(rows)))


if __name__ == "__main__":
    main(sys.argv[1:])
