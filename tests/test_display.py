"""Tests of lstm_utils.display: expected errors and fixed-precision arrays."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_utils import expect_error, show_array


def test_expect_error_prints_a_stable_message(capsys: pytest.CaptureFixture[str]) -> None:
    with expect_error(ValueError, match="bad") as caught:
        raise ValueError("\x1b[31mbad\x1b[0m {{function_node __MklMatMul_device_/job:localhost}} at 0x7f12345678")
    assert capsys.readouterr().out == "ValueError: bad at 0x...\n"
    assert caught.type_name == "ValueError"


def test_expect_error_fails_when_nothing_is_raised() -> None:
    with pytest.raises(AssertionError, match="expected ValueError to be raised"):
        with expect_error(ValueError):
            pass


def test_expect_error_fails_on_another_message() -> None:
    with pytest.raises(AssertionError, match="expected a message matching 'shape'"):
        with expect_error(ValueError, match="shape"):
            raise ValueError("dtype")


def test_expect_error_lets_other_errors_through() -> None:
    with pytest.raises(KeyError):
        with expect_error(ValueError):
            raise KeyError("k")


def test_expect_error_shortens_long_messages(capsys: pytest.CaptureFixture[str]) -> None:
    with expect_error(RuntimeError, max_lines=2):
        raise RuntimeError("one\ntwo\nthree\nfour")
    assert capsys.readouterr().out == "RuntimeError: one\ntwo\n... (2 more lines)\n"


def test_show_array_rounds_and_never_prints_negative_zero(capsys: pytest.CaptureFixture[str]) -> None:
    show_array("x", np.array([[-0.00001, 1.23456]]), precision=3)
    assert capsys.readouterr().out == "x (1, 2): [[0.    1.235]]\n"
