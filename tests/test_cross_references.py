"""Cross-chapter links in the chapters' text go to sections, through MyST labels.

A link such as ``[chapter 6](06_list_replacement.ipynb)`` lands on the top of a long page; the
chapters instead name the section they mean, with a label put on its own line before the heading
in the target chapter and a reference to it::

    (ch06-silently-ignored-after-predict)=
    ## After the first `predict`: silently ignored

    ... {ref}`chapter 6 <ch06-silently-ignored-after-predict>` shows what goes wrong ...

Checked here, on the Markdown cells of ``chapters/NN_slug.md`` (code cells and their outputs are
not text the chapters write as Markdown): no link to a chapter's page top, every ``{ref}`` names
a label that a chapter (or a ``.md`` at the repository root) defines, no label is defined twice,
and a reference whose text says "chapter N" leads into chapter N. Each check is a function of the
texts, tried first on small broken examples, so that a check that could never fail is noticed.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_SOURCES = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.md"))
ROOT_PAGES = sorted(ROOT.glob("*.md"))

Sources = dict[str, list[str]]  # file name -> the Markdown texts it holds (a chapter's Markdown cells)

# ](06_list_replacement.ipynb) or ](./06_list_replacement.md): a chapter's page, no #anchor.
PAGE_TOP_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(?:\./)?\d\d_[A-Za-z0-9_]+\.(?:ipynb|md)\s*\)")
# {ref}`label` or {ref}`visible text <label>`
REFERENCE = re.compile(r"\{ref\}`([^`]+)`")
# (label)= on a line of its own
LABEL = re.compile(r"^\(([^()\s]+)\)=\s*$", re.M)
# the text of a reference names a chapter: "chapter 6", "Chapters 3", or only the number ("and 6")
CHAPTER_NUMBER = re.compile(r"^(?:[Cc]hapters? )?(\d{1,2})\b")


def page_top_links(text: str) -> list[str]:
    """The links in `text` that go to the top of a chapter's page (no anchor)."""
    return PAGE_TOP_LINK.findall(text)


def references(text: str) -> list[tuple[str, str]]:
    """``(visible text, label)`` of each ``{ref}`` in `text` (the text is the label when none is given)."""
    found = []
    for content in REFERENCE.findall(text):
        explicit = re.fullmatch(r"(.*?)\s*<([^<>]+)>", content, re.S)
        found.append((explicit.group(1), explicit.group(2)) if explicit else (content, content))
    return found


def labels(text: str) -> list[str]:
    """The labels that `text` defines with ``(label)=``."""
    return LABEL.findall(text)


def page_top_problems(chapters: Sources) -> list[str]:
    return [
        f"{name}: {link!r} links to the top of a chapter's page; put a label before the section meant "
        f"(`(chNN-what-it-is-about)=`) and write {{ref}}`chapter N <chNN-what-it-is-about>`"
        for name, texts in chapters.items()
        for text in texts
        for link in page_top_links(text)
    ]


def defined_labels(sources: Sources) -> dict[str, list[str]]:
    """Each label and the files that define it."""
    where: dict[str, list[str]] = {}
    for name, texts in sources.items():
        for text in texts:
            for label in labels(text):
                where.setdefault(label, []).append(name)
    return where


def unknown_label_problems(chapters: Sources, root_pages: Sources) -> list[str]:
    known = defined_labels({**chapters, **root_pages})
    return [
        f"{name}: {{ref}}`{shown} <{label}>` names the label {label!r}, which no chapter and no .md at the "
        f"repository root defines with `({label})=`"
        for name, texts in chapters.items()
        for text in texts
        for shown, label in references(text)
        if label not in known
    ]


def duplicate_label_problems(sources: Sources) -> list[str]:
    problems = []
    for label, names in defined_labels(sources).items():
        if len(names) > 1:
            counts = ", ".join(f"{name} ({count}x)" for name, count in Counter(names).items())
            problems.append(f"the label ({label})= is defined {len(names)} times: {counts}")
    return problems


def chapter_number_problems(chapters: Sources) -> list[str]:
    """A reference whose text names chapter N must lead to a label defined in chapter N."""
    where = defined_labels(chapters)
    problems = []
    for name, texts in chapters.items():
        for text in texts:
            for shown, label in references(text):
                number = CHAPTER_NUMBER.match(shown)
                if number is None or label not in where:
                    continue
                targets = [target for target in where[label] if target[:2].isdigit()]
                if targets and all(int(target[:2]) != int(number.group(1)) for target in targets):
                    problems.append(
                        f"{name}: {{ref}}`{shown} <{label}>` says chapter {number.group(1)}, "
                        f"but ({label})= is in {', '.join(targets)}"
                    )
    return problems


def markdown_cells(path: Path) -> list[str]:
    notebook = jupytext.reads(path.read_text(encoding="utf-8"), fmt="md:myst")
    return [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]


def chapter_texts() -> Sources:
    assert CHAPTER_SOURCES, "no chapters/NN_slug.md found"
    return {path.name: markdown_cells(path) for path in CHAPTER_SOURCES}


def root_page_texts() -> Sources:
    return {path.name: [path.read_text(encoding="utf-8")] for path in ROOT_PAGES}


# The checks, on small examples: each must catch what it is there for, and only that.


def test_the_page_top_check_catches_a_link_without_an_anchor() -> None:
    broken = {"03_x.md": ["Setting values is the topic of [chapter 4](04_numeric_state.ipynb).\n"]}
    problems = page_top_problems(broken)
    assert len(problems) == 1 and problems[0].startswith("03_x.md: '[chapter 4](04_numeric_state.ipynb)'"), problems
    assert page_top_problems({"03_x.md": ["see [chapter 4](./04_numeric_state.md)"]})
    assert page_top_links("[`states[0]` in chapter 6](06_list_replacement.ipynb)") == [
        "[`states[0]` in chapter 6](06_list_replacement.ipynb)"
    ]
    fine = {
        "03_x.md": [
            "the topic of {ref}`chapter 4 <ch04-variable-assign>`, "
            "[a section](04_numeric_state.ipynb#setting-values-variable-assign), "
            "[`LSTM`](https://keras.io/api/layers/recurrent_layers/lstm/), `states[0](h)`"
        ]
    }
    assert page_top_problems(fine) == []


def test_the_reference_check_catches_a_label_nobody_defines() -> None:
    chapters = {
        "01_a.md": ["(ch01-output-is-h)=\n## The output is `h`\n"],
        "02_b.md": ["As {ref}`chapter 1 <ch01-output-is-h>` shows, and {ref}`chapter 1 <ch01-no-such-section>`."],
    }
    problems = unknown_label_problems(chapters, {})
    assert len(problems) == 1 and "02_b.md" in problems[0] and "'ch01-no-such-section'" in problems[0], problems
    # a bare {ref}`label` counts too, and a label that only a page at the root defines is known
    assert unknown_label_problems({"02_b.md": ["{ref}`intro-table`"]}, {})
    assert (
        unknown_label_problems({"02_b.md": ["{ref}`the table <intro-table>`"]}, {"intro.md": ["(intro-table)=\n"]})
        == []
    )
    assert references("{ref}`chapter 6's two\ndiverging states <ch06-two>` and {ref}`ch07`") == [
        ("chapter 6's two\ndiverging states", "ch06-two"),
        ("ch07", "ch07"),
    ]


def test_the_duplicate_check_catches_a_label_defined_twice() -> None:
    twice = {
        "05_a.md": ["(ch05-reset)=\n## Resetting\n", "(ch05-other)=\n## Other\n"],
        "06_b.md": ["(ch05-reset)=\n## Again\n"],
    }
    problems = duplicate_label_problems(twice)
    assert problems == ["the label (ch05-reset)= is defined 2 times: 05_a.md (1x), 06_b.md (1x)"], problems
    # a "(...)=" inside a sentence is not a label
    assert labels("f(x)= y, and\n(ch05-reset)=\n## Resetting") == ["ch05-reset"]


def test_the_chapter_number_check_catches_text_that_names_another_chapter() -> None:
    chapters = {
        "04_a.md": ["(ch04-assign)=\n## Assign\n"],
        "06_b.md": [
            "(ch06)=\n# Six\n",
            "See {ref}`chapter 5 <ch04-assign>`, {ref}`chapter 4 <ch04-assign>`, chapters 3 to {ref}`6 <ch06>`.",
        ],
    }
    problems = chapter_number_problems(chapters)
    assert len(problems) == 1 and "{ref}`chapter 5 <ch04-assign>` says chapter 5" in problems[0], problems


# The book's own chapters.


def test_no_chapter_links_to_the_top_of_another_chapter() -> None:
    problems = page_top_problems(chapter_texts())
    assert not problems, f"{len(problems)} link(s) to a chapter's page top:\n" + "\n".join(problems)


def test_every_reference_names_a_defined_label() -> None:
    chapters = chapter_texts()
    assert any(references(text) for texts in chapters.values() for text in texts), "no {ref} in any chapter"
    problems = unknown_label_problems(chapters, root_page_texts())
    assert not problems, "\n".join(problems)


def test_no_label_is_defined_twice() -> None:
    problems = duplicate_label_problems({**chapter_texts(), **root_page_texts()})
    assert not problems, "\n".join(problems)


def test_a_reference_to_chapter_n_leads_into_chapter_n() -> None:
    problems = chapter_number_problems(chapter_texts())
    assert not problems, "\n".join(problems)
