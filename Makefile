# One entry point per chore. Each target creates the virtual environment it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export DOZOR_DATA_DIR ?= var

.PHONY: run test test-sqlite test-postgres lint bench migrate clean chromium

$(BIN)/dozor: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## Install, migrate and start Dozor on SQLite at http://127.0.0.1:8000 (data in var/).
run: $(BIN)/dozor
	$(BIN)/dozor migrate
	$(BIN)/dozor serve

## Install everything the tests need and run the whole suite, on SQLite and on PostgreSQL.
test: $(BIN)/dozor chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -n auto --dist loadfile

# The browser tests drive Debian's Chromium (never a downloaded one). Installed here when
# missing and this user may; otherwise those tests skip and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
	    || echo "note: no chromium (apt-get install chromium); the browser tests will skip"

lint: $(BIN)/dozor
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: $(BIN)/dozor
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.notify
	$(BIN)/python -m bench.ping
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.erasure
	$(BIN)/python -m bench.probe_ingest
	$(BIN)/python -m bench.takeover

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache test-artifacts
