# The two commands of the README: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TESTSTAMP := $(VENV)/.installed-test

.PHONY: run test lint bench clean soak

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(TESTSTAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/tocsin dev

# Two pytest-xdist workers: much of the suite waits on timers and child processes, and the
# other worker runs meanwhile. Each takes half of the tests in order and, once done, the later
# half of what the other still has (worksteal): by module (loadscope) one worker was left
# alone with the long fault tests at the end. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
test: $(TESTSTAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The fault tests again and again (SOAK_RUNS times, default 20): prints the pass count and
# fails at the first failing run, whose output stays on the screen.
SOAK_RUNS ?= 20
soak: $(TESTSTAMP)
	@passed=0; for i in $$(seq 1 $(SOAK_RUNS)); do \
	  if $(BIN)/python -m pytest tests/faults -q -p no:cacheprovider $(PYTEST_ARGS) > .soak.log 2>&1; then \
	    passed=$$((passed + 1)); echo "soak: run $$i passed ($$passed/$(SOAK_RUNS))"; \
	  else \
	    cat .soak.log; echo "soak: run $$i FAILED after $$passed passes"; exit 1; \
	  fi; \
	done; echo "soak: $$passed/$(SOAK_RUNS) runs passed"

lint: $(TESTSTAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every benchmark, one JSON line each (bench/README.md); the peers need Argos's own venv and
# Debian's prometheus-blackbox-exporter.
bench: $(TESTSTAMP) .venv-argos/.installed
	$(BIN)/python bench/drain.py
	$(BIN)/python bench/agent.py
	$(BIN)/python bench/peers.py
	$(BIN)/python bench/projector.py
	$(BIN)/python bench/steady.py --minutes 2
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/memory.py

clean:
	rm -rf $(VENV) .venv-argos .tocsin

# Argos 0.10.3 for the differential and interoperability tests: its pins (FastAPI < 0.136,
# pydantic < 2.14, uvicorn < 0.45, apprise < 2) conflict with ours, so it has its own venv.
.venv-argos/.installed: tests/argos/requirements.txt
	$(PY) -m venv .venv-argos
	.venv-argos/bin/pip install -q -r tests/argos/requirements.txt
	cp tests/argos/requirements.txt $@
