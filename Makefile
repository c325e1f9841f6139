# Everything runs from virtual environments that this Makefile makes on first use:
# .venv for this project, .venv-meltano for Meltano (which runs the target, not a dependency).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MELTANO_VENV ?= .venv-meltano
MELTANO := $(MELTANO_VENV)/bin/meltano

.PHONY: test lint bytecode format demo emulator bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(MELTANO):
	$(PYTHON) -m venv $(MELTANO_VENV)
	$(MELTANO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MELTANO_VENV)/bin/python -m pip install --quiet 'meltano==4.4.1'

test: $(BIN)/.installed $(MELTANO) lint bytecode
	MELTANO=$(abspath $(MELTANO)) $(BIN)/pytest -n 3 --dist loadgroup

demo: $(BIN)/.installed $(MELTANO) bytecode
	$(BIN)/python demo/run_demo.py --meltano $(MELTANO)

# The tests start the target some 500 times; where PYTHONDONTWRITEBYTECODE is set (as on our
# machines), each start would compile the package from source again: 12% of its instructions.
bytecode: $(BIN)/.installed
	$(BIN)/python -m compileall -q target_convio

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

emulator: $(BIN)/.installed
	$(BIN)/convio-emulator --port 8765

bench: $(BIN)/.installed
	$(BIN)/python bench/emulator_calls.py
	$(BIN)/python bench/client_cpu.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/cpu_memory.py
	$(BIN)/python bench/checkpoint_size.py
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/concurrency.py
	$(BIN)/python bench/first_contact.py
	$(BIN)/python bench/replay_scan.py
	$(BIN)/python bench/big_ledger.py
	$(BIN)/python bench/unchanged_rerun.py
	$(BIN)/python bench/ledger_off.py
	$(BIN)/python bench/ledger_commit.py

clean:
	rm -rf $(VENV) $(MELTANO_VENV) .meltano .target-convio output .pytest_cache .ruff_cache
