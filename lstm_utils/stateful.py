"""Training and serving stateful recurrent models: data layout, batch checks, batch size copies.

A stateful layer carries its state from one batch to the next, row by row: sample ``i``
of batch ``k + 1`` continues sample ``i`` of batch ``k``. These helpers arrange long
sequences that way (:func:`to_stateful_batches` and its inverse
:func:`from_stateful_batches`), catch the batch sizes Keras silently broadcasts
(:func:`check_batch`), and copy a trained model to another fixed batch size, for example
to stream one sequence one step at a time (:func:`with_batch_size`).

Chapter 5, ``05_stateful_training.ipynb``, explains them; chapter 3,
``03_stateful_layers.ipynb``, explains stateful layers themselves.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, overload

import numpy as np

from lstm_utils._flavour import flavour_of, keras_module
from lstm_utils._layers import check_int, stateful_layers
from lstm_utils.distribute import replicas_in_sync
from lstm_utils.states import state_variables

__all__ = [
    "to_stateful_batches",
    "from_stateful_batches",
    "stateful_batch_size",
    "check_batch",
    "with_batch_size",
]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


MAX_BATCH_SIZE = 2**31 - 1
"""The largest batch size the helpers accept: TensorFlow's kernels index batches with 32-bit integers."""


def _as_array(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "numpy") and callable(value.numpy):
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":  # strings, objects, dates: no sequence of numbers
        raise TypeError(f"{name} must be a numeric array or tensor, got {type(value).__name__} of dtype {array.dtype}")
    return array


@overload
def to_stateful_batches(x: Any, y: None = None, *, window: int) -> np.ndarray: ...


@overload
def to_stateful_batches(x: Any, y: Any, *, window: int) -> tuple[np.ndarray, np.ndarray]: ...


def to_stateful_batches(x: Any, y: Any = None, *, window: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Cut long sequences into windows ordered so that batch ``k`` holds window ``k`` of each.

    ``x`` holds ``batch`` long sequences of ``timesteps`` steps. The result holds
    ``batch * (timesteps // window)`` windows of ``window`` steps, in the order that
    ``model.fit(x_chunks, y_chunks, batch_size=batch, shuffle=False)`` (or ``predict``) needs
    for a stateful model built for batches of ``batch``: batch ``k`` is made of window ``k``
    of sequence 0, 1, ..., ``batch - 1``, so that row ``i`` of batch ``k + 1`` continues row
    ``i`` of batch ``k``. In the output, window ``k`` of sequence ``i`` is row
    ``k * batch + i``.

    See chapter 5, ``05_stateful_training.ipynb``.

    Parameters
    ----------
    x : array-like, shape (batch, timesteps, features)
        The long input sequences (a NumPy array or a tensor).
    y : array-like, shape (batch, timesteps, ...), optional
        Per-step targets aligned with ``x``; cut the same way.
    window : int
        Steps per window; must divide ``timesteps``.

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        ``x_chunks`` of shape ``(batch * (timesteps // window), window, features)``, or
        ``(x_chunks, y_chunks)`` when ``y`` is given.

    Raises
    ------
    TypeError
        If ``window`` is not an integer, or ``x`` or ``y`` is not numeric.
    ValueError
        If ``window`` is not positive, ``x`` is not 3-D, ``timesteps`` is not a multiple of
        ``window`` (the message says how many steps would be left over), or ``y`` does not
        have the ``(batch, timesteps)`` of ``x`` as its first two dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(12).reshape(2, 6, 1)     # sequence 0: 0..5, sequence 1: 6..11
    >>> chunks = to_stateful_batches(x, window=3)
    >>> chunks.shape
    (4, 3, 1)
    >>> chunks[..., 0].tolist()                # batch 0: window 0 of each; batch 1: window 1
    [[0, 1, 2], [6, 7, 8], [3, 4, 5], [9, 10, 11]]
    """
    window = check_int("window", window)
    x = _as_array(x, "x")
    if x.ndim != 3:
        raise ValueError(
            f"x must have shape (batch, timesteps, features), a 3-D array; got shape {x.shape} "
            f"({x.ndim}-D). Add a features axis with x[..., None] if each step is one number."
        )
    batch, timesteps = x.shape[:2]
    if y is not None:
        y = _as_array(y, "y")
        if y.ndim < 2 or y.shape[:2] != (batch, timesteps):
            raise ValueError(
                f"y must hold per-step targets aligned with x, shape (batch, timesteps, ...) = "
                f"({batch}, {timesteps}, ...); got shape {y.shape}"
            )
    if window > timesteps:
        raise ValueError(f"window={window} is longer than the sequences ({_plural(timesteps, 'time step')})")
    left_over = timesteps % window
    if left_over:
        usable = timesteps - left_over
        raise ValueError(
            f"timesteps={timesteps} is not a multiple of window={window}: "
            f"{_plural(left_over, 'step')} would be left over. Cut the sequences to "
            f"x[:, :{usable}], pad them to {usable + window} steps, or choose a window that "
            f"divides {timesteps}."
        )

    def cut(array: np.ndarray) -> np.ndarray:
        n_windows = timesteps // window
        rest = array.shape[2:]
        windows = array.reshape(batch, n_windows, window, *rest)
        return np.ascontiguousarray(np.swapaxes(windows, 0, 1)).reshape(n_windows * batch, window, *rest)

    return cut(x) if y is None else (cut(x), cut(y))


def from_stateful_batches(chunks: Any, *, batch: int) -> np.ndarray:
    """Put windows in stateful order back into whole sequences (undo :func:`to_stateful_batches`).

    ``chunks`` is what a stateful model returns for the output of :func:`to_stateful_batches`:
    row ``k * batch + i`` belongs to sequence ``i``. Windows of several steps, shape
    ``(batch * n, steps, ...)`` (``return_sequences=True``), are joined along time into
    ``(batch, n * steps, ...)``. One row per window, shape ``(batch * n, features)``
    (``return_sequences=False``), becomes ``(batch, n, features)``: the output at the end
    of each window, in time order.

    See chapter 5, ``05_stateful_training.ipynb``.

    Parameters
    ----------
    chunks : array-like, shape (batch * n, steps, ...) or (batch * n, features)
        Windows (or one output per window) in stateful order.
    batch : int
        The number of sequences, the stateful batch size.

    Returns
    -------
    numpy.ndarray
        Shape ``(batch, n * steps, ...)`` or ``(batch, n, features)``.

    Raises
    ------
    TypeError
        If ``batch`` is not an integer or ``chunks`` is not numeric.
    ValueError
        If ``batch`` is not positive, ``chunks`` has fewer than 2 dimensions, or its
        number of rows is not a multiple of ``batch``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(12).reshape(2, 6, 1)
    >>> back = from_stateful_batches(to_stateful_batches(x, window=3), batch=2)
    >>> bool(np.array_equal(back, x))
    True
    """
    batch = check_int("batch", batch)
    chunks = _as_array(chunks, "chunks")
    if chunks.ndim < 2:
        raise ValueError(
            f"chunks must have shape (batch * n, steps, ...) or (batch * n, features); got shape {chunks.shape}"
        )
    rows = chunks.shape[0]
    if rows % batch:
        raise ValueError(
            f"{_plural(rows, 'row')} do not split into {batch} sequences: {rows} is not a multiple of "
            f"batch={batch}, so these rows were not made by to_stateful_batches with this batch"
        )
    n_windows = rows // batch
    by_sequence = np.swapaxes(chunks.reshape(n_windows, batch, *chunks.shape[1:]), 0, 1)
    if chunks.ndim == 2:
        return np.ascontiguousarray(by_sequence)
    return np.ascontiguousarray(by_sequence).reshape(batch, n_windows * chunks.shape[1], *chunks.shape[2:])


def _require_keras(obj: Any, what: str) -> None:
    if flavour_of(obj) is None:
        raise TypeError(
            f"{what} must be a Keras model or layer (keras, tf.keras or tf_keras), got {type(obj).__name__}"
        )


def stateful_batch_size(model_or_layer: Any) -> int | None:
    """The fixed batch size of a model's stateful recurrent layers, or ``None`` if it has none.

    A stateful layer keeps one state row per sample, so it only accepts batches of the
    size its state variables were built with. Under a ``tf.distribute`` strategy this is the
    global batch that ``fit``/``predict`` take: the per-replica batch of ``batch_shape``
    times the number of replicas (chapter 13, ``13_many_devices.ipynb``).

    See chapter 5, ``05_stateful_training.ipynb``.

    Raises
    ------
    TypeError
        If the argument is not a Keras model or layer.
    ValueError
        If a stateful layer is not built yet, or two stateful layers were built for
        different batch sizes (no batch fits both).

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input(batch_shape=(4, None, 1)),
    ...                           keras.layers.GRU(2, stateful=True)])
    >>> stateful_batch_size(model)
    4
    >>> stateful_batch_size(keras.layers.GRU(2)) is None
    True
    """
    _require_keras(model_or_layer, "model_or_layer")
    sizes: dict[str, int] = {}
    for path, layer in stateful_layers(model_or_layer):
        variables = state_variables(layer)
        sizes[path or layer.name] = int(variables[0].shape[0]) * replicas_in_sync(variables[0])
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{path}: {size}" for path, size in sizes.items())
        raise ValueError(
            f"the stateful layers were built for different batch sizes ({listed}); no batch fits all of them"
        )
    return next(iter(sizes.values()), None)


def _sample_count(x: Any) -> int | None:
    """The number of samples in ``x`` (an array, a tensor, or a list/tuple/dict of them)."""
    if isinstance(x, Mapping):
        leaves = list(x.values())
    elif isinstance(x, (list, tuple)):
        leaves = list(x)
    else:
        leaves = [x]
    if not leaves:
        raise ValueError("x is empty: expected an array, or a list or dict of arrays")
    counts = []
    for leaf in leaves:
        shape = getattr(leaf, "shape", None)
        if shape is None:
            raise TypeError(
                "check_batch needs the data itself (NumPy arrays or tensors, or a list or dict of "
                f"them) to count samples; got {type(leaf).__name__}. For a tf.data.Dataset, batch it "
                "with dataset.batch(batch_size, drop_remainder=True) instead."
            )
        if len(shape) == 0:
            raise ValueError("x must have a batch axis; got a scalar")
        counts.append(None if shape[0] is None else int(shape[0]))
    known = {count for count in counts if count is not None}
    if len(known) > 1:
        raise ValueError(f"the inputs in x have different numbers of samples: {counts}")
    return known.pop() if known else None


def check_batch(model: Any, x: Any, *, batch_size: int | None = None) -> int | None:
    """Check that ``x`` splits into whole batches of a stateful model's fixed batch size.

    A stateful model built for batches of ``b`` should only ever see batches of ``b``.
    Keras does not always say so: with ``predict(x, batch_size=b)`` or ``fit`` on a number
    of samples that is not a multiple of ``b``, Keras 3 (TensorFlow backend) and Keras 2
    silently broadcast the short last batch to ``b`` rows (5 samples with ``b = 2`` give 6
    outputs, and ``fit`` runs on it without an error); Keras 2 does the same with a single batch of
    fewer than ``b`` samples. Call this before ``fit``/``predict``/``evaluate``; it returns
    the batch size to pass to them (their own default is 32, not ``b``).

    Models without stateful layers accept any batch size, so nothing is checked for them
    and ``batch_size`` is returned as given.

    See chapter 5, ``05_stateful_training.ipynb``.

    Parameters
    ----------
    model : keras.Model or keras.layers.Layer
        A built model or layer of Keras 3 or Keras 2.
    x : array-like, or list or dict of array-like
        The inputs you are about to pass to ``fit``/``predict``/``evaluate``.
    batch_size : int, optional
        The ``batch_size`` you will pass to them; by default the model's stateful batch size.

    Returns
    -------
    int or None
        The batch size to use: the stateful batch size, or ``batch_size`` for a model
        without stateful layers.

    Raises
    ------
    TypeError
        If ``model`` is not a Keras model or layer, ``batch_size`` is not an integer, or
        ``x`` is not arrays or tensors (for example a ``tf.data.Dataset``).
    ValueError
        If ``batch_size`` differs from the stateful batch size, the number of samples is
        not a multiple of it, or the inputs in ``x`` have different numbers of samples.

    Examples
    --------
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input(batch_shape=(2, 3, 1)),
    ...                           keras.layers.LSTM(4, stateful=True)])
    >>> check_batch(model, np.zeros((4, 3, 1)))
    2
    >>> check_batch(model, np.zeros((5, 3, 1)))
    Traceback (most recent call last):
    ...
    ValueError: 5 samples do not split into batches of 2: the last batch would have 1 sample, ...
    """
    _require_keras(model, "model")
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size)
    n_samples = _sample_count(x)
    stateful = stateful_batch_size(model)
    if stateful is None:
        return batch_size
    if batch_size is not None and batch_size != stateful:
        replicas = _replicas(model)
        if replicas > 1:
            raise ValueError(
                f"batch_size={batch_size} does not match the global batch size {stateful} of the model: its "
                f"stateful layers run on {replicas} replicas of {stateful // replicas} rows each (the batch of "
                f"Input(batch_shape=...)), and under a tf.distribute strategy fit and predict take the global "
                f"batch; pass batch_size={stateful} (chapter 13, 13_many_devices.ipynb)"
            )
        raise ValueError(
            f"batch_size={batch_size} does not match the batch size {stateful} that the model's "
            f"stateful layers were built with; pass batch_size={stateful}, or copy the model to "
            f"batches of {batch_size} with lstm_utils.with_batch_size(model, {batch_size})"
        )
    if n_samples is None or (n_samples % stateful == 0 and n_samples > 0):
        return stateful
    usable = n_samples - n_samples % stateful
    if n_samples == 0:
        raise ValueError(
            f"x has 0 samples; a stateful model built for batches of {stateful} needs a multiple of {stateful}"
        )
    if n_samples < stateful:
        raise ValueError(
            f"{_plural(n_samples, 'sample')} do not fill one batch of {stateful}: Keras 2 silently "
            f"broadcasts them to {stateful} rows (predict returns {stateful} outputs) and Keras 3 "
            f"raises. Pad x to {stateful} samples, or copy the model to batches of {n_samples} "
            f"with lstm_utils.with_batch_size(model, {n_samples})."
        )
    last = n_samples % stateful
    raise ValueError(
        f"{_plural(n_samples, 'sample')} do not split into batches of {stateful}: the last batch "
        f"would have {_plural(last, 'sample')}, which Keras 3 (TensorFlow backend) and Keras 2 "
        f"silently broadcast to {stateful} rows (predict returns {usable + stateful} outputs; fit "
        f"runs on it without an error). Use x[:{usable}], pad x to {usable + stateful} samples, or copy the "
        f"model to another batch size with lstm_utils.with_batch_size."
    )


def _replicas(model: Any) -> int:
    """How many replicas the model's stateful layers run on (1 outside tf.distribute)."""
    for _, layer in stateful_layers(model):
        return replicas_in_sync(state_variables(layer)[0])
    return 1


def _current_replicas() -> int:
    """The replicas of the tf.distribute strategy whose scope is open (1 outside any)."""
    if "tensorflow" not in sys.modules:
        return 1
    import tensorflow as tf

    return int(tf.distribute.get_strategy().num_replicas_in_sync) if tf.distribute.has_strategy() else 1


_SHAPE_KEYS = frozenset({"batch_shape", "batch_input_shape", "build_input_shape", "build_config"})


def _is_shape(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) >= 1
        and all(d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in value)
    )


def _with_batch(value: Any, batch_size: int) -> Any:
    """Every shape inside ``value`` with its first (batch) dimension replaced."""
    if _is_shape(value):
        return type(value)([batch_size, *value[1:]])
    if isinstance(value, Mapping):
        return {key: _with_batch(item, batch_size) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_with_batch(item, batch_size) for item in value)
    return value


def _rebatch_config(config: Any, batch_size: int) -> Any:
    """A copy of a model config whose input and build shapes all have ``batch_size`` rows."""
    if isinstance(config, Mapping):
        return {
            key: _with_batch(item, batch_size) if key in _SHAPE_KEYS else _rebatch_config(item, batch_size)
            for key, item in config.items()
        }
    if isinstance(config, (list, tuple)):
        return type(config)(_rebatch_config(item, batch_size) for item in config)
    return config


def with_batch_size(model: Any, batch_size: int, *, custom_objects: dict[str, Any] | None = None) -> Any:
    """A copy of a model, with the same weights, whose inputs have a fixed batch size.

    Stateful layers only accept the batch size they were built with. To serve a model
    trained on batches of 16 one stream at a time, copy it to ``batch_size=1``. The copy
    is rebuilt from the model's config with every input's batch dimension (and every
    recorded build shape) set to ``batch_size``; everything else about the input shapes is
    kept, so a model built with a free time axis, ``Input(batch_shape=(16, None, 1))``, gives
    a copy that accepts one time step per call. Then the weights are copied.

    The copy starts from zero state: state values are not copied, because they hold one
    row per sample of the old batch size (copy rows yourself with
    ``lstm_utils.get_states``/``set_states`` if you need them). The copy is not compiled;
    compile it if you want to train or evaluate it. The original model is not changed.

    Called inside a ``tf.distribute`` strategy's scope, ``batch_size`` is the global batch:
    the copy's inputs get ``batch_size / replicas`` rows, the per-replica batch that
    ``batch_shape`` must hold there (chapter 13, ``13_many_devices.ipynb``). Outside any
    scope the copy runs on one device, whatever the original ran on.

    See chapter 5, ``05_stateful_training.ipynb``.

    Parameters
    ----------
    model : keras.Model
        A built ``Sequential`` or functional model of Keras 3 or Keras 2. Subclassed models
        cannot be rebuilt from their config.
    batch_size : int
        The new fixed batch size.
    custom_objects : dict, optional
        Custom layer classes used in the model, passed on to ``from_config``.

    Returns
    -------
    keras.Model
        A new model of the same class and version, same layers and weights.

    Raises
    ------
    TypeError
        If ``batch_size`` is not an integer, or ``model`` is not a Sequential or functional
        Keras model (a layer, a subclassed model).
    ValueError
        If ``batch_size`` is not positive, or the model is not built yet (it has no input
        shape to copy).

    Examples
    --------
    >>> import keras, numpy as np, lstm_utils
    >>> model = keras.Sequential([keras.Input(batch_shape=(16, None, 1)),
    ...                           keras.layers.LSTM(4, stateful=True)])
    >>> single = with_batch_size(model, 1)
    >>> [s.shape for s in lstm_utils.get_states(single.layers[0])]
    [(1, 4), (1, 4)]
    >>> tuple(single(np.zeros((1, 1, 1), "float32")).shape)   # one step of one stream
    (1, 4)
    >>> all(np.array_equal(a, b) for a, b in zip(single.get_weights(), model.get_weights()))
    True
    """
    flavour = flavour_of(model)
    if flavour is None:
        raise TypeError(f"model must be a Keras model (keras, tf.keras or tf_keras), got {type(model).__name__}")
    batch_size = check_int("batch_size", batch_size)
    if batch_size > MAX_BATCH_SIZE:
        raise ValueError(
            f"batch_size must be at most {MAX_BATCH_SIZE} (TensorFlow indexes batches with 32-bit "
            f"integers), got {batch_size}"
        )
    K = keras_module(flavour)
    if not isinstance(model, K.Model):
        raise TypeError(
            f"model must be a Sequential or functional Keras model, got the layer {model.name!r} "
            f"({type(model).__name__}); put it in a model first"
        )
    if not model.built:
        raise ValueError(
            f"model {model.name!r} is not built yet, so it has no input shape to copy; build it with "
            "an Input(batch_shape=(batch, timesteps, features)) or call it on a batch first"
        )
    try:
        config = model.get_config()
    except NotImplementedError as error:
        config = None
        cause: BaseException | None = error
    else:
        cause = None
    if not isinstance(config, Mapping) or "layers" not in config:
        raise TypeError(
            f"with_batch_size rebuilds Sequential and functional models from their config, but "
            f"{type(model).__name__} {model.name!r} is a subclassed model whose config does not list "
            "its layers. Create a new instance with the batch size in its Input and copy the weights "
            "with new.set_weights(model.get_weights())."
        ) from cause
    replicas = _current_replicas()
    if batch_size % replicas:
        raise ValueError(
            f"batch_size={batch_size} is the global batch inside this tf.distribute scope of {replicas} "
            f"replicas, and it does not split evenly over them: use a multiple of {replicas}"
        )
    copy = type(model).from_config(_rebatch_config(config, batch_size // replicas), custom_objects=custom_objects)
    copy.set_weights(model.get_weights())
    return copy
