"""The one registry of classes that subclass a Keras base class, and how they are made.

A callback or layer must subclass ``keras.callbacks.Callback`` or ``tf_keras.callbacks.Callback``
(one or the other), so each such class exists twice: the Keras 3 one at
``lstm_utils.Name`` and its Keras 2 twin at ``lstm_utils.keras2.Name``. Both are made on
first use, by the factory named here, so that ``import lstm_utils`` imports no Keras.
"""

from __future__ import annotations

import importlib
from typing import Literal

# Name -> (module, factory): the factory takes the Keras package and returns the class.
KERAS_CLASSES: dict[str, tuple[str, str]] = {
    "ResetStatesCallback": ("lstm_utils.callbacks", "reset_states_callback_class"),
    "TrainableInitialState": ("lstm_utils.layers", "trainable_initial_state_class"),
}


def keras_class(name: str, package: Literal["keras", "tf_keras"], owner: str) -> type:
    """The class ``name`` made for ``package``; ``AttributeError`` (as from ``owner``) if there is none."""
    try:
        module_name, factory_name = KERAS_CLASSES[name]
    except KeyError:
        raise AttributeError(f"module {owner!r} has no attribute {name!r}") from None
    factory = getattr(importlib.import_module(module_name), factory_name)
    cls: type = factory(importlib.import_module(package))
    return cls
