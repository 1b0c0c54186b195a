"""Tests for lstm_utils.legacy: Keras 2 .h5 files of stateful models, loaded into Keras 3."""

from __future__ import annotations

import hashlib
import os
import pathlib
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from lstm_utils.legacy import load_keras2_h5
from lstm_utils.states import reset_states

BATCH, STEPS, FEATURES = 2, 5, 3


def _randomise(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        values = rng.normal(scale=0.5, size=tuple(weight.shape))
        if "variance" in weight.name:  # BatchNormalization's moving variance must stay positive
            values = np.abs(values) + 0.1
        weight.assign(values.astype("float32"))


def _sequential(K: Any) -> Any:
    L = K.layers
    return K.Sequential(
        [
            L.LSTM(4, stateful=True, return_sequences=True, batch_input_shape=(BATCH, STEPS, FEATURES)),
            L.Bidirectional(L.GRU(3, stateful=True, return_sequences=True)),
            L.TimeDistributed(L.Dense(2)),
            L.SimpleRNN(2, stateful=True),
            L.Dense(1),
        ]
    )


def _functional(K: Any) -> Any:
    L = K.layers
    inputs = K.Input(batch_shape=(BATCH, STEPS, FEATURES))
    x = L.LSTM(4, stateful=True, return_sequences=True)(inputs)
    x = L.Bidirectional(L.LSTM(3, stateful=True, return_sequences=True), merge_mode="sum")(x)
    x = L.RNN([L.LSTMCell(2), L.GRUCell(3, reset_after=False)], stateful=True, return_sequences=True)(x)
    return K.Model(inputs, L.TimeDistributed(L.Dense(1))(x))


def _embedding(K: Any) -> Any:
    L = K.layers
    return K.Sequential(
        [
            L.Embedding(7, 3, input_length=STEPS, batch_input_shape=(BATCH, STEPS)),
            L.GRU(4, stateful=True),
            L.Dense(2),
        ]
    )


def _nested(K: Any) -> Any:
    """A Sequential (BatchNormalization's axis=[2] in Keras 2) inside a functional model, called twice."""
    L = K.layers
    inner = K.Sequential(
        [
            L.LSTM(3, stateful=True, return_sequences=True, batch_input_shape=(BATCH, STEPS, FEATURES)),
            L.BatchNormalization(),
        ],
        name="inner",
    )
    inputs = K.Input(batch_shape=(BATCH, STEPS, FEATURES))
    inner(inputs)  # a first call: the model's call below is node 2 in Keras 2
    outputs = L.GRU(2, stateful=True, trainable=False)(inner(inputs))
    return K.Model(inputs, outputs)


BUILDERS: dict[str, Callable[[Any], Any]] = {
    "sequential": _sequential,
    "functional": _functional,
    "embedding": _embedding,
    "nested": _nested,
}


def _inputs(kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "embedding":
        return rng.integers(0, 7, size=(BATCH, STEPS))
    return rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")


def _run(model: Any, batches: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of consecutive calls (eager: faster than predict; the state carries the same way)."""
    return [np.asarray(model(x, training=False)) for x in batches]


def _digest(path: pathlib.Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Keras 2 models saved to .h5, with their predictions over two consecutive batches."""
    import tf_keras

    folder = tmp_path_factory.mktemp("keras2")
    result: dict[str, Any] = {"folder": folder}
    for seed, (kind, build) in enumerate(BUILDERS.items()):
        tf_keras.backend.clear_session()
        model = build(tf_keras)
        _randomise(model, seed)
        path = folder / f"{kind}.h5"
        model.save(path)
        batches = [_inputs(kind, 10 + seed), _inputs(kind, 20 + seed)]
        predictions = _run(model, batches)
        result[kind] = (path, batches, predictions)
    return result


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_predictions_equal_keras2_over_two_batches(saved: dict[str, Any], kind: str) -> None:
    path, batches, expected = saved[kind]
    before = _digest(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_keras2_h5(path)
        got = _run(model, batches)
    assert [str(w.message) for w in caught] == []  # chapters print nothing on stderr
    assert _digest(path) == before  # read only
    from lstm_utils._flavour import flavour_of

    assert flavour_of(model) == "keras3"
    assert tuple(model.inputs[0].shape) == batches[0].shape
    from lstm_utils.states import stateful_layers

    assert [path for path, _ in stateful_layers(model)] == {
        "sequential": ["lstm", "bidirectional", "simple_rnn"],
        "functional": ["lstm", "bidirectional", "rnn"],
        "embedding": ["gru"],
        "nested": ["inner/lstm", "gru"],
    }[kind]
    for want, have in zip(expected, got, strict=True):
        assert have.shape == want.shape
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-5)
    # The second batch really continued from the first batch's state.
    reset_states(model)  # Keras 3's own RNN.reset_states fails on RNN([cell, cell]) (ListWrapper)
    assert np.abs(_run(model, batches[1:])[0] - expected[1]).max() > 1e-3


def test_predict_equals_keras2_predict(saved: dict[str, Any]) -> None:
    path, batches, expected = saved["sequential"]
    model = load_keras2_h5(os.fspath(path))
    got = [model.predict(x, batch_size=BATCH, verbose=0) for x in batches]
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-5)


def test_layer_kinds_survive(saved: dict[str, Any]) -> None:
    model = load_keras2_h5(saved["sequential"][0])
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["LSTM", "Bidirectional", "TimeDistributed", "SimpleRNN", "Dense"]
    assert model.layers[1].forward_layer.stateful and model.layers[1].backward_layer.stateful
    assert all(type(layer).__module__.startswith("keras.") for layer in model.layers)


def test_compile_uses_the_training_config(saved: dict[str, Any], tmp_path: pathlib.Path) -> None:
    import tf_keras

    tf_keras.backend.clear_session()
    model = _sequential(tf_keras)
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=0.01), loss=tf_keras.losses.Huber(delta=2.0))
    path = tmp_path / "compiled.h5"
    model.save(path)
    loaded = load_keras2_h5(path, compile=True)
    assert type(loaded.optimizer).__name__ == "Adam"
    assert float(np.asarray(loaded.optimizer.learning_rate)) == pytest.approx(0.01)
    # Huber with delta=2 at an error of 3: 2 * (3 - 2 / 2) = 4 (delta=1 would give 2.5).
    assert float(np.asarray(loaded.loss(np.zeros((1, 1)), np.full((1, 1), 3.0)))) == pytest.approx(4.0)
    x, y = _inputs("sequential", 0), np.zeros((BATCH, 1), dtype="float32")
    assert np.isfinite(loaded.train_on_batch(x, y))
    assert getattr(load_keras2_h5(path), "optimizer", None) is None


# ---- refused inputs ------------------------------------------------------------------


def test_missing_path() -> None:
    with pytest.raises(FileNotFoundError, match="no file at"):
        load_keras2_h5("/nonexistent/model.h5")


@pytest.mark.parametrize("bad", [3, None, b"model.h5", ["a.h5"]])
def test_path_of_wrong_type(bad: Any) -> None:
    with pytest.raises(TypeError, match="path must be"):
        load_keras2_h5(bad)


def test_compile_must_be_bool(saved: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="compile must be True or False, got 'yes'"):
        load_keras2_h5(saved["sequential"][0], compile="yes")  # type: ignore[arg-type]


def test_custom_objects_must_be_a_mapping(saved: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="custom_objects must be a mapping"):
        load_keras2_h5(saved["sequential"][0], custom_objects=["LSTM"])  # type: ignore[arg-type]


def test_directory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="is a directory"):
        load_keras2_h5(tmp_path)


def test_not_hdf5(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("hello")
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        load_keras2_h5(path)


def test_truncated_file(saved: dict[str, Any], tmp_path: pathlib.Path) -> None:
    data = saved["sequential"][0].read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="could not be read as HDF5"):
        load_keras2_h5(path)


def test_keras_archive(tmp_path: pathlib.Path) -> None:
    import keras

    model = keras.Sequential([keras.Input((STEPS, FEATURES)), keras.layers.LSTM(2)])
    path = tmp_path / "model.keras"
    model.save(path)
    with pytest.raises(ValueError, match=r"a \.keras file.*keras\.models\.load_model"):
        load_keras2_h5(path)


def test_weights_only_file(tmp_path: pathlib.Path) -> None:
    import tf_keras

    tf_keras.backend.clear_session()
    path = tmp_path / "only.h5"
    _sequential(tf_keras).save_weights(path)
    before = _digest(path)
    with pytest.raises(ValueError, match=r"weights-only file.*model\.load_weights"):
        load_keras2_h5(path)
    assert _digest(path) == before


def test_hdf5_without_keras_content(tmp_path: pathlib.Path) -> None:
    import h5py

    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as handle:
        handle["x"] = np.arange(3)
    with pytest.raises(ValueError, match=r"without a model config \(no Keras model\)"):
        load_keras2_h5(path)


def test_time_major_true_is_refused_by_name(tmp_path: pathlib.Path) -> None:
    import tf_keras

    tf_keras.backend.clear_session()
    model = tf_keras.Sequential(
        [tf_keras.Input((STEPS, FEATURES)), tf_keras.layers.LSTM(2, time_major=True, name="tm_lstm")]
    )
    path = tmp_path / "tm.h5"
    model.save(path)
    with pytest.raises(ValueError, match=r"LSTM layer 'tm_lstm' has time_major=True"):
        load_keras2_h5(path)


def test_lambda_is_refused(tmp_path: pathlib.Path) -> None:
    import tf_keras

    tf_keras.backend.clear_session()
    model = tf_keras.Sequential(
        [
            tf_keras.Input(batch_shape=(BATCH, STEPS, FEATURES)),
            tf_keras.layers.Lambda(lambda t: t * 2, name="double"),
            tf_keras.layers.LSTM(2, stateful=True),
        ]
    )
    path = tmp_path / "lambda.h5"
    model.save(path)
    with pytest.raises(ValueError, match=r"Lambda layer 'double' holds Keras 2 Python bytecode"):
        load_keras2_h5(path)


def test_custom_layer_named_then_accepted(tmp_path: pathlib.Path) -> None:
    import keras
    import tf_keras

    class Scale2(tf_keras.layers.Layer):  # type: ignore[misc]
        def call(self, inputs: Any) -> Any:
            return inputs * 3.0

    class Scale3(keras.layers.Layer):  # type: ignore[misc]
        def call(self, inputs: Any) -> Any:
            return inputs * 3.0

    tf_keras.backend.clear_session()
    inputs = tf_keras.Input(batch_shape=(BATCH, STEPS, FEATURES))
    outputs = tf_keras.layers.LSTM(2, stateful=True)(Scale2(name="scale")(inputs))
    model = tf_keras.Model(inputs, outputs)
    _randomise(model, 5)
    path = tmp_path / "custom.h5"
    model.save(path)
    with pytest.raises(ValueError, match=r"no class for Scale2 layer 'scale'.*custom_objects="):
        load_keras2_h5(path)
    loaded = load_keras2_h5(path, custom_objects={"Scale2": Scale3})
    x = _inputs("functional", 3)
    for have, want in zip(_run(loaded, [x, x]), _run(model, [x, x]), strict=True):
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-5)


def test_weights_that_do_not_fit(saved: dict[str, Any], tmp_path: pathlib.Path) -> None:
    import h5py

    path = tmp_path / "edited.h5"
    path.write_bytes(saved["sequential"][0].read_bytes())
    with h5py.File(path, "r+") as handle:
        group = handle["model_weights/dense_1/dense_1"]
        del group["bias:0"]
        group["bias:0"] = np.zeros(3, dtype="float32")
    with pytest.raises(ValueError, match=r"has shape \(1,\) in Keras 3, the file holds shape \(3,\)"):
        load_keras2_h5(path)


def test_old_sequential_without_input_layer(saved: dict[str, Any], tmp_path: pathlib.Path) -> None:
    """Keras 2.0-2.2.2 wrote a Sequential as a bare list of layers, batch_input_shape on the first."""
    import json

    import h5py

    path, batches, expected = saved["sequential"]
    copy = tmp_path / "old.h5"
    copy.write_bytes(path.read_bytes())
    with h5py.File(copy, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        layers = config["config"]["layers"]
        assert layers[0]["class_name"] == "InputLayer" and "batch_input_shape" in layers[1]["config"]
        config["config"] = layers[1:]
        handle.attrs["model_config"] = json.dumps(config)
    model = load_keras2_h5(copy)
    assert tuple(model.inputs[0].shape) == (BATCH, STEPS, FEATURES)
    for want, have in zip(expected, _run(model, batches), strict=True):
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-5)


def test_keras2_argument_keras3_rejects_is_reported(saved: dict[str, Any], tmp_path: pathlib.Path) -> None:
    import json

    import h5py

    copy = tmp_path / "odd.h5"
    copy.write_bytes(saved["sequential"][0].read_bytes())
    with h5py.File(copy, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        config["config"]["layers"][1]["config"]["old_option"] = 1
        handle.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ValueError, match=r"cannot rebuild the model.*old_option.*model\.load_weights"):
        load_keras2_h5(copy)


def test_cudnn_class_gets_a_hint(saved: dict[str, Any], tmp_path: pathlib.Path) -> None:
    import json

    import h5py

    copy = tmp_path / "cudnn.h5"
    copy.write_bytes(saved["sequential"][0].read_bytes())
    with h5py.File(copy, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        config["config"]["layers"][1]["class_name"] = "CuDNNLSTM"
        handle.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ValueError, match=r"no class for CuDNNLSTM layer 'lstm' \(CuDNNLSTM/CuDNNGRU: rebuild as"):
        load_keras2_h5(copy)
