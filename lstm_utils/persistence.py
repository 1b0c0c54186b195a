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
import hashlib
import math
import os
import re
import stat
import tempfile
import zipfile
import zlib
from typing import IO, Any

import numpy as np

from lstm_utils._layers import describe, stateful_layers
from lstm_utils.states import get_states, set_states

__all__ = ["save_states", "load_states"]

FORMAT_KEY = "__format__"
"""The ``.npz`` entry that marks a file written by :func:`save_states`."""

FORMAT_VERSION = "lstm_utils.states/1"
"""The text stored under :data:`FORMAT_KEY`."""

# "<layer path>/<state index>", the index written without leading zeros ("lstm/01" would
# otherwise name the same state as "lstm/1").
_KEY = re.compile(r"^(?P<path>.+)/(?P<index>0|[1-9][0-9]*)$")
_MAX_MARKER_CHARACTERS = 64


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
    left as it was and the temporary file is removed (a save killed half-way leaves its
    temporary file, which the next save to the same path removes). The file is written
    at exactly ``path``: unlike ``numpy.savez``, no ``.npz`` suffix is added to a name
    without one.

    It writes only to a new name or over a states file that it wrote itself (recognised
    by its format marker): a weights file, any other file, a symbolic link or a device
    at ``path`` is refused and left as it is.

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
        If the model holds no stateful recurrent layer, one that is not built, two at
        the same path (same names in the same container), or a state holding NaN or
        infinite values; or if ``path`` is a symbolic link or not a regular file.
    FileExistsError
        If ``path`` is a file that ``save_states`` did not write (it is left as it is).
    IsADirectoryError
        If ``path`` is a directory.
    FileNotFoundError
        If the directory of ``path`` does not exist (nothing is written).
    OSError
        If writing fails (the message names ``path``; the previous file is kept).

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
    _check_save_target(target)
    not_finite = [
        f"{layer_path}/{index}"
        for layer_path, values in states.items()
        for index, value in enumerate(values)
        if not np.all(np.isfinite(value))
    ]
    if not_finite:
        raise ValueError(
            f"the states {not_finite} hold NaN or infinite values, so nothing was written to {target!r} "
            "(load_states would refuse the file). Such states usually mean the model diverged: "
            "reset them (lstm_utils.reset_states) or set finite values (lstm_utils.set_states) first."
        )
    arrays: dict[str, np.ndarray] = {FORMAT_KEY: np.array(FORMAT_VERSION)}
    for layer_path, values in states.items():
        for index, value in enumerate(values):
            arrays[f"{layer_path}/{index}"] = value
    directory = os.path.dirname(os.path.abspath(target))
    prefix = _temporary_prefix(target)
    _remove_abandoned_temporaries(directory, prefix)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise _naming(error, target) from error
    try:
        with os.fdopen(descriptor, "wb") as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub types the keywords as options
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _file_mode(target))
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _naming(error, target) from error
        raise
    _fsync_directory(directory)


def _naming(error: OSError, target: str) -> OSError:
    """The same kind of error, saying which of the user's files it was about."""
    named = type(error)(f"save_states could not write {target!r}: {error}")
    return named


def _check_save_target(target: str) -> None:
    """Refuse to write anywhere but a new name or a states file that save_states wrote."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        directory = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"cannot save the states to {target!r}: its directory {directory!r} does not exist"
            ) from None
        return
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"expected a file path for the states, got the directory {target!r}")
    if stat.S_ISLNK(info.st_mode):
        raise ValueError(
            f"{target!r} is a symbolic link; save_states writes only to a new name or over a "
            "states file it wrote, so that it never replaces what a link points to. Give the "
            f"path the link points to ({os.path.realpath(target)!r}) or a new name."
        )
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(
            f"{target!r} is not a regular file (a device, FIFO or socket); save_states writes only "
            "to a new name or over a states file it wrote"
        )
    try:
        with zipfile.ZipFile(target) as archive:
            _read_marker(archive, target)
    except ValueError as error:
        raise FileExistsError(
            f"{target!r} exists and is not a states file written by save_states ({error}); "
            "save_states replaces only its own files, so that it cannot destroy weights or data "
            "saved there. Choose another path, or remove the file first."
        ) from None
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise FileExistsError(
            f"{target!r} exists and is not a states file written by save_states ({type(error).__name__}: "
            f"{error}); save_states replaces only its own files. Choose another path, or remove the file first."
        ) from None


def _temporary_prefix(target: str) -> str:
    """The start of this target's temporary file names: short, whatever the target's name length."""
    digest = hashlib.sha256(os.path.basename(target).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f".lstm_utils-{digest}."


def _remove_abandoned_temporaries(directory: str, prefix: str) -> None:
    """Delete this target's temporary files left by saves whose process was killed."""
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            if not (name.startswith(prefix) and name.endswith(".tmp")):
                continue
            pid_text = name[len(prefix) :].split(".", 1)[0]
            if pid_text.isdigit() and int(pid_text) != os.getpid() and not _process_alive(int(pid_text)):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a platform without signals: leave its file alone
    return True


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


def _header(member: IO[bytes], key: str) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """The shape, Fortran order and dtype an ``.npy`` entry declares, read before any of its data."""
    try:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(member)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(member)
    except ValueError as error:
        raise ValueError(f"entry {key!r} is not a valid .npy array ({error})") from None
    raise ValueError(f"entry {key!r} is an .npy array of format version {version}, which save_states never writes")


def _read_data(member: IO[bytes], key: str, shape: tuple[int, ...], fortran: bool, dtype: np.dtype[Any]) -> np.ndarray:
    """Exactly the bytes the header declared (no more), then the end of the entry (its checksum)."""
    size = math.prod(shape) * dtype.itemsize
    data = member.read(size)
    if len(data) != size:
        raise ValueError(f"entry {key!r} is truncated: its header declares {size} bytes of data, it holds {len(data)}")
    if member.read(1):
        raise ValueError(f"entry {key!r} holds more data than its header declares")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def _read_marker(archive: zipfile.ZipFile, target: str) -> None:
    """Check the format marker of an open archive; ValueError if it is not one save_states wrote."""
    try:
        info = archive.getinfo(FORMAT_KEY + ".npy")
    except KeyError:
        raise ValueError(
            f"expected a file written by save_states, with a {FORMAT_KEY!r} entry, got an .npz file "
            f"without one (entries: {sorted(name.removesuffix('.npy') for name in archive.namelist())})"
        ) from None
    with archive.open(info) as member:
        shape, fortran, dtype = _header(member, FORMAT_KEY)
        if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * _MAX_MARKER_CHARACTERS:
            raise ValueError(
                f"expected a {FORMAT_KEY!r} entry holding the text {FORMAT_VERSION!r}, got an entry "
                f"of dtype {dtype} and shape {shape}"
            )
        marker = str(_read_data(member, FORMAT_KEY, shape, fortran, dtype)[()])
    if marker != FORMAT_VERSION:
        raise ValueError(f"expected states file format {FORMAT_VERSION!r}, got {marker!r}")


def _read_file(target: str, current: dict[str, list[np.ndarray]]) -> tuple[dict[str, np.ndarray | None], list[str]]:
    """Every state entry of the file (``None`` where it does not fit the model), and what does not fit.

    Never unpickles.

    Every entry's header is read before its data, and data is read only for entries whose
    shape and dtype match one of the model's states, so a damaged or hostile file cannot
    make this allocate more than the model's own states need.
    """
    try:
        info = os.stat(target)
    except FileNotFoundError:
        raise FileNotFoundError(f"no states file at {target!r}") from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"expected a states file, got the directory {target!r}")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{target!r} is not a regular file (a device, FIFO or socket), so it is no states file")
    if info.st_size == 0:
        raise ValueError(f"{target!r} is empty (0 bytes): a save that never finished, or not a states file")
    expected = {f"{path}/{index}": value for path, values in current.items() for index, value in enumerate(values)}
    found: dict[str, np.ndarray | None] = {}
    problems: list[str] = []
    try:
        with open(target, "rb") as handle:
            if handle.read(6) == b"\x93NUMPY":
                raise ValueError("expected an .npz archive written by save_states, got a single ndarray (.npy file)")
        with zipfile.ZipFile(target) as archive:
            _read_marker(archive, target)
            seen: dict[tuple[str, int], str] = {}
            for member_info in archive.infolist():
                name = member_info.filename
                if name == FORMAT_KEY + ".npy":
                    continue
                if not name.endswith(".npy"):
                    raise ValueError(f"entry {name!r} is not an .npy array, so this was not written by save_states")
                key = name[: -len(".npy")]
                match = _KEY.match(key)
                if match is None:
                    raise ValueError(
                        "expected entries named '<layer path>/<state index>' (index without leading zeros), "
                        f"got {key!r}"
                    )
                slot = (match["path"], int(match["index"]))
                if slot in seen:
                    raise ValueError(f"entries {seen[slot]!r} and {key!r} name the same state")
                seen[slot] = key
                with archive.open(member_info) as member:
                    shape, fortran, dtype = _header(member, key)
                    if dtype.hasobject:
                        raise ValueError(
                            f"entry {key!r} of the states file is an object array, which could only be read "
                            "by unpickling it; load_states never unpickles (allow_pickle=False), so this file "
                            "was not written by save_states"
                        )
                    want = expected.get(key)
                    found[key] = None  # until it is read: not the model's, or of the wrong shape or dtype
                    if want is None:
                        continue  # the layer check reports it: a layer or state the model does not have
                    if shape != want.shape:
                        problems.append(f"state {key!r}: expected shape {want.shape}, the file has {shape}")
                    elif dtype != want.dtype:
                        problems.append(f"state {key!r}: expected dtype {want.dtype}, the file has {dtype}")
                    else:
                        value = _read_data(member, key, shape, fortran, dtype)
                        if not np.all(np.isfinite(value)):
                            problems.append(f"state {key!r}: the file holds NaN or infinite values")
                        found[key] = value
    except ValueError as error:
        raise ValueError(f"{target!r} is not a usable states file: {error}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as error:
        raise ValueError(
            f"{target!r} is not a usable states file: expected an .npz file written by save_states, "
            f"got a damaged or foreign file ({type(error).__name__}: {error})"
        ) from None
    return found, problems


def _check_against_model(
    target: str, entries: dict[str, np.ndarray | None], entry_problems: list[str], current: dict[str, list[np.ndarray]]
) -> dict[str, list[np.ndarray]]:
    """Match the file's entries to the model's layers; every mismatch is listed in one error."""
    from_file: dict[str, dict[int, np.ndarray | None]] = {}
    for key, value in entries.items():
        layer_path, index = key.rsplit("/", 1)  # _read_file checked the form of every name
        from_file.setdefault(layer_path, {})[int(index)] = value
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
    problems += entry_problems
    if problems:
        raise ValueError(
            f"the states file {target!r} does not match the model, nothing was loaded: "
            + "; ".join(problems)
            + ". Build the model with the same stateful layers, names (name=...) and batch size as "
            "the one that was saved."
        )
    loaded: dict[str, list[np.ndarray]] = {}
    for layer_path, values in current.items():
        kept = [from_file[layer_path][index] for index in range(len(values))]
        loaded[layer_path] = [value for value in kept if value is not None]
        assert len(loaded[layer_path]) == len(values)  # every unread entry was reported above
    return loaded


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
        If the file is not a states file (empty, damaged, truncated, foreign), holds an
        object (pickled) array, or does not match the model; the message names the file.
        Headers are read before data, and only entries that fit the model are read, so a
        hostile file cannot make it allocate more than the model's own states.

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
    entries, entry_problems = _read_file(target, current)
    new_values = _check_against_model(target, entries, entry_problems, current)
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
