"""Tests of lstm_utils.reference: the NumPy forward pass agrees with Keras 3 and Keras 2."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
import tensorflow as tf

from lstm_utils.reference import gru_step, lstm_step, reference_forward, simple_rnn_step

ATOL = 1e-5
BATCH, TIMESTEPS, FEATURES, UNITS = 2, 5, 3, 4


def _data(n_states: int = 0, units: int = UNITS, seed: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, TIMESTEPS, FEATURES)).astype("float32")
    states = [rng.normal(size=(BATCH, units)).astype("float32") for _ in range(n_states)]
    return x, states


def _tensors(states: list[np.ndarray]) -> list[tf.Tensor]:
    # Keras 2 rejects NumPy initial states in an eager call; tensors work in both versions.
    return [tf.constant(s) for s in states]


def _assert_close(keras_values: list, reference_values: list) -> None:
    assert len(keras_values) == len(reference_values)
    for got, want in zip(keras_values, reference_values, strict=True):
        np.testing.assert_allclose(np.asarray(got), want, atol=ATOL, rtol=0)


@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
def test_lstm_matches_keras(K: ModuleType, with_state: bool) -> None:
    x, states = _data(2)
    layer = K.layers.LSTM(UNITS, return_sequences=True, return_state=True)
    kwargs = {"initial_state": _tensors(states)} if with_state else {}
    seq, h, c = layer(x, **kwargs)
    ref_seq, ref_states = reference_forward(layer, x, states if with_state else None)
    assert ref_seq.shape == (BATCH, TIMESTEPS, UNITS)
    assert ref_seq.dtype == np.float64
    _assert_close([seq, h, c], [ref_seq, *ref_states])


def test_zero_state_is_the_default(K: ModuleType) -> None:
    x, _ = _data()
    layer = K.layers.LSTM(UNITS)
    layer(x)
    zeros = [np.zeros((BATCH, UNITS))] * 2
    a = reference_forward(layer, x)
    b = reference_forward(layer, x, zeros)
    np.testing.assert_array_equal(a[0], b[0])


def test_swapped_states_do_not_match(K: ModuleType) -> None:
    x, (h0, c0) = _data(2)
    layer = K.layers.LSTM(UNITS)
    out = np.asarray(layer(x, initial_state=_tensors([h0, c0])))
    right, _ = reference_forward(layer, x, [h0, c0])
    wrong, _ = reference_forward(layer, x, [c0, h0])
    np.testing.assert_allclose(out, right[:, -1], atol=ATOL)
    assert not np.allclose(out, wrong[:, -1], atol=1e-3)


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "given-state"])
def test_gru_matches_keras(K: ModuleType, reset_after: bool, with_state: bool) -> None:
    x, states = _data(1)
    layer = K.layers.GRU(
        UNITS,
        reset_after=reset_after,
        return_sequences=True,
        return_state=True,
        bias_initializer="random_normal",  # so that the bias layout matters
    )
    kwargs = {"initial_state": _tensors(states)} if with_state else {}
    seq, h = layer(x, **kwargs)
    ref_seq, ref_states = reference_forward(layer, x, states[0] if with_state else None)
    _assert_close([seq, h], [ref_seq, *ref_states])


def test_simple_rnn_matches_keras(K: ModuleType) -> None:
    x, states = _data(1)
    layer = K.layers.SimpleRNN(UNITS, return_sequences=True, return_state=True)
    seq, h = layer(x, initial_state=_tensors(states))
    ref_seq, ref_states = reference_forward(layer, x, states)
    _assert_close([seq, h], [ref_seq, *ref_states])


def test_lstm_without_bias_and_going_backwards(K: ModuleType) -> None:
    x, states = _data(2)
    layer = K.layers.LSTM(UNITS, use_bias=False, go_backwards=True, return_sequences=True, return_state=True)
    seq, h, c = layer(x, initial_state=_tensors(states))
    ref_seq, ref_states = reference_forward(layer, x, states)
    _assert_close([seq, h, c], [ref_seq, *ref_states])


@pytest.mark.parametrize("cell_name", ["LSTMCell", "GRUCell", "SimpleRNNCell"])
def test_rnn_of_one_cell(K: ModuleType, cell_name: str) -> None:
    n_states = 2 if cell_name == "LSTMCell" else 1
    x, states = _data(n_states)
    layer = K.layers.RNN(getattr(K.layers, cell_name)(UNITS), return_sequences=True, return_state=True)
    seq, *final = layer(x, initial_state=_tensors(states))
    ref_seq, ref_states = reference_forward(layer, x, states)
    _assert_close([seq, *final], [ref_seq, *ref_states])


def test_stacked_cells_nested_and_flat_states(K: ModuleType) -> None:
    rng = np.random.default_rng(2)
    x, _ = _data()
    h1, c1 = (rng.normal(size=(BATCH, UNITS)).astype("float32") for _ in range(2))
    h2 = rng.normal(size=(BATCH, 3)).astype("float32")
    layer = K.layers.RNN([K.layers.LSTMCell(UNITS), K.layers.GRUCell(3)], return_sequences=True, return_state=True)
    seq, (k_h1, k_c1), k_h2 = layer(x, initial_state=[_tensors([h1, c1]), tf.constant(h2)])
    ref_seq, ref_states = reference_forward(layer, x, [[h1, c1], h2])
    assert ref_seq.shape == (BATCH, TIMESTEPS, 3)
    _assert_close([seq, k_h1, k_c1, k_h2], [ref_seq, *ref_states])
    flat_seq, flat_states = reference_forward(layer, x, [h1, c1, h2])
    np.testing.assert_array_equal(flat_seq, ref_seq)
    assert len(flat_states) == len(ref_states) == 3
    for flat, nested in zip(flat_states, ref_states, strict=True):
        np.testing.assert_array_equal(flat, nested)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul"])
def test_bidirectional_lstm(K: ModuleType, merge_mode: str) -> None:
    x, states = _data(4)
    layer = K.layers.Bidirectional(
        K.layers.LSTM(UNITS, return_sequences=True, return_state=True), merge_mode=merge_mode
    )
    seq, *final = layer(x, initial_state=_tensors(states))
    ref_seq, ref_states = reference_forward(layer, x, states)
    width = 2 * UNITS if merge_mode == "concat" else UNITS
    assert ref_seq.shape == (BATCH, TIMESTEPS, width)
    _assert_close([seq, *final], [ref_seq, *ref_states])


def test_bidirectional_last_output_and_wrong_order(K: ModuleType) -> None:
    x, (fh, fc, bh, bc) = _data(4)
    layer = K.layers.Bidirectional(K.layers.LSTM(UNITS))
    out = np.asarray(layer(x, initial_state=_tensors([fh, fc, bh, bc])))
    seq, _ = reference_forward(layer, x, [fh, fc, bh, bc])
    last = np.concatenate([seq[:, -1, :UNITS], seq[:, 0, UNITS:]], axis=-1)
    np.testing.assert_allclose(out, last, atol=ATOL)
    wrong, _ = reference_forward(layer, x, [fh, bh, fc, bc])
    wrong_last = np.concatenate([wrong[:, -1, :UNITS], wrong[:, 0, UNITS:]], axis=-1)
    assert not np.allclose(out, wrong_last, atol=1e-3)


def test_bidirectional_gru_zero_state(K: ModuleType) -> None:
    x, _ = _data()
    layer = K.layers.Bidirectional(K.layers.GRU(UNITS, return_sequences=True, return_state=True))
    seq, fh, bh = layer(x)
    ref_seq, ref_states = reference_forward(layer, x)
    _assert_close([seq, fh, bh], [ref_seq, *ref_states])


def test_stateful_layer_starts_from_its_stored_state(K: ModuleType) -> None:
    x, _ = _data()
    layer = K.layers.LSTM(UNITS, stateful=True, return_state=True)
    first = layer(x)
    stored = [np.asarray(v).copy() for v in layer.states]
    _assert_close(first[1:], stored)
    _, ref_states = reference_forward(layer, x)  # continues from the stored state
    np.testing.assert_array_equal([np.asarray(v) for v in layer.states], stored)  # untouched
    second = layer(x)
    _assert_close(second[1:], ref_states)


# ----------------------------------------------------------------------------- errors


def test_unbuilt_layer(K: ModuleType) -> None:
    x, _ = _data()
    with pytest.raises(ValueError, match="not built"):
        reference_forward(K.layers.LSTM(UNITS), x)
    with pytest.raises(ValueError, match="not built"):
        reference_forward(K.layers.Bidirectional(K.layers.GRU(UNITS)), x)


def test_wrong_input(K: ModuleType) -> None:
    x, _ = _data()
    layer = K.layers.LSTM(UNITS)
    layer(x)
    with pytest.raises(ValueError, match=r"3-D \(batch, timesteps, features\), got shape \(2, 5\)"):
        reference_forward(layer, x[:, :, 0])
    with pytest.raises(ValueError, match="built for 3 input features; x has 2"):
        reference_forward(layer, x[:, :, :2])
    with pytest.raises(TypeError, match="expects a Keras recurrent layer.*got Dense"):
        reference_forward(K.layers.Dense(2), x)


def test_wrong_initial_state(K: ModuleType) -> None:
    x, (h0, c0) = _data(2)
    layer = K.layers.LSTM(UNITS)
    layer(x)
    with pytest.raises(ValueError, match="has 2 states; initial_state holds 1"):
        reference_forward(layer, x, [h0])
    with pytest.raises(
        ValueError, match=r"initial state c .* must have shape \(batch, units\) = \(2, 4\), got \(2, 3\)"
    ):
        reference_forward(layer, x, [h0, c0[:, :3]])
    with pytest.raises(ValueError, match=r"initial state h .* = \(2, 4\), got \(1, 4\)"):
        reference_forward(layer, x, [h0[:1], c0[:1]])
    gru = K.layers.GRU(UNITS)
    gru(x)
    with pytest.raises(ValueError, match="has 1 state; initial_state holds 2"):
        reference_forward(gru, x, [h0, c0])
    bi = K.layers.Bidirectional(K.layers.LSTM(UNITS))
    bi(x)
    with pytest.raises(ValueError, match="has 4 states; initial_state holds 2"):
        reference_forward(bi, x, [h0, c0])


def test_unsupported_options(K: ModuleType) -> None:
    x, _ = _data()
    relu = K.layers.LSTM(UNITS, activation="relu")
    relu(x)
    with pytest.raises(NotImplementedError, match="activation='tanh' only.*got 'relu'"):
        reference_forward(relu, x)
    hard = K.layers.GRU(UNITS, recurrent_activation="hard_sigmoid")
    hard(x)
    with pytest.raises(NotImplementedError, match="recurrent_activation='sigmoid'"):
        reference_forward(hard, x)
    split = K.layers.Bidirectional(K.layers.LSTM(UNITS), merge_mode=None)
    split(x)
    with pytest.raises(NotImplementedError, match="merge_mode"):
        reference_forward(split, x)

    class MyCell(K.layers.SimpleRNNCell):
        pass

    custom = K.layers.RNN(MyCell(UNITS))
    custom(x)
    with pytest.raises(NotImplementedError, match="has a MyCell"):
        reference_forward(custom, x)


def test_step_functions_check_shapes() -> None:
    x_t, h = np.ones((2, 3)), np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"kernel must have shape \(3, 16\).*got \(3, 12\)"):
        lstm_step(x_t, h, h, np.zeros((3, 12)), np.zeros((4, 16)))
    with pytest.raises(ValueError, match=r"c must have the shape of h"):
        lstm_step(x_t, h, h[:, :2], np.zeros((3, 16)), np.zeros((4, 16)))
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 12\)"):
        gru_step(x_t, h, np.zeros((3, 12)), np.zeros((4, 12)), np.zeros(12))
    with pytest.raises(ValueError, match=r"the state must have shape \(batch, units\) = \(2, 4\)"):
        simple_rnn_step(x_t, np.zeros((1, 4)), np.zeros((3, 4)), np.zeros((4, 4)))


def test_gru_step_reset_after_differs() -> None:
    rng = np.random.default_rng(0)
    x_t, h = rng.normal(size=(1, 2)), rng.normal(size=(1, 3))
    kernel, recurrent = rng.normal(size=(2, 9)), rng.normal(size=(3, 9))
    after = gru_step(x_t, h, kernel, recurrent, np.zeros((2, 9)), reset_after=True)
    before = gru_step(x_t, h, kernel, recurrent, np.zeros(9), reset_after=False)
    assert not np.allclose(after, before)


def test_non_numeric_input_is_a_type_error(K: ModuleType) -> None:
    x, _ = _data()
    layer = K.layers.LSTM(UNITS)
    layer(x)
    with pytest.raises(TypeError, match="x must be a numeric array or tensor, got str"):
        reference_forward(layer, "not an array")
    with pytest.raises(TypeError, match="initial_state entry must be a numeric array or tensor"):
        reference_forward(layer, x, [np.zeros((BATCH, UNITS)), "c"])


@pytest.mark.parametrize(
    "bad, match",
    [
        ([[1.0, 2.0], [3.0]], r"x_t must be a numeric array or tensor with one length per axis \(not a ragged list\)"),
        ("abc", r"x_t must be a numeric array or tensor, got str 'abc'"),
        (np.array([["a", "b"]]), r"x_t must be a numeric array or tensor, got dtype <U1"),
    ],
)
def test_step_functions_refuse_what_is_not_an_array_of_numbers(bad: object, match: str) -> None:
    kernel, recurrent = np.zeros((2, 8)), np.zeros((2, 8))
    with pytest.raises(TypeError, match=match):
        lstm_step(bad, np.zeros((1, 2)), np.zeros((1, 2)), kernel, recurrent, None)


def test_reference_forward_refuses_zero_time_steps(K: ModuleType) -> None:
    layer = K.layers.LSTM(UNITS)
    layer(np.zeros((BATCH, 2, 3), "float32"))
    with pytest.raises(ValueError, match=r"x has no time steps \(shape \(2, 0, 3\)\)"):
        reference_forward(layer, np.zeros((BATCH, 0, 3), "float32"))
