"""Reproducibility: a quiet TensorFlow start-up and one call that seeds everything.

Every chapter's set-up cell uses them (CONTRIBUTING.md shows that cell): the outputs
stored in a chapter must come out the same on every run, and TensorFlow's C++ start-up
lines must not end up in them. They are just as useful in your own notebooks and tests.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import random
import sys
from collections.abc import Iterator

import numpy as np

__all__ = ["check_int_parameter", "quiet_tensorflow", "set_seed"]


@contextlib.contextmanager
def _stderr_fd_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null, so that C++ log lines written there vanish.

    TensorFlow writes its start-up lines ("All log messages before absl::InitializeLog()",
    the oneDNN and CUDA notices) straight to descriptor 2 before its own logging is
    configured, so neither ``TF_CPP_MIN_LOG_LEVEL`` nor ``sys.stderr`` can stop them.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_tensorflow(keras2: bool = True) -> None:
    """Import TensorFlow, Keras 3 and (optionally) Keras 2 without their start-up log lines.

    Call it before anything else imports TensorFlow; afterwards ``import tensorflow``,
    ``import keras`` and ``import tf_keras`` are silent and instant. It sets
    ``TF_CPP_MIN_LOG_LEVEL=3`` (unless already set), silences the start-up lines that
    TensorFlow writes before that setting takes effect, initialises the devices once
    (which is when TensorFlow reports a missing GPU) and lowers the ``tensorflow`` and
    ``absl`` Python loggers to errors. Calling it again does nothing. Every chapter's
    set-up cell calls it first.

    Parameters
    ----------
    keras2 : bool
        Also import ``tf_keras`` (Keras 2), if it is installed.

    Examples
    --------
    >>> import lstm_utils
    >>> lstm_utils.quiet_tensorflow()
    >>> import tensorflow as tf
    >>> int(tf.constant(2) + 1)
    3
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    names = ["tensorflow", "keras"] + (["tf_keras"] if keras2 else [])
    with _stderr_fd_silenced():
        for name in names:
            if name == "tf_keras" and importlib.util.find_spec("tf_keras") is None:
                continue
            importlib.import_module(name)
        tf = sys.modules["tensorflow"]
        tf.config.list_logical_devices()  # device start-up happens here, once
    for logger in ("tensorflow", "absl"):
        logging.getLogger(logger).setLevel(logging.ERROR)


def set_seed(seed: int, *, deterministic_ops: bool = True) -> None:
    """Seed Python, NumPy, Keras 3 and (if imported) Keras 2 from one integer.

    With ``deterministic_ops`` TensorFlow is also asked for deterministic kernels, so
    that training runs give bit-identical results from one process to the next (the
    chapters that train, 5, 7 and 8, rely on it: their stored outputs must match).

    Parameters
    ----------
    seed : int
        A non-negative integer.
    deterministic_ops : bool
        Call ``tf.config.experimental.enable_op_determinism()`` when TensorFlow is imported.

    Raises
    ------
    ValueError
        If ``seed`` is not a non-negative integer.

    Examples
    --------
    >>> import numpy as np, lstm_utils
    >>> lstm_utils.set_seed(0); a = np.random.rand()
    >>> lstm_utils.set_seed(0); b = np.random.rand()
    >>> a == b
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(seed)
    if "tf_keras" in sys.modules:
        sys.modules["tf_keras"].utils.set_random_seed(seed)
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        tf.random.set_seed(seed)
        if deterministic_ops:
            tf.config.experimental.enable_op_determinism()


def check_int_parameter(name: str, value: object, low: int, high: int | None = None) -> int:
    """Check a chapter parameter (set by hand or by papermill): an integer in ``[low, high]``.

    Every chapter starts with a ``parameters`` cell (seed and sizes) that papermill can
    override; the next cell checks each value with this function, so that a nonsense
    value stops the chapter at once with a message that names it.

    Parameters
    ----------
    name : str
        The parameter's name, used in the message.
    value : object
        The value to check; ``bool`` is refused although it is an ``int``.
    low, high : int
        The smallest and (if given) the largest allowed value.

    Returns
    -------
    int
        ``value`` as a plain ``int`` (a NumPy integer is converted).

    Raises
    ------
    ValueError
        If ``value`` is not an integer in range.

    Examples
    --------
    >>> check_int_parameter("UNITS", 8, low=1)
    8
    >>> check_int_parameter("SEED", -1, low=0)
    Traceback (most recent call last):
    ...
    ValueError: SEED must be an integer >= 0, got -1
    """
    allowed = f">= {low}" if high is None else f"between {low} and {high}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer {allowed}, got {value!r}")
    return int(value)
