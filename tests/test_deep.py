"""Axolotl's own validation (the pinned Axolotl, in the train environment) accepts every generated config."""
import pytest

from ftstudy.config import gen
from ftstudy.config import profiles
from ftstudy.config import registry
from ftstudy.config.validate_deep import axolotl_check_many

pytestmark = pytest.mark.tools


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Every experiment x method x profile, plus one config Axolotl must reject, checked in ONE Axolotl start
    (importing Axolotl is most of the cost)."""
    tmp = tmp_path_factory.mktemp("deep")
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
    return paths, bad, axolotl_check_many(paths + [bad])


def test_axolotl_accepts_every_experiment_method_profile(checked):
    paths, bad, found = checked
    assert len(found) == len(paths) + 1
    assert len(paths) == sum(len(e.methods) for e in registry.experiments()) * len(profiles.HARDWARE)
    problems = {p: [x.render() for x in found[str(p)]] for p in paths if found[str(p)]}
    assert not problems


def test_axolotl_rejects_what_it_should(checked):
    _, bad, found = checked
    assert any("mutually exclusive" in x.message for x in found[str(bad)])
