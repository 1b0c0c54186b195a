"""Comparing results in chapters: do two arrays agree, and which of several candidates does one match.

Every chapter compares Keras's outputs and states with a reference or with each other; these
are the checks they share, so that "agrees" means the same thing on every page: the same
shape, and every entry within an absolute tolerance (no relative term, no broadcasting).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lstm_utils._flavour import to_numpy

__all__ = ["DEFAULT_ATOL", "all_close", "max_difference", "which_matches"]

DEFAULT_ATOL = 1e-5
"""The tolerance chapters use for float32 results: float32 rounding across ten to a hundred steps stays far below it."""


def _as_numeric(name: str, value: Any) -> np.ndarray:
    try:
        array = to_numpy(value)
    except Exception as error:  # anything NumPy cannot turn into an array
        raise TypeError(
            f"{name}: expected an array, tensor or variable, got {type(value).__name__} ({error})"
        ) from error
    if not (np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)):
        raise TypeError(f"{name}: expected numbers, got dtype {array.dtype} from a {type(value).__name__}")
    return array.astype(np.float64)


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    first, second = _as_numeric("a", a), _as_numeric("b", b)
    if first.shape != second.shape:
        raise ValueError(f"cannot compare arrays of different shapes: a has {first.shape}, b has {second.shape}")
    return first, second


def max_difference(a: Any, b: Any) -> float:
    """The largest absolute difference between two arrays of the same shape (NaN if either holds NaN).

    Parameters
    ----------
    a, b : array-like
        NumPy arrays, tensors (TensorFlow, JAX) or Keras/TensorFlow variables, of one shape.

    Raises
    ------
    TypeError
        If either is not numeric.
    ValueError
        If their shapes differ (no broadcasting: a ``(1, 4)`` state is not a ``(2, 4)`` one).

    Examples
    --------
    >>> max_difference([1.0, 2.0], [1.0, 2.5])
    0.5
    """
    first, second = _pair(a, b)
    if first.size == 0:
        return 0.0
    return float(np.max(np.abs(first - second)))


def all_close(a: Any, b: Any, atol: float = DEFAULT_ATOL) -> bool:
    """True when two arrays have the same shape and every entry agrees within ``atol``.

    The chapters' one closeness check. NaN agrees with nothing, not even NaN.

    Parameters
    ----------
    a, b : array-like
        NumPy arrays, tensors or Keras/TensorFlow variables.
    atol : float
        The absolute tolerance (default :data:`DEFAULT_ATOL`, ``1e-5``).

    Raises
    ------
    TypeError
        If either is not numeric.
    ValueError
        If their shapes differ, or ``atol`` is negative or not finite.

    Examples
    --------
    >>> all_close([1.0, 2.0], [1.0, 2.000001])
    True
    >>> all_close([1.0, 2.0], [1.0, 2.1])
    False
    """
    if not np.isfinite(atol) or atol < 0:
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}")
    first, second = _pair(a, b)
    return bool(np.all(np.abs(first - second) <= atol))


def which_matches(value: Any, candidates: Mapping[str, Any], atol: float = DEFAULT_ATOL) -> str:
    """The name of the one candidate that ``value`` agrees with (:func:`all_close`).

    How chapters tell which start state, or which reference, a Keras result came from.
    Candidates of another shape than ``value`` never match.

    Parameters
    ----------
    value : array-like
        The result to identify.
    candidates : mapping of str to array-like
        Named possibilities, for example ``{"zeros": ..., "h0": ...}``.
    atol : float
        The absolute tolerance.

    Returns
    -------
    str
        The matching candidate's name; ``"none"`` if none matches; ``"ambiguous: a, b"``
        if several do (the candidates are too alike to tell apart).

    Raises
    ------
    TypeError
        If ``candidates`` is not a mapping with string keys, or a value is not numeric.
    ValueError
        If ``candidates`` is empty.

    Examples
    --------
    >>> which_matches([1.0, 2.0], {"zeros": [0.0, 0.0], "ones then twos": [1.0, 2.0]})
    'ones then twos'
    >>> which_matches([5.0], {"zeros": [0.0]})
    'none'
    """
    if not isinstance(candidates, Mapping) or not all(isinstance(name, str) for name in candidates):
        raise TypeError(f"candidates must be a mapping of names (str) to arrays, got {type(candidates).__name__}")
    if not candidates:
        raise ValueError("candidates is empty: give at least one named array to compare with")
    target = _as_numeric("value", value)
    found = [
        name
        for name, candidate in candidates.items()
        if _as_numeric(name, candidate).shape == target.shape and all_close(target, candidate, atol)
    ]
    if not found:
        return "none"
    return found[0] if len(found) == 1 else "ambiguous: " + ", ".join(found)
