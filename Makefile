# Two commands on a fresh machine: `make run` (the pipeline on the demo data) and `make test` (the whole suite).
# Both create .venv from pyproject.toml first, and refresh it whenever pyproject.toml, setup.py or the C walk changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PARAMS ?= params/demo.yaml

.DEFAULT_GOAL := help
.PHONY: help setup run test lab bench clean-runs

help: ## list the targets, one line each
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-11s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml setup.py mlhelpers/tools/_forest_walk.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -c "from mlhelpers.execution import ensure_kernel; ensure_kernel()"  # the notebooks' kernel
	@touch $(INSTALLED)

setup: $(INSTALLED) ## create or refresh .venv from pyproject.toml (run and test do this for you)

run: $(INSTALLED) ## run explore, baseline and export on the demo data (PARAMS=params/x.yaml for another)
	$(BIN)/mlh run $(PARAMS)

test: $(INSTALLED) ## run the whole test suite: unit tests, end-to-end run, nbval over notebooks/
	$(BIN)/pytest

lab: $(INSTALLED) ## open JupyterLab on notebooks/ with the project's kernel
	$(BIN)/jupyter lab notebooks/

bench: $(INSTALLED) ## run every benchmark in benchmarks/ (minutes; prints medians and ratios)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean-runs: ## delete every run folder under runs/ (and the local MLflow store)
	rm -rf runs/
