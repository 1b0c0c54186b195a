"""Write ``errors.md``: every error message the chapters show, with the sections that show it.

Usage::

    python tools/error_index.py          # rewrite errors.md from the chapters' stored outputs
    python tools/error_index.py --check  # exit 1 if errors.md is not what the outputs give

Readers arrive with a traceback; this page lets them search for its last line. The messages
come from the stored outputs of ``chapters/NN_slug.ipynb``: the errors cells raise, and the
``Type: message`` lines that ``lstm_utils.expect_error`` prints. ``make execute`` refreshes the
outputs; run this afterwards (``tests/test_book.py`` fails while the page is out of date).

Names that Keras numbers as it goes (``'lstm_12'``, ``"model_3"``) are written with ``N``, so
one message made by several layers is listed once. Each message links to the section (the
nearest heading above the cell) whose text explains it: the heading's anchor is computed as
MyST computes it (``myst_heading_anchors`` in ``_config.yml``), so a link that does not
resolve fails the ``-W -n`` book build.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import nbformat
from markdown_it.renderer import RendererHTML
from markdown_it.tree import SyntaxTreeNode
from myst_parser.config.main import MdParserConfig
from myst_parser.mdit_to_docutils.base import compute_unique_slug
from myst_parser.parsers.mdit import create_md_parser

ROOT = Path(__file__).resolve().parents[1]


def _book_chapters() -> list[Path]:
    """The chapter notebooks listed in ``_toc.yml``, in book order (a chapter not yet in the book is left out)."""
    listed = re.findall(r"^\s*- file: (chapters/\S+)\s*$", (ROOT / "_toc.yml").read_text(encoding="utf8"), re.M)
    return [ROOT / f"{entry}.ipynb" for entry in listed]


CHAPTERS = _book_chapters()
PAGE = ROOT / "errors.md"
ANCHOR_DEPTH = 3  # _config.yml's myst_heading_anchors: headings down to ### have anchors
# "Type: message" at the start of a printed line (expect_error), or a warning that a chapter caught
# and printed as "(after UserWarning: message...)".
_ERROR_LINE = re.compile(
    r"^(?:\(after )?((?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Warning)): (.+?)(?:\.\.\.\))?$"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NUMBERED_NAME = re.compile(r"""(['"])([a-z][a-z0-9_]*?)_\d+\1""")
_NUMBERED_LAYER = re.compile(r"\b(lstm|gru|simple_rnn|rnn|bidirectional|dense|model|sequential|functional)_\d+\b")
_CODE_UNSAFE = str.maketrans({"`": "'"})  # a backtick would end the code span

HEADER = """# Error messages

Every error and warning message the chapters show, by exception type, with the sections that show it.
Search this page (Ctrl+F) for the last line of your traceback. The messages are those of
Keras 3 (`keras`, `tf.keras`), Keras 2 (`tf_keras`), TensorFlow and `lstm_utils`, as they came
out on the versions the book was last executed with (the first line of each), and names that
Keras numbers as it goes (`'lstm_12'`) are written `'lstm_N'`. Each links to the section that
shows it and explains what to write instead.

This page is generated from the chapters' stored outputs by `tools/error_index.py`.
"""


def chapter_title(notebook: nbformat.NotebookNode, path: Path) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^# (.+)$", cell.source, re.M)
            if match:
                return match.group(1).strip()
    return path.stem


def normalise(message: str) -> str:
    message = _ANSI.sub("", message).strip()
    message = _NUMBERED_NAME.sub(lambda m: f"{m[1]}{m[2]}_N{m[1]}", message)
    return _NUMBERED_LAYER.sub(r"\1_N", message)


_MYST = create_md_parser(MdParserConfig(enable_extensions={"dollarmath", "amsmath", "colon_fence"}), RendererHTML)


@dataclass(frozen=True)
class Section:
    """A heading of a chapter: its level (1 for the title), its text as Markdown, its anchor on the page."""

    level: int
    title: str
    anchor: str


def _heading_markdown(heading: SyntaxTreeNode) -> str:
    """The heading's visible text, with its code (and the targets of roles) as code spans."""
    parts: list[str] = []
    for child in heading.children[0].children:  # the inline node's tokens
        if child.type == "text":
            parts.append(child.content)
        elif child.type in ("code_inline", "myst_role"):
            parts.append(f"`{child.content}`")
    return "".join(parts).strip()


def sections_of(notebook: nbformat.NotebookNode) -> list[Section | None]:
    """For each cell, the innermost section (down to ``###``) that holds it; None above the first heading.

    Anchors follow MyST's heading slugs for the whole page: a title that repeats gets ``-1``, ``-2``.
    """
    slugs: set[str] = set()
    current: Section | None = None
    found: list[Section | None] = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for node in SyntaxTreeNode(_MYST.parse(cell.source)).walk():
                if node.type == "heading" and int(node.tag[1:]) <= ANCHOR_DEPTH:
                    slug = compute_unique_slug(node, slugs)
                    slugs.add(slug)
                    current = Section(int(node.tag[1:]), _heading_markdown(node), slug)
        found.append(current)
    return found


def messages_of(notebook: nbformat.NotebookNode) -> list[tuple[str, str, Section | None]]:
    """``(type, message, section)`` for each error in one notebook's stored outputs, in order."""
    found: list[tuple[str, str, Section | None]] = []
    for cell, section in zip(notebook.cells, sections_of(notebook), strict=True):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                first = _ANSI.sub("", output.evalue).strip().splitlines()
                found.append((output.ename, first[0] if first else "", section))
            elif output.output_type == "stream" and output.name == "stdout":
                for line in output.text.splitlines():
                    match = _ERROR_LINE.match(_ANSI.sub("", line).strip())
                    if match:
                        found.append((match.group(1).rsplit(".", 1)[-1], match.group(2), section))
    return found


def _link(path: Path, section: Section | None) -> str:
    number = path.stem[:2].lstrip("0")
    if section is None or section.level == 1:  # the chapter's introduction: the page itself
        return f"[chapter {number}](chapters/{path.name})"
    return f"[chapter {number}, {section.title}](chapters/{path.name}#{section.anchor})"


def page_text() -> str:
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in CHAPTERS:
        notebook = nbformat.read(path, as_version=4)
        for kind, message, section in messages_of(notebook):
            key = (kind, normalise(message))
            link = _link(path, section)
            if key[1] and link not in where[key]:
                where[key].append(link)
    by_kind: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
    for (kind, message), links in where.items():
        by_kind[kind].append((message, links))
    lines = [HEADER]
    lines.append(
        "Chapters: "
        + ", ".join(
            f"[{p.stem[:2].lstrip('0')}. {chapter_title(nbformat.read(p, as_version=4), p)}](chapters/{p.name})"
            for p in CHAPTERS
        )
        + ".\n"
    )
    for kind in sorted(by_kind, key=lambda k: (-len(by_kind[k]), k)):
        entries = sorted(by_kind[kind], key=lambda entry: entry[0].lower())
        lines.append(f"## {kind}\n")
        # A list, not a table: long messages wrap on a phone instead of pushing a column off-screen.
        lines += [f"- `{message.translate(_CODE_UNSAFE)}`: {'; '.join(links)}" for message, links in entries]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(arguments: list[str]) -> int:
    text = page_text()
    if arguments == ["--check"]:
        current = PAGE.read_text(encoding="utf8") if PAGE.exists() else ""
        if current != text:
            print(f"{PAGE.name} is out of date: run `.venv/bin/python tools/error_index.py`")
            return 1
        return 0
    if arguments:
        print(__doc__)
        return 2
    PAGE.write_text(text, encoding="utf8")
    count = text.count("\n- `")
    print(f"{PAGE.name}: {count} messages from {len(CHAPTERS)} chapters")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
