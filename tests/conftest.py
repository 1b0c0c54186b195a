"""Shared fixtures: every unit test that takes ``K`` runs once on Keras 3 and once on Keras 2;
``built_book`` is the HTML book built once from the stored outputs, for tests/test_book.py and
tests/test_browser.py (the root conftest sends both modules to one worker, so it is built once).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

import lstm_utils


@pytest.fixture(params=["keras3", "keras2"])
def flavour(request: pytest.FixtureRequest) -> str:
    """The Keras version under test: ``"keras3"`` (``keras``) or ``"keras2"`` (``tf_keras``)."""
    return request.param


@pytest.fixture
def K(flavour: str) -> ModuleType:
    """The Keras package under test, with a fresh session and seed 0: ``keras`` or ``tf_keras``."""
    import keras
    import tf_keras

    if flavour == "keras3":
        # Keras 3's default free_memory=True runs gc.collect(): 0.1-0.2 s per test once TensorFlow
        # is loaded, about a minute over the suite. The names and seeds are reset all the same.
        keras.backend.clear_session(free_memory=False)
        module = keras
    else:
        tf_keras.backend.clear_session()
        module = tf_keras
    lstm_utils.set_seed(0)
    return module


@dataclass(frozen=True)
class BuiltBook:
    """The book built from the stored outputs: its ``_build/html`` folder and what the build printed."""

    html: Path
    returncode: int
    log: str


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> BuiltBook:
    """``test_book.build_book`` run once per session, into a temporary folder."""
    from test_book import build_book

    folder = tmp_path_factory.mktemp("book")
    result: subprocess.CompletedProcess[str] = build_book(folder)
    return BuiltBook(folder / "_build" / "html", result.returncode, result.stdout + result.stderr)
