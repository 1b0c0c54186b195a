"""Re-execute chapters in place with papermill, so their stored outputs are the reference.

Usage: ``python tools/execute_chapters.py [chapters/NN_name.ipynb ...]`` (default: every
chapter). Prints each chapter and how long it took. Fails if a chapter raises, or leaves
output on stderr (nbval runs kernels with stderr discarded, so stored stderr would never
match) or a cell unexecuted.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import papermill

from lstm_utils.repro import _stderr_fd_silenced

ROOT = Path(__file__).resolve().parents[1]


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
    merged: how the kernel splits printed text into messages depends on timing.
    """
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        merged: list[nbformat.NotebookNode] = []
        for output in cell.get("outputs", []):
            previous = merged[-1] if merged else None
            if (output.output_type == "stream" and previous is not None
                    and previous.output_type == "stream" and previous.name == output.name):
                previous.text += output.text
            else:
                merged.append(output)
        if cell.cell_type == "code":
            cell.outputs = merged


def execute(path: Path) -> float:
    started = time.perf_counter()
    # The kernel process inherits descriptor 2; silencing it keeps ipykernel's start-up
    # notices off the terminal. Cell errors still arrive, as papermill's exception.
    with _stderr_fd_silenced():
        papermill.execute_notebook(
            str(path), str(path), cwd=str(path.parent), kernel_name="python3",
            progress_bar=False, log_output=False,
        )
    elapsed = time.perf_counter() - started
    notebook = nbformat.read(path, as_version=4)
    normalise(notebook)
    nbformat.write(notebook, path)
    found = problems_in(notebook)
    if found:
        raise SystemExit(f"{path.name}: " + "; ".join(found))
    return elapsed


def main(argv: list[str]) -> int:
    paths = [Path(p).resolve() for p in argv] or sorted((ROOT / "chapters").glob("[0-9]*.ipynb"))
    total = 0.0
    for path in paths:
        print(f"{path.relative_to(ROOT)} ...", end=" ", flush=True)
        elapsed = execute(path)
        total += elapsed
        print(f"{elapsed:.1f} s", flush=True)
    print(f"{len(paths)} chapter(s) in {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
