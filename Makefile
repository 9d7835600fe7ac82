# Each target creates and fills its own virtual environment in .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cli,test,bench]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m demo

test: $(VENV)/.installed
	$(PY) -m pytest
	$(MAKE) lint

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests fakecluster demo benchmarks
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
