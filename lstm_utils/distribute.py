"""Stateful recurrent layers on many devices: every replica's state, and state carried by hand.

Under ``tf.distribute.MirroredStrategy`` (Keras 3, TensorFlow backend) a stateful layer's
state variables are ``MirroredVariable`` objects whose per-device copies are *not* mirrored:
each replica keeps the state rows of its own part of the batch. Reading ``layer.states[0]``
shows replica 0's rows only, one ``assign`` writes the same rows into every replica, and
``tf.train.Checkpoint`` saves replica 0's copy only. :func:`replica_variables` and
:func:`replicas_in_sync` expose the copies; ``lstm_utils.get_states``, ``set_states``,
``reset_states``, ``save_states`` and ``load_states`` use them, so that they read and write
the whole global batch, every replica's rows in the order the strategy splits a batch.

The pattern that works on both Keras versions and on many machines keeps the layer
stateless and carries the state explicitly, per replica, through ``strategy.run``:
:func:`distribute_rows` splits global-batch arrays into per-replica values,
:func:`gather_rows` joins them again, and :func:`predict_carrying_state` /
:func:`fit_carrying_state` run a model whose inputs are ``[x, *states]`` and whose outputs
are ``[y, *new_states]`` over consecutive batches, with ``tf.stop_gradient`` between them.

Chapter 13, ``13_many_devices.ipynb``, explains all of it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from lstm_utils._flavour import flavour_of, keras_module, to_numpy
from lstm_utils._layers import check_int, describe, stateful_layers
from lstm_utils.repro import quiet_tensorflow

MAX_LOGICAL_CPUS = 64
"""The most logical CPU devices :func:`logical_cpus` makes (each is a thread pool, not a core)."""

__all__ = [
    "MAX_LOGICAL_CPUS",
    "logical_cpus",
    "replica_variables",
    "replicas_in_sync",
    "distribute_rows",
    "gather_rows",
    "predict_carrying_state",
    "fit_carrying_state",
]


@contextlib.contextmanager
def _descriptor_2_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: TensorFlow's C++ start-up lines go there directly."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def logical_cpus(count: int) -> list[str]:
    """Split this machine's CPU into ``count`` logical devices, so that strategies have replicas to use.

    ``tf.distribute.MirroredStrategy(lstm_utils.distribute.logical_cpus(4))`` then runs 4
    replicas on a laptop, exactly as it would on 4 GPUs (one batch split four ways, one
    copy of every variable per device), only not faster. TensorFlow fixes its devices when
    it first uses them, so call this before anything else does: first thing in a script or
    notebook, before :func:`lstm_utils.quiet_tensorflow`, which it calls itself (TensorFlow,
    Keras 3 and Keras 2 are imported without their start-up lines). ``count=1`` leaves the
    CPU whole.

    See chapter 13, ``13_many_devices.ipynb``.

    Parameters
    ----------
    count : int
        How many logical CPU devices, 1 to :data:`MAX_LOGICAL_CPUS`.

    Returns
    -------
    list of str
        The logical CPU devices' names, to pass to ``MirroredStrategy``.

    Raises
    ------
    TypeError
        If ``count`` is not an integer.
    ValueError
        If ``count`` is out of range.
    RuntimeError
        If TensorFlow has already set up a different number of CPU devices (restart the
        process and call this first).

    Examples
    --------
    >>> len(logical_cpus(1))
    1
    """
    count = check_int("count", count, 1, MAX_LOGICAL_CPUS)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _descriptor_2_silenced():
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        if count > 1:
            with contextlib.suppress(RuntimeError):  # already initialised: checked below
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    quiet_tensorflow()
    names = [device.name for device in tf.config.list_logical_devices("CPU")]
    if len(names) != count:
        raise RuntimeError(
            f"TensorFlow has already set up {len(names)} logical CPU device(s), so {count} cannot be made "
            "any more: devices are fixed the first time TensorFlow uses them. Call "
            f"lstm_utils.distribute.logical_cpus({count}) first thing in a fresh process (restart the kernel)."
        )
    return names


def _distributed_value(variable: Any) -> Any | None:
    """The ``tf.distribute`` variable behind a state variable, or ``None`` for a plain one."""
    if "tensorflow" not in sys.modules:  # nothing can be distributed before TensorFlow is imported
        return None
    import tensorflow as tf

    candidates = [variable]
    if flavour_of(variable) == "keras3":
        candidates.append(getattr(variable, "value", None))  # a keras.Variable wraps the tf.Variable
    for candidate in candidates:
        if isinstance(candidate, tf.distribute.DistributedValues):
            return candidate
    return None


def replica_variables(variable: Any) -> list[Any]:
    """The per-replica copies of a state variable on this machine, in replica order.

    A variable created in a ``tf.distribute.MirroredStrategy`` scope has one copy per
    device; for a stateful layer's state each copy holds its own replica's rows of the
    batch. A plain variable gives ``[variable]``.

    See chapter 13, ``13_many_devices.ipynb``.

    Parameters
    ----------
    variable : keras.Variable or tf.Variable
        A state variable, for example one of ``lstm_utils.state_variables(layer)``.

    Returns
    -------
    list
        The copies (``tf.Variable`` objects, one per local replica), or ``[variable]``.

    Examples
    --------
    >>> import keras, tensorflow as tf
    >>> strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    >>> with strategy.scope():
    ...     lstm = keras.layers.LSTM(3, stateful=True)
    ...     _ = lstm(keras.ops.zeros((2, 4, 1)))
    >>> [tuple(copy.shape) for copy in replica_variables(lstm.states[0])]
    [(2, 3)]
    >>> len(replica_variables(keras.Variable([1.0])))
    1
    """
    distributed = _distributed_value(variable)
    if distributed is None:
        return [variable]
    return list(distributed.distribute_strategy.experimental_local_results(distributed))


def replicas_in_sync(variable: Any) -> int:
    """How many replicas, on all machines together, share a (distributed) variable; 1 for a plain one.

    With ``MirroredStrategy`` this is the number of local copies; with
    ``MultiWorkerMirroredStrategy`` it counts the replicas of every worker, and
    :func:`replica_variables` gives this worker's copies only.

    See chapter 13, ``13_many_devices.ipynb``.

    Examples
    --------
    >>> import keras
    >>> replicas_in_sync(keras.Variable([1.0]))
    1
    """
    distributed = _distributed_value(variable)
    if distributed is None:
        return 1
    return int(distributed.distribute_strategy.num_replicas_in_sync)


def _strategy(strategy: Any) -> Any:
    import tensorflow as tf

    if strategy is None:
        return tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(
            f"strategy must be a tf.distribute.Strategy (for example MirroredStrategy) or None, "
            f"got {type(strategy).__name__}"
        )
    return strategy


def _as_float_array(value: Any, name: str) -> np.ndarray:
    try:
        array = to_numpy(value)
    except Exception as error:  # anything NumPy cannot turn into an array
        raise TypeError(f"{name}: expected a numeric array or tensor, got {type(value).__name__}") from error
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a numeric array or tensor, got dtype {array.dtype}")
    if array.ndim == 0:
        raise ValueError(f"{name}: expected an array with a batch axis, got a scalar")
    return array.astype("float32") if array.dtype.kind == "f" else array


def distribute_rows(strategy: Any, arrays: Sequence[Any]) -> list[Any]:
    """Split global-batch arrays into per-replica values: replica ``r`` gets rows ``r*B:(r+1)*B``.

    That is the order in which ``strategy.experimental_distribute_dataset`` and Keras'
    ``fit``/``predict`` split a global batch over ``MirroredStrategy`` replicas; the
    replica number is the global one, so on many machines each worker takes its own
    replicas' rows from the same global arrays.

    See chapter 13, ``13_many_devices.ipynb``.

    Parameters
    ----------
    strategy : tf.distribute.Strategy or None
        The strategy (``None``: the current one, a single device outside any scope).
    arrays : sequence of array-like
        Arrays whose first axis is the global batch, a multiple of the number of replicas.

    Returns
    -------
    list
        One per-replica value (``PerReplica``; a plain tensor on a single device) per array.

    Raises
    ------
    TypeError
        If ``strategy`` is not a strategy, ``arrays`` not a list or tuple, or an array not numeric.
    ValueError
        If an array's batch does not split evenly over the replicas.

    Examples
    --------
    >>> import numpy as np, tensorflow as tf
    >>> strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    >>> [h] = distribute_rows(strategy, [np.arange(6.0).reshape(3, 2)])
    >>> gather_rows(strategy, [h])[0].shape
    (3, 2)
    """
    import tensorflow as tf

    strategy = _strategy(strategy)
    if not isinstance(arrays, (list, tuple)):
        raise TypeError(f"arrays must be a list or tuple of arrays, got {type(arrays).__name__}")
    replicas = int(strategy.num_replicas_in_sync)
    checked = []
    for index, value in enumerate(arrays):
        array = _as_float_array(value, f"arrays[{index}]")
        if array.shape[0] % replicas or array.shape[0] == 0:
            raise ValueError(
                f"arrays[{index}] has {array.shape[0]} rows, which do not split evenly over {replicas} "
                f"replica(s): give a global batch that is a positive multiple of {replicas}"
            )
        checked.append(array)

    def rows_of(array: np.ndarray) -> Any:
        per_replica = array.shape[0] // replicas

        def value_fn(context: Any) -> Any:
            start = context.replica_id_in_sync_group * per_replica
            return tf.constant(array[start : start + per_replica])

        return strategy.experimental_distribute_values_from_function(value_fn)

    return [rows_of(array) for array in checked]


def gather_rows(strategy: Any, values: Sequence[Any]) -> list[np.ndarray]:
    """Join per-replica values into global-batch NumPy arrays, replica 0's rows first.

    The inverse of :func:`distribute_rows`. On many machines it is a collective operation:
    every worker must call it, and every worker gets all rows.

    See chapter 13, ``13_many_devices.ipynb``.

    Examples
    --------
    >>> import numpy as np, tensorflow as tf
    >>> strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    >>> gather_rows(strategy, distribute_rows(strategy, [np.ones((2, 1))]))[0].tolist()
    [[1.0], [1.0]]
    """
    strategy = _strategy(strategy)
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"values must be a list or tuple of per-replica values, got {type(values).__name__}")
    return [np.array(strategy.gather(value, axis=0).numpy(), copy=True) for value in values]


def _check_model(model: Any) -> int:
    """The number of states of an explicit-state model ``[x, *states] -> [y, *states]``."""
    flavour = flavour_of(model)
    if flavour is None or not isinstance(model, keras_module(flavour).Model):
        raise TypeError(f"model must be a Keras model (keras, tf.keras or tf_keras), got {type(model).__name__}")
    found = stateful_layers(model)
    if found:
        raise ValueError(
            f"model {model.name!r} holds the stateful layer {describe(found[0][1])}; the explicit-state "
            "helpers carry the state themselves, so build the model from stateless layers with "
            "return_state=True and the start state as Inputs"
        )
    inputs, outputs = list(model.inputs), list(model.outputs)
    if len(inputs) < 2 or len(outputs) != len(inputs):
        raise ValueError(
            f"model {model.name!r} must take [x, *states] and return [y, *new_states] (as many states in as "
            f"out, at least one), got {len(inputs)} input(s) and {len(outputs)} output(s)"
        )
    return len(inputs) - 1


def _check_data(model: Any, arrays: dict[str, Any], batch_size: int, states: int, initial_states: Any) -> Any:
    checked = {name: _as_float_array(value, name) for name, value in arrays.items()}
    rows = {name: array.shape[0] for name, array in checked.items()}
    if len(set(rows.values())) > 1:
        raise ValueError(f"x and y must have the same number of samples, got {rows}")
    n = next(iter(rows.values()))
    if n == 0 or n % batch_size:
        raise ValueError(
            f"x has {n} samples, which do not split into whole batches of batch_size={batch_size}; "
            "carrying state needs every batch full (use lstm_utils.to_stateful_batches and drop the rest)"
        )
    if initial_states is None:
        shapes = [tuple(model.inputs[1 + i].shape[1:]) for i in range(states)]
        starts = [np.zeros((batch_size, *shape), "float32") for shape in shapes]
    else:
        if not isinstance(initial_states, (list, tuple)) or len(initial_states) != states:
            raise ValueError(f"initial_states must be a list of {states} array(s), one per state, or None")
        starts = [_as_float_array(s, f"initial_states[{i}]").astype("float32") for i, s in enumerate(initial_states)]
        for i, start in enumerate(starts):
            if start.shape[0] != batch_size:
                raise ValueError(
                    f"initial_states[{i}] has {start.shape[0]} rows, expected batch_size={batch_size} "
                    "(the global batch)"
                )
    return checked, starts


def _batches(array: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [array[start : start + batch_size] for start in range(0, array.shape[0], batch_size)]


def predict_carrying_state(
    model: Any,
    x: Any,
    *,
    batch_size: int,
    strategy: Any = None,
    initial_states: Sequence[Any] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run an explicit-state model over consecutive batches, carrying each replica's state.

    ``model`` takes ``[x, *states]`` and returns ``[y, *new_states]`` (a stateless LSTM with
    ``return_state=True`` and its start state as Inputs). Batch ``k`` of ``x`` (rows
    ``k*batch_size:(k+1)*batch_size``, the order of ``lstm_utils.to_stateful_batches``)
    starts from the state batch ``k - 1`` ended with, row by row, exactly as a stateful
    layer does on one device; each replica keeps its own rows on its own device.

    See chapter 13, ``13_many_devices.ipynb``.

    Parameters
    ----------
    model : keras.Model
        The explicit-state model, Keras 3 or Keras 2, built in ``strategy.scope()``.
    x : array-like
        Inputs in stateful order, a whole number of global batches.
    batch_size : int
        The global batch (every replica gets ``batch_size / replicas`` rows).
    strategy : tf.distribute.Strategy, optional
        ``MirroredStrategy``, ``MultiWorkerMirroredStrategy``...; default: the current one.
    initial_states : list of array-like, optional
        The start state, one ``(batch_size, ...)`` array per state; default zeros.

    Returns
    -------
    outputs : numpy.ndarray
        ``y`` of every batch, in the order of ``x``.
    states : list of numpy.ndarray
        The final state, all replicas' rows.

    Raises
    ------
    TypeError
        If ``model`` is not a Keras model, ``strategy`` not a strategy, or the data not numeric.
    ValueError
        If the model is not ``[x, *states] -> [y, *states]`` or holds a stateful layer,
        ``x`` is not whole batches, or ``batch_size`` does not split over the replicas.

    Examples
    --------
    >>> import keras, numpy as np
    >>> x_in, h_in = keras.Input((4, 1)), keras.Input((2,))
    >>> seq, h_out = keras.layers.GRU(2, return_state=True)(x_in, initial_state=h_in)
    >>> model = keras.Model([x_in, h_in], [seq, h_out])
    >>> y, [h] = predict_carrying_state(model, np.ones((6, 4, 1), "float32"), batch_size=3)
    >>> y.shape, h.shape
    ((6, 2), (3, 2))
    """
    outputs, _, states = _run(model, {"x": x}, batch_size, strategy, initial_states, None, None, 1)
    assert outputs is not None  # _check_data refused an x without a batch
    return outputs, states


def fit_carrying_state(
    model: Any,
    x: Any,
    y: Any,
    *,
    batch_size: int,
    optimizer: Any,
    loss: Callable[[Any, Any], Any] | str,
    strategy: Any = None,
    epochs: int = 1,
    initial_states: Sequence[Any] | None = None,
) -> tuple[list[float], list[np.ndarray]]:
    """Train an explicit-state model over consecutive batches, carrying each replica's state.

    Truncated backpropagation through time, like ``fit(..., shuffle=False)`` of a stateful
    model on one device: batch ``k`` starts from the state batch ``k - 1`` ended with, and
    ``tf.stop_gradient`` keeps gradients inside the batch. Each replica computes the loss
    of its rows scaled by the global batch (``tf.nn.compute_average_loss``), the optimizer
    sums the gradients over replicas, so one step equals one step of a single device on
    the whole batch. Every epoch starts again from ``initial_states``.

    See chapter 13, ``13_many_devices.ipynb``.

    Parameters
    ----------
    model : keras.Model
        The explicit-state model ``[x, *states] -> [y, *new_states]``, created with the
        optimizer in ``strategy.scope()``.
    x, y : array-like
        Inputs and targets in stateful order, a whole number of global batches.
    batch_size : int
        The global batch.
    optimizer : keras.optimizers.Optimizer
        Of the model's Keras version.
    loss : callable or str
        ``loss(y_true, y_pred)`` giving one value per sample (or per sample and step, then
        averaged), such as ``keras.losses.mean_squared_error``; or its name (``"mse"``).
    strategy : tf.distribute.Strategy, optional
        Default: the current one.
    epochs : int
        Passes over the data.
    initial_states : list of array-like, optional
        The start state of every epoch; default zeros.

    Returns
    -------
    losses : list of float
        The loss of every batch (mean over the global batch), epoch after epoch.
    states : list of numpy.ndarray
        The state at the end of training, all replicas' rows.

    Raises
    ------
    TypeError, ValueError
        As :func:`predict_carrying_state`; also for an unknown loss name or ``epochs < 1``.

    Examples
    --------
    >>> import keras, numpy as np
    >>> x_in, h_in = keras.Input((4, 1)), keras.Input((2,))
    >>> seq, h_out = keras.layers.GRU(2, return_state=True)(x_in, initial_state=h_in)
    >>> model = keras.Model([x_in, h_in], [seq, h_out])
    >>> losses, [h] = fit_carrying_state(model, np.ones((4, 4, 1), "float32"), np.zeros((4, 2), "float32"),
    ...                                  batch_size=2, optimizer=keras.optimizers.SGD(0.1), loss="mse")
    >>> len(losses), h.shape
    (2, (2, 2))
    """
    epochs = check_int("epochs", epochs)
    if isinstance(loss, str):
        flavour = flavour_of(model)
        if flavour is None:
            raise TypeError(f"model must be a Keras model (keras, tf.keras or tf_keras), got {type(model).__name__}")
        try:
            loss_fn = keras_module(flavour).losses.get(loss)
        except ValueError as error:
            raise ValueError(f"loss: unknown loss name {loss!r} ({error})") from None
    elif callable(loss):
        loss_fn = loss
    else:
        raise TypeError(f"loss must be a callable loss(y_true, y_pred) or a loss name, got {type(loss).__name__}")
    if optimizer is None or not hasattr(optimizer, "apply_gradients"):
        raise TypeError(f"optimizer must be a Keras optimizer, got {type(optimizer).__name__}")
    _, losses, states = _run(model, {"x": x, "y": y}, batch_size, strategy, initial_states, optimizer, loss_fn, epochs)
    return losses, states


def _run(
    model: Any,
    data: dict[str, Any],
    batch_size: int,
    strategy: Any,
    initial_states: Any,
    optimizer: Any,
    loss_fn: Any,
    epochs: int,
) -> tuple[np.ndarray | None, list[float], list[np.ndarray]]:
    import tensorflow as tf

    states = _check_model(model)
    batch_size = check_int("batch_size", batch_size)
    strategy = _strategy(strategy)
    replicas = int(strategy.num_replicas_in_sync)
    if batch_size % replicas:
        raise ValueError(
            f"batch_size={batch_size} (the global batch) does not split evenly over {replicas} replicas; "
            f"use a multiple of {replicas}"
        )
    arrays, starts = _check_data(model, data, batch_size, states, initial_states)
    training = optimizer is not None

    def replica_step(x: Any, y: Any, carried: Any) -> Any:
        if not training:
            out = model([x, *carried], training=False)
            return out[0], [tf.stop_gradient(s) for s in out[1:]]
        with tf.GradientTape() as tape:
            out = model([x, *carried], training=True)
            per_sample = tf.cast(loss_fn(y, out[0]), tf.float32)
            if per_sample.shape.rank and per_sample.shape.rank > 1:
                per_sample = tf.reduce_mean(per_sample, axis=list(range(1, per_sample.shape.rank)))
            scaled = tf.nn.compute_average_loss(per_sample, global_batch_size=batch_size)
        variables = model.trainable_variables
        gradients = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return scaled, [tf.stop_gradient(s) for s in out[1:]]

    def run_step(x: Any, y: Any, carried: Any) -> Any:
        result, new_states = strategy.run(replica_step, args=(x, y, carried))
        if training:
            result = strategy.reduce(tf.distribute.ReduceOp.SUM, result, axis=None)
        return result, new_states

    step = tf.function(run_step)

    outputs: list[np.ndarray] = []
    losses: list[float] = []
    carried: list[Any] = []
    for _ in range(epochs):
        carried = distribute_rows(strategy, starts)
        xs = _batches(arrays["x"], batch_size)
        ys = _batches(arrays["y"], batch_size) if training else [np.zeros((batch_size, 1), "float32")] * len(xs)
        for x_batch, y_batch in zip(xs, ys, strict=True):
            x_value, y_value = distribute_rows(strategy, [x_batch, y_batch])
            result, carried = step(x_value, y_value, list(carried))
            if training:
                losses.append(float(result.numpy()))
            else:
                outputs.append(gather_rows(strategy, [result])[0])
    final = gather_rows(strategy, carried)
    return (np.concatenate(outputs) if outputs else None), losses, final
