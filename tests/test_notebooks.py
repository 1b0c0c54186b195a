"""The chapters as a whole: well-formed, runnable with other parameters, and in the book.

nbval (enabled in pyproject.toml) separately re-executes every chapter and compares each
cell's output with the stored one. Here:

- every chapter is listed in ``_toc.yml``, starts with a cell tagged ``parameters``, was
  executed in full and stores no stderr or progress bars (nbval could never match them);
- (``tests/test_parameter_grid.py`` runs every chapter with other parameters under papermill);
- a nonsense parameter is refused by the chapter's set-up cell with a clear error, before
  anything slow happens (run in this process: no kernel needed to see it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from test_parameter_grid import parameter_grid  # tools/parameter_grid.py, loaded there

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def chapter_id(path: Path) -> str:
    return path.stem


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


def test_there_are_chapters() -> None:
    assert CHAPTERS, "no chapters found in chapters/"


def test_chapters_are_numbered_as_their_files() -> None:
    """The toc numbers the chapters' parts continuously, so "chapter 7" is file 07_*, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf8"))
    numbered = [chapter["file"] for part in toc["parts"] if part.get("numbered") for chapter in part["chapters"]]
    assert numbered == [f"chapters/{path.stem}" for path in CHAPTERS], numbered
    assert [int(Path(entry).name[:2]) for entry in numbered] == list(range(1, len(numbered) + 1))
    assert all(not part.get("numbered") for part in toc["parts"] if part["caption"] == "Reference")


def test_every_chapter_is_in_the_toc_and_every_toc_entry_exists() -> None:
    listed = toc_files()
    for path in CHAPTERS:
        assert f"chapters/{path.stem}" in listed, f"{path.name} is not listed in _toc.yml"
    for entry in listed:
        assert any((ROOT / f"{entry}{suffix}").exists() for suffix in (".ipynb", ".md")), entry


@pytest.mark.parametrize("path", CHAPTERS, ids=chapter_id)
def test_chapter_is_a_clean_reference(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "no code cells"
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged 'parameters'"
    # papermill reads every cell's tags to find the parameters cell, and fails on a cell without them.
    untagged = [index for index, cell in enumerate(notebook.cells) if "tags" not in cell.metadata]
    assert not untagged, f"cells {untagged} have no 'tags' in their metadata (papermill needs it)"
    # The book shows the parameters; the set-up cell after them (validation, imports) is folded.
    assert "check_parameters" in code[1].source, "the second code cell must validate the parameters"
    assert "hide-input" in code[1].metadata.get("tags", []), "the set-up cell must be tagged 'hide-input'"
    for index, cell in enumerate(code):
        assert cell.execution_count is not None, f"code cell {index} was never executed"
        for output in cell.outputs:
            assert output.get("name") != "stderr", f"code cell {index} stored stderr output"
            text = output.get("text", "")
            assert not re.search(r"\d+/\d+ \[=*>?\.*\]|ETA:", text), f"code cell {index} stored a progress bar"


@pytest.mark.parametrize("path", CHAPTERS, ids=chapter_id)
def test_chapter_refuses_a_nonsense_seed(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The set-up cell raises a ValueError naming SEED=-1 before it imports anything slow.

    What papermill would run in a kernel, run here in a fresh namespace (a kernel start costs
    seconds): the parameters cell, the cell papermill injects with ``SEED = -1``, and the
    set-up cell, through IPython's input transformations (``tools/parameter_grid.run_validation``,
    which the grid's acceptance test uses too). Until it refuses, the set-up cell may use the
    standard library and ``lstm_utils.check_parameters`` only: any other import (NumPy,
    TensorFlow, ``lstm_utils.keras2``...) or ``lstm_utils`` call means it went past its
    validation, and fails the test, as does running to its end without the ValueError.
    """
    monkeypatch.chdir(path.parent)  # papermill runs the chapters there
    try:
        with pytest.raises(ValueError, match="SEED") as failure:
            parameter_grid.run_validation(path, {"SEED": -1})
    except parameter_grid.PastValidation as past:
        pytest.fail(f"{path.name}: the set-up cell uses {past} before it refuses SEED=-1")
    assert failure.type is ValueError, failure.type
    assert "-1" in str(failure.value), failure.value


@pytest.mark.parametrize("path", CHAPTERS, ids=chapter_id)
def test_chapter_says_how_to_run_it_and_on_which_versions(path: Path) -> None:
    """Before its parameters, a chapter tells a reader how to install lstm_utils and which versions made
    its outputs: those pinned in requirements.lock (so moving the lock without updating the text fails)."""
    notebook = nbformat.read(path, as_version=4)
    first_code = next(i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code")
    notes = [cell.source for cell in notebook.cells[:first_code] if "Running this chapter yourself" in cell.source]
    assert notes, "no 'Running this chapter yourself' note before the parameters cell"
    lock = (ROOT / "requirements.lock").read_text(encoding="utf8")
    for name, label in (("tensorflow", "TensorFlow"), ("keras", "Keras"), ("tf-keras", "tf-keras")):
        pinned = re.search(rf"^{name}==(\S+)$", lock, re.M)
        assert pinned, f"{name} is not pinned in requirements.lock"
        assert f"{label} {pinned.group(1)}" in notes[0], f"the note does not name {label} {pinned.group(1)}"
    assert "pip install ." in notes[0] and "make test" in notes[0]
