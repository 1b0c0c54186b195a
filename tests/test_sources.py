"""Every chapter's text source (``chapters/NN_slug.md``) has the cells of its notebook.

The ``.md`` (MyST Markdown, paired by ``jupytext.toml``) is what people edit; the ``.ipynb``
is the same cells with outputs, written by ``make execute`` (tools/execute_chapters.py).
Here, with no kernel: every notebook has its ``.md`` and every ``.md`` its notebook, and the
two have the same cells (type, source, tags and other metadata the .md carries), so an edit made to one file only fails.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.config import JupytextConfiguration, load_jupytext_configuration_file

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
SOURCES = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))

Cell = tuple[str, str, str]  # type, source, the cell metadata the .md carries (JSON)
# Cell metadata that stays in the .ipynb only: editor state (jupytext.toml's cell_metadata_filter)
# and execution records; empty tags, which papermill gives every cell, count as none.
NOT_IN_SOURCE = (
    "papermill",
    "editable",
    "deletable",
    "slideshow",
    "jupyter",
    "vscode",
    "pycharm",
    "colab",
    "execution",
)


def config() -> JupytextConfiguration:
    return load_jupytext_configuration_file(str(ROOT / "jupytext.toml"))


def read_source(path: Path) -> nbformat.NotebookNode:
    """Read a ``.md`` as ``tools/execute_chapters.py`` does (see ``read_text_notebook`` there)."""
    text = path.read_text(encoding="utf-8")
    # Jupytext parses the whole file as YAML to detect its format, and YAML refuses control characters.
    control = re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text)
    assert control is None, (
        f"{path.name}, line {text.count(chr(10), 0, control.start()) + 1}: a literal control character "
        f"{control.group()!r}; write it as an escape inside the string"
    )
    notebook: nbformat.NotebookNode = jupytext.reads(text, fmt="md:myst", config=config())
    return notebook


def source_metadata(cell: nbformat.NotebookNode) -> str:
    kept = {key: value for key, value in cell.metadata.items() if key not in NOT_IN_SOURCE and (value or key != "tags")}
    return json.dumps(kept, sort_keys=True)


def cells(notebook: nbformat.NotebookNode) -> list[Cell]:
    return [(cell.cell_type, cell.source, source_metadata(cell)) for cell in notebook.cells]


def first_line(cell: Cell) -> str:
    return repr(cell[1].splitlines()[0] if cell[1].strip() else cell[1])


def describe(index: int, md: Cell, ipynb: Cell) -> str:
    """Say how cell ``index`` differs between the two files, quoting the first line that does."""
    if md[0] != ipynb[0]:
        return f"cell {index} is a {md[0]} cell in the .md, a {ipynb[0]} cell in the .ipynb"
    if md[1] != ipynb[1]:
        a, b = md[1].splitlines(), ipynb[1].splitlines()
        if a == b:
            return f"cell {index} ({md[0]}) source differs in line endings or a final newline"
        line = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        return (
            f"cell {index} ({md[0]}) source, line {line + 1}:\n"
            f"      .md:    {a[line] if line < len(a) else '<no such line>'!r}\n"
            f"      .ipynb: {b[line] if line < len(b) else '<no such line>'!r}"
        )
    return f"cell {index} ({md[0]}) metadata (tags, captions...): .md {md[2]}, .ipynb {ipynb[2]}"


def differences(md: list[Cell], ipynb: list[Cell]) -> list[str]:
    """The cells added, removed or changed between the ``.md`` and the ``.ipynb`` (numbered as in the .md)."""
    found = []
    matcher = difflib.SequenceMatcher(None, md, ipynb, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        found += [describe(i1 + k, md[i1 + k], ipynb[j1 + k]) for k in range(paired)]
        found += [f"cell {i} ({md[i][0]}) is in the .md only: {first_line(md[i])}" for i in range(i1 + paired, i2)]
        found += [
            f"cell {j} of the .ipynb ({ipynb[j][0]}) is not in the .md: {first_line(ipynb[j])}"
            for j in range(j1 + paired, j2)
        ]
    return found


def chapter_id(path: Path) -> str:
    return path.stem


def test_there_are_sources() -> None:
    assert CHAPTERS and SOURCES, "no chapters/NN_slug.ipynb, or no chapters/NN_slug.md, found"


@pytest.mark.parametrize("path", CHAPTERS, ids=chapter_id)
def test_every_notebook_has_its_source(path: Path) -> None:
    if not path.with_suffix(".md").exists():
        pytest.fail(
            f"chapters/{path.name} has no text source chapters/{path.stem}.md: create it with "
            f"`.venv/bin/python tools/execute_chapters.py --md-from-ipynb chapters/{path.name}` "
            f"(or `make execute CHAPTERS=chapters/{path.name}`, which also re-executes it)",
            pytrace=False,
        )


@pytest.mark.parametrize("path", SOURCES, ids=chapter_id)
def test_every_source_has_its_notebook(path: Path) -> None:
    if not path.with_suffix(".ipynb").exists():
        pytest.fail(
            f"chapters/{path.name} has no notebook: run `make execute CHAPTERS=chapters/{path.stem}.ipynb`"
            f" (and list the chapter in _toc.yml)",
            pytrace=False,
        )


@pytest.mark.parametrize("path", CHAPTERS, ids=chapter_id)
def test_source_and_notebook_have_the_same_cells(path: Path) -> None:
    source = path.with_suffix(".md")
    if not source.exists():
        pytest.skip(f"{source.name} is missing (reported by test_every_notebook_has_its_source)")
    found = differences(cells(read_source(source)), cells(nbformat.read(path, as_version=4)))
    if not found:
        return
    shown = "\n  ".join(found[:5]) + ("\n  ..." if len(found) > 5 else "")
    pytest.fail(
        f"chapters/{source.name} and chapters/{path.name} differ:\n  {shown}\n"
        f"The .md is the source. After editing it, run `make execute CHAPTERS=chapters/{path.name}` "
        f"(updates the .ipynb from the .md and re-executes it). If the change was made in the .ipynb, "
        f"make it in the .md instead, or keep it with `.venv/bin/python tools/execute_chapters.py "
        f"--md-from-ipynb chapters/{path.name}` and then run `make execute`.",
        pytrace=False,
    )


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_chapter_uses_the_shared_helpers(source: Path) -> None:
    """One parameter check, one closeness check: chapters call lstm_utils instead of local copies."""
    text = source.read_text(encoding="utf-8")
    assert text.count("lstm_utils.check_parameters(") == 1, "validate every parameter in one check_parameters call"
    for local in ("check_int_parameter(", "np.allclose(", "def close(", "def which("):
        assert local not in text, (
            f"{source.name} uses {local!r}: use lstm_utils.check_parameters / all_close / which_matches"
        )
