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


def build(
    K: ModuleType,
    *,
    batch: int = BATCH,
    units: int = 4,
    top: str | None = "top",
    top_kind: str = "LSTM",
    extra: bool = False,
) -> Any:
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
        for x, y in zip(a[path], b[path], strict=True):
            assert np.array_equal(x, y), path


def test_round_trip_nested_and_bidirectional(K: ModuleType, tmp_path: Path) -> None:
    model = build(K)
    saved = fill(model, seed=1)
    path = tmp_path / "states.npz"
    lstm_utils.save_states(model, path)  # os.PathLike
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(
            ["__format__"]
            + [f"encoder/lstm/{i}" for i in range(2)]
            + [f"bidi/{i}" for i in range(4)]
            + [f"top/{i}" for i in range(2)]
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
        dict(top=None),
        r"the file holds states for layer\(s\) \['top'\] that the model does not have",
    ),
    "model has an unsaved layer": (dict(extra=True), r"layer\(s\) \['extra'\] have no states in the file"),
    "wrong shape (units)": (dict(units=5), r"state 'encoder/lstm/0': expected shape \(2, 5\), the file has \(2, 4\)"),
    "wrong shape (batch)": (dict(batch=3), r"expected shape \(3, 4\), the file has \(2, 4\)"),
    "wrong number of states": (
        dict(top_kind="GRU"),
        r"layer 'top' holds 1 state\(s\), the file has 2 \(top/0, top/1\)",
    ),
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
    with pytest.raises(
        ValueError, match=r"expected states file format 'lstm_utils.states/1', got 'lstm_utils.states/99'"
    ):
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


# ---------------------------------------------------------------- files save_states must not destroy


def test_save_states_never_overwrites_a_file_it_did_not_write(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    weights = tmp_path / "w.weights.h5"
    model.save_weights(weights)
    before = weights.read_bytes()
    with pytest.raises(FileExistsError, match=r"w.weights.h5' exists and is not a states file written by save_states"):
        lstm_utils.save_states(model, weights)
    assert weights.read_bytes() == before
    other_npz = tmp_path / "data.npz"
    write_npz(other_npz, {"x": np.arange(3)})
    before = other_npz.read_bytes()
    with pytest.raises(FileExistsError, match=r"data.npz' exists and is not a states file.*without one"):
        lstm_utils.save_states(model, other_npz)
    assert other_npz.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["data.npz", "w.weights.h5"]


def test_save_states_refuses_links_and_special_files(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    real = tmp_path / "real.npz"
    lstm_utils.save_states(model, real)
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    with pytest.raises(ValueError, match=r"link.npz' is a symbolic link.*Give the path the link points to"):
        lstm_utils.save_states(model, link)
    assert link.is_symlink()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"pipe' is not a regular file \(a device, FIFO or socket\)"):
        lstm_utils.save_states(model, fifo)
    with pytest.raises(ValueError, match=r"pipe' is not a regular file"):
        lstm_utils.load_states(model, fifo)
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "pipe", "real.npz"]


def test_non_finite_states_are_refused_before_anything_is_written(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    layer = layers_of(model)["bidi"]
    layer.forward_layer.states[1].assign(np.full((BATCH, 4), np.nan, "float32"))  # a diverged model
    with pytest.raises(ValueError, match=r"states \['bidi/1'\] hold NaN.*nothing was written.*reset_states"):
        lstm_utils.save_states(model, tmp_path / "s.npz")
    assert os.listdir(tmp_path) == []


def test_a_long_file_name_fits(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    saved = fill(model, seed=14)
    target = tmp_path / ("s" * 251 + ".npz")  # 255 characters, the usual limit of a name
    lstm_utils.save_states(model, target)
    fill(model, seed=15)
    lstm_utils.load_states(model, target)
    assert_same(snapshot(model), saved)


def test_temporary_files_of_killed_saves_are_removed_by_the_next_save(K: ModuleType, tmp_path: Path) -> None:
    import subprocess
    import sys

    model = build(K, top=None)
    target = tmp_path / "s.npz"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    prefix = persistence._temporary_prefix(str(target))
    abandoned = tmp_path / f"{prefix}{int(dead.stdout)}.x1y2z3.tmp"
    abandoned.write_bytes(b"PK half a save")
    alive = tmp_path / f"{prefix}1.x1y2z3.tmp"  # pid 1 is alive: a save under way elsewhere
    alive.write_bytes(b"PK")
    lstm_utils.save_states(model, target)
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, "s.npz"])


def test_a_failed_save_names_the_users_path(K: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = build(K, top=None)
    target = tmp_path / "mine.npz"

    def fail(*args: Any, **kwargs: Any) -> None:
        raise PermissionError("permission denied (simulated)")

    monkeypatch.setattr(persistence.os, "replace", fail)
    with pytest.raises(PermissionError, match=r"save_states could not write '.*mine.npz': permission denied"):
        lstm_utils.save_states(model, target)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- damaged and hostile files


def good_entries(model: Any) -> dict[str, np.ndarray]:
    return {
        "__format__": np.array("lstm_utils.states/1"),
        **{f"{p}/{i}": s for p, v in snapshot(model).items() for i, s in enumerate(v)},
    }


def npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_zip(path: Path, members: dict[str, bytes], compression: int | None = None) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w", compression=compression or zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def damaged_files(model: Any, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the message load_states must give)."""
    good = good_entries(model)
    members = {f"{key}.npy": npy_bytes(value) for key, value in good.items()}
    files: dict[str, tuple[Path, str]] = {}

    def add(name: str, entries: dict[str, bytes], message: str, compression: int | None = None) -> None:
        path = tmp_path / f"{name}.npz"
        write_zip(path, entries, compression)
        files[name] = (path, message)

    (tmp_path / "empty.npz").write_bytes(b"")
    files["empty"] = (tmp_path / "empty.npz", r"empty.npz' is empty \(0 bytes\)")
    intact = tmp_path / "intact.npz"
    write_zip(intact, members)
    flipped = bytearray(intact.read_bytes())
    flipped[len(flipped) // 3] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    files["flipped byte"] = (tmp_path / "flipped.npz", r"flipped.npz' is not a usable states file")
    (tmp_path / "cut.npz").write_bytes(intact.read_bytes()[: len(flipped) // 2])
    files["cut in half"] = (tmp_path / "cut.npz", r"cut.npz' is not a usable states file")
    add("not_npy", {**members, "notes.txt": b"hello"}, r"entry 'notes.txt' is not an \.npy array")
    truncated = dict(members)
    truncated["encoder/lstm/0.npy"] = members["encoder/lstm/0.npy"][:-8]
    add(
        "truncated",
        truncated,
        r"entry 'encoder/lstm/0' is truncated: its header declares 32 bytes of data, it holds 24",
    )
    # A header that declares a huge array (about 4 TB) in a file of a few hundred bytes.
    huge_header = npy_bytes(np.zeros((2, 4), "float32")).replace(b"(2, 4)", b"(1000000, 1000000)")
    add(
        "huge shape",
        {**members, "encoder/lstm/0.npy": huge_header},
        r"state 'encoder/lstm/0': expected shape \(2, 4\), the file has \(1000000, 1000000\)",
    )
    add(
        "duplicate keys",
        {**members, "encoder/lstm/01.npy": members["encoder/lstm/1.npy"]},
        r"index without leading zeros\), got 'encoder/lstm/01'",
    )
    add(
        "bytes marker",
        {**members, "__format__.npy": npy_bytes(np.array(b"lstm_utils.states/1"))},
        r"expected a '__format__' entry holding the text 'lstm_utils.states/1', got an entry of dtype \|S19",
    )
    return files


def test_damaged_files_give_a_value_error_naming_the_file(K: ModuleType, tmp_path: Path) -> None:
    model = build(K, top=None)
    before = fill(model, seed=16)
    for name, (path, message) in damaged_files(model, tmp_path).items():
        with pytest.raises(ValueError, match=message):
            lstm_utils.load_states(model, path)
        assert_same(snapshot(model), before), name


def test_a_compressed_bomb_is_refused_without_decompressing_it(K: ModuleType, tmp_path: Path) -> None:
    import tracemalloc
    import zipfile

    model = build(K, top=None)
    before = fill(model, seed=17)
    members = {f"{key}.npy": npy_bytes(value) for key, value in good_entries(model).items()}
    # 100 MB of zeros that compress to well under 1 MB, under a key the model does not have.
    bomb = npy_bytes(np.zeros((2, 4), "float32")).replace(b"(2, 4)", b"(100000000,)")[:128] + bytes(100_000_000)
    members["extra/0.npy"] = bomb
    path = tmp_path / "bomb.npz"
    write_zip(path, members, zipfile.ZIP_DEFLATED)
    del bomb, members
    assert path.stat().st_size < 2_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"the file holds states for layer\(s\) \['extra'\]"):
            lstm_utils.load_states(model, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, f"reading a refused file allocated {peak / 1e6:.0f} MB"
    assert_same(snapshot(model), before)
