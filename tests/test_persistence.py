"""Tests of lstm_utils.persistence (save_states / load_states), on Keras 3 and Keras 2."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import lstm_utils
from lstm_utils import persistence
from lstm_utils._flavour import to_numpy

BATCH, STEPS, FEATURES = 2, 4, 3


def build(K: ModuleType, *, batch: int = BATCH, units: int = 4, top: str | None = "top",
          top_kind: str = "LSTM", extra: bool = False) -> Any:
    """A nested model: encoder model (LSTM) -> Bidirectional(LSTM) -> [top LSTM/GRU] [-> extra GRU]."""
    inner_in = K.Input(batch_shape=(batch, STEPS, FEATURES))
    inner_out = K.layers.LSTM(units, stateful=True, return_sequences=True, name="lstm")(inner_in)
    encoder = K.Model(inner_in, inner_out, name="encoder")
    inputs = K.Input(batch_shape=(batch, STEPS, FEATURES))
    x = encoder(inputs)
    x = K.layers.Bidirectional(K.layers.LSTM(units, stateful=True, return_sequences=True), name="bidi")(x)
    if top is not None:
        x = getattr(K.layers, top_kind)(units, stateful=True, return_sequences=True, name=top)(x)
    if extra:
        x = K.layers.GRU(units, stateful=True, return_sequences=True, name="extra")(x)
    return K.Model(inputs, x, name="model")


def layers_of(model: Any) -> dict[str, Any]:
    return dict(lstm_utils.stateful_layers(model))


def fill(model: Any, seed: int) -> dict[str, list[np.ndarray]]:
    """Set every state to distinct random values; return them."""
    rng = np.random.default_rng(seed)
    values = {}
    for path, layer in lstm_utils.stateful_layers(model):
        states = [rng.normal(size=s.shape).astype(s.dtype) for s in lstm_utils.get_states(layer)]
        lstm_utils.set_states(layer, states)
        values[path] = states
    return values


def snapshot(model: Any) -> dict[str, list[np.ndarray]]:
    return {path: lstm_utils.get_states(layer) for path, layer in lstm_utils.stateful_layers(model)}


def assert_same(a: dict[str, list[np.ndarray]], b: dict[str, list[np.ndarray]]) -> None:
    assert list(a) == list(b)
    for path in a:
        assert len(a[path]) == len(b[path])
        for x, y in zip(a[path], b[path]):
            assert np.array_equal(x, y), path


def test_round_trip_nested_and_bidirectional(K: ModuleType, tmp_path: Path) -> None:
    model = build(K)
    saved = fill(model, seed=1)
    path = tmp_path / "states.npz"
    lstm_utils.save_states(model, path)  # os.PathLike
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(
            ["__format__"] + [f"encoder/lstm/{i}" for i in range(2)]
            + [f"bidi/{i}" for i in range(4)] + [f"top/{i}" for i in range(2)]
        )
        assert str(archive["__format__"]) == "lstm_utils.states/1"
    fresh = build(K)
    fresh.set_weights(model.get_weights())
    fill(fresh, seed=2)
    lstm_utils.load_states(fresh, str(path))  # str
    assert_same(snapshot(fresh), saved)
    # The restored model continues exactly like the original.
    x = np.random.default_rng(3).normal(size=(BATCH, STEPS, FEATURES)).astype("float32")
    assert np.array_equal(to_numpy(model(x)), to_numpy(fresh(x)))


def test_single_layer_round_trip(K: ModuleType, tmp_path: Path) -> None:
    layer = K.layers.GRU(3, stateful=True, name="gru")
    layer(np.ones((2, 4, 1), "float32"))
    lstm_utils.set_states(layer, [np.full((2, 3), 0.5)])
    lstm_utils.save_states(layer, tmp_path / "gru.npz")
    lstm_utils.reset_states(layer)
    lstm_utils.load_states(layer, tmp_path / "gru.npz")
    assert np.array_equal(lstm_utils.get_states(layer)[0], np.full((2, 3), 0.5, "float32"))


def test_path_is_used_exactly_and_overwritten(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    fill(model, seed=1)
    target = tmp_path / "states"  # no suffix: none is added
    lstm_utils.save_states(model, target)
    first = target.read_bytes()
    saved = fill(model, seed=4)
    lstm_utils.save_states(model, target)
    assert sorted(os.listdir(tmp_path)) == ["states"]
    assert target.read_bytes() != first
    fill(model, seed=5)
    lstm_utils.load_states(model, target)
    assert_same(snapshot(model), saved)


def test_new_file_gets_the_usual_permissions(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    lstm_utils.save_states(model, tmp_path / "s.npz")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "s.npz").stat().st_mode & 0o777 == 0o666 & ~umask


MISMATCHES = {
    "model lacks a saved layer": (
        dict(top=None), r"the file holds states for layer\(s\) \['top'\] that the model does not have"
    ),
    "model has an unsaved layer": (dict(extra=True), r"layer\(s\) \['extra'\] have no states in the file"),
    "wrong shape (units)": (dict(units=5), r"state 'encoder/lstm/0': expected shape \(2, 5\), the file has \(2, 4\)"),
    "wrong shape (batch)": (dict(batch=3), r"expected shape \(3, 4\), the file has \(2, 4\)"),
    "wrong number of states": (dict(top_kind="GRU"), r"layer 'top' holds 1 state\(s\), the file has 2 \(top/0, top/1\)"),
}


_SAVED: dict[str, bytes] = {}


def save_default(K: ModuleType, path: Path) -> None:
    """Write the states file of build(K) to path (built once per Keras version: builds are slow)."""
    if K.__name__ not in _SAVED:
        lstm_utils.save_states(build(K), path)
        _SAVED[K.__name__] = path.read_bytes()
    path.write_bytes(_SAVED[K.__name__])


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_mismatch_is_an_error_that_changes_nothing(K: ModuleType, tmp_path: Path, case: str) -> None:
    save_default(K, tmp_path / "s.npz")
    kwargs, message = MISMATCHES[case]
    other = build(K, **kwargs)
    before = fill(other, seed=7)
    with pytest.raises(ValueError, match=message) as caught:
        lstm_utils.load_states(other, tmp_path / "s.npz")
    assert "nothing was loaded" in str(caught.value)
    assert_same(snapshot(other), before)


def test_all_problems_are_listed_and_later_layers_are_not_assigned(K: ModuleType, tmp_path: Path) -> None:
    # Only the last layer differs: a half-way assignment of the first layers would show here.
    save_default(K, tmp_path / "s.npz")
    other = build(K, top_kind="GRU", extra=True)
    before = fill(other, seed=8)
    with pytest.raises(ValueError, match=r"\['extra'\] have no states.*layer 'top' holds 1 state"):
        lstm_utils.load_states(other, tmp_path / "s.npz")
    assert_same(snapshot(other), before)


def write_npz(path: Path, entries: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:  # np.savez on a handle: exactly this name
        np.savez(handle, **entries)


def test_wrong_dtype_and_non_finite_values(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    good = {f"{p}/{i}": s for p, v in snapshot(model).items() for i, s in enumerate(v)}
    before = fill(model, seed=9)
    marker = {"__format__": np.array("lstm_utils.states/1")}
    entries = dict(good, **{"encoder/lstm/1": good["encoder/lstm/1"].astype("float64")})
    write_npz(tmp_path / "a.npz", {**marker, **entries})
    with pytest.raises(ValueError, match=r"'encoder/lstm/1': expected dtype float32, the file has float64"):
        lstm_utils.load_states(model, tmp_path / "a.npz")
    entries = dict(good, **{"bidi/3": np.full_like(good["bidi/3"], np.nan)})
    write_npz(tmp_path / "b.npz", {**marker, **entries})
    with pytest.raises(ValueError, match=r"'bidi/3': the file holds NaN"):
        lstm_utils.load_states(model, tmp_path / "b.npz")
    assert_same(snapshot(model), before)


def test_pickled_object_array_is_refused(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    entries = {f"{p}/{i}": s for p, v in snapshot(model).items() for i, s in enumerate(v)}
    entries["encoder/lstm/0"] = np.array([{"not": "an array"}, None], dtype=object)
    write_npz(tmp_path / "s.npz", {"__format__": np.array("lstm_utils.states/1"), **entries})
    before = fill(model, seed=10)
    with pytest.raises(ValueError, match=r"'encoder/lstm/0' of the states file is an object array.*never unpickles"):
        lstm_utils.load_states(model, tmp_path / "s.npz")
    assert_same(snapshot(model), before)


def test_files_not_written_by_save_states(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    before = fill(model, seed=11)
    write_npz(tmp_path / "plain.npz", {"arr_0": np.zeros((2, 4), "float32")})
    with pytest.raises(ValueError, match=r"with a '__format__' entry, got an \.npz file without one"):
        lstm_utils.load_states(model, tmp_path / "plain.npz")
    write_npz(tmp_path / "future.npz", {"__format__": np.array("lstm_utils.states/99")})
    with pytest.raises(ValueError, match=r"expected states file format 'lstm_utils.states/1', got 'lstm_utils.states/99'"):
        lstm_utils.load_states(model, tmp_path / "future.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match=r"expected an \.npz file written by save_states"):
        lstm_utils.load_states(model, tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(ValueError, match=r"got a single ndarray \(\.npy file\)"):
        lstm_utils.load_states(model, tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError, match=r"no states file at"):
        lstm_utils.load_states(model, tmp_path / "absent.npz")
    assert_same(snapshot(model), before)


def test_bad_arguments(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    with pytest.raises(TypeError, match=r"expected a file path \(str or os.PathLike\), got int"):
        lstm_utils.save_states(model, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"expected a file path \(str or os.PathLike\), got bytes"):
        lstm_utils.load_states(model, b"s.npz")  # type: ignore[arg-type]
    with pytest.raises(IsADirectoryError, match=r"expected a file path for the states, got the directory"):
        lstm_utils.save_states(model, tmp_path)
    with pytest.raises(TypeError, match=r"expected a Keras model or layer, got builtins.list"):
        lstm_utils.save_states([], tmp_path / "s.npz")
    stateless = K.Sequential([K.Input((STEPS, FEATURES)), K.layers.LSTM(2)])
    with pytest.raises(ValueError, match=r"holds no stateful recurrent layer"):
        lstm_utils.save_states(stateless, tmp_path / "s.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("failing", ["savez", "fsync", "replace"])
def test_a_failed_save_keeps_the_previous_file(
    K: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    model = build(K, top=None)
    first = fill(model, seed=12)
    target = tmp_path / "s.npz"
    lstm_utils.save_states(model, target)
    previous = target.read_bytes()
    fill(model, seed=13)

    def half_written_savez(file: Any, *args: Any, **kwargs: Any) -> None:
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full (simulated)")

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(f"{failing} failed (simulated)")

    if failing == "savez":
        monkeypatch.setattr(persistence.np, "savez", half_written_savez)
    else:
        monkeypatch.setattr(persistence.os, failing, fail)
    with pytest.raises(OSError, match="simulated"):
        lstm_utils.save_states(model, target)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["s.npz"]  # no temporary file left behind
    assert target.read_bytes() == previous
    lstm_utils.load_states(model, target)
    assert_same(snapshot(model), first)


def test_two_stateful_layers_at_the_same_path_are_refused(K: ModuleType, tmp_path: Path) -> None:
    class Pair(K.layers.Layer):  # type: ignore[name-defined,misc]
        """A custom layer that holds two stateful LSTMs with the same explicit name."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.first = K.layers.LSTM(2, stateful=True, return_sequences=True, name="lstm")
            self.second = K.layers.LSTM(2, stateful=True, name="lstm")

        def call(self, x: Any) -> Any:
            return self.second(self.first(x))

    pair = Pair(name="pair")
    pair(np.ones((BATCH, STEPS, FEATURES), "float32"))
    assert [path for path, _ in lstm_utils.stateful_layers(pair)] == ["lstm", "lstm"]
    with pytest.raises(ValueError, match=r"several stateful layers at the same path \['lstm'\]"):
        lstm_utils.save_states(pair, tmp_path / "s.npz")
    with pytest.raises(ValueError, match=r"several stateful layers at the same path"):
        lstm_utils.load_states(pair, tmp_path / "s.npz")
    assert os.listdir(tmp_path) == []


def test_missing_directory_is_an_error_that_writes_nothing(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    with pytest.raises(FileNotFoundError):
        lstm_utils.save_states(model, tmp_path / "missing" / "s.npz")
    assert os.listdir(tmp_path) == []
