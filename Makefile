# Two commands on a fresh machine: `make run` (set up .venv and serve on the embedded default)
# and `make test` (set up, lint, install system test dependencies, start services, run the tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint setup setup-test system-deps services bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/golfcheck serve --host $(HOST) --port $(PORT)

system-deps:
	bash .ci/system-deps

services:
	bash .ci/services

# ruff with the pinned version and rule set of pyproject.toml ([tool.ruff]); `make test` runs it first.
lint: setup
	$(BIN)/ruff check .

test: lint setup system-deps services
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var test-artifacts
