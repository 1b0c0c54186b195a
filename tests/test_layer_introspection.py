"""Tests of lstm_utils/_layers.py: the layer introspection every feature module shares."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from lstm_utils._layers import (
    check_int,
    describe,
    directions,
    is_recurrent,
    nested_state_labels,
    require_recurrent,
    state_labels,
)

LABELS = {
    "lstm": (lambda K: K.layers.LSTM(2), ["h", "c"], ["h", "c"]),
    "gru": (lambda K: K.layers.GRU(2), ["h"], ["h"]),
    "stacked": (
        lambda K: K.layers.RNN([K.layers.LSTMCell(2), K.layers.GRUCell(2)]),
        ["h1", "c1", "h2"],
        [["h1", "c1"], ["h2"]],
    ),
    "bidirectional": (
        lambda K: K.layers.Bidirectional(K.layers.LSTM(2)),
        ["fwd_h", "fwd_c", "bwd_h", "bwd_c"],
        ["fwd_h", "fwd_c", "bwd_h", "bwd_c"],
    ),
    "bidirectional stacked": (
        lambda K: K.layers.Bidirectional(K.layers.RNN([K.layers.GRUCell(2), K.layers.GRUCell(2)])),
        ["fwd_h1", "fwd_h2", "bwd_h1", "bwd_h2"],
        [["fwd_h1"], ["fwd_h2"], ["bwd_h1"], ["bwd_h2"]],
    ),
}


@pytest.mark.parametrize("kind", LABELS)
def test_one_vocabulary_of_state_labels(K: ModuleType, kind: str) -> None:
    make, flat, nested = LABELS[kind]
    layer = make(K)
    assert state_labels(layer) == flat
    assert nested_state_labels(layer) == nested


def test_directions_of_a_bidirectional_layer(K: ModuleType) -> None:
    layer = K.layers.Bidirectional(K.layers.GRU(2))
    assert [(d.label_prefix, d.attribute) for d in directions(layer)] == [
        ("fwd_", "forward_layer"),
        ("bwd_", "backward_layer"),
    ]
    assert [d.attribute for d in directions(K.layers.GRU(2))] == ["layer"]


def test_a_class_is_not_a_layer(K: ModuleType) -> None:
    assert not is_recurrent(K.layers.LSTM)
    with pytest.raises(
        TypeError, match=r"f expects a Keras recurrent layer .* got the class .*LSTM itself, not an instance"
    ):
        require_recurrent(K.layers.LSTM, "f")


def test_describe_names_layers_and_other_objects(K: ModuleType) -> None:
    assert describe(K.layers.LSTM(2, name="enc")) == "LSTM layer 'enc'"
    assert describe(np.zeros(2)) == "numpy.ndarray"


@pytest.mark.parametrize(
    "value, low, high, error, match",
    [
        (0, 1, None, ValueError, r"^n must be a positive integer, got 0$"),
        (5, 0, 3, ValueError, r"^n must be an integer between 0 and 3, got 5$"),
        (-2, 0, None, ValueError, r"^n must be an integer >= 0, got -2$"),
        (2.0, 1, None, TypeError, r"^n must be a positive integer, got 2.0 \(float\)$"),
        (True, 1, None, TypeError, r"\(bool\)"),
        ("3", 1, None, TypeError, r"got '3' \(str\)"),
        (5, 10, 1, ValueError, r"^the range for n is empty: low=10 is above high=1$"),
    ],
)
def test_check_int(value: object, low: int, high: int | None, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        check_int("n", value, low, high)


def test_check_int_returns_a_plain_int() -> None:
    value = check_int("n", np.int64(3), 0, 5)
    assert value == 3 and type(value) is int
