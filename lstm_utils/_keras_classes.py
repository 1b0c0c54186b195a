"""The one registry of classes that subclass a Keras base class, and how they are made.

A callback or layer must subclass ``keras.callbacks.Callback`` or ``tf_keras.callbacks.Callback``
(one or the other), so each such class exists twice: the Keras 3 one at
``lstm_utils.Name`` and its Keras 2 twin at ``lstm_utils.keras2.Name``. Both are made on
first use, by the factory named here, so that ``import lstm_utils`` imports no Keras.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

# Name -> (module, factory): the factory takes the Keras package and returns the class.
KERAS_CLASSES: dict[str, tuple[str, str]] = {
    "ResetStatesCallback": ("lstm_utils.callbacks", "reset_states_callback_class"),
    "TrainableInitialState": ("lstm_utils.layers", "trainable_initial_state_class"),
}
# Keras 3 only: they fix a Keras 3 behaviour (state variables that JAX's trainer never threads),
# so they have no Keras 2 twin; ``lstm_utils.keras2.StatefulLSTM`` is an AttributeError.
KERAS3_CLASSES: dict[str, tuple[str, str]] = {
    "StatefulLSTM": ("lstm_utils.tracked_state", "stateful_lstm_class"),
    "StatefulGRU": ("lstm_utils.tracked_state", "stateful_gru_class"),
}


def keras_class(name: str, package: Literal["keras", "tf_keras"], owner: str) -> type:
    """The class ``name`` made for ``package``; ``AttributeError`` (as from ``owner``) if there is none."""
    registry = {**KERAS_CLASSES, **KERAS3_CLASSES} if package == "keras" else KERAS_CLASSES
    try:
        module_name, factory_name = registry[name]
    except KeyError:
        raise AttributeError(f"module {owner!r} has no attribute {name!r}") from None
    factory = getattr(importlib.import_module(module_name), factory_name)
    cls: type = factory(importlib.import_module(package))
    return cls


def module_hooks(
    namespace: dict[str, Any], package: Literal["keras", "tf_keras"]
) -> tuple[Callable[[str], type], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``lstm_utils`` (package ``keras``) or ``lstm_utils.keras2`` (``tf_keras``).

    ``__getattr__`` makes a Keras class on first use and keeps it in the module; ``__dir__``
    lists the public names (``__all__``) and submodules, not the helpers imported to build them.
    """
    owner = namespace["__name__"]

    def module_getattr(name: str) -> type:
        cls = keras_class(name, package, owner)
        namespace[name] = cls
        return cls

    def module_dir() -> list[str]:
        modules = {n for n, v in namespace.items() if isinstance(v, ModuleType) and not n.startswith("_")}
        extras = {"__version__"} if "__version__" in namespace else set()
        return sorted({*namespace["__all__"], *modules, *extras})

    return module_getattr, module_dir
