# Two entry points for a fresh clone with only Python 3.11+ present:
#   make serve  serve the demo vehicle over gRPC on 127.0.0.1:55555 (the embedded default)
#   make test   lint, type-check and run the whole test suite (in parallel; the SocketCAN part in a Linux guest)
#   make demo   decode and show the bundled demo drive without a server
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# serve and demo need only the runtime (the package and its dependencies); the test toolchain (pytest, mypy,
# ruff, opendbc, kuksa-client, grpcio-tools) is installed by the targets that use it.
RUNTIME := $(VENV)/.installed-runtime
TOOLCHAIN := $(VENV)/.installed-test

.PHONY: serve demo test lint typecheck pytest bench clean

$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME)

$(TOOLCHAIN): $(RUNTIME)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TOOLCHAIN)

serve: $(RUNTIME)
	$(BIN)/sdv serve

demo: $(RUNTIME)
	$(BIN)/sdv demo

lint: $(TOOLCHAIN)
	$(BIN)/ruff check src tests bench scripts examples
	$(BIN)/ruff format --check src tests bench scripts examples
	$(BIN)/lint-imports --no-cache

typecheck: $(TOOLCHAIN)
	$(BIN)/mypy --strict src

# The SocketCAN tests need the kernel's CAN stack: they run in a guest (tests/socketcan/guest.py installs what it
# needs when run as root), or are reported as skipped with the reason when no guest can run here.
pytest: $(TOOLCHAIN)
	$(BIN)/pytest -q -n auto -m "not socketcan"
	$(BIN)/python tests/socketcan/guest.py --ifaces vcan0,vcan1 --otherwise-here SDV_SOCKETCAN_UNAVAILABLE -- \
		$(BIN)/pytest -q -p no:cacheprovider -m socketcan tests/socketcan

test: lint typecheck pytest

bench: $(TOOLCHAIN)
	$(BIN)/python bench/bench_hal.py
	$(BIN)/python bench/bench_broker.py
	$(BIN)/python bench/bench_ota_verify.py
	$(BIN)/python bench/bench_ota_stage.py
	$(BIN)/python bench/bench_cli_startup.py
	$(BIN)/python bench/bench_serve_realtime.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache
