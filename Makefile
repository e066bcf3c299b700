# One venv. `make run` installs what the server needs and nothing more; the
# other targets add the test and lint tools (the `dev` extra) first.
#
# Installs use uv, from PyPI like everything else: it downloads in parallel and
# compiles nothing ahead, so a fresh clone serves in about 25 s instead of 85 s
# with pip (README, Quick start). A uv on PATH is used; else pip puts one in the venv.
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(or $(shell command -v uv 2>/dev/null),$(VENV)/uv/bin/uv)
INSTALL := $(UV) pip install --quiet --python $(PY)
PIP_UV := install --quiet --disable-pip-version-check --root-user-action=ignore --target $(VENV)/uv uv
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

.PHONY: run test reliability bench lint

$(PY):
	python3 -m venv --without-pip $(VENV)

# With the system's pip if it has one, else with the venv's own (ensurepip).
$(VENV)/uv/bin/uv: | $(PY)
	python3 -m pip $(PIP_UV) 2>/dev/null || { $(PY) -m ensurepip -q && $(PY) -m pip $(PIP_UV); }

$(RUNTIME): pyproject.toml | $(PY) $(UV)
	$(INSTALL) -e .
	touch $@

$(DEV): pyproject.toml | $(PY) $(UV)
	$(INSTALL) -e '.[dev]'
	touch $@ $(RUNTIME)

run: $(RUNTIME)
	$(VENV)/bin/threadline serve

test: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest

# The reliability suite at its full counts (make test runs it with small ones).
reliability: $(DEV)
	THREADLINE_CRASHES=100 THREADLINE_CLIENTS=50 THREADLINE_PROCESSES=3 \
	THREADLINE_RESTART_CLIENTS=20 THREADLINE_FUZZ_FRAMES=12000 \
	THREADLINE_SCHEMATHESIS_EXAMPLES=40 $(PY) -m pytest tests/reliability -s -p no:randomly

bench: $(DEV)
	$(PY) -m bench

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
