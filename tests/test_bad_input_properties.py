"""Property-based tests of bad input over the public functions (hypothesis).

For generated arrays of every shape and dtype, and for generated damaged files, each call
either succeeds and round-trips, or raises ``TypeError``/``ValueError`` whose message names
the argument, and no state and no existing file changes. Runs are derandomised, so a
failure repeats on every run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lstm_utils

BATCH, UNITS = 2, 3
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

DTYPES = st.sampled_from(
    [
        "float16",
        "float32",
        "float64",
        "int8",
        "int64",
        "uint8",
        "bool",
        "complex64",
        "<U3",
        "timedelta64[s]",
        "datetime64[D]",
    ]
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
EDGE_FLOATS = st.sampled_from([0.0, -1.5, 1e39, -1e39, np.nan, np.inf, -np.inf, 1e-40])


@st.composite
def arrays(draw: st.DrawFn, shape: Any = SHAPES) -> np.ndarray:
    """Arrays of any dtype and shape, with finite, huge, tiny and non-finite values where the dtype has them."""
    dtype = np.dtype(draw(DTYPES))
    chosen_shape = draw(shape) if isinstance(shape, st.SearchStrategy) else shape
    if dtype.kind == "f":
        return draw(hnp.arrays(dtype, chosen_shape, elements=EDGE_FLOATS.map(lambda v: _cast(v, dtype))))
    return draw(hnp.arrays(dtype, chosen_shape))


def _cast(value: float, dtype: np.dtype[Any]) -> Any:
    with np.errstate(over="ignore"):  # 1e39 becomes inf in float16 and float32: one more edge case
        return np.float64(value).astype(dtype)


@pytest.fixture(scope="module")
def layers() -> dict[str, Any]:
    import keras
    import tf_keras

    built = {}
    for name, K in (("keras3", keras), ("keras2", tf_keras)):
        model = K.Sequential([K.Input(batch_shape=(BATCH, 4, 1)), K.layers.LSTM(UNITS, stateful=True, name="lstm")])
        built[name] = (K, model, model.get_layer("lstm"))
    return built


STATE_LIKE = st.one_of(arrays(), arrays(shape=st.just((BATCH, UNITS))))


@SETTINGS
@given(version=st.sampled_from(["keras3", "keras2"]), h=STATE_LIKE, c=STATE_LIKE)
def test_set_states_round_trips_or_refuses_naming_the_state(
    layers: dict[str, Any], version: str, h: Any, c: Any
) -> None:
    _, _, layer = layers[version]
    before = [np.full((BATCH, UNITS), 0.25, "float32"), np.full((BATCH, UNITS), -0.5, "float32")]
    lstm_utils.set_states(layer, before)
    try:
        lstm_utils.set_states(layer, [h, c])
    except (TypeError, ValueError) as error:
        assert "state 'h'" in str(error) or "state 'c'" in str(error), str(error)
        for got, want in zip(lstm_utils.get_states(layer), before, strict=True):
            np.testing.assert_array_equal(got, want)
    else:
        for got, given_value in zip(lstm_utils.get_states(layer), (h, c), strict=True):
            assert given_value.shape == (BATCH, UNITS) and given_value.dtype.kind in "fiu"
            np.testing.assert_array_equal(got, given_value.astype("float32"))
            assert np.all(np.isfinite(got))


@SETTINGS
@given(version=st.sampled_from(["keras3", "keras2"]), x=arrays(), h=STATE_LIKE)
def test_check_initial_state_passes_only_what_fits(layers: dict[str, Any], version: str, x: Any, h: Any) -> None:
    K = layers[version][0]
    import tensorflow as tf

    try:
        state = tf.constant(h) if h.dtype.kind not in "mM" else h
        inputs = tf.constant(x) if x.dtype.kind not in "mM" else x
    except (TypeError, ValueError):  # TensorFlow has no tensor of this dtype: check the array itself
        state, inputs = h, x
    try:
        lstm_utils.check_initial_state(K.layers.LSTM(UNITS), inputs, [state, state])
    except (TypeError, ValueError) as error:
        assert "initial state" in str(error) or "inputs" in str(error), str(error)
    else:
        assert x.ndim == 3 and h.shape == (x.shape[0], UNITS) and h.dtype.kind == "f"


@SETTINGS
@given(x=arrays(), window=st.one_of(st.integers(-2, 5), st.floats(0, 3), st.just(True)))
def test_to_stateful_batches_round_trips_or_refuses_naming_the_argument(x: np.ndarray, window: Any) -> None:
    try:
        chunks = lstm_utils.to_stateful_batches(x, window=window)
    except (TypeError, ValueError) as error:
        assert "x" in str(error) or "window" in str(error), str(error)
    else:
        restored = lstm_utils.from_stateful_batches(chunks, batch=x.shape[0])
        np.testing.assert_array_equal(restored, x[:, : restored.shape[1]])


def good_states_file(model: Any, path: Path) -> bytes:
    lstm_utils.save_states(model, path)
    return path.read_bytes()


@SETTINGS
@given(
    version=st.sampled_from(["keras3", "keras2"]),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_a_damaged_states_file_loads_intact_or_is_refused_naming_the_file(
    layers: dict[str, Any], tmp_path: Path, version: str, edits: list[tuple[int, int]], cut: int | None
) -> None:
    _, model, layer = layers[version]
    lstm_utils.set_states(layer, [np.full((BATCH, UNITS), 0.5, "float32"), np.full((BATCH, UNITS), 1.5, "float32")])
    good = good_states_file(model, tmp_path / "good.npz")
    damaged = bytearray(good)
    for position, value in edits:
        damaged[position % len(damaged)] = value
    if cut is not None:
        damaged = damaged[: cut % len(damaged)]
    target = tmp_path / "damaged.npz"
    target.write_bytes(bytes(damaged))
    lstm_utils.set_states(layer, [np.full((BATCH, UNITS), -1.0, "float32"), np.full((BATCH, UNITS), -2.0, "float32")])
    before = lstm_utils.get_states(layer)
    try:
        lstm_utils.load_states(model, target)
    except ValueError as error:
        assert "damaged.npz" in str(error), str(error)
        for got, want in zip(lstm_utils.get_states(layer), before, strict=True):
            np.testing.assert_array_equal(got, want)
    else:  # only a harmless edit (a timestamp, a name field) may load, and then exactly the saved values
        h, c = lstm_utils.get_states(layer)
        assert np.all(h == 0.5) and np.all(c == 1.5)
    assert target.read_bytes() == bytes(damaged)


@SETTINGS
@given(version=st.sampled_from(["keras3", "keras2"]), content=st.binary(max_size=300))
def test_save_states_never_replaces_a_file_it_did_not_write(
    layers: dict[str, Any], tmp_path: Path, version: str, content: bytes
) -> None:
    _, model, _ = layers[version]
    target = tmp_path / "existing.bin"
    target.write_bytes(content)
    with pytest.raises(FileExistsError, match="existing.bin' exists and is not a states file"):
        lstm_utils.save_states(model, target)
    assert target.read_bytes() == content
    assert os.listdir(tmp_path) == ["existing.bin"]
