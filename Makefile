# escli: `make demo` and `make test` work on a fresh machine; everything they need is installed from here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ES_URL ?= http://127.0.0.1:9200
DOCS ?= 20000
NODES ?= 1
ENGINE ?= elasticsearch
REDIS_PORT ?= 6379
export ES_URL

.PHONY: install es-up es-down redis-up redis-down sample-data demo test fuzz bench lint completions clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@scripts/bootstrap.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,parquet]'
	@touch $@

es-up:
	@scripts/bootstrap.sh
	@ENGINE=$(ENGINE) NODES=$(NODES) scripts/es.sh up

es-down:
	@ALL=1 scripts/es.sh down

redis-up:
	@REDIS_PORT=$(REDIS_PORT) scripts/redis.sh up

redis-down:
	@REDIS_PORT=$(REDIS_PORT) scripts/redis.sh down

sample-data: install es-up
	@DOCS=$(DOCS) scripts/sample_data.sh

demo: install es-up sample-data redis-up
	@scripts/demo.sh

test: install
	@scripts/test.sh

# The property tests with fresh random examples, many more of them (FUZZ_EXAMPLES, default 3000 per test);
# failures are kept in .hypothesis/ (git-ignored) and tried first next time. `make test` runs them derandomized.
fuzz: install
	HYPOTHESIS_PROFILE=dev $(BIN)/python -m pytest tests/unit -q -p no:cacheprovider $(FUZZ_ARGS)

bench: install es-up
	@bench/run.sh

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

completions: install
	@scripts/completions.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
