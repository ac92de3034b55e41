# creditflow: `make run` to try it, `make test` to check it. Only Python and make needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test browser lint format services stop-services migrate demo bench faults clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

services: install
	$(PY) -m harness.devservices ensure

stop-services: install
	$(PY) -m harness.devservices stop

migrate: services
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0

demo: migrate
	$(PY) manage.py demo_setup

# Stale per-process counter files of earlier runs would be added into /metrics: empty the
# Prometheus multiprocess directory (exactly the one the settings pick) before starting.
run: demo
	@$(PY) manage.py demo_banner
	@dir="$$($(PY) manage.py shell -c 'from config.metrics import multiprocess_directory; print(multiprocess_directory())' | tail -n 1)"; \
	case "$$dir" in /*/prometheus*|/*/*/*) rm -rf -- "$$dir";; *) echo "Not emptying metrics directory '$$dir'";; esac
	$(VENV)/bin/honcho start -f Procfile -p $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports --no-cache --no-logo

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The browser test drives Debian's chromium through Playwright (never `playwright install`).
CHROMIUM_PATH ?= /usr/bin/chromium
export CHROMIUM_PATH

browser:
	@if [ -x "$(CHROMIUM_PATH)" ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's chromium for the browser test..."; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q && apt-get install -y -q chromium; } || \
		echo "WARNING: apt-get could not install chromium: the browser test (tests/e2e) will fail."; \
	else \
		echo "WARNING: $(CHROMIUM_PATH) is missing and cannot be installed here (needs apt-get" \
			"and root). Install Debian's chromium or set CHROMIUM_PATH: the browser test" \
			"(tests/e2e) will fail until then."; \
	fi

test: services lint browser
	$(PY) -m pytest

bench: migrate
	@command -v wrk >/dev/null 2>&1 || apt-get install -y wrk || (apt-get update && apt-get install -y wrk)
	$(PY) -m bench.run

faults: migrate
	$(PY) -m bench.faults

clean:
	rm -rf .run/test-* .pytest_cache .mypy_cache .ruff_cache
