# make fit        - create .venv if missing, install the project, train the default experiment
# make test       - the test suite (what CI runs)
# make test-fast  - the tests a developer runs before every commit (no real training, no DDP)
# make verify    - whether the default experiment (or ARGS) trains the same under every split: docs/verify.md
# >>> template
# make durations  - the whole suite, rewriting tests/durations.txt (the order that runs the longest first)
# make core-wheel - a wheel of lightning-template-core in dist/, for projects baked from this checkout
# <<< template
# Variables: PYTHON (interpreter for the venv), TORCH (the torch requirement; e.g.
# TORCH="torch --index-url https://download.pytorch.org/whl/cu128" for a CUDA build),
# CORE_FROM (where pip finds lightning-template-core besides the package index: a folder of wheels or
# a URL), ARGS (overrides for fit, e.g. ARGS="trainer=gpu seed=1"), PYTEST_ARGS.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
ARGS ?=
# a worker per core; tests handed out one at a time, so the longest (first) ones spread over the workers
PYTEST_ARGS ?= -n auto --maxschedchunk 1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CORE_FROM ?=
.PHONY: install fit verify test test-fast lint clean

# >>> template
.PHONY: durations bench core-wheel
# This repository holds the core library too (core/): installed from here, editable, before the project.
CORE ?= -e ./core[test,docs]
# <<< template
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet $(if $(CORE_FROM),--find-links $(CORE_FROM)) $(CORE) -e ".[dev]"
	# >>> template
	# W&B's sweep-config code and the scipy it imports, for the offline checks of configs/sweep/, in a
	# folder that tests/test_sweep_configs.py alone puts on its path: in the venv, torchmetrics would
	# import scipy.signal at every start (1.4 s of each process). Without sweeps' numpy<2 pin, which
	# its schema and random/grid search do not need.
	$(BIN)/python -m pip install --quiet --no-deps --upgrade --target $(VENV)/sweeps-validator "sweeps==0.3.0" "scipy>=1.10"
	# <<< template
	touch $(STAMP)

install: $(STAMP)

fit: $(STAMP)
	$(BIN)/fit $(ARGS)

verify: $(STAMP)
	$(BIN)/verify $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# the workflows: zizmor's security audit (no network) and GitHub's workflow schema
	$(BIN)/zizmor --offline .github/workflows/
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	# >>> template
	# the Dockerfile (its rule settings: .hadolint.yaml)
	$(BIN)/hadolint Dockerfile
	# the core's API reference, built from its docstrings, warnings as errors
	cd core && ../$(BIN)/mkdocs build --strict --quiet --site-dir ../.venv/core-site

durations: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS) --record-durations

bench: $(STAMP)
	$(BIN)/python scripts/bench_step.py
	# >>> sentences
	$(BIN)/python scripts/sentences_throughput.py
	# <<< sentences
	$(BIN)/python scripts/bench_sampler.py

core-wheel: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist ./core
	# <<< template

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis
