"""What a study's state file records is enough to rebuild its stage keys (`ftstudy status` does)."""
from ftstudy.config import registry
from ftstudy.study import study
from ftstudy.study.study_state import STAGES, Options, options_from_state, saved_options, state_path
from ftstudy.core.fsio import write_json


def test_status_of_a_study_on_chosen_sources_is_current_not_stale(tmp_path):
    exp = registry.experiment("medical")
    chosen = (exp.sources[1].id,)  # not the default mixture: the prepare key depends on the choice
    o = Options("medical", exp.methods[0], "cpu", sources=chosen, root=tmp_path)
    keys = study.Study(o, progress=lambda m: None).keys()
    assert keys["prepare"] != study.Study(Options("medical", exp.methods[0], "cpu", root=tmp_path),
                                          progress=lambda m: None).keys()["prepare"]
    write_json(state_path(o), {"_options": saved_options(o), **{s: {"status": "done", "key": keys[s]} for s in STAGES}})
    assert {r["stage"]: r["status"] for r in study.status(tmp_path, "medical")} == {s: "done" for s in STAGES}
    assert options_from_state({"_options": saved_options(o)})["sources"] == chosen


def test_prepare_is_current_only_with_the_token_counts_a_run_asks_for(tmp_path):
    """A study prepared with --no-count-tokens, rerun with counting asked for, must prepare again (its manifests
    hold no counts); the other way round, the counted files serve as they are."""
    def study_of(count_tokens):
        return study.Study(Options("classification", "lora", "cpu", root=tmp_path, count_tokens=count_tokens),
                           progress=lambda m: None)

    paths = [tmp_path / ds["path"] for ds in study_of(True).req.cfg["datasets"]]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("{}\n")
        write_json(p.with_suffix(".manifest.json"), {"tokens": None})
    assert study_of(False).outputs_exist("prepare") and not study_of(True).outputs_exist("prepare")
    for p in paths:
        write_json(p.with_suffix(".manifest.json"), {"tokens": {"rows": 1, "tokens": 9}})
    assert study_of(True).outputs_exist("prepare") and study_of(False).outputs_exist("prepare")
