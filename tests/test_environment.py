"""One source of truth for versions: pyproject.toml, requirements.lock and environment.yml agree."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

import lstm_utils

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def declared_requirements() -> list[Requirement]:
    project = pyproject()["project"]
    names = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in names]


def locked_versions() -> dict[str, Version]:
    pins = {}
    for raw_line in (ROOT / "requirements.lock").read_text().splitlines():
        line = raw_line.split("#")[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"lock entry is not an exact pin: {line}"
            pins[canonicalize_name(requirement.name)] = Version(specifier.version)
    return pins


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    pins = locked_versions()
    for requirement in declared_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is declared in pyproject.toml but not pinned in requirements.lock"
        assert pins[name] in requirement.specifier, (
            f"requirements.lock pins {requirement.name}=={pins[name]}, outside pyproject.toml's {requirement.specifier}"
        )


def test_environment_yml_installs_the_lock_and_the_package() -> None:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    dependencies = environment["dependencies"]
    pip_section = next(d["pip"] for d in dependencies if isinstance(d, dict) and "pip" in d)
    assert pip_section == ["-r requirements.lock", "-e ."], pip_section
    conda_packages = [d for d in dependencies if isinstance(d, str)]
    assert "pip" in conda_packages
    (python,) = [d for d in conda_packages if d.startswith("python")]
    assert python.startswith("python=")
    requires_python = SpecifierSet(pyproject()["project"]["requires-python"])
    assert Version(python.split("=", 1)[1]) in requires_python, (python, requires_python)
    others = [d for d in conda_packages if d not in ("pip", python)]
    assert not others, f"environment.yml installs packages that pyproject.toml does not declare: {others}"


def test_the_version_is_written_in_one_place() -> None:
    import importlib.metadata
    import re

    import lstm_utils

    project = pyproject()["project"]
    assert "version" not in project and project["dynamic"] == ["version"], "pyproject.toml must not repeat the version"
    assert pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lstm_utils.__version__"}
    assert importlib.metadata.version("lstm_utils") == lstm_utils.__version__, (
        "the installed lstm_utils has another version than the source: reinstall it (make test does)"
    )
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert str(citation["version"]) == lstm_utils.__version__, "CITATION.cff names another version"
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(lstm_utils.__version__)}\b", changelog, re.M), (
        f"CHANGELOG.md has no section for {lstm_utils.__version__}"
    )


def test_the_wheel_holds_the_package_and_installs(tmp_path: Path) -> None:
    """``pip install .`` (what the API reference tells users) gives a working ``lstm_utils``.

    The wheel is built without network access (no build isolation: the set-up's setuptools) and
    without dependencies, installed into a folder of its own, and imported from there by a fresh
    interpreter that has the set-up's dependencies: so the import is of the installed files, not
    of this checkout.
    """
    import shutil
    import subprocess
    import zipfile

    # setuptools writes build/ and *.egg-info beside pyproject.toml: build a copy, not the checkout.
    source, wheels, target = tmp_path / "source", tmp_path / "wheels", tmp_path / "site"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "lstm_utils", source / "lstm_utils", ignore=shutil.ignore_patterns("__pycache__"))
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels)]
    subprocess.run([*build, str(source)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheels.glob("lstm_utils-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {f"lstm_utils/{path.name}" for path in (ROOT / "lstm_utils").glob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert "lstm_utils/py.typed" in names
    assert not any(name.startswith(("tests/", "chapters/", "tools/")) for name in names), sorted(names)

    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    probe = (
        "import lstm_utils, sys; print(lstm_utils.__file__); print(lstm_utils.__version__); "
        "print(lstm_utils.check_parameters(SEED=1, UNITS=(4, 1, 8))); print('tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
    )
    location, version, checked, tensorflow_loaded = result.stdout.split("\n")[:4]
    assert Path(location).is_relative_to(target), location
    assert version == lstm_utils.__version__
    assert checked == "{'SEED': 1, 'UNITS': 4}" and tensorflow_loaded == "False"
