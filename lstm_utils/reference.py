"""NumPy reference implementations of Keras's recurrent layers, computed from their own weights.

The step functions (:func:`lstm_step`, :func:`gru_step`, :func:`simple_rnn_step`) are the
gate equations written out in plain NumPy, one time step at a time. :func:`reference_forward`
runs them over a sequence using the weights of a built Keras layer (Keras 3 or Keras 2:
``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN(cell)``, ``RNN([cell, cell, ...])`` and
``Bidirectional`` of any of these) and returns what Keras would compute, in float64.

Chapters use it as an independent check: when Keras's output matches the reference
started from ``[h0, c0]``, the layer really did start from ``[h0, c0]``.
See chapter 1, ``01_state_anatomy.ipynb``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lstm_utils._flavour import flavour_of, keras_module, to_numpy
from lstm_utils._layers import (
    cells_of,
    describe,
    flatten_states,
    is_bidirectional,
    require_recurrent,
    state_labels,
)

__all__ = ["lstm_step", "gru_step", "simple_rnn_step", "reference_forward"]

# Cell classes the reference reproduces, by class name, and how many states each carries.
_CELL_STATES = {"LSTMCell": 2, "GRUCell": 1, "SimpleRNNCell": 1}
_MERGE_MODES = ("concat", "sum", "ave", "mul")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # 1 / (1 + exp(-z)), written with tanh so that large |z| cannot overflow.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _as_float64(name: str, value: Any) -> np.ndarray:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array or tensor, got {type(value).__name__} {value[:20]!r}")
    try:
        array = to_numpy(value)
    except (TypeError, ValueError) as error:  # ragged lists: rows of different lengths
        raise TypeError(
            f"{name} must be a numeric array or tensor with one length per axis (not a ragged list), "
            f"got {type(value).__name__}: {error}"
        ) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array or tensor, got dtype {array.dtype}")
    return array.astype(np.float64)


def _check_step(
    kind: str,
    n_gates: int,
    x_t: np.ndarray,
    h: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None,
    bias_shapes: Sequence[tuple[int, ...]],
) -> None:
    units = recurrent_kernel.shape[0] if recurrent_kernel.ndim == 2 else -1
    expected = {
        "recurrent_kernel": (units, n_gates * units),
        "kernel": (x_t.shape[-1] if x_t.ndim == 2 else -1, n_gates * units),
    }
    if x_t.ndim != 2:
        raise ValueError(f"{kind}: x_t must be 2-D (batch, features), got shape {x_t.shape}")
    for name, array in (("recurrent_kernel", recurrent_kernel), ("kernel", kernel)):
        if array.shape != expected[name]:
            raise ValueError(
                f"{kind}: {name} must have shape {expected[name]} for {units} units and "
                f"{x_t.shape[-1]} input features, got {array.shape}"
            )
    if h.shape != (x_t.shape[0], units):
        raise ValueError(f"{kind}: the state must have shape (batch, units) = {(x_t.shape[0], units)}, got {h.shape}")
    if bias is not None and bias.shape not in bias_shapes:
        wanted = " or ".join(str(s) for s in bias_shapes)
        raise ValueError(f"{kind}: bias must have shape {wanted}, got {bias.shape}")


def lstm_step(
    x_t: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM time step in NumPy, with Keras's weight layout and gate order i, f, c, o.

    With ``z = x_t @ kernel + h @ recurrent_kernel + bias`` split into four blocks of
    ``units`` columns::

        i = sigmoid(z_i)      input gate
        f = sigmoid(z_f)      forget gate
        g = tanh(z_c)         candidate cell state
        o = sigmoid(z_o)      output gate
        c_new = f * c + i * g
        h_new = o * tanh(c_new)

    Parameters
    ----------
    x_t : ndarray, shape (batch, features)
        The inputs at this time step.
    h, c : ndarray, shape (batch, units)
        The hidden state and the cell state before this step.
    kernel : ndarray, shape (features, 4 * units)
        ``cell.kernel`` (the input weights, gate blocks i, f, c, o).
    recurrent_kernel : ndarray, shape (units, 4 * units)
        ``cell.recurrent_kernel``.
    bias : ndarray, shape (4 * units,), optional
        ``cell.bias``; ``None`` for a layer built with ``use_bias=False``.

    Returns
    -------
    h_new, c_new : ndarray, shape (batch, units)
        The states after this step (float64). ``h_new`` is also the step's output.

    Raises
    ------
    ValueError
        If the shapes do not fit together.

    Notes
    -----
    Explained in chapter 1, ``01_state_anatomy.ipynb``.

    Examples
    --------
    >>> import numpy as np
    >>> x_t, h, c = np.ones((1, 2)), np.zeros((1, 3)), np.zeros((1, 3))
    >>> h, c = lstm_step(x_t, h, c, np.full((2, 12), 0.1), np.zeros((3, 12)), np.zeros(12))
    >>> np.round(h, 4), np.round(c, 4)
    (array([[0.0594, 0.0594, 0.0594]]), array([[0.1085, 0.1085, 0.1085]]))
    """
    x_t, h, c = _as_float64("x_t", x_t), _as_float64("h", h), _as_float64("c", c)
    kernel, recurrent_kernel = _as_float64("kernel", kernel), _as_float64("recurrent_kernel", recurrent_kernel)
    bias = None if bias is None else _as_float64("bias", bias)
    _check_step("lstm_step", 4, x_t, h, kernel, recurrent_kernel, bias, [(kernel.shape[1],)])
    if c.shape != h.shape:
        raise ValueError(f"lstm_step: c must have the shape of h {h.shape}, got {c.shape}")
    z = x_t @ kernel + h @ recurrent_kernel
    if bias is not None:
        z = z + bias
    z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
    i = _sigmoid(z_i)
    f = _sigmoid(z_f)
    g = np.tanh(z_c)
    o = _sigmoid(z_o)
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    return h_new, c_new


def gru_step(
    x_t: np.ndarray,
    h: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None = None,
    reset_after: bool = True,
) -> np.ndarray:
    """One GRU time step in NumPy, with Keras's weight layout and gate order z, r, h.

    ``x_t @ kernel`` and ``h @ recurrent_kernel`` are split into three blocks of ``units``
    columns (update gate z, reset gate r, candidate). With ``reset_after=True`` (the Keras
    default) ``bias`` has shape ``(2, 3 * units)``: row 0 is added to the input part, row 1
    to the recurrent part, and the reset gate multiplies the recurrent candidate *after*
    the matrix product::

        z  = sigmoid(xz + hz)
        r  = sigmoid(xr + hr)
        hh = tanh(xh + r * (h @ U_h + b_rec_h))       # reset_after=True
        hh = tanh(xh + (r * h) @ U_h)                 # reset_after=False
        h_new = z * h + (1 - z) * hh

    Parameters
    ----------
    x_t : ndarray, shape (batch, features)
    h : ndarray, shape (batch, units)
    kernel : ndarray, shape (features, 3 * units)
    recurrent_kernel : ndarray, shape (units, 3 * units)
    bias : ndarray, optional
        Shape ``(2, 3 * units)`` when ``reset_after`` is true, ``(3 * units,)`` otherwise.
    reset_after : bool
        The layer's ``reset_after`` option.

    Returns
    -------
    ndarray, shape (batch, units)
        The new state, which is also the step's output (float64).

    Raises
    ------
    ValueError
        If the shapes do not fit together.

    Notes
    -----
    Explained in chapter 1, ``01_state_anatomy.ipynb``.

    Examples
    --------
    >>> import numpy as np
    >>> h = gru_step(np.ones((1, 2)), np.zeros((1, 3)), np.full((2, 9), 0.1),
    ...              np.zeros((3, 9)), np.zeros((2, 9)))
    >>> np.round(h, 4)
    array([[0.0889, 0.0889, 0.0889]])
    """
    x_t, h = _as_float64("x_t", x_t), _as_float64("h", h)
    kernel, recurrent_kernel = _as_float64("kernel", kernel), _as_float64("recurrent_kernel", recurrent_kernel)
    bias = None if bias is None else _as_float64("bias", bias)
    n = kernel.shape[1] if kernel.ndim == 2 else -1
    _check_step("gru_step", 3, x_t, h, kernel, recurrent_kernel, bias, [(2, n)] if reset_after else [(n,)])
    units = h.shape[1]
    input_bias: np.ndarray | float
    if bias is None:
        input_bias, recurrent_bias = 0.0, np.zeros(3 * units)
    elif reset_after:
        input_bias, recurrent_bias = bias[0], bias[1]
    else:
        input_bias, recurrent_bias = bias, np.zeros(3 * units)
    x_z, x_r, x_h = np.split(x_t @ kernel + input_bias, 3, axis=-1)
    U_z, U_r, U_h = np.split(recurrent_kernel, 3, axis=-1)
    b_z, b_r, b_h = np.split(recurrent_bias, 3)
    z = _sigmoid(x_z + h @ U_z + b_z)
    r = _sigmoid(x_r + h @ U_r + b_r)
    # reset_after (Keras's default, cuDNN's form) applies r after the recurrent product.
    hh = np.tanh(x_h + r * (h @ U_h + b_h)) if reset_after else np.tanh(x_h + (r * h) @ U_h)
    h_new: np.ndarray = z * h + (1.0 - z) * hh
    return h_new


def simple_rnn_step(
    x_t: np.ndarray,
    h: np.ndarray,
    kernel: np.ndarray,
    recurrent_kernel: np.ndarray,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    """One ``SimpleRNN`` time step in NumPy: ``tanh(x_t @ kernel + h @ recurrent_kernel + bias)``.

    Parameters
    ----------
    x_t : ndarray, shape (batch, features)
    h : ndarray, shape (batch, units)
    kernel : ndarray, shape (features, units)
    recurrent_kernel : ndarray, shape (units, units)
    bias : ndarray, shape (units,), optional

    Returns
    -------
    ndarray, shape (batch, units)
        The new state, which is also the step's output (float64).

    Raises
    ------
    ValueError
        If the shapes do not fit together.

    Notes
    -----
    Explained in chapter 1, ``01_state_anatomy.ipynb``.

    Examples
    --------
    >>> import numpy as np
    >>> simple_rnn_step(np.ones((1, 1)), np.zeros((1, 2)), np.ones((1, 2)), np.eye(2)).round(4)
    array([[0.7616, 0.7616]])
    """
    x_t, h = _as_float64("x_t", x_t), _as_float64("h", h)
    kernel, recurrent_kernel = _as_float64("kernel", kernel), _as_float64("recurrent_kernel", recurrent_kernel)
    bias = None if bias is None else _as_float64("bias", bias)
    _check_step("simple_rnn_step", 1, x_t, h, kernel, recurrent_kernel, bias, [(kernel.shape[1],)])
    z = x_t @ kernel + h @ recurrent_kernel
    if bias is not None:
        z = z + bias
    h_new: np.ndarray = np.tanh(z)
    return h_new


# ----------------------------------------------------------------------------- layers


def _check_activation(cell: Any, attribute: str, wanted: str) -> None:
    flavour = flavour_of(cell)
    K = keras_module(flavour) if flavour is not None else None
    function = getattr(cell, attribute)
    if K is None or function is not K.activations.get(wanted):
        name = getattr(function, "__name__", repr(function))
        raise NotImplementedError(
            f"the NumPy reference supports {type(cell).__name__} with {attribute}={wanted!r} "
            f"only (the default); got {name!r}"
        )


def _cell_kind(cell: Any, layer: Any) -> str:
    kind = type(cell).__name__
    if kind not in _CELL_STATES or flavour_of(cell) is None:
        raise NotImplementedError(
            f"the NumPy reference supports the Keras cells {sorted(_CELL_STATES)} "
            f"(LSTM, GRU, SimpleRNN); {describe(layer)} has a {kind}"
        )
    _check_activation(cell, "activation", "tanh")
    if kind != "SimpleRNNCell":
        _check_activation(cell, "recurrent_activation", "sigmoid")
    if getattr(cell, "kernel", None) is None:
        raise ValueError(
            f"{describe(layer)} is not built, so it has no weights yet: call it on an "
            "input first (or call layer.build(input_shape))"
        )
    return kind


def _state_count(layer: Any) -> int:
    return len(state_labels(layer))


def _stored_states(layer: Any) -> list[Any] | None:
    """A stateful layer's current state values (flat), or None if it has none yet."""
    if not getattr(layer, "stateful", False):
        return None
    stored = getattr(layer, "states", None)
    if stored is None:
        return None
    flat = flatten_states(stored)
    if not flat or any(s is None for s in flat):
        return None
    return flat


def _check_layer(layer: Any) -> list[str]:
    """Check that the reference can reproduce a layer; return its cells' kinds."""
    if is_bidirectional(layer):
        merge_mode = getattr(layer, "merge_mode", "concat")
        if merge_mode not in _MERGE_MODES:
            raise NotImplementedError(
                f"the NumPy reference supports Bidirectional merge_mode in {_MERGE_MODES}, got {merge_mode!r}"
            )
        return _check_layer(layer.forward_layer) + _check_layer(layer.backward_layer)
    if getattr(layer, "time_major", False):
        raise NotImplementedError(f"{describe(layer)} has time_major=True; not supported")
    if not getattr(layer, "built", False):
        raise ValueError(
            f"{describe(layer)} is not built, so it has no weights yet: call it on an "
            "input first (or call layer.build(input_shape))"
        )
    return [_cell_kind(cell, layer) for cell in cells_of(layer)]


def _run_cells(layer: Any, x: np.ndarray, states: list[np.ndarray] | None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run an RNN layer (one cell or stacked cells) over x, in the layer's own direction."""
    cells = cells_of(layer)
    kinds = _check_layer(layer)
    batch, timesteps = x.shape[0], x.shape[1]
    units = [int(cell.units) for cell in cells]
    n_states = [_CELL_STATES[kind] for kind in kinds]
    first_kernel = to_numpy(cells[0].kernel)
    if x.shape[2] != first_kernel.shape[0]:
        raise ValueError(
            f"{describe(layer)} was built for {first_kernel.shape[0]} input features; "
            f"x has {x.shape[2]} (shape {x.shape})"
        )
    labels = state_labels(layer)
    if states is None:
        stored = _stored_states(layer)
        if stored is not None:
            states = [_as_float64("stored state", s) for s in stored]
        else:
            states = [np.zeros((batch, u)) for u, n in zip(units, n_states, strict=True) for _ in range(n)]
    if len(states) != sum(n_states):
        raise ValueError(f"{describe(layer)} has {sum(n_states)} states {labels}; initial_state holds {len(states)}")
    widths = [u for u, n in zip(units, n_states, strict=True) for _ in range(n)]
    for label, state, width in zip(labels, states, widths, strict=True):
        if state.shape != (batch, width):
            raise ValueError(
                f"initial state {label} of {describe(layer)} must have shape "
                f"(batch, units) = {(batch, width)}, got {state.shape}"
            )
    weights = []
    for cell in cells:
        bias = None if getattr(cell, "bias", None) is None else _as_float64("bias", cell.bias)
        weights.append(
            (_as_float64("kernel", cell.kernel), _as_float64("recurrent_kernel", cell.recurrent_kernel), bias)
        )
    steps = range(timesteps - 1, -1, -1) if getattr(layer, "go_backwards", False) else range(timesteps)
    current = [s.copy() for s in states]
    outputs = []
    for t in steps:
        inp = x[:, t]
        position = 0
        for kind, cell, (kernel, recurrent_kernel, bias) in zip(kinds, cells, weights, strict=True):
            if kind == "LSTMCell":
                h, c = lstm_step(inp, current[position], current[position + 1], kernel, recurrent_kernel, bias)
                current[position : position + 2] = [h, c]
                position += 2
            elif kind == "GRUCell":
                h = gru_step(inp, current[position], kernel, recurrent_kernel, bias, bool(cell.reset_after))
                current[position] = h
                position += 1
            else:
                h = simple_rnn_step(inp, current[position], kernel, recurrent_kernel, bias)
                current[position] = h
                position += 1
            inp = h
        outputs.append(inp)
    # Keras returns a go_backwards layer's sequence in processing order, and so does this.
    return np.stack(outputs, axis=1), current


def reference_forward(layer: Any, x: Any, initial_state: Any = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Recompute a Keras recurrent layer's forward pass in NumPy (float64) from its own weights.

    Supports ``LSTM``, ``GRU`` (``reset_after`` true or false) and ``SimpleRNN``, ``RNN`` over
    one of their cells or over a list of them (stacked cells), and ``Bidirectional`` of any
    of these, from Keras 3 (``keras``, ``tf.keras``) or Keras 2 (``tf_keras``). It reads the
    weights only; the layer is not called and nothing is changed. Dropout is ignored, as in
    inference. It agrees with Keras to about 1e-6.

    Parameters
    ----------
    layer : Keras layer
        A built recurrent layer (it has been called once, or ``build`` was called).
    x : array-like, shape (batch, timesteps, features)
        The input sequences (NumPy array or tensor).
    initial_state : array-like or list of them, optional
        The states to start from, in Keras order: ``[h, c]`` for an LSTM, ``[h]`` (or a bare
        ``h``) for a GRU or SimpleRNN, cell by cell for stacked cells (nested like Keras wants,
        ``[[h1, c1], [h2, c2]]``, or flat, ``[h1, c1, h2, c2]``: both are read the same way),
        and forward then backward for ``Bidirectional`` (``[fwd_h, fwd_c, bwd_h, bwd_c]``).
        Each has shape ``(batch, units)``; no broadcasting. By default: zeros, or the stored
        states of a stateful layer.

    Returns
    -------
    sequence : ndarray, shape (batch, timesteps, units)
        The output at every step (what ``return_sequences=True`` returns). For
        ``Bidirectional``: forward and backward outputs merged per time step by the layer's
        ``merge_mode`` (with ``"concat"``: ``2 * units`` wide), the backward outputs put back
        into input order; the Keras output with ``return_sequences=False`` is then the
        forward part of ``sequence[:, -1]`` with the backward part of ``sequence[:, 0]``.
        For a ``go_backwards`` layer, the steps in the order they were processed, as Keras does.
    final_states : list of ndarray
        The states after the last step, flat, in the order of ``initial_state``
        (what ``return_state=True`` returns after the output).

    Raises
    ------
    TypeError
        If ``layer`` is not a recurrent Keras layer.
    ValueError
        If the layer is not built, ``x`` is not 3-D or has the wrong number of features, or
        ``initial_state`` has the wrong number of states or a wrong shape.
    NotImplementedError
        For what the reference does not reproduce: other cells or activations than the
        defaults (tanh, and sigmoid for the gates), ``time_major``, ``merge_mode=None``.

    Notes
    -----
    Explained in chapter 1, ``01_state_anatomy.ipynb``.

    Examples
    --------
    >>> import numpy as np, keras
    >>> x = np.random.default_rng(0).random((2, 5, 3)).astype("float32")
    >>> lstm = keras.layers.LSTM(4, return_sequences=True, return_state=True)
    >>> seq, h, c = lstm(x)
    >>> ref_seq, (ref_h, ref_c) = reference_forward(lstm, x)
    >>> ref_seq.shape, bool(np.allclose(seq, ref_seq, atol=1e-6)), bool(np.allclose(c, ref_c, atol=1e-6))
    ((2, 5, 4), True, True)
    """
    require_recurrent(layer, "reference_forward")
    bidirectional = is_bidirectional(layer)
    _check_layer(layer)
    x = _as_float64("x", x)
    if x.ndim != 3:
        raise ValueError(f"x must be 3-D (batch, timesteps, features), got shape {x.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"x has no time steps (shape {x.shape}): there is nothing to run the layer over")
    states = None
    if initial_state is not None:
        states = [_as_float64("initial_state entry", s) for s in flatten_states(initial_state)]
        expected = _state_count(layer)
        if len(states) != expected:
            raise ValueError(
                f"{describe(layer)} has {expected} state{'s' if expected != 1 else ''}; "
                f"initial_state holds {len(states)}"
            )
    if not bidirectional:
        return _run_cells(layer, x, states)

    merge_mode = layer.merge_mode
    forward, backward = layer.forward_layer, layer.backward_layer
    n_forward = _state_count(forward)
    forward_states = None if states is None else states[:n_forward]
    backward_states = None if states is None else states[n_forward:]
    y, forward_final = _run_cells(forward, x, forward_states)
    y_rev, backward_final = _run_cells(backward, x, backward_states)
    y_rev = y_rev[:, ::-1]  # Bidirectional flips the backward sequence back into input order
    if merge_mode == "concat":
        sequence = np.concatenate([y, y_rev], axis=-1)
    elif merge_mode == "sum":
        sequence = y + y_rev
    elif merge_mode == "ave":
        sequence = (y + y_rev) / 2
    else:
        sequence = y * y_rev
    return np.ascontiguousarray(sequence), forward_final + backward_final
