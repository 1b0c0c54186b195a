"""Tests of lstm_utils.sequences (state_sequence: h and c at every step), on Keras 3 and Keras 2."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

import lstm_utils
from lstm_utils import reference_forward, state_sequence

BATCH, STEPS, FEATURES, UNITS = 2, 6, 3, 4


def data(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(BATCH, STEPS, FEATURES)).astype("float32")


def built(K: ModuleType, kind: str, **kwargs: object) -> object:
    layer = getattr(K.layers, kind)(UNITS, return_sequences=True, **kwargs)
    layer(data())
    return layer


@pytest.mark.parametrize("kind, count", [("LSTM", 2), ("GRU", 1), ("SimpleRNN", 1)])
def test_every_step_equals_the_numpy_reference(K: ModuleType, kind: str, count: int) -> None:
    layer = built(K, kind)
    x = data(1)
    start = [np.random.default_rng(2 + i).normal(size=(BATCH, UNITS)).astype("float32") for i in range(count)]
    h_seq, c_seq = state_sequence(layer, x, start)
    assert h_seq.shape == (BATCH, STEPS, UNITS)
    assert (c_seq is None) == (count == 1)
    np.testing.assert_allclose(h_seq, reference_forward(layer, x, start)[0], atol=1e-5)
    for t in range(STEPS):  # the reference's final state after t + 1 steps is the state at step t
        final = reference_forward(layer, x[:, : t + 1], start)[1]
        np.testing.assert_allclose(h_seq[:, t], final[0], atol=1e-5)
        if c_seq is not None:
            np.testing.assert_allclose(c_seq[:, t], final[1], atol=1e-5)


def test_go_backwards_and_the_state_of_a_stateful_layer(K: ModuleType) -> None:
    backwards = built(K, "LSTM", go_backwards=True)
    x = data(3)
    h_seq, _ = state_sequence(backwards, x)
    np.testing.assert_allclose(h_seq, np.asarray(backwards(x)), atol=1e-5)
    stateful = K.layers.LSTM(UNITS, return_sequences=True, stateful=True)
    stateful(x)  # the state now holds the end of x
    before = lstm_utils.get_states(stateful)
    h_seq, c_seq = state_sequence(stateful, x)  # starts from that state, and leaves it alone
    np.testing.assert_allclose(h_seq, reference_forward(stateful, x, before)[0], atol=1e-5)
    for got, want in zip(lstm_utils.get_states(stateful), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert c_seq is not None


@pytest.mark.parametrize(
    "make, call, error, match",
    [
        (
            lambda K: K.layers.Dense(2),
            lambda f, layer: f(layer, data()),
            TypeError,
            "state_sequence expects a Keras recurrent layer",
        ),
        (
            lambda K: K.layers.Bidirectional(K.layers.LSTM(UNITS)),
            lambda f, layer: f(layer, data()),
            ValueError,
            "is Bidirectional or holds stacked cells",
        ),
        (lambda K: K.layers.LSTM(UNITS), lambda f, layer: f(layer, data()), ValueError, "is not built yet"),
        (lambda K: built(K, "LSTM"), lambda f, layer: f(layer, data()[0]), ValueError, r"x must be 3-D"),
        (
            lambda K: built(K, "LSTM"),
            lambda f, layer: f(layer, np.zeros((2, 3, 5))),
            ValueError,
            "built for 3 input features; x has 5",
        ),
        (
            lambda K: built(K, "LSTM"),
            lambda f, layer: f(layer, np.full((2, 3, 3), "a")),
            TypeError,
            "x must be a numeric array",
        ),
        (
            lambda K: built(K, "LSTM"),
            lambda f, layer: f(layer, data(), [np.zeros((BATCH, UNITS))]),
            ValueError,
            r"takes 2 initial state\(s\) \['h', 'c'\]; got 1",
        ),
        (
            lambda K: built(K, "GRU"),
            lambda f, layer: f(layer, data(), [np.zeros((1, UNITS))]),
            ValueError,
            r"initial state h must have shape \(batch, units\) = \(2, 4\), got \(1, 4\)",
        ),
    ],
)
def test_bad_input(K: ModuleType, make, call, error, match) -> None:
    with pytest.raises(error, match=match):
        call(state_sequence, make(K))
