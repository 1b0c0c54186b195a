"""Re-execute chapters in place with papermill, so their stored outputs are the reference.

Usage::

    python tools/execute_chapters.py [options] [chapters/NN_slug.ipynb | chapters/NN_slug.md ...]

(default: every chapter). Each chapter is a pair, kept in step by Jupytext (``jupytext.toml``):

- ``chapters/NN_slug.md``, MyST Markdown, no outputs: **the source**, what people edit and review;
- ``chapters/NN_slug.ipynb``, the same cells with their outputs: the nbval reference and the
  page the book renders. It is written by this script only.

For each chapter, in order:

1. If one of the two files is missing it is made from the other (a new chapter may start as
   either): the ``.md`` from the ``.ipynb``'s cells, or a fresh ``.ipynb`` from the ``.md``.
2. The ``.ipynb`` is brought up to date from the ``.md``: cells, their order, their tags and other metadata
   come from the ``.md``; cell ids, outputs and other metadata of unchanged cells are kept
   (Jupytext's update). **The .md wins**: a change made to the ``.ipynb`` alone is replaced.
   One case is refused instead, because it can only be a direct edit of the ``.ipynb``: the
   ``.md`` is as committed (``git show HEAD:``) while the ``.ipynb``'s cells differ both from
   the ``.md`` and from the committed ``.ipynb``. Carry the change into the ``.md`` (or run
   ``--md-from-ipynb`` to rewrite the ``.md`` from the ``.ipynb``), or pass ``--md-wins`` to
   drop it. Other direct edits of the ``.ipynb`` (when the ``.md`` was edited too, or outside a
   git checkout) cannot be told apart from a stale ``.ipynb`` and are replaced.
3. The chapter is executed with papermill, and stored in a canonical form: papermill's
   timings and the ``jupytext`` notebook metadata dropped, consecutive stream outputs merged.
   Re-executing an unchanged chapter changes no byte of either file.

It prints each chapter and how long it took, and fails if a chapter raises, or leaves output
on stderr (nbval runs kernels with stderr discarded, so stored stderr would never match) or a
cell unexecuted.

Options (no kernel is started with either of the first two):

``--check``
    Report every chapter whose ``.md`` is missing or whose cells (type, source, tags) differ
    from its ``.ipynb``; exit status 1 if any. ``tests/test_sources.py`` checks the same.
``--md-from-ipynb``
    Rewrite the ``.md`` from the ``.ipynb`` (to keep an edit that was made in the ``.ipynb``),
    then stop; run again without it to execute.
``--md-wins``
    Update the ``.ipynb`` from the ``.md`` even where that looks like discarding a direct edit.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import functools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from jupytext.config import JupytextConfiguration, load_jupytext_configuration_file

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
TEXT_FORMAT = "md:myst"


@functools.cache
def jupytext_config() -> JupytextConfiguration:
    """The settings of ``jupytext.toml`` (pairing, metadata filters), as Jupyter and the CLI use them."""
    return load_jupytext_configuration_file(str(ROOT / "jupytext.toml"))


def read_text_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a chapter's ``.md`` with Jupytext.

    Jupytext (1.19) detects the format of a MyST file by parsing the whole file as YAML,
    which fails on a control character anywhere in it: write such characters as escapes
    (``"\\x1b"``), never literally. A clear error says where one is.
    """
    text = path.read_text(encoding="utf-8")
    control = re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text)
    if control:
        line = text.count("\n", 0, control.start()) + 1
        raise SystemExit(
            f"{path.name}, line {line}: a literal control character {control.group()!r}; write it as an escape "
            f"({ascii(control.group())[1:-1]!r} inside a string) so that Jupytext can read the file"
        )
    notebook: nbformat.NotebookNode = jupytext.reads(text, fmt=TEXT_FORMAT, config=jupytext_config())
    return notebook


def write_text_notebook(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Write the ``.md`` of a notebook, with the filters of ``jupytext.toml``."""
    jupytext.write(copy.deepcopy(notebook), str(path), fmt=TEXT_FORMAT, config=jupytext_config())
    found = differences(read_text_notebook(path), notebook)
    if found:
        raise SystemExit(f"{path.name} does not read back as the cells it was written from: " + "; ".join(found))


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


def source_metadata(cell: nbformat.NotebookNode) -> str:
    """A cell's metadata as the ``.md`` carries it (tags, figure captions...), as sorted JSON."""
    kept = {key: value for key, value in cell.metadata.items() if key not in NOT_IN_SOURCE and (value or key != "tags")}
    return json.dumps(kept, sort_keys=True)


def cell_summary(notebook: nbformat.NotebookNode) -> list[Cell]:
    """What the ``.md`` and the ``.ipynb`` must agree on: each cell's type, source and metadata."""
    return [(cell.cell_type, cell.source, source_metadata(cell)) for cell in notebook.cells]


def differences(text: nbformat.NotebookNode, stored: nbformat.NotebookNode, limit: int = 3) -> list[str]:
    """Describe the cells added, removed or changed between the ``.md`` (``text``) and the ``.ipynb``."""
    md, ipynb = cell_summary(text), cell_summary(stored)
    found = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, md, ipynb, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        found += [describe(i1 + k, md[i1 + k], ipynb[j1 + k]) for k in range(paired)]
        found += [f"cell {i} ({md[i][0]}) is in the .md only" for i in range(i1 + paired, i2)]
        found += [f"cell {j} of the .ipynb ({ipynb[j][0]}) is not in the .md" for j in range(j1 + paired, j2)]
    return found[:limit] + (["..."] if len(found) > limit else [])


def describe(index: int, md: Cell, ipynb: Cell) -> str:
    """How cell ``index`` differs, with the first differing line as ``.md: ... / .ipynb: ...``."""
    if md[0] != ipynb[0]:
        return f"cell {index} is a {md[0]} cell in the .md, a {ipynb[0]} cell in the .ipynb"
    if md[1] != ipynb[1]:
        a, b = md[1].splitlines(), ipynb[1].splitlines()
        line = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        x = a[line][:80] if line < len(a) else "<no such line>"
        y = b[line][:80] if line < len(b) else "<no such line>"
        return f"cell {index} ({md[0]}) source, line {line + 1}, .md: {x!r} / .ipynb: {y!r}"
    return f"cell {index} ({md[0]}) metadata (tags, captions...), .md: {md[2]} / .ipynb: {ipynb[2]}"


def committed(path: Path) -> str | None:
    """The text of ``path`` at git HEAD, or None (not committed, or not a git checkout)."""
    try:
        result = subprocess.run(
            ["git", "show", f"HEAD:{path.relative_to(ROOT).as_posix()}"],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            encoding="utf-8",
        )
    except OSError:
        return None
    return result.stdout if result.returncode == 0 else None


def edited_directly(md_path: Path, ipynb_path: Path, stored: nbformat.NotebookNode) -> bool:
    """True if the ``.md`` is as committed but the ``.ipynb``'s cells are not."""
    old_md, old_ipynb = committed(md_path), committed(ipynb_path)
    if old_md is None or old_ipynb is None or old_md != md_path.read_text(encoding="utf-8"):
        return False
    return cell_summary(nbformat.reads(old_ipynb, as_version=4)) != cell_summary(stored)


def update_from_text(text: nbformat.NotebookNode, stored: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The ``.ipynb`` with the cells of the ``.md`` (Jupytext's update: outputs of unchanged cells kept)."""
    from jupytext.combine import combine_inputs_with_outputs

    text = copy.deepcopy(text)
    # Keep what the .md leaves out (editor state) from the .ipynb, as Jupyter would.
    text.metadata.setdefault("jupytext", {}).setdefault("cell_metadata_filter", jupytext_config().cell_metadata_filter)
    combined: nbformat.NotebookNode = combine_inputs_with_outputs(text, stored, fmt=TEXT_FORMAT)
    return combined


def problems_in(notebook: nbformat.NotebookNode) -> list[str]:
    """Return what would make a stored notebook a bad nbval reference."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("execution_count") is None and cell.source.strip():
            found.append(f"cell {index} was not executed")
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                found.append(f"cell {index} wrote to stderr: {output.get('text', '')[:200]!r}")
    return found


def normalise(notebook: nbformat.NotebookNode) -> None:
    """Make the stored notebook depend on what the cells printed, not on when.

    Papermill's timings and timestamps are dropped, and consecutive stream outputs are
    merged: how the kernel splits printed text into messages depends on timing. The
    ``jupytext`` notebook metadata is dropped too: the pairing is in ``jupytext.toml``, and
    Jupytext's update adds ``default_lexer`` from the ``.md``.
    """
    notebook.metadata.pop("papermill", None)
    notebook.metadata.pop("jupytext", None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        merged: list[nbformat.NotebookNode] = []
        for output in cell.get("outputs", []):
            previous = merged[-1] if merged else None
            if (
                output.output_type == "stream"
                and previous is not None
                and previous.output_type == "stream"
                and previous.name == output.name
            ):
                previous.text += output.text
            else:
                merged.append(output)
        if cell.cell_type == "code":
            cell.outputs = merged


def pair_paths(argument: str) -> tuple[Path, Path]:
    """``chapters/NN_slug.ipynb`` or ``.md`` (or no suffix): the ``.ipynb`` and ``.md`` paths."""
    path = Path(argument).resolve()
    stem = path.with_suffix("") if path.suffix in (".ipynb", ".md") else path
    return stem.with_suffix(".ipynb"), stem.with_suffix(".md")


def all_chapters() -> list[str]:
    stems = {p.with_suffix("") for pattern in ("[0-9]*.ipynb", "[0-9]*.md") for p in CHAPTERS.glob(pattern)}
    return [str(stem) for stem in sorted(stems)]


def prepare(ipynb_path: Path, md_path: Path, md_wins: bool) -> None:
    """Steps 1 and 2: make the missing file, bring the ``.ipynb`` up to date from the ``.md``."""
    name = ipynb_path.relative_to(ROOT).with_suffix("")
    if not ipynb_path.exists() and not md_path.exists():
        raise SystemExit(f"{name}: neither .ipynb nor .md exists")
    if not md_path.exists():
        write_text_notebook(nbformat.read(ipynb_path, as_version=4), md_path)
        print(f"(created {md_path.name} from the .ipynb)", end=" ", flush=True)
        return
    text = read_text_notebook(md_path)
    if not ipynb_path.exists():
        notebook = copy.deepcopy(text)
        print(f"(created {ipynb_path.name} from the .md)", end=" ", flush=True)
    else:
        stored = nbformat.read(ipynb_path, as_version=4)
        if cell_summary(text) == cell_summary(stored):
            return
        if not md_wins and edited_directly(md_path, ipynb_path, stored):
            raise SystemExit(
                f"{name}.ipynb was edited directly: its cells differ from the committed ones and from "
                f"{md_path.name}, which is as committed ({'; '.join(differences(text, stored))}). The .md "
                f"is the source: carry the change into {md_path.name}, or keep the .ipynb's cells with "
                f"`python tools/execute_chapters.py --md-from-ipynb {name}.ipynb`, or drop them with "
                f"`python tools/execute_chapters.py --md-wins {name}.ipynb`."
            )
        notebook = update_from_text(text, stored)
    normalise(notebook)
    nbformat.write(notebook, ipynb_path)


def execute(path: Path) -> float:
    import papermill

    from lstm_utils.repro import _stderr_fd_silenced

    started = time.perf_counter()
    # The kernel process inherits descriptor 2; silencing it keeps ipykernel's start-up
    # notices off the terminal. Cell errors still arrive, as papermill's exception.
    with _stderr_fd_silenced():
        papermill.execute_notebook(
            str(path),
            str(path),
            cwd=str(path.parent),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
    elapsed = time.perf_counter() - started
    notebook = nbformat.read(path, as_version=4)
    normalise(notebook)
    nbformat.write(notebook, path)
    found = problems_in(notebook)
    if found:
        raise SystemExit(f"{path.name}: " + "; ".join(found))
    return elapsed


def check(pairs: list[tuple[Path, Path]]) -> int:
    """``--check``: report chapters whose two files are missing or disagree."""
    bad = 0
    for ipynb_path, md_path in pairs:
        name = ipynb_path.relative_to(ROOT)
        missing = [p.name for p in (ipynb_path, md_path) if not p.exists()]
        if missing:
            found = [f"{' and '.join(missing)} missing"]
        else:
            found = differences(read_text_notebook(md_path), nbformat.read(ipynb_path, as_version=4))
        if found:
            bad += 1
            print(f"{name}: " + "; ".join(found))
    if bad:
        print(f"{bad} chapter(s) out of step; after editing the .md: make execute CHAPTERS=<chapters above>")
    else:
        print(f"{len(pairs)} chapter(s): each .md has the cells of its .ipynb")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapters/NN_slug.ipynb or .md (default: all)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare each .md with its .ipynb; run nothing")
    mode.add_argument("--md-from-ipynb", action="store_true", help="rewrite each .md from its .ipynb; run nothing")
    mode.add_argument("--md-wins", action="store_true", help="update the .ipynb from the .md even over a direct edit")
    args = parser.parse_args(argv)
    pairs = [pair_paths(p) for p in args.chapters or all_chapters()]
    if args.check:
        return check(pairs)
    if args.md_from_ipynb:
        for ipynb_path, md_path in pairs:
            if not ipynb_path.exists():
                raise SystemExit(f"{ipynb_path.relative_to(ROOT)} does not exist")
            write_text_notebook(nbformat.read(ipynb_path, as_version=4), md_path)
            print(f"{md_path.relative_to(ROOT)} written from {ipynb_path.name}")
        return 0
    total = 0.0
    for ipynb_path, md_path in pairs:
        print(f"{ipynb_path.relative_to(ROOT)} ...", end=" ", flush=True)
        prepare(ipynb_path, md_path, args.md_wins)
        elapsed = execute(ipynb_path)
        total += elapsed
        print(f"{elapsed:.1f} s", flush=True)
    print(f"{len(pairs)} chapter(s) in {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
