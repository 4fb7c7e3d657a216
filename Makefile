# Two commands on a fresh machine:  make run   (execute every notebook)   make test   (the whole suite)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test claims confirm exercises lab clean

$(BIN)/retune: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	touch $@

setup: $(BIN)/retune

run: setup
	$(BIN)/retune run

test: setup
	$(BIN)/retune base
	$(BIN)/python -m pytest --durations=25

claims: setup
	$(BIN)/retune claims --seeds 10 --threads 1 2 -j 2

confirm: setup   # the confirmation seeds: run once the claims are frozen, never used to change one
	$(BIN)/retune claims --seeds 10-19 --threads 1 -j 2

exercises: setup
	$(BIN)/retune base
	$(BIN)/python -m pytest -m exercises -n 1 tests/test_exercises.py

lab: setup
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean:
	rm -rf runs
