"""Tests of lstm_utils/layers.py: ``TrainableInitialState`` on Keras 3 and on Keras 2."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import tensorflow as tf

import lstm_utils
import lstm_utils.keras2

UNITS = 4


def layer_class(K: ModuleType) -> type:
    if K.__name__ == "keras":
        return lstm_utils.TrainableInitialState
    return lstm_utils.keras2.TrainableInitialState


def data(batch: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, 5, 3)).astype("float32")
    y = rng.normal(size=(batch, 1)).astype("float32")
    return x, y


def make_model(K: ModuleType, num_states: int = 2, **layer_kwargs) -> object:
    inputs = K.Input((None, 3))
    states = layer_class(K)(UNITS, num_states=num_states, name="init", **layer_kwargs)(inputs)
    rnn = K.layers.LSTM(UNITS, name="rnn") if num_states == 2 else K.layers.GRU(UNITS, name="rnn")
    outputs = K.layers.Dense(1, name="head")(rnn(inputs, initial_state=states))
    model = K.Model(inputs, outputs)
    model.compile(optimizer=K.optimizers.SGD(learning_rate=0.1), loss="mse")
    return model


def values(layer) -> list[np.ndarray]:
    return [np.array(w.numpy()) for w in layer.initial_states]


def test_twins_subclass_their_own_keras(K):
    cls = layer_class(K)
    assert issubclass(cls, K.layers.Layer)
    assert issubclass(cls, lstm_utils.layers.TrainableInitialStateLogic)
    assert cls.__name__ == "TrainableInitialState"
    other = tf_keras_or_keras(K)
    assert not issubclass(cls, other.layers.Layer), "each twin subclasses its own Keras only"


def test_the_factory_makes_one_class_per_keras(K):
    # Every call after the first must return the registered class: a second class would
    # replace it in Keras's registry, and models loaded later would hold instances of a
    # class that is not lstm_utils.TrainableInitialState.
    first = layer_class(K)
    again = lstm_utils.layers.trainable_initial_state_class(K)
    assert again is first
    assert K.saving.get_registered_object("lstm_utils>TrainableInitialState") is first


def tf_keras_or_keras(K: ModuleType) -> ModuleType:
    """The other Keras package."""
    import keras
    import tf_keras

    return tf_keras if K is keras else keras


def test_registered_for_loading_without_custom_objects(K):
    cls = layer_class(K)
    assert K.saving.get_registered_object("lstm_utils>TrainableInitialState") is cls


@pytest.mark.parametrize(
    "num_states, names", [(1, ["h0"]), (2, ["h0", "c0"]), (3, ["state0_0", "state1_0", "state2_0"])]
)
def test_weights_are_trainable_and_named(K, num_states, names):
    layer = layer_class(K)(UNITS, num_states=num_states)
    states = layer(np.zeros((2, 5, 3), "float32"))
    assert len(states) == num_states
    assert len(layer.trainable_weights) == num_states
    assert all(any(w is t for t in layer.trainable_weights) for w in layer.initial_states)
    assert [w.name.split("/")[-1].split(":")[0] for w in layer.initial_states] == names
    assert all(tuple(w.shape) == (1, UNITS) for w in layer.initial_states)


def test_zeros_by_default_and_initializer_argument(K):
    zeros = layer_class(K)(UNITS)
    zeros(np.zeros((1, 2, 3), "float32"))
    assert all(np.all(v == 0) for v in values(zeros))
    ones = layer_class(K)(UNITS, initializer="ones")
    ones(np.zeros((1, 2, 3), "float32"))
    assert all(np.all(v == 1) for v in values(ones))
    custom = layer_class(K)(UNITS, initializer=K.initializers.Constant(0.5))
    out = custom(np.zeros((3, 2, 3), "float32"))
    np.testing.assert_array_equal(np.asarray(out[1]), np.full((3, UNITS), 0.5, "float32"))


def test_any_batch_size_eager(K):
    layer = layer_class(K)(UNITS, initializer="ones")
    for batch in (1, 3, 8):
        states = layer(np.zeros((batch, 5, 3), "float32"))
        assert [tuple(s.shape) for s in states] == [(batch, UNITS)] * 2
        assert all(np.all(np.asarray(s) == 1) for s in states)


def test_symbolic_none_batch_and_predict_any_batch(K):
    model = make_model(K)
    layer = model.get_layer("init")
    symbolic = layer(K.Input((None, 3)))
    assert [tuple(s.shape) for s in symbolic] == [(None, UNITS)] * 2
    x, _ = data(8)
    for batch in (1, 3, 8):
        assert model.predict(x[:batch], verbose=0).shape == (batch, 1)


def test_output_uses_the_learned_state(K):
    model = make_model(K, initializer=K.initializers.Constant(0.3))
    x, _ = data()
    lstm = model.get_layer("rnn")
    h0 = tf.fill((len(x), UNITS), 0.3)
    expected = model.get_layer("head")(lstm(x, initial_state=[h0, h0]))
    np.testing.assert_allclose(model(x), expected, atol=1e-6)
    zero = tf.zeros((len(x), UNITS))
    assert not np.allclose(model(x), model.get_layer("head")(lstm(x, initial_state=[zero, zero])))


@pytest.mark.parametrize("num_states", [1, 2])
def test_gradients_reach_the_states(K, num_states):
    model = make_model(K, num_states=num_states)
    x, y = data()
    layer = model.get_layer("init")
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean((model(x) - y) ** 2)
    grads = tape.gradient(loss, layer.initial_states)
    assert all(g is not None and np.any(np.asarray(g) != 0) for g in grads)


def test_fit_changes_the_states(K):
    model = make_model(K)
    x, y = data()
    layer = model.get_layer("init")
    before = values(layer)
    model.fit(x, y, epochs=2, batch_size=3, verbose=0)
    after = values(layer)
    assert all(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))


def test_keras_file_round_trip(K, tmp_path: Path):
    model = make_model(K)
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=3, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = K.models.load_model(path)  # no custom_objects: the class is registered
    layer = loaded.get_layer("init")
    assert type(layer) is layer_class(K)
    for saved, restored in zip(values(model.get_layer("init")), values(layer), strict=True):
        np.testing.assert_array_equal(saved, restored)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_config_round_trip(K):
    layer = layer_class(K)(UNITS, num_states=1, initializer="ones", name="s")
    config = layer.get_config()
    assert (config["units"], config["num_states"], config["name"]) == (UNITS, 1, "s")
    clone = layer_class(K).from_config(config)
    clone(np.zeros((2, 3, 3), "float32"))
    assert (clone.units, clone.num_states) == (UNITS, 1)
    assert all(np.all(v == 1) for v in values(clone))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 0}, r"units must be a positive integer, got 0"),
        ({"units": 4, "num_states": 0}, r"num_states must be a positive integer, got 0"),
        ({"units": 4, "initializer": "no_such_init"}, r"initializer must be a Keras initializer.*'no_such_init'"),
        ({"units": 4, "initializer": None}, r"initializer must be a Keras initializer.*None"),
    ],
)
def test_bad_arguments(K, kwargs, match):
    with pytest.raises(ValueError, match=match):
        layer_class(K)(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 2.5}, r"units must be a positive integer, got 2\.5 \(float\)"),
        ({"units": True}, r"units must be a positive integer, got True \(bool\)"),
        ({"units": 4, "num_states": "2"}, r"num_states must be a positive integer, got '2' \(str\)"),
    ],
)
def test_arguments_of_the_wrong_type(K, kwargs, match):
    with pytest.raises(TypeError, match=match):
        layer_class(K)(**kwargs)
