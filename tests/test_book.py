"""The HTML book builds from the chapters' stored outputs, warnings as errors, and shows them.

nbval proves that the outputs stored in each chapter are what a fresh execution gives, and
papermill runs every chapter again with other parameters, so this build executes nothing:
it reads the real ``_config.yml`` (exclude patterns, extensions, Sphinx options and all),
switches execution off in a temporary copy, and renders the stored outputs. ``make book``
is the build that executes (changed chapters, with its cache).
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def config_without_execution(folder: Path) -> Path:
    """Write ``_config.yml`` with ``execute_notebooks: off`` into `folder`; return its path."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    # Jupyter Book resolves local_extensions folders against the config file's folder.
    sphinx = config.get("sphinx") or {}
    for name, folder_of_extension in (sphinx.get("local_extensions") or {}).items():
        sphinx["local_extensions"][name] = str((ROOT / folder_of_extension).resolve())
    path = folder / "_config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf8")
    return path


def page_text(page: Path) -> str:
    """The text of an HTML page, tags removed and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf8")))


def stored_stdout_lines(notebook: nbformat.NotebookNode) -> list[str]:
    lines: list[str] = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.output_type == "stream" and output.name == "stdout":
                lines += [line.rstrip() for line in output.text.splitlines() if line.strip()]
    return lines


def stored_images(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )


def build_book(folder: Path) -> subprocess.CompletedProcess[str]:
    """Build the book from the stored outputs (no execution), warnings as errors, into `folder`."""
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    config = config_without_execution(folder)
    command = [str(jupyter_book), "build", str(ROOT), "--config", str(config), "-W", "-n", "--keep-going"]
    return subprocess.run(
        [*command, "--path-output", str(folder)], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_book_builds_from_the_stored_outputs_with_warnings_as_errors(built_book: Any) -> None:
    log = built_book.log
    assert built_book.returncode == 0, log[-6000:]
    executed = re.search(r"Execut(ed|ing) notebook|inline execution client", log)
    assert not executed, "the build executed a chapter:\n" + log[-6000:]
    html_folder = built_book.html
    assert (html_folder / "intro.html").exists()
    assert CHAPTERS
    for chapter in CHAPTERS:
        page = html_folder / "chapters" / f"{chapter.stem}.html"
        assert page.exists(), f"{page.name} was not built"
        notebook = nbformat.read(chapter, as_version=4)
        # Every line the chapter printed is on its page, so a build that renders no outputs fails.
        expected = stored_stdout_lines(notebook)
        assert expected, f"{chapter.name} stores no printed output to look for"
        text = page_text(page)
        missing = [line for line in expected if line not in text]
        assert not missing, f"{page.name} lacks {len(missing)} of the {len(expected)} printed lines: {missing[:3]}"
        shown = len(re.findall(r'<img[^>]+src="[^"]*_images/', page.read_text(encoding="utf8")))
        assert shown >= stored_images(notebook), f"{page.name} shows {shown} of {stored_images(notebook)} stored images"
    # Nothing is loaded from another site, so the book reads offline: MathJax comes from _static.
    remote = [
        str(page.relative_to(html_folder))
        for page in sorted(html_folder.rglob("*.html"))
        if re.search(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//', page.read_text(encoding="utf8"))
    ]
    assert not remote, f"pages that load scripts or styles from another site: {remote}"
    assert (html_folder / "_static" / "mathjax" / "tex-chtml.js").exists()
    # The bibliography renders every entry of references.bib, and every citation names one of them.
    bib = (ROOT / "references.bib").read_text(encoding="utf8")
    references = page_text(html_folder / "references.html").lower()
    titles = [
        re.sub(r"[{}]", "", t).replace("--", "\u2013").lower()
        for t in re.findall(r"^\s*title\s*=\s*\{(.+)\},?$", bib, re.M)
    ]
    assert titles and all(title in references for title in titles), [t for t in titles if t not in references]
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, re.M))
    sources = [ROOT / "intro.md", *sorted((ROOT / "chapters").glob("*.md"))]
    cited = {
        key
        for source in sources
        for group in re.findall(r"\{cite\}`([^`]+)`", source.read_text(encoding="utf8"))
        for key in group.split(",")
    }
    assert cited and cited <= keys, sorted(cited - keys)
    assert 'src="../_static/mathjax/tex-chtml.js"' in (html_folder / "chapters" / "01_state_anatomy.html").read_text(
        encoding="utf8"
    )


def test_the_api_reference_documents_every_public_name() -> None:
    """api.md has an autodoc entry for each name in ``lstm_utils.__all__``, and no other."""
    import lstm_utils

    page = (ROOT / "api.md").read_text(encoding="utf8")
    documented = re.findall(r"^\.\. auto(?:function|class|data):: lstm_utils\.(\w+)$", page, re.M)
    assert len(documented) == len(set(documented)), "a name is documented twice"
    missing = sorted(set(lstm_utils.__all__) - set(documented))
    assert not missing, f"add to api.md: {missing}"
    assert set(documented) <= set(lstm_utils.__all__), sorted(set(documented) - set(lstm_utils.__all__))


def test_the_error_index_is_up_to_date() -> None:
    """errors.md is what tools/error_index.py makes from the stored outputs (make execute runs it)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "error_index.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    page = (ROOT / "errors.md").read_text(encoding="utf8")
    for message in (
        "Expected a symbolic tensor instance",
        "has no attribute 'reset_states'",
        "unexpected keyword argument 'states'",
    ):  # what readers of chapters 1, 4 arrive with
        assert message in page, message
    assert "file: errors" in (ROOT / "_toc.yml").read_text(encoding="utf8")


def test_the_pages_workflow_publishes_what_make_book_builds() -> None:
    """The GitHub Pages workflow runs ``make book`` (executing, ``-W``) and uploads its output folder."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text(encoding="utf8"))
    steps = workflow["jobs"]["build"]["steps"]
    assert [step.get("run") for step in steps if "run" in step] == ["make book"]
    uploads = [step for step in steps if str(step.get("uses", "")).startswith("actions/upload-pages-artifact")]
    assert [step["with"]["path"] for step in uploads] == ["_build/html"]
    assert "actions/deploy-pages" in str(workflow["jobs"]["deploy"]["steps"])
    makefile = (ROOT / "Makefile").read_text(encoding="utf8")
    book_recipe = makefile.split("\nbook:", 1)[1].split("\n\n", 1)[0]
    assert "jupyter-book build . -W" in book_recipe, book_recipe


def test_the_intro_claims_table_is_what_the_chapters_ran() -> None:
    """intro.md's claims table is copied from the chapters' stored closing tables (tools/intro_table.py)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "intro_table.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    intro = (ROOT / "intro.md").read_text(encoding="utf8")
    assert "| `lstm.reset_states(states=[h_0, c_0])` sets them | TypeError | works |" in intro
