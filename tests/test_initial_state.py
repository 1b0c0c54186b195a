"""Tests of lstm_utils.initial_state on Keras 3 and Keras 2."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
import tensorflow as tf

from lstm_utils.initial_state import check_initial_state, expected_initial_state

B, T, F, U = 2, 5, 3, 4


def _x(batch: int = B) -> tf.Tensor:
    return tf.zeros((batch, T, F))


def _s(batch: int = B, width: int = U) -> tf.Tensor:
    return tf.zeros((batch, width))


def _stacked(K: ModuleType) -> object:
    return K.layers.RNN([K.layers.LSTMCell(U), K.layers.LSTMCell(U)])


# ----------------------------------------------------------------------------- valid


def test_valid_states_pass_and_build_nothing(K: ModuleType) -> None:
    cases = [
        (K.layers.LSTM(U), [_s(), _s()]),
        (K.layers.LSTM(U), (_s(), _s())),
        (K.layers.LSTM(U), None),
        (K.layers.GRU(U), [_s()]),
        (K.layers.GRU(U), _s()),
        (K.layers.SimpleRNN(U), [_s()]),
        (K.layers.RNN(K.layers.LSTMCell(U)), [_s(), _s()]),
        (_stacked(K), [[_s(), _s()], [_s(), _s()]]),
        (K.layers.RNN([K.layers.GRUCell(U), K.layers.GRUCell(3)]), [_s(), _s(width=3)]),
        (K.layers.RNN([K.layers.GRUCell(U), K.layers.LSTMCell(3)]), [[_s()], [_s(width=3)] * 2]),
        (K.layers.Bidirectional(K.layers.LSTM(U)), [_s()] * 4),
        (K.layers.Bidirectional(K.layers.GRU(U)), [_s()] * 2),
    ]
    for layer, state in cases:
        assert check_initial_state(layer, _x(), state) is None
        assert not layer.built  # nothing was called


def test_symbolic_inputs_with_unknown_batch(K: ModuleType) -> None:
    x = K.Input((T, F))
    h, c = K.Input((U,)), K.Input((U,))
    check_initial_state(K.layers.LSTM(U), x, [h, c])
    check_initial_state(K.layers.LSTM(U), x, [_s(batch=7), _s(batch=7)])  # None fits any batch
    check_initial_state(K.layers.LSTM(U), _x(), [h, c])
    with pytest.raises(ValueError, match=r"width 6; got shape \(None, 4\) \(width 4\)"):
        check_initial_state(K.layers.LSTM(6), x, [h, c])
    with pytest.raises(ValueError, match="expects 1 initial state"):
        check_initial_state(K.layers.GRU(U), x, [h, c])


def test_numpy_states(K: ModuleType, flavour: str) -> None:
    h = np.zeros((B, U), "float32")
    if flavour == "keras3":
        check_initial_state(K.layers.LSTM(U), _x(), [h, h])
    else:
        with pytest.raises(TypeError, match=r"NumPy array; Keras 2 \(tf_keras\) only accepts tensors.*tf.constant"):
            check_initial_state(K.layers.LSTM(U), _x(), [h, h])


def test_expected_initial_state(K: ModuleType) -> None:
    assert expected_initial_state(K.layers.LSTM(U)) == ["h", "c"]
    assert expected_initial_state(K.layers.GRU(U)) == ["h"]
    assert expected_initial_state(_stacked(K)) == [["h1", "c1"], ["h2", "c2"]]
    assert expected_initial_state(K.layers.Bidirectional(K.layers.GRU(U))) == ["fwd_h", "bwd_h"]
    with pytest.raises(TypeError, match="expects a Keras recurrent layer"):
        expected_initial_state(K.layers.Dense(U))


# ----------------------------------------------------------------------------- errors


def test_wrong_count(K: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"expects 2 initial states \[h, c\]; got 1: \[\(2, 4\)\]"):
        check_initial_state(K.layers.LSTM(U), _x(), [_s()])
    with pytest.raises(ValueError, match=r"expects 2 initial states \[h, c\]; got 3"):
        check_initial_state(K.layers.LSTM(U), _x(), [_s()] * 3)
    with pytest.raises(ValueError, match=r"expects 1 initial state \[h\]; got 2.*silently ignores"):
        check_initial_state(K.layers.GRU(U), _x(), [_s(), _s()])


def test_wrong_nesting(K: ModuleType) -> None:
    with pytest.raises(
        ValueError,
        match=r"2 stacked cells, so initial_state must be nested.*\[\[h1, c1\], \[h2, c2\]\]; got a flat list of 4",
    ):
        check_initial_state(_stacked(K), _x(), [_s()] * 4)
    with pytest.raises(ValueError, match=r"expects 2 initial states; got 1"):
        check_initial_state(_stacked(K), _x(), [[_s(), _s()], [_s()]])
    with pytest.raises(ValueError, match=r"states of one cell must be a list \[h2, c2\]"):
        check_initial_state(_stacked(K), _x(), [[_s(), _s()], _s()])
    with pytest.raises(ValueError, match=r"initial state h of .* must be one array.*got a nested list"):
        check_initial_state(K.layers.LSTM(U), _x(), [[_s(), _s()], _s()])


def test_bidirectional_count(K: ModuleType) -> None:
    layer = K.layers.Bidirectional(K.layers.LSTM(U))
    for n in (2, 3, 5):
        with pytest.raises(
            ValueError,
            match=rf"expects 4 initial states, forward then backward, \[fwd_h, fwd_c, bwd_h, bwd_c\]; got {n}",
        ):
            check_initial_state(layer, _x(), [_s()] * n)
    with pytest.raises(ValueError, match=r"expects 2 initial states, forward then backward, \[fwd_h, bwd_h\]; got 4"):
        check_initial_state(K.layers.Bidirectional(K.layers.GRU(U)), _x(), [_s()] * 4)
    with pytest.raises(ValueError, match=r"initial state bwd_c .* width 4; got shape \(2, 3\)"):
        check_initial_state(layer, _x(), [_s(), _s(), _s(), _s(width=3)])


def test_wrong_batch(K: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"initial state h of .* has batch size 2, but the inputs have batch size 1"):
        check_initial_state(K.layers.LSTM(U), _x(batch=1), [_s(), _s()])
    with pytest.raises(ValueError, match=r"has batch size 1, but the inputs have batch size 2"):
        check_initial_state(K.layers.GRU(U), _x(), [_s(batch=1)])
    with pytest.raises(ValueError, match=r"initial state c2 .* batch size 3"):
        check_initial_state(_stacked(K), _x(), [[_s(), _s()], [_s(), _s(batch=3)]])


def test_wrong_width_and_rank(K: ModuleType) -> None:
    with pytest.raises(
        ValueError,
        match=r"initial state c of .* must have shape \(batch, 4\), that is width 4; got shape \(2, 3\) \(width 3\)",
    ):
        check_initial_state(K.layers.LSTM(U), _x(), [_s(), _s(width=3)])
    with pytest.raises(ValueError, match=r"must have shape \(batch, 4\); got shape \(4,\)"):
        check_initial_state(K.layers.LSTM(U), _x(), [tf.zeros(U), tf.zeros(U)])


def test_bad_arguments(K: ModuleType) -> None:
    with pytest.raises(TypeError, match="expects a Keras recurrent layer.*got Dense"):
        check_initial_state(K.layers.Dense(U), _x(), None)
    with pytest.raises(ValueError, match=r"inputs must be 3-D \(batch, timesteps, features\); got shape \(2, 5\)"):
        check_initial_state(K.layers.LSTM(U), tf.zeros((B, T)), None)
    with pytest.raises(TypeError, match="must be an array or tensor.*got a float"):
        check_initial_state(K.layers.GRU(U), _x(), [1.0])


def test_what_the_check_catches_is_what_keras_3_gets_wrong() -> None:
    """The silent Keras 3 cases the checker exists for (if Keras starts raising, update ch. 2)."""
    import keras

    x1 = tf.zeros((1, T, F))
    out = keras.layers.LSTM(U)(x1, initial_state=[_s(), _s()])
    assert tuple(out.shape) == (2, U)  # a state batch of 2 silently broadcast onto 1 sample
    gru = keras.layers.GRU(U)
    h = tf.random.normal((B, U))
    np.testing.assert_array_equal(gru(_x(), initial_state=[h, h * 2]), gru(_x(), initial_state=[h]))


def test_inputs_without_a_shape_are_named(K: ModuleType) -> None:
    with pytest.raises(
        TypeError, match=r"inputs must be an array or tensor of shape \(batch, timesteps, features\); got a list"
    ):
        check_initial_state(K.layers.LSTM(U), [[[0.0]]], None)


@pytest.mark.parametrize("dtype", ["int32", "bool", "<U1"])
def test_states_that_are_not_floats_are_refused(K: ModuleType, dtype: str) -> None:
    import tensorflow as tf

    x = tf.zeros((2, 5, 3))
    h = tf.constant(np.zeros((2, 4)).astype(dtype))
    with pytest.raises(TypeError, match=r"initial state h of LSTM layer .* must hold floats.*got dtype"):
        check_initial_state(K.layers.LSTM(4), x, [h, h])


def test_symbolic_tensors_of_the_other_keras_are_refused() -> None:
    import keras
    import tf_keras

    for layer_keras, state_keras in ((keras, tf_keras), (tf_keras, keras)):
        x = layer_keras.Input((5, 3))
        h = state_keras.Input((4,))
        with pytest.raises(
            TypeError, match=r"initial state h of LSTM layer .* is a Keras [23] .* but the layer is a Keras [23]"
        ):
            check_initial_state(layer_keras.layers.LSTM(4), x, [h, h])


def test_each_batch_mismatch_note_says_what_keras_3_does_in_that_case() -> None:
    """Every note is checked against Keras 3 itself, case by case."""
    import keras

    cases = {(1, 2): "returns 2 rows", (2, 1): "every row the same start state", (2, 3): "InvalidArgumentError"}
    for (input_batch, state_batch), note in cases.items():
        x, h = tf.zeros((input_batch, T, F)), tf.zeros((state_batch, U))
        with pytest.raises(ValueError, match=note):
            check_initial_state(keras.layers.LSTM(U), x, [h, h])
        try:
            out = keras.layers.LSTM(U)(x, initial_state=[h, h])
        except tf.errors.InvalidArgumentError:
            assert note == "InvalidArgumentError"
        else:
            assert tuple(out.shape) == (max(input_batch, state_batch), U) and note != "InvalidArgumentError"


def test_the_extra_state_note_distinguishes_gru_from_simple_rnn() -> None:
    import keras

    h = tf.zeros((B, U))
    with pytest.raises(ValueError, match="silently ignores the extra states of a GRU"):
        check_initial_state(keras.layers.GRU(U), _x(), [h, h])
    with pytest.raises(ValueError, match="raises 'Too few leaves for PyTreeSpec'"):
        check_initial_state(keras.layers.SimpleRNN(U), _x(), [h, h])
    with pytest.raises(ValueError, match="Too few leaves for PyTreeSpec"):
        keras.layers.SimpleRNN(U)(_x(), initial_state=[h, h])
