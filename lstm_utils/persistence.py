"""Save the states of a model's stateful recurrent layers to a file, and load them back.

Neither ``model.save("m.keras")`` nor ``model.save_weights("m.weights.h5")`` stores the
state of stateful RNN layers: a reloaded model starts from zeros. :func:`save_states`
writes every stateful layer's state to one ``.npz`` file (atomically), and
:func:`load_states` checks the whole file against the whole model before it assigns
anything. Chapter 9, ``09_persisting_state.ipynb``, explains both.

File format
-----------
A NumPy ``.npz`` archive with one array per state, keyed ``"<layer path>/<state index>"``
(``"lstm/0"`` is the ``h`` of the layer at path ``"lstm"``, ``"encoder/lstm/1"`` its ``c``
in a nested model, ``"bidirectional/2"`` a backward ``h``; paths as
:func:`lstm_utils.stateful_layers` gives them, state order as :func:`lstm_utils.get_states`),
plus a ``"__format__"`` entry holding the text ``"lstm_utils.states/1"``. No entry is
an object array, so the file loads with ``allow_pickle=False``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import zipfile
from typing import Any

import numpy as np

from lstm_utils._layers import describe, stateful_layers
from lstm_utils.states import get_states, set_states

__all__ = ["save_states", "load_states"]

FORMAT_KEY = "__format__"
"""The ``.npz`` entry that marks a file written by :func:`save_states`."""

FORMAT_VERSION = "lstm_utils.states/1"
"""The text stored under :data:`FORMAT_KEY`."""

_KEY = re.compile(r"^(?P<path>.+)/(?P<index>\d+)$")


def _fspath(path: Any) -> str:
    if isinstance(path, (bytes, bytearray)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"expected a file path (str or os.PathLike), got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"expected a text file path (str or os.PathLike[str]), got {type(text).__name__}")
    if not text:
        raise ValueError("expected a file path, got an empty string")
    return text


def _model_states(model: Any) -> dict[str, list[np.ndarray]]:
    """``{layer path: [state arrays]}`` for every stateful layer; raises if there is none."""

    layers = stateful_layers(model)
    if not layers:
        raise ValueError(
            f"{describe(model)} holds no stateful recurrent layer, so it has no state to save "
            "or load (layers created without stateful=True start from zeros on every call)"
        )
    paths = [path for path, _ in layers]
    repeated = sorted({path for path in paths if paths.count(path) > 1})
    if repeated:
        raise ValueError(
            f"{describe(model)} holds several stateful layers at the same path {repeated}, so their "
            "states could not be told apart in the file: give them distinct names (name=...)"
        )
    return {path: get_states(layer) for path, layer in layers}


def save_states(model: Any, path: str | os.PathLike[str]) -> None:
    """Write the states of every stateful recurrent layer of a model to one ``.npz`` file.

    The file is written atomically: the arrays go to a temporary file in the same
    directory, which is flushed to disk and then renamed over ``path``
    (``os.replace``). If anything fails on the way, the previous file at ``path`` is
    left as it was and the temporary file is removed. The file is written at exactly
    ``path``: unlike ``numpy.savez``, no ``.npz`` suffix is added to a name without one.

    See chapter 9, ``09_persisting_state.ipynb``.

    Parameters
    ----------
    model : keras.Model or keras.layers.Layer
        A model of Keras 3 (``keras`` / ``tf.keras``) or Keras 2 (``tf_keras``), nested
        models and ``Bidirectional`` wrappers included, or one stateful recurrent layer.
        Its stateful layers must be built.
    path : str or os.PathLike
        The file to write (conventionally ending in ``.npz``); its directory must exist.

    Raises
    ------
    TypeError
        If ``model`` is not a Keras model or layer, or ``path`` is not a path.
    ValueError
        If the model holds no stateful recurrent layer, one that is not built, or two at
        the same path (same names in the same container).
    IsADirectoryError
        If ``path`` is a directory.
    FileNotFoundError
        If the directory of ``path`` does not exist (nothing is written).

    Examples
    --------
    >>> import os, tempfile, keras, numpy as np
    >>> model = keras.Sequential([keras.Input(batch_shape=(2, 5, 1)),
    ...                           keras.layers.LSTM(3, stateful=True, name="lstm")])
    >>> _ = model(np.ones((2, 5, 1), "float32"))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_states(model, os.path.join(tmp, "states.npz"))
    ...     sorted(np.load(os.path.join(tmp, "states.npz")).files)
    ['__format__', 'lstm/0', 'lstm/1']
    """
    target = _fspath(path)
    states = _model_states(model)
    if os.path.isdir(target):
        raise IsADirectoryError(f"expected a file path for the states, got the directory {target!r}")
    arrays: dict[str, np.ndarray] = {FORMAT_KEY: np.array(FORMAT_VERSION)}
    for layer_path, values in states.items():
        for index, value in enumerate(values):
            arrays[f"{layer_path}/{index}"] = value
    directory = os.path.dirname(os.path.abspath(target))
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _file_mode(target))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _file_mode(target: str) -> int:
    """The permission bits the file gets: the old file's, or the usual ones for a new file."""
    with contextlib.suppress(OSError):
        return os.stat(target).st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable where the platform allows it (POSIX)."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _read_file(target: str) -> dict[str, np.ndarray]:
    """Every entry of a states file, read without unpickling; clear errors for bad files."""
    if not os.path.isfile(target):
        raise FileNotFoundError(f"no states file at {target!r}")
    try:
        archive = np.load(target, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"expected an .npz file written by save_states, got a file NumPy cannot read as one ({error})") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"expected an .npz archive written by save_states, got a single {type(archive).__name__} (.npy file)")
    entries: dict[str, np.ndarray] = {}
    with archive:
        for key in archive.files:
            try:
                entries[key] = archive[key]
            except ValueError as error:
                raise ValueError(
                    f"entry {key!r} of the states file is an object array, which could only be read "
                    "by unpickling it; load_states never unpickles (allow_pickle=False), so this file "
                    "was not written by save_states"
                ) from error
    marker = entries.pop(FORMAT_KEY, None)
    if marker is None or marker.shape != () or marker.dtype.kind != "U":
        raise ValueError(
            f"expected a file written by save_states, with a {FORMAT_KEY!r} entry, got an .npz "
            f"file without one (entries: {sorted(entries)})"
        )
    if str(marker) != FORMAT_VERSION:
        raise ValueError(f"expected states file format {FORMAT_VERSION!r}, got {str(marker)!r}")
    return entries


def _check_against_model(
    entries: dict[str, np.ndarray], current: dict[str, list[np.ndarray]]
) -> dict[str, list[np.ndarray]]:
    """Match the file's entries to the model's layers; every mismatch is listed in one error."""
    from_file: dict[str, dict[int, np.ndarray]] = {}
    for key, value in entries.items():
        match = _KEY.match(key)
        if match is None:
            raise ValueError(f"expected entries named '<layer path>/<state index>', got {key!r} in the states file")
        from_file.setdefault(match["path"], {})[int(match["index"])] = value
    problems = []
    missing = [p for p in current if p not in from_file]
    extra = [p for p in from_file if p not in current]
    if missing:
        problems.append(f"the model's stateful layer(s) {missing} have no states in the file")
    if extra:
        problems.append(
            f"the file holds states for layer(s) {extra} that the model does not have "
            f"(the model's stateful layers: {list(current)})"
        )
    for layer_path in current:
        if layer_path not in from_file:
            continue
        expected, stored = current[layer_path], from_file[layer_path]
        if sorted(stored) != list(range(len(expected))):
            problems.append(
                f"layer {layer_path!r} holds {len(expected)} state(s), the file has "
                f"{len(stored)} ({', '.join(f'{layer_path}/{i}' for i in sorted(stored))})"
            )
            continue
        for index, want in enumerate(expected):
            got = stored[index]
            if got.shape != want.shape:
                problems.append(f"state '{layer_path}/{index}': expected shape {want.shape}, the file has {got.shape}")
            elif got.dtype != want.dtype:
                problems.append(f"state '{layer_path}/{index}': expected dtype {want.dtype}, the file has {got.dtype}")
            elif not np.all(np.isfinite(got)):
                problems.append(f"state '{layer_path}/{index}': the file holds NaN or infinite values")
    if problems:
        raise ValueError(
            "the states file does not match the model, nothing was loaded: "
            + "; ".join(problems)
            + ". Build the model with the same stateful layers, names (name=...) and batch size as "
            "the one that was saved."
        )
    return {p: [from_file[p][i] for i in range(len(current[p]))] for p in current}


def load_states(model: Any, path: str | os.PathLike[str]) -> None:
    """Load states written by :func:`save_states` into a model's stateful recurrent layers.

    The whole file is checked against the whole model first: the same stateful layer
    paths (no layer missing, none extra), the same number of states per layer, and the
    same shape and dtype for each. On any mismatch a ``ValueError`` lists every problem
    and no state is changed. The file is read with ``allow_pickle=False``: nothing in it
    is unpickled. Layers are matched by path name, so give stateful layers explicit
    names (``name="lstm"``): a rebuilt model gets new automatic names (``lstm_1``).

    See chapter 9, ``09_persisting_state.ipynb``.

    Parameters
    ----------
    model : keras.Model or keras.layers.Layer
        A model of Keras 3 or Keras 2 (or one stateful recurrent layer) whose stateful
        layers are built, with the same architecture and batch size as the saved one.
    path : str or os.PathLike
        A file written by :func:`save_states`.

    Raises
    ------
    TypeError
        If ``model`` is not a Keras model or layer, or ``path`` is not a path.
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a states file, holds an object (pickled) array, or does not
        match the model.

    Examples
    --------
    >>> import os, tempfile, keras, numpy as np, lstm_utils
    >>> def build():
    ...     return keras.Sequential([keras.Input(batch_shape=(2, 5, 1)),
    ...                              keras.layers.LSTM(3, stateful=True, name="lstm")])
    >>> model = build()
    >>> _ = model(np.ones((2, 5, 1), "float32"))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     save_states(model, os.path.join(tmp, "states.npz"))
    ...     fresh = build()
    ...     load_states(fresh, os.path.join(tmp, "states.npz"))
    >>> np.array_equal(lstm_utils.get_states(fresh.layers[0])[0], lstm_utils.get_states(model.layers[0])[0])
    True
    """

    target = _fspath(path)
    current = _model_states(model)
    entries = _read_file(target)
    new_values = _check_against_model(entries, current)
    layers = dict(stateful_layers(model))
    done: list[str] = []
    try:
        for layer_path, values in new_values.items():
            set_states(layers[layer_path], values)
            done.append(layer_path)
    except BaseException:
        for layer_path in done:  # all or nothing, even if an assignment fails half-way
            set_states(layers[layer_path], current[layer_path])
        raise
