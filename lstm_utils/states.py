"""Read, set and reset the state of stateful recurrent layers, in Keras 3 and Keras 2.

A stateful recurrent layer keeps its state in variables (``layer.states``). These
functions copy values out of them and assign values into them, in place: they never
replace the variables themselves, because a model that has already run keeps using the
variables it was traced with (chapter 6, ``06_list_replacement.ipynb``, shows what goes
wrong otherwise). Chapter 4, ``04_numeric_state.ipynb``, explains them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lstm_utils._flavour import class_names as _class_names, flavour_of, is_variable, to_numpy

__all__ = ["get_states", "set_states", "reset_states", "stateful_layers", "state_variables", "state_names"]

_RECURRENT_BASES = {"RNN", "Bidirectional"}


def _is_bidirectional(layer: Any) -> bool:
    return "Bidirectional" in _class_names(layer)


def _is_recurrent(layer: Any) -> bool:
    return flavour_of(layer) is not None and bool(_RECURRENT_BASES & _class_names(layer))


def _describe(obj: Any) -> str:
    name = getattr(obj, "name", None)
    kind = type(obj).__name__
    return f"{kind} layer {name!r}" if name else f"{type(obj).__module__}.{kind}"


def _require_recurrent(layer: Any) -> None:
    if not _is_recurrent(layer):
        raise TypeError(
            "expected a Keras recurrent layer (LSTM, GRU, SimpleRNN, RNN(cell) or "
            f"Bidirectional) from keras/tf.keras or tf_keras, got {_describe(layer)}"
        )


def _cell_state_names(cell: Any) -> list[str]:
    """Names of one cell's states in Keras order, e.g. ``["h", "c"]`` for an LSTM cell."""
    cells = getattr(cell, "cells", None)
    if cells is not None:  # StackedRNNCells: each cell's states in turn
        return [f"cell {i} {name}" for i, sub in enumerate(cells) for name in _cell_state_names(sub)]
    size = getattr(cell, "state_size", None)
    count = len(size) if isinstance(size, (list, tuple)) else 1
    return ["h", "c"][:count] if count <= 2 else [f"state {i}" for i in range(count)]


def _flatten(states: Any) -> list[Any]:
    if isinstance(states, (list, tuple)) or type(states).__name__ == "ListWrapper":
        return [leaf for item in states for leaf in _flatten(item)]
    return [states]


def _parts(layer: Any) -> list[tuple[str, Any]]:
    """The plain RNN layers that hold a layer's state, with the prefix of their state names."""
    if _is_bidirectional(layer):
        return [("forward ", layer.forward_layer), ("backward ", layer.backward_layer)]
    return [("", layer)]


def _check_stateful_and_built(layer: Any) -> None:
    _require_recurrent(layer)
    if not getattr(layer, "stateful", False):
        raise ValueError(
            f"{_describe(layer)} is not stateful, so it keeps no state between calls. "
            "Create it with stateful=True to keep state, or, for a stateless layer, pass the "
            "start state with layer(x, initial_state=[...]) and read the final state with "
            "return_state=True (chapter 2, 02_initial_state.ipynb)."
        )
    for _, part in _parts(layer):
        leaves = _flatten(part.states) if part.states is not None else [None]
        if not getattr(part, "built", False) or any(leaf is None for leaf in leaves):
            raise ValueError(
                f"{_describe(layer)} is stateful but not built yet, so it has no state "
                "variables. Build it with a fixed batch size first: call it on a batch, or put "
                "it in a model whose Input has batch_shape=(batch, timesteps, features)."
            )


def state_names(layer: Any) -> list[str]:
    """The names of a layer's states in Keras order, as the error messages use them.

    See chapter 4, ``04_numeric_state.ipynb``.

    Examples
    --------
    >>> import keras
    >>> state_names(keras.layers.Bidirectional(keras.layers.LSTM(2)))
    ['forward h', 'forward c', 'backward h', 'backward c']
    >>> state_names(keras.layers.GRU(2))
    ['h']
    """
    _require_recurrent(layer)
    return [prefix + name for prefix, part in _parts(layer) for name in _cell_state_names(part.cell)]


def state_variables(layer: Any) -> list[Any]:
    """The variables that hold a stateful layer's state, flat and in Keras order.

    These are the objects the layer reads and writes (``layer.states``, flattened; for a
    ``Bidirectional`` wrapper the forward layer's then the backward layer's). Assign into
    them; never replace them.

    See chapter 4, ``04_numeric_state.ipynb``.

    Raises
    ------
    TypeError
        If ``layer`` is not a recurrent layer, or an entry of ``layer.states`` is no longer a
        variable (it was replaced, see chapter 6).
    ValueError
        If the layer is not stateful or not built, or an entry of ``layer.states`` was
        replaced by another variable (``lstm_utils.explain_replaced_states`` says how).

    Examples
    --------
    >>> import keras
    >>> lstm = keras.layers.LSTM(3, stateful=True)
    >>> _ = lstm(keras.ops.zeros((2, 4, 1)))
    >>> [tuple(v.shape) for v in state_variables(lstm)]
    [(2, 3), (2, 3)]
    """
    _check_stateful_and_built(layer)
    names = state_names(layer)
    variables = [leaf for _, part in _parts(layer) for leaf in _flatten(part.states)]
    for name, variable in zip(names, variables):
        if not is_variable(variable):
            raise TypeError(
                f"state {name!r} of {_describe(layer)} is a {type(variable).__name__}, not a state "
                "variable: an entry of layer.states was replaced. A model that has already run "
                "keeps using the old variables; rebuild the layer and set values with "
                "lstm_utils.set_states (chapter 6, 06_list_replacement.ipynb)."
            )
    from lstm_utils.diagnostics import explain_replaced_states  # it needs this module too

    problems = [p for found in explain_replaced_states(layer).values() for p in found]
    if problems:
        raise ValueError(
            f"the state list of {_describe(layer)} was tampered with: {problems[0]}. Reading or "
            "writing it would not reach the state that a model which has already run uses; "
            "re-create the model (for "
            "example keras.models.clone_model plus set_weights) and set values with "
            "lstm_utils.set_states (chapter 6, 06_list_replacement.ipynb)."
        )
    return variables


def get_states(layer: Any) -> list[np.ndarray]:
    """Copies of a stateful recurrent layer's current state values, in Keras order.

    The order is ``[h, c]`` for an LSTM, ``[h]`` for a GRU or SimpleRNN, the states of
    each cell in turn for ``RNN([cell, cell])``, and forward states then backward states
    for ``Bidirectional`` (``[fwd_h, fwd_c, bwd_h, bwd_c]`` for an LSTM).

    See chapter 4, ``04_numeric_state.ipynb``.

    Parameters
    ----------
    layer : keras.layers.Layer
        A built stateful ``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN`` or ``Bidirectional``
        layer of Keras 3 (``keras`` / ``tf.keras``) or Keras 2 (``tf_keras``).

    Returns
    -------
    list of numpy.ndarray
        One ``(batch, units)`` array per state; changing them does not change the layer.

    Raises
    ------
    TypeError
        If ``layer`` is not a recurrent layer.
    ValueError
        If the layer is not stateful or not built yet.

    Examples
    --------
    >>> import keras, numpy as np
    >>> lstm = keras.layers.LSTM(3, stateful=True)
    >>> _ = lstm(np.ones((2, 4, 1), "float32"))
    >>> [s.shape for s in get_states(lstm)]
    [(2, 3), (2, 3)]
    """
    return [to_numpy(variable) for variable in state_variables(layer)]


def _as_array(value: Any, name: str, layer: Any) -> np.ndarray:
    try:
        array = to_numpy(value)
    except Exception as error:  # anything NumPy cannot turn into an array
        raise TypeError(
            f"state {name!r} of {_describe(layer)}: expected a numeric array or tensor, "
            f"got {type(value).__name__} ({error})"
        ) from error
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise TypeError(
            f"state {name!r} of {_describe(layer)}: expected a numeric array or tensor, "
            f"got dtype {array.dtype} from a {type(value).__name__}"
        )
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"state {name!r} of {_describe(layer)}: expected real numbers, got dtype {array.dtype}")
    return array


def set_states(layer: Any, states: Sequence[Any]) -> None:
    """Assign values to a stateful recurrent layer's states, in place, all or nothing.

    Every value is checked (count, shape, numeric, finite) before the first one is
    assigned, so a failed call leaves every state as it was. The layer keeps its own
    state variables, so a model that has already run (``predict``, ``fit``) uses the
    new values on its next call. This replaces Keras 2's ``reset_states(states=...)``,
    which Keras 3 removed.

    See chapter 4, ``04_numeric_state.ipynb``.

    Parameters
    ----------
    layer : keras.layers.Layer
        A built stateful recurrent layer of Keras 3 or Keras 2.
    states : sequence of array-like
        One array or tensor per state, in the order :func:`get_states` returns them,
        each of shape ``(batch, units)``.

    Raises
    ------
    TypeError
        If ``layer`` is not a recurrent layer, ``states`` is not a list or tuple, or a
        value is not numeric.
    ValueError
        If the layer is not stateful or not built, or the number of values, a shape, or
        a non-finite value (NaN, inf) is wrong.

    Notes
    -----
    Checked here on Keras 3 with the TensorFlow backend and on Keras 2. On Keras 3's JAX
    backend (not run by this book's tests) Keras 3.15 keeps no state inside
    ``predict``/``fit`` at all: a jitted ``predict`` uses the state values it saw when it
    was traced, so values set afterwards reach eager calls (``model(x)``) but not
    ``predict``. That is a limit of the backend, not of this function.

    Examples
    --------
    >>> import keras, numpy as np
    >>> lstm = keras.layers.LSTM(3, stateful=True)
    >>> _ = lstm(np.zeros((2, 4, 1), "float32"))
    >>> set_states(lstm, [np.ones((2, 3)), np.zeros((2, 3))])
    >>> get_states(lstm)[0].tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    variables = state_variables(layer)
    names = state_names(layer)
    shapes = [tuple(int(d) for d in v.shape) for v in variables]
    expected = ", ".join(f"{n} {s}" for n, s in zip(names, shapes))
    if not isinstance(states, (list, tuple)):
        raise TypeError(
            f"{_describe(layer)}: expected a list of {len(variables)} arrays ({expected}), "
            f"got a {type(states).__name__}"
        )
    if len(states) != len(variables):
        raise ValueError(
            f"{_describe(layer)} holds {len(variables)} state(s) ({expected}), "
            f"got {len(states)} array(s)"
        )
    arrays = []
    for name, shape, variable, value in zip(names, shapes, variables, states):
        array = _as_array(value, name, layer)
        if array.shape != shape:
            raise ValueError(
                f"state {name!r} of {_describe(layer)}: expected shape {shape} (batch, units), "
                f"got {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"state {name!r} of {_describe(layer)}: got NaN or infinite values")
        arrays.append(array.astype(_dtype_name(variable)))
    for variable, array in zip(variables, arrays):
        variable.assign(array)


def _dtype_name(variable: Any) -> str:
    dtype = variable.dtype
    return getattr(dtype, "name", None) or str(dtype)


def _children(layer: Any) -> list[Any]:
    """Direct sub-layers: a model's layers, or the layers a custom layer holds as attributes."""
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=False))
    return list(getattr(layer, "layers", []))


def stateful_layers(model_or_layer: Any) -> list[tuple[str, Any]]:
    """Every stateful recurrent layer in a model, with a path name, in model order.

    Nested models and layers held by custom layers are searched; a ``Bidirectional``
    wrapper counts as one layer. Paths join names with ``/`` (``"encoder/lstm"``).

    See chapter 4, ``04_numeric_state.ipynb``.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input(batch_shape=(2, 5, 1)),
    ...                           keras.layers.LSTM(3, stateful=True, name="lstm"),
    ...                           keras.layers.Dense(1, name="head")])
    >>> [path for path, _ in stateful_layers(model)]
    ['lstm']
    """
    if flavour_of(model_or_layer) is None:
        raise TypeError(f"expected a Keras model or layer, got {_describe(model_or_layer)}")
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def visit(layer: Any, prefix: str) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if _is_recurrent(layer):
            if getattr(layer, "stateful", False):
                found.append((prefix + layer.name, layer))
            return
        for child in _children(layer):
            is_container = bool(getattr(child, "layers", None)) and not _is_recurrent(child)
            visit(child, prefix + (child.name + "/" if is_container else ""))

    if _is_recurrent(model_or_layer):
        visit(model_or_layer, "")
    else:
        for child in _children(model_or_layer):
            is_container = bool(getattr(child, "layers", None)) and not _is_recurrent(child)
            visit(child, child.name + "/" if is_container else "")
    return found


def reset_states(model_or_layer: Any) -> None:
    """Set every state of every stateful recurrent layer in a model (or one layer) to zero.

    Works where Keras 3 has no ``Model.reset_states``: nested models, custom layers and
    ``Bidirectional`` wrappers included. Every layer is checked before any is reset.

    See chapter 4, ``04_numeric_state.ipynb``.

    Raises
    ------
    TypeError
        If the argument is not a Keras model or layer.
    ValueError
        If it holds no stateful recurrent layer, or one that is not built yet.

    Examples
    --------
    >>> import keras, numpy as np
    >>> lstm = keras.layers.LSTM(3, stateful=True)
    >>> _ = lstm(np.ones((2, 4, 1), "float32"))
    >>> reset_states(lstm)
    >>> float(np.abs(get_states(lstm)[0]).sum())
    0.0
    """
    if _is_recurrent(model_or_layer):
        layers = [model_or_layer]
    else:
        layers = [layer for _, layer in stateful_layers(model_or_layer)]
        if not layers:
            raise ValueError(
                f"{_describe(model_or_layer)} holds no stateful recurrent layer, so there is no "
                "state to reset (layers created without stateful=True start from zeros on every call)"
            )
    variables = [v for layer in layers for v in state_variables(layer)]
    for variable in variables:
        variable.assign(np.zeros(tuple(int(d) for d in variable.shape), _dtype_name(variable)))
