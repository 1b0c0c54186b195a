"""Every chapter runs at the corners of its accepted parameter ranges and with other seeds.

The grid comes from each chapter's own ``lstm_utils.check_parameters(...)`` call
(``tools/parameter_grid.py``): every size at the bottom of its range, every size at the top,
and the chapter's sizes with three other seeds. ``make test-parameters`` runs the whole grid
(the tests marked ``parameter_grid`` below, deselected unless pytest is given
``--parameter-grid``); CI runs it after ``make test``, which leaves them out to stay fast
(its nbval run already executes every chapter once, at its own parameters).

The cheap checks run always: the grid is well-formed, and every one of its sets passes the
chapter's own validation (so the grid never tests a set the chapter would refuse).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import papermill
import pytest

import lstm_utils

ROOT = Path(__file__).resolve().parents[1]


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("parameter_grid", ROOT / "tools" / "parameter_grid.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


parameter_grid = _load_tool()
SOURCES: list[Path] = parameter_grid.CHAPTER_SOURCES
GRID = [(source, label, values) for source in SOURCES for label, values in parameter_grid.parameter_grid(source)]


def accepted_by_the_chapter(source: Path, values: dict[str, Any]) -> None:
    """The chapter's validation accepts `values` (``tools/parameter_grid.run_validation``).

    A refusal raises its ValueError or TypeError."""
    try:
        parameter_grid.run_validation(source.with_suffix(".ipynb"), values)
    except parameter_grid.PastValidation:
        return
    pytest.fail(f"{source.name}: the set-up cell used nothing of lstm_utils but its validation, and no other package")


def test_the_grid_covers_every_chapter() -> None:
    assert parameter_grid.MAX_SEED == lstm_utils.MAX_SEED
    assert len(SOURCES) == len(list((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")))
    for source in SOURCES:
        grid = dict(parameter_grid.parameter_grid(source))
        assert list(grid) == ["low", "high", "seed-1", "seed-2", "seed-3"], source.name
        defaults = parameter_grid.default_parameters(source)
        seeds = {values["SEED"] for values in grid.values()}
        assert len(seeds) >= 3 and lstm_utils.MAX_SEED in seeds, (source.name, seeds)
        for label, values in grid.items():
            assert set(values) == set(defaults), (source.name, label)
        ranges = parameter_grid.parameter_ranges(source)
        assert ranges, f"{source.name}: check_parameters checks no size"
        moved = {name for name in ranges if grid["low"][name] != grid["high"][name]}
        assert moved == set(ranges), f"{source.name}: low and high agree for {set(ranges) - moved}"


def test_the_grid_refuses_an_open_range(tmp_path: Path) -> None:
    source = tmp_path / "99_open.md"
    source.write_text(
        "```{code-cell} ipython3\n:tags: [parameters]\nSEED = 0\nUNITS = 4\n```\n\n"
        "```{code-cell} ipython3\nimport lstm_utils\n"
        "lstm_utils.check_parameters(SEED=SEED, UNITS=(UNITS, 1, None))\n```\n",
        encoding="utf8",
    )
    with pytest.raises(ValueError, match="high bound of UNITS is None"):
        parameter_grid.parameter_grid(source)


@pytest.mark.parametrize(("source", "label", "values"), GRID, ids=[f"{s.stem}-{label}" for s, label, _ in GRID])
def test_every_set_of_the_grid_is_accepted_by_its_chapter(source: Path, label: str, values: dict[str, Any]) -> None:
    accepted_by_the_chapter(source, values)


def test_the_acceptance_check_can_fail() -> None:
    source = SOURCES[0]
    with pytest.raises(ValueError, match="SEED"):
        accepted_by_the_chapter(source, {**parameter_grid.default_parameters(source), "SEED": -1})


LOW_CORNERS = [entry for entry in GRID if entry[1] == "low"]
THE_REST = [entry for entry in GRID if entry[1] != "low"]


def _run(source: Path, label: str, values: dict[str, Any], folder: Path, kernel_manager_class: type) -> None:
    papermill.execute_notebook(
        str(source.with_suffix(".ipynb")),
        str(folder / f"{source.stem}-{label}.ipynb"),
        parameters=values,
        cwd=str(source.parent),
        kernel_name="python3",
        progress_bar=False,
        kernel_manager_class=kernel_manager_class,
    )


@pytest.mark.parameter_grid
@pytest.mark.parametrize(("source", "label", "values"), LOW_CORNERS, ids=[s.stem for s, _, _ in LOW_CORNERS])
def test_chapter_runs_at_the_low_corner(
    source: Path, label: str, values: dict[str, Any], tmp_path: Path, kernel_manager_class: type
) -> None:
    """In ``make test-parameters``: every size at the bottom of its range, the largest seed."""
    _run(source, label, values, tmp_path, kernel_manager_class)


@pytest.mark.parameter_grid
@pytest.mark.parametrize(("source", "label", "values"), THE_REST, ids=[f"{s.stem}-{label}" for s, label, _ in THE_REST])
def test_chapter_runs_with_the_grid(
    source: Path, label: str, values: dict[str, Any], tmp_path: Path, kernel_manager_class: type
) -> None:
    """In ``make test-parameters``: the high corner and three seeds."""
    _run(source, label, values, tmp_path, kernel_manager_class)
