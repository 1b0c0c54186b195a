"""Checking an ``initial_state`` before a recurrent layer gets it.

Keras 3 accepts some wrong initial states without a word, in a direct call: when the state
and the inputs differ in batch and one of them has batch 1, that one is broadcast onto the
other (the output has the larger batch); a GRU given ``[h, c]`` ignores ``c``; a 1-D state
is broadcast over the batch. Other mistakes fail deep inside the cell (batches 2 and 3:
``InvalidArgumentError``; a SimpleRNN given ``[h, c]``: "Too few leaves for PyTreeSpec"),
a functional model's ``predict`` refuses inputs of different batch sizes ("Data
cardinality is ambiguous"), and Keras 2 reports them in its own words. :func:`check_initial_state`
checks the count, the nesting and the shapes up front, the same way for both versions, and
says what was expected. See chapter 2, ``02_initial_state.ipynb``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lstm_utils._flavour import flavour_of
from lstm_utils._layers import (
    cell_state_labels,
    cells_of,
    describe,
    is_bidirectional,
    is_stacked,
    nested_state_labels,
    require_recurrent,
)

__all__ = ["check_initial_state", "expected_initial_state"]

_Template = list[tuple[str, tuple[int, ...]]]


def _is_nested(value: Any) -> bool:
    """A list or tuple of states (a Keras ListWrapper too), not a single array or tensor."""
    if isinstance(value, (str, bytes, np.ndarray)):
        return False
    return isinstance(value, (list, tuple)) or (isinstance(value, Sequence) and not hasattr(value, "shape"))


def _sizes(state_size: Any) -> list[tuple[int, ...]]:
    """A cell's state_size as one shape (without batch) per state."""
    if isinstance(state_size, (int, np.integer)):
        return [(int(state_size),)]
    if hasattr(state_size, "as_list"):  # a TensorShape: one state of that shape
        return [tuple(state_size.as_list())]
    if _is_nested(state_size):
        out: list[tuple[int, ...]] = []
        for item in state_size:
            if isinstance(item, (int, np.integer)):
                out.append((int(item),))
            elif hasattr(item, "as_list"):
                out.append(tuple(item.as_list()))
            else:
                out.append(tuple(int(d) for d in item))
        return out
    raise TypeError(f"cannot read a cell's state_size {state_size!r}")


def _cell_template(cell: Any, suffix: str) -> _Template:
    """[(label, shape without batch)] for one cell's states."""
    sizes = _sizes(cell.state_size)
    labels = cell_state_labels(cell, suffix)  # ["h", "c"] for an LSTM cell, ["h"] for GRU and SimpleRNN
    return list(zip(labels, sizes, strict=True))


def _layer_template(layer: Any, prefix: str = "") -> list[Any]:
    """What a recurrent layer expects: a flat list of (label, shape) for one cell, or one
    such list per cell for stacked cells (marked by being a list of lists)."""
    if is_stacked(layer.cell):
        return [
            [(prefix + label, size) for label, size in _cell_template(cell, str(index + 1))]
            for index, cell in enumerate(cells_of(layer))
        ]
    return [(prefix + label, size) for label, size in _cell_template(layer.cell, "")]


def expected_initial_state(layer: Any) -> list[Any]:
    """The structure of ``initial_state`` that ``layer`` expects, as state names.

    Parameters
    ----------
    layer : Keras recurrent layer
        ``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN(cell)``, ``RNN([cells])`` or ``Bidirectional``,
        from Keras 3 or Keras 2; it need not be built.

    Returns
    -------
    list
        State names in the order and nesting to pass them: ``['h', 'c']`` for an LSTM,
        ``[['h1', 'c1'], ['h2', 'c2']]`` for two stacked LSTM cells, and
        ``['fwd_h', 'fwd_c', 'bwd_h', 'bwd_c']`` for ``Bidirectional(LSTM)``.

    Notes
    -----
    Explained in chapter 2, ``02_initial_state.ipynb``.

    Examples
    --------
    >>> import keras
    >>> expected_initial_state(keras.layers.Bidirectional(keras.layers.LSTM(4)))
    ['fwd_h', 'fwd_c', 'bwd_h', 'bwd_c']
    >>> expected_initial_state(keras.layers.RNN([keras.layers.LSTMCell(4), keras.layers.GRUCell(2)]))
    [['h1', 'c1'], ['h2']]
    """
    require_recurrent(layer, "expected_initial_state")
    return nested_state_labels(layer)


def _shape_of(value: Any, what: str = "each initial state", wanted: str = "(batch, units)") -> tuple[int | None, ...]:
    shape = getattr(value, "shape", None)
    if shape is None:
        raise TypeError(f"{what} must be an array or tensor of shape {wanted}; got a {type(value).__name__}")
    if hasattr(shape, "as_list"):
        if shape.rank is None:
            return ()
        shape = shape.as_list()
    return tuple(None if d is None else int(d) for d in shape)


def _dtype_name(value: Any) -> str | None:
    """``"float32"``, ``"int32"``, ``"string"``...: a NumPy, TensorFlow or Keras dtype's name, if any."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return None
    name = getattr(dtype, "name", None)  # NumPy and TensorFlow dtypes
    if not isinstance(name, str):
        name = str(dtype)  # Keras 3 symbolic tensors name their dtype with a string
    return "string" if name in ("str", "object") or name.startswith(("<U", "|S", "str")) else name


def _describe_structure(value: Any) -> str:
    if _is_nested(value):
        inner = ", ".join(_describe_structure(v) for v in value)
        return f"[{inner}]"
    try:
        return str(_shape_of(value))
    except TypeError:
        return type(value).__name__


def _names_text(names: list[Any]) -> str:
    def text(item: Any) -> str:
        return "[" + ", ".join(text(i) for i in item) + "]" if isinstance(item, list) else item

    return text(names)


def _check_leaf(
    layer: Any,
    value: Any,
    name: str,
    size: tuple[int, ...],
    batch: int | None,
) -> None:
    if _is_nested(value):
        raise ValueError(
            f"initial state {name} of {describe(layer)} must be one array or tensor of shape "
            f"(batch, {', '.join(map(str, size))}); got a nested list {_describe_structure(value)}"
        )
    shape = _shape_of(value)
    layer_flavour, value_flavour = flavour_of(layer), flavour_of(value)
    if value_flavour is not None and value_flavour != layer_flavour:
        versions = {"keras3": "Keras 3 (keras)", "keras2": "Keras 2 (tf_keras)"}
        raise TypeError(
            f"initial state {name} of {describe(layer)} is a {versions[value_flavour]} "
            f"{type(value).__name__}, but the layer is a {versions[str(layer_flavour)]} layer: the two "
            "versions' symbolic tensors do not mix; build the state with the layer's own Keras"
        )
    dtype = _dtype_name(value)
    if dtype is not None and not dtype.startswith(("float", "bfloat")):
        raise TypeError(
            f"initial state {name} of {describe(layer)} must hold floats, like the layer's state; "
            f"got dtype {dtype} (cast it, e.g. value.astype('float32'))"
        )
    if layer_flavour == "keras2" and isinstance(value, np.ndarray):
        raise TypeError(
            f"initial state {name} of {describe(layer)} is a NumPy array; Keras 2 (tf_keras) only "
            "accepts tensors in an eager call (it raises 'Expected a symbolic tensor instance'): "
            "pass tf.constant(value) instead"
        )
    wanted = (batch, *size)
    wanted_text = "(batch, " + ", ".join(map(str, size)) + ")"
    if len(shape) != len(wanted):
        raise ValueError(
            f"initial state {name} of {describe(layer)} must have shape {wanted_text}; got "
            f"shape {shape} (Keras 3 may silently broadcast a state of the wrong rank)"
        )
    if shape[1:] != size:
        width = shape[1] if len(size) == 1 else shape[1:]
        expected = size[0] if len(size) == 1 else size
        raise ValueError(
            f"initial state {name} of {describe(layer)} must have shape {wanted_text}, that is "
            f"width {expected}; got shape {shape} (width {width})"
        )
    if batch is not None and shape[0] is not None and shape[0] != batch:
        raise ValueError(
            f"initial state {name} of {describe(layer)} has batch size {shape[0]}, but the inputs "
            f"have batch size {batch}; they must be equal ({_keras3_on_batch_mismatch(shape[0], batch)})"
        )


def _keras3_on_batch_mismatch(state_batch: int, input_batch: int) -> str:
    """What Keras 3 itself does with this mismatch, in a direct call (chapter 2 runs each case)."""
    if input_batch == 1:
        return (
            "in a direct call Keras 3 silently broadcasts the input onto the state's batch and "
            f"returns {state_batch} rows; a functional model's predict raises 'Data cardinality is ambiguous'"
        )
    if state_batch == 1:
        return (
            "in a direct call Keras 3 silently gives every row the same start state; a functional "
            "model's predict raises 'Data cardinality is ambiguous'"
        )
    return "Keras 3 raises InvalidArgumentError 'Incompatible shapes' inside the cell"


def _count_text(n: int) -> str:
    return f"{n} initial state{'s' if n != 1 else ''}"


def _check_rnn(layer: Any, entries: list[Any], batch: int | None, prefix: str) -> None:
    template = _layer_template(layer, prefix)
    names = [[label for label, _ in item] if isinstance(item, list) else item[0] for item in template]
    stacked = bool(template) and isinstance(template[0], list)
    if not stacked:
        if len(entries) != len(template):
            extra = ""
            if len(entries) > len(template):
                extra = (
                    " (Keras 3 silently ignores the extra states of a GRU)"
                    if type(layer.cell).__name__ == "GRUCell"
                    else " (Keras 3 raises 'Too few leaves for PyTreeSpec')"
                )
            raise ValueError(
                f"{describe(layer)} expects {_count_text(len(template))} {_names_text(names)}; "
                f"got {len(entries)}: {_describe_structure(entries)}{extra}"
            )
        for value, (name, size) in zip(entries, template, strict=True):
            _check_leaf(layer, value, name, size, batch)
        return
    n_flat = sum(len(cell) for cell in template)
    if len(entries) != len(template):
        if len(entries) == n_flat and not any(_is_nested(e) for e in entries):
            raise ValueError(
                f"{describe(layer)} has {len(template)} stacked cells, so initial_state must be "
                f"nested, one list per cell: {_names_text(names)}; got a flat list of "
                f"{len(entries)}: {_describe_structure(entries)}"
            )
        raise ValueError(
            f"{describe(layer)} has {len(template)} stacked cells and expects one entry per cell, "
            f"{_names_text(names)}; got {len(entries)}: {_describe_structure(entries)}"
        )
    for value, cell_template, cell_names in zip(entries, template, names, strict=True):
        if _is_nested(value):
            parts = list(value)
        elif len(cell_template) == 1:
            parts = [value]  # a one-state cell also takes its state bare
        else:
            raise ValueError(
                f"{describe(layer)}: the states of one cell must be a list "
                f"{_names_text(cell_names)}; got a single {_describe_structure(value)}"
            )
        if len(parts) != len(cell_template):
            raise ValueError(
                f"{describe(layer)}: the cell with states {_names_text(cell_names)} expects "
                f"{_count_text(len(cell_template))}; got {len(parts)}: {_describe_structure(parts)}"
            )
        for part, (name, size) in zip(parts, cell_template, strict=True):
            _check_leaf(layer, part, name, size, batch)


def check_initial_state(layer: Any, inputs: Any, initial_state: Any) -> None:
    """Raise a clear error if ``initial_state`` does not fit ``layer`` and ``inputs``.

    Checks what Keras checks late, differently in each version, or not at all: the number
    of states (a GRU given ``[h, c]`` is an error here, while Keras 3 ignores ``c``), the
    nesting (stacked cells need ``[[h1, c1], [h2, c2]]``, not a flat list), the width of
    each state, and its batch size against the inputs' (Keras 3 broadcasts a batch of 1
    onto the other side's batch in a direct call). Works before the layer is built, with arrays, tensors and
    symbolic tensors (``keras.Input``); a ``None`` (unknown) batch size fits any batch.
    Nothing is called or changed.

    Parameters
    ----------
    layer : Keras recurrent layer
        ``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN(cell)``, ``RNN([cells])`` or ``Bidirectional``
        of one of them, from Keras 3 (``keras``, ``tf.keras``) or Keras 2 (``tf_keras``).
    inputs : array, tensor or symbolic tensor, shape (batch, timesteps, features)
        What the layer will be called on.
    initial_state : array, tensor or (nested) list of them, or None
        What will be passed as ``initial_state``. ``None`` (zeros) is always fine.

    Raises
    ------
    TypeError
        If ``layer`` is not a Keras recurrent layer, a state is not an array or tensor, or a
        NumPy state is given to a Keras 2 layer (Keras 2 needs tensors in an eager call).
    ValueError
        If ``inputs`` is not 3-D, or the count, nesting, width or batch size of the states
        is wrong. The message says what was expected and what was got.

    Notes
    -----
    Explained in chapter 2, ``02_initial_state.ipynb``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> x = np.zeros((1, 5, 3), "float32")
    >>> h = np.zeros((1, 4), "float32")
    >>> check_initial_state(keras.layers.LSTM(4), x, [h, h])   # fine: returns None
    >>> check_initial_state(keras.layers.GRU(4, name="gru"), x, [h, h])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: GRU layer 'gru' expects 1 initial state [h]; got 2: [(1, 4), (1, 4)] (Keras 3 silently ignores ...)
    """
    require_recurrent(layer, "check_initial_state")
    input_shape = _shape_of(inputs, "inputs", "(batch, timesteps, features)")
    if len(input_shape) != 3:
        raise ValueError(f"inputs must be 3-D (batch, timesteps, features); got shape {input_shape}")
    if initial_state is None:
        return
    batch = input_shape[0]
    entries = list(initial_state) if _is_nested(initial_state) else [initial_state]
    if not is_bidirectional(layer):
        _check_rnn(layer, entries, batch, "")
        return
    forward, backward = layer.forward_layer, layer.backward_layer
    n_forward = len(_layer_template(forward))
    n_backward = len(_layer_template(backward))
    names = expected_initial_state(layer)
    if len(entries) != n_forward + n_backward:
        raise ValueError(
            f"{describe(layer)} expects {_count_text(n_forward + n_backward)}, forward then "
            f"backward, {_names_text(names)}; got {len(entries)}: {_describe_structure(entries)}"
        )
    _check_rnn(forward, entries[:n_forward], batch, "fwd_")
    _check_rnn(backward, entries[n_forward:], batch, "bwd_")
