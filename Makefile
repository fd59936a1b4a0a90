# `make run` and `make test` work on a fresh machine: each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 7711
DB ?= data/mq.db

.PHONY: run test test-cluster lint bench clean

# The SDK first: mq depends on it by its distribution name, mq-broker-client.
$(STAMP): pyproject.toml clients/python/pyproject.toml clients/python/mq_client/VERSION
	@echo "installing mq and its SDK into $(VENV) (editable)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e clients/python
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/mq serve --host $(HOST) --port $(PORT) --db $(DB)

# tests/ on two workers, a file each at a time: most tests wait on brokers, sockets and
# processes, so two overlap well on 2 cores; whole files keep a module's broker on one worker.
# The SDK's tests after, alone: they time heartbeats against an in-process fake broker to
# within 50 ms, which the other worker's load can stretch.
test: $(STAMP)
	./.ci/test-deps
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests
	$(BIN)/python -m pytest -q clients/python/tests

# The cluster scenarios (issue 15): 3 etcd nodes, a Postgres and several brokers per scenario.
test-cluster: $(STAMP)
	./.ci/cluster-deps
	MQ_TEST_CLUSTER=1 $(BIN)/python -m pytest -q tests/cluster

lint: $(STAMP)
	$(BIN)/ruff check mq clients/python tests
	$(BIN)/mypy --strict mq clients/python/mq_client

bench: $(STAMP)
	$(BIN)/mq bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
