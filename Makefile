# calflow: `make demo` runs the main job, `make test` runs every check. Both install first.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
# Playwright (browser tests) drives Debian's /usr/bin/chromium: never download a browser
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: install demo test test-fast lint typecheck bench clean fmt console

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/calflow demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

test: install lint typecheck
	bash scripts/run-tests.sh

# the suite without the tests marked slow (processes killed, floods, browsers, end to end)
test-fast: install
	bash scripts/run-tests.sh -m "not slow"

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# rebuild the web console into src/calflow/console/static (needs Node and npm)
console:
	cd console-src && npm ci && npm run build

bench: install
	$(VENV)/bin/python bench/action_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
