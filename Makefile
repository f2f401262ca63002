# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DB ?= callhistory.db
PORT ?= 8080

.PHONY: run test lint typecheck pytest bench soak clean lock audit

# The service's own dependencies from the lock (versions and hashes checked), then the package
# and its development tools.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet -e '.[server,dev]'
	touch $(STAMP)

## Resolve requirements.lock again from pyproject.toml (after changing a dependency).
lock:
	$(PYTHON) -m venv /tmp/callhistory-lock
	/tmp/callhistory-lock/bin/pip install --quiet pip-tools
	/tmp/callhistory-lock/bin/pip-compile --quiet --extra server --generate-hashes \
		--strip-extras --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

## Known vulnerabilities in the locked dependencies (needs the vulnerability database online).
audit:
	$(PYTHON) -m venv /tmp/callhistory-audit
	@/tmp/callhistory-audit/bin/pip install --quiet pip-audit \
		|| { echo "pip-audit skipped: it could not be installed"; exit 0; } \
		&& /tmp/callhistory-audit/bin/python scripts/audit.py

## Start the service on SQLite with demo data (created on first run), on 127.0.0.1:$(PORT).
run: $(STAMP)
	@if [ ! -f $(DB) ]; then \
		$(BIN)/callhistory migrate --database sqlite:///$(DB) && \
		$(BIN)/callhistory demo --calls 5000 --database sqlite:///$(DB) --save-key .demo-key \
			--save-keys .demo-keys.env; \
	fi
	@echo
	@echo "The demo tenant's id and its read, ingest and admin keys: .demo-keys.env (. ./.demo-keys.env)"
	@echo "Try it (read key of the demo tenant):"
	@echo "  curl -s http://127.0.0.1:$(PORT)/v1/shop.Etelecom/ListCallLogs \\"
	@echo "    -H 'Content-Type: application/json' -H 'Authorization: Bearer $$(cat .demo-key)' \\"
	@echo "    -d '{\"filter\": {\"direction\": \"in\"}, \"paging\": {\"limit\": 2}}'"
	@echo
	$(BIN)/callhistory serve --database sqlite:///$(DB) --port $(PORT)

## Everything CI checks: lint, format, types, the whole test suite.
test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check callhistory tests bench scripts
	$(BIN)/ruff format --check callhistory tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy --strict callhistory tests

pytest: $(STAMP)
	$(BIN)/pytest

## The benchmark (bounded, ~20 minutes on 2 cores once its data is cached in bench/.data; a first
## run builds the data sets, Citus's last, ~35 minutes more): bench/results.md.
bench: $(STAMP)
	@command -v wrk >/dev/null && command -v curl >/dev/null || (apt-get update -q && apt-get install -y -q wrk curl)
	$(BIN)/pip install --quiet -e '.[server,dev,bench]'
	timeout 5400 $(BIN)/python -m bench.run

## A bounded soak: fixed-rate mixed load on loopback (SOAK_SECONDS, default 300; SOAK_RATE).
soak: $(STAMP)
	$(BIN)/pip install --quiet -e '.[server,dev,bench]'
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
