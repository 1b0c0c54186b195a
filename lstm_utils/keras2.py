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

from types import ModuleType
from typing import TYPE_CHECKING, Any

from lstm_utils._keras_classes import KERAS_CLASSES, keras_class

__all__ = ["ResetStatesCallback", "TrainableInitialState"]  # the names in KERAS_CLASSES (tested)

if TYPE_CHECKING:
    ResetStatesCallback: Any
    TrainableInitialState: Any
else:

    def __getattr__(name: str) -> type:
        if name not in KERAS_CLASSES:
            raise AttributeError(f"module 'lstm_utils.keras2' has no attribute {name!r}")
        cls = keras_class(name, "tf_keras", "lstm_utils.keras2")
        globals()[name] = cls
        return cls


def __dir__() -> list[str]:
    # The public names and the submodules, not the helpers imported to build them.
    modules = {name for name, value in globals().items() if isinstance(value, ModuleType) and not name.startswith("_")}
    return sorted({*__all__, *modules})
