"""Tests of lstm_utils.callbacks (ResetStatesCallback and its Keras 2 twin)."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

import lstm_utils
import lstm_utils.keras2


def _callback_class(K: ModuleType) -> type:
    return lstm_utils.ResetStatesCallback if K.__name__ == "keras" else lstm_utils.keras2.ResetStatesCallback


def test_twins_subclass_their_own_keras(K: ModuleType) -> None:
    cls = _callback_class(K)
    assert cls.__name__ == "ResetStatesCallback"
    assert issubclass(cls, K.callbacks.Callback)
    assert issubclass(cls, lstm_utils.callbacks.ResetStatesLogic)
    assert lstm_utils.callbacks.reset_states_callback_class(K) is cls, "one class per Keras package"


class _Recorder:
    """Records the stateful layer's h state at the start of each epoch (after other callbacks)."""

    def __init__(self, K: ModuleType, layer) -> None:
        outer = self

        class Recorder(K.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                outer.starts.append(lstm_utils.get_states(layer)[0].copy())

        self.starts: list[np.ndarray] = []
        self.callback = Recorder()


def _model(K: ModuleType):
    model = K.Sequential(
        [K.Input(batch_shape=(2, 3, 1)), K.layers.LSTM(4, stateful=True, name="lstm"), K.layers.Dense(1)]
    )
    model.compile("sgd", "mse")
    return model


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((4, 3, 1)).astype("float32"), rng.random((4, 1)).astype("float32")


@pytest.mark.parametrize("with_callback", [True, False])
def test_resets_at_each_epoch(K: ModuleType, with_callback: bool) -> None:
    model = _model(K)
    recorder = _Recorder(K, model.get_layer("lstm"))
    callbacks = ([_callback_class(K)()] if with_callback else []) + [recorder.callback]
    model.fit(*_data(), batch_size=2, epochs=3, shuffle=False, verbose=0, callbacks=callbacks)
    zero_starts = [not np.any(start) for start in recorder.starts]
    # without the callback, epochs 2 and 3 start from the state epoch 1 left behind
    assert zero_starts == ([True, True, True] if with_callback else [True, False, False])


def test_no_stateful_layer_is_an_error(K: ModuleType) -> None:
    model = K.Sequential([K.Input((3, 1)), K.layers.LSTM(4), K.layers.Dense(1)])
    model.compile("sgd", "mse")
    weights = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="holds no stateful recurrent layer"):
        model.fit(*_data(), epochs=1, verbose=0, callbacks=[_callback_class(K)()])
    for a, b in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(a, b)  # raised before any training step


def test_a_twin_used_with_the_other_keras_says_which_to_use() -> None:
    import keras
    import tf_keras

    for K, wrong, right in (
        (tf_keras, lstm_utils.ResetStatesCallback, "lstm_utils.keras2.ResetStatesCallback"),
        (keras, lstm_utils.keras2.ResetStatesCallback, "lstm_utils.ResetStatesCallback"),
    ):
        model = K.Sequential([K.Input(batch_shape=(2, 3, 1)), K.layers.LSTM(2, stateful=True)])
        model.compile("sgd", "mse")
        with pytest.raises(TypeError, match=rf"is a Keras [23] \(\w+\) model: use {right}\(\)"):
            model.fit(np.ones((4, 3, 1)), np.ones((4, 2)), batch_size=2, verbose=0, callbacks=[wrong()])
