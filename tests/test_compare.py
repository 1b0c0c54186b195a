"""Tests of lstm_utils.compare: the chapters' one closeness check and which-candidate check."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from lstm_utils import all_close, max_difference, which_matches


def test_all_close_is_absolute_and_never_broadcasts() -> None:
    assert all_close(np.zeros((2, 3)), np.full((2, 3), 1e-6))
    assert not all_close(np.zeros((2, 3)), np.full((2, 3), 2e-5))
    assert all_close([1e6], [1e6 + 5], atol=10) and not all_close([1e6], [1e6 + 5])  # no relative term
    with pytest.raises(ValueError, match=r"different shapes: a has \(1, 3\), b has \(2, 3\)"):
        all_close(np.zeros((1, 3)), np.zeros((2, 3)))


def test_nan_agrees_with_nothing() -> None:
    assert not all_close([np.nan], [np.nan])
    assert np.isnan(max_difference([np.nan], [0.0]))


def test_tensors_and_variables_compare_like_arrays(K: ModuleType) -> None:
    import tensorflow as tf

    layer = K.layers.LSTM(2, stateful=True)
    layer(np.zeros((1, 3, 1), "float32"))
    assert all_close(layer.states[0], tf.zeros((1, 2)))
    assert max_difference(tf.ones((2,)), np.zeros(2)) == 1.0


@pytest.mark.parametrize("bad", ["text", np.array(["a"]), {"k": 1}, np.array([object()])])
def test_what_is_not_numeric_is_refused(bad: object) -> None:
    with pytest.raises(TypeError, match="a: expected"):
        all_close(bad, [1.0])


@pytest.mark.parametrize("atol", [-1.0, np.inf, np.nan])
def test_a_tolerance_must_be_finite_and_not_negative(atol: float) -> None:
    with pytest.raises(ValueError, match="atol must be a finite number >= 0"):
        all_close([0.0], [0.0], atol=atol)


def test_which_matches_names_one_candidate_or_says_why_not() -> None:
    candidates = {"zeros": np.zeros(2), "ones": np.ones(2), "wide": np.ones(3)}
    assert which_matches(np.ones(2), candidates) == "ones"
    assert which_matches(np.full(2, 5.0), candidates) == "none"
    assert which_matches(np.zeros(2), {"a": np.zeros(2), "b": np.zeros(2) + 1e-7}) == "ambiguous: a, b"
    with pytest.raises(ValueError, match="candidates is empty"):
        which_matches(np.ones(2), {})
    with pytest.raises(TypeError, match="candidates must be a mapping"):
        which_matches(np.ones(2), [np.ones(2)])  # type: ignore[arg-type]
