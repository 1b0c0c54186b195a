"""Keras 2 (``tf_keras``) twins of the classes that subclass a Keras base class.

``lstm_utils.keras2.ResetStatesCallback`` is a ``tf_keras.callbacks.Callback`` that
behaves exactly like ``lstm_utils.ResetStatesCallback`` (a Keras 3 callback); the same
holds for every class listed in a module's ``KERAS_CLASSES``. Functions need no twins:
``lstm_utils.get_states`` and friends accept layers of either version.

Examples
--------
>>> import lstm_utils.keras2
>>> lstm_utils.keras2.ResetStatesCallback.__mro__[1].__module__.split(".")[0]
'tf_keras'
"""

from __future__ import annotations

import importlib
from typing import Any

from lstm_utils import _MODULES


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    for module_name in _MODULES:
        try:
            module = importlib.import_module(f"lstm_utils.{module_name}")
        except ModuleNotFoundError as error:
            if error.name == f"lstm_utils.{module_name}":
                continue
            raise
        except Exception as error:  # keep a broken module from looking like a missing name
            raise ImportError(f"lstm_utils.{module_name} failed to import: {error!r}") from error
        factory = getattr(module, "KERAS_CLASSES", {}).get(name)
        if factory is not None:
            cls = factory(importlib.import_module("tf_keras"))
            globals()[name] = cls
            return cls
    raise AttributeError(f"module 'lstm_utils.keras2' has no attribute {name!r}")
