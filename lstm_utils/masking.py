"""Masks for padded sequences, and what keeps an LSTM or GRU off the fast cuDNN kernel.

Chapter 10, ``10_masking.ipynb``, explains both: in Keras 3 a functional model that passes
``initial_state`` to an RNN drops the mask of a ``Masking`` layer silently, so the mask must
be passed explicitly (``mask=padding_mask(x)``); and a masked RNN runs on cuDNN only if the
layer and the mask meet the conditions that :func:`cudnn_blockers` checks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lstm_utils._flavour import class_names, flavour_of, keras_module
from lstm_utils._layers import is_bidirectional

__all__ = ["padding_mask", "cudnn_blockers"]


def padding_mask(x: Any, value: float = 0.0) -> Any:
    """The mask that ``Masking(value)`` computes: True at steps where any feature differs from ``value``.

    Use it to pass a mask explicitly, ``lstm(x, initial_state=[h, c], mask=padding_mask(x))``,
    where Keras 3 would otherwise drop it (a functional call with ``initial_state``).

    See chapter 10, ``10_masking.ipynb``.

    Parameters
    ----------
    x : array-like or tensor
        Inputs of shape ``(batch, timesteps, features)``: a NumPy array (the mask is then a
        NumPy array), a tensor, a Keras 3 symbolic tensor (``keras.Input``; built with
        ``keras.ops``) or a Keras 2 symbolic tensor (``tf_keras.Input``; built with
        TensorFlow ops, which Keras 2 wraps into layers).
    value : float
        The padding value; a step is masked when all its features equal it.

    Returns
    -------
    array or tensor of bool
        Shape ``(batch, timesteps)``.

    Raises
    ------
    TypeError
        If ``value`` is not a number.
    ValueError
        If ``x`` does not have 3 dimensions, or ``value`` is NaN (NaN never equals itself,
        so nothing would be masked).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[1.0], [2.0], [0.0]], [[0.0], [0.0], [0.0]]])
    >>> padding_mask(x).tolist()
    [[True, True, False], [False, False, False]]
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"expected a number as the padding value, got {type(value).__name__} {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError("expected a padding value that can be compared, got NaN (NaN never equals itself)")
    shape = getattr(x, "shape", None)
    if shape is None or isinstance(x, (list, tuple)):
        x = np.asarray(x)
        shape = x.shape
    if not _is_numeric(getattr(x, "dtype", None)):
        raise TypeError(f"expected numeric inputs (batch, timesteps, features), got dtype {x.dtype}")
    if len(shape) != 3:
        raise ValueError(f"expected inputs of shape (batch, timesteps, features), got shape {tuple(shape)}")
    if isinstance(x, np.ndarray):
        return np.any(x != value, axis=-1)
    if flavour_of(x) == "keras2":
        import tensorflow as tf

        return tf.reduce_any(tf.not_equal(x, value), axis=-1)
    import keras

    return keras.ops.any(keras.ops.not_equal(x, value), axis=-1)


def _is_numeric(dtype: Any) -> bool:
    """True for a NumPy, TensorFlow or Keras dtype of numbers or booleans (not strings, not objects)."""
    dtype = getattr(dtype, "as_numpy_dtype", dtype)  # a TensorFlow dtype names its NumPy one
    try:
        return np.dtype(dtype).kind in "biuf"
    except TypeError:  # "string" and other names NumPy does not know
        return False


def _is(fn: Any, candidates: list[Any]) -> bool:
    return any(fn is candidate for candidate in candidates)


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _mask_problems(mask: Any) -> list[str]:
    array = np.asarray(mask.numpy() if hasattr(mask, "numpy") else mask)
    if array.ndim != 2:
        raise ValueError(f"expected a mask of shape (batch, timesteps), got shape {array.shape}")
    if array.dtype != bool:  # a float or string "mask" is a mix-up (inputs or weights), not a mask
        raise TypeError(
            f"expected a boolean mask of shape (batch, timesteps) (True for real steps), got dtype {array.dtype}; "
            "lstm_utils.padding_mask(x) makes one from padded inputs"
        )
    problems = []
    lengths = array.sum(axis=1)
    right_padded = np.arange(array.shape[1])[None, :] < lengths[:, None]
    not_right = np.flatnonzero(np.any(array != right_padded, axis=1))
    if not_right.size:
        problems.append(
            f"mask rows {not_right.tolist()} are not right-padded (real steps first, then padding): "
            "cuDNN takes sequence lengths, not masks"
        )
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        problems.append(f"mask rows {empty.tolist()} are fully masked (no real step)")
    return problems


def cudnn_blockers(layer: Any, mask: Any = None) -> list[str]:
    """Why an LSTM or GRU layer cannot use the cuDNN kernel on a GPU; empty if nothing stops it.

    The conditions are those of Keras 3's TensorFlow backend and of Keras 2 (``tf_keras``):
    an ``LSTM`` or ``GRU`` layer with ``activation="tanh"``, ``recurrent_activation="sigmoid"``,
    ``recurrent_dropout=0``, ``unroll=False`` and ``use_bias=True`` (a GRU also needs
    ``reset_after=True``; Keras 3 also needs ``use_cudnn`` left at ``"auto"`` or ``True``).
    With a ``mask``, every row must be right-padded (real steps first) and have at least
    one real step. The check reads the layer's settings only: whether a GPU is present is
    not part of it. A layer setting that fails means the generic kernel is used. A mask that
    breaks the rules makes Keras 2 route the batch to the generic kernel, while Keras 3 on
    TensorFlow checks the mask with an assertion in its cuDNN path (as the sources read;
    the book runs on a CPU and does not show the GPU side).

    See chapter 10, ``10_masking.ipynb``.

    Parameters
    ----------
    layer : keras.layers.Layer
        An ``LSTM`` or ``GRU`` layer (or a ``Bidirectional`` wrapper of one) of Keras 3 or
        Keras 2.
    mask : array-like of bool, optional
        A ``(batch, timesteps)`` mask, as :func:`padding_mask` returns.

    Returns
    -------
    list of str
        One sentence per condition that fails.

    Raises
    ------
    TypeError
        If ``layer`` is not a Keras layer.
    ValueError
        If ``mask`` does not have 2 dimensions.

    Examples
    --------
    >>> import keras, numpy as np
    >>> cudnn_blockers(keras.layers.LSTM(4))
    []
    >>> cudnn_blockers(keras.layers.LSTM(4, activation="relu", recurrent_dropout=0.1))
    ['activation is relu, cuDNN needs tanh', 'recurrent_dropout is 0.1, cuDNN needs 0']
    >>> cudnn_blockers(keras.layers.GRU(4), mask=np.array([[False, True, True]]))
    ['mask rows [0] are not right-padded (real steps first, then padding): cuDNN takes sequence lengths, not masks']
    """
    flavour = flavour_of(layer)
    if flavour is None:
        raise TypeError(f"expected a Keras LSTM or GRU layer, got {type(layer).__module__}.{type(layer).__name__}")
    mask_problems = _mask_problems(mask) if mask is not None else []
    if is_bidirectional(layer):
        layer = layer.forward_layer  # both directions share the settings that matter here
    kinds = class_names(layer)
    kind = "LSTM" if "LSTM" in kinds else "GRU" if "GRU" in kinds else None
    if kind is None:
        return [f"only LSTM and GRU layers have a cuDNN kernel, got {type(layer).__name__}", *mask_problems]

    import tensorflow as tf

    K = keras_module(flavour)
    tanh = [K.activations.tanh, tf.tanh, tf.math.tanh]
    sigmoid = [K.activations.sigmoid, tf.sigmoid, tf.math.sigmoid]
    if flavour == "keras3":
        tanh.append(K.ops.tanh)
        sigmoid.append(K.ops.sigmoid)
    cell = layer.cell
    problems = []
    if not _is(cell.activation, tanh):
        problems.append(f"activation is {_name(cell.activation)}, cuDNN needs tanh")
    if not _is(cell.recurrent_activation, sigmoid):
        problems.append(f"recurrent_activation is {_name(cell.recurrent_activation)}, cuDNN needs sigmoid")
    if cell.recurrent_dropout:
        problems.append(f"recurrent_dropout is {cell.recurrent_dropout}, cuDNN needs 0")
    if layer.unroll:
        problems.append("unroll is True, cuDNN needs False")
    if not cell.use_bias:
        problems.append("use_bias is False, cuDNN needs True")
    if kind == "GRU" and not cell.reset_after:
        problems.append("reset_after is False, cuDNN needs True (GRU)")
    if getattr(layer, "use_cudnn", "auto") is False:
        problems.append("use_cudnn is False")
    return problems + mask_problems
