"""The states at every time step, not only the last: ``c`` at every step of an LSTM.

``return_sequences=True`` gives ``h`` at every step, and ``return_state=True`` the final
``h`` and ``c``; Keras has no option for ``c`` at every step. :func:`state_sequence` gets it
the Keras way: it wraps the layer's own cell in a cell whose output is its whole new state
``[h, c]``, runs that with ``keras.layers.RNN`` over the inputs, and splits the result.
The wrapper shares the layer's cell, so the weights are the layer's own and nothing is
copied or changed. Chapter 1, ``01_state_anatomy.ipynb``, explains ``h`` and ``c``.
"""

from __future__ import annotations

import functools
import types
from typing import TYPE_CHECKING, Any

import numpy as np

from lstm_utils._flavour import class_names, flavour_of, keras_module, to_numpy
from lstm_utils._layers import cell_state_count, describe, flatten_states, is_bidirectional, require_recurrent

__all__ = ["state_sequence"]

if TYPE_CHECKING:  # mixed into a Keras Layer, whose methods the type checker cannot see
    _LayerBase = Any
else:
    _LayerBase = object

_SUPPORTED_CELLS = ("LSTMCell", "GRUCell", "SimpleRNNCell")


class _StateOutputCellLogic(_LayerBase):  # type: ignore[misc]  # a mixin for a Keras class
    """A cell that runs ``cell`` and outputs its whole new state, concatenated: ``[h, c]``."""

    keras: types.ModuleType  # set by _state_output_cell_class: keras or tf_keras

    def __init__(self, cell: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell
        self.state_size = cell.state_size
        self.output_size = sum(int(size) for size in flatten_states(cell.state_size))

    def build(self, input_shape: Any) -> None:
        self.built = True  # the wrapped cell was built with its layer

    def call(self, inputs: Any, states: Any, training: Any = None) -> tuple[Any, Any]:
        _, new_states = self.cell(inputs, states, training=False)
        flat = flatten_states(new_states)
        if flavour_of(self) == "keras3":
            return self.keras.ops.concatenate(flat, axis=-1), new_states
        import tensorflow as tf  # Keras 2 runs on TensorFlow alone

        return tf.concat(flat, axis=-1), new_states


@functools.cache
def _state_output_cell_class(K: types.ModuleType) -> type:
    return types.new_class(
        "StateOutputCell",
        (_StateOutputCellLogic, K.layers.Layer),
        exec_body=lambda namespace: namespace.update(keras=K, __module__=__name__),
    )


def state_sequence(layer: Any, x: Any, initial_state: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``h`` and ``c`` at every time step of a recurrent layer, computed by Keras with its own weights.

    Parameters
    ----------
    layer : keras.layers.Layer
        A built ``LSTM``, ``GRU`` or ``SimpleRNN`` layer (or ``RNN`` over one of their
        cells) of Keras 3 or Keras 2. Dropout is not applied (inference).
    x : array-like, shape (batch, timesteps, features)
        The inputs.
    initial_state : list of array-like, optional
        The start state in Keras order (``[h, c]`` for an LSTM, ``[h]`` for a GRU), each
        ``(batch, units)``. By default: zeros, or the current state of a stateful layer
        (which is read, not changed).

    Returns
    -------
    h_seq : ndarray, shape (batch, timesteps, units)
        ``h`` after every step, as ``return_sequences=True`` returns it (for a
        ``go_backwards`` layer, in the order the steps were processed).
    c_seq : ndarray of shape (batch, timesteps, units), or None
        ``c`` after every step for an LSTM; ``None`` for a GRU or SimpleRNN, which have no ``c``.

    Raises
    ------
    TypeError
        If ``layer`` is not a recurrent layer, or ``x`` or a state is not numeric.
    ValueError
        If the layer is not built, is ``Bidirectional`` or holds stacked cells (run each
        direction or cell on its own), or ``x`` or ``initial_state`` has the wrong shape.

    Notes
    -----
    See chapter 1, ``01_state_anatomy.ipynb``.

    Examples
    --------
    >>> import numpy as np, keras, lstm_utils
    >>> x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    >>> lstm = keras.layers.LSTM(4, return_state=True)
    >>> _, h_last, c_last = lstm(x)
    >>> h_seq, c_seq = state_sequence(lstm, x)
    >>> h_seq.shape, c_seq.shape, bool(np.allclose(c_seq[:, -1], c_last, atol=1e-6))
    ((2, 5, 4), (2, 5, 4), True)
    """
    require_recurrent(layer, "state_sequence")
    if is_bidirectional(layer) or "StackedRNNCells" in class_names(layer.cell):
        raise ValueError(
            f"state_sequence runs one cell in one direction; {describe(layer)} is Bidirectional or "
            "holds stacked cells: run it on layer.forward_layer and layer.backward_layer, or on an "
            "RNN over each cell, instead"
        )
    kind = type(layer.cell).__name__
    if kind not in _SUPPORTED_CELLS:
        raise ValueError(f"state_sequence supports the cells {_SUPPORTED_CELLS}; {describe(layer)} has a {kind}")
    if not getattr(layer, "built", False) or getattr(layer.cell, "kernel", None) is None:
        raise ValueError(f"{describe(layer)} is not built yet: call it on an input first (or call layer.build)")
    inputs = _as_float_array("x", x)
    if inputs.ndim != 3:
        raise ValueError(f"x must be 3-D (batch, timesteps, features), got shape {inputs.shape}")
    batch, units, count = inputs.shape[0], int(layer.cell.units), cell_state_count(layer.cell)
    features = int(to_numpy(layer.cell.kernel).shape[0])
    if inputs.shape[2] != features:
        raise ValueError(f"{describe(layer)} was built for {features} input features; x has {inputs.shape[2]}")
    start = _start_state(layer, initial_state, batch, units, count)
    flavour = flavour_of(layer)
    assert flavour is not None  # require_recurrent checked it
    K = keras_module(flavour)
    import tensorflow as tf  # both versions take tensors; Keras 2 refuses NumPy states in eager calls

    runner = K.layers.RNN(
        _state_output_cell_class(K)(layer.cell), return_sequences=True, go_backwards=layer.go_backwards
    )
    states = [tf.constant(value) for value in start]
    sequence = to_numpy(runner(tf.constant(inputs), initial_state=states if count > 1 else states[0]))
    h_seq, c_seq = sequence[..., :units], sequence[..., units:]
    return h_seq, (c_seq if count > 1 else None)


def _as_float_array(name: str, value: Any) -> np.ndarray:
    try:
        array = to_numpy(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a numeric array or tensor, got {type(value).__name__} ({error})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array or tensor, got dtype {array.dtype}")
    return array.astype(np.float32)


def _start_state(layer: Any, initial_state: Any, batch: int, units: int, count: int) -> list[np.ndarray]:
    labels = ["h", "c"][:count]
    if initial_state is None:
        stored = layer.states if getattr(layer, "stateful", False) else None
        leaves = flatten_states(stored) if stored is not None else []
        if leaves and all(leaf is not None for leaf in leaves):
            return [to_numpy(leaf).astype(np.float32) for leaf in leaves]
        return [np.zeros((batch, units), np.float32) for _ in labels]
    given = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
    if len(given) != count:
        raise ValueError(f"{describe(layer)} takes {count} initial state(s) {labels}; got {len(given)}")
    start = []
    for label, value in zip(labels, given, strict=True):
        array = _as_float_array(f"initial state {label}", value)
        if array.shape != (batch, units):
            raise ValueError(
                f"initial state {label} must have shape (batch, units) = {(batch, units)}, got {array.shape}"
            )
        start.append(array)
    return start
