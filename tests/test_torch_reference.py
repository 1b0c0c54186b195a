"""Tests for lstm_utils.torch_reference: PyTorch's LSTM/GRU/RNN with a Keras layer's weights."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lstm_utils.reference import reference_forward  # noqa: E402
from lstm_utils.torch_reference import torch_forward, torch_rnn_from_keras  # noqa: E402

BATCH, STEPS, FEATURES, UNITS = 3, 6, 4, 5
KINDS = ["LSTM", "GRU", "SimpleRNN"]
STATES = {"LSTM": 2, "GRU": 1, "SimpleRNN": 1}


def _layer(K: ModuleType, kind: str, seed: int, **options: Any) -> Any:
    layer = getattr(K.layers, kind)(UNITS, return_state=True, **options)
    layer(np.zeros((BATCH, STEPS, FEATURES), dtype="float32"))
    rng = np.random.default_rng(seed)
    for weight in layer.weights:  # random biases too, so that every mapped block matters
        weight.assign(rng.normal(scale=0.6, size=tuple(weight.shape)).astype("float32"))
    return layer


def _data(seed: int, states: int) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    return x, [rng.normal(size=(BATCH, UNITS)).astype("float32") for _ in range(states)]


def _keras_call(layer: Any, x: np.ndarray, h0: list[np.ndarray]) -> list[np.ndarray]:
    """``layer(x, initial_state=h0)`` as NumPy; tensors, since Keras 2 refuses NumPy initial states."""
    import tensorflow as tf

    return [np.asarray(t) for t in layer(tf.constant(x), initial_state=[tf.constant(s) for s in h0])]


@pytest.mark.parametrize("kind", KINDS)
def test_agrees_with_keras(K: ModuleType, kind: str) -> None:
    for seed, return_sequences in enumerate([True, False]):
        layer = _layer(K, kind, seed=seed, return_sequences=return_sequences)
        x, h0 = _data(10 + seed, STATES[kind])
        keras_out, *keras_states = _keras_call(layer, x, h0)
        outputs, states = torch_forward(layer, x, initial_state=h0)
        assert outputs.shape == (BATCH, STEPS, UNITS) and outputs.dtype == np.float64
        expected = outputs if return_sequences else outputs[:, -1]
        np.testing.assert_allclose(keras_out, expected, rtol=0, atol=1e-5)
        assert len(states) == STATES[kind]
        for keras_state, state in zip(keras_states, states, strict=True):
            assert state.shape == (BATCH, UNITS)
            np.testing.assert_allclose(keras_state, state, rtol=0, atol=1e-5)
        # float64 on both sides: torch and the package's NumPy reference agree to rounding.
        ref_outputs, ref_states = reference_forward(layer, x, initial_state=h0)
        np.testing.assert_allclose(ref_outputs, outputs, rtol=0, atol=1e-10)
        for ref_state, state in zip(ref_states, states, strict=True):
            np.testing.assert_allclose(ref_state, state, rtol=0, atol=1e-10)
        # The initial state mattered: from zeros the answer is different.
        zero_outputs, _ = torch_forward(layer, x)
        assert np.abs(zero_outputs - outputs).max() > 1e-2


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_agrees_with_keras(K: ModuleType, kind: str) -> None:
    per = STATES[kind]
    for seed, (merge_mode, return_sequences) in enumerate([("concat", True), ("sum", True), ("mul", False)]):
        recurrent = getattr(K.layers, kind)(UNITS, return_sequences=return_sequences, return_state=True)
        layer = K.layers.Bidirectional(recurrent, merge_mode=merge_mode)
        layer(np.zeros((BATCH, STEPS, FEATURES), dtype="float32"))
        rng = np.random.default_rng(seed)
        for weight in layer.weights:
            weight.assign(rng.normal(scale=0.6, size=tuple(weight.shape)).astype("float32"))
        x, h0 = _data(30 + seed, 2 * per)
        keras_out, *keras_states = _keras_call(layer, x, h0)
        outputs, states = torch_forward(layer, x, h0)
        width = 2 * UNITS if merge_mode == "concat" else UNITS
        assert outputs.shape == (BATCH, STEPS, width) and len(states) == 2 * per
        if return_sequences:
            np.testing.assert_allclose(keras_out, outputs, rtol=0, atol=1e-5)
        else:  # the merge of the two final h states
            np.testing.assert_allclose(keras_out, states[0] * states[per], rtol=0, atol=1e-5)
        for keras_state, state in zip(keras_states, states, strict=True):
            np.testing.assert_allclose(keras_state, state, rtol=0, atol=1e-5)
        ref_outputs, ref_states = reference_forward(layer, x, initial_state=h0)
        np.testing.assert_allclose(ref_outputs, outputs, rtol=0, atol=1e-10)
        np.testing.assert_allclose(np.stack(ref_states), np.stack(states), rtol=0, atol=1e-10)
    module = torch_rnn_from_keras(layer)
    assert module.bidirectional
    backward = np.asarray(layer.backward_layer.cell.recurrent_kernel)
    block = backward[:, UNITS : 2 * UNITS] if kind == "GRU" else backward[:, :UNITS]  # torch's first gate
    np.testing.assert_array_equal(module.weight_hh_l0_reverse.numpy()[:UNITS], block.T)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_go_backwards_and_no_bias(K: ModuleType, kind: str) -> None:
    layer = _layer(K, kind, seed=3, return_sequences=True, go_backwards=True, use_bias=False)
    x, h0 = _data(4, STATES[kind])
    keras_out, *keras_states = _keras_call(layer, x, h0)
    outputs, states = torch_forward(layer, x, h0)
    np.testing.assert_allclose(keras_out, outputs, rtol=0, atol=1e-5)
    for keras_state, state in zip(keras_states, states, strict=True):
        np.testing.assert_allclose(keras_state, state, rtol=0, atol=1e-5)


def test_torch_module_and_layer_untouched(K: ModuleType) -> None:
    layer = _layer(K, "GRU", seed=5, stateful=True)
    before = [np.array(w) for w in layer.get_weights()]
    module = torch_rnn_from_keras(layer)
    assert isinstance(module, torch.nn.GRU) and module.batch_first and not module.training
    assert module.weight_ih_l0.dtype == torch.float64
    assert torch_rnn_from_keras(layer, dtype="float32").weight_ih_l0.dtype == torch.float32
    # Keras z, r, h -> torch r, z, n: torch's first block is Keras's second.
    kernel = before[0]
    np.testing.assert_array_equal(module.weight_ih_l0.numpy()[:UNITS], kernel[:, UNITS : 2 * UNITS].T)
    for old, new in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    lstm = torch_rnn_from_keras(_layer(K, "LSTM", seed=6))
    assert isinstance(lstm, torch.nn.LSTM) and float(lstm.bias_hh_l0.abs().max()) == 0.0


def test_single_array_initial_state_for_one_state_layer(K: ModuleType) -> None:
    layer = _layer(K, "SimpleRNN", seed=7)
    x, (h0,) = _data(8, 1)
    a, sa = torch_forward(layer, x, [h0])
    b, sb = torch_forward(layer, x, h0)  # type: ignore[arg-type]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa[0], sb[0])


# ---- refused inputs ------------------------------------------------------------------


@pytest.mark.parametrize("module", ["keras", "tf_keras"])
def test_not_a_recurrent_layer(module: str) -> None:
    K = pytest.importorskip(module)

    dense = K.layers.Dense(2)
    with pytest.raises(TypeError, match="expects a Keras recurrent layer.*Dense layer"):
        torch_forward(dense, np.zeros((1, 1, 1)))
    with pytest.raises(TypeError, match="the class .*LSTM itself"):
        torch_rnn_from_keras(K.layers.LSTM)


def test_unbuilt_and_unmappable_layers(K: ModuleType) -> None:
    with pytest.raises(ValueError, match="is not built yet"):
        torch_forward(K.layers.LSTM(2), np.zeros((1, 2, 3)))
    x = np.zeros((BATCH, STEPS, FEATURES), dtype="float32")
    gru = K.layers.GRU(2, reset_after=False, name="old_gru")
    gru(x)
    with pytest.raises(ValueError, match="'old_gru' has reset_after=False.*torch.nn.GRU"):
        torch_rnn_from_keras(gru)
    both = K.layers.Bidirectional(K.layers.LSTM(2), merge_mode=None, name="both")
    both(x)
    with pytest.raises(ValueError, match="'both' has merge_mode=None.*forward_layer"):
        torch_forward(both, x)
    with pytest.raises(ValueError, match="is not built yet"):
        torch_forward(K.layers.Bidirectional(K.layers.GRU(2)), x)
    stacked = K.layers.RNN([K.layers.LSTMCell(2), K.layers.LSTMCell(2)])
    stacked(x)
    with pytest.raises(ValueError, match="stacked cells"):
        torch_forward(stacked, x)
    relu = K.layers.SimpleRNN(2, activation="relu")
    relu(x)
    with pytest.raises(ValueError, match="activation='relu'"):
        torch_forward(relu, x)
    hard = K.layers.LSTM(2, recurrent_activation="hard_sigmoid")
    hard(x)
    with pytest.raises(ValueError, match="recurrent_activation='hard_sigmoid'"):
        torch_forward(hard, x)
    lstm = _layer(K, "LSTM", seed=0)
    with pytest.raises(ValueError, match="dtype must be one of"):
        torch_rnn_from_keras(lstm, dtype="float16")


def test_bad_x_and_initial_state(K: ModuleType) -> None:
    layer = _layer(K, "LSTM", seed=0)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, timesteps, 4\).*got shape \(3, 6\)"):
        torch_forward(layer, np.zeros((BATCH, STEPS)))
    with pytest.raises(ValueError, match=r"got shape \(3, 6, 2\)"):
        torch_forward(layer, np.zeros((BATCH, STEPS, 2)))
    with pytest.raises(ValueError, match=r"got shape \(0, 6, 4\)"):
        torch_forward(layer, np.zeros((0, STEPS, FEATURES)))
    nan = np.zeros((BATCH, STEPS, FEATURES))
    nan[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="x holds 1 NaN or infinite values"):
        torch_forward(layer, nan)
    with pytest.raises(TypeError, match="x must be a numeric array"):
        torch_forward(layer, "abc")
    with pytest.raises(TypeError, match="x must be a numeric array"):
        torch_forward(layer, np.array([["a"]]))
    with pytest.raises(TypeError, match="one length per axis"):
        torch_forward(layer, [[[1.0, 2.0]], [[1.0]]])
    x, (h0, c0) = _data(1, 2)
    with pytest.raises(ValueError, match=r"must hold 2 arrays \['h', 'c'\].*got 1"):
        torch_forward(layer, x, [h0])
    with pytest.raises(TypeError, match="must be a list of 2 arrays"):
        torch_forward(layer, x, h0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"initial_state c must have shape \(3, 5\).*got \(2, 5\)"):
        torch_forward(layer, x, [h0, c0[:2]])
    bad = c0.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="initial_state c holds 1 NaN or infinite"):
        torch_forward(layer, x, [h0, bad])


def test_keras2_time_major_refused() -> None:
    import tf_keras

    layer = tf_keras.layers.LSTM(2, time_major=True, name="tm")
    layer(np.zeros((STEPS, BATCH, FEATURES), dtype="float32"))
    with pytest.raises(ValueError, match="'tm' has time_major=True"):
        torch_forward(layer, np.zeros((BATCH, STEPS, FEATURES)))


def test_importing_the_module_does_not_import_torch() -> None:
    heavy = "('torch', 'keras', 'tensorflow', 'tf_keras', 'jax')"
    code = f"import sys, lstm_utils.torch_reference; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"
