"""The HTML book builds from a clean output folder, executing every chapter, warnings as errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_book_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run(
        [str(jupyter_book), "build", str(ROOT), "-W", "-n", "--keep-going", "--path-output", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-6000:]
    html = tmp_path / "_build" / "html"
    assert (html / "intro.html").exists()
    for chapter in sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb")):
        page = html / "chapters" / f"{chapter.stem}.html"
        assert page.exists(), f"{page.name} was not built"
