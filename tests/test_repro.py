"""Tests of lstm_utils.repro: seeding and the quiet TensorFlow start-up."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import numpy as np
import pytest

from lstm_utils import set_seed


def test_set_seed_makes_keras_initialisation_repeatable(K: ModuleType) -> None:
    def weights() -> list[np.ndarray]:
        set_seed(7)
        layer = K.layers.LSTM(3)
        layer.build((1, 2, 4))
        return [np.asarray(w) for w in layer.get_weights()] + [np.random.rand(2)]

    for first, second in zip(weights(), weights()):
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True, None])
def test_set_seed_rejects_nonsense(seed: object) -> None:
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got"):
        set_seed(seed)  # type: ignore[arg-type]


def test_quiet_tensorflow_keeps_start_up_lines_off_stderr() -> None:
    code = "import lstm_utils; lstm_utils.quiet_tensorflow(); import tensorflow as tf; print(int(tf.constant(1) + 1))"
    loud = subprocess.run([sys.executable, "-c", "import tensorflow as tf; tf.constant(1) + 1"],
                          capture_output=True, text=True, check=True, env={"PATH": ""})
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": ""})
    assert loud.stderr.strip(), "TensorFlow no longer prints start-up lines: this test has nothing to check"
    assert quiet.stdout == "2\n"
    assert quiet.stderr == ""
