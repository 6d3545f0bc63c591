"""An offline Hugging Face cache built from tests/fixtures/lmeval_hub/ (hub-shaped rows of each dataset that an
lm-eval benchmark reads): the cache `ftstudy stage-data` fills from the hub, here filled from local rows, so that
lm-eval's own task YAMLs (`dataset_path: cais/mmlu`, ...) load unchanged with HF_HOME pointed at it, offline.

Each `<org>___<name>.jsonl` row names its `_config` and `_split`; the eval environment's `datasets` writes each
config as the hub loader would (`datasets/<org>___<name>/<config>/0.0.0/<hash>/<name>-<split>.arrow`).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from ftstudy.core import tool_envs as envs

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lmeval_hub"
BUILD = r"""
import collections, json, shutil, sys, tempfile
from pathlib import Path
from datasets.naming import camelcase_to_snakecase
from datasets.packaged_modules.json.json import Json

src, root = Path(sys.argv[1]), Path(sys.argv[2]) / "datasets"
for f in sorted(src.glob("*.jsonl")):
    org, name = f.stem.split("___")
    parts = collections.defaultdict(lambda: collections.defaultdict(list))
    for line in f.read_text().splitlines():
        row = json.loads(line)
        parts[row.pop("_config") or "default"][row.pop("_split")].append(row)
    for config, splits in parts.items():
        with tempfile.TemporaryDirectory() as tmp:
            files = {}
            for split, rows in splits.items():
                files[split] = f"{tmp}/{split}.jsonl"
                Path(files[split]).write_text("".join(json.dumps(r) + "\n" for r in rows))
            b = Json(cache_dir=f"{tmp}/build", dataset_name=name, config_name=config, hash="fixture", data_files=files)
            b.download_and_prepare()
            dest = root / f"{org}___{camelcase_to_snakecase(name)}" / config / "0.0.0" / "fixture"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(b.cache_dir, dest)
            info = json.loads((dest / "dataset_info.json").read_text())
            info["config_name"] = config  # as the hub loader names it (the builder adds a hash of data_files)
            (dest / "dataset_info.json").write_text(json.dumps(info))
print("built", root)
"""


def build_hf_home(dest: Path) -> Path:
    """Write the HF cache of every fixture repo under dest (an HF_HOME); returns dest."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(envs.bin_path("eval")), "-c", BUILD, str(FIXTURES), str(dest)], check=True,
                   capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"})
    return dest
