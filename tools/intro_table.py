"""Write the intro's "source answer, claim by claim" table from the chapters' stored outputs.

Usage::

    python tools/intro_table.py          # rewrite the table in intro.md
    python tools/intro_table.py --check  # exit 1 if intro.md's table is not what the outputs give

Each claim of the source answer is checked by a chapter, which records what Keras 3 and
Keras 2 did in its closing table (``lstm_utils.VersionTable``). This script copies those two
cells, for the case named in ``CLAIMS``, into intro.md between the two marker comments, so the
intro says what the chapters last ran, not what someone once typed. ``make execute`` runs it
after re-executing the chapters; ``tests/test_book.py`` fails while the table is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
INTRO = ROOT / "intro.md"
START = "<!-- claims table: written by tools/intro_table.py from the chapters' stored outputs -->"
END = "<!-- end of the claims table -->"
HEADER = "| The answer says | On Keras 3 | On Keras 2 (`tf_keras`) | Chapter |\n|---|---|---|---|"

# (what the answer says, the chapter that checks it, the case in that chapter's closing table)
CLAIMS: tuple[tuple[str, str, str], ...] = (
    (
        "`LSTM(8)(inputs, initial_state=[h_0, c_0])`, NumPy states, eager call",
        "01_state_anatomy",
        "`initial_state` as NumPy arrays (eager call)",
    ),
    ("the same with tensors", "01_state_anatomy", "`initial_state` as tensors (eager call)"),
    ("the initial state is `[h, c]`", "01_state_anatomy", "state order in `initial_state`"),
    (
        "a stateful LSTM needs `batch_size=(1, 10, 1)`",
        "03_stateful_layers",
        "Source's `LSTM(8, stateful=True, batch_size=(1, 10, 1))`",
    ),
    (
        "the output equals `lstm.states[0]` at the last step",
        "03_stateful_layers",
        "Output == `states[0]`, `states[1]` is c",
    ),
    (
        "`initial_state` on a stateful layer starts it from `h_0`, `c_0`",
        "03_stateful_layers",
        "Stateful layer given `initial_state` again",
    ),
    ("`lstm.reset_states()` zeroes the states", "03_stateful_layers", "`layer.reset_states()` zeroes the state"),
    ("`lstm.reset_states(states=[h_0, c_0])` sets them", "04_numeric_state", "`layer.reset_states(states=[h0, c0])`"),
    ("compile first, because compiling resets the states", "06_list_replacement", "does `compile` reset the states?"),
    (
        "`model.layers[1].states[0] = K.variable(...)` sets the state (after a `predict`)",
        "06_list_replacement",
        "`predict`, replace, `predict`",
    ),
    ("`states[0]` holds `h`, `states[1]` holds `c`", "06_list_replacement", "`states[0]` is h, `states[1]` is c"),
)


def closing_rows(chapter: str) -> dict[str, tuple[str, str]]:
    """Case -> (Keras 3 cell, Keras 2 cell) from every Keras 3 vs Keras 2 table the chapter displayed."""
    notebook = nbformat.read(ROOT / "chapters" / f"{chapter}.ipynb", as_version=4)
    rows: dict[str, tuple[str, str]] = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            table = output.get("data", {}).get("text/markdown", "")
            lines = table.splitlines()
            if len(lines) < 3 or "| Keras 3 (" not in lines[0]:
                continue
            for line in lines[2:]:
                cells = [part.strip() for part in line.strip().strip("|").split(" | ")]
                if len(cells) >= 3:
                    rows[cells[0]] = (cells[1], cells[2])
    return rows


def table() -> str:
    lines = [HEADER]
    for claim, chapter, case in CLAIMS:
        rows = closing_rows(chapter)
        if case not in rows:
            raise SystemExit(f"{chapter}.ipynb's closing tables have no case {case!r}: update CLAIMS in {__file__}")
        keras3, keras2 = rows[case]
        number = int(chapter[:2])
        lines.append(f"| {claim} | {keras3} | {keras2} | [{number}](chapters/{chapter}.ipynb) |")
    return "\n".join(lines)


def intro_text() -> str:
    """intro.md with the table between the markers replaced by what the outputs give."""
    text = INTRO.read_text(encoding="utf8")
    if text.count(START) != 1 or text.count(END) != 1:
        raise SystemExit(f"intro.md must hold each marker once:\n{START}\n{END}")
    before, rest = text.split(START)
    _, after = rest.split(END)
    return f"{before}{START}\n{table()}\n{END}{after}"


def main(arguments: list[str]) -> int:
    wanted = intro_text()
    if arguments == ["--check"]:
        if INTRO.read_text(encoding="utf8") != wanted:
            print("intro.md's claims table is out of date: run python tools/intro_table.py")
            return 1
        return 0
    if arguments:
        print(__doc__)
        return 2
    INTRO.write_text(wanted, encoding="utf8")
    print(f"wrote the claims table of {INTRO.name} ({len(CLAIMS)} claims)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
