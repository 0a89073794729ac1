# Kabinet — two commands: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install system-deps pwa migrate demo lint typecheck bench clean

$(STAMP): pyproject.toml
	@bash scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

pwa: install
	$(BIN)/python pwa/build.py

migrate: install
	$(BIN)/kabinet migrate

demo: migrate
	$(BIN)/kabinet demo

run: pwa demo
	$(BIN)/kabinet serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: pwa
	@bash scripts/ensure-postgres.sh
	@bash scripts/install-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

# make bench BENCH_ARGS="--documents 1000000 --users 20000 --keep" (see bench/README.md)
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) pwa/dist
