"""Layers that hold recurrent state as trainable weights.

``TrainableInitialState`` holds a learned initial state (``h0`` and ``c0`` for an LSTM,
``h0`` for a GRU) as weights made with ``add_weight`` and returns it broadcast to the
batch of whatever it is called on, ready to pass as ``initial_state=``. The Keras 3
class is ``lstm_utils.TrainableInitialState``; its Keras 2 twin is
``lstm_utils.keras2.TrainableInitialState``.

Both classes are registered as ``lstm_utils>TrainableInitialState`` (with
``keras.saving.register_keras_serializable`` and ``tf_keras.saving.register_keras_serializable``),
so ``load_model`` on a ``.keras`` file (Keras 3 or Keras 2) needs no ``custom_objects``,
provided the class has been loaded in the process first: ``from lstm_utils import
TrainableInitialState`` (Keras 3) or ``from lstm_utils.keras2 import TrainableInitialState``
(Keras 2) before loading. Keras 2's SavedModel and HDF5 formats are not covered.

See chapter 8, ``08_trainable_initial_state.ipynb``.

Examples
--------
>>> import numpy as np, keras, lstm_utils
>>> inputs = keras.Input((None, 3))
>>> h0_c0 = lstm_utils.TrainableInitialState(4, name="init")(inputs)
>>> model = keras.Model(inputs, keras.layers.LSTM(4)(inputs, initial_state=h0_c0))
>>> [w.path for w in model.get_layer("init").trainable_weights]
['init/h0', 'init/c0']
>>> model.predict(np.zeros((5, 7, 3)), verbose=0).shape
(5, 4)
"""

from __future__ import annotations

import functools
import types
from typing import TYPE_CHECKING, Any

from lstm_utils._flavour import flavour_of
from lstm_utils._layers import check_int

__all__ = ["TrainableInitialStateLogic", "trainable_initial_state_class"]

_REGISTERED_PACKAGE = "lstm_utils"

if TYPE_CHECKING:  # the logic is mixed into a Keras Layer, whose methods the type checker cannot see
    _LayerBase = Any
else:
    _LayerBase = object


def _weight_names(num_states: int) -> list[str]:
    if num_states == 1:
        return ["h0"]
    if num_states == 2:
        return ["h0", "c0"]
    return [f"state{index}_0" for index in range(num_states)]


class TrainableInitialStateLogic(_LayerBase):  # type: ignore[misc]  # a mixin for a Keras class
    """A learned initial state for an RNN layer, broadcast to the batch it is called on.

    The layer owns ``num_states`` trainable weights of shape ``(1, units)``, made with
    ``add_weight`` (so they are in ``trainable_weights``, receive gradients, are changed
    by ``fit`` and are saved with the model). Called on any tensor whose first axis is the
    batch (typically the RNN's input sequence), it returns a list of ``num_states``
    tensors of shape ``(batch, units)``: every row is the learned state. Pass that list as
    the RNN's ``initial_state``.

    This class holds the behaviour; use it through ``lstm_utils.TrainableInitialState``
    (Keras 3) or ``lstm_utils.keras2.TrainableInitialState`` (Keras 2), which mix it into
    that version's ``Layer``.

    Parameters
    ----------
    units : int
        The RNN's number of units (the width of each state).
    num_states : int
        How many state tensors the RNN takes: 2 for ``LSTM`` (``[h, c]``), 1 for ``GRU``
        and ``SimpleRNN``, 4 for ``Bidirectional(LSTM)`` (``[fwd_h, fwd_c, bwd_h,
        bwd_c]``), 2 for ``Bidirectional(GRU)``.
    initializer : str or initializer
        How the states start (default ``"zeros"``: the RNN's usual start).
    **kwargs
        Passed to ``Layer`` (``name``, ``dtype``, ...).

    Raises
    ------
    TypeError
        If ``units`` or ``num_states`` is not an integer.
    ValueError
        If ``units`` or ``num_states`` is below 1, or ``initializer`` is not a Keras
        initializer.

    Notes
    -----
    Weight names are ``h0`` (and ``c0``) for one or two states and ``state{i}_0`` for
    more. ``initial_states`` lists the weights in the order they are returned. Keras 3
    trains only what ``add_weight`` (or a ``keras.Variable`` attribute) creates: a raw
    ``tf.Variable`` attribute is never trained there, although Keras 2 tracks and trains
    it. This layer works the same in both.

    See chapter 8, ``08_trainable_initial_state.ipynb``.

    Examples
    --------
    >>> import numpy as np, keras, lstm_utils
    >>> inputs = keras.Input((None, 3))
    >>> states = lstm_utils.TrainableInitialState(4, name="init")(inputs)
    >>> outputs = keras.layers.LSTM(4)(inputs, initial_state=states)
    >>> model = keras.Model(inputs, outputs)
    >>> [w.name for w in model.get_layer("init").trainable_weights]
    ['h0', 'c0']
    >>> [tuple(s.shape) for s in model.get_layer("init")(np.zeros((5, 7, 3)))]
    [(5, 4), (5, 4)]
    """

    keras: types.ModuleType  # set by trainable_initial_state_class: keras or tf_keras

    def __init__(self, units: int, num_states: int = 2, initializer: Any = "zeros", **kwargs: Any) -> None:
        units = check_int("units", units)
        num_states = check_int("num_states", num_states)
        try:
            resolved = self.keras.initializers.get(initializer)
        except (ValueError, TypeError) as error:
            raise ValueError(
                "initializer must be a Keras initializer or its name (such as "
                f"'zeros' or 'glorot_uniform'), got {initializer!r}"
            ) from error
        if resolved is None:
            raise ValueError("initializer must be a Keras initializer or its name, got None")
        super().__init__(**kwargs)
        self.units = units
        self.num_states = num_states
        self.initializer = resolved
        self._state_weights: list[Any] = []

    def build(self, input_shape: Any) -> None:
        self._state_weights = [
            self.add_weight(name=name, shape=(1, self.units), initializer=self.initializer, trainable=True)
            for name in _weight_names(self.num_states)
        ]
        self.built = True

    @property
    def initial_states(self) -> list[Any]:
        """The state weights (``[h0, c0]`` for an LSTM), in the order returned."""
        return list(self._state_weights)

    def call(self, inputs: Any) -> list[Any]:
        if flavour_of(self) == "keras3":
            ops = self.keras.ops
            batch = ops.shape(inputs)[0]
            return [
                ops.broadcast_to(ops.cast(weight, self.compute_dtype), (batch, self.units))
                for weight in self._state_weights
            ]
        import tensorflow as tf  # Keras 2 has no ops module; it runs on TensorFlow alone

        batch = tf.shape(inputs)[0]
        return [
            tf.broadcast_to(tf.cast(weight, self.compute_dtype), tf.stack([batch, self.units]))
            for weight in self._state_weights
        ]

    def compute_output_shape(self, input_shape: Any) -> list[tuple[Any, int]]:
        try:
            batch = next(iter(input_shape))
        except (TypeError, ValueError, IndexError):  # unknown rank
            batch = None
        return [(batch, self.units) for _ in range(self.num_states)]

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(
            units=self.units,
            num_states=self.num_states,
            initializer=self.keras.initializers.serialize(self.initializer),
        )
        return config


@functools.cache
def trainable_initial_state_class(K: types.ModuleType) -> type:
    """``TrainableInitialState`` for the Keras package ``K`` (``keras`` or ``tf_keras``).

    :class:`TrainableInitialStateLogic` mixed into ``K.layers.Layer`` and registered with
    ``K.saving.register_keras_serializable(package="lstm_utils")``, so that a model saved
    with it loads with ``K.models.load_model(path)`` and no ``custom_objects`` in any
    process that has touched the class first. Made once per package: a second
    registration would replace the registered class with a new one.
    ``lstm_utils.TrainableInitialState`` and ``lstm_utils.keras2.TrainableInitialState``
    are the two results.

    Parameters
    ----------
    K : module
        ``keras`` (Keras 3) or ``tf_keras`` (Keras 2).

    Returns
    -------
    type
        A subclass of ``K.layers.Layer``.

    Examples
    --------
    >>> import tf_keras
    >>> cls = trainable_initial_state_class(tf_keras)
    >>> cls.__name__, issubclass(cls, tf_keras.layers.Layer)
    ('TrainableInitialState', True)
    """
    cls = types.new_class(
        "TrainableInitialState",
        (TrainableInitialStateLogic, K.layers.Layer),
        exec_body=lambda namespace: namespace.update(
            keras=K, __module__=__name__, __doc__=TrainableInitialStateLogic.__doc__
        ),
    )
    registered: type = K.saving.register_keras_serializable(package=_REGISTERED_PACKAGE)(cls)
    return registered
