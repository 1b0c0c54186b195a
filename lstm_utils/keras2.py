"""Keras 2 (``tf_keras``) twins of the classes that subclass a Keras base class.

``lstm_utils.keras2.ResetStatesCallback`` is a ``tf_keras.callbacks.Callback`` that
behaves exactly like ``lstm_utils.ResetStatesCallback`` (a Keras 3 callback); the same
holds for ``TrainableInitialState``. Both come from the registry in
``lstm_utils._keras_classes``, made on first use. Functions need no twins:
``lstm_utils.get_states`` and friends accept layers of either version.

Examples
--------
>>> import lstm_utils.keras2
>>> lstm_utils.keras2.ResetStatesCallback.__mro__[2].__module__.split(".")[0]
'tf_keras'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lstm_utils._keras_classes import module_hooks

__all__ = ["ResetStatesCallback", "TrainableInitialState"]  # the names in KERAS_CLASSES (tested)

if TYPE_CHECKING:
    ResetStatesCallback: Any
    TrainableInitialState: Any
else:  # only the Keras subclasses load lazily; every other public name is a plain import
    __getattr__, __dir__ = module_hooks(globals(), "tf_keras")
