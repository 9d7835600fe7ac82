# Each target creates and fills its own virtual environment in .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Length of `make soak` in minutes, split evenly between its two phases.
SOAK_MINUTES ?= 5

.PHONY: demo test lint bench soak clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cli,test,bench]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m demo

# pytest's exit code 5 means it collected no tests: that is a failure too.
test: $(VENV)/.installed
	$(PY) -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	exit $$status
	$(MAKE) lint

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests fakecluster demo benchmarks
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) -m benchmarks

soak: $(VENV)/.installed
	$(PY) -m benchmarks.soak --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
