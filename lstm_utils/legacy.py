"""Load a Keras 2 (``tf_keras``) ``.h5`` model holding stateful recurrent layers into Keras 3.

``keras.models.load_model("old.h5")`` of a model saved by Keras 2 fails on its recurrent
layers: ``ValueError: Unrecognized keyword arguments passed to LSTM: {'time_major': False}``.
:func:`load_keras2_h5` reads the file's model config (read-only, with ``h5py``), rewrites
the Keras-2-only parts that have a faithful Keras 3 equivalent, refuses the rest by name,
rebuilds the model with Keras 3's own classes and copies every weight, checked layer by layer
before anything is assigned. ``stateful=True`` and the batch shape survive; the state starts
at zeros, as after any load (an ``.h5`` file holds no state).

What is converted, what is refused
----------------------------------
- ``time_major=False`` (every Keras 2 recurrent layer writes it): dropped, it is Keras 3's
  only layout. ``time_major=True``: refused, naming the layer (Keras 3 has no time-major RNN
  layers; rebuild it with a transpose before and after the layer).
- ``batch_input_shape`` on an ``InputLayer``: becomes ``batch_shape``; on the first layer of a
  ``Sequential`` without an ``InputLayer``: an ``InputLayer`` with that ``batch_shape`` is put
  before it; on any other layer: dropped (the model's input already fixes it).
- ``input_length`` of ``Embedding``: dropped (the input shape fixes the length).
- ``axis=[n]`` (``BatchNormalization``, ``LayerNormalization``): ``axis=n``, as Keras 3's own
  ``.h5`` reader does.
- Functional configs: ``Functional`` becomes ``Model``; a single input or output written as
  ``[[name, 0, 0]]`` becomes ``[name, 0, 0]`` (else Keras 3 warns at every call); a nested
  model's node numbers move down by one (Keras 2 counts a node for the nested model's own
  construction, Keras 3 does not).
- ``Lambda`` layers (Python bytecode in the file) and classes Keras 3 does not know
  (``CuDNNLSTM``, custom layers not passed in ``custom_objects``): refused, naming them.

See chapter 12.

Examples
--------
>>> from lstm_utils.legacy import load_keras2_h5
>>> load_keras2_h5("no/such/model.h5")
Traceback (most recent call last):
...
FileNotFoundError: load_keras2_h5: no file at 'no/such/model.h5'
"""

from __future__ import annotations

import copy
import json
import os
import zipfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from lstm_utils._layers import describe

if TYPE_CHECKING:
    import keras

__all__ = ["load_keras2_h5"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MODEL_CLASSES = {"Sequential", "Functional", "Model"}
_WRAPPER_KEYS = ("layer", "backward_layer", "cell")


def _check_path(path: Any) -> str:
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"load_keras2_h5: path must be a str or os.PathLike, got {type(path).__name__} {path!r}")
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"load_keras2_h5: path must name a file as text, got bytes {text!r}")
    if not os.path.exists(text):
        raise FileNotFoundError(f"load_keras2_h5: no file at {text!r}")
    if os.path.isdir(text):
        raise ValueError(
            f"load_keras2_h5: {text!r} is a directory (a TensorFlow SavedModel?), expected one Keras 2 "
            f".h5 file; a SavedModel loads in Keras 3 only as keras.layers.TFSMLayer"
        )
    with open(text, "rb") as handle:
        head = handle.read(8)
    if zipfile.is_zipfile(text):
        raise ValueError(
            f"load_keras2_h5: {text!r} is a zip archive (a .keras file), not a Keras 2 HDF5 file; "
            f"load a .keras file with keras.models.load_model({text!r})"
        )
    import h5py

    if head != _HDF5_SIGNATURE and not h5py.is_hdf5(text):
        raise ValueError(f"load_keras2_h5: {text!r} is not an HDF5 file (its first bytes are {head!r})")
    return text


def _layer_configs(config: Any) -> list[dict[str, Any]]:
    """Every layer config in a model config, nested ones (wrapped layers, cells, sub-models) too."""
    found: list[dict[str, Any]] = []

    def visit(entry: Any) -> None:
        if isinstance(entry, list):
            for item in entry:
                visit(item)
            return
        if not (isinstance(entry, dict) and isinstance(entry.get("config"), dict) and "class_name" in entry):
            return
        found.append(entry)
        inner = entry["config"]
        for key in _WRAPPER_KEYS:
            visit(inner.get(key))
        visit(inner.get("cells"))  # StackedRNNCells
        if entry["class_name"] in _MODEL_CLASSES:
            visit(inner.get("layers"))

    visit(config)
    return found


def _label(entry: dict[str, Any]) -> str:
    name = entry["config"].get("name")
    return f"{entry['class_name']} layer {name!r}" if name else f"a {entry['class_name']} layer"


def _convert_config(config: dict[str, Any], custom_objects: Mapping[str, Any]) -> dict[str, Any]:
    """The Keras 3 form of a Keras 2 model config, or a ValueError naming what cannot convert."""
    import keras

    config = copy.deepcopy(config)
    if config.get("class_name") == "Sequential" and isinstance(config.get("config"), list):
        config["config"] = {
            "name": "sequential",
            "layers": config["config"],
        }  # Keras 2.0 to 2.2.2 wrote a bare list of layers
    if config.get("class_name") not in _MODEL_CLASSES:
        raise ValueError(
            f"load_keras2_h5: the file's model config describes a {config.get('class_name')!r}, "
            f"expected a Sequential or functional model"
        )
    entries = _layer_configs(config)
    time_major = [_label(e) for e in entries if e["config"].get("time_major") is True]
    if time_major:
        raise ValueError(
            f"load_keras2_h5: {', '.join(time_major)} has time_major=True, which Keras 3 cannot express "
            f"(its recurrent layers are batch-major only); rebuild the model in Keras 3 with "
            f"keras.ops.transpose(x, (1, 0, 2)) before and after the layer, then model.load_weights"
        )
    lambdas = [_label(e) for e in entries if e["class_name"] == "Lambda"]
    if lambdas:
        raise ValueError(
            f"load_keras2_h5: {', '.join(lambdas)} holds Keras 2 Python bytecode, which Keras 3 cannot "
            f"load; rebuild the model in Keras 3 and call model.load_weights on the file"
        )
    unknown = []
    for entry in entries:
        name = entry["class_name"]
        registered = entry.get("registered_name") or name
        if name in custom_objects or registered in custom_objects:
            entry["registered_name"] = registered if registered in custom_objects else name
            continue
        if name in _MODEL_CLASSES:
            entry["module"], entry["registered_name"] = "keras", None
            if name == "Functional":
                entry["class_name"] = "Model"
        elif isinstance(getattr(keras.layers, name, None), type):
            entry["module"], entry["registered_name"] = "keras.layers", None
        else:
            unknown.append(_label(entry))
    if unknown:
        hint = ""
        if any("CuDNN" in label for label in unknown):
            hint = " (CuDNNLSTM/CuDNNGRU: rebuild as LSTM/GRU in Keras 3, whose cuDNN weights differ)"
        raise ValueError(
            f"load_keras2_h5: Keras 3 has no class for {', '.join(unknown)}{hint}; pass the Keras 3 "
            f"classes as custom_objects={{'ClassName': ClassName}}"
        )
    for entry in entries:
        _convert_entry(entry)
        if entry["class_name"] == "Model":
            _renumber_nested_model_nodes(entry["config"])
            for key in ("input_layers", "output_layers"):
                # Keras 2 wrote one input as [[name, 0, 0]]; Keras 3 would then expect a list of one
                # tensor and warn about the structure of every call: [name, 0, 0] is one tensor.
                ends = entry["config"].get(key)
                if isinstance(ends, list) and len(ends) == 1 and isinstance(ends[0], list):
                    entry["config"][key] = ends[0]
    return config


def _renumber_nested_model_nodes(functional: dict[str, Any]) -> None:
    """Keras 2 gives a nested model a node of its own creation (node 0); Keras 3 does not.

    So the outer model's first call of a nested model is node 1 in a Keras 2 config and
    node 0 in Keras 3: every reference to a nested model's node moves down by one.
    """
    layers = functional.get("layers", [])
    nested = {
        entry.get("name") or entry["config"].get("name")
        for entry in layers
        if isinstance(entry, dict) and entry.get("class_name") in _MODEL_CLASSES
    }
    if not nested:
        return

    def visit(item: Any) -> None:
        if isinstance(item, list):
            if len(item) >= 3 and item[0] in nested and isinstance(item[1], int) and item[1] > 0:
                item[1] -= 1
                return
            for part in item:
                visit(part)

    for entry in layers:
        if isinstance(entry, dict):
            visit(entry.get("inbound_nodes"))
    visit(functional.get("output_layers"))


def _convert_entry(entry: dict[str, Any]) -> None:
    inner = entry["config"]
    if inner.get("time_major") is False:
        del inner["time_major"]
    if entry["class_name"] == "InputLayer":
        if "batch_input_shape" in inner:
            inner["batch_shape"] = inner.pop("batch_input_shape")
    elif entry["class_name"] == "Sequential":
        layers = inner.get("layers", [])
        first = layers[0] if layers else None
        if isinstance(first, dict) and first.get("class_name") != "InputLayer":
            shape = first.get("config", {}).get("batch_input_shape")
            if shape is not None:
                layer_name = first["config"].get("name", "layer")
                input_config = {"batch_shape": shape, "dtype": first["config"].get("dtype", "float32")}
                input_config["name"] = f"{layer_name}_input"
                layers.insert(
                    0,
                    {
                        "module": "keras.layers",
                        "class_name": "InputLayer",
                        "config": input_config,
                        "registered_name": None,
                    },
                )
    if entry["class_name"] != "InputLayer":
        inner.pop("batch_input_shape", None)
    if entry["class_name"] == "Embedding":
        inner.pop("input_length", None)
    axis = inner.get("axis")
    if isinstance(axis, list) and len(axis) == 1 and isinstance(axis[0], int):
        inner["axis"] = axis[0]  # BatchNormalization and friends: Keras 2 wrote axis=[2]


def _shorten(text: str, limit: int = 600) -> str:
    # Keras nests the config of every enclosing object in its message; the cause comes last.
    return text if len(text) <= limit else text[: limit // 3] + " ... " + text[-2 * limit // 3 :]


def _read_weights(group: Any) -> dict[str, list[np.ndarray]]:
    """``{layer name: [arrays in the file's order]}`` from a Keras 2 ``model_weights`` group."""
    weights: dict[str, list[np.ndarray]] = {}
    for raw in group.attrs.get("layer_names", []):
        name = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        layer_group = group[name]
        names = [
            n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in layer_group.attrs.get("weight_names", [])
        ]
        if names:
            weights[name] = [np.asarray(layer_group[n]) for n in names]
    return weights


def _assign_weights(model: Any, weights: dict[str, list[np.ndarray]], path: str) -> None:
    """Check every layer's weights against the file, then assign them all (nothing on a mismatch)."""
    plan: list[tuple[Any, np.ndarray]] = []
    with_weights = {layer.name: layer for layer in model.layers if layer.weights}
    missing = sorted(set(with_weights) - set(weights))
    extra = sorted(set(weights) - set(with_weights))
    if missing or extra:
        raise ValueError(
            f"load_keras2_h5: the weights in {path!r} do not match the rebuilt model: layers without "
            f"weights in the file: {missing}, weights in the file for no such layer: {extra}"
        )
    for name, layer in with_weights.items():
        variables = list(layer.trainable_weights) + list(layer.non_trainable_weights)
        arrays = weights[name]
        if len(variables) != len(arrays):
            raise ValueError(
                f"load_keras2_h5: {describe(layer)} has {len(variables)} weights in Keras 3, the file holds "
                f"{len(arrays)} for it"
            )
        for variable, array in zip(variables, arrays, strict=True):
            if tuple(variable.shape) != array.shape:
                raise ValueError(
                    f"load_keras2_h5: weight {variable.path!r} of {describe(layer)} has shape "
                    f"{tuple(variable.shape)} in Keras 3, the file holds shape {array.shape}"
                )
            plan.append((variable, array))
    for variable, array in plan:
        variable.assign(array)


def _compile(model: Any, training_config: Any) -> None:
    import keras

    config = json.loads(training_config.decode("utf-8") if isinstance(training_config, bytes) else training_config)
    optimizer = config.get("optimizer_config")
    if isinstance(optimizer, dict):
        optimizer = copy.deepcopy(optimizer)
        settings = optimizer.get("config", {})
        for key in ("is_legacy_optimizer", "jit_compile", "decay"):
            settings.pop(key, None)
        name = str(optimizer.get("class_name", "")).removeprefix("Custom>")  # tf_keras registers "Custom>Adam"
        try:
            optimizer = keras.optimizers.get({"class_name": name, "config": settings})
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"load_keras2_h5: Keras 3 cannot rebuild the optimizer {name!r} of the file's training "
                f"config ({error}); load with compile=False and compile the model yourself"
            ) from None
    loss = config.get("loss")
    if isinstance(loss, dict) and "class_name" in loss:
        settings = dict(loss.get("config", {}))
        settings.pop("fn", None)  # Keras 2's LossFunctionWrapper bookkeeping
        if settings.get("reduction") == "auto":  # Keras 2's "auto" is Keras 3's default
            del settings["reduction"]
        name = str(loss["class_name"]).removeprefix("Custom>")
        try:
            loss = keras.losses.get({"class_name": name, "config": settings})
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"load_keras2_h5: Keras 3 cannot rebuild the loss {name!r} of the file's training config "
                f"({_shorten(str(error))}); load with compile=False and compile the model yourself"
            ) from None
    model.compile(optimizer=optimizer or "rmsprop", loss=loss)


def load_keras2_h5(
    path: str | os.PathLike[str],
    *,
    compile: bool = False,  # noqa: A002 (the name keras.models.load_model uses)
    custom_objects: Mapping[str, Any] | None = None,
) -> keras.Model:
    """Load a Keras 2 (``tf_keras``) ``.h5`` model into Keras 3, stateful layers and batch shape kept.

    Works for ``Sequential`` models built with ``batch_input_shape`` and functional ones built
    with ``Input(batch_shape=...)``: ``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN(cell)``, inside
    ``Bidirectional`` too, stacked, with ``Dense``/``TimeDistributed`` heads, and every other
    layer Keras 3 knows by the same name. The file is only read. The loaded model computes
    what the Keras 2 model computed, state carried from batch to batch the same way.
    See chapter 12.

    Parameters
    ----------
    path : str or os.PathLike
        A Keras 2 ``.h5`` file written by ``model.save("model.h5")`` (any file name).
    compile : bool, default False
        Compile with the optimizer (fresh: its saved slots are not restored) and loss of the
        file's training config, where it has one; metrics are not restored.
    custom_objects : mapping, optional
        Keras 3 classes for the file's custom layers, by class name.

    Returns
    -------
    keras.Model
        A Keras 3 model, uncompiled unless ``compile=True``.

    Raises
    ------
    TypeError
        ``path`` is not text or a path, or ``compile`` is not a bool.
    FileNotFoundError
        Nothing exists at ``path``.
    ValueError
        ``path`` is a directory, a ``.keras`` archive, not HDF5, a weights-only file, or holds
        a layer with ``time_major=True``, a ``Lambda`` or a class Keras 3 does not know
        (each named), or weights that do not fit the rebuilt model.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> weird = pathlib.Path(tempfile.mkdtemp()) / "notes.h5"
    >>> _ = weird.write_text("not a model")
    >>> load_keras2_h5(weird)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: load_keras2_h5: '...notes.h5' is not an HDF5 file (its first bytes are b'not a mo')
    """
    if not isinstance(compile, bool):
        raise TypeError(f"load_keras2_h5: compile must be True or False, got {compile!r}")
    if custom_objects is not None and not isinstance(custom_objects, Mapping):
        raise TypeError(
            f"load_keras2_h5: custom_objects must be a mapping of class names to classes, "
            f"got {type(custom_objects).__name__}"
        )
    objects = dict(custom_objects or {})
    text = _check_path(path)
    import h5py

    try:
        handle = h5py.File(text, "r")
    except OSError as error:
        raise ValueError(f"load_keras2_h5: {text!r} could not be read as HDF5 (damaged?): {error}") from None
    with handle:
        raw_config = handle.attrs.get("model_config")
        if raw_config is None:
            kind = "a weights-only file (model.save_weights)" if "layer_names" in handle.attrs else "no Keras model"
            raise ValueError(
                f"load_keras2_h5: {text!r} is an HDF5 file without a model config ({kind}); build the "
                f"model in Keras 3 and call model.load_weights({text!r})"
            )
        if "model_weights" not in handle:
            raise ValueError(f"load_keras2_h5: {text!r} has a model config but no 'model_weights' group (damaged?)")
        config = json.loads(raw_config.decode("utf-8") if isinstance(raw_config, bytes) else raw_config)
        weights = _read_weights(handle["model_weights"])
        training_config = handle.attrs.get("training_config")
    converted = _convert_config(config, objects)
    import keras

    try:
        model = keras.saving.deserialize_keras_object(converted, custom_objects=objects or None)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"load_keras2_h5: Keras 3 cannot rebuild the model in {text!r} from its Keras 2 config: "
            f"{_shorten(str(error))}; rebuild the model in Keras 3 and call model.load_weights on the file"
        ) from None
    _assign_weights(model, weights, text)
    if compile and training_config is not None:
        _compile(model, training_config)
    return model
