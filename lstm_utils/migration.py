"""Keras 2 state idioms on Keras 3: what each one does now, and what to write instead.

Chapter 12 explains the registry: :data:`IDIOMS` holds one :class:`Idiom` per piece of
Keras 2 code that handles LSTM/GRU state (``batch_input_shape=``, ``model.reset_states()``,
``K.set_value(layer.states[i], v)``, ...), with what it does on Keras 3 and the Keras 3 code
that replaces it. The migration checker (:mod:`lstm_utils.migrate`) reads it for its messages.

Every entry is executable: :func:`run_idiom` runs the Keras 2 code on Keras 2 (``tf_keras``),
the same code on Keras 3 (``keras``), and the replacement on Keras 3, on one tiny model
(batch 2, 5 steps, 3 features, 4 units), and reports what happened, so that the registry's
text can be checked against what runs (:func:`run_all`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["KINDS", "Idiom", "IDIOMS", "idiom", "idiom_names", "IdiomResult", "run_idiom", "run_all", "results_table"]

KINDS = ("error", "silent", "unchanged")
"""What a Keras 2 idiom does on Keras 3: raises, runs but differs, or behaves the same."""


@dataclass(frozen=True)
class Idiom:
    """One Keras 2 state idiom: the code, what it does on Keras 3, and the replacement.

    See chapter 12.

    Attributes
    ----------
    name : str
        A unique slug (``"batch_input_shape"``).
    title : str
        A short label for tables (``"LSTM(batch_input_shape=...)"``).
    keras2 : str
        The Keras 2 code, a short snippet.
    on_keras3 : str
        What the same code does on Keras 3 (TensorFlow backend first; other backends after
        a ``;`` where they differ and were measured): the error's type and first line, or
        the silent difference.
    replacement : str
        The Keras 3 code to write instead.
    kind : str
        ``"error"`` (raises on Keras 3, on some backend), ``"silent"`` (runs on Keras 3 without
        an error, but not as the code says: differently from Keras 2, or as wrongly as Keras 2
        did) or ``"unchanged"`` (works as on Keras 2).
    detectable : bool
        The checker (:mod:`lstm_utils.migrate`) can find it in source code.
    fixable : bool
        The checker's ``--fix`` rewrites it mechanically (implies ``detectable``).
    kind_on_tf : str
        The kind on the TensorFlow backend, where it differs from ``kind`` (an idiom that
        fails only on JAX and torch is ``"unchanged"`` on TensorFlow); ``""`` means ``kind``.
    chapter : int
        The chapter that shows the idiom (0 when only chapter 12 does).
    keras2_works : bool or None
        Whether the Keras 2 code runs on Keras 2 (``None``: it depends on the machine, as
        ``CuDNNLSTM`` needs a GPU). Some idioms fail on Keras 2 too (``predict`` without
        ``batch_size``); they are here because Keras 3 fails differently.

    Examples
    --------
    >>> entry = idiom("model_reset_states")
    >>> entry.kind, entry.detectable, entry.fixable
    ('error', True, True)
    >>> entry.tf_kind
    'error'
    """

    name: str
    title: str
    keras2: str
    on_keras3: str
    replacement: str
    kind: str
    detectable: bool
    fixable: bool
    kind_on_tf: str = ""
    chapter: int = 0
    keras2_works: bool | None = True

    @property
    def tf_kind(self) -> str:
        """The kind on the TensorFlow backend (``kind_on_tf`` if set, else ``kind``)."""
        return self.kind_on_tf or self.kind


IDIOMS: tuple[Idiom, ...] = (
    Idiom(
        name="batch_input_shape",
        title="LSTM(batch_input_shape=...)",
        keras2="Sequential([LSTM(4, stateful=True, batch_input_shape=(2, 5, 3))])",
        on_keras3="ValueError: Unrecognized keyword arguments passed to LSTM: {'batch_input_shape': (2, 5, 3)}",
        replacement="Sequential([keras.Input(batch_shape=(2, 5, 3)), LSTM(4, stateful=True)])",
        kind="error",
        detectable=True,
        fixable=False,
        chapter=3,
    ),
    Idiom(
        name="layer_batch_size",
        title="LSTM(input_shape=..., batch_size=...)",
        keras2="Sequential([LSTM(4, stateful=True, input_shape=(5, 3), batch_size=2)])",
        on_keras3="ValueError: Unrecognized keyword arguments passed to LSTM: {'batch_size': 2}",
        replacement="Sequential([keras.Input(shape=(5, 3), batch_size=2), LSTM(4, stateful=True)])",
        kind="error",
        detectable=True,
        fixable=False,
        chapter=3,
    ),
    Idiom(
        name="model_reset_states",
        title="model.reset_states()",
        keras2="model.reset_states()  # also self.model.reset_states() in a callback",
        on_keras3="AttributeError: 'Sequential' object has no attribute 'reset_states'",
        replacement="layer.reset_states() for each stateful layer (lstm-migrate --fix writes a reset_rnn_states(model) "
        "helper), or lstm_utils.reset_states(model)",
        kind="error",
        detectable=True,
        fixable=True,
        chapter=4,
    ),
    Idiom(
        name="reset_states_with_states",
        title="layer.reset_states(states=[h, c])",
        keras2="layer.reset_states(states=[h0, c0])",
        on_keras3="TypeError: RNN.reset_states() got an unexpected keyword argument 'states'",
        replacement="layer.states[0].assign(h0); layer.states[1].assign(c0)  # or lstm_utils.set_states",
        kind="error",
        detectable=True,
        fixable=True,
        chapter=4,
    ),
    Idiom(
        name="backend_variable",
        title="K.variable(a)",
        keras2="v = keras.backend.variable(a)",
        on_keras3="works: a variable holding the values (tf.keras.backend); keras.backend: AttributeError: module "
        "'keras.backend' has no attribute 'variable' (the same on JAX and torch)",
        replacement="v = keras.Variable(a)",
        kind="error",
        kind_on_tf="unchanged",
        detectable=True,
        fixable=True,
        chapter=6,
    ),
    Idiom(
        name="backend_set_value",
        title="K.set_value(layer.states[i], v)",
        keras2="K.set_value(layer.states[0], h0)",
        on_keras3="AttributeError: 'str' object has no attribute 'name' (tf.keras.backend); keras.backend: "
        "AttributeError: module 'keras.backend' has no attribute 'set_value' (the same on JAX and torch)",
        replacement="layer.states[0].assign(h0)",
        kind="error",
        detectable=True,
        fixable=True,
        chapter=4,
    ),
    Idiom(
        name="backend_get_value",
        title="K.get_value(layer.states[i])",
        keras2="h = K.get_value(layer.states[0])",
        on_keras3="works: returns the state (tf.keras.backend); keras.backend: AttributeError: module "
        "'keras.backend' has no attribute 'get_value' (the same on JAX and torch)",
        replacement="h = keras.ops.convert_to_numpy(layer.states[0])",
        kind="error",
        kind_on_tf="unchanged",
        detectable=True,
        fixable=True,
        chapter=4,
    ),
    Idiom(
        name="state_list_replacement",
        title="layer.states[i] = ...",
        keras2="model.predict(x, batch_size=2); layer.states[0] = K.variable(h0); model.predict(x, batch_size=2)",
        on_keras3="runs: the new variable is ignored, as in Keras 2; JAX: ignored too; torch: the new variable is used",
        replacement="layer.states[0].assign(h0)",
        kind="silent",
        detectable=True,
        fixable=False,
        chapter=6,
    ),
    Idiom(
        name="cell_get_initial_state_inputs",
        title="cell.get_initial_state(inputs=x)",
        keras2="h0, c0 = cell.get_initial_state(inputs=x)",
        on_keras3="TypeError: LSTMCell.get_initial_state() got an unexpected keyword argument 'inputs'",
        replacement="h0, c0 = cell.get_initial_state(batch_size=keras.ops.shape(x)[0])",
        kind="error",
        detectable=True,
        fixable=True,
        chapter=2,
    ),
    Idiom(
        name="get_initial_state_dtype",
        title="cell.get_initial_state(batch_size=B, dtype=...)",
        keras2="h0, c0 = cell.get_initial_state(batch_size=2, dtype='float32')",
        on_keras3="TypeError: LSTMCell.get_initial_state() got an unexpected keyword argument 'dtype'",
        replacement="h0, c0 = cell.get_initial_state(batch_size=2)",
        kind="error",
        detectable=True,
        fixable=True,
        chapter=2,
    ),
    Idiom(
        name="layer_get_initial_state_tensor",
        title="layer.get_initial_state(x)",
        keras2="h0, c0 = lstm.get_initial_state(x)",
        on_keras3="InvalidArgumentError: Shapes of all inputs must match: values[0].shape = [2,5,3] != "
        "values[1].shape = []",
        replacement="h0, c0 = lstm.get_initial_state(batch_size=keras.ops.shape(x)[0])",
        kind="error",
        detectable=True,
        fixable=True,
        chapter=2,
    ),
    Idiom(
        name="predict_default_batch_size",
        title="model.predict(x) on a stateful model",
        keras2="model.predict(x)  # stateful model of batch 2, 4 rows, no batch_size=",
        on_keras3="ValueError: If an RNN is stateful, the batch size of the input sequences must be the same as "
        "the batch size of the initial state. (Keras 2: InvalidArgumentError: Incompatible shapes)",
        replacement="model.predict(x, batch_size=2)",
        kind="error",
        detectable=True,
        fixable=False,
        chapter=4,
        keras2_works=False,
    ),
    Idiom(
        name="partial_last_batch",
        title="predict(3 rows, batch_size=2) on a stateful model",
        keras2="model.predict(x[:3], batch_size=2)",
        on_keras3="runs: 4 output rows for 3 input rows, as in Keras 2; JAX, torch: ValueError: If an RNN is "
        "stateful, the batch size of the input sequences must be the same as the batch size of the initial state.",
        replacement="pad or trim the rows to a multiple of the batch: model.predict(x[:2], batch_size=2)",
        kind="silent",
        detectable=False,
        fixable=False,
        chapter=5,
    ),
    Idiom(
        name="cudnn_lstm",
        title="layers.CuDNNLSTM / CuDNNGRU",
        keras2="tf.compat.v1.keras.layers.CuDNNLSTM(4)",
        on_keras3="AttributeError: module 'keras._tf_keras.keras.layers' has no attribute 'CuDNNLSTM' "
        "(Keras 2 on a CPU: NotFoundError: Could not find device for node: CudnnRNNV3)",
        replacement="keras.layers.LSTM(4)  # uses cuDNN when it can (use_cudnn='auto')",
        kind="error",
        detectable=True,
        fixable=True,
        keras2_works=None,
    ),
    Idiom(
        name="lstm_implementation",
        title="LSTM(implementation=1|2)",
        keras2="LSTM(4, implementation=1)",
        on_keras3="works: matches the reference (implementation 1 and 2)",
        replacement="LSTM(4, implementation=1)  # no change",
        kind="unchanged",
        detectable=False,
        fixable=False,
    ),
    Idiom(
        name="time_major",
        title="LSTM(time_major=True)",
        keras2="LSTM(4, time_major=True)(x_time_major)",
        on_keras3="ValueError: Unrecognized keyword arguments passed to LSTM: {'time_major': True}",
        replacement="LSTM(4)(keras.ops.transpose(x_time_major, (1, 0, 2)))",
        kind="error",
        detectable=True,
        fixable=False,
    ),
    Idiom(
        name="unroll_free_time_axis",
        title="LSTM(unroll=True) with Input((None, F))",
        keras2="Model(inp := Input((None, 3)), LSTM(4, unroll=True)(inp))",
        on_keras3="ValueError: Cannot unroll a RNN if the time dimension is undefined. (TensorFlow: at the first "
        "predict with another number of steps; Keras 2: ValueError when the model is built); JAX, torch: works, "
        "at 5 and 7 steps",
        replacement="Model(inp := Input((5, 3)), LSTM(4, unroll=True)(inp))  # a fixed number of steps",
        kind="error",
        detectable=True,
        fixable=False,
        keras2_works=False,
    ),
    Idiom(
        name="return_state_tuple",
        title="return_state result used as a list",
        keras2="outputs = LSTM(4, return_state=True)(x); states = outputs[1:] + [extra]",
        on_keras3='TypeError: can only concatenate tuple (not "list") to tuple',
        replacement="outputs = list(LSTM(4, return_state=True)(x)); states = outputs[1:] + [extra]",
        kind="error",
        detectable=True,
        fixable=False,
        chapter=7,
    ),
    Idiom(
        name="bidirectional_merge_none",
        title="Bidirectional(LSTM(return_state=True), merge_mode=None)",
        keras2="fwd, bwd, fh, fc, bh, bc = Bidirectional(LSTM(4, return_state=True), merge_mode=None)(x)",
        on_keras3="works: a tuple of 6 [(2, 4)], fwd output matches the reference (Keras 2: a list of 6)",
        replacement="the same code; list(...) where a list is needed",
        kind="unchanged",
        detectable=False,
        fixable=False,
        chapter=2,
    ),
    Idiom(
        name="input_batch_shape",
        title="Input(batch_shape=...) + stateful LSTM",
        keras2="Model(inp := Input(batch_shape=(2, 5, 3)), LSTM(4, stateful=True)(inp))",
        on_keras3="works: the 2nd predict continues; torch: continues; JAX: the 2nd predict starts from zeros",
        replacement="the same code (on JAX, pass the state explicitly)",
        kind="unchanged",
        detectable=False,
        fixable=False,
        chapter=3,
    ),
    Idiom(
        name="save_h5_state",
        title="model.save('x.h5') of a stateful model",
        keras2="model.save('m.h5'); model = load_model('m.h5')",
        on_keras3="runs: the state is not saved (with the legacy-HDF5 warning), as in Keras 2",
        replacement="model.save('m.keras') and lstm_utils.save_states / load_states for the state",
        kind="silent",
        detectable=True,
        fixable=False,
        chapter=9,
    ),
    Idiom(
        name="save_savedmodel_dir",
        title="model.save('dir') (SavedModel directory)",
        keras2="model.save('saved_model_dir'); model = load_model('saved_model_dir')",
        on_keras3="ValueError: Invalid filepath extension for saving. (Keras 2 writes a SavedModel, state included)",
        replacement="model.save('m.keras') (plus lstm_utils.save_states for the state), or model.export('dir')",
        kind="error",
        detectable=True,
        fixable=False,
        chapter=9,
    ),
    Idiom(
        name="load_keras2_h5",
        title="load_model('old.h5') of a Keras 2 LSTM model",
        keras2="model = load_model('keras2_model.h5')  # saved by Keras 2",
        on_keras3="ValueError: Unrecognized keyword arguments passed to LSTM: {'time_major': False}",
        replacement="model = lstm_utils.load_keras2_h5('keras2_model.h5')",
        kind="error",
        detectable=True,
        fixable=False,
        chapter=9,
    ),
    # Idioms the chapters show beyond FACTS B8.
    Idiom(
        name="stateful_initial_state",
        title="stateful layer given initial_state on every call",
        keras2="layer(x1, initial_state=[h0, c0]); layer(x2, initial_state=[h0, c0])  # stateful layer",
        on_keras3="runs: the 2nd call starts from initial_state (Keras 2: the 2nd call continues)",
        replacement="pass initial_state only on the call that starts a sequence, or assign the states",
        kind="silent",
        detectable=False,
        fixable=False,
        chapter=3,
    ),
    Idiom(
        name="masking_initial_state",
        title="Masking -> LSTM(initial_state=...) in a functional model",
        keras2="LSTM(4)(Masking()(inp), initial_state=[h_in, c_in])",
        on_keras3="runs: the mask is dropped, padding read as data (Keras 2: the padded steps are skipped)",
        replacement="LSTM(4)(Masking()(inp), initial_state=[h_in, c_in], mask=lstm_utils.padding_mask(inp))",
        kind="silent",
        detectable=False,
        fixable=False,
        chapter=10,
    ),
    Idiom(
        name="bidirectional_state_order",
        title="Bidirectional(LSTM) initial_state order",
        keras2="Bidirectional(LSTM(4))(x, initial_state=[fwd_h, fwd_c, bwd_h, bwd_c])",
        on_keras3="works: [fwd_h, fwd_c, bwd_h, bwd_c]",
        replacement="the same code",
        kind="unchanged",
        detectable=False,
        fixable=False,
        chapter=2,
    ),
    Idiom(
        name="save_weights_h5",
        title="model.save_weights('m.h5')",
        keras2="model.save_weights('m.h5'); model.load_weights('m.h5')",
        on_keras3="ValueError: The filename must end in `.weights.h5`.",
        replacement="model.save_weights('m.weights.h5'); model.load_weights('m.weights.h5')",
        kind="error",
        detectable=True,
        fixable=True,
        chapter=9,
    ),
)
"""Every idiom, in the order chapter 12 shows them."""


def idiom_names() -> tuple[str, ...]:
    """The names of the idioms in :data:`IDIOMS`, in order.

    Examples
    --------
    >>> idiom_names()[:2]
    ('batch_input_shape', 'layer_batch_size')
    """
    return tuple(entry.name for entry in IDIOMS)


def idiom(name: str) -> Idiom:
    """The idiom called ``name``.

    See chapter 12.

    Parameters
    ----------
    name : str
        One of :func:`idiom_names`.

    Returns
    -------
    Idiom

    Raises
    ------
    TypeError
        If ``name`` is not a str.
    ValueError
        If no idiom has that name (the message lists the names).

    Examples
    --------
    >>> idiom("time_major").title
    'LSTM(time_major=True)'
    >>> idiom("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: no idiom named 'nope'; expected one of: batch_input_shape, layer_batch_size, ...
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (an idiom's name), got {type(name).__name__}: {name!r}")
    for entry in IDIOMS:
        if entry.name == name:
            return entry
    raise ValueError(f"no idiom named {name!r}; expected one of: {', '.join(idiom_names())}")


# --------------------------------------------------------------------------------------------
# Running the idioms
# --------------------------------------------------------------------------------------------

BATCH, STEPS, FEATURES, UNITS = 2, 5, 3, 4
"""The tiny model every check runs: batch 2, 5 time steps, 3 features, 4 units."""
SEED = 0
"""The seed of the weights and inputs every check uses."""


@dataclass(frozen=True)
class IdiomResult:
    """What :func:`run_idiom` measured for one idiom, on the TensorFlow backend.

    See chapter 12.

    Attributes
    ----------
    name : str
        The idiom's name.
    keras2 : str
        What the Keras 2 code did on Keras 2 (``tf_keras``): ``"works: ..."``, ``"runs: ..."``
        (runs, but does not do what the code says) or the error, ``"Type: first line"``.
    keras3 : str
        What the same code did on Keras 3 (``keras``), in the same form.
    replacement : str
        What the replacement did on Keras 3.
    as_documented : bool
        Whether what ran agrees with the entry: the Keras 2 code ran on Keras 2 (where the
        entry says it does), the Keras 3 outcome is what ``on_keras3`` says and fits the
        entry's kind on TensorFlow, and the replacement works.
    """

    name: str
    keras2: str
    keras3: str
    replacement: str
    as_documented: bool


def _outcome_class(text: str) -> str:
    """``"works"``, ``"runs"`` or ``"error"``: how an outcome string starts (or ``"unmatched"``).

    A result that matched none of its references, or several, is ``"unmatched"``: it agrees with no entry.
    """
    if "matches none of" in text or "ambiguous:" in text:
        return "unmatched"
    if text.startswith("works"):
        return "works"
    if text.startswith("runs"):
        return "runs"
    return "error"


_EXPECTED_CLASS = {"error": "error", "silent": "runs", "unchanged": "works"}


def _agrees(entry: Idiom, keras2: str, keras3: str, replacement: str) -> bool:
    keras2_class = _outcome_class(keras2)
    keras2_ran = keras2_class in ("works", "runs")
    return (
        keras2_class != "unmatched"
        and (entry.keras2_works is None or keras2_ran == entry.keras2_works)
        and _outcome_class(keras3) == _EXPECTED_CLASS[entry.tf_kind]
        and keras3 in entry.on_keras3
        and _outcome_class(replacement) == "works"
    )


def _clean(text: str) -> str:
    """The first sentence of a message's first informative line, without what changes from run to run."""
    import re
    import tempfile

    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # terminal colours
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("Graph execution error"):
        # TensorFlow's graph errors: the traceback of the op, then the message, then node names.
        lines = [line for line in lines[1:] if not line.startswith(("Detected at node", "File ", "[["))] or lines
    lines = [line for line in lines if not line.startswith("Exception encountered when calling")] or lines
    first = lines[0] if lines else ""
    first = re.sub(r"(\w)\[[A-Za-z_]+=[^\]]*\]", r"\1", first)  # an op's attribute list: CudnnRNNV3[T=...]
    first = re.sub(r"\{\{node (\S+?)\}\} = \1\b", r"\1", first)  # {{node X}} = X: the node's name
    first = re.sub(r"\{\{.*?\}\}\s*", "", first)
    first = re.sub(r"\s*\[Op:\w+\](?: name:.*)?$", "", first)  # the eager op's name
    # The first sentence: what follows (advice, "Received: filepath=...") is in the full message.
    end = re.search(r"[.!?] (?=[A-Z`])", first)
    first = first[: end.start() + 1] if end else first
    first = re.sub(r"0x[0-9a-fA-F]+", "0x...", first)
    first = re.sub(re.escape(tempfile.gettempdir()) + r"/[^\s'\"]+", "<temporary path>", first)
    # Automatic layer and op names (lstm_3, sequential_12, while/lstm_cell_4) carry a counter.
    first = re.sub(r"\b([A-Za-z]+(?:_[A-Za-z]+)*)_\d+\b", r"\1", first)
    return first.strip()


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {_clean(str(error))}"


class _Kit:
    """The modules, weights, inputs and NumPy references that every check shares."""

    def __init__(self) -> None:
        from lstm_utils.repro import quiet_tensorflow

        quiet_tensorflow()
        import keras
        import tensorflow as tf
        import tf_keras

        self.tf: Any = tf
        self.keras: Any = keras  # Keras 3
        self.tf_keras: Any = tf_keras  # Keras 2
        rng = np.random.RandomState(SEED)
        self.weights = [
            (rng.randn(FEATURES, 4 * UNITS) * 0.5).astype("float32"),
            (rng.randn(UNITS, 4 * UNITS) * 0.5).astype("float32"),
            (rng.randn(4 * UNITS) * 0.1).astype("float32"),
        ]
        self.x = rng.randn(2 * BATCH, STEPS, FEATURES).astype("float32")  # two batches, in stateful order
        self.first, self.second = self.x[:BATCH], self.x[BATCH:]
        self.h0 = np.full((BATCH, UNITS), 0.3, "float32")
        self.c0 = np.full((BATCH, UNITS), -0.2, "float32")
        self.zeros = np.zeros((BATCH, UNITS), "float32")
        self.after_first = self.lstm(self.first, self.zeros, self.zeros)
        self.continued = self.lstm(self.second, *self.after_first)[0]
        self.second_from_zeros = self.lstm(self.second, self.zeros, self.zeros)[0]
        self.first_from_h0 = self.lstm(self.first, self.h0, self.c0)[0]
        self.second_from_h0 = self.lstm(self.second, self.h0, self.c0)[0]

    def lstm(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The final h and c of an LSTM with the shared weights, in NumPy (float64)."""
        from lstm_utils.reference import lstm_step

        for t in range(x.shape[1]):
            h, c = lstm_step(x[:, t], h, c, *self.weights)
        return h, c

    def api(self, version: str) -> tuple[Any, Any]:
        """The Keras module and backend module that Keras 2 code gets in ``version``.

        Keras 2 code imports ``tf.keras`` (and ``tf.keras.backend as K``): that is Keras 2 in
        ``tf_keras`` and Keras 3 (with its compatibility ``backend`` module) in TensorFlow 2.16+.
        """
        if version == "Keras 2":
            return self.tf_keras, self.tf_keras.backend
        return self.keras, self.tf.keras.backend

    def stateful(self, K: Any, *, functional: bool = False) -> tuple[Any, Any]:
        """A stateful ``LSTM(4)`` on ``Input(batch_shape=(2, 5, 3))`` with the shared weights."""
        inputs = K.Input(batch_shape=(BATCH, STEPS, FEATURES))
        layer = K.layers.LSTM(UNITS, stateful=True)
        model = K.Model(inputs, layer(inputs)) if functional else K.Sequential([inputs, layer])
        layer.set_weights(self.weights)
        return model, layer


_KIT: list[_Kit] = []


def _kit() -> _Kit:
    if not _KIT:
        _KIT.append(_Kit())
    return _KIT[0]


def _np(value: Any) -> np.ndarray:
    from lstm_utils._flavour import to_numpy

    return to_numpy(value)


def _which(value: Any, candidates: dict[str, Any]) -> str:
    from lstm_utils.compare import which_matches

    found = which_matches(value, candidates)
    return found if found != "none" else "matches none of: " + ", ".join(candidates)


def _attempt(code: Any, *args: Any) -> tuple[str, Any]:
    """Run ``code(*args)``, which returns ``(outcome, value)``; an exception becomes its text."""
    try:
        outcome, value = code(*args)
    except Exception as error:  # what Keras raises is the measurement
        return _error_text(error), None
    return str(outcome), value


def _versus_keras2(value: Any, keras2_value: Any, what: str = "matches Keras 2") -> str:
    from lstm_utils.compare import all_close

    if keras2_value is None:
        return "works: (Keras 2 gave nothing to compare with)"
    if isinstance(keras2_value, (list, tuple)):
        same = len(value) == len(keras2_value) and all(
            all_close(a, b) for a, b in zip(value, keras2_value, strict=True)
        )
    else:
        same = all_close(value, keras2_value)
    return f"works: {what}" if same else "runs: differs from Keras 2"


def _three(kit: _Kit, code: Any, replacement: Any, versus_keras2: bool = True) -> tuple[str, str, str]:
    """Keras 2 code on both versions, then the replacement on Keras 3, compared with Keras 2's value.

    ``replacement=None``: the same code is the replacement (its Keras 3 run). ``versus_keras2=False``:
    the replacement's own finding is kept (Keras 2's value is no model to follow).
    """
    keras2, value2 = _attempt(code, *kit.api("Keras 2"))
    keras3, value3 = _attempt(code, *kit.api("Keras 3"))
    if replacement is None:  # the same code is the replacement: its Keras 3 run above
        replaced = keras3
    else:
        replaced, value3 = _attempt(replacement, kit.keras)
    # Keras 2's result is the model to follow only where Keras 2 did what the code says.
    comparable = _outcome_class(keras2) == "works" and value2 is not None and value3 is not None
    if versus_keras2 and comparable and _outcome_class(replaced) != "error":
        replaced = _versus_keras2(value3, value2)
    return keras2, keras3, replaced


# Each check runs one idiom and returns (keras2, keras3, replacement) outcomes. The Keras 2
# code is written once, as a function of the Keras module and its backend module (K).

_Outcome = tuple[str, Any]


def _two_calls(kit: _Kit, model: Any) -> _Outcome:
    """Call a stateful model on two batches in a row: does the 2nd call continue the 1st?"""
    model(kit.first)
    second = model(kit.second)
    found = _which(second, {"continues": kit.continued, "starts from zeros": kit.second_from_zeros})
    return f"works: the 2nd call {found}", _np(second)


def _check_batch_input_shape(kit: _Kit) -> tuple[str, str, str]:
    def code(K: Any, _: Any) -> _Outcome:
        layer = K.layers.LSTM(UNITS, stateful=True, batch_input_shape=(BATCH, STEPS, FEATURES))
        model = K.Sequential([layer])
        layer.set_weights(kit.weights)
        return _two_calls(kit, model)

    def replacement(keras: Any) -> _Outcome:
        layer = keras.layers.LSTM(UNITS, stateful=True)
        model = keras.Sequential([keras.Input(batch_shape=(BATCH, STEPS, FEATURES)), layer])
        layer.set_weights(kit.weights)
        return _two_calls(kit, model)

    return _three(kit, code, replacement)


def _check_layer_batch_size(kit: _Kit) -> tuple[str, str, str]:
    def code(K: Any, _: Any) -> _Outcome:
        layer = K.layers.LSTM(UNITS, stateful=True, input_shape=(STEPS, FEATURES), batch_size=BATCH)
        model = K.Sequential([layer])
        layer.set_weights(kit.weights)
        return _two_calls(kit, model)

    def replacement(keras: Any) -> _Outcome:
        layer = keras.layers.LSTM(UNITS, stateful=True)
        model = keras.Sequential([keras.Input(shape=(STEPS, FEATURES), batch_size=BATCH), layer])
        layer.set_weights(kit.weights)
        return _two_calls(kit, model)

    return _three(kit, code, replacement)


def _zeroed(kit: _Kit, layer: Any) -> _Outcome:
    from lstm_utils.compare import all_close

    states = [_np(s) for s in layer.states]
    zero = all(all_close(s, kit.zeros) for s in states)
    return ("works: the states are zero" if zero else "runs: the states are not zero"), states


def _check_model_reset_states(kit: _Kit) -> tuple[str, str, str]:
    def code(K: Any, _: Any) -> _Outcome:
        model, layer = kit.stateful(K)
        model(kit.first)
        model.reset_states()
        return _zeroed(kit, layer)

    def replacement(keras: Any) -> _Outcome:
        from lstm_utils.states import reset_states

        model, layer = kit.stateful(keras)
        model(kit.first)
        reset_states(model)
        return _zeroed(kit, layer)

    return _three(kit, code, replacement)


def _from_h0(kit: _Kit, model: Any) -> _Outcome:
    out = model(kit.first)
    found = _which(out, {"starts from [h0, c0]": kit.first_from_h0, "starts from zeros": kit.after_first[0]})
    return f"works: the next call {found}", _np(out)


def _check_reset_states_with_states(kit: _Kit) -> tuple[str, str, str]:
    def code(K: Any, _: Any) -> _Outcome:
        model, layer = kit.stateful(K)
        layer.reset_states(states=[kit.h0, kit.c0])
        return _from_h0(kit, model)

    def replacement(keras: Any) -> _Outcome:
        model, layer = kit.stateful(keras)
        layer.states[0].assign(kit.h0)
        layer.states[1].assign(kit.c0)
        return _from_h0(kit, model)

    return _three(kit, code, replacement)


def _also_keras_backend(kit: _Kit, outcomes: tuple[str, str, str], function: str) -> tuple[str, str, str]:
    """Add to the Keras 3 outcome (through ``tf.keras.backend``) what ``keras.backend`` has."""

    def lookup() -> _Outcome:
        getattr(kit.keras.backend, function)
        return f"works: keras.backend.{function} exists", None

    found, _ = _attempt(lookup)
    keras2, keras3, replaced = outcomes
    return keras2, f"{keras3} (tf.keras.backend); keras.backend: {found}", replaced


def _check_backend_variable(kit: _Kit) -> tuple[str, str, str]:
    from lstm_utils.compare import all_close

    def holds(variable: Any) -> _Outcome:
        kind = "a variable" if hasattr(variable, "assign") else f"a {type(variable).__name__}, not a variable"
        values = "holding the values" if all_close(variable, kit.h0) else "holding other values"
        return f"works: {kind} {values}", _np(variable)

    def code(_: Any, K: Any) -> _Outcome:
        return holds(K.variable(kit.h0))

    def replacement(keras: Any) -> _Outcome:
        return holds(keras.Variable(kit.h0))

    return _also_keras_backend(kit, _three(kit, code, replacement), "variable")


def _check_backend_set_value(kit: _Kit) -> tuple[str, str, str]:
    def code(keras: Any, K: Any) -> _Outcome:
        model, layer = kit.stateful(keras)
        K.set_value(layer.states[0], kit.h0)
        K.set_value(layer.states[1], kit.c0)
        return _from_h0(kit, model)

    def replacement(keras: Any) -> _Outcome:
        model, layer = kit.stateful(keras)
        layer.states[0].assign(kit.h0)
        layer.states[1].assign(kit.c0)
        return _from_h0(kit, model)

    return _also_keras_backend(kit, _three(kit, code, replacement), "set_value")


def _check_backend_get_value(kit: _Kit) -> tuple[str, str, str]:
    def read(value: Any) -> _Outcome:
        found = _which(value, {"returns the state": kit.after_first[0], "returns zeros": kit.zeros})
        return f"works: {found}", _np(value)

    def code(keras: Any, K: Any) -> _Outcome:
        model, layer = kit.stateful(keras)
        model(kit.first)
        return read(K.get_value(layer.states[0]))

    def replacement(keras: Any) -> _Outcome:
        model, layer = kit.stateful(keras)
        model(kit.first)
        return read(keras.ops.convert_to_numpy(layer.states[0]))

    return _also_keras_backend(kit, _three(kit, code, replacement), "get_value")


def _check_state_list_replacement(kit: _Kit) -> tuple[str, str, str]:
    def replaced(model: Any) -> _Outcome:
        out = model.predict(kit.first, batch_size=BATCH, verbose=0)
        found = _which(
            out,
            {
                "works: the new values are used": kit.first_from_h0,
                "runs: the new variable is ignored": kit.after_first[0],
            },
        )
        return found, out

    def code(keras: Any, K: Any) -> _Outcome:
        model, layer = kit.stateful(keras)
        model.predict(kit.first, batch_size=BATCH, verbose=0)
        layer.reset_states()
        layer.states[0] = K.variable(kit.h0)
        layer.states[1] = K.variable(kit.c0)
        return replaced(model)

    def replacement(keras: Any) -> _Outcome:
        model, layer = kit.stateful(keras)
        model.predict(kit.first, batch_size=BATCH, verbose=0)
        layer.states[0].assign(kit.h0)
        layer.states[1].assign(kit.c0)
        return replaced(model)

    return _three(kit, code, replacement, versus_keras2=False)


def _initial_states(kit: _Kit, states: Any) -> _Outcome:
    from lstm_utils.compare import all_close

    arrays = [_np(s) for s in states]
    shapes = ", ".join(str(a.shape) for a in arrays)
    zero = all(all_close(a, kit.zeros) for a in arrays)
    return f"works: {len(arrays)} states, {shapes}, {'zeros' if zero else 'not zeros'}", arrays


def _cell(K: Any) -> Any:
    cell = K.layers.LSTMCell(UNITS)
    cell.build((BATCH, FEATURES))
    return cell


def _check_cell_get_initial_state_inputs(kit: _Kit) -> tuple[str, str, str]:
    def code(K: Any, _: Any) -> _Outcome:
        return _initial_states(kit, _cell(K).get_initial_state(inputs=kit.first[:, 0]))

    def replacement(keras: Any) -> _Outcome:
        x = kit.first[:, 0]
        return _initial_states(kit, _cell(keras).get_initial_state(batch_size=keras.ops.shape(x)[0]))

    return _three(kit, code, replacement)


def _check_get_initial_state_dtype(kit: _Kit) -> tuple[str, str, str]:
    def code(K: Any, _: Any) -> _Outcome:
        return _initial_states(kit, _cell(K).get_initial_state(batch_size=BATCH, dtype="float32"))

    def replacement(keras: Any) -> _Outcome:
        return _initial_states(kit, _cell(keras).get_initial_state(batch_size=BATCH))

    return _three(kit, code, replacement)


def _check_layer_get_initial_state_tensor(kit: _Kit) -> tuple[str, str, str]:
    def built(K: Any) -> Any:
        layer = K.layers.LSTM(UNITS)
        layer.build((BATCH, STEPS, FEATURES))
        return layer

    def code(K: Any, _: Any) -> _Outcome:
        return _initial_states(kit, built(K).get_initial_state(kit.tf.constant(kit.first)))

    def replacement(keras: Any) -> _Outcome:
        x = kit.tf.constant(kit.first)
        return _initial_states(kit, built(keras).get_initial_state(batch_size=keras.ops.shape(x)[0]))

    return _three(kit, code, replacement)


def _check_predict_default_batch_size(kit: _Kit) -> tuple[str, str, str]:
    def predicted(out: Any) -> _Outcome:
        rows = _which(out[BATCH:], {"the 2nd batch continues": kit.continued})
        return f"works: {out.shape[0]} rows, {rows}", out

    def code(K: Any, _: Any) -> _Outcome:
        model, _layer = kit.stateful(K)
        return predicted(model.predict(kit.x, verbose=0))

    def replacement(keras: Any) -> _Outcome:
        model, _layer = kit.stateful(keras)
        return predicted(model.predict(kit.x, batch_size=BATCH, verbose=0))

    return _three(kit, code, replacement)


def _check_partial_last_batch(kit: _Kit) -> tuple[str, str, str]:
    def code(K: Any, _: Any) -> _Outcome:
        model, _layer = kit.stateful(K)
        out = model.predict(kit.x[:3], batch_size=BATCH, verbose=0)
        if out.shape[0] != 3:
            return f"runs: {out.shape[0]} output rows for 3 input rows", out
        return "works: 3 output rows for 3 input rows", out

    def replacement(keras: Any) -> _Outcome:
        model, _layer = kit.stateful(keras)
        out = model.predict(kit.x[:BATCH], batch_size=BATCH, verbose=0)
        return f"works: {out.shape[0]} output rows for {BATCH} input rows", None

    return _three(kit, code, replacement)


def _check_cudnn_lstm(kit: _Kit) -> tuple[str, str, str]:
    # Keras 2 code reaches CuDNNLSTM as tf.compat.v1.keras.layers.CuDNNLSTM: Keras 2's v1 API
    # (what TF_USE_LEGACY_KERAS=1 maps it to), and Keras 3's compatibility module otherwise.
    def code(v1_keras: Any) -> _Outcome:
        layer = v1_keras.layers.CuDNNLSTM(UNITS)
        layer.build((BATCH, STEPS, FEATURES))
        kernel, recurrent_kernel, bias = kit.weights  # cuDNN keeps an input and a recurrent bias
        layer.set_weights([kernel, recurrent_kernel, np.concatenate([bias, np.zeros_like(bias)])])
        out = layer(kit.tf.constant(kit.first))
        return "works: " + _which(out, {"matches the reference": kit.after_first[0]}) + " (on a GPU)", _np(out)

    def replacement(keras: Any) -> _Outcome:
        layer = keras.layers.LSTM(UNITS)
        layer.build((BATCH, STEPS, FEATURES))
        layer.set_weights(kit.weights)
        found = _which(layer(kit.first), {"matches the reference": kit.after_first[0]})
        return f"works: {found} (use_cudnn={layer.use_cudnn!r})", None

    from tf_keras.api._v1 import keras as keras2_v1

    keras2, _ = _attempt(code, keras2_v1)
    keras3, _ = _attempt(code, kit.tf.compat.v1.keras)
    replaced, _ = _attempt(replacement, kit.keras)
    return keras2, keras3, replaced


def _check_lstm_implementation(kit: _Kit) -> tuple[str, str, str]:
    def code(K: Any, _: Any) -> _Outcome:
        outs = []
        for implementation in (1, 2):
            layer = K.layers.LSTM(UNITS, implementation=implementation)
            layer.build((BATCH, STEPS, FEATURES))
            layer.set_weights(kit.weights)
            outs.append(_np(layer(kit.first)))
        found = [_which(out, {"matches the reference": kit.after_first[0]}) for out in outs]
        return ("works: " + found[0]) if found[0] == found[1] else f"runs: 1 {found[0]}, 2 {found[1]}", outs

    return _three(kit, code, None)


def _check_time_major(kit: _Kit) -> tuple[str, str, str]:
    x_time_major = np.transpose(kit.first, (1, 0, 2))

    def code(K: Any, _: Any) -> _Outcome:
        layer = K.layers.LSTM(UNITS, time_major=True)
        layer.build((STEPS, BATCH, FEATURES))
        layer.set_weights(kit.weights)
        out = layer(x_time_major)
        return "works: " + _which(out, {"matches the reference": kit.after_first[0]}), _np(out)

    def replacement(keras: Any) -> _Outcome:
        layer = keras.layers.LSTM(UNITS)
        out = layer(keras.ops.transpose(x_time_major, (1, 0, 2)))
        layer.set_weights(kit.weights)
        out = layer(keras.ops.transpose(x_time_major, (1, 0, 2)))
        return "works: " + _which(out, {"matches the reference": kit.after_first[0]}), _np(out)

    return _three(kit, code, replacement)


def _check_unroll_free_time_axis(kit: _Kit) -> tuple[str, str, str]:
    def run(K: Any, steps: int | None) -> _Outcome:
        inputs = K.Input((steps, FEATURES))
        layer = K.layers.LSTM(UNITS, unroll=True)
        model = K.Model(inputs, layer(inputs))
        layer.set_weights(kit.weights)
        out = model.predict(kit.first, batch_size=BATCH, verbose=0)
        found = _which(out, {"matches the reference": kit.after_first[0]})
        if steps is not None:
            return f"works: predict {found}", out
        longer = np.concatenate([kit.first, kit.second[:, :2]], axis=1)  # 7 steps: a free time axis is for this
        rows = model.predict(longer, batch_size=BATCH, verbose=0).shape[0]
        return f"works: predict {found} at {STEPS} steps, {rows} rows at {longer.shape[1]} steps", out

    def code(K: Any, _: Any) -> _Outcome:
        return run(K, None)

    def replacement(keras: Any) -> _Outcome:
        return run(keras, STEPS)

    return _three(kit, code, replacement)


def _check_return_state_tuple(kit: _Kit) -> tuple[str, str, str]:
    def run(K: Any, as_list: bool) -> _Outcome:
        layer = K.layers.LSTM(UNITS, return_state=True)
        layer.build((BATCH, STEPS, FEATURES))
        layer.set_weights(kit.weights)
        outputs = layer(kit.first)
        if as_list:
            outputs = list(outputs)
        states = outputs[1:] + [kit.zeros]  # noqa: RUF005 -- the idiom: tuple + list raises on Keras 3
        arrays = [_np(s) for s in states]
        found = _which(arrays[1], {"c matches the reference": kit.after_first[1]})
        return f"works: a {type(states).__name__} of {len(states)}, {found}", arrays

    def code(K: Any, _: Any) -> _Outcome:
        return run(K, False)

    def replacement(keras: Any) -> _Outcome:
        return run(keras, True)

    return _three(kit, code, replacement)


def _bidirectional(kit: _Kit, K: Any, **kwargs: Any) -> Any:
    layer = K.layers.Bidirectional(K.layers.LSTM(UNITS, **kwargs.pop("lstm", {})), **kwargs)
    layer.build((BATCH, STEPS, FEATURES))
    backward = [w[..., ::-1].copy() if w.ndim == 1 else w[::-1].copy() for w in kit.weights]  # another set
    layer.set_weights(kit.weights + backward)
    return layer, backward


def _check_bidirectional_merge_none(kit: _Kit) -> tuple[str, str, str]:
    def code(K: Any, _: Any) -> _Outcome:
        layer, _ = _bidirectional(kit, K, lstm={"return_state": True}, merge_mode=None)
        result = layer(kit.first)
        arrays = [_np(r) for r in result]
        shapes = sorted({a.shape for a in arrays})
        found = _which(arrays[0], {"fwd output matches the reference": kit.after_first[0]})
        return f"works: a {type(result).__name__} of {len(arrays)} {shapes}, {found}", arrays

    keras2, keras3, replaced = _three(kit, code, None)
    return keras2, keras3, replaced


def _check_bidirectional_state_order(kit: _Kit) -> tuple[str, str, str]:
    def code(K: Any, _: Any) -> _Outcome:
        from lstm_utils.reference import lstm_step

        layer, backward = _bidirectional(kit, K, merge_mode="concat")
        h1, c1 = kit.h0 * -1.0, kit.c0 * 2.0
        states = [kit.tf.constant(s) for s in (kit.h0, kit.c0, h1, c1)]
        out = _np(layer(kit.tf.constant(kit.first), initial_state=states))
        fwd = kit.lstm(kit.first, kit.h0, kit.c0)[0]
        h, c = h1, c1
        for t in reversed(range(STEPS)):
            h, c = lstm_step(kit.first[:, t], h, c, *backward)
        swapped = kit.lstm(kit.first, kit.h0, h1)[0]
        found = _which(
            out[:, :UNITS],
            {"[fwd_h, fwd_c, bwd_h, bwd_c]": fwd, "[fwd_h, bwd_h, fwd_c, bwd_c]": swapped},
        )
        if found.startswith("[") and _which(out[:, UNITS:], {"bwd": h}) != "bwd":
            found += " (backward half matches nothing)"
        return f"works: {found}", out

    return _three(kit, code, None)


def _check_input_batch_shape(kit: _Kit) -> tuple[str, str, str]:
    def code(K: Any, _: Any) -> _Outcome:
        model, _layer = kit.stateful(K, functional=True)
        model.predict(kit.first, batch_size=BATCH, verbose=0)
        second = model.predict(kit.second, batch_size=BATCH, verbose=0)
        found = _which(second, {"continues": kit.continued, "starts from zeros": kit.second_from_zeros})
        return f"works: the 2nd predict {found}", second

    return _three(kit, code, None)


def _relative(keras2: tuple[str, Any], keras3: tuple[str, Any]) -> tuple[str, str]:
    """Prefix two bare findings: Keras 2's is what the code meant (``works``); Keras 3's ``runs`` if it differs."""
    (text2, _), (text3, _) = keras2, keras3
    if text2.startswith(("works", "runs")) or ":" in text2.split(" ")[0]:
        return text2, text3  # an error, or already classified
    outcome2 = f"works: {text2}"
    if ":" in text3.split(" ")[0]:  # an error on Keras 3
        return outcome2, text3
    return outcome2, (f"works: {text3}" if text3 == text2 else f"runs: {text3} (Keras 2: {text2})")


def _replaced(text: str, value: Any, keras2_value: Any) -> str:
    """The replacement's outcome from its bare finding: compared with Keras 2's value where there is one."""
    if value is None:  # it raised: ``text`` is the error
        return text
    return _versus_keras2(value, keras2_value) if keras2_value is not None else f"works: {text}"


def _check_stateful_initial_state(kit: _Kit) -> tuple[str, str, str]:
    init = [kit.tf.constant(kit.h0), kit.tf.constant(kit.c0)]
    continued_from_h0 = kit.lstm(kit.second, *kit.lstm(kit.first, kit.h0, kit.c0))[0]

    def second_call(K: Any, again: bool) -> _Outcome:
        layer = K.layers.LSTM(UNITS, stateful=True)
        layer.build((BATCH, STEPS, FEATURES))
        layer.set_weights(kit.weights)
        layer(kit.tf.constant(kit.first), initial_state=init)
        out = layer(kit.tf.constant(kit.second), initial_state=init) if again else layer(kit.tf.constant(kit.second))
        found = _which(out, {"continues": continued_from_h0, "starts from initial_state": kit.second_from_h0})
        return f"the 2nd call {found}", _np(out)

    keras2 = _attempt(second_call, kit.tf_keras, True)
    keras3 = _attempt(second_call, kit.keras, True)
    outcome2, outcome3 = _relative(keras2, keras3)
    text, value = _attempt(second_call, kit.keras, False)
    replaced = _replaced(text, value, keras2[1])
    return outcome2, outcome3, replaced


def _check_masking_initial_state(kit: _Kit) -> tuple[str, str, str]:
    padded = kit.first.copy()
    padded[0, 3:] = 0.0  # row 0: 3 real steps, then padding
    real_only = np.concatenate(
        [kit.lstm(padded[:1, :3], kit.h0[:1], kit.c0[:1])[0], kit.lstm(padded[1:], kit.h0[1:], kit.c0[1:])[0]]
    )
    as_data = kit.lstm(padded, kit.h0, kit.c0)[0]

    def run(K: Any, explicit_mask: bool) -> _Outcome:
        from lstm_utils.masking import padding_mask

        x_in, h_in, c_in = K.Input((STEPS, FEATURES)), K.Input((UNITS,)), K.Input((UNITS,))
        layer = K.layers.LSTM(UNITS)
        kwargs = {"mask": padding_mask(x_in)} if explicit_mask else {}
        model = K.Model([x_in, h_in, c_in], layer(K.layers.Masking()(x_in), initial_state=[h_in, c_in], **kwargs))
        layer.set_weights(kit.weights)
        out = model([kit.tf.constant(a) for a in (padded, kit.h0, kit.c0)])  # as predict does (measured)
        found = _which(
            out, {"the padded steps are skipped": real_only, "the mask is dropped, padding read as data": as_data}
        )
        return found, out

    keras2 = _attempt(run, kit.tf_keras, False)
    keras3 = _attempt(run, kit.keras, False)
    outcome2, outcome3 = _relative(keras2, keras3)
    text, value = _attempt(run, kit.keras, True)
    replaced = _replaced(text, value, keras2[1])
    return outcome2, outcome3, replaced


class _Logs:
    """Collect what the ``absl`` and ``tensorflow`` loggers and ``warnings`` say inside a block."""

    def __enter__(self) -> _Logs:
        import logging
        import warnings

        self.messages: list[str] = []
        outer = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                outer.messages.append(record.getMessage())

        self._handler = Handler()
        self._loggers = [logging.getLogger(name) for name in ("absl", "tensorflow")]
        self._saved = [(logger.level, logger.propagate, list(logger.handlers)) for logger in self._loggers]
        for logger in self._loggers:
            for handler in list(logger.handlers):  # TensorFlow's logger prints through its own handler
                logger.removeHandler(handler)
            logger.addHandler(self._handler)
            logger.setLevel(logging.WARNING)
            logger.propagate = False
        self._warnings = warnings.catch_warnings(record=True)
        self._caught = self._warnings.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._warnings.__exit__(*exc)
        self.messages += [str(w.message) for w in self._caught]
        for logger, (level, propagate, handlers) in zip(self._loggers, self._saved, strict=True):
            logger.removeHandler(self._handler)
            for handler in handlers:
                logger.addHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate

    def mentions(self, word: str) -> bool:
        return any(word in message for message in self.messages)


def _state_after_reload(kit: _Kit, layer: Any) -> str:
    return _which(layer.states[0], {"the state is restored": kit.after_first[0], "the state is not saved": kit.zeros})


def _lstm_of(model: Any) -> Any:
    return next(layer for layer in model.layers if "LSTM" in type(layer).__name__)


def _saved_as_keras_with_states(kit: _Kit, keras: Any, folder: str) -> _Outcome:
    """The replacement for saving a stateful model: a ``.keras`` file plus ``save_states``, reloaded."""
    from lstm_utils.persistence import load_states, save_states

    model, _layer = kit.stateful(keras)
    model(kit.first)
    model.save(f"{folder}/m.keras")
    save_states(model, f"{folder}/m.states.npz")
    reloaded = keras.models.load_model(f"{folder}/m.keras", compile=False)
    load_states(reloaded, f"{folder}/m.states.npz")
    return f"works: {_state_after_reload(kit, _lstm_of(reloaded))}", None


def _check_save_h5_state(kit: _Kit) -> tuple[str, str, str]:
    import tempfile

    def code(K: Any, _: Any, folder: str) -> _Outcome:
        model, _layer = kit.stateful(K)
        model(kit.first)
        path = f"{folder}/{K.__name__}.h5"
        with _Logs() as logs:
            model.save(path)
            reloaded = K.models.load_model(path, compile=False)
        found = _state_after_reload(kit, _lstm_of(reloaded))
        warned = " (with the legacy-HDF5 warning)" if logs.mentions("legacy") else ""
        prefix = "works" if found == "the state is restored" else "runs"
        return f"{prefix}: {found}{warned}", None

    def replacement(keras: Any, folder: str) -> _Outcome:
        return _saved_as_keras_with_states(kit, keras, folder)

    with tempfile.TemporaryDirectory() as folder:
        return (
            _attempt(code, *kit.api("Keras 2"), folder)[0],
            _attempt(code, *kit.api("Keras 3"), folder)[0],
            _attempt(replacement, kit.keras, folder)[0],
        )


def _check_save_savedmodel_dir(kit: _Kit) -> tuple[str, str, str]:
    import tempfile

    def code(K: Any, _: Any, folder: str) -> _Outcome:
        model, _layer = kit.stateful(K)
        model(kit.first)
        path = f"{folder}/{K.__name__}_saved_model"
        model.save(path)
        # What load_model would restore, read from the saved variables (loading costs a second).
        reader = kit.tf.train.load_checkpoint(f"{path}/variables/variables")
        saved = [reader.get_tensor(key) for key in sorted(reader.get_variable_to_shape_map()) if "/states/0/" in key]
        found = _which(saved[0], {"the state is saved": kit.after_first[0], "the state is not saved": kit.zeros})
        return f"works: {found}", None

    def replacement(keras: Any, folder: str) -> _Outcome:
        return _saved_as_keras_with_states(kit, keras, folder)

    with tempfile.TemporaryDirectory() as folder, _Logs():
        return (
            _attempt(code, *kit.api("Keras 2"), folder)[0],
            _attempt(code, *kit.api("Keras 3"), folder)[0],
            _attempt(replacement, kit.keras, folder)[0],
        )


def _check_load_keras2_h5(kit: _Kit) -> tuple[str, str, str]:
    import importlib
    import importlib.util
    import tempfile

    def predictions(model: Any) -> np.ndarray:
        return np.concatenate([_np(model(kit.first)), _np(model(kit.second))])

    def written(folder: str) -> tuple[str, np.ndarray]:
        K = kit.tf_keras
        layer = K.layers.LSTM(UNITS, stateful=True, batch_input_shape=(BATCH, STEPS, FEATURES))
        model = K.Sequential([layer])
        layer.set_weights(kit.weights)
        path = f"{folder}/keras2_model.h5"
        with _Logs():
            model.save(path)
        return path, predictions(model)

    def loaded(load: Any, path: str, expected: np.ndarray) -> _Outcome:
        from lstm_utils.compare import all_close

        with _Logs():
            model = load(path)
        lstm = _lstm_of(model)
        same = all_close(predictions(model), expected)
        return f"works: stateful={lstm.stateful}, {'predictions match' if same else 'predictions differ'}", None

    def rebuilt(path: str) -> Any:  # used while lstm_utils.legacy is not there
        keras = kit.keras
        model = keras.Sequential(
            [keras.Input(batch_shape=(BATCH, STEPS, FEATURES)), keras.layers.LSTM(UNITS, stateful=True)]
        )
        model.load_weights(path)
        return model

    with tempfile.TemporaryDirectory() as folder:
        path, expected = written(folder)
        keras2 = _attempt(loaded, lambda p: kit.tf_keras.models.load_model(p, compile=False), path, expected)[0]
        keras3 = _attempt(loaded, lambda p: kit.keras.models.load_model(p, compile=False), path, expected)[0]
        load: Callable[[str], Any] = rebuilt
        if importlib.util.find_spec("lstm_utils.legacy") is not None:  # written for chapter 12 (helper C)
            load = importlib.import_module("lstm_utils.legacy").load_keras2_h5
        replaced = _attempt(loaded, load, path, expected)[0]
    return keras2, keras3, replaced


def _check_save_weights_h5(kit: _Kit) -> tuple[str, str, str]:
    import tempfile

    def restored(K: Any, folder: str, name: str) -> _Outcome:
        from lstm_utils.compare import all_close

        model, _layer = kit.stateful(K)
        path = f"{folder}/{K.__name__}_{name}"
        model.save_weights(path)
        other, layer = kit.stateful(K)
        layer.set_weights([w * 0 for w in kit.weights])
        other.load_weights(path)
        same = all(all_close(a, b) for a, b in zip(layer.get_weights(), kit.weights, strict=True))
        return ("works: the weights are restored" if same else "runs: the weights are not restored"), None

    with tempfile.TemporaryDirectory() as folder, _Logs():
        return (
            _attempt(restored, kit.tf_keras, folder, "m.h5")[0],
            _attempt(restored, kit.keras, folder, "m.h5")[0],
            _attempt(restored, kit.keras, folder, "m.weights.h5")[0],
        )


_CHECKS: dict[str, Callable[[_Kit], tuple[str, str, str]]] = {
    "batch_input_shape": _check_batch_input_shape,
    "layer_batch_size": _check_layer_batch_size,
    "model_reset_states": _check_model_reset_states,
    "reset_states_with_states": _check_reset_states_with_states,
    "backend_variable": _check_backend_variable,
    "backend_set_value": _check_backend_set_value,
    "backend_get_value": _check_backend_get_value,
    "state_list_replacement": _check_state_list_replacement,
    "cell_get_initial_state_inputs": _check_cell_get_initial_state_inputs,
    "get_initial_state_dtype": _check_get_initial_state_dtype,
    "layer_get_initial_state_tensor": _check_layer_get_initial_state_tensor,
    "predict_default_batch_size": _check_predict_default_batch_size,
    "partial_last_batch": _check_partial_last_batch,
    "cudnn_lstm": _check_cudnn_lstm,
    "lstm_implementation": _check_lstm_implementation,
    "time_major": _check_time_major,
    "unroll_free_time_axis": _check_unroll_free_time_axis,
    "return_state_tuple": _check_return_state_tuple,
    "bidirectional_merge_none": _check_bidirectional_merge_none,
    "input_batch_shape": _check_input_batch_shape,
    "save_h5_state": _check_save_h5_state,
    "save_savedmodel_dir": _check_save_savedmodel_dir,
    "load_keras2_h5": _check_load_keras2_h5,
    "stateful_initial_state": _check_stateful_initial_state,
    "masking_initial_state": _check_masking_initial_state,
    "bidirectional_state_order": _check_bidirectional_state_order,
    "save_weights_h5": _check_save_weights_h5,
}


def run_idiom(name: str) -> IdiomResult:
    """Run one idiom: its Keras 2 code on Keras 2 and on Keras 3, and its replacement on Keras 3.

    Everything runs in this process on the TensorFlow backend, on a tiny model (batch 2,
    5 steps, 3 features, 4 units, fixed weights), and is compared with a NumPy reference
    (:func:`lstm_utils.all_close`). Keras's warnings are kept off the screen. Files go to a
    temporary folder, removed afterwards. The first call imports TensorFlow, Keras 3 and
    Keras 2 (a few seconds).

    See chapter 12.

    Parameters
    ----------
    name : str
        One of :func:`idiom_names`.

    Returns
    -------
    IdiomResult
        The three outcomes, each ``"works: ..."``, ``"runs: ..."`` or ``"ErrorType: first
        line of the message"`` (layer counters and addresses removed), and whether they
        agree with the entry (``as_documented``).

    Raises
    ------
    TypeError
        If ``name`` is not a str.
    ValueError
        If no idiom has that name.
    ImportError
        If TensorFlow or ``tf_keras`` (Keras 2) is not installed.

    Examples
    --------
    >>> result = run_idiom("time_major")
    >>> result.keras2, result.replacement
    ('works: matches the reference', 'works: matches Keras 2')
    >>> result.keras3
    "ValueError: Unrecognized keyword arguments passed to LSTM: {'time_major': True}"
    >>> result.as_documented
    True
    """
    entry = idiom(name)
    kit = _kit()
    with _Logs():  # Keras's warnings and log lines stay off the screen
        keras2, keras3, replacement = _CHECKS[entry.name](kit)
    return IdiomResult(entry.name, keras2, keras3, replacement, _agrees(entry, keras2, keras3, replacement))


def run_all() -> tuple[IdiomResult, ...]:
    """Run every idiom of :data:`IDIOMS` (:func:`run_idiom`), in order.

    See chapter 12.

    Returns
    -------
    tuple of IdiomResult
        One per idiom, in the order of :data:`IDIOMS`. About 12 s of CPU time after the imports.

    Examples
    --------
    Not run here (it takes seconds); ``tests/test_migration.py`` runs it:

    >>> results = run_all()  # doctest: +SKIP
    >>> all(result.as_documented for result in results)  # doctest: +SKIP
    True
    """
    return tuple(run_idiom(entry.name) for entry in IDIOMS)


def results_table(results: Sequence[IdiomResult]) -> Any:
    """The results of :func:`run_all` as a :class:`lstm_utils.VersionTable`, one row per idiom.

    Rows are the idioms' titles; the Keras 3 and Keras 2 columns hold what the Keras 2 code
    did on each, and the note column what the replacement did on Keras 3 (marked
    ``(not as documented)`` where a result disagrees with its entry).

    See chapter 12.

    Parameters
    ----------
    results : sequence of IdiomResult
        From :func:`run_all` or :func:`run_idiom`; each idiom once.

    Returns
    -------
    VersionTable

    Raises
    ------
    TypeError
        If ``results`` is not a sequence of :class:`IdiomResult`.
    ValueError
        If it is empty, names an unknown idiom, or names one twice.

    Examples
    --------
    >>> result = IdiomResult("time_major", "works: matches the reference", "ValueError: ...", "works", True)
    >>> print(results_table([result]).markdown())
    | idiom | Keras 3 (`keras`, `tf.keras`) | Keras 2 (`tf_keras`) | Keras 3 replacement |
    |---|---|---|---|
    | LSTM(time_major=True) | ValueError: ... | works: matches the reference | works |
    """
    from lstm_utils.display import VersionTable

    given: object = results  # checked at run time: chapters call it without a type checker
    if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
        raise TypeError(f"results must be a sequence of IdiomResult (from run_all), got {type(results).__name__}")
    wrong = [type(result).__name__ for result in results if not isinstance(result, IdiomResult)]
    if wrong:
        raise TypeError(f"results must hold IdiomResult objects only, got {', '.join(sorted(set(wrong)))}")
    if not results:
        raise ValueError("results is empty: pass what run_all() returned")
    names = [result.name for result in results]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"each idiom may appear once in results; repeated: {', '.join(twice)}")
    entries = [idiom(name) for name in names]  # ValueError for an unknown name
    table = VersionTable("idiom", note_column="Keras 3 replacement")
    for entry, result in zip(entries, results, strict=True):
        table.add(entry.title, result.keras3, result.keras2)
        table.note(entry.title, result.replacement + ("" if result.as_documented else " (not as documented)"))
    return table
