"""Streaming inference: one time step at a time, state carried, without Keras in the loop.

:class:`Streamer` reads a trained model's weights once and then runs it step by step on
its own buffers, carrying every recurrent layer's state (``step``, ``run``, ``states``,
``set_states``, ``reset``). :func:`step_model` builds the stateless one-step Keras model
``[x_t, *states] -> [y_t, *new_states]`` that exports (``model.export``, LiteRT, ONNX)
with the state passed in and out explicitly.

Supported models: a ``LSTM``, ``GRU`` (``reset_after`` true or false), ``SimpleRNN`` or
``RNN`` over one of their cells or a list of them, alone or in a ``Sequential`` or
functional chain with other such layers, ``Dense`` and ``TimeDistributed(Dense)`` layers
(activations linear, relu, tanh, sigmoid, softmax) and ``Dropout`` (a no-op at inference),
from Keras 3 or Keras 2. Recurrent layers need their default activations (tanh, and
sigmoid for the gates). What cannot stream one step at a time is refused: a
``Bidirectional`` wrapper (its backward half needs the end of the sequence first), a
``go_backwards`` layer, attention and any other layer.

Chapter 11, ``11_streaming.ipynb``, explains both and times them against every other way
to stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lstm_utils._flavour import class_names, flavour_of, keras_module, to_numpy
from lstm_utils._layers import cells_of, check_int, describe, is_bidirectional, is_recurrent, state_labels
from lstm_utils._streaming_engines import (
    DENSE_ACTIVATIONS,
    NumbaEngine,
    NumpyEngine,
    Op,
    numba_available,
)

__all__ = ["Streamer", "step_model"]  # the engine limits below stay lstm_utils.streaming.NAME

ENGINES = ("auto", "numpy", "numba")
"""The values of ``Streamer(engine=...)``."""

NUMBA_MAX_BATCH = 8
"""``engine="auto"`` picks numba (when installed) up to this batch size and NumPy above it."""

NUMBA_MAX_WEIGHTS = 2**20
"""... and up to this many weights (float32 numbers, 4 MiB): beyond, a step streams its weights from
memory, and NumPy's BLAS does that faster."""

_FLOAT32 = np.dtype(np.float32)  # compared by identity in the per-step fast path
_CELLS = {"LSTMCell": "lstm", "GRUCell": "gru", "SimpleRNNCell": "simple"}
_PASS_THROUGH = {"InputLayer", "Dropout"}
_REFUSED_HINT = {
    "Bidirectional": "its backward half reads the sequence from the end, so it cannot run one step at a time",
    "Attention": "attention looks at every time step at once",
    "MultiHeadAttention": "attention looks at every time step at once",
    "AdditiveAttention": "attention looks at every time step at once",
    "Masking": "masked steps would need the Keras mask logic; drop the Masking layer and do not feed padding",
}


@dataclass
class _Part:
    """One streamed piece of the model, with what step_model needs to rebuild it."""

    kind: str  # "lstm", "gru", "simple" or "dense"
    layer_name: str
    units: int
    n_in: int
    weights: list[np.ndarray]  # the Keras weights, as get_weights() gives them
    use_bias: bool = True
    reset_after: bool = True
    activation: str = "linear"
    labels: list[str] = field(default_factory=list)


def _activation_name(layer: Any, attribute: str, allowed: Sequence[str]) -> str | None:
    flavour = flavour_of(layer)
    function = getattr(layer, attribute, None)
    if flavour is None or function is None:
        return None
    K = keras_module(flavour)
    for name in allowed:
        if function is K.activations.get(name):
            return name
    return None


def _refuse_layer(layer: Any, why: str) -> ValueError:
    return ValueError(f"Streamer cannot stream {describe(layer)}: {why}")


def _recurrent_parts(layer: Any, n_in: int) -> list[_Part]:
    if is_bidirectional(layer):
        raise _refuse_layer(layer, _REFUSED_HINT["Bidirectional"])
    if getattr(layer, "go_backwards", False):
        raise _refuse_layer(layer, "go_backwards=True reads the sequence from its end")
    if getattr(layer, "time_major", False):
        raise _refuse_layer(layer, "time_major=True is not supported")
    if not getattr(layer, "built", False):
        raise ValueError(
            f"{describe(layer)} is not built, so it has no weights yet: call it on an input first "
            "(or build the model with an Input)"
        )
    cells = cells_of(layer)
    labels = state_labels(layer)
    parts: list[_Part] = []
    position = 0
    for cell in cells:
        kind = _CELLS.get(type(cell).__name__)
        if kind is None or flavour_of(cell) is None:
            raise _refuse_layer(
                layer, f"it has a {type(cell).__name__}; supported cells are {sorted(_CELLS)} (LSTM, GRU, SimpleRNN)"
            )
        if _activation_name(cell, "activation", ["tanh"]) is None or (
            kind != "simple" and _activation_name(cell, "recurrent_activation", ["sigmoid"]) is None
        ):
            raise _refuse_layer(layer, "only the default activations (tanh, and sigmoid for the gates) are supported")
        kernel = to_numpy(cell.kernel)
        if kernel.dtype != np.float32:
            raise _refuse_layer(layer, f"its weights are {kernel.dtype}; the Streamer computes in float32")
        if kernel.shape[0] != n_in:
            raise _refuse_layer(layer, f"its cell expects {kernel.shape[0]} inputs but gets {n_in}")
        bias = None if getattr(cell, "bias", None) is None else to_numpy(cell.bias)
        weights = [kernel, to_numpy(cell.recurrent_kernel)] + ([] if bias is None else [bias])
        count = 2 if kind == "lstm" else 1
        units = int(cell.units)
        parts.append(
            _Part(
                kind=kind,
                layer_name=layer.name,
                units=units,
                n_in=n_in,
                weights=weights,
                use_bias=bias is not None,
                reset_after=bool(getattr(cell, "reset_after", True)),
                labels=labels[position : position + count],
            )
        )
        position += count
        n_in = units
    return parts


def _dense_part(layer: Any, n_in: int) -> _Part:
    inner = layer.layer if "TimeDistributed" in class_names(layer) else layer
    if "Dense" not in class_names(inner):
        raise _refuse_layer(layer, f"TimeDistributed wraps a {type(inner).__name__}; only Dense is supported")
    if not getattr(inner, "built", False):
        raise ValueError(f"{describe(layer)} is not built, so it has no weights yet")
    activation = _activation_name(inner, "activation", DENSE_ACTIVATIONS)
    if activation is None:
        raise _refuse_layer(layer, f"supported Dense activations are {list(DENSE_ACTIVATIONS)}")
    kernel = to_numpy(inner.kernel)
    if kernel.ndim != 2 or kernel.shape[0] != n_in:
        raise _refuse_layer(layer, f"its kernel has shape {kernel.shape}, expected ({n_in}, units)")
    if kernel.dtype != np.float32:
        raise _refuse_layer(layer, f"its weights are {kernel.dtype}; the Streamer computes in float32")
    bias = None if getattr(inner, "bias", None) is None else to_numpy(inner.bias)
    return _Part(
        kind="dense",
        layer_name=layer.name,
        units=int(kernel.shape[1]),
        n_in=n_in,
        weights=[kernel] + ([] if bias is None else [bias]),
        use_bias=bias is not None,
        activation=activation,
    )


def _chain(model: Any) -> list[Any]:
    """The layers of a model in order, checked to form one chain from one input to one output."""
    if is_recurrent(model):
        return [model]
    if not hasattr(model, "layers") or not {"Model", "Sequential"} & class_names(model):
        if "Bidirectional" in class_names(model):
            raise _refuse_layer(model, _REFUSED_HINT["Bidirectional"])
        raise TypeError(
            f"Streamer expects a Keras model (Sequential or functional) or a recurrent layer, got {describe(model)}"
        )
    layers = list(model.layers)
    if "Sequential" in class_names(model):
        return layers
    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if not inputs or len(inputs) != 1 or not outputs or len(outputs) != 1:
        raise ValueError(
            f"Streamer needs a model with one input and one output, got {describe(model)} with "
            f"{len(inputs or [])} input(s) and {len(outputs or [])} output(s)"
        )
    body = [layer for layer in layers if "InputLayer" not in class_names(layer)]
    previous = inputs[0]
    for layer in body:
        try:
            layer_input, layer_output = layer.input, layer.output
        except (AttributeError, ValueError) as error:  # a layer used at several places
            raise ValueError(f"Streamer needs a chain of layers; {describe(layer)} is used more than once") from error
        if layer_input is not previous or isinstance(layer_output, (list, tuple)):
            raise ValueError(
                f"Streamer needs the layers to form one chain (each layer reads the previous one's output, "
                f"one output each); {describe(layer)} does not"
            )
        previous = layer_output
    if previous is not outputs[0]:
        raise ValueError("Streamer needs the model's output to be its last layer's output")
    return body


def _read_parts(model: Any) -> list[_Part]:
    if isinstance(model, type) or flavour_of(model) is None:
        raise TypeError(
            f"Streamer expects a Keras model (Sequential or functional) or a recurrent layer, got {describe(model)}"
        )
    layers = _chain(model)
    parts: list[_Part] = []
    n_in: int | None = None
    sequence_out = True  # whether the data is still one vector per time step of the input
    for layer in layers:
        names = class_names(layer)
        if names & _PASS_THROUGH:
            continue
        refused = next((hint for name, hint in _REFUSED_HINT.items() if name in names), None)
        if refused is not None:
            raise _refuse_layer(layer, refused)
        if is_recurrent(layer):
            if not sequence_out:
                raise _refuse_layer(layer, "the recurrent layer before it returns only its last step")
            if n_in is None:
                n_in = int(to_numpy(cells_of(layer)[0].kernel).shape[0]) if getattr(layer, "built", False) else 0
            new = _recurrent_parts(layer, n_in)
            sequence_out = bool(getattr(layer, "return_sequences", False))
        elif "Dense" in names or "TimeDistributed" in names:
            inner = layer.layer if "TimeDistributed" in names else layer
            if n_in is None:
                kernel = getattr(inner, "kernel", None)
                n_in = int(to_numpy(kernel).shape[0]) if kernel is not None else 0
            new = [_dense_part(layer, n_in)]
        else:
            raise _refuse_layer(
                layer,
                "supported layers are LSTM, GRU, SimpleRNN, RNN(cell), Dense, TimeDistributed(Dense) and Dropout",
            )
        parts += new
        n_in = new[-1].units
    if not any(part.kind != "dense" for part in parts):
        raise ValueError(
            f"Streamer needs a model with a recurrent layer (LSTM, GRU, SimpleRNN, RNN); {describe(model)} has none, "
            "so it has no state to carry: call it on each step directly"
        )
    return parts


def _op(part: _Part) -> Op:
    """The fused float32 matrices an engine runs, from one part's Keras weights."""
    n, u = part.n_in, part.units
    w = [np.asarray(a, np.float64) for a in part.weights]
    if part.kind == "dense":
        bias = w[1] if part.use_bias else np.zeros(u)
        fused = np.vstack([w[0], bias[None, :]])
        if part.activation == "sigmoid":  # sigmoid(a) = 0.5 tanh(a / 2) + 0.5
            fused *= 0.5
        return Op("dense", n, u, fused.astype(np.float32), activation=part.activation)
    kernel, recurrent = w[0], w[1]
    if part.kind == "lstm":
        bias = w[2] if part.use_bias else np.zeros(4 * u)
        fused = np.vstack([kernel, recurrent, bias[None, :]])
        blocks = [fused[:, k * u : (k + 1) * u] for k in range(4)]  # Keras order i, f, c, o
        fused = np.hstack([0.5 * blocks[0], 0.5 * blocks[1], 0.5 * blocks[3], blocks[2]])  # i, f, o, g
        return Op("lstm", n, u, fused.astype(np.float32), labels=part.labels)
    if part.kind == "simple":
        bias = w[2] if part.use_bias else np.zeros(u)
        return Op("simple", n, u, np.vstack([kernel, recurrent, bias[None, :]]).astype(np.float32), labels=part.labels)
    # GRU, Keras order z, r, h
    if not part.use_bias:
        b_in, b_rec = np.zeros(3 * u), np.zeros(3 * u)
    elif part.reset_after:
        b_in, b_rec = w[2][0], w[2][1]
    else:
        b_in, b_rec = w[2], np.zeros(3 * u)

    def cols(m: np.ndarray, k: int) -> np.ndarray:
        return m[..., k * u : (k + 1) * u]

    zeros_x, zeros_h = np.zeros((n, u)), np.zeros((u, u))
    gate_rows = [
        np.vstack([cols(kernel, k), cols(recurrent, k), (cols(b_in, k) + cols(b_rec, k))[None, :]]) * 0.5
        for k in (0, 1)
    ]
    x_cand = np.vstack([cols(kernel, 2), zeros_h, cols(b_in, 2)[None, :]])
    if part.reset_after:
        h_cand = np.vstack([zeros_x, cols(recurrent, 2), cols(b_rec, 2)[None, :]])
        fused = np.hstack([*gate_rows, x_cand, h_cand])
        return Op("gru", n, u, fused.astype(np.float32), labels=part.labels)
    fused = np.hstack([*gate_rows, x_cand])
    return Op("gru_before", n, u, fused.astype(np.float32), cols(recurrent, 2).astype(np.float32), labels=part.labels)


def _as_float32(value: Any, name: str) -> np.ndarray:
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name}: got a masked array; fill the missing entries first (numpy.ma.filled)")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array or tensor, got {type(value).__name__}")
    try:
        array = to_numpy(value)
    except Exception as error:  # ragged lists and other things NumPy cannot read as one array
        raise TypeError(f"{name} must be a numeric array or tensor, got {type(value).__name__} ({error})") from None
    if array.dtype.kind not in "iuf":  # bool, complex, dates, strings, objects: not a value a model reads
        raise TypeError(f"{name} must be a numeric array or tensor (float or integer), got dtype {array.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        converted = np.ascontiguousarray(array, dtype=np.float32)
    return converted


class Streamer:
    """Run a trained recurrent model one time step at a time, carrying its state, fast.

    The weights are read once, when the Streamer is built: a later change to the Keras
    model's weights (more training, ``set_weights``) needs a new Streamer. The state starts
    at zero (the Keras model's own stateful state, if any, is not read); it lives in the
    Streamer, one row per stream, and is changed only by :meth:`step`, :meth:`run`,
    :meth:`set_states` and :meth:`reset`. Two Streamers of one model are independent
    streams. Computation is in float32, as Keras computes; outputs agree with the Keras
    model to about 1e-6, over thousands of steps too.

    See chapter 11, ``11_streaming.ipynb``.

    Parameters
    ----------
    model : keras.Model or keras.layers.Layer
        A built model (``Sequential`` or a functional chain) or a recurrent layer, Keras 3 or
        Keras 2. Supported layers: ``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN(cell)`` and
        ``RNN([cells])`` of those, ``Dense``, ``TimeDistributed(Dense)``, ``Dropout``.
    batch_size : int
        How many independent streams to run side by side (default 1).
    engine : {"auto", "numpy", "numba"}
        ``"numpy"`` always works; ``"numba"`` needs the optional numba package
        (``pip install lstm_utils[fast]``) and compiles its kernels on first use (cached on
        disk after that). ``"auto"`` picks numba when it is installed, for up to
        ``lstm_utils.streaming.NUMBA_MAX_BATCH`` streams whose weights fit in
        ``lstm_utils.streaming.NUMBA_MAX_WEIGHTS`` floats, and NumPy otherwise (there the matrix
        product dominates and NumPy's BLAS does it best). ``streamer.engine`` says which one runs.

    Attributes
    ----------
    engine : str
        ``"numpy"`` or ``"numba"``.
    batch_size, features, output_size : int
        Streams, input features per step, output width per step.
    state_names : list of str
        ``"layer/label"`` for each state, in the order of :attr:`states`
        (``["lstm/h", "lstm/c"]``).

    Raises
    ------
    TypeError
        If ``model`` is not a Keras model or recurrent layer, or ``batch_size`` not an integer.
    ValueError
        If the model has no recurrent layer, a layer that cannot stream (``Bidirectional``,
        ``go_backwards``, attention, masking, anything not listed above), is not built, or
        ``engine`` is unknown or not installed.

    Examples
    --------
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(4, return_sequences=True, name="lstm"),
    ...                           keras.layers.Dense(2)])
    >>> x = np.random.default_rng(0).normal(size=(1, 50, 3)).astype("float32")
    >>> streamer = Streamer(model, engine="numpy")
    >>> ys = np.stack([streamer.step(x[:, t]) for t in range(50)], axis=1)
    >>> bool(np.allclose(ys, model.predict(x, verbose=0), atol=1e-5))
    True
    >>> streamer.state_names, streamer.engine
    (['lstm/h', 'lstm/c'], 'numpy')
    >>> streamer.reset()
    >>> bool(np.allclose(streamer.run(x), ys, atol=1e-6))
    True
    """

    def __init__(self, model: Any, batch_size: int = 1, *, engine: str = "auto") -> None:
        batch = check_int("batch_size", batch_size)
        if not isinstance(engine, str) or engine not in ENGINES:
            raise ValueError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
        if engine == "numba" and not numba_available():
            raise ValueError(
                "engine='numba' needs the numba package, which is not installed: pip install 'lstm_utils[fast]' "
                "(or numba), or use engine='numpy'"
            )
        parts = _read_parts(model)
        self._parts = parts
        self._flavour = flavour_of(model)
        self._model_name = describe(model)
        ops = [_op(part) for part in parts]
        chosen = engine
        if engine == "auto":
            small = batch <= NUMBA_MAX_BATCH and sum(op.weights.size for op in ops) <= NUMBA_MAX_WEIGHTS
            chosen = "numba" if small and numba_available() else "numpy"
        self._engine: NumpyEngine | NumbaEngine = (
            NumbaEngine(ops, batch) if chosen == "numba" else NumpyEngine(ops, batch)
        )
        self._numba = chosen == "numba"
        # numba's step kernel and its buffers, bound here so that a step makes as few Python calls as it can
        self._kernel: Any = None
        if isinstance(self._engine, NumbaEngine):
            self._kernel = self._engine.step_kernel
            self._mem, self._wts, self._prog = self._engine.mem, self._engine.wts, self._engine.prog
        self.batch_size = batch
        self.features = parts[0].n_in
        self.output_size = parts[-1].units
        self.state_names = [f"{part.layer_name}/{label}" for part in parts for label in part.labels]
        self._state_units = [part.units for part in parts for _ in part.labels]
        self._x_shape = (batch, self.features)
        self._out_shape = (batch, self.output_size)

    @property
    def engine(self) -> str:
        """Which engine runs the steps: ``"numpy"`` or ``"numba"``."""
        return self._engine.name

    def __repr__(self) -> str:
        return (
            f"Streamer({self._model_name}, batch_size={self.batch_size}, engine={self.engine!r}, "
            f"features={self.features}, output_size={self.output_size}, states={self.state_names})"
        )

    def _check_x(self, x_t: Any) -> np.ndarray:
        if type(x_t) is np.ndarray and x_t.dtype == np.float32 and x_t.flags.c_contiguous:
            x = x_t
        else:
            x = _as_float32(x_t, "x_t")
        if x.shape != self._x_shape:
            raise ValueError(
                f"x_t must have shape (batch_size, features) = {self._x_shape}, got {x.shape}"
                + (" (run() takes a whole (batch, timesteps, features) sequence)" if x.ndim == 3 else "")
            )
        return x

    def step(self, x_t: Any) -> np.ndarray:
        """Feed one time step of every stream; return the model's output for it.

        Parameters
        ----------
        x_t : array-like, shape (batch_size, features)
            The inputs at this step (converted to float32).

        Returns
        -------
        ndarray, shape (batch_size, output_size)
            A new float32 array: what the Keras model returns for this step (its output at
            step ``t`` when it returns sequences; its output for the stream so far otherwise).

        Raises
        ------
        TypeError
            If ``x_t`` is not numeric.
        ValueError
            If its shape is wrong or it holds NaN or infinite values (the state is left as it was).

        Examples
        --------
        >>> import keras, numpy as np
        >>> streamer = Streamer(keras.Sequential([keras.Input((None, 2)), keras.layers.GRU(3)]), engine="numpy")
        >>> streamer.step(np.ones((1, 2), "float32")).shape
        (1, 3)
        """
        if type(x_t) is np.ndarray and x_t.dtype is _FLOAT32 and x_t.shape == self._x_shape and x_t.flags.c_contiguous:
            x = x_t  # the fast path: nothing to convert
        else:
            x = self._check_x(x_t)
        kernel = self._kernel
        if kernel is not None:  # numba: one compiled call, which checks for NaN and inf before it changes anything
            out = np.empty(self._out_shape, _FLOAT32)
            if kernel(x, out, self._mem, self._wts, self._prog):
                return out
            y = None
        else:
            y = self._engine.step(x) if np.isfinite(x).all() else None
        if y is None:
            raise ValueError("x_t holds NaN or infinite values (after conversion to float32); the state is unchanged")
        return y

    def run(self, x: Any) -> np.ndarray:
        """Stream whole sequences, ``(batch_size, timesteps, features)``; return the output at every step.

        The state carries on from where it was, and is left after the last step, as after
        as many :meth:`step` calls. For a model that returns only its last step,
        ``run(x)[:, -1]`` is what ``model.predict(x)`` returns.

        Raises
        ------
        TypeError
            If ``x`` is not numeric.
        ValueError
            If its shape is wrong or it holds NaN or infinite values (the state is left as it was).

        Examples
        --------
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((None, 1)), keras.layers.SimpleRNN(2)])
        >>> streamer = Streamer(model, batch_size=3, engine="numpy")
        >>> streamer.run(np.zeros((3, 7, 1))).shape
        (3, 7, 2)
        """
        array = _as_float32(x, "x")
        wanted = (self.batch_size, "timesteps", self.features)
        if array.ndim != 3 or array.shape[0] != self.batch_size or array.shape[2] != self.features:
            raise ValueError(f"x must have shape (batch_size, timesteps, features) = {wanted}, got {array.shape}")
        out = self._engine.run(array) if self._numba or np.isfinite(array).all() else None
        if out is None:
            raise ValueError("x holds NaN or infinite values (after conversion to float32); the state is unchanged")
        return out

    @property
    def states(self) -> list[np.ndarray]:
        """Copies of every state, ``(batch_size, units)`` float32 each, in the order of :attr:`state_names`."""
        return self._engine.get_states()

    def set_states(self, states: Sequence[Any]) -> None:
        """Set every state at once, all or nothing; the order of :attr:`state_names`.

        Each value is checked (count, shape ``(batch_size, units)``, numeric, finite, no
        overflow in float32) before anything is assigned, as :func:`lstm_utils.set_states` does.

        Raises
        ------
        TypeError
            If ``states`` is not a list or tuple, or a value is not numeric.
        ValueError
            For a wrong count, shape, or a NaN or infinite value.

        Examples
        --------
        >>> import keras, numpy as np
        >>> streamer = Streamer(keras.Sequential([keras.Input((None, 1)), keras.layers.LSTM(2)]), engine="numpy")
        >>> streamer.set_states([np.ones((1, 2)), np.zeros((1, 2))])
        >>> streamer.states[0].tolist()
        [[1.0, 1.0]]
        """
        expected = ", ".join(
            f"{name} {(self.batch_size, units)}"
            for name, units in zip(self.state_names, self._state_units, strict=True)
        )
        if not isinstance(states, (list, tuple)):
            raise TypeError(
                f"states must be a list of {len(self.state_names)} arrays ({expected}), got a {type(states).__name__}"
            )
        if len(states) != len(self.state_names):
            raise ValueError(f"the Streamer holds {len(self.state_names)} state(s) ({expected}), got {len(states)}")
        arrays = []
        for name, units, value in zip(self.state_names, self._state_units, states, strict=True):
            array = _as_float32(value, f"state {name!r}")
            if array.shape != (self.batch_size, units):
                raise ValueError(f"state {name!r}: expected shape {(self.batch_size, units)}, got {array.shape}")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"state {name!r}: got NaN or infinite values (after conversion to float32)")
            arrays.append(array)
        self._engine.set_states(arrays)

    def reset(self) -> None:
        """Set every state to zero: the next step starts new streams.

        Examples
        --------
        >>> import keras, numpy as np
        >>> streamer = Streamer(keras.Sequential([keras.Input((None, 1)), keras.layers.GRU(2)]), engine="numpy")
        >>> _ = streamer.step(np.ones((1, 1)))
        >>> streamer.reset()
        >>> float(np.abs(streamer.states[0]).sum())
        0.0
        """
        self._engine.set_states([np.zeros((self.batch_size, u), np.float32) for u in self._state_units])


def step_model(model: Any, *, batch_size: int | None = None, unroll: bool = True) -> Any:
    """A stateless one-step Keras model ``[x_t, *states] -> [y_t, *new_states]`` with the model's weights.

    The state goes in and comes out explicitly, so the model exports as it is
    (``model.export`` to a SavedModel, LiteRT conversion, ONNX through tf2onnx) and the
    caller carries the state between calls. States are in :class:`Streamer`'s order
    (``Streamer(model).state_names``). The new layers are built in the model's own Keras
    version, ``unroll=True`` by default (a single step needs no loop, and LiteRT then gets
    no ``WHILE`` op). It supports what :class:`Streamer` supports.

    See chapter 11, ``11_streaming.ipynb``.

    Parameters
    ----------
    model : keras.Model or keras.layers.Layer
        As for :class:`Streamer`.
    batch_size : int, optional
        A fixed batch size for the inputs (exporters prefer one); ``None`` leaves it free.
    unroll : bool
        Passed to the new recurrent layers.

    Returns
    -------
    keras.Model
        Inputs ``x_t`` ``(batch, features)`` then one ``(batch, units)`` input per state;
        outputs ``y_t`` then the new states, in the same order.

    Raises
    ------
    TypeError, ValueError
        As for :class:`Streamer`, and for a ``batch_size`` that is not a positive integer.

    Examples
    --------
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(4), keras.layers.Dense(1)])
    >>> stepper = step_model(model)
    >>> [tuple(t.shape) for t in stepper.inputs], len(stepper.outputs)
    ([(None, 3), (None, 4), (None, 4)], 3)
    >>> x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype("float32")
    >>> states = [np.zeros((2, 4), "float32")] * 2
    >>> for t in range(6):
    ...     y, *states = stepper.predict_on_batch([x[:, t], *states])
    >>> bool(np.allclose(y, model.predict(x, verbose=0), atol=1e-5))
    True
    """
    batch = None if batch_size is None else check_int("batch_size", batch_size)
    if not isinstance(unroll, bool):
        raise TypeError(f"unroll must be True or False, got {unroll!r}")
    parts = _read_parts(model)
    flavour = flavour_of(model)
    assert flavour is not None  # _read_parts checked it
    K = keras_module(flavour)
    x_in = K.Input(shape=(parts[0].n_in,), batch_size=batch, name="x_t")
    state_inputs = [
        K.Input(shape=(part.units,), batch_size=batch, name=f"{part.layer_name}_{label}")
        for part in parts
        for label in part.labels
    ]
    h = K.layers.Reshape((1, parts[0].n_in), name="add_time_axis")(x_in)
    outputs_states: list[Any] = []
    position = 0
    for index, part in enumerate(parts):
        name = f"{part.layer_name}_{index}"
        if part.kind == "dense":
            layer = K.layers.Dense(part.units, activation=part.activation, use_bias=part.use_bias, name=name)
            h = layer(h)
        else:
            options: dict[str, Any] = dict(use_bias=part.use_bias, return_sequences=True, return_state=True)
            options.update(unroll=unroll, name=name)
            if part.kind == "lstm":
                layer = K.layers.LSTM(part.units, **options)
            elif part.kind == "gru":
                layer = K.layers.GRU(part.units, reset_after=part.reset_after, **options)
            else:
                layer = K.layers.SimpleRNN(part.units, **options)
            count = len(part.labels)
            h, *new = layer(h, initial_state=state_inputs[position : position + count])
            outputs_states += new
            position += count
        layer.set_weights(part.weights)
    y = K.layers.Reshape((parts[-1].units,), name="drop_time_axis")(h)
    return K.Model([x_in, *state_inputs], [y, *outputs_states], name="step_model")
