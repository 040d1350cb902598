# ostiary: `make serve` runs the server, `make test` runs every check. Both bootstrap .venv.
VENV      ?= .venv
PYTHON    ?= python3
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed-stamp
TOOLS     := .tools
TOOLSTAMP := $(TOOLS)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: serve test lint typecheck unit tools clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Node tools for the official MCP conformance suite and the TypeScript SDK client (npm only).
$(TOOLSTAMP): scripts/install-tools.sh
	bash scripts/install-tools.sh $(TOOLS)
	touch $@

tools: $(TOOLSTAMP)

serve: $(STAMP)
	OSTIARY_DEV__ENABLED=$${OSTIARY_DEV__ENABLED:-true} $(VENV)/bin/ostiary serve

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP) $(TOOLSTAMP) lint typecheck
	$(VENV)/bin/pytest $(PYTEST_ARGS)

unit: $(STAMP)
	$(VENV)/bin/pytest -m "not e2e and not conformance" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
