# ostiary: `make serve` runs the server, `make test` runs every check. Both bootstrap .venv.
VENV      ?= .venv
PYTHON    ?= python3
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed-stamp
TOOLS     := .tools
TOOLSTAMP := $(TOOLS)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: serve test coverage lint typecheck unit tools clean docs

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
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The documentation site (mkdocs.yml, docs/): --strict fails on a broken link or anchor.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet -d .site

# The suite runs under coverage (branch; the processes tests start too, see
# [tool.coverage.run]); scripts/coverage_gate.py then holds core/, resource/ and errors.py
# at 95 % and the whole package at its floor.
test: $(STAMP) $(TOOLSTAMP) lint typecheck docs
	rm -f .coverage .coverage.* coverage.json
	$(VENV)/bin/coverage run -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory coverage

coverage: $(STAMP)
	$(VENV)/bin/coverage combine --quiet
	$(VENV)/bin/coverage json --quiet -o coverage.json
	$(PY) scripts/coverage_gate.py coverage.json

unit: $(STAMP)
	$(VENV)/bin/pytest -m "not e2e and not conformance" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .site .coverage .coverage.* coverage.json

# ostiary against FastMCP's in-memory OAuth, the mcp SDK's reference auth routes and no auth,
# side by side (wrk drives the load; installed from Debian when missing). BENCH_ARGS e.g.
# "--duration 10 --repeat 5".
.PHONY: bench
bench: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || apt-get install -y wrk >/dev/null 2>&1 || \
		{ apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null; } || \
		{ echo "bench: needs wrk (apt-get install -y wrk)" >&2; exit 1; }
	@test -x $(VENV)/bin/py-spy || $(PY) -m pip install --quiet py-spy || \
		echo "bench: py-spy not installed; the profile is skipped" >&2
	$(PY) -m bench $(BENCH_ARGS)
