"""Showing facts in chapters: expected errors and arrays, printed the same way on every run.

Every chapter from 2 on shows what Keras raises with :func:`expect_error`.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator

import numpy as np

__all__ = ["ExpectedError", "VersionTable", "expect_error", "show_array"]

VERSIONS = ("Keras 3", "Keras 2")
"""The column names of every side-by-side table, in order."""
_HEADERS = {"Keras 3": "Keras 3 (`keras`, `tf.keras`)", "Keras 2": "Keras 2 (`tf_keras`)"}


class ExpectedError:
    """What :func:`expect_error` caught: ``type_name`` and ``message``, filled in on exit.

    Chapters record it in their closing tables (what each Keras version raised).

    Examples
    --------
    >>> with expect_error(KeyError) as caught:
    ...     {}["h"]
    KeyError: 'h'
    >>> caught.type_name
    'KeyError'
    """

    type_name: str = ""
    message: str = ""

    def __repr__(self) -> str:
        return f"ExpectedError({self.type_name}: {self.message!r})"


def _first_lines(text: str, max_lines: int) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    kept = lines[:max_lines]
    if len(lines) > max_lines:
        kept.append(f"... ({len(lines) - max_lines} more lines)")
    return "\n".join(kept)


def _stable_message(text: str) -> str:
    """The message without what changes between machines and runs.

    Memory addresses, terminal colour codes, TensorFlow's op/device annotations
    (``{{function_node __MklMatMul_device_/job:localhost/...}}``) and the names of folders
    made by ``tempfile`` are masked or removed.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = re.sub(r"\{\{.*?\}\}\s*", "", text)
    # A folder made by tempfile (/tmp/tmpk3j_x9) gets a new name on every run.
    text = re.sub(re.escape(tempfile.gettempdir()) + r"/tmp[A-Za-z0-9_]+", "<temporary folder>", text)
    return re.sub(r"0x[0-9a-fA-F]{6,}", "0x...", text)


@contextlib.contextmanager
def expect_error(*types: type[BaseException], match: str | None = None, max_lines: int = 4) -> Iterator[ExpectedError]:
    """Run a block that must fail; print the error it raised, and fail if it did not.

    Chapters use this to show what Keras really says when a recipe is wrong, while
    asserting that it still says it: if a new release stops raising, or raises something
    else, the chapter fails. Memory addresses (``0x7f...``), colour codes and
    TensorFlow's device annotations are removed, so that the printed message is the
    same on every run and machine.

    Parameters
    ----------
    *types : type of BaseException
        The accepted exception classes (default: any ``Exception``).
    match : str, optional
        A regular expression that must be found in the message (``re.search``).
    max_lines : int
        How many non-empty lines of the message to print.

    Yields
    ------
    ExpectedError
        Holds the caught error's type name and full message after the block.

    Raises
    ------
    AssertionError
        If the block raised nothing, or a message that does not match ``match``.

    Examples
    --------
    >>> with expect_error(ZeroDivisionError, match="division"):
    ...     1 / 0
    ZeroDivisionError: division by zero
    """
    accepted = types or (Exception,)
    caught = ExpectedError()
    try:
        yield caught
    except accepted as error:
        caught.type_name = type(error).__name__
        caught.message = _stable_message(str(error))
        print(f"{caught.type_name}: {_first_lines(caught.message, max_lines)}")
        if match is not None and not re.search(match, caught.message):
            raise AssertionError(f"expected a message matching {match!r}, got {caught.message!r}") from error
    else:
        names = ", ".join(t.__name__ for t in accepted)
        raise AssertionError(f"expected {names} to be raised, but the block ran without error")


def show_array(name: str, value: object, precision: int = 4) -> None:
    """Print ``name``, the shape and the values of an array with fixed precision.

    Chapters print states with it (for example chapter 3, ``03_stateful_layers.ipynb``),
    so that their stored outputs do not depend on the last digits of a float.

    Parameters
    ----------
    name : str
        A label printed before the array.
    value : array-like
        Anything ``numpy.asarray`` accepts: NumPy arrays, tensors, Keras variables.
    precision : int
        Digits after the decimal point.

    Examples
    --------
    >>> show_array("h", [[0.123456, -1.0]])
    h (1, 2): [[ 0.1235 -1.    ]]
    """
    array = np.asarray(value)
    # "+ 0.0" turns -0.0 into 0.0, so a sign flip of a rounded zero never changes the output.
    text = np.array2string(
        np.round(array.astype(np.float64), precision) + 0.0,
        precision=precision,
        suppress_small=True,
        max_line_width=100,
    )
    separator = "\n" if "\n" in text else " "
    print(f"{name} {array.shape}:{separator}{text}")


class VersionTable:
    """Facts a chapter established on Keras 3 and Keras 2, collected as it runs, shown as one table.

    Every chapter ends with such a table; building it from the results the cells computed
    (rather than typing it) keeps it true. A row is a case; each version's cell is what that
    version did, recorded by the cell that ran it. A version with nothing recorded shows ``—``.

    Parameters
    ----------
    first_column : str
        The heading of the case column (``"case"``, ``"how"``, ``"situation"``).
    note_column : str, optional
        The heading of a last column of notes about each case (``"write instead"``),
        filled with :meth:`note`; no such column by default.

    Examples
    --------
    >>> table = VersionTable("how")
    >>> for version in ("Keras 3", "Keras 2"):
    ...     table.record("`reset_states(states=...)`", version, "works" if version == "Keras 2" else "TypeError")
    >>> table.add("`reset_state()`", "zeros the state", "zeros the state")
    >>> print(table.markdown())
    | how | Keras 3 (`keras`, `tf.keras`) | Keras 2 (`tf_keras`) |
    |---|---|---|
    | `reset_states(states=...)` | TypeError | works |
    | `reset_state()` | zeros the state | zeros the state |
    >>> table.result("`reset_state()`", "Keras 2")
    'zeros the state'
    """

    def __init__(self, first_column: str = "case", note_column: str | None = None) -> None:
        if not isinstance(first_column, str) or not first_column.strip():
            raise TypeError(f"first_column must be a non-empty str, got {first_column!r}")
        if note_column is not None and (not isinstance(note_column, str) or not note_column.strip()):
            raise TypeError(f"note_column must be a non-empty str or None, got {note_column!r}")
        self.first_column = first_column
        self.note_column = note_column
        self._rows: dict[str, dict[str, str]] = {}
        self._notes: dict[str, str] = {}

    def record(self, case: str, version: str, result: object) -> None:
        """Record what ``version`` (``"Keras 3"`` or ``"Keras 2"``) did in ``case``; a later record replaces it."""
        if not isinstance(case, str) or not case.strip():
            raise TypeError(f"case must be a non-empty str, got {case!r}")
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
        self._rows.setdefault(case, {})[version] = str(result)

    def add(self, case: str, keras3: object, keras2: object) -> None:
        """Record a whole row at once: what Keras 3 and what Keras 2 did in ``case``."""
        self.record(case, "Keras 3", keras3)
        self.record(case, "Keras 2", keras2)

    def note(self, case: str, text: object) -> None:
        """Write the note for a case already recorded (the table's ``note_column``)."""
        if self.note_column is None:
            raise ValueError("this table has no note column: create it with VersionTable(..., note_column='...')")
        if case not in self._rows:
            raise KeyError(f"no case {case!r} has been recorded, so it cannot have a note (cases: {self.cases})")
        self._notes[case] = str(text)

    def result(self, case: str, version: str) -> str:
        """What was recorded for ``case`` and ``version``; ``KeyError`` if nothing was."""
        try:
            return self._rows[case][version]
        except KeyError:
            raise KeyError(f"nothing recorded for case {case!r} on {version!r}") from None

    @property
    def cases(self) -> list[str]:
        """The cases, in the order they were first recorded."""
        return list(self._rows)

    def markdown(self) -> str:
        """The table as Markdown, one row per case in the order first recorded."""

        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        headings = [self.first_column, _HEADERS["Keras 3"], _HEADERS["Keras 2"]]
        headings += [self.note_column] if self.note_column is not None else []
        lines = ["| " + " | ".join(cell(heading) for heading in headings) + " |", "|" + "---|" * len(headings)]
        for case, results in self._rows.items():
            row = [case] + [results.get(version, "—") for version in VERSIONS]
            row += [self._notes.get(case, "")] if self.note_column is not None else []
            lines.append("| " + " | ".join(cell(text) for text in row) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def show(self) -> None:
        """Display the table in a notebook (as Markdown), or print it elsewhere."""
        try:
            from IPython.display import Markdown, display
        except ImportError:  # no IPython: a plain script
            print(self.markdown())
            return
        display(Markdown(self.markdown()))  # type: ignore[no-untyped-call]

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"VersionTable({self.first_column!r}, {len(self)} cases)"
