"""Stateful LSTM and GRU layers whose state variables are tracked, so that JAX carries their state.

In Keras 3 (checked on 3.15.1) ``RNN._create_state_variables`` is decorated with
``tracking.no_automatic_dependency_tracking``: the state variables of a stateful layer are
not among the model's ``non_trainable_variables``. The TensorFlow and PyTorch backends
read and write them anyway, but the JAX trainer threads only tracked variables through
its jitted ``fit``/``predict``/``predict_on_batch`` steps, so on JAX ``stateful=True``
does nothing there: every batch starts from the state the function was traced with, and
a later ``assign`` is ignored.

``lstm_utils.StatefulLSTM`` (and ``StatefulGRU`` from ``stateful_gru_class``) is
``keras.layers.LSTM`` (``GRU``) with ``stateful=True`` by default and its state
variables made with ``add_weight(trainable=False)``: tracked non-trainable weights. Then
``fit``, ``predict`` and ``predict_on_batch`` carry the state, and ``assign`` works after
tracing, on every backend, and the state is saved in ``.keras`` files. On PyTorch it also
starts each call from a copy of the state variables (``ops.copy``), so that stateful
``fit`` no longer fails with autograd's in-place ``RuntimeError``
(keras-team/keras#20875 and #23462, still present in 3.15.1 on CPU): the stock layer needs
``use_cudnn=False`` for that; this one does not.

What it costs:

- it overrides the private method ``RNN._create_state_variables`` (the factory refuses a
  Keras without it; checked on Keras 3.15.1);
- ``model.weights`` and ``get_weights()``/``set_weights()`` include the states (an LSTM
  layer has 5 weights instead of 3, the states first: ``state_h``, ``state_c``); set the
  cell's weights with ``layer.cell.set_weights([kernel, recurrent_kernel, bias])``;
- the PyTorch copy is one more op per call, on that backend only (the same fix as the
  upstream pull request keras-team/keras#23464, not in 3.15.1);
- it is Keras 3 only: Keras 2 (``tf_keras``) tracks its state variables already.

See chapter 12.

Examples
--------
>>> import keras
>>> from lstm_utils.tracked_state import stateful_lstm_class
>>> StatefulLSTM = stateful_lstm_class(keras)
>>> model = keras.Sequential([keras.Input(batch_shape=(2, 5, 3)), StatefulLSTM(4, name="lstm")])
>>> [w.name for w in model.non_trainable_weights]
['state_h', 'state_c']
"""

from __future__ import annotations

import functools
import importlib
import types
from typing import TYPE_CHECKING, Any

__all__ = ["TrackedStateLogic", "stateful_lstm_class", "stateful_gru_class"]

CHECKED_KERAS_VERSION = "3.15.1"
"""The Keras version whose ``RNN._create_state_variables`` this module was checked against."""

_REGISTERED_PACKAGE = "lstm_utils"
_PRIVATE_METHOD = "_create_state_variables"

if TYPE_CHECKING:  # the logic is mixed into a Keras layer, whose methods the type checker cannot see
    _LayerBase = Any
else:
    _LayerBase = object


def _state_labels(count: int) -> list[str]:
    """The book's labels for one cell's states: ``h`` (and ``c``), ``state1``, ``state2``... beyond two."""
    if count == 1:
        return ["h"]
    if count == 2:
        return ["h", "c"]
    return [f"state{index}" for index in range(1, count + 1)]


class TrackedStateLogic(_LayerBase):  # type: ignore[misc]  # a mixin for a Keras RNN layer
    """A stateful RNN layer whose state variables are tracked non-trainable weights.

    Mixed into ``keras.layers.LSTM`` or ``keras.layers.GRU`` by ``stateful_lstm_class``
    and ``stateful_gru_class``. ``stateful`` defaults to ``True``; every other
    argument is the base layer's. The states are weights named ``state_h`` and
    ``state_c`` (``state_h`` for a GRU), of shape ``(batch, units)``, made when the layer
    is built for a fixed batch size (``keras.Input(batch_shape=...)``), listed in
    ``layer.states`` as usual and in ``non_trainable_weights``.

    See chapter 12.

    Examples
    --------
    >>> import numpy as np, keras
    >>> from lstm_utils.tracked_state import stateful_lstm_class
    >>> layer = stateful_lstm_class(keras)(4)
    >>> layer.stateful
    True
    >>> outputs = layer(np.ones((2, 5, 3), "float32"))
    >>> [tuple(s.shape) for s in layer.states], len(layer.weights)
    ([(2, 4), (2, 4)], 5)
    """

    def __init__(self, *args: Any, stateful: bool = True, **kwargs: Any) -> None:
        if not isinstance(stateful, bool):
            raise TypeError(f"stateful must be True or False, got {stateful!r} ({type(stateful).__name__})")
        super().__init__(*args, stateful=stateful, **kwargs)

    keras: types.ModuleType  # set by the factory: the Keras 3 package

    def call(self, sequences: Any, initial_state: Any = None, mask: Any = None, training: bool = False) -> Any:
        if (
            initial_state is None
            and self.stateful
            and self.states is not None
            and self.keras.backend.backend() == "torch"
        ):
            # PyTorch: start from a copy, so that assigning the new state after the forward pass does not
            # modify a tensor autograd saved for the backward pass (the in-place RuntimeError of fit).
            initial_state = [self.keras.ops.copy(state.value) for state in self.states]
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)

    def _create_state_variables(self, batch_size: int) -> None:
        # Replaces the private RNN method, which creates untracked backend.Variable objects.
        initial = list(self.get_initial_state(batch_size))
        self.states = [
            self.add_weight(
                shape=tuple(int(d) for d in value.shape),
                initializer="zeros",
                dtype=self.variable_dtype,
                trainable=False,
                name=f"state_{label}",
            )
            for label, value in zip(_state_labels(len(initial)), initial, strict=True)
        ]


def _keras3_package(K: Any, factory: str) -> types.ModuleType:
    """The ``keras`` package itself for ``keras`` or ``tf.keras`` (Keras 3); ``TypeError`` for anything else."""
    if not isinstance(K, types.ModuleType):
        raise TypeError(f"{factory} expects the Keras 3 package (keras), got {K!r} ({type(K).__name__})")
    name = K.__name__
    if name == "tf_keras" or name.startswith("tf_keras."):
        raise TypeError(
            f"{factory} is for Keras 3 (keras); got {name} (Keras 2), which needs no fix: its stateful layers' "
            "state variables are tracked, so fit and predict carry state there"
        )
    lstm = getattr(getattr(K, "layers", None), "LSTM", None)
    if not (isinstance(lstm, type) and lstm.__module__.startswith("keras.")):
        raise TypeError(f"{factory} expects the Keras 3 package (keras or tf.keras), got the module {name!r}")
    keras = importlib.import_module("keras")  # tf.keras is this package too: one class, one registration
    if not hasattr(keras.layers.RNN, _PRIVATE_METHOD):
        raise RuntimeError(
            f"{factory}: this Keras ({keras.__version__}) has no RNN.{_PRIVATE_METHOD}, the private method "
            f"the tracked-state layers replace (checked on Keras {CHECKED_KERAS_VERSION})"
        )
    return keras


@functools.cache
def _tracked_class(keras: types.ModuleType, base_name: str) -> type:
    name = f"Stateful{base_name}"
    cls = types.new_class(
        name,
        (TrackedStateLogic, getattr(keras.layers, base_name)),
        exec_body=lambda namespace: namespace.update(
            keras=keras, __module__=__name__, __doc__=TrackedStateLogic.__doc__
        ),
    )
    registered: type = keras.saving.register_keras_serializable(package=_REGISTERED_PACKAGE, name=name)(cls)
    return registered


def stateful_lstm_class(K: types.ModuleType) -> type:
    """``StatefulLSTM`` for Keras 3: ``keras.layers.LSTM`` whose state variables are tracked weights.

    :class:`TrackedStateLogic` mixed into ``keras.layers.LSTM`` and registered as
    ``lstm_utils>StatefulLSTM`` (``keras.saving.register_keras_serializable``), so a
    ``.keras`` file with it loads without ``custom_objects`` once the class has been made
    in the process. Made once (cached): ``keras`` and ``tf.keras`` give the same class.
    ``lstm_utils.StatefulLSTM`` is the result.

    Parameters
    ----------
    K : module
        ``keras`` or ``tf.keras`` (Keras 3).

    Returns
    -------
    type
        A subclass of ``keras.layers.LSTM``.

    Raises
    ------
    TypeError
        If ``K`` is ``tf_keras`` (Keras 2, which needs no fix) or not a Keras 3 package.
    RuntimeError
        If this Keras has no ``RNN._create_state_variables`` (checked on Keras 3.15.1).

    Notes
    -----
    See the module's notes: it replaces a private method, ``get_weights()`` grows by the
    states, and on PyTorch each call starts from a copy of the state (so ``fit`` works
    without ``use_cudnn=False``).
    See chapter 12.

    Examples
    --------
    >>> import keras
    >>> cls = stateful_lstm_class(keras)
    >>> cls.__name__, issubclass(cls, keras.layers.LSTM)
    ('StatefulLSTM', True)
    >>> keras.saving.get_registered_name(cls)
    'lstm_utils>StatefulLSTM'
    """
    return _tracked_class(_keras3_package(K, "stateful_lstm_class"), "LSTM")


def stateful_gru_class(K: types.ModuleType) -> type:
    """``StatefulGRU`` for Keras 3: ``keras.layers.GRU`` whose state variable is a tracked weight.

    As :func:`stateful_lstm_class`, for ``GRU`` (one state, ``state_h``); registered as
    ``lstm_utils>StatefulGRU``.

    Parameters
    ----------
    K : module
        ``keras`` or ``tf.keras`` (Keras 3).

    Returns
    -------
    type
        A subclass of ``keras.layers.GRU``.

    Raises
    ------
    TypeError
        If ``K`` is ``tf_keras`` (Keras 2) or not a Keras 3 package.
    RuntimeError
        If this Keras has no ``RNN._create_state_variables``.

    Notes
    -----
    See chapter 12.

    Examples
    --------
    >>> import keras
    >>> cls = stateful_gru_class(keras)
    >>> cls.__name__, issubclass(cls, keras.layers.GRU)
    ('StatefulGRU', True)
    """
    return _tracked_class(_keras3_package(K, "stateful_gru_class"), "GRU")
