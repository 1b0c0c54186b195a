"""Shared fixtures: every unit test that takes ``K`` runs once on Keras 3 and once on Keras 2."""

from __future__ import annotations

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

    module = keras if flavour == "keras3" else tf_keras
    module.backend.clear_session()
    lstm_utils.set_seed(0)
    return module
