# Two entry points for a fresh clone with only Python 3.11+ present:
#   make serve  serve the demo vehicle over gRPC on 127.0.0.1:55555 (the embedded default)
#   make test   lint, type-check and run the whole test suite (in parallel: pytest -n auto)
#   make demo   decode and show the bundled demo drive without a server
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/sdv serve

demo: $(STAMP)
	$(BIN)/sdv demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts examples
	$(BIN)/ruff format --check src tests bench scripts examples
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP)
	$(BIN)/pytest -q -n auto

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_hal.py
	$(BIN)/python bench/bench_broker.py
	$(BIN)/python bench/bench_ota_verify.py
	$(BIN)/python bench/bench_ota_stage.py
	$(BIN)/python bench/bench_cli_startup.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache
