"""The migration checker: find Keras 2 state idioms in users' code, and rewrite the mechanical ones.

``python -m lstm_utils.migrate PATH...`` (console script ``lstm-migrate``) reads ``.py`` files
and ``.ipynb`` notebooks (directories are searched for both), parses them with libcst, and
prints one line per Keras 2 idiom of :data:`lstm_utils.migration.IDIOMS` it finds::

    train.py:12:5: model_reset_states: AttributeError: ... -> lstm_utils.reset_states(model) ...
    nb.ipynb:cell 3:2:5: backend_get_value: ... -> h = keras.ops.convert_to_numpy(layer.states[0])

Lines and columns count from 1; in a notebook, ``cell N`` is the N-th cell of the file
(markdown cells counted, as ``nb["cells"][N - 1]``) and the line is the line within that cell.
IPython magics and shell lines (``%...``, ``!...``; a ``%%`` cell magic other than ``%%time``,
``%%timeit``, ``%%capture`` or ``%%prun`` makes its whole cell non-Python) are skipped, and line
numbers stay those of the cell.

``--fix`` rewrites, in place, the findings whose replacement is mechanical (the registry's
``fixable``), keeping formatting and comments (:func:`fix_source` says what each becomes), and
prints ``fixed: LOCATION: name`` for each rewrite (where it was before the fix) and
``left: LOCATION: name: ...`` for each finding that remains (where it is after the fix). A file
is written only when its text changes, through a temporary file beside it that replaces it
(never half-written); a read-only file is refused and left as it is. In a notebook only the
code cells' sources change, and the JSON is written back in its own layout. ``--diff`` prints
the change as a unified diff and writes nothing. Directories are searched recursively, hidden
ones (``.git``, ``.venv``, ``.ipynb_checkpoints``) skipped.

Exit status: 0 no finding (after ``--fix``: none left), 1 findings, 2 a usage error (a path that
does not exist, a directory without ``.py``/``.ipynb`` files, a file that cannot be read or
parsed, a file ``--fix`` cannot write); the other files are still checked.

Detection reads the code's meaning, not its text: a name counts as Keras when libcst's
qualified names resolve it through the file's imports to ``keras``, ``tensorflow.keras``
(also ``tensorflow.compat.v1.keras`` and ``tensorflow.python.keras``); ``tf_keras`` is Keras 2
by choice and is not flagged. Heuristics where meaning cannot be read (what kind of object
receives ``.reset_states()``, ``.predict(...)``, ``.save(...)``) are described by
:func:`check_source`; a case that they cannot decide is left out rather than guessed.

See chapter 12.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.metadata import (
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from lstm_utils.migration import idiom

# ``main`` is the console script's entry point (``lstm-migrate = "lstm_utils.migrate:main"``), not a
# function for chapters, so it is public here but not listed for ``lstm_utils`` to export.
__all__ = ["Finding", "check_source", "fix_source"]

_KERAS_PREFIXES = (
    "tensorflow.compat.v1.keras.",
    "tensorflow.compat.v2.keras.",
    "tensorflow.python.keras.",
    "tensorflow.keras.",
    "keras.",
)
_BACKEND_FUNCTIONS = {
    "get_value": "backend_get_value",
    "set_value": "backend_set_value",
    "variable": "backend_variable",
}
_RECURRENT = {"LSTM", "GRU", "SimpleRNN", "RNN", "CuDNNLSTM", "CuDNNGRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"}
_WRAPPERS = {"Bidirectional", "TimeDistributed"}
_CUDNN = {"CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU"}
_MODEL_FACTORIES = {"Sequential", "Model", "load_model", "clone_model", "model_from_json", "model_from_config"}
_INPUTS = {"Input", "InputLayer"}
_SAVE_SUFFIXES = (".keras", ".h5", ".hdf5")
_H5_SUFFIXES = (".h5", ".hdf5")
_MARK = "# lstm-migrate:"
_PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
_HELPER = "reset_rnn_states"
_HELPER_SOURCE = f'''def {_HELPER}(model):
    """Reset every stateful layer of a Keras 3 model, nested models and Bidirectional included.

    Keras 3 has no Model.reset_states(); this does what Keras 2's did (added by lstm-migrate).
    """
    for layer in model.layers:
        if hasattr(layer, "layers"):
            {_HELPER}(layer)
        elif getattr(layer, "stateful", False) and hasattr(layer, "reset_states"):
            layer.reset_states()
'''


@dataclass(frozen=True)
class Finding:
    """One Keras 2 idiom found in source code, with where it is and what to write instead.

    See chapter 12.

    Attributes
    ----------
    name : str
        The idiom's name in :data:`lstm_utils.migration.IDIOMS`.
    line, column : int
        Where the idiom's code starts, both counted from 1 (in a notebook: within the cell).
    filename : str
        The file, as given (``"<string>"`` for :func:`check_source` by default).
    cell : int or None
        In a notebook, the cell's number counted from 1 over all cells; None in a ``.py`` file.
    fixable : bool
        Whether :func:`fix_source` (``--fix``) rewrites this occurrence.

    Examples
    --------
    >>> finding = check_source("model.reset_states()\\n", "train.py")[0]
    >>> finding.location, finding.name, finding.fixable
    ('train.py:1:1', 'model_reset_states', True)
    """

    name: str
    line: int
    column: int
    filename: str = "<string>"
    cell: int | None = None
    fixable: bool = False

    @property
    def location(self) -> str:
        """``file:line:col``, or ``file:cell N:line:col`` in a notebook."""
        cell = "" if self.cell is None else f"cell {self.cell}:"
        return f"{self.filename}:{cell}{self.line}:{self.column}"

    @property
    def message(self) -> str:
        """What the code does on Keras 3, and what to write instead (from the registry)."""
        entry = idiom(self.name)
        return f"{entry.on_keras3} -> {entry.replacement}"

    def __str__(self) -> str:
        return f"{self.location}: {self.name}: {self.message}"


# ---------------------------------------------------------------------------------------------
# Reading the code's meaning


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _keyword(call: cst.Call, name: str) -> cst.Arg | None:
    return next((arg for arg in call.args if arg.keyword is not None and arg.keyword.value == name), None)


def _positional(call: cst.Call) -> list[cst.Arg]:
    return [arg for arg in call.args if arg.keyword is None and not arg.star]


def _is_true(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "True"


def _is_none(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Name) and node.value == "None"


def _string_value(node: cst.BaseExpression) -> str | None:
    """The text of a plain string literal (concatenations too); None for anything else."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _path_tail(node: cst.BaseExpression) -> str | None:
    """The end of a path expression: a string literal, or the literal text closing an f-string."""
    value = _string_value(node)
    if value is not None:
        return value
    if isinstance(node, cst.FormattedString) and node.parts and isinstance(node.parts[-1], cst.FormattedStringText):
        return node.parts[-1].value
    return None


def _terminal(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def _looks_like_model(node: cst.BaseExpression) -> bool:
    name = _terminal(node)
    return name is not None and name.lower().endswith("model")


@dataclass
class _Hit:
    name: str
    node: cst.CSTNode
    fix: Callable[[cst.CSTNode], cst.CSTNode] | None = None
    statement: bool = False  # the fix replaces the SimpleStatementLine ``node`` (reset_states(states=...))
    needs_keras: bool = False
    needs_helper: bool = False
    line: int = 0
    column: int = 0


@dataclass
class _ClassInfo:
    node: cst.ClassDef
    methods: set[str] = field(default_factory=set)
    attributes: dict[str, list[cst.BaseExpression]] = field(default_factory=dict)


class _Collector(cst.CSTVisitor):
    """Finds every idiom of a module (one pass for the classes, one for the idioms)."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider, ScopeProvider, ParentNodeProvider, PositionProvider)

    def __init__(self, wrapper: MetadataWrapper) -> None:
        super().__init__()
        self.wrapper = wrapper
        self.hits: list[_Hit] = []
        self.classes: dict[str, _ClassInfo] = {}
        self.class_stack: list[_ClassInfo] = []
        self.stateful_file = False
        self.none_time_inputs: set[str] = set()  # names bound to Input((None, F)) and the like
        self.saved_weights: set[str] = set()  # save_weights paths --fix renames (load_weights follows)
        self._prepass = True
        self.keras_binding = "unbound"  # what the module-level name ``keras`` is: keras3 / unbound / other
        self.cudnn_imports: dict[str, str] = {}  # local name -> original (CuDNNLSTM/CuDNNGRU)
        self.backend_imports: set[str] = set()  # local names imported from a Keras backend module

    # -- metadata helpers ------------------------------------------------------------------------
    def qualified(self, node: cst.CSTNode) -> set[str]:
        names = self.get_metadata(QualifiedNameProvider, node, set())
        return {q.name for q in names}

    def keras_path(self, node: cst.CSTNode, depth: int = 0) -> str | None:
        """The path below the Keras package (``layers.LSTM``) that ``node`` resolves to, if Keras.

        Follows the imports (libcst's qualified names) and one-value aliases (``K = tf.keras.backend``).
        Only dotted names count: ``LSTM(4).get_initial_state`` is a method, not a Keras name.
        """
        root_of: cst.CSTNode = node
        while isinstance(root_of, cst.Attribute):
            root_of = root_of.value
        if not isinstance(root_of, cst.Name):
            return None
        for name in sorted(self.qualified(node)):
            for prefix in _KERAS_PREFIXES:
                if name.startswith(prefix):
                    return name[len(prefix) :]
        chain: list[str] = []
        root: cst.CSTNode = node
        while isinstance(root, cst.Attribute):
            chain.insert(0, root.attr.value)
            root = root.value
        if isinstance(root, cst.Name) and depth < 5:
            values = self.name_values(root)
            if values is not None and len(values) == 1 and isinstance(values[0], (cst.Name, cst.Attribute)):
                base = self.keras_path(values[0], depth + 1)
                if base is not None:
                    return ".".join([base, *chain])
        return None

    def unresolved(self, node: cst.CSTNode) -> bool:
        """Neither imported nor assigned in the file (code written against star imports, snippets)."""
        return not self.qualified(node)

    def keras_layer(self, func: cst.BaseExpression, names: set[str] | None = None) -> str | None:
        """The class name if ``func`` is a Keras layer class (among ``names`` when given)."""
        path = self.keras_path(func)
        terminal = _terminal(func)
        if path is not None and terminal is not None and path.split(".")[0] == "layers":
            return terminal if names is None or terminal in names else None
        if path is None and terminal in _RECURRENT | _WRAPPERS and self.unresolved(func):
            return terminal if names is None or terminal in names else None
        return None

    # -- what kind of object an expression is: layer, model, user (a class of the file), unknown ----
    def class_kind(self, info: _ClassInfo, depth: int = 0) -> str:
        for base in info.node.bases:
            path = self.keras_path(base.value)
            terminal = _terminal(base.value)
            if path is not None and terminal in {"Model", "Sequential"}:
                return "model"
            if path is not None and (path.split(".")[0] == "layers" or terminal == "Layer"):
                return "layer"
            if isinstance(base.value, cst.Name) and base.value.value in self.classes and depth < 10:
                kind = self.class_kind(self.classes[base.value.value], depth + 1)
                if kind != "user":
                    return kind
        return "user"

    def value_kind(self, value: cst.BaseExpression, depth: int = 0) -> str:
        if depth > 10:
            return "unknown"
        if isinstance(value, cst.Call):
            func = value.func
            if isinstance(func, cst.Call):
                return "tensor"
            path = self.keras_path(func)
            terminal = _terminal(func)
            if path is not None and terminal in _MODEL_FACTORIES:
                return "model"
            if self.keras_layer(func) is not None:
                return "layer"
            if isinstance(func, cst.Attribute) and func.attr.value == "get_layer":
                return "layer"
            if isinstance(func, cst.Name) and func.value in self.classes:
                return self.class_kind(self.classes[func.value])
            return "unknown"
        if isinstance(value, cst.Subscript) and isinstance(value.value, cst.Attribute):
            return "layer" if value.value.attr.value == "layers" else "unknown"
        if isinstance(value, cst.Attribute) and value.attr.value in {"cell", "forward_layer", "backward_layer"}:
            return "layer"
        if isinstance(value, (cst.Name, cst.Attribute)):
            return self.kind(value, depth + 1)
        return "unknown"

    def enclosing_class(self, node: cst.CSTNode) -> _ClassInfo | None:
        current: cst.CSTNode | None = node
        while current is not None:
            current = self.get_metadata(ParentNodeProvider, current, None)
            if isinstance(current, cst.ClassDef):
                return self.classes.get(current.name.value)
        return None

    def name_values(self, node: cst.Name) -> list[cst.BaseExpression] | None:
        """The values assigned to a name where it is used; None when some binding is not ``name = value``."""
        scope = self.get_metadata(ScopeProvider, node, None)
        if scope is None:
            return None
        try:
            assignments = scope[node.value]
        except Exception:  # libcst raises on names it cannot place
            return None
        values: list[cst.BaseExpression] = []
        for assignment in assignments:
            target = getattr(assignment, "node", None)
            parent = self.get_metadata(ParentNodeProvider, target, None) if target is not None else None
            if isinstance(parent, cst.AssignTarget):
                statement = self.get_metadata(ParentNodeProvider, parent, None)
                if isinstance(statement, cst.Assign) and len(statement.targets) == 1:
                    values.append(statement.value)
                    continue
            if isinstance(parent, cst.AnnAssign) and parent.value is not None and parent.target is target:
                values.append(parent.value)
                continue
            if isinstance(target, cst.ClassDef):
                continue
            return None
        return values

    def kind(self, node: cst.BaseExpression, depth: int = 0) -> str:
        """``layer``, ``model``, ``user``, ``tensor`` or ``unknown`` (see check_source's notes)."""
        if isinstance(node, cst.Name):
            if node.value == "self":
                info = self.enclosing_class(node)
                return self.class_kind(info) if info is not None else "unknown"
            if self.is_module(node):
                return "module"
            values = self.name_values(node)
            if not values:
                return "unknown"
            kinds = {self.value_kind(value, depth + 1) for value in values}
            return kinds.pop() if len(kinds) == 1 else "unknown"
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
            info = self.enclosing_class(node)
            if info is None:
                return "unknown"
            if node.attr.value == "model" and self.is_callback(info):
                return "model"
            values = info.attributes.get(node.attr.value)
            if not values:
                return "unknown"
            kinds = {self.value_kind(value, depth + 1) for value in values}
            return kinds.pop() if len(kinds) == 1 else "unknown"
        return self.value_kind(node, depth + 1)

    def is_module(self, node: cst.Name) -> bool:
        """The name is bound by ``import x`` (a module: ``lstm_utils.reset_states(model)`` is a function call)."""
        scope = self.get_metadata(ScopeProvider, node, None)
        try:
            assignments = scope[node.value] if scope is not None else set()
        except Exception:  # libcst raises on names it cannot place
            return False
        return any(isinstance(getattr(assignment, "node", None), cst.Import) for assignment in assignments)

    def is_callback(self, info: _ClassInfo) -> bool:
        for base in info.node.bases:
            terminal = _terminal(base.value)
            if terminal is not None and terminal.endswith("Callback"):
                return True
        return False

    def receiver_is_model(self, receiver: cst.BaseExpression) -> bool:
        kind = self.kind(receiver)
        return kind == "model" or (kind == "unknown" and _looks_like_model(receiver))

    def position(self, node: cst.CSTNode) -> tuple[int, int]:
        where = self.get_metadata(PositionProvider, node)
        return where.start.line, where.start.column + 1

    def add(self, name: str, node: cst.CSTNode, **kwargs: Any) -> None:
        if not self._prepass:
            line, column = self.position(node)
            self.hits.append(_Hit(name, node, **kwargs, line=line, column=column))

    # -- pre-pass: classes, self.attributes, stateful layers, Inputs with a free time axis -------
    def run(self) -> None:
        self.wrapper.visit(self)
        self._prepass = False
        self.wrapper.visit(self)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if self._prepass:
            info = _ClassInfo(node)
            for statement in node.body.body:
                if isinstance(statement, cst.FunctionDef):
                    info.methods.add(statement.name.value)
            self.classes.setdefault(node.name.value, info)
        self.class_stack.append(self.classes.get(node.name.value, _ClassInfo(node)))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.class_stack.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        if self._prepass:
            for target in node.targets:
                self._record_self_attribute(target.target, node.value)
                if isinstance(target.target, cst.Name) and self._free_time_input(node.value):
                    self.none_time_inputs.add(target.target.value)
            return
        for target in node.targets:
            self._check_state_replacement(target.target)

    def _record_self_attribute(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if (
            self.class_stack
            and isinstance(target, cst.Attribute)
            and isinstance(target.value, cst.Name)
            and target.value.value == "self"
        ):
            self.class_stack[-1].attributes.setdefault(target.attr.value, []).append(value)

    def _free_time_input(self, value: cst.BaseExpression) -> bool:
        """``Input((None, F))``, ``Input(shape=(None, F))`` or ``Input(batch_shape=(B, None, F))``."""
        if not isinstance(value, cst.Call) or _terminal(value.func) not in _INPUTS:
            return False
        if self.keras_path(value.func) is None and not self.unresolved(value.func):
            return False
        positional = _positional(value)
        shape = _keyword(value, "shape") or (positional[0] if positional else None)
        batch_shape = _keyword(value, "batch_shape")
        return self._none_at(shape.value if shape else None, 0) or self._none_at(
            batch_shape.value if batch_shape else None, 1
        )

    @staticmethod
    def _none_at(shape: cst.BaseExpression | None, index: int) -> bool:
        if isinstance(shape, (cst.Tuple, cst.List)) and len(shape.elements) > index:
            return _is_none(shape.elements[index].value)
        return False

    # -- the idioms --------------------------------------------------------------------------------
    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.module is None or isinstance(node.names, cst.ImportStar):
            return
        module = _code(node.module)
        keras_module = any(f"{module}.".startswith(prefix) for prefix in _KERAS_PREFIXES)
        if not keras_module:
            return
        for alias in node.names:
            name = _code(alias.name)
            local = _code(alias.asname.name) if alias.asname else name
            if module.endswith("layers") and name in _CUDNN:
                self.cudnn_imports[local] = name
                self.add("cudnn_lstm", alias, fix=self._fix_cudnn_alias)
            if module.endswith("backend") and name in _BACKEND_FUNCTIONS:
                self.backend_imports.add(local)

    def visit_Import(self, node: cst.Import) -> None:
        if self._prepass:
            for alias in node.names:
                target = _code(alias.name)
                if alias.asname is None and target.split(".")[0] == "keras":
                    self.keras_binding = "keras3"
                elif alias.asname is not None and _code(alias.asname.name) == "keras":
                    self.keras_binding = "keras3" if target in {"keras", "tensorflow.keras"} else "other"

    def leave_ImportFrom(self, original_node: cst.ImportFrom) -> None:
        if not self._prepass or isinstance(original_node.names, cst.ImportStar):
            return
        module = _code(original_node.module) if original_node.module else ""
        for alias in original_node.names:
            local = _code(alias.asname.name) if alias.asname else _code(alias.name)
            if local == "keras":
                full = f"{module}.{_code(alias.name)}"
                self.keras_binding = "keras3" if full == "tensorflow.keras" else "other"

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if self._prepass:
            return
        if node.attr.value in _CUDNN and self.keras_path(node) is not None:
            self.add("cudnn_lstm", node, fix=self._fix_cudnn_attribute)

    def visit_Name(self, node: cst.Name) -> None:
        if self._prepass or node.value not in self.cudnn_imports:
            return
        parent = self.get_metadata(ParentNodeProvider, node, None)
        if isinstance(parent, (cst.ImportAlias, cst.AsName)):
            return
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            return
        if self.keras_path(node) is not None:
            self.add("cudnn_lstm", node, fix=self._fix_cudnn_name)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if self._prepass or not isinstance(node.operator, cst.Add):
            return
        left, right = node.left, node.right
        if (
            isinstance(left, cst.Subscript)
            and isinstance(right, cst.List)
            and any(isinstance(element.slice, cst.Slice) for element in left.slice)
            and self._is_return_state_result(left.value)
        ):
            self.add("return_state_tuple", node)

    def _is_return_state_result(self, node: cst.BaseExpression) -> bool:
        if not isinstance(node, cst.Name):
            return False
        values = self.name_values(node)
        if not values:
            return False
        return all(isinstance(value, cst.Call) and self._returns_state(value.func) for value in values)

    def _returns_state(self, layer: cst.BaseExpression, depth: int = 0) -> bool:
        """``layer`` is ``LSTM(..., return_state=True)``, or a name bound to one."""
        if isinstance(layer, cst.Call):
            found = _keyword(layer, "return_state")
            return found is not None and _is_true(found.value) and self.keras_layer(layer.func) is not None
        if isinstance(layer, cst.Name) and depth < 5:
            values = self.name_values(layer)
            return bool(values) and all(self._returns_state(value, depth + 1) for value in values or [])
        if isinstance(layer, cst.Attribute) and isinstance(layer.value, cst.Name) and layer.value.value == "self":
            info = self.enclosing_class(layer)
            values = info.attributes.get(layer.attr.value) if info else None
            return bool(values) and all(self._returns_state(value, depth + 1) for value in values or [])
        return False

    def _check_state_replacement(self, target: cst.BaseExpression) -> None:
        """``layer.states[i] = ...`` where ``layer`` is a layer (see check_source)."""
        if not (
            isinstance(target, cst.Subscript)
            and isinstance(target.value, cst.Attribute)
            and target.value.attr.value == "states"
        ):
            return
        owner = target.value.value
        kind = self.kind(owner)
        name = (_terminal(owner) or "").lower()
        layer_like = any(word in name for word in ("lstm", "gru", "rnn", "layer"))
        if kind == "layer" or (kind == "unknown" and layer_like):
            self.add("state_list_replacement", target)

    def visit_Call(self, node: cst.Call) -> None:
        stateful = _keyword(node, "stateful")
        if self._prepass:
            if stateful is not None and _is_true(stateful.value):
                self.stateful_file = True
            return
        func = node.func
        layer = self.keras_layer(func)
        if layer is not None:
            self._layer_keywords(node, layer)
        path = self.keras_path(func)
        if path is not None:
            parts = path.split(".")
            if len(parts) == 2 and parts[0] == "backend" and parts[1] in _BACKEND_FUNCTIONS:
                self._backend_call(node, parts[1])
            if parts[-1] == "load_model":
                self._load_model(node)
            if parts[-1] == "save_model":
                self._save_call(node, node.args[1:] if len(_positional(node)) >= 2 else [], None)
        if isinstance(func, cst.Attribute):
            self._method_call(node, func.value, func.attr.value)

    def _layer_keywords(self, node: cst.Call, layer: str) -> None:
        if _keyword(node, "batch_input_shape") is not None:
            self.add("batch_input_shape", node)
        if layer not in _INPUTS and _keyword(node, "batch_size") is not None:
            self.add("layer_batch_size", node)
        if layer in _RECURRENT and _keyword(node, "time_major") is not None:
            self.add("time_major", node)
        unroll = _keyword(node, "unroll")
        if layer in _RECURRENT and unroll is not None and _is_true(unroll.value) and self._free_time_axis(node):
            self.add("unroll_free_time_axis", node)

    def _free_time_axis(self, layer_call: cst.Call) -> bool:
        """The layer is given a free time axis where it is built: input_shape=(None, F), applied
        to a name bound to Input((None, F)), or next to one in a Sequential list."""
        shape = _keyword(layer_call, "input_shape")
        if shape is not None and self._none_at(shape.value, 0):
            return True
        batch_shape = _keyword(layer_call, "batch_input_shape")
        if batch_shape is not None and self._none_at(batch_shape.value, 1):
            return True
        parent = self.get_metadata(ParentNodeProvider, layer_call, None)
        if isinstance(parent, cst.Call) and parent.func is layer_call:
            argument = _positional(parent)
            if argument and isinstance(argument[0].value, cst.Name):
                return argument[0].value.value in self.none_time_inputs
            return bool(argument) and self._free_time_input(argument[0].value)
        element = parent
        container = self.get_metadata(ParentNodeProvider, element, None) if element is not None else None
        if isinstance(element, cst.Element) and isinstance(container, cst.List):
            first = container.elements[0].value if container.elements else None
            if isinstance(first, cst.Name):
                return first.value in self.none_time_inputs
            return first is not None and self._free_time_input(first)
        return False

    def _backend_call(self, node: cst.Call, function: str) -> None:
        name = _BACKEND_FUNCTIONS[function]
        fixer = {"get_value": self._fix_get_value, "set_value": self._fix_set_value, "variable": self._fix_variable}
        fix = fixer[function](node)
        if fix is None or self.keras_binding == "other":
            self.add(name, node)
        else:
            self.add(name, node, fix=fix, needs_keras=function != "set_value")

    def _load_model(self, node: cst.Call) -> None:
        positional = _positional(node)
        path = _keyword(node, "filepath") or (positional[0] if positional else None)
        tail = _path_tail(path.value) if path is not None else None
        if tail is not None and tail.lower().endswith(_H5_SUFFIXES):
            self.add("load_keras2_h5", node)

    def _method_call(self, node: cst.Call, receiver: cst.BaseExpression, method: str) -> None:
        if method == "reset_states":
            self._reset_states(node, receiver)
        elif method == "get_initial_state":
            self._get_initial_state(node, receiver)
        elif method == "predict":
            positional = _positional(node)
            if (
                self.stateful_file
                and _keyword(node, "batch_size") is None
                and len(positional) < 2
                and self.receiver_is_model(receiver)
            ):
                self.add("predict_default_batch_size", node)
        elif method == "save" and self.receiver_is_model(receiver):
            positional = _positional(node)
            self._save_call(node, positional[:1], _keyword(node, "filepath"))
        elif method == "save_weights" and self.kind(receiver) not in {"user", "module"}:
            self._save_weights(node)

    def _reset_states(self, node: cst.Call, receiver: cst.BaseExpression) -> None:
        kind = self.kind(receiver)
        if not node.args:
            if self.receiver_is_model(receiver):
                self.add("model_reset_states", node, fix=self._fix_model_reset, needs_helper=True)
            return
        if kind in {"user", "model", "tensor", "module"}:
            return
        states = _keyword(node, "states")
        positional = _positional(node)
        if states is None and len(positional) == 1 and len(node.args) == 1:
            states = positional[0]
        if states is None:
            return
        statement = self._statement_of(node)
        fix = self._fix_reset_with_states(receiver, states.value) if statement is not None else None
        if fix is None:
            self.add("reset_states_with_states", node)
        else:
            self.add("reset_states_with_states", statement or node, fix=fix, statement=True)

    def _statement_of(self, call: cst.Call) -> cst.SimpleStatementLine | None:
        """The statement line when ``call`` is its only statement, as a bare expression."""
        expression = self.get_metadata(ParentNodeProvider, call, None)
        line = self.get_metadata(ParentNodeProvider, expression, None) if expression is not None else None
        if isinstance(expression, cst.Expr) and isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
            return line
        return None

    def _get_initial_state(self, node: cst.Call, receiver: cst.BaseExpression) -> None:
        if self.kind(receiver) in {"user", "model", "tensor", "module"}:
            return
        positional = _positional(node)
        inputs = _keyword(node, "inputs")
        dtype = _keyword(node, "dtype") or (positional[2] if len(positional) > 2 else None)
        batch = _keyword(node, "batch_size") or (positional[1] if len(positional) > 1 else None)
        tensor = positional[0] if positional else inputs
        if tensor is not None and _is_none(tensor.value):
            tensor = None
        fix = self._fix_initial_state(node, tensor, batch)
        needs_keras = fix is not None and tensor is not None and batch is None
        if positional and not _is_none(positional[0].value):
            self.add("layer_get_initial_state_tensor", node, fix=fix, needs_keras=needs_keras)
        elif inputs is not None:
            self.add("cell_get_initial_state_inputs", node, fix=fix, needs_keras=needs_keras)
        elif dtype is not None:
            self.add("get_initial_state_dtype", node, fix=fix, needs_keras=needs_keras)

    def _save_call(self, node: cst.Call, positional: Sequence[cst.Arg], keyword: cst.Arg | None) -> None:
        path = keyword or (positional[0] if positional else None)
        tail = _path_tail(path.value) if path is not None else None
        save_format = _keyword(node, "save_format")
        fmt = _string_value(save_format.value) if save_format is not None else None
        if tail is None and fmt is None:
            return
        lowered = (tail or "").lower()
        if fmt in {"h5", "hdf5"} or lowered.endswith(_H5_SUFFIXES):
            if self.stateful_file:
                self.add("save_h5_state", node)
        elif fmt is not None or not lowered.endswith(".keras"):
            self.add("save_savedmodel_dir", node)

    def _save_weights(self, node: cst.Call) -> None:
        positional = _positional(node)
        path = _keyword(node, "filepath") or (positional[0] if positional else None)
        if path is None:
            return
        value = _string_value(path.value)
        tail = value if value is not None else _path_tail(path.value)
        if tail is None or tail.endswith(".weights.h5"):
            return
        basename = tail.replace("\\", "/").rsplit("/", 1)[-1]
        fixable = value is not None and isinstance(path.value, cst.SimpleString)
        fixable = fixable and (basename.lower().endswith(_H5_SUFFIXES) or "." not in basename)
        if fixable and value is not None:
            self.saved_weights.add(value)
            self.add("save_weights_h5", path.value, fix=self._fix_weights_path)
        else:
            self.add("save_weights_h5", node)

    # -- the fixes -----------------------------------------------------------------------------------
    @staticmethod
    def _keras_attribute(*names: str) -> cst.BaseExpression:
        expression: cst.BaseExpression = cst.Name("keras")
        for name in names:
            expression = cst.Attribute(expression, cst.Name(name))
        return expression

    def _fix_get_value(self, node: cst.Call) -> Callable[[cst.CSTNode], cst.CSTNode] | None:
        if len(node.args) != 1 or node.args[0].keyword is not None or node.args[0].star:
            return None

        def fix(updated: cst.CSTNode) -> cst.CSTNode:
            assert isinstance(updated, cst.Call)
            return updated.with_changes(func=self._keras_attribute("ops", "convert_to_numpy"))

        return fix

    def _fix_set_value(self, node: cst.Call) -> Callable[[cst.CSTNode], cst.CSTNode] | None:
        positional = _positional(node)
        if len(positional) != 2 or len(node.args) != 2:
            return None

        def fix(updated: cst.CSTNode) -> cst.CSTNode:
            assert isinstance(updated, cst.Call)
            variable = updated.args[0].value
            if not isinstance(variable, (cst.Name, cst.Attribute, cst.Subscript, cst.Call)):
                variable = variable.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            value = updated.args[1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            return updated.with_changes(func=cst.Attribute(variable, cst.Name("assign")), args=[value])

        return fix

    def _fix_variable(self, node: cst.Call) -> Callable[[cst.CSTNode], cst.CSTNode] | None:
        """``K.variable(a, dtype, name)`` -> ``keras.Variable(a, dtype=..., name=...)`` (the value first)."""
        names = ("value", "dtype", "name")
        plan: list[str] = []
        for index, arg in enumerate(node.args):
            keyword = arg.keyword.value if arg.keyword is not None else (names[index] if index < 3 else "")
            if arg.star or keyword not in names or (keyword == "value" and index != 0):
                return None
            plan.append(keyword)
        if not plan or plan[0] != "value":
            return None
        equal = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))

        def fix(updated: cst.CSTNode) -> cst.CSTNode:
            assert isinstance(updated, cst.Call)
            args = [updated.args[0].with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT)]
            for keyword, arg in zip(plan[1:], updated.args[1:], strict=True):
                args.append(
                    arg if arg.keyword is not None else arg.with_changes(keyword=cst.Name(keyword), equal=equal)
                )
            return updated.with_changes(func=self._keras_attribute("Variable"), args=args)

        return fix

    def _fix_model_reset(self, updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.Call)
        assert isinstance(updated.func, cst.Attribute)
        receiver = updated.func.value.with_changes(lpar=[], rpar=[])
        return updated.with_changes(func=cst.Name(_HELPER), args=[cst.Arg(receiver)])

    def _fix_reset_with_states(
        self, receiver: cst.BaseExpression, states: cst.BaseExpression
    ) -> Callable[[cst.CSTNode], cst.CSTNode | cst.FlattenSentinel[Any]] | None:
        owner = _code(receiver)
        if _is_none(states):
            code = f"{owner}.reset_states()"
        elif (
            isinstance(states, (cst.List, cst.Tuple))
            and states.elements
            and not any(isinstance(element, cst.StarredElement) for element in states.elements)
        ):
            code = "; ".join(
                f"{owner}.states[{index}].assign({_code(element.value)})"
                for index, element in enumerate(states.elements)
            )
        else:
            code = (
                f"for _variable, _value in zip({owner}.states, {_code(states)}, strict=True): _variable.assign(_value)"
            )

        def fix(updated: cst.CSTNode) -> cst.CSTNode:
            assert isinstance(updated, cst.SimpleStatementLine)
            new = cst.parse_statement(code + "\n")
            trailing = updated.trailing_whitespace
            if isinstance(new, cst.SimpleStatementLine):
                return new.with_changes(leading_lines=updated.leading_lines, trailing_whitespace=trailing)
            assert isinstance(new, cst.For)
            assert isinstance(new.body, cst.SimpleStatementSuite)
            return new.with_changes(
                leading_lines=updated.leading_lines, body=new.body.with_changes(trailing_whitespace=trailing)
            )

        return fix

    def _fix_initial_state(
        self, node: cst.Call, tensor: cst.Arg | None, batch: cst.Arg | None
    ) -> Callable[[cst.CSTNode], cst.CSTNode] | None:
        if any(arg.star for arg in node.args):
            return None
        if batch is None and tensor is None:
            return None
        if tensor is not None and self.keras_binding == "other":
            return None
        batch_index = node.args.index(batch) if batch is not None else None
        tensor_index = node.args.index(tensor) if tensor is not None else None

        def fix(updated: cst.CSTNode) -> cst.CSTNode:
            assert isinstance(updated, cst.Call)
            if batch_index is not None:
                value = updated.args[batch_index].value
            else:
                assert tensor_index is not None
                shape = cst.Call(self._keras_attribute("ops", "shape"), [cst.Arg(updated.args[tensor_index].value)])
                value = cst.Subscript(shape, [cst.SubscriptElement(cst.Index(cst.Integer("0")))])
            equal = cst.AssignEqual(
                whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
            )
            return updated.with_changes(args=[cst.Arg(value, keyword=cst.Name("batch_size"), equal=equal)])

        return fix

    def _fix_cudnn_attribute(self, updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.Attribute)
        return updated.with_changes(attr=cst.Name(_CUDNN[updated.attr.value]))

    def _fix_cudnn_name(self, updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.Name)
        original = self.cudnn_imports[updated.value]
        return updated.with_changes(value=_CUDNN[original]) if updated.value == original else updated

    def _fix_cudnn_alias(self, updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.ImportAlias)
        return updated.with_changes(name=cst.Name(_CUDNN[_code(updated.name)]))

    def _fix_weights_path(self, updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.SimpleString)
        return updated.with_changes(value=_weights_literal(updated))


def _weights_literal(node: cst.SimpleString) -> str:
    """The same string literal with its path ending in ``.weights.h5``."""
    quote = node.quote
    prefix = node.prefix
    body = node.value[len(prefix) + len(quote) : -len(quote)]
    lowered = body.lower()
    for suffix in _H5_SUFFIXES:
        if lowered.endswith(suffix):
            body = body[: -len(suffix)]
            break
    return f"{prefix}{quote}{body}.weights.h5{quote}"


class _Fixer(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (ParentNodeProvider,)

    def __init__(self, collector: _Collector, fixes: dict[int, _Hit]) -> None:
        super().__init__()
        self.collector = collector
        self.fixes = fixes

    # A fix may return another type of node than it is given (a Call for an Attribute's call...),
    # which libcst's generic signature (same type in, same type out) does not describe.
    def on_leave(  # type: ignore[override]
        self, original_node: cst.CSTNode, updated_node: cst.CSTNode
    ) -> cst.CSTNode | cst.RemovalSentinel:
        hit = self.fixes.get(id(original_node))
        if hit is not None and hit.fix is not None:
            return hit.fix(updated_node)
        if isinstance(original_node, cst.SimpleString) and isinstance(updated_node, cst.SimpleString):
            parent = self.get_metadata(ParentNodeProvider, original_node, None)
            call = self.get_metadata(ParentNodeProvider, parent, None) if parent is not None else None
            if (
                isinstance(call, cst.Call)
                and isinstance(call.func, cst.Attribute)
                and call.func.attr.value == "load_weights"
                and updated_node.evaluated_value in self.collector.saved_weights
            ):
                return updated_node.with_changes(value=_weights_literal(updated_node))
        return updated_node


# ---------------------------------------------------------------------------------------------
# check_source and fix_source


def _parse(source: str, filename: str) -> MetadataWrapper:
    if not isinstance(source, str):
        raise TypeError(f"source must be a str of Python code, got {type(source).__name__}")
    if not isinstance(filename, str):
        raise TypeError(f"filename must be a str, got {type(filename).__name__}")
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        raise ValueError(
            f"{filename}: cannot parse: line {error.raw_line}, column {error.raw_column + 1}: {error.message}"
        ) from error
    return MetadataWrapper(module)


# Every detector needs one of these identifiers in the code (a keyword, a method, an imported
# name); a file without any is parsed (a syntax error is still reported) but not analysed, which
# spares the metadata passes (most of the time on a large file).
_TRIGGERS = (
    "states",
    "get_value",
    "set_value",
    "variable",
    "get_initial_state",
    "CuDNN",
    "predict",
    "save",
    "load_model",
    "batch_input_shape",
    "batch_size",
    "time_major",
    "unroll",
    "return_state",
)


def _collect(source: str, filename: str) -> _Collector:
    collector = _Collector(_parse(source, filename))
    if any(trigger in source for trigger in _TRIGGERS):
        collector.run()
    return collector


def _findings(collector: _Collector, filename: str) -> list[Finding]:
    findings = []
    for hit in collector.hits:
        fixable = hit.fix is not None and idiom(hit.name).fixable
        findings.append(Finding(hit.name, hit.line, hit.column, filename, None, fixable))
    return sorted(set(findings), key=lambda f: (f.line, f.column, f.name))


def check_source(source: str, filename: str = "<string>") -> list[Finding]:
    """The Keras 2 state idioms in a piece of Python source code, in the order they appear.

    Reads the code with libcst (nothing is run or imported). Detection rules:

    - Keyword arguments of Keras layer calls: ``batch_input_shape=``, ``batch_size=`` (not on
      ``Input``/``InputLayer``), ``time_major=``, and ``unroll=True`` where the layer is given
      a free time axis in the same expression (``input_shape=(None, F)``, applied to a name bound
      to ``Input((None, F))``, or after one in a ``Sequential([...])`` list).
    - ``K.get_value``/``K.set_value``/``K.variable`` where ``K`` resolves through the imports to
      a Keras backend module (``import keras.backend as K``, ``from tensorflow.keras import
      backend``, ``tf.keras.backend.get_value``, ``from keras.backend import get_value``).
    - ``CuDNNLSTM``/``CuDNNGRU`` from a Keras ``layers`` module (imports and uses).
    - ``load_model("*.h5")``; ``save_model(model, "dir")``.
    - Method calls, by what the receiver is: a *layer* (bound in the file to a Keras layer
      call, ``model.layers[i]``, ``model.get_layer(...)``, ``.cell``, or ``self.x`` assigned
      one of those), a *model* (bound to ``Sequential``/``Model``/``load_model``..., an instance
      of a class of the file deriving from a Keras model, ``self.model`` in a ``...Callback``
      class, or, when nothing in the file binds it, a name ending in ``model``), or a *user*
      object (an instance of a class of the file not deriving from Keras), never flagged.
      ``model.reset_states()`` on models only (a layer's ``reset_states()`` is Keras 3 code);
      ``x.reset_states(states=...)`` and ``x.get_initial_state(x)`` / ``inputs=`` / ``dtype=``
      on anything but models and user objects; ``model.predict(x)`` without ``batch_size`` in
      a file that builds a layer with ``stateful=True``; ``model.save("name")`` without a
      ``.keras``/``.h5`` suffix (or with ``save_format=``), and ``model.save("x.h5")`` in a file
      with a stateful layer; ``x.save_weights("m.h5")`` not ending in ``.weights.h5``.
    - ``layer.states[i] = ...`` where the owner is a layer, or unknown but named like one
      (``lstm``, ``gru``, ``rnn``, ``layer`` in its name).
    - ``outputs[1:] + [...]`` where ``outputs`` is bound to the result of a layer built with
      ``return_state=True``.

    Parameters
    ----------
    source : str
        Python source code.
    filename : str
        The name findings carry (default ``"<string>"``).

    Returns
    -------
    list of Finding
        Sorted by line and column; each idiom once per place.

    Raises
    ------
    TypeError
        If ``source`` or ``filename`` is not a str.
    ValueError
        If the source does not parse (the message names the line and column).

    Examples
    --------
    >>> code = "import keras.backend as K\\nh = K.get_value(lstm.states[0])\\n"
    >>> [str(f).split(":")[:4] for f in check_source(code, "demo.py")]
    [['demo.py', '2', '5', ' backend_get_value']]
    """
    return _findings(_collect(source, filename), filename)


def _apply_fixes(collector: _Collector) -> str:
    fixes = {id(hit.node): hit for hit in collector.hits if hit.fix is not None and idiom(hit.name).fixable}
    if not fixes:
        return collector.wrapper.module.code
    dropped = set()
    for name in collector.backend_imports:
        fixed = sum(1 for hit in fixes.values() if isinstance(hit.node, cst.Call) and _terminal(hit.node.func) == name)
        if fixed and fixed == _uses(collector, name):
            dropped.add(name)
    original = collector.wrapper.module
    module = collector.wrapper.visit(_Fixer(collector, fixes))  # statement for statement, as in ``original``
    additions: list[cst.BaseStatement] = []
    needing = [hit for hit in fixes.values() if hit.needs_keras or hit.needs_helper]
    newline = original.default_newline  # the file's own line ending, in what is added too
    if any(hit.needs_keras for hit in fixes.values()) and collector.keras_binding == "unbound":
        additions.append(cst.parse_module(f"import keras{newline}").body[0])
    if any(hit.needs_helper for hit in fixes.values()) and _HELPER not in _module_names(module):
        helper = cst.parse_module(_HELPER_SOURCE.replace("\n", newline)).body[0]
        additions.append(helper.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()]))
    if additions:
        owner = {id(node): index for index, statement in enumerate(original.body) for node in _walk(statement)}
        first_use = min(owner[id(hit.node)] for hit in needing)
        module = _insert_before(module, additions, first_use)
    if dropped:
        module = module.visit(_DropImports(dropped))
    return module.code


class _DropImports(cst.CSTTransformer):
    """``from keras.backend import get_value`` goes when every use of it was rewritten."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        if isinstance(updated_node.names, cst.ImportStar) or updated_node.module is None:
            return updated_node
        if not any(f"{_code(updated_node.module)}.".startswith(prefix) for prefix in _KERAS_PREFIXES):
            return updated_node
        if not _code(updated_node.module).endswith("backend"):
            return updated_node
        kept = [
            alias
            for alias in updated_node.names
            if (_code(alias.asname.name) if alias.asname else _code(alias.name)) not in self.names
        ]
        if len(kept) == len(updated_node.names):
            return updated_node
        if not kept:
            return cst.RemoveFromParent()
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(names=kept)


def _uses(collector: _Collector, name: str) -> int:
    """How many times a name is read in the module (imports excluded)."""
    count = 0
    parents = collector.wrapper.resolve(ParentNodeProvider)
    for node in _walk(collector.wrapper.module):
        if isinstance(node, cst.Name) and node.value == name:
            parent = parents.get(node)
            if not isinstance(parent, (cst.ImportAlias, cst.AsName)):
                count += 1
    return count


def _walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _module_names(module: cst.Module) -> set[str]:
    names = set()
    for statement in module.body:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            names.add(statement.name.value)
    return names


def _is_import_line(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body
    )


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _insert_before(module: cst.Module, additions: list[cst.BaseStatement], first_use: int) -> cst.Module:
    """New statements before the top-level statement ``first_use`` that needs them: right after the
    last import above it (so that what the file sets up before its imports, such as
    ``os.environ["KERAS_BACKEND"]``, still comes first), or after the docstring when none is."""
    body = list(module.body)
    index = 0
    for position, statement in enumerate(body[:first_use]):
        if _is_import_line(statement):
            index = position + 1
    if index == 0 and body and _is_docstring(body[0]) and first_use > 0:
        index = 1
    if index == 0 and body:  # the first statement's comments (a notebook's cell mark) go first
        first = additions[0]
        if isinstance(first, (cst.SimpleStatementLine, cst.FunctionDef)):
            kept = list(body[0].leading_lines)  # blank lines before a def only where something precedes it
            before = kept or any(line.comment is not None for line in module.header)
            additions[0] = first.with_changes(leading_lines=[*kept, *first.leading_lines] if before else [])
        body[0] = body[0].with_changes(leading_lines=[])
    if isinstance(additions[-1], cst.FunctionDef) and index < len(body):  # two blank lines after a def
        following = body[index]
        lines = list(following.leading_lines)
        blank = 0
        while blank < len(lines) and lines[blank].comment is None:
            blank += 1
        body[index] = following.with_changes(leading_lines=[cst.EmptyLine()] * max(0, 2 - blank) + lines)
    return module.with_changes(body=[*body[:index], *additions, *body[index:]])


def fix_source(source: str) -> str:
    """The source with every mechanical Keras 2 idiom rewritten for Keras 3, formatting kept.

    What each fixable idiom becomes:

    - ``model.reset_states()`` -> ``reset_rnn_states(model)``, a small function added after the
      imports that resets every stateful layer, nested models and ``Bidirectional`` included,
      and does nothing on a model without one (as Keras 2 did).
    - ``layer.reset_states(states=[h, c])`` -> ``layer.states[0].assign(h); layer.states[1].assign(c)``
      (a list that is not a literal: a ``for`` over ``zip(layer.states, states, strict=True)``;
      ``states=None``: ``layer.reset_states()``), where the call is a statement of its own.
    - ``K.get_value(v)`` -> ``keras.ops.convert_to_numpy(v)``; ``K.set_value(v, x)`` -> ``v.assign(x)``;
      ``K.variable(a)`` -> ``keras.Variable(a)`` (``dtype``, ``name`` kept as keywords).
    - ``x.get_initial_state(t)`` / ``inputs=t`` -> ``x.get_initial_state(batch_size=keras.ops.shape(t)[0])``;
      ``get_initial_state(batch_size=b, dtype=d)`` -> ``get_initial_state(batch_size=b)``.
    - ``CuDNNLSTM``/``CuDNNGRU`` -> ``LSTM``/``GRU`` (which use cuDNN when they can).
    - ``save_weights("m.h5")`` -> ``save_weights("m.weights.h5")``, and ``load_weights`` of the same name.

    ``import keras`` is added when a replacement needs it and nothing binds ``keras``. The other
    findings are left as they are (see :func:`check_source`).

    Parameters
    ----------
    source : str
        Python source code.

    Returns
    -------
    str
        The rewritten source (the same string when nothing is fixable).

    Raises
    ------
    TypeError
        If ``source`` is not a str.
    ValueError
        If it does not parse.

    Examples
    --------
    >>> print(fix_source("import keras.backend as K\\nh = K.get_value(lstm.states[0])  # read h\\n"))
    import keras.backend as K
    import keras
    h = keras.ops.convert_to_numpy(lstm.states[0])  # read h
    <BLANKLINE>
    """
    return _apply_fixes(_collect(source, "<string>"))


# ---------------------------------------------------------------------------------------------
# Notebooks: the code cells as one module, each cell after a mark line


@dataclass
class _Notebook:
    data: dict[str, Any]
    source: str  # the code cells joined, magics replaced by comments
    cells: list[tuple[int, int]]  # (cell index, first line of its code in ``source``)
    magics: list[str]


def _cell_text(cell: dict[str, Any]) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else str(text)


def _read_notebook(text: str, filename: str) -> _Notebook:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{filename}: not a notebook: broken JSON at line {error.lineno}: {error.msg}") from error
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise ValueError(f"{filename}: not a notebook: expected a JSON object with a 'cells' list")
    lines: list[str] = []
    cells: list[tuple[int, int]] = []
    magics: list[str] = []
    for index, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        code = _cell_text(cell).split("\n")
        lines.append(f"{_MARK} cell {index}")
        cells.append((index, len(lines) + 1))
        python = True
        first = code[0].strip()
        if first.startswith("%%"):
            python = first[2:].split(" ")[0] in _PYTHON_CELL_MAGICS
        for number, line in enumerate(code):
            stripped = line.lstrip()
            if not python or stripped.startswith(("%", "!")) or (number == 0 and first.startswith("%%")):
                lines.append(f"{line[: len(line) - len(stripped)]}{_MARK} magic {len(magics)}")
                magics.append(line)
            else:
                lines.append(line)
    return _Notebook(data, "\n".join(lines) + "\n", cells, magics)


def _notebook_location(notebook: _Notebook, line: int) -> tuple[int, int]:
    """(cell number counted from 1, line in the cell) of a line of the joined source."""
    cell, start = notebook.cells[0]
    for index, first in notebook.cells:
        if first <= line:
            cell, start = index, first
    return cell + 1, line - start + 1


def _split_notebook(notebook: _Notebook, fixed: str) -> dict[str, Any] | None:
    """The notebook with its code cells taken from the fixed joined source (None if unchanged)."""
    marks = {f"{_MARK} cell {index}": index for index, _ in notebook.cells}
    texts: dict[int, list[str]] = {}
    current: int | None = None
    for line in fixed.split("\n"):
        if line in marks:
            current = marks[line]
            texts[current] = []
            continue
        stripped = line.lstrip()
        restored = notebook.magics[int(stripped.split()[-1])] if stripped.startswith(f"{_MARK} magic ") else line
        if current is None:
            raise ValueError("internal error: code before the first cell mark")  # insertions go after marks
        texts[current].append(restored)
    changed = False
    data = json.loads(json.dumps(notebook.data))
    for index, _ in notebook.cells:
        cell = data["cells"][index]
        old = _cell_text(cell)
        lines = texts[index]
        if index == notebook.cells[-1][0] and lines and lines[-1] == "":
            lines = lines[:-1]  # the newline closing the joined source
        new = "\n".join(lines)
        if new != old:
            changed = True
            source = cell.get("source", "")
            cell["source"] = new.splitlines(keepends=True) if isinstance(source, list) else new
    return data if changed else None


def _dump_like(data: dict[str, Any], original: str) -> str:
    """JSON as nbformat writes it (indent 1, keys in their order, non-ASCII kept), in the file's indent."""
    second = original.split("\n", 2)[1] if original.count("\n") >= 1 else ""
    indent = len(second) - len(second.lstrip(" ")) or 1
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    return text + "\n" if original.endswith("\n") else text


# ---------------------------------------------------------------------------------------------
# The command line


class _UsageError(Exception):
    """A file that cannot be checked (exit status 2)."""


@dataclass
class _FileResult:
    findings: list[Finding]
    new_text: str | None = None  # the fixed file, when --fix/--diff changes it
    remaining: list[Finding] = field(default_factory=list)


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise _UsageError(f"{path}: cannot read: {error.strerror or error}") from error
    if b"\0" in raw:
        raise _UsageError(f"{path}: cannot check: a binary file (NUL bytes), expected Python source or a notebook")
    try:
        return raw.decode("utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8")
    except UnicodeDecodeError as error:
        raise _UsageError(f"{path}: cannot check: not UTF-8 text ({error.reason} at byte {error.start})") from error


def _check_file(path: Path, fix: bool) -> _FileResult:
    text = _read_text(path)
    name = str(path)
    if path.suffix == ".ipynb":
        try:
            notebook = _read_notebook(text, name)
        except ValueError as error:
            raise _UsageError(str(error)) from error
        if not notebook.cells:
            return _FileResult([])
        try:
            collector = _collect(notebook.source, name)
        except ValueError as error:
            raise _UsageError(_notebook_parse_error(notebook, error, name)) from error
        findings = _notebook_findings(notebook, _findings(collector, name))
        if not fix or not any(f.fixable for f in findings):
            return _FileResult(findings, None, findings)
        fixed = _apply_fixes(collector)
        data = _split_notebook(notebook, fixed)
        remaining = _notebook_findings(notebook, _findings(_collect(fixed, name), name))
        return _FileResult(findings, _dump_like(data, text) if data is not None else None, remaining)
    try:
        collector = _collect(text, name)
    except ValueError as error:
        raise _UsageError(str(error)) from error
    findings = _findings(collector, name)
    if not fix or not any(f.fixable for f in findings):
        return _FileResult(findings, None, findings)
    fixed = _apply_fixes(collector)
    remaining = _findings(_collect(fixed, name), name)
    bom = "\ufeff" if path.read_bytes().startswith(b"\xef\xbb\xbf") else ""  # kept as the file had it
    return _FileResult(findings, bom + fixed if fixed != text else None, remaining)


def _notebook_findings(notebook: _Notebook, findings: list[Finding]) -> list[Finding]:
    placed = []
    for finding in findings:
        cell, line = _notebook_location(notebook, finding.line)
        placed.append(Finding(finding.name, line, finding.column, finding.filename, cell, finding.fixable))
    return placed


def _notebook_parse_error(notebook: _Notebook, error: ValueError, name: str) -> str:
    cause = error.__cause__
    if isinstance(cause, cst.ParserSyntaxError):
        cell, line = _notebook_location(notebook, cause.raw_line)
        return f"{name}: cannot parse: cell {cell}, line {line}, column {cause.raw_column + 1}: {cause.message}"
    return str(error)


def _files(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    files: list[Path] = []
    errors: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in {".py", ".ipynb"}
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                errors.append(f"{given}: no .py files or .ipynb notebooks in this directory")
            files += found
        elif path.is_file():
            if path.suffix not in {".py", ".ipynb"}:
                errors.append(
                    f"{given}: expected a .py file, a .ipynb notebook or a directory, "
                    f"got a {path.suffix or 'file without suffix'}"
                )
            else:
                files.append(path)
        elif path.exists():
            errors.append(f"{given}: not a file or a directory")
        else:
            errors.append(f"{given}: no such file or directory")
    return files, errors


def _write_atomically(path: Path, text: str) -> None:
    """Replace a file's text through a temporary file beside it (never a half-written file)."""
    mode = path.stat().st_mode
    if not os.access(path, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise _UsageError(f"{path}: cannot fix: the file is read-only (left unchanged)")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".lstm-migrate", dir=path.parent)
    except OSError as error:
        raise _UsageError(f"{path}: cannot fix: cannot write in {path.parent} ({error.strerror})") from error
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(temporary, stat.S_IMODE(mode))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """The ``lstm-migrate`` command: check (and optionally fix) files for Keras 2 state idioms.

    ``python -m lstm_utils.migrate [--fix | --diff] PATH...``. See the module's description for
    the output format and exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 no finding (with ``--fix``: none left), 1 findings, 2 a usage error.

    Examples
    --------
    >>> main(["no/such/file.py"])  # the error goes to stderr
    2
    """
    parser = argparse.ArgumentParser(
        prog="lstm-migrate",
        description="Find Keras 2 LSTM/GRU state idioms in .py files and .ipynb notebooks "
        "(the LSTM State Book, chapter 12).",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="a .py file, a .ipynb notebook or a directory")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fix", action="store_true", help="rewrite the mechanical idioms in place")
    mode.add_argument("--diff", action="store_true", help="print the --fix changes as a diff, write nothing")
    try:
        options = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exit_:
        return 2 if exit_.code else 0
    files, errors = _files(options.paths)
    for message in errors:
        print(f"lstm-migrate: error: {message}", file=sys.stderr)
    found = False
    for path in files:
        try:
            result = _check_file(path, options.fix or options.diff)
            if options.diff and result.new_text is not None:
                old = path.read_text(encoding="utf-8")
                sys.stdout.writelines(
                    difflib.unified_diff(
                        old.splitlines(keepends=True),
                        result.new_text.splitlines(keepends=True),
                        f"{path} (before)",
                        f"{path} (after --fix)",
                    )
                )
            if options.fix and result.new_text is not None:
                _write_atomically(path, result.new_text)
        except _UsageError as error:
            print(f"lstm-migrate: error: {error}", file=sys.stderr)
            errors.append(str(error))
            continue
        if options.fix:
            left = {(f.name, f.location) for f in result.remaining}
            for finding in result.findings:
                if finding.fixable and result.new_text is not None:
                    print(f"fixed: {finding.location}: {finding.name}")
            for finding in result.remaining:
                print(f"left: {finding}")
            found = found or bool(left)
        else:
            for finding in result.findings:
                print(finding)
            found = found or bool(result.findings)
    if errors:
        return 2
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
