"""Tests of lstm_utils.display: expected errors and fixed-precision arrays."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_utils import VersionTable, expect_error, show_array


def test_expect_error_prints_a_stable_message(capsys: pytest.CaptureFixture[str]) -> None:
    with expect_error(ValueError, match="bad") as caught:
        raise ValueError("\x1b[31mbad\x1b[0m {{function_node __MklMatMul_device_/job:localhost}} at 0x7f12345678")
    assert capsys.readouterr().out == "ValueError: bad at 0x...\n"
    assert caught.type_name == "ValueError"


def test_expect_error_fails_when_nothing_is_raised() -> None:
    with pytest.raises(AssertionError, match="expected ValueError to be raised"), expect_error(ValueError):
        pass


def test_expect_error_fails_on_another_message() -> None:
    with (
        pytest.raises(AssertionError, match="expected a message matching 'shape'"),
        expect_error(ValueError, match="shape"),
    ):
        raise ValueError("dtype")


def test_expect_error_lets_other_errors_through() -> None:
    with pytest.raises(KeyError), expect_error(ValueError):
        raise KeyError("k")


def test_expect_error_shortens_long_messages(capsys: pytest.CaptureFixture[str]) -> None:
    with expect_error(RuntimeError, max_lines=2):
        raise RuntimeError("one\ntwo\nthree\nfour")
    assert capsys.readouterr().out == "RuntimeError: one\ntwo\n... (2 more lines)\n"


def test_show_array_rounds_and_never_prints_negative_zero(capsys: pytest.CaptureFixture[str]) -> None:
    show_array("x", np.array([[-0.00001, 1.23456]]), precision=3)
    assert capsys.readouterr().out == "x (1, 2): [[0.    1.235]]\n"


def test_version_table_keeps_the_order_cases_were_first_recorded() -> None:
    table = VersionTable("how")
    table.record("b", "Keras 2", "works")
    table.record("a", "Keras 3", "TypeError")
    table.record("b", "Keras 3", "fails | silently")
    table.record("a", "Keras 3", "ValueError")  # a later record replaces the earlier one
    assert table.cases == ["b", "a"] and len(table) == 2
    assert table.markdown().splitlines() == [
        "| how | Keras 3 (`keras`, `tf.keras`) | Keras 2 (`tf_keras`) |",
        "|---|---|---|",
        "| b | fails \\| silently | works |",
        "| a | ValueError | — |",
    ]
    assert table.result("a", "Keras 3") == "ValueError"
    with pytest.raises(KeyError, match="nothing recorded for case 'a' on 'Keras 2'"):
        table.result("a", "Keras 2")


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda t: t.record("case", "Keras 4", "x"),
            ValueError,
            r"version must be one of \('Keras 3', 'Keras 2'\), got 'Keras 4'",
        ),
        (lambda t: t.record("", "Keras 3", "x"), TypeError, "case must be a non-empty str"),
        (lambda t: t.record(3, "Keras 3", "x"), TypeError, "case must be a non-empty str, got 3"),
    ],
)
def test_version_table_refuses_bad_records_and_keeps_what_it_had(call, error, match) -> None:
    table = VersionTable()
    table.add("kept", "works", "works")
    with pytest.raises(error, match=match):
        call(table)
    assert table.cases == ["kept"]


def test_version_table_needs_a_heading() -> None:
    with pytest.raises(TypeError, match="first_column must be a non-empty str"):
        VersionTable("")


def test_expect_error_masks_temporary_folders(capsys: pytest.CaptureFixture[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder, expect_error(ValueError):
        raise ValueError(f"cannot read {folder}/states.npz")
    assert capsys.readouterr().out == "ValueError: cannot read <temporary folder>/states.npz\n"


def test_version_table_with_a_note_column() -> None:
    table = VersionTable("idiom", note_column="write instead")
    table.add("`model.reset_states()`", "AttributeError", "works")
    table.add("`layer.reset_state()`", "works", "AttributeError")
    table.note("`model.reset_states()`", "`lstm_utils.reset_states(model)`")
    assert table.markdown().splitlines()[0].endswith("| write instead |")
    assert table.markdown().splitlines()[1] == "|---|---|---|---|"
    assert table.markdown().splitlines()[2].endswith("| `lstm_utils.reset_states(model)` |")
    assert table.markdown().splitlines()[3].endswith("| AttributeError |  |")
    with pytest.raises(KeyError, match="no case 'other' has been recorded"):
        table.note("other", "x")
    with pytest.raises(ValueError, match="this table has no note column"):
        VersionTable().note("a", "b")
