# Two entry points, both safe on a fresh clone:
#   make run   installs, migrates, seeds demo data, collects static files, starts granian + worker
#              (DEBUG off, plain http on 127.0.0.1: DJANGO_HTTPS=0; key generated into .secret-key)
#   make test  installs (incl. Chromium for browser tests), lints, type-checks and runs every test
# and one for working on the code:
#   make dev   the same with runserver (autoreload) and DEBUG on
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run dev check test venv dev-deps browser bench clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || "$$(bin/find-python)" -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

dev-deps: $(VENV)/.dev-installed

browser:
	bin/install-chromium

# bin/serve migrates, bootstraps, collects static files and starts both processes.
run: venv
	bin/serve $(PY) $(HOST) $(PORT)

dev: venv
	bin/serve --dev $(PY) $(HOST) $(PORT)

# Lint, formatting and types (pyproject.toml); any finding fails.
check: dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

# Scale-out tests need PostgreSQL; CI always runs them, a laptop without it skips them.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

test: check browser
	$(PY) -m pytest $(PYTEST_ARGS)
	@if $(PY) -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$(TEST_DATABASE_URL)" 2>/dev/null || [ "$$CI" = true ]; then \
		echo "== PostgreSQL pass: scale-out and crash-recovery tests =="; \
		DATABASE_URL="$(TEST_DATABASE_URL)" $(PY) -m pytest -m "postgres or worker_processes" $(PYTEST_ARGS); \
	else \
		echo "PostgreSQL not reachable at $(TEST_DATABASE_URL): skipping the scale-out tests."; \
	fi

# DEBUG off as in production, with the local key; plain http like `make run`.
bench: venv
	DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-$$(bin/secret-key)}" DJANGO_HTTPS=0 $(PY) bench/run_all.py

clean:
	rm -rf $(VENV) db.sqlite3* .pytest_cache staticfiles
