"""Keras callbacks for stateful recurrent models, in a Keras 3 and a Keras 2 version.

``lstm_utils.ResetStatesCallback`` is a ``keras.callbacks.Callback`` (Keras 3);
``lstm_utils.keras2.ResetStatesCallback`` is its ``tf_keras`` twin, with the same
behaviour, which :class:`ResetStatesLogic` holds. Chapter 5, ``05_stateful_training.ipynb``,
explains when to use them.
"""

from __future__ import annotations

import functools
import types
from typing import TYPE_CHECKING, Any

from lstm_utils._flavour import flavour_of
from lstm_utils._layers import stateful_layers
from lstm_utils.states import reset_states

__all__ = ["ResetStatesLogic", "reset_states_callback_class"]

if TYPE_CHECKING:  # the logic is mixed into a Keras Callback, whose attributes the type checker cannot see
    _CallbackBase = Any
else:
    _CallbackBase = object


_VERSION_NAMES = {"keras3": "Keras 3 (keras)", "keras2": "Keras 2 (tf_keras)"}


class ResetStatesLogic(_CallbackBase):  # type: ignore[misc]  # a mixin for a Keras class
    """Zero every stateful recurrent layer of the model at the start of each epoch.

    A stateful model carries its state from batch to batch, and from the last batch of
    one epoch into the first batch of the next, where it does not belong: epoch ``e + 1``
    starts the same sequences again from their beginning. This callback zeros every
    stateful recurrent layer of the model (with :func:`lstm_utils.reset_states`) at the
    start of each epoch, so that every epoch starts from zero state as the first one did.
    Keras 2's ``Model.reset_states()`` does not exist in Keras 3; this works in both. At
    the start of training it checks that the model has a stateful layer, and raises
    ``ValueError`` if it has none.

    Validation (``validation_data``) runs through the same layers after each epoch's
    training and starts from the state training left; reset before ``evaluate`` or
    ``predict`` on other sequences yourself.

    Use ``lstm_utils.ResetStatesCallback()`` with a Keras 3 model and
    ``lstm_utils.keras2.ResetStatesCallback()`` with a Keras 2 (``tf_keras``) model; this
    class holds their shared behaviour.

    See chapter 5, ``05_stateful_training.ipynb``.

    Examples
    --------
    >>> import keras, numpy as np, lstm_utils
    >>> model = keras.Sequential([keras.Input(batch_shape=(2, 3, 1)),
    ...                           keras.layers.LSTM(4, stateful=True), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> history = model.fit(np.ones((4, 3, 1)), np.ones((4, 1)), batch_size=2, epochs=2,
    ...                     shuffle=False, verbose=0,
    ...                     callbacks=[lstm_utils.ResetStatesCallback()])
    """

    def set_model(self, model: Any) -> None:
        mine, theirs = flavour_of(self), flavour_of(model)
        if theirs is not None and mine != theirs:
            other = "lstm_utils.keras2.ResetStatesCallback" if theirs == "keras2" else "lstm_utils.ResetStatesCallback"
            raise TypeError(
                f"this ResetStatesCallback is for {_VERSION_NAMES[str(mine)]} models, but model "
                f"{model.name!r} is a {_VERSION_NAMES[theirs]} model: use {other}()"
            )
        super().set_model(model)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if not stateful_layers(self.model):
            raise ValueError(
                f"ResetStatesCallback: model {self.model.name!r} holds no stateful recurrent "
                "layer, so there is no state to reset. Remove the callback, or build the "
                "recurrent layers with stateful=True."
            )

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        reset_states(self.model)


@functools.cache
def reset_states_callback_class(K: types.ModuleType) -> type:
    """``ResetStatesCallback`` for the Keras package ``K`` (``keras`` or ``tf_keras``).

    :class:`ResetStatesLogic` mixed into ``K.callbacks.Callback``, made once per package.
    ``lstm_utils.ResetStatesCallback`` and ``lstm_utils.keras2.ResetStatesCallback`` are
    the two results.

    Parameters
    ----------
    K : module
        ``keras`` (Keras 3) or ``tf_keras`` (Keras 2).

    Returns
    -------
    type
        A subclass of ``K.callbacks.Callback``.

    Examples
    --------
    >>> import tf_keras
    >>> cls = reset_states_callback_class(tf_keras)
    >>> cls.__name__, issubclass(cls, tf_keras.callbacks.Callback)
    ('ResetStatesCallback', True)
    """
    return types.new_class(
        "ResetStatesCallback",
        (ResetStatesLogic, K.callbacks.Callback),
        exec_body=lambda namespace: namespace.update(__module__=__name__, __doc__=ResetStatesLogic.__doc__),
    )
