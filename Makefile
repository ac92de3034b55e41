# creditflow: `make run` to try it, `make test` to check it. Only Python and make needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PORT

.PHONY: run test lint format services stop-services migrate demo bench faults clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

services: install
	$(PY) -m config.devservices ensure

stop-services: install
	$(PY) -m config.devservices stop

migrate: services
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0

demo: migrate
	$(PY) manage.py demo_setup

run: demo
	@$(PY) manage.py demo_banner
	$(VENV)/bin/honcho start -f Procfile -p $(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: services lint
	$(PY) -m pytest

bench: migrate
	$(PY) -m bench.run

faults: migrate
	$(PY) -m bench.faults

clean:
	rm -rf .run/test-* .pytest_cache .mypy_cache .ruff_cache
