"""The one place that tells Keras 3 objects from Keras 2 (``tf_keras``) objects.

Every other module asks this one, so that version checks are not scattered through
the package. Nothing here imports Keras: an object's own classes say where it came from.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Literal

import numpy as np

Flavour = Literal["keras3", "keras2"]

__all__ = ["Flavour", "class_names", "flavour_of", "keras_module", "to_numpy", "is_variable"]


def class_names(obj: Any) -> set[str]:
    """The names of every class in ``type(obj).__mro__``: how layer kinds are recognised.

    Names rather than ``isinstance`` checks, so that one test covers Keras 3 and Keras 2
    classes alike without importing either package.

    Examples
    --------
    >>> sorted(class_names(True))
    ['bool', 'int', 'object']
    """
    return {cls.__name__ for cls in type(obj).__mro__}


def flavour_of(obj: Any) -> Flavour | None:
    """Return ``"keras3"`` or ``"keras2"`` for a Keras layer, model or variable, else ``None``.

    Examples
    --------
    >>> import keras
    >>> flavour_of(keras.layers.LSTM(2))
    'keras3'
    >>> flavour_of(3) is None
    True
    """
    for cls in type(obj).__mro__:
        module = cls.__module__ or ""
        if module == "tf_keras" or module.startswith("tf_keras."):
            return "keras2"
        if module == "keras" or module.startswith("keras."):
            return "keras3"
    return None


def keras_module(flavour: Flavour) -> ModuleType:
    """The top-level package of a flavour: ``keras`` for Keras 3, ``tf_keras`` for Keras 2.

    Examples
    --------
    >>> keras_module("keras3").__name__
    'keras'
    """
    return importlib.import_module("keras" if flavour == "keras3" else "tf_keras")


def is_variable(value: Any) -> bool:
    """True for a Keras 3 ``keras.Variable`` or a TensorFlow ``tf.Variable`` (Keras 2 state).

    Examples
    --------
    >>> import keras, numpy as np
    >>> is_variable(keras.Variable(np.zeros(2))), is_variable(np.zeros(2))
    (True, False)
    """
    for cls in type(value).__mro__:
        if (cls.__module__, cls.__name__) in {
            ("keras.src.backend.common.variables", "Variable"),
            ("tensorflow.python.ops.variables", "Variable"),
        }:
            return True
    return False


def to_numpy(value: Any) -> np.ndarray:
    """A NumPy copy of an array, a tensor (TensorFlow, JAX) or a Keras/TensorFlow variable.

    Examples
    --------
    >>> import tensorflow as tf
    >>> to_numpy(tf.ones((1, 2))).tolist()
    [[1.0, 1.0]]
    """
    if hasattr(value, "numpy") and callable(value.numpy):
        return np.array(value.numpy(), copy=True)
    if hasattr(value, "value") and flavour_of(value) == "keras3":
        value = value.value  # a keras.Variable on any backend: read its backend tensor
    return np.array(value, copy=True)
