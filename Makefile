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

# The install stamp holds the sha256 of the pyproject.toml it was made from: `make run` reinstalls
# only when the dependencies' file changed content (a checkout, a merge or an editor touching its
# mtime is not a change), and says so when it does.
STAMP := $(VENV)/.installed

setup: | $(BIN)/python
	@want=$$(sha256sum pyproject.toml | cut -d' ' -f1); \
	if [ "$$(cat $(STAMP) 2>/dev/null)" = "$$want" ]; then \
		echo "setup: $(VENV) is current (pyproject.toml unchanged)"; \
	else \
		echo "setup: installing into $(VENV) (pyproject.toml changed or first run)"; \
		$(BIN)/pip install --quiet torch==2.13.0 && \
		$(BIN)/pip install --quiet -e '.[test]' && \
		echo "$$want" > $(STAMP); \
	fi

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

# Every benchmark once with its quickest arguments (bench/run_all.py; BENCH_ARGS="--only eval_speed" for one).
bench: setup
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var test-artifacts
