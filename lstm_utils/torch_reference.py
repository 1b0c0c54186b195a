"""A PyTorch oracle for Keras recurrent layers: the same weights in ``torch.nn.LSTM``/``GRU``/``RNN``.

:func:`torch_rnn_from_keras` builds the PyTorch layer that computes what a built Keras layer
(Keras 3 or Keras 2) computes, its weights copied; :func:`torch_forward` runs it on a batch
and returns the outputs of every step and the final states as NumPy arrays, in Keras's
layout. A second framework's independent implementation agreeing with Keras (to float32
rounding) is the strongest check a chapter can show that a layer started from the state it
was given.

How the weights map
-------------------
- LSTM: Keras and PyTorch both order the gates ``i, f, c, o`` (PyTorch calls ``c`` ``g``);
  ``weight_ih_l0 = kernel.T``, ``weight_hh_l0 = recurrent_kernel.T``, ``bias_ih_l0 = bias``,
  ``bias_hh_l0 = 0``.
- GRU: Keras orders the gates ``z, r, h``, PyTorch ``r, z, n``; the blocks are reordered.
  Only ``reset_after=True`` (the default of both Keras versions) is PyTorch's GRU: its
  ``bias`` has two rows, input and recurrent, which become ``bias_ih_l0`` and ``bias_hh_l0``.
  ``reset_after=False`` applies the reset gate before the recurrent matrix, which PyTorch's
  GRU cannot express: refused.
- SimpleRNN with ``tanh``: ``torch.nn.RNN(nonlinearity="tanh")``, ``bias_hh_l0 = 0``.

- ``Bidirectional`` of one of these: ``bidirectional=True``, the forward layer's weights in
  the ``_l0`` parameters, the backward layer's in ``_l0_reverse``. PyTorch concatenates the two
  directions (Keras's ``merge_mode="concat"``); :func:`torch_forward` applies ``"sum"``,
  ``"ave"`` and ``"mul"`` itself. ``merge_mode=None`` is refused (pass each direction).

Refused, with an error naming the layer: stacked cells (``RNN([cell, cell])``), custom cells,
activations other than ``tanh`` and recurrent activations other than ``sigmoid`` (PyTorch's
are fixed), Keras 2's ``time_major=True``. ``go_backwards=True`` is followed: the input is
reversed in time, as Keras does, and the outputs come in the order Keras gives them. Dropout
acts only in training, so it does not enter here.

PyTorch is imported inside the functions only: importing this module does not import it.
See chapter 12.

Examples
--------
>>> from lstm_utils.torch_reference import torch_forward
>>> torch_forward("not a layer", [[[0.0]]])
Traceback (most recent call last):
...
TypeError: torch_forward expects a Keras recurrent layer (LSTM, GRU, SimpleRNN, RNN(cell) or Bidirectional) \
from keras/tf.keras or tf_keras, got builtins.str
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from lstm_utils._flavour import to_numpy
from lstm_utils._layers import (
    cell_state_count,
    cells_of,
    describe,
    directions,
    is_bidirectional,
    is_stacked,
    require_recurrent,
    state_labels,
)

if TYPE_CHECKING:
    import torch

__all__ = ["torch_rnn_from_keras", "torch_forward"]

_KINDS = {"LSTMCell": ("LSTM", 4), "GRUCell": ("GRU", 3), "SimpleRNNCell": ("RNN", 1)}
_DTYPES = ("float64", "float32")
_MERGE_MODES = ("concat", "sum", "ave", "mul")


def _activation_name(function: Any) -> str:
    return str(getattr(function, "__name__", function))


def _check_direction(layer: Any, function: str) -> tuple[Any, str, int]:
    """The cell of a plain layer the oracle can reproduce, its PyTorch class name and gate count."""
    if is_stacked(layer.cell):
        raise ValueError(
            f"{function}: {describe(layer)} holds stacked cells (RNN([cell, cell])); pass one layer per cell"
        )
    (cell,) = cells_of(layer)
    kind = type(cell).__name__
    if kind not in _KINDS:
        raise ValueError(
            f"{function}: {describe(layer)} has a {kind} cell; only LSTM, GRU (reset_after=True) and "
            f"SimpleRNN cells have a PyTorch twin"
        )
    if not getattr(layer, "built", False) or not getattr(cell, "built", False):
        raise ValueError(
            f"{function}: {describe(layer)} is not built yet, so it has no weights; call it on an input "
            f"(or build the model) first"
        )
    if getattr(layer, "time_major", False):
        raise ValueError(f"{function}: {describe(layer)} has time_major=True; the oracle takes batch-major layers")
    if kind == "GRUCell" and not cell.reset_after:
        raise ValueError(
            f"{function}: {describe(layer)} has reset_after=False, which applies the reset gate before the "
            f"recurrent matrix; torch.nn.GRU computes only reset_after=True"
        )
    expected = {"activation": "tanh"}
    if kind != "SimpleRNNCell":
        expected["recurrent_activation"] = "sigmoid"
    for attribute, name in expected.items():
        got = _activation_name(getattr(cell, attribute))
        if got != name:
            raise ValueError(
                f"{function}: {describe(layer)} has {attribute}={got!r}; PyTorch's {_KINDS[kind][0]} uses {name!r} only"
            )
    torch_class, gates = _KINDS[kind]
    return cell, torch_class, gates


class _Plan(NamedTuple):
    """What the oracle maps: one or two (layer, cell) directions of one PyTorch class."""

    directions: list[tuple[Any, Any]]
    torch_class: str
    gates: int
    merge_mode: str | None  # None for a plain layer


def _check_layer(layer: Any, function: str) -> _Plan:
    require_recurrent(layer, function)
    if not is_bidirectional(layer):
        cell, torch_class, gates = _check_direction(layer, function)
        return _Plan([(layer, cell)], torch_class, gates, None)
    if not getattr(layer, "built", False):
        raise ValueError(
            f"{function}: {describe(layer)} is not built yet, so it has no weights; call it on an input "
            f"(or build the model) first"
        )
    checked = [_check_direction(d.layer, function) for d in directions(layer)]
    parts = directions(layer)
    (forward, forward_cell), (backward, backward_cell) = ((d.layer, c[0]) for d, c in zip(parts, checked, strict=True))
    merge_mode = layer.merge_mode
    if merge_mode not in _MERGE_MODES:
        raise ValueError(
            f"{function}: {describe(layer)} has merge_mode={merge_mode!r}; the oracle merges with one of "
            f"{_MERGE_MODES} (pass layer.forward_layer and layer.backward_layer one at a time)"
        )
    same = (
        checked[0][1] == checked[1][1]
        and tuple(forward_cell.recurrent_kernel.shape) == tuple(backward_cell.recurrent_kernel.shape)
        and bool(forward_cell.use_bias) == bool(backward_cell.use_bias)
    )
    if not same or getattr(forward, "go_backwards", False) or not getattr(backward, "go_backwards", False):
        raise ValueError(
            f"{function}: {describe(layer)} has directions PyTorch's bidirectional {checked[0][1]} cannot hold "
            f"(different kinds, units or bias, or a forward layer that goes backwards); pass "
            f"layer.forward_layer and layer.backward_layer one at a time"
        )
    return _Plan([(forward, forward_cell), (backward, backward_cell)], checked[0][1], checked[0][2], merge_mode)


def _keras_to_torch_blocks(array: np.ndarray, kind: str, units: int) -> np.ndarray:
    """Reorder the gate blocks of the last axis from Keras's order to PyTorch's."""
    if kind != "GRU":
        return array
    z, r, h = (array[..., i * units : (i + 1) * units] for i in range(3))
    return np.concatenate([r, z, h], axis=-1)


def torch_rnn_from_keras(layer: Any, *, dtype: str = "float64") -> torch.nn.Module:
    """A ``torch.nn.LSTM``, ``GRU`` or ``RNN`` computing what a built Keras recurrent layer computes.

    The PyTorch layer is batch-first, one layer, one direction (two for ``Bidirectional``),
    its weights copied from the Keras layer (Keras 3 or Keras 2) as the module docstring
    describes; it is in eval mode and needs no gradients. See chapter 12.

    Parameters
    ----------
    layer : Keras LSTM, GRU or SimpleRNN layer (or ``RNN`` of one such cell), or Bidirectional of one
        Built: it has weights.
    dtype : {"float64", "float32"}, default "float64"
        The PyTorch layer's dtype; float64 makes it a reference for Keras's float32.

    Returns
    -------
    torch.nn.Module
        ``torch.nn.LSTM``, ``torch.nn.GRU`` or ``torch.nn.RNN`` with ``batch_first=True``.

    Raises
    ------
    TypeError
        If ``layer`` is not a Keras recurrent layer, or ``dtype`` is not text.
    ValueError
        If the layer is unbuilt, stacked, a GRU with ``reset_after=False``, has other
        activations than PyTorch's, is ``Bidirectional`` with ``merge_mode=None`` or unlike
        directions, or ``dtype`` is not one of the two.

    Examples
    --------
    >>> torch_rnn_from_keras(3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: torch_rnn_from_keras expects a Keras recurrent layer ... got builtins.int
    """
    plan = _check_layer(layer, "torch_rnn_from_keras")
    if not isinstance(dtype, str):
        raise TypeError(f"torch_rnn_from_keras: dtype must be one of {_DTYPES}, got {type(dtype).__name__}")
    if dtype not in _DTYPES:
        raise ValueError(f"torch_rnn_from_keras: dtype must be one of {_DTYPES}, got {dtype!r}")
    import torch

    kind = plan.torch_class
    first_cell = plan.directions[0][1]
    features, units = (int(w.shape[0]) for w in (first_cell.kernel, first_cell.recurrent_kernel))
    use_bias = bool(first_cell.use_bias)
    options: dict[str, Any] = {"batch_first": True, "bias": use_bias, "bidirectional": len(plan.directions) == 2}
    if kind == "RNN":
        options["nonlinearity"] = "tanh"
    module: torch.nn.Module = getattr(torch.nn, kind)(features, units, **options)
    values: dict[str, np.ndarray] = {}
    for suffix, (_, cell) in zip(("_l0", "_l0_reverse")[: len(plan.directions)], plan.directions, strict=True):
        kernel = to_numpy(cell.kernel).astype(np.float64)
        recurrent = to_numpy(cell.recurrent_kernel).astype(np.float64)
        values["weight_ih" + suffix] = _keras_to_torch_blocks(kernel, kind, units).T
        values["weight_hh" + suffix] = _keras_to_torch_blocks(recurrent, kind, units).T
        if use_bias:
            bias = to_numpy(cell.bias).astype(np.float64)
            if kind == "GRU":  # reset_after=True: rows are the input bias and the recurrent bias
                values["bias_ih" + suffix] = _keras_to_torch_blocks(bias[0], kind, units)
                values["bias_hh" + suffix] = _keras_to_torch_blocks(bias[1], kind, units)
            else:
                values["bias_ih" + suffix] = bias
                values["bias_hh" + suffix] = np.zeros(plan.gates * units)
    torch_dtype = torch.float64 if dtype == "float64" else torch.float32
    module = module.to(torch_dtype)
    with torch.no_grad():
        for name, value in values.items():
            parameter = getattr(module, name)
            if tuple(parameter.shape) != value.shape:  # pragma: no cover - a mapping error, not user input
                raise AssertionError(f"{name}: torch shape {tuple(parameter.shape)}, mapped {value.shape}")
            parameter.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(torch_dtype))
    module.eval()
    module.requires_grad_(False)
    return module


def _as_array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"torch_forward: {name} must be a numeric array or tensor, got {type(value).__name__}")
    try:
        array = to_numpy(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"torch_forward: {name} must be a numeric array with one length per axis: {error}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"torch_forward: {name} must be a numeric array or tensor, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.isfinite(array).sum())
        raise ValueError(f"torch_forward: {name} holds {bad} NaN or infinite values; expected finite numbers")
    return array


def torch_forward(
    layer: Any, x: Any, initial_state: Sequence[Any] | None = None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run a Keras recurrent layer's weights through PyTorch: outputs of every step, final states.

    Independent of Keras's own kernels, so agreement with ``layer(x, initial_state=...)``
    (to about ``1e-6`` in float32) says both computed the same thing. Nothing of the Keras
    layer changes: a stateful layer's state is neither read nor written (``initial_state=None``
    starts from zeros; pass its states to continue from them).
    See chapter 12.

    Parameters
    ----------
    layer : Keras LSTM, GRU (reset_after=True) or SimpleRNN layer, or Bidirectional of one, built
        Keras 3 or Keras 2; see :func:`torch_rnn_from_keras` for what is refused.
    x : array-like, shape (batch, timesteps, features)
        Finite numbers; ``features`` must be the layer's input size.
    initial_state : list of arrays, optional
        ``[h, c]`` for an LSTM, ``[h]`` for a GRU or SimpleRNN (``[fwd_h, fwd_c, bwd_h, bwd_c]``
        for a ``Bidirectional`` LSTM), each ``(batch, units)`` and finite (a single array is
        accepted for a one-state layer). Zeros when omitted.

    Returns
    -------
    outputs : np.ndarray, shape (batch, timesteps, units), float64
        Every step's output, whatever ``return_sequences`` says (the last step is
        ``outputs[:, -1]``); for ``go_backwards=True`` in the order Keras gives them. For
        ``Bidirectional``: both directions merged per step by ``merge_mode`` (``2 * units``
        wide for ``"concat"``), the backward outputs in input order, as Keras returns them
        with ``return_sequences=True``; with ``return_sequences=False`` Keras returns the
        merge of the two final ``h`` states instead (``states[0]`` and ``states[2]`` for an
        LSTM, ``states[0]`` and ``states[1]`` otherwise).
    states : list of np.ndarray, each (batch, units), float64
        The final states in Keras's order: ``[h, c]`` for an LSTM, ``[h]`` otherwise;
        ``[fwd_h, fwd_c, bwd_h, bwd_c]`` for a ``Bidirectional`` LSTM.

    Raises
    ------
    TypeError
        If ``layer`` is not a Keras recurrent layer, or ``x``/``initial_state`` are not
        numeric arrays (or a list of them).
    ValueError
        If the layer cannot be mapped (see :func:`torch_rnn_from_keras`), ``x`` is not 3-D with
        the layer's feature count, or holds NaN/inf, or ``initial_state`` has the wrong number
        of arrays, shapes or non-finite values.

    Examples
    --------
    >>> torch_forward(object(), [[[1.0]]])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: torch_forward expects a Keras recurrent layer ... got builtins.object
    """
    plan = _check_layer(layer, "torch_forward")
    cell = plan.directions[0][1]
    features, units = (int(w.shape[0]) for w in (cell.kernel, cell.recurrent_kernel))
    inputs = _as_array("x", x)
    if inputs.ndim != 3 or inputs.shape[-1] != features or 0 in inputs.shape:
        raise ValueError(
            f"torch_forward: x must have shape (batch, timesteps, {features}) for {describe(layer)}, "
            f"batch and timesteps at least 1, got shape {inputs.shape}"
        )
    batch = inputs.shape[0]
    per_direction = cell_state_count(cell)
    labels = state_labels(layer)
    count = len(labels)
    states: list[np.ndarray] = []
    if initial_state is not None:
        given: Any = initial_state
        if count == 1 and not isinstance(given, (list, tuple)):
            given = [given]
        if not isinstance(given, (list, tuple)):
            raise TypeError(
                f"torch_forward: initial_state must be a list of {count} arrays {labels}, "
                f"got {type(initial_state).__name__}"
            )
        if len(given) != count:
            raise ValueError(
                f"torch_forward: initial_state must hold {count} arrays {labels} for {describe(layer)}, "
                f"got {len(given)}"
            )
        for label, value in zip(labels, given, strict=True):
            array = _as_array(f"initial_state {label}", value)
            if array.shape != (batch, units):
                raise ValueError(
                    f"torch_forward: initial_state {label} must have shape ({batch}, {units}) (batch of x, "
                    f"units of {describe(layer)}), got {array.shape}"
                )
            states.append(array)
    module = torch_rnn_from_keras(layer)
    import torch

    if plan.merge_mode is None and getattr(layer, "go_backwards", False):
        inputs = inputs[:, ::-1]
    tensor = torch.from_numpy(np.ascontiguousarray(inputs))
    with torch.no_grad():
        if not states:
            outputs, final = module(tensor)
        else:
            # Keras: [fwd_h, fwd_c, bwd_h, bwd_c]; torch: h0 = stack(fwd_h, bwd_h), c0 likewise.
            stacked = [torch.from_numpy(np.stack(states[index::per_direction])) for index in range(per_direction)]
            outputs, final = module(tensor, tuple(stacked) if plan.torch_class == "LSTM" else stacked[0])
    finals = [t.numpy() for t in (final if plan.torch_class == "LSTM" else [final])]
    result = outputs.numpy().copy()
    if plan.merge_mode is not None and plan.merge_mode != "concat":
        forward, backward = result[..., :units], result[..., units:]
        result = {"sum": forward + backward, "ave": (forward + backward) / 2, "mul": forward * backward}[
            plan.merge_mode
        ]
    flat = [
        finals[index][direction].copy() for direction in range(len(plan.directions)) for index in range(per_direction)
    ]
    return result, flat
