"""Keras callbacks for stateful recurrent models, in a Keras 3 and a Keras 2 version.

``lstm_utils.ResetStatesCallback`` is a ``keras.callbacks.Callback`` (Keras 3);
``lstm_utils.keras2.ResetStatesCallback`` is its ``tf_keras`` twin, with the same
behaviour. Chapter 5, ``05_stateful_training.ipynb``, explains when to use them.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

__all__: list[str] = []


@functools.cache
def make_reset_states_callback(K: ModuleType) -> type:
    """Define ``ResetStatesCallback`` on ``K.callbacks.Callback`` (``K`` is ``keras`` or ``tf_keras``).

    A stateful model carries its state from batch to batch, and from the last batch of
    one epoch into the first batch of the next, where it does not belong: epoch ``e + 1``
    starts the same sequences again from their beginning. ``ResetStatesCallback`` zeros
    every stateful recurrent layer of the model (with :func:`lstm_utils.reset_states`)
    at the start of each epoch, so that every epoch starts from zero state as the first
    one did. Keras 2's ``Model.reset_states()`` does not exist in Keras 3; this works in
    both. At the start of training it checks that the model has a stateful layer, and
    raises ``ValueError`` if it has none.

    Validation (``validation_data``) runs through the same layers after each epoch's
    training and starts from the state training left; reset before ``evaluate`` or
    ``predict`` on other sequences yourself.

    Use ``lstm_utils.ResetStatesCallback()`` with a Keras 3 model and
    ``lstm_utils.keras2.ResetStatesCallback()`` with a Keras 2 (``tf_keras``) model.

    See chapter 5, ``05_stateful_training.ipynb``.

    Parameters
    ----------
    K : module
        ``keras`` (Keras 3) or ``tf_keras`` (Keras 2).

    Returns
    -------
    type
        The ``ResetStatesCallback`` class for that Keras version.

    Examples
    --------
    >>> import keras, numpy as np, lstm_utils
    >>> model = keras.Sequential([keras.Input(batch_shape=(2, 3, 1)),
    ...                           keras.layers.LSTM(4, stateful=True), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> history = model.fit(np.ones((4, 3, 1)), np.ones((4, 1)), batch_size=2, epochs=2,
    ...                     shuffle=False, verbose=0,
    ...                     callbacks=[lstm_utils.ResetStatesCallback()])
    >>> lstm_utils.ResetStatesCallback.__mro__[1] is keras.callbacks.Callback
    True
    """
    from lstm_utils.states import reset_states, stateful_layers

    class ResetStatesCallback(K.callbacks.Callback):  # type: ignore[name-defined,misc]
        """Zero every stateful recurrent layer of the model at the start of each epoch.

        Raises ``ValueError`` when training starts if the model has no stateful
        recurrent layer. See :func:`lstm_utils.callbacks.make_reset_states_callback`
        and chapter 5, ``05_stateful_training.ipynb``.

        Examples
        --------
        With Keras 3 (with Keras 2, ``tf_keras`` and ``lstm_utils.keras2.ResetStatesCallback``;
        the factory's docstring holds the tested example):

        >>> model.fit(x, y, batch_size=2, shuffle=False,
        ...           callbacks=[lstm_utils.ResetStatesCallback()])  # doctest: +SKIP
        """

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            if not stateful_layers(self.model):
                raise ValueError(
                    f"ResetStatesCallback: model {self.model.name!r} holds no stateful recurrent "
                    "layer, so there is no state to reset. Remove the callback, or build the "
                    "recurrent layers with stateful=True."
                )

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            reset_states(self.model)

    ResetStatesCallback.__module__ = __name__
    ResetStatesCallback.__qualname__ = "ResetStatesCallback"
    return ResetStatesCallback


KERAS_CLASSES = {"ResetStatesCallback": make_reset_states_callback}
