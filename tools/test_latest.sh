#!/usr/bin/env bash
# make test-latest: the unit tests, doctests and papermill runs (tests/test_notebooks.py) on the
# NEWEST releases of TensorFlow, Keras and tf-keras, in .venv-latest, whatever requirements.lock
# and pyproject.toml pin. Everything else is installed unpinned too (newest compatible).
# Not run: nbval (the stored outputs name the locked versions) and the book build.
#
# pyproject.toml pins tensorflow==2.21.* and tf-keras==2.21.*; uv's overrides replace every
# requirement on the three packages (pyproject's and those of other packages, such as
# tf-keras's on tensorflow) with a bare name, so the resolver takes their newest releases.
# Usage: tools/test_latest.sh [extra pytest arguments]; `rm -rf .venv-latest` for a fresh start.
set -euo pipefail
cd "$(dirname "$0")/.."

UV=.venv/bin/uv
VENV=.venv-latest
PY="$VENV/bin/python"
PACKAGES=(tensorflow keras tf-keras)

test -x "$UV" || { echo "$UV not found: run 'make test' or 'make book' once to create .venv" >&2; exit 1; }
test -x "$PY" || "$UV" venv --quiet --python "${PYTHON:-python3}" "$VENV"

overrides=$(mktemp)
trap 'rm -f "$overrides"' EXIT
printf '%s\n' "${PACKAGES[@]}" >"$overrides"
# --upgrade: newest releases on every run, not the ones installed last time.
"$UV" pip install --quiet --python "$PY" --compile-bytecode --upgrade \
    --overrides "$overrides" -e ".[book,test]" "${PACKAGES[@]}" pip  # pip: the wheel test builds with it

echo "== make test-latest: installed in $VENV (versus requirements.lock) =="
"$PY" - "${PACKAGES[@]}" numpy <<'EOF'
import re
import sys
from importlib.metadata import requires, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

lock = {}
for line in Path("requirements.lock").read_text().splitlines():
    match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", line)
    if match:
        lock[canonicalize_name(match[1])] = match[2]
for name in sys.argv[1:]:
    installed, locked = version(name), lock.get(canonicalize_name(name), "not locked")
    same = "same as the lock" if installed == locked else f"lock: {locked}"
    print(f"  {name:<11} {installed:<10} ({same})")
# Overrides ignore what tf-keras declares about tensorflow: say so when the pair is one tf-keras rejects.
for requirement in map(Requirement, requires("tf-keras") or []):
    if canonicalize_name(requirement.name) == "tensorflow" and version("tensorflow") not in requirement.specifier:
        print(f"  note: tf-keras {version('tf-keras')} declares {requirement}; tensorflow {version('tensorflow')} is installed")
EOF

# pyproject's addopts include --nbval; replace them. The book build and the browser test on it
# (tests/test_book.py, tests/test_browser.py) are left out.
# The slow tests run too, and each chapter under papermill at its low corner: one whole run of
# every chapter with other parameters (the rest of the grid is left to make test-parameters).
"$PY" -m pytest -n 2 --dist loadscope --slow --parameter-grid -k "not test_chapter_runs_with_the_grid" \
    -o addopts="-p no:cacheprovider --doctest-modules" \
    lstm_utils tests --ignore=tests/test_book.py --ignore=tests/test_browser.py "$@"
