"""One source of truth for versions: pyproject.toml, requirements.lock and environment.yml agree."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

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
