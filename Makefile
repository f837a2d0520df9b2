# `make run`: set up and serve a demo gateway on 127.0.0.1:8080.
# `make test`: set up and run the whole suite. Both install what they need.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SEALGATE_HOME ?= .sealgate
HOST ?= 127.0.0.1
PORT ?= 8080
WORKERS ?= 1

.PHONY: setup system run test lint bench clean

setup: $(STAMP)

system:
	@scripts/system-packages.sh

$(STAMP): pyproject.toml scripts/system-packages.sh
	@scripts/system-packages.sh
	@test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

run: setup
	@if [ ! -f $(SEALGATE_HOME)/config.toml ]; then \
		umask 077; mkdir -p $(SEALGATE_HOME); \
		$(BIN)/sealgate --home $(SEALGATE_HOME) init --demo > $(SEALGATE_HOME).demo.tsv.tmp \
		&& mv $(SEALGATE_HOME).demo.tsv.tmp $(SEALGATE_HOME)/demo.tsv \
		&& echo "demo home in $(SEALGATE_HOME); seals and client tokens in $(SEALGATE_HOME)/demo.tsv"; \
	fi
	$(BIN)/sealgate --home $(SEALGATE_HOME) serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/pytest bench -o addopts="" --benchmark-only --benchmark-columns=min,median,mean,ops,rounds

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .benchmarks
