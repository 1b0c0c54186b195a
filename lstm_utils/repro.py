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
from typing import Any

import numpy as np

from lstm_utils._layers import check_int

__all__ = ["MAX_SEED", "check_int_parameter", "check_parameters", "quiet_tensorflow", "set_seed"]

MAX_SEED = 2**32 - 1
"""The largest seed :func:`set_seed` accepts (NumPy's limit); chapters accept ``SEED`` in ``0 .. MAX_SEED``."""


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
        An integer from 0 to ``MAX_SEED`` (``2**32 - 1``, the largest seed NumPy takes).
    deterministic_ops : bool
        Call ``tf.config.experimental.enable_op_determinism()`` when TensorFlow is imported.

    Raises
    ------
    TypeError
        If ``seed`` is not an integer.
    ValueError
        If it lies outside ``0 .. MAX_SEED``. Nothing has been seeded then.

    Examples
    --------
    >>> import numpy as np, lstm_utils
    >>> lstm_utils.set_seed(0); a = np.random.rand()
    >>> lstm_utils.set_seed(0); b = np.random.rand()
    >>> a == b
    True
    """
    seed = check_int("seed", seed, 0, MAX_SEED)  # before anything is seeded: all or nothing
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
    """Check one chapter parameter (set by hand or by papermill): an integer in ``[low, high]``.

    Chapters check all their parameters at once with :func:`lstm_utils.check_parameters`;
    this is the check it makes for each.

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
    TypeError
        If ``value`` is not an integer.
    ValueError
        If it is out of range, or the range itself is empty.

    Examples
    --------
    >>> check_int_parameter("UNITS", 8, low=1)
    8
    >>> check_int_parameter("SEED", -1, low=0)
    Traceback (most recent call last):
    ...
    ValueError: SEED must be an integer >= 0, got -1
    """
    return check_int(name, value, low, high)


def check_parameters(*, SEED: object, **sizes: tuple[Any, ...]) -> dict[str, int]:
    """Check a chapter's parameters in one call: ``SEED`` and each size against its range.

    Every chapter starts with a ``parameters`` cell that papermill can override; the
    next cell calls this before anything slow happens, so that a value outside the range
    where every assert of the chapter holds stops the chapter at once, with a message that
    names the parameter and, where given, why the range ends there.

    Parameters
    ----------
    SEED : int
        Always checked against ``0 .. MAX_SEED`` (``2**32 - 1``), the seeds
        :func:`set_seed` takes, in every chapter alike.
    **sizes : tuple
        ``NAME=(value, low, high)`` or ``NAME=(value, low, high, reason)``: the value, its
        smallest and largest allowed value (``high`` may be ``None``), and the reason for
        the range, printed when the value is refused.

    Returns
    -------
    dict of str to int
        Every parameter as a plain ``int``, ``SEED`` first.

    Raises
    ------
    TypeError
        If a value is not an integer, or a size is not given as such a tuple.
    ValueError
        If a value is out of its range (the message names it and gives the reason).

    Examples
    --------
    >>> check_parameters(SEED=0, UNITS=(8, 1, 64), BATCH=(2, 2, 64, "two rows at least, to tell rows apart"))
    {'SEED': 0, 'UNITS': 8, 'BATCH': 2}
    >>> check_parameters(SEED=0, BATCH=(1, 2, 64, "two rows at least, to tell rows apart"))
    Traceback (most recent call last):
    ...
    ValueError: BATCH must be an integer between 2 and 64, got 1: two rows at least, to tell rows apart
    """
    checked = {"SEED": check_int("SEED", SEED, 0, MAX_SEED)}
    for name, spec in sizes.items():
        if not isinstance(spec, tuple) or len(spec) not in (3, 4):
            raise TypeError(
                f"check_parameters: give {name} as ({name}, low, high) or ({name}, low, high, reason), got {spec!r}"
            )
        value, low, high, *reason = spec
        if reason and not isinstance(reason[0], str):
            raise TypeError(f"check_parameters: the reason for {name}'s range must be a str, got {reason[0]!r}")
        try:
            checked[name] = check_int(name, value, low, high)
        except ValueError as error:
            if not reason:
                raise
            raise ValueError(f"{error}: {reason[0]}") from None
    return checked
