"""Tests of lstm_utils.states on Keras 3 (``keras``) and Keras 2 (``tf_keras``)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

import lstm_utils
from lstm_utils import get_states, reset_states, set_states, state_names, stateful_layers

BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 4


def stateful_model(K: ModuleType, layer: Any) -> Any:
    model = K.Sequential([K.Input(batch_shape=(BATCH, STEPS, FEATURES)), layer])
    model.compile(loss="mse")
    return model


def data(seed: int = 1, batch: int = BATCH) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, STEPS, FEATURES)).astype("float32")


def random_states(layer: Any, seed: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s.shape).astype("float32") for s in get_states(layer)]


LAYERS = {
    "lstm": lambda K: K.layers.LSTM(UNITS, stateful=True),
    "gru": lambda K: K.layers.GRU(UNITS, stateful=True),
    "simple_rnn": lambda K: K.layers.SimpleRNN(UNITS, stateful=True),
    "rnn_lstm_cell": lambda K: K.layers.RNN(K.layers.LSTMCell(UNITS), stateful=True),
    "stacked_cells": lambda K: K.layers.RNN([K.layers.LSTMCell(UNITS), K.layers.GRUCell(3)], stateful=True),
    "bidirectional": lambda K: K.layers.Bidirectional(K.layers.LSTM(UNITS, stateful=True)),
}
EXPECTED_NAMES = {
    "lstm": ["h", "c"],
    "gru": ["h"],
    "simple_rnn": ["h"],
    "rnn_lstm_cell": ["h", "c"],
    "stacked_cells": ["h1", "c1", "h2"],
    "bidirectional": ["fwd_h", "fwd_c", "bwd_h", "bwd_c"],
}


@pytest.mark.parametrize("kind", LAYERS)
def test_round_trip_and_names(K: ModuleType, kind: str) -> None:
    layer = LAYERS[kind](K)
    stateful_model(K, layer)
    assert state_names(layer) == EXPECTED_NAMES[kind]
    zeros = get_states(layer)
    assert len(zeros) == len(EXPECTED_NAMES[kind])
    assert all(not s.any() for s in zeros)
    values = random_states(layer)
    set_states(layer, values)
    for got, want in zip(get_states(layer), values, strict=True):
        np.testing.assert_array_equal(got, want)


def test_get_states_returns_copies(K: ModuleType) -> None:
    layer = K.layers.LSTM(UNITS, stateful=True)
    stateful_model(K, layer)
    copy = get_states(layer)
    copy[0][:] = 7.0
    assert not get_states(layer)[0].any()


@pytest.mark.parametrize("kind", ["lstm", "gru", "bidirectional", "stacked_cells"])
def test_set_states_is_used_by_predict_after_an_earlier_predict(K: ModuleType, kind: str) -> None:
    layer = LAYERS[kind](K)
    model = stateful_model(K, layer)
    x = data()
    model.predict(x, verbose=0)  # traces predict with the layer's own variables
    values = random_states(layer)
    set_states(layer, values)
    from_values = model.predict(x, verbose=0)
    set_states(layer, values)
    assert np.allclose(model.predict(x, verbose=0), from_values)
    reset_states(layer)
    from_zeros = model.predict(x, verbose=0)
    assert not np.allclose(from_values, from_zeros, atol=1e-4), "the new values made no difference"


def test_set_states_matches_an_initial_state_call(K: ModuleType) -> None:
    """Setting states on a stateful layer == passing them as initial_state to a stateless twin."""
    layer = K.layers.LSTM(UNITS, stateful=True)
    stateful_model(K, layer)
    twin = K.layers.LSTM(UNITS)
    twin.build((BATCH, STEPS, FEATURES))
    twin.set_weights(layer.get_weights())
    h0, c0 = random_states(layer)
    set_states(layer, [h0, c0])
    x = data()
    got = np.asarray(layer(x))
    import tensorflow as tf  # tensors: Keras 2 rejects NumPy initial states

    want = np.asarray(twin(x, initial_state=[tf.constant(h0), tf.constant(c0)]))
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_bidirectional_order_is_forward_then_backward(K: ModuleType) -> None:
    layer = K.layers.Bidirectional(K.layers.LSTM(UNITS, stateful=True))
    stateful_model(K, layer)
    values = random_states(layer)
    set_states(layer, values)
    forward = [np.asarray(v) for v in layer.forward_layer.states]
    backward = [np.asarray(v) for v in layer.backward_layer.states]
    for got, want in zip(forward + backward, values, strict=True):
        np.testing.assert_array_equal(got, want)


def test_accepts_tensors_and_other_dtypes(K: ModuleType) -> None:
    import tensorflow as tf

    layer = K.layers.GRU(UNITS, stateful=True)
    stateful_model(K, layer)
    set_states(layer, [tf.ones((BATCH, UNITS), tf.float64)])
    assert get_states(layer)[0].dtype == np.float32
    set_states(layer, (np.full((BATCH, UNITS), 2, dtype=np.int64),))
    assert (get_states(layer)[0] == 2).all()


def nested_model(K: ModuleType) -> Any:
    inner = K.Sequential(
        [
            K.Input(batch_shape=(BATCH, STEPS, FEATURES)),
            K.layers.LSTM(UNITS, stateful=True, return_sequences=True, name="inner_lstm"),
        ],
        name="encoder",
    )
    inputs = K.Input(batch_shape=(BATCH, STEPS, FEATURES))
    x = inner(inputs)
    x = K.layers.Bidirectional(K.layers.GRU(3, stateful=True), name="bidi")(x)
    x = K.layers.Dense(1, name="head")(x)
    return K.Model(inputs, x)


def test_stateful_layers_and_reset_states_on_nested_models(K: ModuleType) -> None:
    model = nested_model(K)
    paths = [path for path, _ in stateful_layers(model)]
    assert paths == ["encoder/inner_lstm", "bidi"]
    model.predict(data(), verbose=0)
    assert any(s.any() for _, layer in stateful_layers(model) for s in get_states(layer))
    reset_states(model)
    assert not any(s.any() for _, layer in stateful_layers(model) for s in get_states(layer))


def test_stateless_layers_are_not_listed(K: ModuleType) -> None:
    model = K.Sequential([K.Input((STEPS, FEATURES)), K.layers.LSTM(UNITS), K.layers.Dense(1)])
    assert stateful_layers(model) == []


# ---- bad input: a clear error, and nothing changes ----


def built_lstm(K: ModuleType) -> tuple[Any, list[np.ndarray]]:
    layer = K.layers.LSTM(UNITS, stateful=True, name="lstm")
    stateful_model(K, layer)
    before = random_states(layer)
    set_states(layer, before)
    return layer, before


def assert_unchanged(layer: Any, before: list[np.ndarray]) -> None:
    for got, want in zip(get_states(layer), before, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (lambda h, c: [h], ValueError, r"holds 2 state\(s\) \(h \(2, 4\), c \(2, 4\)\), got 1 array"),
        (lambda h, c: [h, c, c], ValueError, r"holds 2 state\(s\).*got 3 array"),
        (
            lambda h, c: [h, np.zeros((2, 5))],
            ValueError,
            r"state 'c'.*expected shape \(2, 4\) \(batch, units\), got \(2, 5\)",
        ),
        (lambda h, c: [h, np.zeros((1, 4))], ValueError, r"expected shape \(2, 4\).*got \(1, 4\)"),
        (lambda h, c: [h, np.zeros(4)], ValueError, r"expected shape \(2, 4\).*got \(4,\)"),
        (lambda h, c: [h, np.full((2, 4), np.nan)], ValueError, r"state 'c'.*NaN or infinite"),
        (lambda h, c: [np.full((2, 4), np.inf), c], ValueError, r"state 'h'.*NaN or infinite"),
        (lambda h, c: [h, np.full((2, 4), "a")], TypeError, r"state 'c'.*expected a numeric array.*got dtype <U1"),
        (lambda h, c: [h, None], TypeError, r"state 'c'.*expected a numeric array"),
        (lambda h, c: np.stack([h, c]), TypeError, r"expected a list of 2 arrays.*got a ndarray"),
        # float64 values that are finite but overflow when stored in the float32 state
        (
            lambda h, c: [h, np.full((2, 4), 1e39)],
            ValueError,
            r"state 'c'.*up to 1e\+39 overflow to infinity in the state's dtype float32",
        ),
        (lambda h, c: [h, np.ones((2, 4), bool)], TypeError, r"state 'c'.*expected a numeric array.*got dtype bool"),
        (lambda h, c: [h, np.ones((2, 4), "timedelta64[s]")], TypeError, r"state 'c'.*got dtype timedelta64\[s\]"),
        (
            lambda h, c: [h, np.ma.masked_array(np.ones((2, 4)), mask=np.eye(2, 4))],
            TypeError,
            r"state 'c'.*masked array.*numpy.ma.filled",
        ),
    ],
)
def test_set_states_rejects_bad_values_and_changes_nothing(
    K: ModuleType, bad: Any, error: type[Exception], match: str
) -> None:
    layer, before = built_lstm(K)
    h, c = (np.zeros_like(s) for s in before)
    with pytest.raises(error, match=match):
        set_states(layer, bad(h, c))
    assert_unchanged(layer, before)


def test_failed_set_states_on_bidirectional_changes_neither_direction(K: ModuleType) -> None:
    layer = K.layers.Bidirectional(K.layers.LSTM(UNITS, stateful=True))
    stateful_model(K, layer)
    before = random_states(layer)
    set_states(layer, before)
    bad = [np.zeros((BATCH, UNITS))] * 3 + [np.zeros((BATCH, UNITS + 1))]
    with pytest.raises(ValueError, match=r"state 'bwd_c'.*expected shape \(2, 4\)"):
        set_states(layer, bad)
    assert_unchanged(layer, before)


def test_non_stateful_layer_is_explained(K: ModuleType) -> None:
    layer = K.layers.LSTM(UNITS)
    K.Sequential([K.Input((STEPS, FEATURES)), layer])
    for call in (lambda: get_states(layer), lambda: set_states(layer, []), lambda: reset_states(layer)):
        with pytest.raises(ValueError, match=r"not stateful.*initial_state=.*return_state=True"):
            call()


def test_unbuilt_layer_is_explained(K: ModuleType) -> None:
    layer = K.layers.GRU(UNITS, stateful=True)
    with pytest.raises(ValueError, match=r"not built yet.*batch_shape=\(batch, timesteps, features\)"):
        get_states(layer)


@pytest.mark.parametrize("thing", [lambda K: K.layers.Dense(2), lambda K: np.zeros(3), lambda K: "lstm"])
def test_not_a_recurrent_layer(K: ModuleType, thing: Any) -> None:
    with pytest.raises(TypeError, match=r"get_states expects a Keras recurrent layer .* got"):
        get_states(thing(K))


def test_reset_states_on_a_model_without_stateful_layers(K: ModuleType) -> None:
    model = K.Sequential([K.Input((STEPS, FEATURES)), K.layers.LSTM(UNITS)])
    with pytest.raises(ValueError, match="holds no stateful recurrent layer"):
        reset_states(model)
    with pytest.raises(TypeError, match="expected a Keras model or layer"):
        reset_states(object())


def test_reset_states_checks_every_layer_before_resetting_any(K: ModuleType) -> None:
    class TwoLSTMs(K.layers.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.first = K.layers.LSTM(UNITS, stateful=True, name="first")
            self.second = K.layers.LSTM(UNITS, stateful=True, name="second")

        def call(self, x: Any) -> Any:
            return self.first(x)

    holder = TwoLSTMs()
    holder(data())  # builds only the first LSTM
    assert [path for path, _ in stateful_layers(holder)] == ["first", "second"]
    before = random_states(holder.first)
    set_states(holder.first, before)
    with pytest.raises(ValueError, match="'second' is stateful but not built yet"):
        reset_states(holder)
    assert_unchanged(holder.first, before)


def test_replaced_state_entry_is_reported(K: ModuleType) -> None:
    layer, _ = built_lstm(K)
    layer.states[0] = np.zeros((BATCH, UNITS), "float32")
    with pytest.raises(TypeError, match=r"state 'h'.*ndarray, not a state variable.*replaced"):
        get_states(layer)


def test_state_replaced_by_another_variable_is_refused(K: ModuleType) -> None:
    import tensorflow as tf

    layer, before = built_lstm(K)
    original = layer.states[1]
    layer.states[1] = tf.Variable(np.ones((BATCH, UNITS), "float32"))
    for call in (lambda: get_states(layer), lambda: set_states(layer, before)):
        with pytest.raises(ValueError, match=r"state list of LSTM layer 'lstm' was tampered with: .*states\["):
            call()
    np.testing.assert_array_equal(np.asarray(original), before[1])


def test_import_does_not_import_tensorflow() -> None:
    import subprocess
    import sys

    code = "import sys, lstm_utils, lstm_utils.keras2; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'no_such_helper'"):
        lstm_utils.no_such_helper  # noqa: B018


def test_a_class_instead_of_a_layer_is_named_as_such(K: ModuleType) -> None:
    with pytest.raises(
        TypeError, match=r"get_states expects a Keras recurrent layer .* got the class .*LSTM itself, not an instance"
    ):
        get_states(K.layers.LSTM)


def test_a_state_entry_replaced_by_none_is_not_called_unbuilt(K: ModuleType) -> None:
    layer, _before = built_lstm(K)
    layer.states[0] = None
    with pytest.raises(
        TypeError, match=r"entry 0 of layer.states is None, not a state variable: an entry of layer.states was replaced"
    ):
        get_states(layer)
