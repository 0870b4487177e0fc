# The two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?=
DEMO_DIR ?= .mlmon-demo

.PHONY: run test lint fmt typecheck migrate bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## run: serve the demo fleet on SQLite at http://127.0.0.1:8000 (data in $(DEMO_DIR));
##      `make run CONFIG=path/to/mlmon.yaml` serves your own file instead
run: $(VENV)/.installed-run
	@extras=$$($(BIN)/mlmon extras $(CONFIG)); \
	if [ -n "$$extras" ] && [ ! -f "$(VENV)/.installed-run-$$extras" ]; then \
		echo "installing the extras this configuration needs: $$extras"; \
		$(BIN)/pip install -q -e ".[$$extras]" && touch "$(VENV)/.installed-run-$$extras"; \
	fi
ifeq ($(strip $(CONFIG)),)
	$(BIN)/mlmon demo --data-dir $(DEMO_DIR)
else
	MLMON_CONFIG=$(CONFIG) $(BIN)/mlmon serve
endif

## test: the whole suite, static checks included (set TESTS=expr to filter)
test: $(VENV)/.installed-dev
	$(BIN)/pytest $(if $(TESTS),-k "$(TESTS)",)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

migrate: $(VENV)/.installed-run
	$(BIN)/mlmon migrate

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) mlmon.db mlmon.db-wal mlmon.db-shm mlmon.db.leader .pytest_cache .mypy_cache .ruff_cache
