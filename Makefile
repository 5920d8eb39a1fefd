# The two set-up commands of the README:
#   make demo   creates .venv, installs fourloops (what the demo needs, no dev tools), runs `fourloops demo`
#   make test   creates .venv, installs fourloops with its dev tools, runs the tests
PYTHON ?= python3
VENV ?= .venv
OUT ?= demo-out

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

# fourloops and its runtime dependencies only.
$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -e .
	touch $@

# ...plus the dev extra: test runner, linters, the PostgreSQL driver, optional model formats.
$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

.PHONY: demo test lint
demo: $(VENV)/.installed
	$(VENV)/bin/fourloops demo --out $(OUT)

test: $(VENV)/.installed-dev
	$(VENV)/bin/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/mypy
