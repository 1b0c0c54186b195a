"""Sphinx extension: "chapter N" in the API reference's docstrings links to chapter N.

The docstrings of ``lstm_utils`` name the chapter that explains each function in words
("See chapter 4, ``04_numeric_state.ipynb``."), which reads well in ``help()``; on the API page
the same words become a link to the chapter. Only docstrings are rewritten, when autodoc reads
them; the chapters and the package's text stay as they are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_CHAPTER = re.compile(r"\b([Cc]hapter) (\d{1,2})\b(?:, ``\d\d_\w+\.ipynb``)?")
_CHAPTERS = re.compile(r"\b([Cc]hapters) (\d{1,2}) and (\d{1,2})\b")


def _chapter_pages(app: Any) -> dict[int, str]:
    folder = Path(app.srcdir) / "chapters"
    return {int(path.name[:2]): path.stem for path in folder.glob("[0-9][0-9]_*.ipynb")}


def _link_chapters(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    pages = _chapter_pages(app)

    def page(number: str) -> str | None:
        stem = pages.get(int(number))
        return None if stem is None else f"/chapters/{stem}"

    def one(match: re.Match[str]) -> str:
        target = page(match.group(2))
        return match.group(0) if target is None else f":doc:`{match.group(1)} {match.group(2)} <{target}>`"

    def two(match: re.Match[str]) -> str:
        first, second = page(match.group(2)), page(match.group(3))
        if first is None or second is None:
            return match.group(0)
        return f"{match.group(1)} :doc:`{match.group(2)} <{first}>` and :doc:`{match.group(3)} <{second}>`"

    for index, line in enumerate(lines):
        if "``" in line and "chapter" not in line.lower():
            continue
        lines[index] = _CHAPTER.sub(one, _CHAPTERS.sub(two, line))


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _link_chapters)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
