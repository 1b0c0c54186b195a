"""Layer introspection that every feature module shares; it imports only ``_flavour``.

What kind of recurrent layer something is, the plain RNN layers that hold a
``Bidirectional`` wrapper's state, the cells of a layer, the labels of its states, its
state variables' containers, the stateful layers of a model, how to name an object in an
error message, and the one integer check the package uses.

State labels are one vocabulary, used by every function, message and chapter:

- one cell: ``h`` and ``c`` for an LSTM, ``h`` for a GRU or SimpleRNN, ``state1``,
  ``state2``, ... for a cell with more than two states;
- stacked cells (``RNN([cell, cell])``): the cell's number appended, counting from 1,
  ``h1, c1, h2, c2``;
- ``Bidirectional``: ``fwd_`` before the forward layer's labels and ``bwd_`` before the
  backward layer's, ``fwd_h, fwd_c, bwd_h, bwd_c``.

Nothing here imports Keras: classes are recognised by name (see ``_flavour``).
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

from lstm_utils._flavour import class_names, flavour_of

RECURRENT_KINDS = "LSTM, GRU, SimpleRNN, RNN(cell) or Bidirectional"


class Direction(NamedTuple):
    """One plain RNN layer that holds part of a layer's state."""

    label_prefix: str  # "" for a plain layer, "fwd_" or "bwd_" inside Bidirectional
    attribute: str  # how the wrapper holds it: "layer", "forward_layer" or "backward_layer"
    layer: Any


def describe(obj: Any) -> str:
    """How error messages name an object: ``LSTM layer 'lstm'``, or its class's full name."""
    if isinstance(obj, type):  # ``keras.layers.LSTM`` where ``keras.layers.LSTM(4)`` was meant
        return f"the class {obj.__module__}.{obj.__qualname__} itself, not an instance of it"
    name = getattr(obj, "name", None)
    kind = type(obj).__name__
    return f"{kind} layer {name!r}" if isinstance(name, str) and name else f"{type(obj).__module__}.{kind}"


def is_recurrent(layer: Any) -> bool:
    """True for a Keras recurrent layer instance (``RNN`` and its subclasses, ``Bidirectional``)."""
    return (
        not isinstance(layer, type)
        and flavour_of(layer) is not None
        and bool({"RNN", "Bidirectional"} & class_names(layer))
    )


def is_bidirectional(layer: Any) -> bool:
    """True for a ``Bidirectional`` wrapper."""
    return "Bidirectional" in class_names(layer)


def require_recurrent(layer: Any, function: str) -> None:
    """Raise ``TypeError`` naming ``function`` unless ``layer`` is a Keras recurrent layer."""
    if not is_recurrent(layer):
        raise TypeError(
            f"{function} expects a Keras recurrent layer ({RECURRENT_KINDS}) from keras/tf.keras "
            f"or tf_keras, got {describe(layer)}"
        )


def directions(layer: Any) -> list[Direction]:
    """The plain RNN layers that hold a layer's state: itself, or a wrapper's forward and backward layers."""
    if is_bidirectional(layer):
        return [
            Direction("fwd_", "forward_layer", layer.forward_layer),
            Direction("bwd_", "backward_layer", layer.backward_layer),
        ]
    return [Direction("", "layer", layer)]


def is_stacked(cell: Any) -> bool:
    """True for ``StackedRNNCells``, what ``RNN([cell, cell])`` wraps its cells in."""
    return "StackedRNNCells" in class_names(cell)


def cells_of(layer: Any) -> list[Any]:
    """The cells of one plain RNN layer, in order: one, or each of its stacked cells."""
    cell = layer.cell
    return list(cell.cells) if is_stacked(cell) else [cell]


def cell_state_count(cell: Any) -> int:
    """How many states one (not stacked) cell carries: 2 for an LSTM cell, 1 for GRU and SimpleRNN."""
    size = getattr(cell, "state_size", None)
    return len(size) if isinstance(size, (list, tuple)) else 1


def cell_state_labels(cell: Any, suffix: str = "") -> list[str]:
    """Labels of one cell's states, ``["h", "c"]`` for an LSTM cell, each followed by ``suffix``."""
    count = cell_state_count(cell)
    names = ["h", "c"][:count] if count <= 2 else [f"state{i + 1}" for i in range(count)]
    return [name + suffix for name in names]


def nested_state_labels(layer: Any) -> list[Any]:
    """A layer's state labels nested as ``initial_state`` takes them: one list per stacked cell."""
    labels: list[Any] = []
    for direction in directions(layer):
        cells = cells_of(direction.layer)
        if is_stacked(direction.layer.cell):
            labels += [
                [direction.label_prefix + label for label in cell_state_labels(cell, str(index + 1))]
                for index, cell in enumerate(cells)
            ]
        else:
            labels += [direction.label_prefix + label for label in cell_state_labels(cells[0])]
    return labels


def state_labels(layer: Any) -> list[str]:
    """A layer's state labels, flat, in Keras order: ``["fwd_h", "fwd_c", "bwd_h", "bwd_c"]``."""
    return flatten_states(nested_state_labels(layer))


def flatten_states(states: Any) -> list[Any]:
    """The leaves of a possibly nested list of states (a Keras ``ListWrapper`` too), in order."""
    if isinstance(states, (list, tuple)) or type(states).__name__ == "ListWrapper":
        return [leaf for item in states for leaf in flatten_states(item)]
    return [states]


def children(layer: Any) -> list[Any]:
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

    Raises
    ------
    TypeError
        If the argument is not a Keras model or layer instance.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input(batch_shape=(2, 5, 1)),
    ...                           keras.layers.LSTM(3, stateful=True, name="lstm"),
    ...                           keras.layers.Dense(1, name="head")])
    >>> [path for path, _ in stateful_layers(model)]
    ['lstm']
    """
    if flavour_of(model_or_layer) is None or isinstance(model_or_layer, type):
        raise TypeError(f"expected a Keras model or layer, got {describe(model_or_layer)}")
    found: list[tuple[str, Any]] = []
    seen: set[int] = set()

    def visit(layer: Any, prefix: str) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if is_recurrent(layer):
            if getattr(layer, "stateful", False):
                found.append((prefix + layer.name, layer))
            return
        for child in children(layer):
            visit(child, prefix + _container_prefix(child))

    if is_recurrent(model_or_layer):
        visit(model_or_layer, "")
    else:
        for child in children(model_or_layer):
            visit(child, _container_prefix(child))
    return found


def _container_prefix(layer: Any) -> str:
    is_container = bool(getattr(layer, "layers", None)) and not is_recurrent(layer)
    return layer.name + "/" if is_container else ""


def check_int(name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    """``value`` as a plain ``int``, checked to lie in ``[low, high]``; the package's one integer check.

    Raises ``TypeError`` for anything that is not an integer (``bool`` and ``2.0`` included)
    and ``ValueError`` for an integer out of range; both messages name ``name`` and the
    range.

    Examples
    --------
    >>> check_int("units", 4)
    4
    >>> check_int("units", 0)
    Traceback (most recent call last):
    ...
    ValueError: units must be a positive integer, got 0
    """
    if low > (high if high is not None else low):
        raise ValueError(f"the range for {name} is empty: low={low} is above high={high}")
    if low == 1 and high is None:
        allowed = "a positive integer"
    elif high is None:
        allowed = f"an integer >= {low}"
    else:
        allowed = f"an integer between {low} and {high}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    number = int(value)
    if number < low or (high is not None and number > high):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return number
