# One venv for everything; both targets install what they need first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test reliability bench lint

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/threadline serve

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest

# The reliability suite at its full counts (make test runs it with small ones).
reliability: $(STAMP)
	THREADLINE_CRASHES=100 THREADLINE_CLIENTS=50 THREADLINE_PROCESSES=3 \
	THREADLINE_RESTART_CLIENTS=20 THREADLINE_FUZZ_FRAMES=12000 \
	THREADLINE_SCHEMATHESIS_EXAMPLES=40 $(PY) -m pytest tests/reliability -s -p no:randomly

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
