"""The parameter grid: the sets of parameters every chapter must run with, read from the chapter.

Usage::

    python tools/parameter_grid.py [chapters/NN_slug.md ...]

prints, for each chapter (default: all), the parameter sets of its grid, one per line.
``make test-parameters`` runs every set with papermill (``tests/test_parameter_grid.py``);
``make test`` runs one of them per chapter, the ``low`` set.

A chapter states its accepted ranges in one place, the ``lstm_utils.check_parameters(...)``
call of its set-up cell, as ``NAME=(NAME, low, high[, reason])``. The promise (see
``CONTRIBUTING.md``) is that every assert of the chapter holds for every accepted value and
any seed. The grid checks the corners of that promise:

- ``low``: every size at the bottom of its range, the largest seed (``MAX_SEED``);
- ``high``: every size at the top of its range, seed 0;
- ``seed-1``, ``seed-2``, ``seed-3``: the chapter's own sizes with three other seeds.

Bounds are Python expressions evaluated in the chapter's own names (a bound may use another
parameter, as ``4 * WINDOW`` would); parameters that ``check_parameters`` does not check
keep their default.
"""

from __future__ import annotations

import ast
import builtins
import sys
from pathlib import Path
from typing import Any

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_SOURCES = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))
MAX_SEED = 2**32 - 1  # lstm_utils.MAX_SEED; tests/test_parameter_grid.py checks they agree
GRID_SEEDS = (1, 2, 3)
Parameters = dict[str, Any]


def _code_cells(source: Path) -> list[str]:
    notebook = jupytext.read(source)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def default_parameters(source: Path) -> Parameters:
    """The values of the chapter's ``parameters`` cell (its first code cell: plain assignments)."""
    namespace: Parameters = {}
    exec(compile(_code_cells(source)[0], f"<{source.name}: parameters cell>", "exec"), {}, namespace)
    return {name: value for name, value in namespace.items() if not name.startswith("_")}


def parameter_ranges(source: Path) -> dict[str, tuple[ast.expr, ast.expr]]:
    """Each checked size's ``(low, high)`` expressions, in the order of the ``check_parameters`` call."""
    calls = [
        node
        for cell in _code_cells(source)
        for node in ast.walk(ast.parse(cell))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check_parameters"
    ]
    if len(calls) != 1:
        raise ValueError(f"{source.name}: expected one lstm_utils.check_parameters(...) call, found {len(calls)}")
    ranges: dict[str, tuple[ast.expr, ast.expr]] = {}
    for keyword in calls[0].keywords:
        if keyword.arg == "SEED":
            continue
        if keyword.arg is None or not isinstance(keyword.value, ast.Tuple) or len(keyword.value.elts) not in (3, 4):
            raise ValueError(f"{source.name}: check_parameters: give each size as NAME=(NAME, low, high[, reason])")
        ranges[keyword.arg] = (keyword.value.elts[1], keyword.value.elts[2])
    return ranges


def _evaluate(expression: ast.expr, names: Parameters, source: Path, what: str) -> Any:
    value = eval(compile(ast.Expression(expression), f"<{source.name}: {what}>", "eval"), {}, dict(names))
    if value is None:
        raise ValueError(f"{source.name}: {what} is None; the grid needs a finite range for every size")
    return value


def parameter_grid(source: Path) -> list[tuple[str, Parameters]]:
    """The grid of one chapter: ``(label, parameters)`` pairs, each a complete parameter set.

    Every set holds every parameter of the ``parameters`` cell, so a test can compare it with
    what the chapter stored.
    """
    defaults = default_parameters(source)
    ranges = parameter_ranges(source)
    grid: list[tuple[str, Parameters]] = []
    for label, end, seed in (("low", 0, MAX_SEED), ("high", 1, 0)):
        values = {**defaults, "SEED": seed}
        for name, bounds in ranges.items():
            values[name] = _evaluate(bounds[end], values, source, f"{('low', 'high')[end]} bound of {name}")
        grid.append((label, values))
    grid += [(f"seed-{seed}", {**defaults, "SEED": seed}) for seed in GRID_SEEDS]
    return grid


class PastValidation(Exception):
    """The set-up cell went past its validation; the message names what it used first."""


class _ValidationOnly:
    """``lstm_utils`` as the set-up cell sees it in :func:`run_validation`: its validation only.

    Any other name (``quiet_tensorflow``, ``logical_cpus``...) means the validation is over;
    running it would set up TensorFlow in the calling process.
    """

    def __getattr__(self, name: str) -> Any:
        import lstm_utils

        if name in ("check_parameters", "MAX_SEED"):
            return getattr(lstm_utils, name)
        raise PastValidation(f"lstm_utils.{name}")


def run_validation(notebook_path: Path, values: Parameters) -> None:
    """Run a chapter's validation with `values`, in this process, without a kernel.

    Runs the ``parameters`` cell, `values` as papermill injects them, and the set-up cell,
    through IPython's input transformations, until the set-up cell imports anything but the
    standard library or uses ``lstm_utils`` for anything but ``check_parameters``: then it
    raises :class:`PastValidation` (the values were accepted). A refusal raises the chapter's
    own error. It returns only if the set-up cell ends without going past its validation.
    """
    from IPython.core.inputtransformer2 import TransformerManager
    from papermill.parameterize import parameterize_notebook

    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.metadata.setdefault("papermill", {})  # as papermill.execute_notebook prepares it
    notebook = parameterize_notebook(notebook, values)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if "parameters" not in code[0].metadata.get("tags", []) or "injected-parameters" not in code[1].metadata.get(
        "tags", []
    ):
        raise ValueError(f"{notebook_path.name}: the first code cell must be tagged 'parameters'")

    def guarded_import(name: str, *args: Any, **kwargs: Any) -> Any:
        level = args[3] if len(args) > 3 else kwargs.get("level", 0)
        if name == "lstm_utils" and not level:
            return _ValidationOnly()
        if level or name.partition(".")[0] not in sys.stdlib_module_names:
            raise PastValidation(name)
        return builtins.__import__(name, *args, **kwargs)

    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "__builtins__": {**vars(builtins), "__import__": guarded_import},
    }
    transform = TransformerManager().transform_cell  # type: ignore[no-untyped-call]  # IPython is untyped here
    for label, cell in zip(("parameters", "injected parameters", "set-up"), code[:3], strict=True):
        exec(compile(transform(cell.source), f"<{notebook_path.name}: {label} cell>", "exec"), namespace)


def main(arguments: list[str]) -> int:
    sources = [Path(argument).with_suffix(".md") for argument in arguments] or CHAPTER_SOURCES
    for source in sources:
        print(source.stem)
        for label, values in parameter_grid(source):
            print(f"  {label:7s} " + ", ".join(f"{name}={value!r}" for name, value in values.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
