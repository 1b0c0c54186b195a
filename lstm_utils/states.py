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

from lstm_utils._flavour import is_variable, to_numpy
from lstm_utils._layers import (
    describe,
    directions,
    flatten_states,
    is_recurrent,
    require_recurrent,
    state_labels,
    stateful_layers,
)
from lstm_utils.diagnostics import explain_replaced_states
from lstm_utils.distribute import replica_variables

__all__ = ["get_states", "set_states", "reset_states", "stateful_layers", "state_variables", "state_names"]


def _check_stateful_and_built(layer: Any, function: str) -> None:
    require_recurrent(layer, function)
    if not getattr(layer, "stateful", False):
        raise ValueError(
            f"{describe(layer)} is not stateful, so it keeps no state between calls. "
            "Create it with stateful=True to keep state, or, for a stateless layer, pass the "
            "start state with layer(x, initial_state=[...]) and read the final state with "
            "return_state=True (chapter 2, 02_initial_state.ipynb)."
        )
    for direction in directions(layer):
        part = direction.layer
        if not getattr(part, "built", False) or part.states is None:
            raise ValueError(
                f"{describe(layer)} is stateful but not built yet, so it has no state "
                "variables. Build it with a fixed batch size first: call it on a batch, or put "
                "it in a model whose Input has batch_shape=(batch, timesteps, features)."
            )
        leaves = flatten_states(part.states)
        if all(leaf is None for leaf in leaves):
            raise ValueError(
                f"{describe(layer)} is built but holds no state yet (every entry of layer.states "
                "is None): call it once on a batch of the size it will keep, or reset_state()."
            )
        missing = [index for index, leaf in enumerate(leaves) if leaf is None]
        if missing:
            raise TypeError(
                f"{describe(layer)}: entry {missing[0]} of {direction.attribute}.states is None, not a "
                "state variable: an entry of layer.states was replaced. Rebuild the layer and set "
                "values with lstm_utils.set_states (chapter 6, 06_list_replacement.ipynb)."
            )


def state_names(layer: Any) -> list[str]:
    """The names of a layer's states in Keras order, as every message and chapter uses them.

    ``h`` and ``c`` for one cell; the cell's number appended for stacked cells (``h1, c1,
    h2``); ``fwd_`` and ``bwd_`` before them for ``Bidirectional`` (``fwd_h, fwd_c, bwd_h,
    bwd_c``).

    See chapter 4, ``04_numeric_state.ipynb``.

    Examples
    --------
    >>> import keras
    >>> state_names(keras.layers.Bidirectional(keras.layers.LSTM(2)))
    ['fwd_h', 'fwd_c', 'bwd_h', 'bwd_c']
    >>> state_names(keras.layers.RNN([keras.layers.LSTMCell(2), keras.layers.GRUCell(2)]))
    ['h1', 'c1', 'h2']
    """
    require_recurrent(layer, "state_names")
    return state_labels(layer)


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
    return _state_variables(layer, "state_variables")


def _state_variables(layer: Any, function: str) -> list[Any]:
    _check_stateful_and_built(layer, function)
    names = state_labels(layer)
    variables = [leaf for direction in directions(layer) for leaf in flatten_states(direction.layer.states)]
    if len(variables) != len(names):
        raise ValueError(
            f"{describe(layer)} should hold {len(names)} state(s) {names}, but layer.states holds "
            f"{len(variables)}: the list was replaced. Rebuild the layer and set values with "
            "lstm_utils.set_states (chapter 6, 06_list_replacement.ipynb)."
        )
    for name, variable in zip(names, variables, strict=True):
        if not is_variable(variable):
            raise TypeError(
                f"state {name!r} of {describe(layer)} is a {type(variable).__name__}, not a state "
                "variable: an entry of layer.states was replaced. A model that has already run "
                "keeps using the old variables; rebuild the layer and set values with "
                "lstm_utils.set_states (chapter 6, 06_list_replacement.ipynb)."
            )
    problems = [p for found in explain_replaced_states(layer).values() for p in found]
    if problems:
        raise ValueError(
            f"the state list of {describe(layer)} was tampered with: {problems[0]}. Reading or "
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

    Under ``tf.distribute.MirroredStrategy`` each replica keeps its own rows in its own
    copy of the state variable; the arrays returned hold all of them, replica 0's rows
    first, the order in which the strategy splits a global batch (``layer.states[0]``
    alone shows replica 0's rows). With ``MultiWorkerMirroredStrategy`` they hold this
    worker's replicas' rows. Chapter 13, ``13_many_devices.ipynb``, shows both.

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
    return [_read(variable) for variable in _state_variables(layer, "get_states")]


def _read(variable: Any) -> np.ndarray:
    """All rows of a state: under a ``tf.distribute`` strategy, every replica's, in replica order."""
    copies = replica_variables(variable)
    if len(copies) == 1:
        return to_numpy(copies[0])
    return np.concatenate([to_numpy(copy) for copy in copies], axis=0)


def _global_shape(variable: Any) -> tuple[int, ...]:
    """The shape of all of a state's rows: a replica's shape with its batch times the replica count."""
    shape = tuple(int(d) for d in variable.shape)
    copies = len(replica_variables(variable))
    return (shape[0] * copies, *shape[1:]) if copies > 1 and shape else shape


def _write(variable: Any, array: np.ndarray) -> None:
    """Assign all rows of a state: replica ``r`` of ``n`` gets the ``r``-th of ``n`` equal slices."""
    copies = replica_variables(variable)
    if len(copies) == 1:
        copies[0].assign(array)
        return
    rows = array.shape[0] // len(copies)
    for index, copy in enumerate(copies):
        copy.assign(array[index * rows : (index + 1) * rows])


def _as_array(value: Any, name: str, layer: Any) -> np.ndarray:
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"state {name!r} of {describe(layer)}: got a masked array; a state has no missing "
            "entries, so fill them first (numpy.ma.filled(value, 0.0))"
        )
    try:
        array = to_numpy(value)
    except Exception as error:  # anything NumPy cannot turn into an array
        raise TypeError(
            f"state {name!r} of {describe(layer)}: expected a numeric array or tensor, "
            f"got {type(value).__name__} ({error})"
        ) from error
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"state {name!r} of {describe(layer)}: expected real numbers, got dtype {array.dtype}")
    if array.dtype.kind not in "fiu":  # bool, timedelta, datetime, strings, objects: not a state
        raise TypeError(
            f"state {name!r} of {describe(layer)}: expected a numeric array or tensor (float or integer), "
            f"got dtype {array.dtype} from a {type(value).__name__}"
        )
    return array


def set_states(layer: Any, states: Sequence[Any]) -> None:
    """Assign values to a stateful recurrent layer's states, in place, all or nothing.

    Every value is checked (count, shape, numeric, finite) before the first one is
    assigned, so a failed call leaves every state as it was. The layer keeps its own
    state variables, so a model that has already run (``predict``, ``fit``) uses the
    new values on its next call. This replaces Keras 2's ``reset_states(states=...)``,
    which Keras 3 removed.

    Under ``tf.distribute.MirroredStrategy`` each value holds the global batch, every
    replica's rows as :func:`get_states` returns them, and each replica's copy of the
    state variable gets its own slice (one plain ``assign`` would write the same rows into
    every replica); a value of one replica's shape is refused (chapter 13,
    ``13_many_devices.ipynb``).

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
    variables = _state_variables(layer, "set_states")
    names = state_labels(layer)
    shapes = [_global_shape(v) for v in variables]
    copies = [len(replica_variables(v)) for v in variables]
    expected = ", ".join(f"{n} {s}" for n, s in zip(names, shapes, strict=True))
    if not isinstance(states, (list, tuple)):
        raise TypeError(
            f"{describe(layer)}: expected a list of {len(variables)} arrays ({expected}), got a {type(states).__name__}"
        )
    if len(states) != len(variables):
        raise ValueError(f"{describe(layer)} holds {len(variables)} state(s) ({expected}), got {len(states)} array(s)")
    arrays = []
    for name, shape, count, variable, value in zip(names, shapes, copies, variables, states, strict=True):
        array = _as_array(value, name, layer)
        if array.shape != shape and count > 1:
            per_replica = (shape[0] // count, *shape[1:])
            fits = (
                "it fits one replica's batch, not the global one: give every replica's rows "
                f"(numpy.tile(value, ({count}, 1)) if every replica should start alike)"
                if array.shape == per_replica
                else f"it fits neither the global batch ({shape[0]} rows) nor one replica's ({per_replica[0]} rows)"
            )
            raise ValueError(
                f"state {name!r} of {describe(layer)}: expected shape {shape} (global batch, units), the rows "
                f"of all {count} replicas of {per_replica[0]} rows each (one replica's shape is {per_replica}), "
                f"got {array.shape}; {fits}"
            )
        if array.shape != shape:
            raise ValueError(
                f"state {name!r} of {describe(layer)}: expected shape {shape} (batch, units), got {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"state {name!r} of {describe(layer)}: got NaN or infinite values")
        dtype = _dtype_name(variable)
        with np.errstate(over="ignore"):
            converted = array.astype(dtype)
        if not np.all(np.isfinite(converted)):
            largest = float(np.max(np.abs(array)))
            raise ValueError(
                f"state {name!r} of {describe(layer)}: values up to {largest:.3g} overflow to infinity "
                f"in the state's dtype {dtype} (largest finite: {float(np.finfo(dtype).max):.3g})"
            )
        arrays.append(converted)
    for variable, array in zip(variables, arrays, strict=True):
        _write(variable, array)


def _dtype_name(variable: Any) -> str:
    dtype = variable.dtype
    return getattr(dtype, "name", None) or str(dtype)


def reset_states(model_or_layer: Any) -> None:
    """Set every state of every stateful recurrent layer in a model (or one layer) to zero.

    Works where Keras 3 has no ``Model.reset_states``: nested models, custom layers and
    ``Bidirectional`` wrappers included. Every layer is checked before any is reset.
    Under a ``tf.distribute`` strategy every replica's copy is zeroed.

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
    if is_recurrent(model_or_layer):
        layers = [model_or_layer]
    else:
        layers = [layer for _, layer in stateful_layers(model_or_layer)]
        if not layers:
            raise ValueError(
                f"{describe(model_or_layer)} holds no stateful recurrent layer, so there is no "
                "state to reset (layers created without stateful=True start from zeros on every call)"
            )
    variables = [v for layer in layers for v in _state_variables(layer, "reset_states")]
    for variable in variables:
        _write(variable, np.zeros(_global_shape(variable), _dtype_name(variable)))
