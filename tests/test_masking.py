"""Tests of lstm_utils.masking (padding_mask, cudnn_blockers), on Keras 3 and Keras 2."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

import lstm_utils
from lstm_utils._flavour import to_numpy


@pytest.fixture
def padded() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.random((4, 6, 2)).astype("float32") + 0.1
    x[0] = 0.0  # fully masked
    x[1, 4:] = 0.0  # post-padded
    x[2, :2] = 0.0  # pre-padded
    x[3, 3, 0] = 0.0  # one zero feature is not padding
    return x


EXPECTED = [[0] * 6, [1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1], [1] * 6]


def test_padding_mask_numpy(padded: np.ndarray) -> None:
    mask = lstm_utils.padding_mask(padded)
    assert isinstance(mask, np.ndarray) and mask.dtype == bool
    assert mask.astype(int).tolist() == EXPECTED
    assert lstm_utils.padding_mask(padded.tolist()).astype(int).tolist() == EXPECTED
    x = padded.copy()
    x[1, 4:] = -1.0
    assert lstm_utils.padding_mask(x, value=-1).astype(int).tolist()[1] == EXPECTED[1]


def test_padding_mask_matches_masking_layer(K: ModuleType, padded: np.ndarray) -> None:
    import tensorflow as tf

    expected = to_numpy(K.layers.Masking(0.0).compute_mask(tf.constant(padded)))
    assert np.array_equal(lstm_utils.padding_mask(padded), expected)
    assert np.array_equal(to_numpy(lstm_utils.padding_mask(tf.constant(padded))), expected)


def test_padding_mask_symbolic_restores_the_mask_with_initial_state(K: ModuleType, padded: np.ndarray) -> None:
    units = 3
    x_in, h_in, c_in = K.Input((6, 2)), K.Input((units,)), K.Input((units,))
    lstm = K.layers.LSTM(units, return_state=True)
    masked = K.layers.Masking(0.0)(x_in)
    outputs = lstm(masked, initial_state=[h_in, c_in], mask=lstm_utils.padding_mask(x_in))
    model = K.Model([x_in, h_in, c_in], list(outputs))
    rng = np.random.default_rng(1)
    h0, c0 = (rng.normal(size=(4, units)).astype("float32") for _ in range(2))
    _, h, c = model.predict([padded, h0, c0], verbose=0)
    np.testing.assert_allclose(h[0], h0[0], atol=1e-6)  # the fully masked row keeps its initial state
    np.testing.assert_allclose(c[0], c0[0], atol=1e-6)


def test_padding_mask_bad_input() -> None:
    with pytest.raises(
        ValueError, match=r"expected inputs of shape \(batch, timesteps, features\), got shape \(2, 3\)"
    ):
        lstm_utils.padding_mask(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="got NaN"):
        lstm_utils.padding_mask(np.zeros((1, 2, 3)), value=float("nan"))
    with pytest.raises(TypeError, match="expected a number as the padding value, got str"):
        lstm_utils.padding_mask(np.zeros((1, 2, 3)), value="0")


def test_cudnn_blockers_default_layers_qualify(K: ModuleType) -> None:
    assert lstm_utils.cudnn_blockers(K.layers.LSTM(4)) == []
    assert lstm_utils.cudnn_blockers(K.layers.GRU(4)) == []
    assert lstm_utils.cudnn_blockers(K.layers.Bidirectional(K.layers.LSTM(4))) == []
    assert lstm_utils.cudnn_blockers(K.layers.LSTM(4, activation="tanh", recurrent_activation="sigmoid")) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(activation="relu"), "activation is relu, cuDNN needs tanh"),
        (dict(recurrent_activation="hard_sigmoid"), "recurrent_activation is hard_sigmoid, cuDNN needs sigmoid"),
        (dict(recurrent_dropout=0.2), "recurrent_dropout is 0.2, cuDNN needs 0"),
        (dict(unroll=True), "unroll is True, cuDNN needs False"),
        (dict(use_bias=False), "use_bias is False, cuDNN needs True"),
    ],
)
def test_cudnn_blockers_each_condition(K: ModuleType, kwargs: dict, message: str) -> None:
    for rnn in (K.layers.LSTM, K.layers.GRU):
        layer = rnn(4, **kwargs)
        assert lstm_utils.cudnn_blockers(layer) == [message]
    if K.__name__ == "tf_keras":  # Keras 2 decides the same thing in a private attribute
        assert K.layers.LSTM(4, **kwargs)._could_use_gpu_kernel is False
        assert K.layers.LSTM(4)._could_use_gpu_kernel is True


def test_cudnn_blockers_gru_reset_after_and_use_cudnn(K: ModuleType) -> None:
    assert lstm_utils.cudnn_blockers(K.layers.GRU(4, reset_after=False)) == [
        "reset_after is False, cuDNN needs True (GRU)"
    ]
    if K.__name__ == "keras":
        assert lstm_utils.cudnn_blockers(K.layers.LSTM(4, use_cudnn=False)) == ["use_cudnn is False"]
        assert lstm_utils.cudnn_blockers(K.layers.LSTM(4, use_cudnn=True)) == []


def test_cudnn_blockers_other_layers(K: ModuleType) -> None:
    assert lstm_utils.cudnn_blockers(K.layers.SimpleRNN(4)) == [
        "only LSTM and GRU layers have a cuDNN kernel, got SimpleRNN"
    ]
    assert lstm_utils.cudnn_blockers(K.layers.RNN(K.layers.LSTMCell(4))) == [
        "only LSTM and GRU layers have a cuDNN kernel, got RNN"
    ]
    assert lstm_utils.cudnn_blockers(K.layers.Bidirectional(K.layers.GRU(4, unroll=True))) == [
        "unroll is True, cuDNN needs False"
    ]


def test_cudnn_blockers_masks(K: ModuleType, padded: np.ndarray) -> None:
    layer = K.layers.LSTM(4)
    mask = lstm_utils.padding_mask(padded)
    assert lstm_utils.cudnn_blockers(layer, mask=mask[[1, 3]]) == []  # right-padded and full rows
    assert lstm_utils.cudnn_blockers(layer, mask=mask) == [
        "mask rows [2] are not right-padded (real steps first, then padding): cuDNN takes sequence lengths, not masks",
        "mask rows [0] are fully masked (no real step)",
    ]
    holes = np.array([[True, False, True, False]])
    assert "mask rows [0] are not right-padded" in lstm_utils.cudnn_blockers(layer, mask=holes)[0]


def test_cudnn_blockers_bad_input(K: ModuleType) -> None:
    with pytest.raises(TypeError, match=r"expected a Keras LSTM or GRU layer, got builtins.str"):
        lstm_utils.cudnn_blockers("lstm")
    with pytest.raises(ValueError, match=r"expected a mask of shape \(batch, timesteps\), got shape \(4,\)"):
        lstm_utils.cudnn_blockers(K.layers.LSTM(2), mask=np.ones(4, bool))


@pytest.mark.parametrize("make", [lambda: np.full((1, 2, 1), "a"), lambda: np.array([[[None]]], dtype=object)])
def test_padding_mask_refuses_inputs_that_are_not_numbers(make) -> None:
    with pytest.raises(TypeError, match="expected numeric inputs"):
        lstm_utils.padding_mask(make())


def test_padding_mask_refuses_string_tensors() -> None:
    import tensorflow as tf

    with pytest.raises(TypeError, match="expected numeric inputs.*string"):
        lstm_utils.padding_mask(tf.constant([[["a"]]]))


@pytest.mark.parametrize("mask", [np.ones((2, 3), "float32"), np.full((2, 3), "1")])
def test_cudnn_blockers_refuses_a_mask_that_is_not_boolean(K: ModuleType, mask: np.ndarray) -> None:
    with pytest.raises(TypeError, match=r"expected a boolean mask of shape \(batch, timesteps\).*padding_mask"):
        lstm_utils.cudnn_blockers(K.layers.LSTM(4), mask=mask)
