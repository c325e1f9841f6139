# Everything runs from a virtual environment that this Makefile makes on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test lint format emulator bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

test: $(BIN)/.installed lint
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

emulator: $(BIN)/.installed
	$(BIN)/convio-emulator --port 8765

bench: $(BIN)/.installed
	$(BIN)/python bench/emulator_calls.py
	$(BIN)/python bench/client_cpu.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
