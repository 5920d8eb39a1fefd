# The two set-up commands of the README:
#   make demo   creates .venv, installs fourloops, runs `fourloops demo`
#   make test   creates .venv, installs fourloops with its dev tools, runs the tests
PYTHON ?= python3
VENV ?= .venv
OUT ?= demo-out

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $@

.PHONY: demo test lint
demo: $(VENV)/.installed
	$(VENV)/bin/fourloops demo --out $(OUT)

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/mypy
