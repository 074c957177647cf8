# Two commands matter for a newcomer: `make demo` and `make test`. Everything else supports them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CREWAI_DISABLE_TELEMETRY := true
export CREWAI_DISABLE_TRACKING := true
export CREWAI_TRACING_ENABLED := false
export CREWAI_DISABLE_VERSION_CHECK := true

.PHONY: install demo test lint bench services serve worker clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,embeddings]'
	touch $(STAMP)

demo: install
	$(BIN)/python app.py demo

services:
	@scripts/ensure-services.sh

# Two workers, one test module each at a time (modules share a started stack): half the wall time on 2 cores.
test: install services
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m bench

serve: install
	$(BIN)/python app.py serve

worker: install
	$(BIN)/python app.py worker

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache bench/results
