"""Axolotl's own validation (the pinned Axolotl, in the train environment) accepts every generated config."""
from pathlib import Path

import pytest

from ftstudy.config import gen
from ftstudy.config import profiles
from ftstudy.config import registry

pytestmark = pytest.mark.tools


def configs(tmp: Path) -> tuple[list[Path], Path]:
    """Every experiment x method x profile, written out, and one config Axolotl must reject."""
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for e in registry.experiments():
        for m in e.methods:
            for hw in profiles.HARDWARE:
                p = tmp / f"{e.id}-{m}-{hw}.yaml"
                p.write_text(gen.render(gen.build(e.id, m, hw), e.id, m, hw, "test", str(p)))
                paths.append(p)
    bad = tmp / "bad.yaml"
    cfg = gen.build("code", hardware="cpu", overrides={"warmup_steps": 10})
    bad.write_text(gen.render(cfg, "code", "lora", "cpu", "test", str(bad)))
    return paths, bad


@pytest.fixture
def checked(axolotl_checks):
    """(paths, bad, Axolotl's problems by path), checked in the session's ONE Axolotl start (tests/conftest.py)."""
    paths, bad = axolotl_checks["configs"]["deep"]
    return paths, bad, axolotl_checks["found"]


def test_axolotl_accepts_every_experiment_method_profile(checked):
    paths, bad, found = checked
    assert {str(p) for p in paths + [bad]} <= set(found)  # a verdict for each (with the other tests' configs)
    assert len(paths) == sum(len(e.methods) for e in registry.experiments()) * len(profiles.HARDWARE)
    problems = {p: [x.render() for x in found[str(p)]] for p in paths if found[str(p)]}
    assert not problems


def test_axolotl_rejects_what_it_should(checked):
    _, bad, found = checked
    assert any("mutually exclusive" in x.message for x in found[str(bad)])
