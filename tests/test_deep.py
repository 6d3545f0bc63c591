"""Axolotl's own validation (the pinned Axolotl, in the train environment) accepts every generated config."""
import pytest

from ftstudy import gen, profiles, registry
from ftstudy.deep import axolotl_check_many

pytestmark = pytest.mark.tools


def test_axolotl_accepts_every_experiment_method_profile(tmp_path):
    paths = []
    for e in registry.experiments():
        for m in e.methods:
            for hw in profiles.HARDWARE:
                p = tmp_path / f"{e.id}-{m}-{hw}.yaml"
                p.write_text(gen.render(gen.build(e.id, m, hw), e.id, m, hw, "test", str(p)))
                paths.append(p)
    found = axolotl_check_many(paths)
    assert len(found) == len(paths) == sum(len(e.methods) for e in registry.experiments()) * len(profiles.HARDWARE)
    bad = {p: [x.render() for x in probs] for p, probs in found.items() if probs}
    assert not bad


def test_axolotl_rejects_what_it_should(tmp_path):
    p = tmp_path / "bad.yaml"
    cfg = gen.build("code", hardware="cpu", overrides={"warmup_steps": 10})
    p.write_text(gen.render(cfg, "code", "lora", "cpu", "test", str(p)))
    problems = axolotl_check_many([p])[str(p)]
    assert any("mutually exclusive" in x.message for x in problems)
