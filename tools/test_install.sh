#!/usr/bin/env bash
# make test-install: install lstm_utils as a reader would, and run its doctests there.
#
# Builds the sdist and, from the sdist, the wheel (`uv build`, in a copy of the package's files,
# so the checkout gets no build/ or *.egg-info), creates a clean venv in a temporary folder,
# installs the wheel with the dependencies it declares (pinned to requirements.lock), and runs
# every docstring example of the installed package with pytest, and its lstm-migrate command,
# from outside the checkout: what passes here is the installed files, not this repository.
# Needs .venv (for uv); about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

UV="$PWD/.venv/bin/uv"
test -x "$UV" || { echo "$UV not found: run 'make test' or 'make book' once to create .venv" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/source"
cp pyproject.toml README.md LICENSE "$work/source/"
cp -r lstm_utils "$work/source/lstm_utils"
find "$work/source" -name __pycache__ -prune -exec rm -rf {} +

"$UV" build --quiet --sdist --wheel --out-dir "$work/dist" "$work/source"
sdist=$(ls "$work"/dist/lstm_utils-*.tar.gz)
wheel=$(ls "$work"/dist/lstm_utils-*.whl)
echo "built $(basename "$sdist") and $(basename "$wheel")"

"$UV" venv --quiet --python "${PYTHON:-python3}" "$work/venv"
# The wheel's own dependencies, at the lock's versions, plus pytest to collect the doctests.
"$UV" pip install --quiet --python "$work/venv/bin/python" --compile-bytecode \
    --constraint requirements.lock "$wheel" pytest

cd "$work"  # not the checkout: `import lstm_utils` must find the installed package
"$work/venv/bin/python" - <<'PY'
import sys
from pathlib import Path

import lstm_utils

location = Path(lstm_utils.__file__).resolve()
assert "site-packages" in location.parts, f"imported {location}, not the installed package"
assert "tensorflow" not in sys.modules, "import lstm_utils imported TensorFlow"
print(f"lstm_utils {lstm_utils.__version__} installed at {location.parent}")
PY
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider --doctest-modules --pyargs lstm_utils \
    -W "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
# The console script the wheel declares: exit 1 and a finding on Keras 2 code, exit 0 on clean code.
printf 'import keras\nlayer = keras.layers.LSTM(4, stateful=True, batch_input_shape=(2, 5, 3))\n' >"$work/old.py"
printf 'import keras\nlayer = keras.layers.LSTM(4, stateful=True)\n' >"$work/new.py"
"$work/venv/bin/lstm-migrate" "$work/new.py"
if "$work/venv/bin/lstm-migrate" "$work/old.py" >"$work/found.txt"; then
    echo "lstm-migrate found nothing in Keras 2 code" >&2; exit 1
fi
grep -q "batch_input_shape" "$work/found.txt" || { echo "lstm-migrate did not name batch_input_shape" >&2; exit 1; }
echo "lstm-migrate: $(cat "$work/found.txt" | head -c 120)..."
