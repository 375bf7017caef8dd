# The two commands a fresh machine needs: `make run` and `make test`.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INI ?= development.ini
# pytest-xdist workers: each gets its own database (see tests/conftest.py).
WORKERS ?= 2

.PHONY: install run test lint format conformance schemathesis clean cluster cluster-down test-cluster bench chromium nginx

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,prod,testing]'
	touch $@

install: $(BIN)/.installed

## run: migrate the embedded SQLite database, load demo data, serve on :6543
run: install
	$(BIN)/myapp-initdb $(INI)
	$(BIN)/pserve $(INI)

## chromium: Debian's Chromium for tests/browser (apt, as root; otherwise say how)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "chromium is missing: run 'sudo apt-get install -y chromium' (browser tests skip)"; \
		fi; }

## test: lint, then the whole suite against Postgres (TEST_DATABASE_URL)
test: install chromium
	$(BIN)/ruff check myapp tests alembic bench gunicorn.conf.py
	$(BIN)/ruff format --check myapp tests alembic bench gunicorn.conf.py
	$(BIN)/pytest -n $(WORKERS) $(PYTEST_ARGS)

## test-cluster: fault tests against a live cluster (nginx + 3 gunicorn replicas); .ci/run runs them
test-cluster: install nginx
	$(BIN)/pytest -m cluster tests/cluster $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check myapp tests alembic bench gunicorn.conf.py

format: install
	$(BIN)/ruff format myapp tests alembic bench gunicorn.conf.py
	$(BIN)/ruff check --fix myapp tests alembic bench gunicorn.conf.py

## conformance: the external RealWorld suites against a live server (CI runs these)
conformance: install
	bash .ci/conformance.sh

clean:
	rm -rf $(VENV) conduit.sqlite* .pytest_cache

## nginx: Debian's nginx for the process cluster (apt, as root; otherwise say how)
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; \
		else \
			echo "nginx is missing: run 'sudo apt-get install -y nginx'"; exit 1; \
		fi; }

## cluster: nginx on 127.0.0.1:8080 in front of REPLICAS gunicorn replicas (local Postgres/Redis)
cluster: install nginx
	bash cluster/up.sh

## cluster-down: stop exactly what `make cluster` started
cluster-down:
	bash cluster/down.sh

## bench: the benchmark suites against the process cluster (see bench/README.md); not part of CI
bench: install nginx
	$(BIN)/pip install -q -e '.[bench]'
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	command -v pgbouncer >/dev/null || (apt-get update && apt-get install -y pgbouncer)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## compose-test: docker-compose.yml for real (podman here): build, up, check, down
.PHONY: compose-test
compose-test:
	bash docker/compose-test.sh
