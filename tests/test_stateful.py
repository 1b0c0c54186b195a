"""Tests of lstm_utils.stateful on Keras 3 and Keras 2 (the ``K`` fixture)."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

import lstm_utils
from lstm_utils.stateful import (
    check_batch,
    from_stateful_batches,
    stateful_batch_size,
    to_stateful_batches,
    with_batch_size,
)

# --- to_stateful_batches / from_stateful_batches (pure NumPy) -----------------------------


def test_to_stateful_batches_order() -> None:
    batch, timesteps, window = 3, 8, 2
    x = np.arange(batch * timesteps * 2).reshape(batch, timesteps, 2)
    chunks = to_stateful_batches(x, window=window)
    assert chunks.shape == (batch * timesteps // window, window, 2)
    for k in range(timesteps // window):
        for i in range(batch):
            np.testing.assert_array_equal(chunks[k * batch + i], x[i, k * window : (k + 1) * window])


def test_to_stateful_batches_with_targets() -> None:
    x = np.random.default_rng(0).random((2, 6, 1))
    y = np.arange(2 * 6 * 3).reshape(2, 6, 3)
    xc, yc = to_stateful_batches(x, y, window=3)
    assert xc.shape == (4, 3, 1) and yc.shape == (4, 3, 3)
    np.testing.assert_array_equal(yc[1], y[1, :3])
    np.testing.assert_array_equal(yc[2], y[0, 3:])
    y2 = np.arange(12).reshape(2, 6)  # one number per step, no trailing axis
    _, y2c = to_stateful_batches(x, y2, window=2)
    assert y2c.tolist()[:3] == [[0, 1], [6, 7], [2, 3]]


def test_to_stateful_batches_accepts_tensors() -> None:
    import tensorflow as tf

    x = tf.reshape(tf.range(12, dtype=tf.float32), (2, 6, 1))
    assert to_stateful_batches(x, window=6).shape == (2, 6, 1)


def test_round_trip() -> None:
    x = np.random.default_rng(1).random((4, 12, 3))
    chunks = to_stateful_batches(x, window=4)
    np.testing.assert_array_equal(from_stateful_batches(chunks, batch=4), x)


def test_from_stateful_batches_one_output_per_window() -> None:
    last = np.array([[0.0], [10.0], [1.0], [11.0], [2.0], [12.0]])  # rows k * batch + i
    np.testing.assert_array_equal(from_stateful_batches(last, batch=2)[..., 0], [[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"window": 3}, ValueError, r"timesteps=10 is not a multiple of window=3: 1 step would be left over"),
        ({"window": 4}, ValueError, r"2 steps would be left over.*x\[:, :8\]"),
        ({"window": 0}, ValueError, r"window must be a positive integer, got 0"),
        ({"window": 2.0}, TypeError, r"window must be a positive integer, got 2.0"),
        ({"window": True}, TypeError, r"window must be a positive integer"),
        ({"window": 11}, ValueError, r"window=11 is longer than the sequences \(10 time steps\)"),
    ],
)
def test_to_stateful_batches_bad_window(kwargs: dict, error: type, match: str) -> None:
    x = np.zeros((2, 10, 1))
    with pytest.raises(error, match=match):
        to_stateful_batches(x, **kwargs)


def test_to_stateful_batches_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"3-D array; got shape \(2, 10\)"):
        to_stateful_batches(np.zeros((2, 10)), window=2)
    with pytest.raises(ValueError, match=r"\(batch, timesteps, \.\.\.\) = \(2, 10, \.\.\.\); got shape \(2, 8, 1\)"):
        to_stateful_batches(np.zeros((2, 10, 1)), np.zeros((2, 8, 1)), window=2)
    with pytest.raises(ValueError, match=r"got shape \(2,\)"):
        to_stateful_batches(np.zeros((2, 10, 1)), np.zeros(2), window=2)
    with pytest.raises(TypeError, match="numeric"):
        to_stateful_batches(np.array([[["a"]]], dtype=object), window=1)


def test_to_stateful_batches_leaves_input_alone() -> None:
    x = np.arange(12.0).reshape(2, 6, 1)
    before = x.copy()
    chunks = to_stateful_batches(x, window=3)
    chunks[:] = -1
    np.testing.assert_array_equal(x, before)


def test_from_stateful_batches_bad_input() -> None:
    with pytest.raises(ValueError, match=r"5 rows do not split into 2 sequences"):
        from_stateful_batches(np.zeros((5, 3, 1)), batch=2)
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        from_stateful_batches(np.zeros(4), batch=2)
    with pytest.raises(ValueError, match="batch must be a positive integer, got -1"):
        from_stateful_batches(np.zeros((4, 1)), batch=-1)


# --- models ------------------------------------------------------------------------------


def _sequential(K: ModuleType, batch: int = 2, timesteps: int | None = None, units: int = 3):
    return K.Sequential(
        [
            K.Input(batch_shape=(batch, timesteps, 1)),
            K.layers.LSTM(units, stateful=True, return_sequences=True, name="lstm"),
            K.layers.Dense(1, name="head"),
        ]
    )


def _nested_functional(K: ModuleType, batch: int = 2):
    """Functional model: Input -> stateful Bidirectional LSTM -> nested Sequential(stateful GRU)."""
    inner = K.Sequential(
        [K.Input(batch_shape=(batch, None, 6)), K.layers.GRU(2, stateful=True, name="gru")], name="inner"
    )
    x = K.Input(batch_shape=(batch, None, 1))
    seq = K.layers.Bidirectional(K.layers.LSTM(3, stateful=True, return_sequences=True), name="bi")(x)
    return K.Model(x, inner(seq), name="outer")


def test_stateful_batch_size(K: ModuleType) -> None:
    assert stateful_batch_size(_sequential(K, batch=5)) == 5
    assert stateful_batch_size(_nested_functional(K, batch=3)) == 3
    stateless = K.Sequential([K.Input((4, 1)), K.layers.LSTM(2)])
    assert stateful_batch_size(stateless) is None
    with pytest.raises(TypeError, match="must be a Keras model or layer"):
        stateful_batch_size(np.zeros(3))


def test_stateful_batch_size_inconsistent(K: ModuleType) -> None:
    a = K.Input(batch_shape=(2, None, 1))
    b = K.Input(batch_shape=(3, None, 1))
    model = K.Model([a, b], [K.layers.GRU(2, stateful=True)(a), K.layers.GRU(2, stateful=True)(b)])
    with pytest.raises(ValueError, match="different batch sizes"):
        stateful_batch_size(model)


def test_check_batch_passes(K: ModuleType) -> None:
    model = _sequential(K, batch=2, timesteps=4)
    assert check_batch(model, np.zeros((6, 4, 1))) == 2
    assert check_batch(model, np.zeros((2, 4, 1)), batch_size=2) == 2
    assert check_batch(model, [np.zeros((4, 4, 1))]) == 2


def test_check_batch_partial_last_batch(K: ModuleType) -> None:
    """The error of check_batch matches what Keras really does: 6 outputs for 5 samples."""
    model = _sequential(K, batch=2, timesteps=4)
    x = np.random.default_rng(0).random((5, 4, 1)).astype("float32")
    with pytest.raises(
        ValueError,
        match=(
            r"5 samples do not split into batches of 2: the last batch would have 1 sample, which "
            r"Keras 3 \(TensorFlow backend\) and Keras 2 silently broadcast to 2 rows \(predict returns 6 outputs"
        ),
    ):
        check_batch(model, x, batch_size=2)
    assert model.predict(x, batch_size=2, verbose=0).shape[0] == 6  # the silent broadcast is real
    model.compile("sgd", "mse")
    model.fit(x, np.zeros((5, 4, 1), "float32"), batch_size=2, shuffle=False, verbose=0)  # no error either


def test_check_batch_fewer_than_one_batch(K: ModuleType) -> None:
    model = _sequential(K, batch=4, timesteps=4)
    with pytest.raises(ValueError, match=r"3 samples do not fill one batch of 4"):
        check_batch(model, np.zeros((3, 4, 1)))
    with pytest.raises(ValueError, match=r"1 sample do not fill one batch of 4"):
        check_batch(model, {"x": np.zeros((1, 4, 1))})
    with pytest.raises(ValueError, match="0 samples"):
        check_batch(model, np.zeros((0, 4, 1)))


def test_check_batch_other_bad_input(K: ModuleType) -> None:
    import tensorflow as tf

    model = _sequential(K, batch=2, timesteps=4)
    with pytest.raises(ValueError, match=r"batch_size=4 does not match the batch size 2"):
        check_batch(model, np.zeros((8, 4, 1)), batch_size=4)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        check_batch(model, np.zeros((8, 4, 1)), batch_size=0)
    with pytest.raises(TypeError, match="tf.data.Dataset"):
        check_batch(model, tf.data.Dataset.from_tensor_slices(np.zeros((4, 4, 1))))
    with pytest.raises(ValueError, match=r"different numbers of samples: \[4, 6\]"):
        check_batch(model, [np.zeros((4, 4, 1)), np.zeros((6, 4, 1))])
    with pytest.raises(TypeError, match="must be a Keras model"):
        check_batch("model", np.zeros((4, 4, 1)))


def test_check_batch_stateless_model_is_not_checked(K: ModuleType) -> None:
    stateless = K.Sequential([K.Input((4, 1)), K.layers.LSTM(2)])
    assert check_batch(stateless, np.zeros((5, 4, 1))) is None
    assert check_batch(stateless, np.zeros((5, 4, 1)), batch_size=2) == 2


def test_with_batch_size_sequential(K: ModuleType) -> None:
    model = _sequential(K, batch=4, timesteps=None)
    model.compile("sgd", "mse")
    lstm_utils.set_states(model.get_layer("lstm"), [np.ones((4, 3)), np.ones((4, 3))])
    single = with_batch_size(model, 1)
    assert type(single) is type(model)
    assert single is not model and stateful_batch_size(single) == 1
    assert stateful_batch_size(model) == 4  # the original is unchanged
    for a, b in zip(single.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # the copy starts from zero state; the original keeps its own
    assert not np.any(lstm_utils.get_states(single.get_layer("lstm"))[0])
    np.testing.assert_array_equal(lstm_utils.get_states(model.get_layer("lstm"))[0], np.ones((4, 3)))


def test_with_batch_size_streams_like_the_original(K: ModuleType) -> None:
    """Stepping the batch-1 copy one time step at a time gives the original's outputs."""
    batch, timesteps = 3, 5
    model = _sequential(K, batch=batch, timesteps=None)
    x = np.random.default_rng(2).random((batch, timesteps, 1)).astype("float32")
    whole = np.asarray(model(x))
    single = with_batch_size(model, 1)
    for i in range(batch):
        lstm_utils.reset_states(single)
        steps = [np.asarray(single(x[i : i + 1, t : t + 1])) for t in range(timesteps)]
        np.testing.assert_allclose(np.concatenate(steps, axis=1)[0], whole[i], atol=1e-5)


def test_with_batch_size_keeps_fixed_timesteps(K: ModuleType) -> None:
    model = _sequential(K, batch=2, timesteps=7)
    copy = with_batch_size(model, 5)
    assert tuple(copy.inputs[0].shape) == (5, 7, 1)


def test_with_batch_size_nested_functional(K: ModuleType) -> None:
    model = _nested_functional(K, batch=2)
    x = np.random.default_rng(3).random((2, 4, 1)).astype("float32")
    expected = np.asarray(model(x))
    copy = with_batch_size(model, 2)  # same size: a fresh copy with zero state
    np.testing.assert_allclose(np.asarray(copy(x)), expected, atol=1e-6)
    small = with_batch_size(model, 1)
    assert [lstm_utils.get_states(layer)[0].shape for _, layer in lstm_utils.stateful_layers(small)] == [
        (1, 3),
        (1, 2),
    ]
    np.testing.assert_allclose(np.asarray(small(x[1:])), expected[1:], atol=1e-5)


def test_with_batch_size_keras2_batch_input_shape() -> None:
    import tf_keras

    model = tf_keras.Sequential([tf_keras.layers.LSTM(2, stateful=True, batch_input_shape=(4, 3, 1))])
    copy = with_batch_size(model, 2)
    assert stateful_batch_size(copy) == 2


def test_with_batch_size_bad_input(K: ModuleType) -> None:
    model = _sequential(K, batch=2, timesteps=4)
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        with_batch_size(model, 0)
    with pytest.raises(TypeError, match=r"batch_size must be a positive integer, got 1.5"):
        with_batch_size(model, 1.5)
    with pytest.raises(TypeError, match="must be a Keras model"):
        with_batch_size(object(), 1)
    with pytest.raises(TypeError, match="got the layer 'lstm'"):
        with_batch_size(model.get_layer("lstm"), 1)
    assert stateful_batch_size(model) == 2
    for a, b in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_with_batch_size_unbuilt(K: ModuleType) -> None:
    with pytest.raises(ValueError, match="not built yet"):
        with_batch_size(K.Sequential([K.layers.LSTM(2, stateful=True)]), 1)


def test_with_batch_size_subclassed(K: ModuleType) -> None:
    class Subclassed(K.Model):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = K.layers.LSTM(2, stateful=True)

        def call(self, x):
            return self.lstm(x)

    model = Subclassed()
    model(np.zeros((2, 3, 1), "float32"))
    with pytest.raises(TypeError, match="subclassed model"):
        with_batch_size(model, 1)


@pytest.mark.parametrize("bad", [np.full((4, 6, 1), "a"), np.array([["2026-01-01"]], dtype="datetime64[D]")])
def test_stateful_batches_refuse_arrays_that_are_not_numbers(bad: np.ndarray) -> None:
    with pytest.raises(TypeError, match="x must be a numeric array or tensor"):
        lstm_utils.to_stateful_batches(bad, window=2)
    with pytest.raises(TypeError, match="chunks must be a numeric array or tensor"):
        lstm_utils.from_stateful_batches(bad, batch=1)


def test_an_absurd_batch_size_is_refused_naming_batch_size(K: ModuleType) -> None:
    model = K.Sequential([K.Input(batch_shape=(2, 3, 1)), K.layers.LSTM(2, stateful=True)])
    with pytest.raises(
        ValueError,
        match=r"batch_size must be at most 2147483647 \(TensorFlow indexes batches with 32-bit integers\), "
        r"got 9223372036854775808",
    ):
        lstm_utils.with_batch_size(model, 2**63)
