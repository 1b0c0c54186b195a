"""Tests of lstm_utils.diagnostics: finding replaced ``layer.states`` entries, on Keras 3 and 2."""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import lstm_utils
from lstm_utils._flavour import to_numpy
from lstm_utils.diagnostics import explain_replaced_states, find_replaced_states

BATCH, TIMESTEPS, UNITS = 2, 4, 3


def build(K: ModuleType) -> tuple[Any, Any]:
    inputs = K.Input(batch_shape=(BATCH, TIMESTEPS, 1))
    lstm = K.layers.LSTM(UNITS, stateful=True, name="lstm")
    model = K.Model(inputs, lstm(inputs))
    model.compile(optimizer="sgd", loss="mse")
    return model, lstm


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((BATCH, TIMESTEPS, 1)).astype("float32")
    return x, rng.random((BATCH, UNITS)).astype("float32")


def new_variable(K: ModuleType, value: np.ndarray) -> Any:
    """What the old recipe puts into the list: a fresh variable of that Keras version."""
    if K.__name__ == "keras":
        return K.Variable(value)  # keras.backend.variable does not exist in Keras 3
    return K.backend.variable(value)


def test_healthy_model_before_and_after_tracing(K: ModuleType) -> None:
    model, lstm = build(K)
    assert find_replaced_states(model) == []
    x, y = data()
    model.predict(x, verbose=0)
    model.train_on_batch(x, y)
    lstm_utils.set_states(lstm, [np.ones((BATCH, UNITS))] * 2)  # assigning is fine
    assert find_replaced_states(model) == []
    assert explain_replaced_states(model) == {}


def test_model_without_stateful_layers(K: ModuleType) -> None:
    model = K.Sequential([K.Input((TIMESTEPS, 1)), K.layers.LSTM(UNITS)])
    assert find_replaced_states(model) == []


def test_unbuilt_stateful_layer_is_not_reported(K: ModuleType) -> None:
    assert find_replaced_states(K.layers.LSTM(UNITS, stateful=True)) == []


def test_numpy_entry_is_named(K: ModuleType) -> None:
    model, lstm = build(K)
    model.predict(data()[0], verbose=0)
    lstm.states[1] = np.zeros((BATCH, UNITS), "float32")
    assert find_replaced_states(model) == ["lstm"]
    assert explain_replaced_states(model) == {"lstm": ["layer.states[1] is a numpy.ndarray, not a variable"]}


@pytest.mark.parametrize("first_call", ["predict", "train_on_batch"])
def test_variable_replaced_after_tracing_is_named(K: ModuleType, first_call: str) -> None:
    model, lstm = build(K)
    x, y = data()
    run = {"predict": lambda: model.predict(x, verbose=0), "train_on_batch": lambda: model.train_on_batch(x, y)}
    run[first_call]()
    old = lstm.states[0]
    old_value = to_numpy(old)
    new = new_variable(K, np.full((BATCH, UNITS), 0.5, "float32"))
    lstm.states[0] = new
    # The premise: the traced function ignores the new variable and updates the old one.
    run[first_call]()
    assert np.array_equal(to_numpy(new), np.full((BATCH, UNITS), 0.5))
    assert not np.array_equal(to_numpy(old), old_value)
    assert find_replaced_states(model) == ["lstm"]
    (message,) = explain_replaced_states(model)["lstm"]
    function = "predict_function" if first_call == "predict" else "train_function"
    assert message.startswith(f"layer.states[0] is not the variable that model.{function}")


def test_variable_replaced_before_tracing_is_named_and_stays_named(K: ModuleType) -> None:
    model, lstm = build(K)
    lstm.states[0] = new_variable(K, np.zeros((BATCH, UNITS), "float32"))
    assert find_replaced_states(model) == ["lstm"]
    model.predict(data()[0], verbose=0)  # traced with the new variable: it "works"
    assert find_replaced_states(model) == ["lstm"]
    expected = "did not create" if K.__name__ == "keras" else "replaced by assignment"
    assert expected in explain_replaced_states(model)["lstm"][0]


def test_keras3_raw_tf_variable_is_named() -> None:
    # Keras 3 only: Keras 2 state variables are tf.Variables themselves, so there is no Keras 2 twin.
    import keras
    import tensorflow as tf

    keras.backend.clear_session()
    model, lstm = build(keras)
    lstm.states[0] = tf.keras.backend.variable(np.zeros((BATCH, UNITS)))
    (message,) = explain_replaced_states(model)["lstm"]
    assert "tensorflow.ResourceVariable, not a keras.Variable" in message


def test_bidirectional_and_nested_paths(K: ModuleType) -> None:
    inner = K.Sequential(
        [
            K.Input(batch_shape=(BATCH, TIMESTEPS, 1)),
            K.layers.Bidirectional(K.layers.LSTM(UNITS, stateful=True), name="bi"),
        ],
        name="encoder",
    )
    outer = K.Sequential([K.Input(batch_shape=(BATCH, TIMESTEPS, 1)), inner, K.layers.Dense(1)])
    outer.predict(data()[0], verbose=0)
    assert find_replaced_states(outer) == []
    bidirectional = inner.layers[0]
    bidirectional.backward_layer.states[1] = new_variable(K, np.zeros((BATCH, UNITS), "float32"))
    assert find_replaced_states(outer) == ["encoder/bi"]
    assert explain_replaced_states(outer)["encoder/bi"][0].startswith("backward_layer.states[1]")


def test_a_layer_can_be_checked_alone(K: ModuleType) -> None:
    _, lstm = build(K)
    assert find_replaced_states(lstm) == []
    lstm.states[0] = np.zeros((BATCH, UNITS), "float32")
    assert find_replaced_states(lstm) == ["lstm"]


def test_not_a_keras_object_raises(K: ModuleType) -> None:
    with pytest.raises(TypeError, match="expected a Keras model or layer"):
        find_replaced_states([1, 2])


def test_checking_changes_nothing(K: ModuleType) -> None:
    model, lstm = build(K)
    model.predict(data()[0], verbose=0)
    before = lstm_utils.get_states(lstm)
    entries = list(lstm.states)
    lstm.states[0] = np.zeros((BATCH, UNITS), "float32")
    find_replaced_states(model)
    assert lstm.states[1] is entries[1]
    assert np.array_equal(lstm.states[0], np.zeros((BATCH, UNITS)))
    assert np.array_equal(to_numpy(entries[1]), before[1])


def test_healthy_variety_is_not_reported(K: ModuleType) -> None:
    """GRU, SimpleRNN, stacked cells and Bidirectional, built and traced: nothing to report."""
    inputs = K.Input(batch_shape=(BATCH, TIMESTEPS, 1))
    h = K.layers.GRU(UNITS, stateful=True, return_sequences=True)(inputs)
    h = K.layers.SimpleRNN(UNITS, stateful=True, return_sequences=True)(h)
    h = K.layers.RNN([K.layers.LSTMCell(UNITS), K.layers.LSTMCell(UNITS)], stateful=True, return_sequences=True)(h)
    h = K.layers.Bidirectional(K.layers.LSTM(UNITS, stateful=True))(h)
    model = K.Model(inputs, h)
    model.predict(data()[0], verbose=0)
    assert len(lstm_utils.stateful_layers(model)) == 4
    assert find_replaced_states(model) == []


def test_stacked_cells_entry_replaced_is_named(K: ModuleType) -> None:
    layer = K.layers.RNN([K.layers.LSTMCell(UNITS), K.layers.LSTMCell(UNITS)], stateful=True, name="rnn")
    inputs = K.Input(batch_shape=(BATCH, TIMESTEPS, 1))
    model = K.Model(inputs, layer(inputs))
    model.predict(data()[0], verbose=0)
    assert find_replaced_states(model) == []
    layer.states[1][0] = np.zeros((BATCH, UNITS), "float32")  # states are [[h1, c1], [h2, c2]]
    assert explain_replaced_states(model) == {"rnn": ["layer.states[1][0] is a numpy.ndarray, not a variable"]}


def test_the_saving_premise_of_the_message(flavour: str, tmp_path: Any) -> None:
    """TensorFlow refuses to save a list with replaced entries, as the Keras 2 message says."""
    import tensorflow as tf

    K = __import__("keras" if flavour == "keras3" else "tf_keras")
    model, lstm = build(K)
    lstm.states[0] = new_variable(K, np.zeros((BATCH, UNITS), "float32"))
    with pytest.raises(ValueError, match="A list element was replaced"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # NumPy 2 notes from the error's repr
        if flavour == "keras3":
            tf.train.Checkpoint(model=model).write(str(tmp_path / "checkpoint"))
        else:
            model.save(str(tmp_path / "saved_model"))
    if flavour == "keras2":
        (message,) = explain_replaced_states(lstm)["lstm"]
        assert "Keras 3: tf.train.Checkpoint; Keras 2: model.save to a SavedModel" in message
