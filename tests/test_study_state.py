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
