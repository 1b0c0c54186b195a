"""lstm_utils: read, set and manage LSTM/GRU state in Keras 3 and Keras 2.

The helper package of the LSTM State Book. Functions work on layers and models of
either Keras version (``keras`` / ``tf.keras`` for Keras 3, ``tf_keras`` for Keras 2).
Classes that must subclass a Keras base class come in two twins: the Keras 3 class
here (``lstm_utils.ResetStatesCallback``) and the Keras 2 one in ``lstm_utils.keras2``.

Importing this package does not import TensorFlow or Keras; each name is loaded from
its module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

# Modules whose ``__all__`` names are exported here. A module that defines Keras
# subclasses lists factories in ``KERAS_CLASSES`` ({class name: factory(keras module)}).
_MODULES = (
    "states",
    "reference",
    "initial_state",
    "stateful",
    "callbacks",
    "diagnostics",
    "layers",
    "persistence",
    "masking",
    "repro",
    "display",
)


def _load(name: str) -> Any:
    for module_name in _MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as error:
            if error.name == f"{__name__}.{module_name}":
                continue  # a module planned for a later chapter
            raise
        except Exception as error:  # keep a broken module from looking like a missing name
            raise ImportError(f"lstm_utils.{module_name} failed to import: {error!r}") from error
        if name in getattr(module, "__all__", ()):
            return getattr(module, name)
        factory = getattr(module, "KERAS_CLASSES", {}).get(name)
        if factory is not None:
            return factory(importlib.import_module("keras"))
    raise AttributeError(f"module 'lstm_utils' has no attribute {name!r}")


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    value = _load(name)
    globals()[name] = value
    return value
