"""Tests of lstm_utils.streaming (Streamer, step_model) and its engines, on Keras 3 and Keras 2."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lstm_utils
from lstm_utils import streaming
from lstm_utils._flavour import flavour_of
from lstm_utils._layers import flatten_states
from lstm_utils._streaming_engines import fast_tanh, numba_available
from lstm_utils.streaming import Streamer, step_model

FEATURES, UNITS, BATCH, LONG = 3, 4, 2, 2000
ENGINES = [
    "numpy",
    pytest.param("numba", marks=pytest.mark.skipif(not numba_available(), reason="numba is not installed")),
]


def recurrent(K: ModuleType, kind: str, **options: Any) -> Any:
    options.setdefault("return_sequences", True)
    if kind == "LSTM":
        return K.layers.LSTM(UNITS, **options)
    if kind == "GRU":
        return K.layers.GRU(UNITS, reset_after=True, **options)
    if kind == "GRU_reset_before":
        return K.layers.GRU(UNITS, reset_after=False, **options)
    if kind == "SimpleRNN":
        return K.layers.SimpleRNN(UNITS, **options)
    if kind == "RNN_LSTMCell":
        return K.layers.RNN(K.layers.LSTMCell(UNITS), **options)
    if kind == "stacked_cells":
        return K.layers.RNN([K.layers.LSTMCell(UNITS), K.layers.GRUCell(3), K.layers.SimpleRNNCell(2)], **options)
    raise AssertionError(kind)


KINDS = ["LSTM", "GRU", "GRU_reset_before", "SimpleRNN", "RNN_LSTMCell", "stacked_cells"]


def model_of(K: ModuleType, kind: str, head: str = "dense") -> Any:
    layers = [K.Input((None, FEATURES)), recurrent(K, kind), K.layers.LSTM(3, return_sequences=True)]
    if head == "dense":
        layers.append(K.layers.Dense(2, activation="tanh"))
    elif head == "time_distributed":
        layers.append(K.layers.TimeDistributed(K.layers.Dense(2, activation="sigmoid")))
    model = K.Sequential(layers)
    randomize(model, seed=1)
    return model


def randomize(model: Any, seed: int) -> None:
    """Weights larger than the initializers give, so that every gate matters."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(scale=0.6, size=w.shape).astype("float32") for w in model.get_weights()])


def stream(streamer: Streamer, x: np.ndarray) -> np.ndarray:
    return np.stack([streamer.step(x[:, t]) for t in range(x.shape[1])], axis=1)


def data(seed: int, batch: int = BATCH, steps: int = LONG, features: int = FEATURES) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype("float32")


# ------------------------------------------------------------------------ agreement with Keras


@pytest.mark.slow  # 24 runs of 2000 steps (make test-slow); the shorter streams below run in make test
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", KINDS)
def test_long_stream_matches_keras(K: ModuleType, kind: str, engine: str) -> None:
    model = model_of(K, kind)
    x = data(0)
    expected = model.predict(x, verbose=0, batch_size=BATCH)
    streamer = Streamer(model, BATCH, engine=engine)
    assert streamer.engine == engine
    got = stream(streamer, x)
    assert got.dtype == np.float32
    assert lstm_utils.max_difference(got, expected) < 1e-5
    streamer.reset()
    assert lstm_utils.max_difference(streamer.run(x), expected) < 1e-5


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", KINDS)
def test_non_zero_start_states_match_keras(K: ModuleType, kind: str, engine: str) -> None:
    layer = recurrent(K, kind, return_state=True)
    x = data(1, steps=200)
    layer(x[:, :1])  # build
    randomize(layer, seed=2)
    streamer = Streamer(layer, BATCH, engine=engine)
    rng = np.random.default_rng(3)
    start = [rng.uniform(-0.9, 0.9, size=s.shape).astype("float32") for s in streamer.states]
    streamer.set_states(start)
    assert all(np.array_equal(a, b) for a, b in zip(streamer.states, start, strict=True))
    import tensorflow as tf

    tensors = [tf.constant(s) for s in start]  # Keras 2 wants tensors here, not arrays
    initial = [tensors[0:2], tensors[2:3], tensors[3:4]] if kind == "stacked_cells" else tensors
    sequence, *final = layer(tf.constant(x), initial_state=initial)
    final = flatten_states(final)
    got = streamer.run(x)
    assert lstm_utils.max_difference(got, sequence) < 1e-5
    assert len(final) == len(streamer.states)
    for a, b in zip(streamer.states, final, strict=True):
        assert lstm_utils.max_difference(a, b) < 1e-5


@pytest.mark.parametrize("engine", ENGINES)
def test_a_stream_resumes_from_copied_states(K: ModuleType, engine: str) -> None:
    model = model_of(K, "stacked_cells", head="time_distributed")
    x = data(4, steps=240)
    expected = model.predict(x, verbose=0, batch_size=BATCH)
    first = Streamer(model, BATCH, engine=engine)
    head = first.run(x[:, :150])
    second = Streamer(model, BATCH, engine=engine)
    second.set_states(first.states)
    tail = second.run(x[:, 150:])
    assert lstm_utils.max_difference(np.concatenate([head, tail], axis=1), expected) < 1e-5
    assert second.state_names == first.state_names
    assert second.state_names[:2] == [f"{model.layers[0].name}/h1", f"{model.layers[0].name}/c1"]


@pytest.mark.parametrize("engine", ENGINES)
def test_last_step_model_and_functional_chain(K: ModuleType, engine: str) -> None:
    inputs = K.Input((None, FEATURES))
    h = K.layers.GRU(UNITS, return_sequences=True)(inputs)
    h = K.layers.Dropout(0.5)(h)
    h = K.layers.LSTM(UNITS)(h)
    outputs = K.layers.Dense(3, activation="softmax")(K.layers.Dense(5, activation="relu")(h))
    model = K.Model(inputs, outputs)
    randomize(model, seed=5)
    x = data(6, steps=40)
    streamer = Streamer(model, BATCH, engine=engine)
    got = streamer.run(x)
    assert got.shape == (BATCH, 40, 3)
    assert lstm_utils.max_difference(got[:, -1], model.predict(x, verbose=0)) < 1e-5
    assert lstm_utils.max_difference(got[:, 9], model.predict(x[:, :10], verbose=0)) < 1e-5


@pytest.mark.parametrize("engine", ENGINES)
def test_independent_streams_and_reset(K: ModuleType, engine: str) -> None:
    model = model_of(K, "LSTM")
    x = data(7, steps=30)
    a = Streamer(model, BATCH, engine=engine)
    b = Streamer(model, BATCH, engine=engine)
    ya = a.run(x)
    assert all(not np.any(s) for s in b.states)  # b has not moved
    yb = b.run(x)
    assert np.array_equal(ya, yb)
    a.reset()
    assert all(not np.any(s) for s in a.states)
    assert np.array_equal(a.run(x), ya)
    # a row is its own stream: row 0 alone gives the same outputs
    single = Streamer(model, 1, engine=engine)
    assert lstm_utils.max_difference(single.run(x[:1]), ya[:1]) < 1e-6


def test_weights_are_read_once(K: ModuleType) -> None:
    model = model_of(K, "GRU")
    x = data(8, steps=20)
    streamer = Streamer(model, BATCH)
    before = streamer.run(x)
    randomize(model, seed=9)
    streamer.reset()
    assert np.array_equal(streamer.run(x), before)
    assert lstm_utils.max_difference(Streamer(model, BATCH).run(x), model.predict(x, verbose=0)) < 1e-5


def test_auto_engine(K: ModuleType) -> None:
    model = model_of(K, "LSTM")
    small = Streamer(model, 1)
    assert small.engine == ("numba" if numba_available() else "numpy")
    assert Streamer(model, streaming.NUMBA_MAX_BATCH + 1).engine == "numpy"
    assert "engine=" in repr(small)


def test_inputs_are_converted(K: ModuleType) -> None:
    model = model_of(K, "SimpleRNN")
    streamer = Streamer(model, 1, engine="numpy")
    x64 = np.random.default_rng(1).normal(size=(1, 5, FEATURES))
    from_list = [streamer.step(x64[:, t].tolist()) for t in range(5)]
    streamer.reset()
    assert np.array_equal(np.stack(from_list, axis=1), streamer.run(x64))


# ------------------------------------------------------------------------ bad input


def assert_unchanged(streamer: Streamer, before: list[np.ndarray]) -> None:
    assert all(np.array_equal(a, b) for a, b in zip(streamer.states, before, strict=True))


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_steps_change_nothing(K: ModuleType, engine: str) -> None:
    streamer = Streamer(model_of(K, "LSTM"), BATCH, engine=engine)
    streamer.run(data(2, steps=5))
    before = streamer.states
    bad_step = [
        (np.zeros((BATCH, FEATURES + 1)), ValueError, r"shape \(batch_size, features\) = \(2, 3\), got \(2, 4\)"),
        (np.zeros((BATCH + 1, FEATURES)), ValueError, r"got \(3, 3\)"),
        (np.zeros((BATCH, 1, FEATURES)), ValueError, "run"),
        (np.full((BATCH, FEATURES), np.nan), ValueError, "NaN or infinite"),
        (np.array([[0, 0, np.inf], [0, 0, 0]]), ValueError, "NaN or infinite"),
        (np.array([[0, 0, 1e39], [0, 0, 0]]), ValueError, "NaN or infinite"),  # overflows float32
        (np.array([["a", "b", "c"]] * BATCH), TypeError, "numeric"),
        ("abc", TypeError, "numeric"),
    ]
    for value, error, match in bad_step:
        with pytest.raises(error, match=match):
            streamer.step(value)
        assert_unchanged(streamer, before)
    nan_sequence = data(3, steps=6)
    nan_sequence[1, 4, 2] = np.nan
    for value, error, match in [
        (nan_sequence, ValueError, "NaN or infinite"),
        (data(3, steps=6)[:1], ValueError, r"\(batch_size, timesteps, features\)"),
        (data(3, steps=6, features=2), ValueError, "timesteps"),
        (np.zeros((BATCH, FEATURES)), ValueError, "timesteps"),
    ]:
        with pytest.raises(error, match=match):
            streamer.run(value)
        assert_unchanged(streamer, before)


def test_bad_states_change_nothing(K: ModuleType) -> None:
    streamer = Streamer(model_of(K, "GRU"), BATCH)
    streamer.run(data(2, steps=5))
    before = streamer.states
    good = [np.zeros((BATCH, UNITS)), np.zeros((BATCH, 3)), np.zeros((BATCH, 3))]
    cases = [
        (good[0], TypeError, "list of 3 arrays"),
        (good[:2], ValueError, "holds 3 state"),
        ([good[0], good[1], np.zeros((BATCH, 4))], ValueError, r"expected shape \(2, 3\)"),
        ([good[0], good[1], np.full((BATCH, 3), np.inf)], ValueError, "NaN or infinite"),
        ([good[0], good[1], np.full((BATCH, 3), 1e39)], ValueError, "NaN or infinite"),
        ([good[0], good[1], np.full((BATCH, 3), "x")], TypeError, "numeric"),
        ([good[0], good[1], np.ma.masked_array(np.zeros((BATCH, 3)))], TypeError, "masked"),
    ]
    for value, error, match in cases:
        with pytest.raises(error, match=match):
            streamer.set_states(value)
        assert_unchanged(streamer, before)


def test_models_that_cannot_stream_are_refused(K: ModuleType) -> None:
    dense_only = K.Sequential([K.Input((None, FEATURES)), K.layers.Dense(2)])
    bidirectional = K.Sequential([K.Input((None, FEATURES)), K.layers.Bidirectional(K.layers.LSTM(2))])
    backwards = K.Sequential([K.Input((None, FEATURES)), K.layers.LSTM(2, go_backwards=True)])
    inputs = K.Input((None, FEATURES))
    h = K.layers.LSTM(4, return_sequences=True)(inputs)
    attention = K.Model(inputs, K.layers.Attention()([h, h]))
    masked = K.Sequential([K.Input((None, FEATURES)), K.layers.Masking(), K.layers.LSTM(2)])
    relu_lstm = K.Sequential([K.Input((None, FEATURES)), K.layers.LSTM(2, activation="relu")])
    conv = K.Sequential([K.Input((None, FEATURES)), K.layers.Conv1D(2, 3), K.layers.LSTM(2)])
    cases = [
        (dense_only, ValueError, "no.*recurrent|has none"),
        (bidirectional, ValueError, "backward half"),
        (bidirectional.layers[0], ValueError, "backward half"),
        (backwards, ValueError, "go_backwards"),
        (attention, ValueError, "Streamer"),
        (masked, ValueError, "Masking"),
        (relu_lstm, ValueError, "default activations"),
        (conv, ValueError, "supported layers"),
        (K.layers.LSTM(2), ValueError, "not built"),
        (K.layers.LSTM, TypeError, "class"),
        (np.zeros(3), TypeError, "Keras model"),
        (K.layers.Dense(2), TypeError, "Keras model"),
    ]
    for model, error, match in cases:
        with pytest.raises(error, match=match):
            Streamer(model)
        with pytest.raises(error, match=match):
            step_model(model)


def test_bad_arguments(K: ModuleType) -> None:
    model = model_of(K, "LSTM")
    for value, error in [(0, ValueError), (1.0, TypeError), (True, TypeError)]:
        with pytest.raises(error, match="batch_size"):
            Streamer(model, value)
        with pytest.raises(error, match="batch_size"):
            step_model(model, batch_size=value)
    with pytest.raises(ValueError, match="engine must be one of"):
        Streamer(model, engine="torch")
    with pytest.raises(TypeError, match="unroll"):
        step_model(model, unroll=1)  # type: ignore[arg-type]


@pytest.mark.skipif(numba_available(), reason="numba is installed")
def test_numba_engine_without_numba_says_how_to_install(K: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"lstm_utils\[fast\]"):
        Streamer(model_of(K, "LSTM"), engine="numba")


# ------------------------------------------------------------------------ step_model


@pytest.mark.parametrize("kind", KINDS)
def test_step_model_matches_keras(K: ModuleType, kind: str) -> None:
    model = model_of(K, kind, head="time_distributed")
    x = data(10, steps=30)
    expected = model.predict(x, verbose=0)
    stepper = step_model(model, batch_size=BATCH)
    streamer = Streamer(model, BATCH)
    assert len(stepper.inputs) == 1 + len(streamer.state_names) == len(stepper.outputs)
    states = [np.zeros((BATCH, int(t.shape[-1])), "float32") for t in stepper.inputs[1:]]
    ys = []
    for t in range(x.shape[1]):
        y, *states = stepper.predict_on_batch([x[:, t], *states])
        ys.append(np.asarray(y))
    assert lstm_utils.max_difference(np.stack(ys, axis=1), expected) < 1e-5
    streamer.run(x)
    for a, b in zip(streamer.states, states, strict=True):
        assert lstm_utils.max_difference(a, b) < 1e-5
    assert flavour_of(stepper) == flavour_of(model)


def test_step_model_free_batch_and_unroll_false(K: ModuleType) -> None:
    model = model_of(K, "GRU")
    stepper = step_model(model, unroll=False)
    assert stepper.inputs[0].shape[0] is None
    x = data(11, batch=3, steps=8)
    states = [np.zeros((3, int(t.shape[-1])), "float32") for t in stepper.inputs[1:]]
    for t in range(8):
        y, *states = stepper.predict_on_batch([x[:, t], *states])
    assert lstm_utils.max_difference(y, model.predict(x, verbose=0)[:, -1]) < 1e-5


# ------------------------------------------------------------------------ engines


def test_fast_tanh_is_close_to_numpy() -> None:
    z = np.linspace(-20, 20, 400_001, dtype=np.float32)
    assert np.max(np.abs(fast_tanh(z) - np.tanh(z))) < 1e-6
    assert fast_tanh(np.float32([0.0]))[0] == 0.0


# ------------------------------------------------------------------------ bad input, generated

DTYPES = st.sampled_from(["float16", "float32", "float64", "int8", "int64", "uint8", "bool", "complex64", "<U3"])
EDGE = st.sampled_from([0.0, -1.5, 1e39, np.nan, np.inf, -np.inf, 1e-40])


@st.composite
def any_array(draw: st.DrawFn, shape: Any = None) -> np.ndarray:
    dtype = np.dtype(draw(DTYPES))
    chosen = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)) if shape is None else shape
    if dtype.kind == "f":
        with np.errstate(over="ignore"):
            return draw(hnp.arrays(dtype, chosen, elements=EDGE.map(lambda v: np.float64(v).astype(dtype))))
    return draw(hnp.arrays(dtype, chosen))


@pytest.fixture(scope="module")
def small_streamer() -> Streamer:
    import keras

    model = keras.Sequential(
        [keras.Input((None, 2)), keras.layers.LSTM(3, return_sequences=True), keras.layers.Dense(1)]
    )
    streamer = Streamer(model, 2, engine="numpy")
    streamer.run(np.ones((2, 3, 2)))
    return streamer


GENERATED = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@GENERATED
@given(value=st.one_of(any_array(), any_array(shape=(2, 2))))
def test_a_step_either_works_or_is_refused_cleanly(small_streamer: Streamer, value: np.ndarray) -> None:
    before = small_streamer.states
    try:
        y = small_streamer.step(value)
    except (TypeError, ValueError) as error:
        assert "x_t" in str(error)
        assert_unchanged(small_streamer, before)
        return
    assert value.shape == (2, 2) and value.dtype.kind in "iuf"
    assert y.shape == (2, 1) and np.all(np.isfinite(y))
    small_streamer.set_states(before)


@GENERATED
@given(value=st.one_of(any_array(), any_array(shape=(2, 3))))
def test_set_states_either_works_or_is_refused_cleanly(small_streamer: Streamer, value: np.ndarray) -> None:
    before = small_streamer.states
    try:
        small_streamer.set_states([value, before[1]])
    except (TypeError, ValueError) as error:
        assert "state" in str(error)
        assert_unchanged(small_streamer, before)
        return
    assert value.shape == (2, 3) and value.dtype.kind in "iuf"
    assert np.array_equal(small_streamer.states[0], value.astype(np.float32))
    small_streamer.set_states(before)
