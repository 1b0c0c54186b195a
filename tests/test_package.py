"""The shape of the package: an explicit public API, no heavy imports, imports that run one way.

- ``lstm_utils.__all__`` is the public API; every name in it is importable, documented and
  listed by ``dir()``; ``import lstm_utils`` imports neither TensorFlow nor Keras.
- Modules import each other in one direction only (no cycle, function-local imports
  included), and no module reaches into another's private names except the two core
  modules meant for it, ``_flavour`` and ``_layers``.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import lstm_utils
import lstm_utils.keras2

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lstm_utils"
CORE_MODULES = {"lstm_utils._flavour", "lstm_utils._layers"}


def module_name(path: Path) -> str:
    return "lstm_utils" if path.name == "__init__.py" else f"lstm_utils.{path.stem}"


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names imported from it) for every lstm_utils import in a file, at any depth."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path.name}: use absolute imports (from lstm_utils.x import y)")
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "lstm_utils":
            names = [alias.name for alias in node.names]
            if node.module == "lstm_utils":  # ``from lstm_utils import states`` imports a module
                found += [(f"lstm_utils.{name}", []) for name in names]
            else:
                found.append((node.module, names))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.split(".")[0] == "lstm_utils"]
    return found


def import_graph() -> dict[str, set[str]]:
    return {
        module_name(path): {target for target, _ in imports_of(path)} - {module_name(path)}
        for path in sorted(PACKAGE.glob("*.py"))
    }


def test_import_lstm_utils_imports_no_tensorflow_or_keras() -> None:
    code = (
        "import sys, lstm_utils, lstm_utils.keras2\n"
        "public = [n for n in dir(lstm_utils) if not n.startswith('_')]\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'jax', 'torch') if m in sys.modules)\n"
        "print(len(public), heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    count, heavy = result.stdout.split(" ", 1)
    assert heavy.strip() == "[]", f"import lstm_utils imported {heavy.strip()}"
    assert int(count) >= len(lstm_utils.__all__)


def test_every_public_name_is_listed_importable_and_documented() -> None:
    listed = set(dir(lstm_utils))
    for name in lstm_utils.__all__:
        assert name in listed, f"dir(lstm_utils) does not list {name}"
        value = getattr(lstm_utils, name)
        if callable(value):
            doc = inspect.getdoc(value) or ""
            assert "Examples" in doc or ">>>" in doc, f"lstm_utils.{name} has no example in its docstring"


# Used qualified, as lstm_utils.migration.run_all(): their names would mean little at the top level.
NAMESPACE_MODULES = ("migration", "migrate")


def test_every_public_function_of_a_module_is_exported() -> None:
    for path in sorted(PACKAGE.glob("[!_]*.py")):
        if path.stem in ("keras2", *NAMESPACE_MODULES):
            continue
        module = __import__(module_name(path), fromlist=["__all__"])
        # Mixins and factories of the Keras twins are public in their modules only.
        twins = {
            "ResetStatesLogic",
            "reset_states_callback_class",
            "TrainableInitialStateLogic",
            "trainable_initial_state_class",
            "TrackedStateLogic",
            "stateful_lstm_class",
            "stateful_gru_class",
        }
        missing = set(module.__all__) - set(lstm_utils.__all__) - twins
        assert not missing, f"{path.name} defines {sorted(missing)} but lstm_utils does not export them"


def test_a_misspelled_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'get_stats'"):
        lstm_utils.get_stats  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match="'lstm_utils.keras2' has no attribute 'get_states'"):
        lstm_utils.keras2.get_states  # noqa: B018


def test_the_keras_twins_come_from_one_registry() -> None:
    from lstm_utils._keras_classes import KERAS3_CLASSES, KERAS_CLASSES

    assert set(KERAS_CLASSES) | set(KERAS3_CLASSES) <= set(lstm_utils.__all__)
    assert set(KERAS_CLASSES) == set(lstm_utils.keras2.__all__)
    for name in KERAS3_CLASSES:  # a fix for Keras 3 only: no Keras 2 twin
        with pytest.raises(AttributeError, match=f"'lstm_utils.keras2' has no attribute '{name}'"):
            getattr(lstm_utils.keras2, name)


def test_the_namespace_modules_are_reached_through_lstm_utils() -> None:
    """``lstm_utils.migration`` (the idiom registry) is imported with the package; the checker,
    ``lstm_utils.migrate``, is imported on its own (it loads libcst), and neither flattens its
    names into ``lstm_utils``."""
    import lstm_utils.migrate

    assert lstm_utils.migration.idiom("time_major").name == "time_major"
    assert callable(lstm_utils.migrate.main) and callable(lstm_utils.migrate.check_source)
    for module in NAMESPACE_MODULES:
        exported = set(getattr(lstm_utils, module).__all__) & set(lstm_utils.__all__)
        assert not exported, f"lstm_utils.{module}'s names are used qualified, not from lstm_utils: {exported}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in a module graph as ``[a, b, ..., a]``, or None."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in done:
            return None
        if module in visiting:
            return [*visiting[visiting.index(module) :], module]
        visiting.append(module)
        for target in sorted(graph.get(module, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_can_fail() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_core_modules_import_nothing_above_them() -> None:
    graph = import_graph()
    assert graph["lstm_utils._flavour"] == set()
    assert graph["lstm_utils._layers"] <= {"lstm_utils._flavour"}


def test_no_module_imports_another_modules_private_names() -> None:
    for path in sorted(PACKAGE.glob("*.py")):
        for target, names in imports_of(path):
            private = [name for name in names if name.startswith("_") and not name.startswith("__")]
            assert target in CORE_MODULES or not private, (
                f"{path.name} imports private {private} from {target}: move what it needs to lstm_utils._layers"
            )


def test_the_type_checker_sees_a_misspelled_public_name(tmp_path: Path) -> None:
    user_code = tmp_path / "user_code.py"
    user_code.write_text("import lstm_utils\n\nlstm_utils.get_states(1)\nlstm_utils.get_stats(1)\n")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", "--no-incremental", str(user_code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1 and 'Module has no attribute "get_stats"' in errors[0], result.stdout
