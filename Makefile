# Two commands on a fresh clone (only Python 3.11+ needed): `make book` and `make test`.
# Each creates .venv from requirements.lock on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
# Chapters for `make execute`; default: all of them.
CHAPTERS ?=

.PHONY: book test test-slow test-parameters test-install lint test-latest execute bench torch lock clean

$(READY): pyproject.toml requirements.lock lstm_utils/__init__.py  # __init__ holds the version
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -r requirements.lock -e .
	touch $@

## book: build the HTML book into _build/html, executing changed chapters, warnings as errors.
book: $(READY)
	$(BIN)/jupyter-book build . -W -n --keep-going

## test: lint, then unit tests, doctests, nbval against the stored outputs (every chapter executed
## once, at its own parameters), the text sources in step, and the book build from the stored
## outputs (warnings as errors) with the browser test on it. About 4 minutes on 2 cores.
# Three workers on two cores, so that a worker waiting on its kernel or child process leaves no
# core idle. Measured on fresh clones: 5:12 against 5:43 with -n 2 while the unit tests still
# collected garbage at each reset; 3:45 against 3:43 since, a tie.
test: $(READY) lint
	$(BIN)/python -m pytest -n 3 --dist loadscope

## test-slow: the unit tests marked slow: fresh Python processes per backend (JAX, PyTorch), with
## logical devices, or with a clean stderr; chapters 12 and 13 assert the same under `make test`.
## CI runs it after `make test`.
test-slow: $(READY)
	$(BIN)/python -m pytest -n 3 --dist loadscope --slow -m slow -o addopts="-p no:cacheprovider"

## test-parameters: every chapter under papermill at the low and the high corner of its parameter
## ranges and with three other seeds (tools/parameter_grid.py prints the grid). CI runs it.
test-parameters: $(READY)
	$(BIN)/python -m pytest -n 2 --dist load --parameter-grid -m parameter_grid -o addopts="-p no:cacheprovider" \
		tests/test_parameter_grid.py

## test-install: build the sdist and wheel, install the wheel into a clean venv with its declared
## dependencies (at the lock's versions) and run the installed package's doctests there. CI runs it.
test-install: $(READY)
	bash tools/test_install.sh

## lint: ruff's rules and formatting (ruff.toml), and mypy, strict (mypy.ini); all three run, any failure fails.
lint: $(READY)
	@status=0; \
	echo "ruff check ."; $(BIN)/ruff check . || status=1; \
	echo "ruff format --check ."; $(BIN)/ruff format --check . || status=1; \
	echo "mypy"; $(BIN)/mypy || status=1; \
	exit $$status

## test-latest: unit tests, doctests and papermill runs on the newest TensorFlow, Keras and
## tf-keras, in .venv-latest (not the lock; no nbval, no book build).
test-latest: $(READY)
	bash tools/test_latest.sh

## execute: re-run chapters with papermill to refresh their stored outputs, then the pages made from
## them: the error index (errors.md) and the intro's claims table.
execute: $(READY)
	$(BIN)/python tools/execute_chapters.py $(CHAPTERS)
	$(BIN)/python tools/error_index.py
	$(BIN)/python tools/intro_table.py

## bench: time every way to stream an LSTM step, side by side (benchmarks/streaming.py, a few minutes);
## writes a table, JSON and a plot to benchmarks/results/.
bench: $(READY)
	$(BIN)/python benchmarks/streaming.py

## torch: add PyTorch (CPU build) to .venv, for chapter 12's PyTorch-backend rows and the torch oracle.
## Opt-in: about 0.9 GB. Outside this project's machines, pass the CPU index, or PyPI's CUDA build comes:
##   make torch TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
torch: $(READY)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH_PIP_ARGS) torch==2.13.0

## lock: re-pin every dependency after editing pyproject.toml.
lock: $(READY)
	$(BIN)/uv pip compile pyproject.toml --extra book --extra test --python $(BIN)/python --quiet -o requirements.lock

clean:
	rm -rf _build
