# `make run`: set up and serve a demo gateway on 127.0.0.1:8080, its TSA on 127.0.0.1:8318.
# `make test`: set up and run the whole suite. Both install what they need.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCKED := $(VENV)/.locked
SEALGATE_HOME ?= .sealgate
HOST ?= 127.0.0.1
PORT ?= 8080
WORKERS ?= 1

.PHONY: setup system run test test-fast lint lock lock-check bench capacity clean

setup: lock-check $(STAMP)

system:
	@scripts/system-packages.sh

# The venv holds exactly what requirements.lock pins (hashes checked), then sealgate
# itself without dependencies. A changed lock rebuilds the venv from nothing, so no package
# the lock dropped stays behind; a changed pyproject.toml only reinstalls sealgate.
$(LOCKED): requirements.lock
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements.lock
	@touch $(LOCKED)

$(STAMP): $(LOCKED) pyproject.toml scripts/system-packages.sh
	@scripts/system-packages.sh
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Fails, saying to run `make lock`, when pyproject.toml or requirements-tools.in changed
# after the lock was written (standard library only: it runs before the venv exists).
lock-check:
	@python3 scripts/lock.py check

# Resolve the lock again from pyproject.toml and requirements-tools.in (needs the network).
# uv comes from the venv when there is one, else from a throwaway one.
lock:
	@if [ -x $(BIN)/uv ]; then uv=$(BIN)/uv; else \
		tmp=$$(mktemp -d) && python3 -m venv $$tmp && $$tmp/bin/pip install -q uv && uv=$$tmp/bin/uv; fi; \
	python3 scripts/lock.py write $$uv && echo "requirements.lock written; now run make test"

# The development TSA that stamps the demo's proofs (CAdES-B-T): its own home and token.
TSA_HOME ?= $(SEALGATE_HOME)-tsa
TSA_PORT ?= 8318

# The TSA starts first (its token, key and certificates made on first start), the demo
# home is made to trust its root (tsa-roots.pem, appended to, so older proofs' timestamps
# still check), and the gateway seals through it; the TSA stops with the gateway.
# The demo's city root PIN (init prints it once) goes beside the home, never into it:
# $(SEALGATE_HOME).root-pin, for `sealgate seal create|rotate|revoke --root-pin-file`.
run: setup
	@if [ ! -f $(SEALGATE_HOME)/config.toml ]; then \
		umask 077; mkdir -p $(SEALGATE_HOME); \
		$(BIN)/sealgate --home $(SEALGATE_HOME) init --demo > $(SEALGATE_HOME).demo.tsv.tmp \
		&& awk -F'\t' '$$1=="root-pin" {print $$2}' $(SEALGATE_HOME).demo.tsv.tmp > $(SEALGATE_HOME).root-pin \
		&& grep -v '^root-pin' $(SEALGATE_HOME).demo.tsv.tmp > $(SEALGATE_HOME)/demo.tsv \
		&& rm $(SEALGATE_HOME).demo.tsv.tmp \
		&& echo "demo home in $(SEALGATE_HOME); seals and client tokens in $(SEALGATE_HOME)/demo.tsv;" \
			"the city root's PIN in $(SEALGATE_HOME).root-pin (outside the home)"; \
	fi
	@$(BIN)/sealgate tsa serve --home $(TSA_HOME) --port $(TSA_PORT) & tsa=$$!; \
	trap 'kill $$tsa 2>/dev/null; wait $$tsa 2>/dev/null' EXIT; \
	until [ -f $(TSA_HOME)/tsa.pem ] && (: <>/dev/tcp/127.0.0.1/$(TSA_PORT)) 2>/dev/null; do \
		kill -0 $$tsa 2>/dev/null || { echo "the TSA did not start"; exit 1; }; sleep 0.1; \
	done; \
	grep -qF "$$(sed -n 2p $(TSA_HOME)/tsa-root.pem)" $(SEALGATE_HOME)/tsa-roots.pem 2>/dev/null \
		|| cat $(TSA_HOME)/tsa-root.pem >> $(SEALGATE_HOME)/tsa-roots.pem; \
	SEALGATE_TSA_URL=http://127.0.0.1:$(TSA_PORT)/ \
		$(BIN)/sealgate --home $(SEALGATE_HOME) serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

# The edit-run loop: ruff, then the tests that start no server or program of their own
# and run no long loops (those marked `slow` or `processes`: pyproject.toml, tests/conftest.py),
# in FAST_JOBS pytest-xdist workers, a test module to each (FAST_JOBS=0: in one process).
FAST_JOBS ?= 2
test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -q -m "not slow and not processes" -n $(FAST_JOBS) --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/pytest benchmarks -o addopts="" --benchmark-only --benchmark-columns=min,median,mean,ops,rounds

# `make capacity`: the capacity harness (docs/design.md §9): floors and the gateway measured in one
# run, ratios, machines needed; report in $(CAPACITY_OUT)/report.md. Its home and seeded
# population stay there, so a second run skips the seeding.
CAPACITY_OUT ?= capacity-report
CAPACITY_ARGS ?=
capacity: setup
	$(BIN)/sealgate bench capacity --out $(CAPACITY_OUT) $(CAPACITY_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .benchmarks

# `make fuzz`: coverage-guided fuzzing (atheris/libFuzzer, installed into the venv on first
# use; not a project dependency) of verify_proof and the request parsers, FUZZ_SECONDS
# each. New inputs go to tests/fuzz/.work/, crashes to tests/fuzz/.work/crash-*.
FUZZ_SECONDS ?= 60
FUZZ_WORK := tests/fuzz/.work
.PHONY: fuzz
fuzz: setup
	@$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/python -m pip install -q atheris
	@mkdir -p $(FUZZ_WORK)/der $(FUZZ_WORK)/json
	@status=0; for target in der json; do \
		echo "== atheris $$target, $(FUZZ_SECONDS) s"; \
		$(BIN)/python tests/fuzz/atheris_$$target.py $(FUZZ_WORK)/$$target tests/fuzz/corpus/$$target \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 \
			-artifact_prefix=$(FUZZ_WORK)/ -print_final_stats=1 || status=1; \
	done; exit $$status
