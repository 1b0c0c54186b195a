"""Tests of lstm_utils.repro: seeding and the quiet TensorFlow start-up."""

from __future__ import annotations

import random
import subprocess
import sys
from types import ModuleType

import numpy as np
import pytest

from lstm_utils import MAX_SEED, check_parameters, set_seed


def test_set_seed_makes_keras_initialisation_repeatable(K: ModuleType) -> None:
    def weights() -> list[np.ndarray]:
        set_seed(7)
        layer = K.layers.LSTM(3)
        layer.build((1, 2, 4))
        return [np.asarray(w) for w in layer.get_weights()] + [np.random.rand(2)]

    for first, second in zip(weights(), weights(), strict=True):
        np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 2**63])
def test_set_seed_rejects_seeds_out_of_range(seed: int) -> None:
    with pytest.raises(ValueError, match=rf"seed must be an integer between 0 and {MAX_SEED}, got {seed}"):
        set_seed(seed)


@pytest.mark.parametrize("seed", [1.5, "0", True, None])
def test_set_seed_rejects_what_is_not_an_integer(seed: object) -> None:
    with pytest.raises(TypeError, match=r"seed must be an integer between 0 and \d+, got"):
        set_seed(seed)  # type: ignore[arg-type]


def test_set_seed_accepts_the_largest_seed_and_a_refused_seed_changes_nothing() -> None:
    set_seed(MAX_SEED)
    random.seed(5)
    expected = random.random()
    random.seed(5)
    with pytest.raises(ValueError):
        set_seed(MAX_SEED + 1)  # refused before Python's random is reseeded
    assert random.random() == expected


def test_check_parameters_returns_plain_ints_and_checks_seed_everywhere_alike() -> None:
    checked = check_parameters(SEED=np.int64(3), UNITS=(np.int32(8), 1, 64), BATCH=(2, 2, None))
    assert checked == {"SEED": 3, "UNITS": 8, "BATCH": 2}
    assert all(type(value) is int for value in checked.values())
    assert check_parameters(SEED=MAX_SEED) == {"SEED": MAX_SEED}
    with pytest.raises(ValueError, match=rf"SEED must be an integer between 0 and {MAX_SEED}, got -1"):
        check_parameters(SEED=-1)
    with pytest.raises(ValueError, match=rf"SEED must be an integer between 0 and {MAX_SEED}, got {2**32}"):
        check_parameters(SEED=2**32)


def test_check_parameters_says_why_a_range_ends() -> None:
    with pytest.raises(ValueError, match=r"^TIMESTEPS must be an integer between 2 and 40, got 41: the state fades$"):
        check_parameters(SEED=0, TIMESTEPS=(41, 2, 40, "the state fades"))
    with pytest.raises(ValueError, match=r"^UNITS must be an integer between 1 and 64, got 0$"):
        check_parameters(SEED=0, UNITS=(0, 1, 64))
    with pytest.raises(TypeError, match=r"UNITS must be an integer between 1 and 64, got 8.0 \(float\)"):
        check_parameters(SEED=0, UNITS=(8.0, 1, 64))


@pytest.mark.parametrize("spec", [8, (8, 1), (8, 1, 64, "why", "more"), [8, 1, 64]])
def test_check_parameters_refuses_a_malformed_range(spec: object) -> None:
    with pytest.raises(TypeError, match=r"check_parameters: give UNITS as \(UNITS, low, high\)"):
        check_parameters(SEED=0, UNITS=spec)  # type: ignore[arg-type]


def test_check_parameters_refuses_an_empty_range() -> None:
    with pytest.raises(ValueError, match=r"the range for N is empty: low=10 is above high=1"):
        check_parameters(SEED=0, N=(5, 10, 1))


@pytest.mark.slow
def test_quiet_tensorflow_keeps_start_up_lines_off_stderr() -> None:
    code = "import lstm_utils; lstm_utils.quiet_tensorflow(); import tensorflow as tf; print(int(tf.constant(1) + 1))"
    loud = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf; tf.constant(1) + 1"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": ""},
    )
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": ""})
    assert loud.stderr.strip(), "TensorFlow no longer prints start-up lines: this test has nothing to check"
    assert quiet.stdout == "2\n"
    assert quiet.stderr == ""
