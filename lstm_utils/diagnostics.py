"""Find stateful layers whose ``layer.states`` entries were replaced instead of assigned.

An old recipe sets a stateful layer's state by putting new objects into its list,
``layer.states[0] = K.variable(...)``. That runs without error, but a model whose
``predict``/``fit`` functions were already traced keeps reading and updating the
variables it was traced with, so the new values are silently ignored and
``layer.states`` stops showing the real state. Chapter 6, ``06_list_replacement.ipynb``,
shows the pitfall; this module detects it.

How a replaced entry is recognised (every check is cheap; nothing is run or traced):

1. The entry is not a variable at all (a NumPy array, a tensor).
2. TensorFlow backend (Keras 3 and Keras 2): the model's traced ``predict_function``,
   ``train_function`` and ``test_function`` (of the model and of every nested model)
   capture the variables they read. A traced function that reads the layer's weights but
   not the variable now in ``layer.states`` uses another (the old) state variable.
3. Keras 3 only: the entry is not a ``keras.Variable`` (for example a raw ``tf.Variable``
   from ``tf.keras.backend.variable``), or it is a ``keras.Variable`` that this layer did
   not create. Keras 3.x creates state variables named ``rnn_state`` inside the layer's
   name scope, so their ``path`` ends in ``"<layer name>/rnn_state"``.
4. TensorFlow backend (Keras 3 and Keras 2): ``layer.states`` is a TensorFlow
   ``ListWrapper``, which records that one of its entries was overwritten
   (``layer.states[i] = ...``). Keras itself never does that; it assigns in place. This
   check is what finds a Keras 2 entry replaced before the model was traced.

Entries replaced before the model was first traced are reported too, although the next
trace then reads them: functions traced earlier keep the old variables, and TensorFlow
refuses to save such a list (``tf.train.Checkpoint`` in Keras 3, a SavedModel in Keras 2).

Limits: checks 2 and 4 read private TensorFlow details (``Function._list_all_concrete_functions``,
``ListWrapper._non_append_mutation``); if a release removes them, those checks are
skipped rather than failing, and the tests of this module notice. Check 2 sees only the
functions Keras traces for ``predict``/``fit``/``evaluate`` and the ``*_on_batch``
methods, not your own ``tf.function`` wrappers, and nothing when the model was compiled
with ``run_eagerly=True`` (which needs no check: an eager model reads ``layer.states``
on every call). Check 3 relies on Keras 3's naming of state variables. On the JAX
backend only checks 1 and 3 apply. A Keras 2 layer whose whole list was replaced
(``layer.states = [v1, v2]``) is found only once the model has been traced (check 2);
Keras 3 refuses that assignment on a built layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lstm_utils._flavour import flavour_of, is_variable
from lstm_utils._layers import directions, stateful_layers

__all__ = ["find_replaced_states", "explain_replaced_states"]

_FUNCTION_ATTRIBUTES = ("predict_function", "train_function", "test_function")


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "ListWrapper"


def _leaves(states: Any, where: str) -> Iterator[tuple[str, Any]]:
    """(``"layer.states[0]"``, entry) for every entry of a possibly nested state list."""
    if _is_sequence(states):
        for index, item in enumerate(states):
            yield from _leaves(item, f"{where}[{index}]")
    else:
        yield where, states


def _containers(states: Any) -> Iterator[Any]:
    if _is_sequence(states):
        yield states
        for item in states:
            yield from _containers(item)


def _handle(variable: Any) -> Any:
    """The TensorFlow resource handle behind a Keras 3 or TensorFlow variable, or None."""
    inner = getattr(variable, "value", variable) if flavour_of(variable) == "keras3" else variable
    try:
        return getattr(inner, "handle", None)
    except Exception:  # a variable without a resource handle (JAX backend, uninitialised)
        return None


def _tf_functions(obj: Any, depth: int = 0, seen: set[int] | None = None) -> Iterator[Any]:
    """The ``tf.function`` objects a Keras step function is, or wraps in its closure."""
    seen = set() if seen is None else seen
    if obj is None or id(obj) in seen or depth > 6:
        return
    seen.add(id(obj))
    if callable(getattr(obj, "_list_all_concrete_functions", None)):
        yield obj
        return
    for cell in getattr(obj, "__closure__", None) or ():
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if callable(content):
            yield from _tf_functions(content, depth + 1, seen)


def _traced_captures(model: Any) -> list[tuple[str, set[int]]]:
    """(``"model.predict_function"``, ids of captured tensors) per traced concrete function."""
    models = [model]
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        models += [layer for layer in flatten(include_self=False, recursive=True) if hasattr(layer, "predict_function")]
    found = []
    for owner in models:
        for attribute in _FUNCTION_ATTRIBUTES:
            label = f"{'model' if owner is model else owner.name}.{attribute}"
            for function in _tf_functions(getattr(owner, attribute, None)):
                try:
                    concretes = function._list_all_concrete_functions()
                except Exception:  # a TensorFlow release without this private method
                    continue
                for concrete in concretes:
                    found.append((label, {id(t) for t in concrete.captured_inputs}))
    return found


def _variable_problem(
    part: Any,
    place: str,
    kind: str,
    entry: Any,
    weight_handles: set[int],
    traced: list[tuple[str, set[int]]],
    keras3: bool,
) -> list[str]:
    """What is wrong with a state entry that is a variable, most telling first."""
    found = []
    handle = _handle(entry)
    if handle is not None and weight_handles:
        for label, captured in traced:
            if weight_handles & captured and id(handle) not in captured:
                found.append(
                    f"{place} is not the variable that {label} (already traced) reads and "
                    "updates: that function keeps using the variable it was traced with"
                )
                break
    if keras3 and flavour_of(entry) != "keras3":
        found.append(
            f"{place} is a {kind}, not a keras.Variable created by the layer "
            "(Keras 3 keeps state in keras.Variable objects it creates)"
        )
    else:
        path = str(getattr(entry, "path", ""))
        if keras3 and not path.endswith(f"{part.name}/rnn_state"):
            found.append(
                f"{place} is a variable the layer did not create (path {path!r}; the layer's "
                f"own state variables have paths ending in '{part.name}/rnn_state')"
            )
    return found


def _part_problems(part: Any, where: str, traced: list[tuple[str, set[int]]]) -> list[str]:
    states = part.states
    leaves = list(_leaves(states, f"{where}states")) if states is not None else []
    if not leaves or all(entry is None for _, entry in leaves):
        return []  # not built yet: no state to check
    keras3 = flavour_of(part) == "keras3"
    problems = []
    weight_handles = {id(h) for h in map(_handle, part.weights) if h is not None}
    for place, entry in leaves:
        kind = f"{type(entry).__module__.split('.')[0]}.{type(entry).__name__}"
        if not is_variable(entry):
            problems.append(f"{place} is a {kind}, not a variable")
            continue
        problems.extend(_variable_problem(part, place, kind, entry, weight_handles, traced, keras3)[:1])
    if not problems and any(getattr(c, "_non_append_mutation", False) for c in _containers(states)):
        problems.append(
            f"an entry of {where}states was replaced by assignment ({where}states[i] = ...); "
            "functions traced before that use the old variables, and TensorFlow refuses to "
            "save the list (Keras 3: tf.train.Checkpoint; Keras 2: model.save to a SavedModel)"
        )
    return problems


def explain_replaced_states(model: Any) -> dict[str, list[str]]:
    """Say, for each stateful layer whose ``layer.states`` entries were replaced, what is wrong.

    The same checks as :func:`find_replaced_states` (see there and the module docstring),
    with one sentence per problem. A healthy model gives ``{}``.

    See chapter 6, ``06_list_replacement.ipynb``.

    Parameters
    ----------
    model : keras.Model or keras.layers.Layer
        A model or layer of Keras 3 (``keras`` / ``tf.keras``) or Keras 2 (``tf_keras``).
        Given a single layer, the traced-function check (2 in the module docstring) is
        skipped, since only a model has traced functions.

    Returns
    -------
    dict of str to list of str
        Path of each affected layer (as :func:`lstm_utils.stateful_layers` names it) to
        its problems, in model order.

    Raises
    ------
    TypeError
        If ``model`` is not a Keras model or layer.

    Examples
    --------
    >>> import keras, numpy as np
    >>> lstm = keras.layers.LSTM(3, stateful=True, name="lstm")
    >>> _ = lstm(np.ones((2, 4, 1), "float32"))
    >>> lstm.states[1] = np.zeros((2, 3), "float32")
    >>> explain_replaced_states(lstm)
    {'lstm': ['layer.states[1] is a numpy.ndarray, not a variable']}
    """
    layers = stateful_layers(model)
    traced = _traced_captures(model) if layers and hasattr(model, "predict_function") else []
    report: dict[str, list[str]] = {}
    for path, layer in layers:
        problems = [
            problem
            for direction in directions(layer)
            for problem in _part_problems(direction.layer, f"{direction.attribute}.", traced)
        ]
        if problems:
            report[path] = problems
    return report


def find_replaced_states(model: Any) -> list[str]:
    """Name the stateful layers whose ``layer.states`` entries are no longer usable state variables.

    ``layer.states[i] = new_object`` (the old "set the state" recipe) does not change what
    a traced model reads: ``predict`` and ``fit`` keep using and updating the variables
    they were traced with, while ``layer.states`` shows the new object. This function
    finds layers in that condition, without running the model. An entry counts as
    replaced when it is not a variable (a NumPy array, a tensor), when it is not the
    kind of variable the layer creates or was not created by the layer (Keras 3), when
    TensorFlow recorded that an entry of the list was overwritten, or when a traced
    ``predict``/``train``/``test`` function reads the layer's weights but not that entry.

    An entry replaced *before* the model was first traced is reported too: the next
    trace happens to use it, but functions traced earlier (and after a new
    ``compile``, functions traced later) may not agree, and TensorFlow checkpoints and
    Keras 2 SavedModels refuse to save the list. The fix is the same in every case:
    rebuild the model (or load a fresh copy of its weights into a new one) and set
    values with :func:`lstm_utils.set_states`, which assigns in place.
    :func:`explain_replaced_states` says what is wrong with each layer; the module
    docstring lists the limits of the checks.

    See chapter 6, ``06_list_replacement.ipynb``.

    Parameters
    ----------
    model : keras.Model or keras.layers.Layer
        A model or layer of Keras 3 (``keras`` / ``tf.keras``) or Keras 2 (``tf_keras``).

    Returns
    -------
    list of str
        Paths of the affected layers, as :func:`lstm_utils.stateful_layers` names them;
        ``[]`` for a healthy model.

    Raises
    ------
    TypeError
        If ``model`` is not a Keras model or layer.

    Examples
    --------
    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input(batch_shape=(2, 4, 1)),
    ...                           keras.layers.LSTM(3, stateful=True, name="lstm")])
    >>> find_replaced_states(model)
    []
    >>> model.layers[0].states[0] = keras.Variable(np.ones((2, 3), "float32"))
    >>> find_replaced_states(model)
    ['lstm']
    """
    return list(explain_replaced_states(model))
