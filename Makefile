# daemon-guard: every target installs what it needs first (venv in .venv, npm ci), so each works
# as the first command on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install test test-fast lint typecheck unit demo synth diff deploy bench clean

# The wheel ships daemon_guard, daemon_guard_cdk (infra/) and daemon_guard_cli; the development checkout
# also imports the simulator (sim/), the benchmark (bench/) and infra/ by their repository names, through a .pth line.
$(PY_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import pathlib, site; pathlib.Path(site.getsitepackages()[0], 'daemon_guard_repo.pth').write_text('$(CURDIR)\n')"
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(PY_STAMP) $(NODE_STAMP)

lint: $(PY_STAMP)
	$(BIN)/ruff check .

typecheck: $(PY_STAMP)
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

test: lint typecheck unit

# The quick loop while working: lint, types, and every test not marked slow (CI runs `make test`: all of them).
test-fast: lint typecheck install
	$(BIN)/pytest -m "not slow"

demo: install
	$(BIN)/daemon-guard demo

# CDK_ARGS passes options through, e.g. make deploy CDK_ARGS="--profile prod --require-approval never".
synth: install
	npx cdk synth --quiet $(CDK_ARGS)

diff: install
	npx cdk diff $(CDK_ARGS)

deploy: install
	npx cdk deploy $(CDK_ARGS)

# BENCH_ARGS=--quick: seed 1, 200 launches, the 45-drain story (about 6 minutes on 2 cores; see README, Benchmark).
bench: install
	$(BIN)/daemon-guard bench $(BENCH_ARGS) --json out/bench.json --markdown out/bench.md --plot docs/bench.png --readme README.md

clean:
	rm -rf $(VENV) node_modules cdk.out out
