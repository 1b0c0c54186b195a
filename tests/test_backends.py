"""Tests of lstm_utils/backends.py: snippets in fresh processes, and a stateful LSTM on each backend.

Every child process costs seconds (importing TensorFlow or JAX), so each backend's probe runs
once, in a module-scoped fixture. PyTorch is an opt-in (``make torch``): its rows are skipped
where it is not installed. The ``backend_behaviour`` probes are marked ``slow`` (``make
test-slow``, which CI runs); chapter 12's cells run them on TensorFlow and JAX under ``make test``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from lstm_utils import backends
from lstm_utils.backends import (
    BACKENDS,
    BEHAVIOUR_ROWS,
    BackendRunError,
    backend_behaviour,
    installed_backends,
    run_on_backend,
)

INSTALLED = installed_backends()
needs_jax = pytest.mark.skipif("jax" not in INSTALLED, reason="jax is not installed")
# The quick child runs use JAX: a JAX-backend child does not import TensorFlow (about 3 s, not 5).
QUICK = "jax" if "jax" in INSTALLED else "tensorflow"


def backend_param(name: str) -> Any:
    hint = "`make torch` installs it" if name == "torch" else "it is not installed"
    return pytest.param(name, marks=pytest.mark.skipif(name not in INSTALLED, reason=f"{name}: {hint}"))


@pytest.fixture
def no_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to start a child process fails the test: bad input must be refused first."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a process was started")

    monkeypatch.setattr(backends.subprocess, "run", refuse)


# ---------------------------------------------------------------- installed_backends


def test_installed_backends_is_an_ordered_subset_and_finds_tensorflow() -> None:
    found = installed_backends()
    assert isinstance(found, tuple)
    assert list(found) == [name for name in BACKENDS if name in found]
    assert "tensorflow" in found
    assert ("jax" in found) == (importlib.util.find_spec("jax") is not None)
    assert ("torch" in found) == (importlib.util.find_spec("torch") is not None)


def test_installed_backends_imports_none_of_them() -> None:
    code = (
        "import sys; from lstm_utils.backends import installed_backends; installed_backends(); "
        "print(sorted(m for m in ('tensorflow', 'jax', 'torch', 'keras') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_missing_torch_is_left_out_and_refused_with_the_make_target(
    monkeypatch: pytest.MonkeyPatch, no_process: None
) -> None:
    real = importlib.util.find_spec

    def without_torch(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "torch" else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_torch)
    assert "torch" not in installed_backends()
    with pytest.raises(ModuleNotFoundError, match=r"torch backend needs .*`make torch`.*opt-in"):
        run_on_backend("torch", "results['x'] = 1")
    with pytest.raises(ModuleNotFoundError, match="make torch"):
        backend_behaviour("torch")


# ---------------------------------------------------------------- run_on_backend: bad input


@pytest.mark.parametrize(
    "backend, source, kwargs, error, match",
    [
        (3, "x = 1", {}, TypeError, "backend must be a str"),
        ("theano", "x = 1", {}, ValueError, r"one of \('tensorflow', 'jax', 'torch'\), got 'theano'"),
        ("TensorFlow", "x = 1", {}, ValueError, "got 'TensorFlow'"),
        ("tensorflow", b"x = 1", {}, TypeError, "source must be Python code in a str, got bytes"),
        ("tensorflow", None, {}, TypeError, "got NoneType"),
        ("tensorflow", "results['x'] = (", {}, SyntaxError, r"does not compile: .* \(line 1\)"),
        ("tensorflow", "x = 1\n  y = 2", {}, SyntaxError, r"line 2"),
        ("tensorflow", "x = 1\0", {}, (SyntaxError, ValueError), "does not compile"),
        ("tensorflow", "x = 1", {"timeout": 0}, ValueError, "timeout must be a positive"),
        ("tensorflow", "x = 1", {"timeout": float("nan")}, ValueError, "finite"),
        ("tensorflow", "x = 1", {"timeout": -5.0}, ValueError, "got -5.0"),
        ("tensorflow", "x = 1", {"timeout": "10"}, TypeError, "timeout must be a number"),
        ("tensorflow", "x = 1", {"timeout": True}, TypeError, "timeout must be a number"),
    ],
)
def test_run_on_backend_refuses_bad_input_before_a_process_starts(
    no_process: None, backend: Any, source: Any, kwargs: dict[str, Any], error: Any, match: str
) -> None:
    with pytest.raises(error, match=match):
        run_on_backend(backend, source, **kwargs)


def test_run_on_backend_takes_timeout_by_keyword_only(no_process: None) -> None:
    with pytest.raises(TypeError):
        run_on_backend("tensorflow", "x = 1", 10.0)  # type: ignore[misc]


# ---------------------------------------------------------------- run_on_backend: child runs

ROUND_TRIP = """
import sys
import numpy as np
import keras
print("noise on stdout")
sys.stderr.write("noise on stderr\\n")
results["backend"] = keras.backend.backend()
results["array"] = np.arange(6, dtype="float32").reshape(2, 3) / 4
results["float64"] = np.float64(0.125)
results["int64"] = np.int64(7)
results["bool"] = np.bool_(True)
results["tuple"] = (1, "two", None)
results["nested"] = {"a": [np.float32(1.5), {"b": np.zeros(2, "int32")}]}
results["plain"] = [True, 2, 3.5, "s", None]
results["nan"] = float("nan")
"""


def test_results_round_trip_as_plain_types_and_the_child_prints_nothing_here(
    capfd: pytest.CaptureFixture[str],
) -> None:
    capfd.readouterr()
    results = run_on_backend(QUICK, ROUND_TRIP)
    # fd-level capture: what the child wrote on its stdout and stderr must not reach ours.
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert results["backend"] == QUICK  # the child ran the backend asked for
    assert results["array"] == [[0.0, 0.25, 0.5], [0.75, 1.0, 1.25]]
    assert type(results["float64"]) is float and results["float64"] == 0.125
    assert type(results["int64"]) is int and results["int64"] == 7
    assert results["bool"] is True
    assert results["tuple"] == [1, "two", None]
    assert results["nested"] == {"a": [1.5, {"b": [0, 0]}]}
    assert results["plain"] == [True, 2, 3.5, "s", None]
    assert np.isnan(results["nan"])
    assert set(results) == {"backend", "array", "float64", "int64", "bool", "tuple", "nested", "plain", "nan"}


FAILING = """
def inner(value):
    raise ValueError(f"probe failed with {value}")

results["partial"] = 1
inner(42)
"""


@pytest.mark.parametrize(
    "source, expected",
    [
        (FAILING, ["ValueError: probe failed with 42", 'raise ValueError(f"probe failed with {value}")', "in inner"]),
        ("results['layer'] = object()", ["TypeError: results['layer'] is a builtins.object", "convert_to_numpy"]),
    ],
    ids=["raises", "not-json"],
)
def test_a_failing_child_raises_backend_run_error_with_its_traceback(source: str, expected: list[str]) -> None:
    with pytest.raises(BackendRunError) as caught:
        run_on_backend(QUICK, source)
    error = caught.value
    assert isinstance(error, RuntimeError)
    message = str(error)
    assert message.startswith(f"the snippet failed on the {QUICK} backend (exit status 1):")
    assert "Traceback (most recent call last)" in message
    for text in expected:
        assert text in message
    assert expected[0] in message.splitlines()[-1]  # the message ends with the child's error
    assert error.backend == QUICK and error.returncode == 1


@pytest.mark.parametrize(
    "source, match",
    [
        ("import sys; sys.exit(0)", r"(?s)failed on the .* backend.*the snippet called sys.exit\(0\)"),
        ("import os; os._exit(0)", r"exited before returning its results"),
    ],
    ids=["sys.exit", "os._exit"],
)
def test_exiting_before_the_results_is_an_error(source: str, match: str) -> None:
    with pytest.raises(BackendRunError, match=match):
        run_on_backend(QUICK, source)


def test_a_run_past_its_timeout_is_stopped() -> None:
    with pytest.raises(TimeoutError, match=rf"the {QUICK} run took longer than timeout=0.5 s"):
        run_on_backend(QUICK, "import time; time.sleep(60)", timeout=0.5)


# ---------------------------------------------------------------- backend_behaviour

ALL_CARRY = {
    "states_tracked": "not tracked",
    "eager_calls": "carries",
    "two_predicts": "carries",
    "one_predict_two_batches": "carries",
    "predict_on_batch": "carries",
    "states_after_predict": "last state",
    "fit": "carries",
    "fit_no_cudnn": "carries",
    "assign_then_predict": "uses H0",
    "assign_again_then_predict": "uses H1",
    "assign_again_then_predict_on_batch": "uses H1",
    "reset_state": "zeroes",
    "initial_state_eager": "works",
    "initial_state_symbolic": "works",
    "outputs_vs_numpy": "matches",
}

# Measured on Keras 3.15.1 (TensorFlow 2.21, jax 0.10.2, torch 2.13.0+cpu), CPU.
EXPECTED: dict[str, dict[str, str]] = {
    "tensorflow": {
        **ALL_CARRY,
        "partial_last_batch": "pads silently",
        "list_replacement": "ignored",
        "unroll_free_time_axis": "first length only, then error: ValueError",
    },
    "jax": {
        **ALL_CARRY,
        "two_predicts": "does not carry",
        "one_predict_two_batches": "does not carry",
        "predict_on_batch": "does not carry",
        "states_after_predict": "still zeros",
        "fit": "does not carry",
        "fit_no_cudnn": "does not carry",
        "assign_again_then_predict": "uses H0",
        "partial_last_batch": "error: ValueError",
        "list_replacement": "ignored",
        "unroll_free_time_axis": "works",
    },
    "torch": {
        **ALL_CARRY,
        "fit": "error: RuntimeError (in-place)",
        "partial_last_batch": "error: ValueError",
        "list_replacement": "takes effect",
        "unroll_free_time_axis": "works",
    },
}

BATCH, TIMESTEPS, UNITS = 2, 5, 4


@pytest.fixture(scope="module")
def behaviour() -> dict[str, dict[str, Any]]:
    """``backend_behaviour`` of every installed backend, each run once for the whole module."""
    return {name: backend_behaviour(name, batch=BATCH, timesteps=TIMESTEPS, units=UNITS) for name in INSTALLED}


def test_expected_tables_cover_every_row() -> None:
    for table in EXPECTED.values():
        assert set(table) == set(BEHAVIOUR_ROWS)


@pytest.mark.slow
@pytest.mark.parametrize("backend", [backend_param(name) for name in BACKENDS])
def test_backend_behaviour_gives_the_measured_verdicts(behaviour: dict[str, dict[str, Any]], backend: str) -> None:
    result = behaviour[backend]
    assert result["backend"] == backend
    assert result["keras_version"].startswith("3.")
    assert list(result["verdicts"]) == list(BEHAVIOUR_ROWS)
    assert result["verdicts"] == EXPECTED[backend]


@pytest.mark.slow
@pytest.mark.parametrize("backend", [backend_param(name) for name in BACKENDS])
def test_backend_behaviour_raw_values(behaviour: dict[str, dict[str, Any]], backend: str) -> None:
    result = behaviour[backend]
    assert np.shape(result["outputs"]) == (BATCH, TIMESTEPS, UNITS)
    assert result["outputs_max_difference"] < 1e-5
    # "carries" and "does not carry" must lie far apart for the fit verdict to mean anything.
    assert result["fit_separation"] > 1e-3
    reference = np.asarray(result["kernel_reference"])
    stateless = np.asarray(result["kernel_stateless"])
    assert reference.shape == (3, 4 * UNITS)
    for key in ("kernel", "kernel_no_cudnn"):
        verdict = result["verdicts"]["fit" if key == "kernel" else "fit_no_cudnn"]
        if verdict.startswith("error"):
            assert result[key] is None
        else:
            expected = reference if verdict == "carries" else stateless
            np.testing.assert_allclose(result[key], expected, atol=1e-6, rtol=0)


@pytest.mark.slow
def test_backends_agree_on_outputs_and_on_carried_fits(behaviour: dict[str, dict[str, Any]]) -> None:
    if len(behaviour) < 2:
        pytest.skip("one backend installed")
    tf_result = behaviour["tensorflow"]
    carried = 0
    for name, result in behaviour.items():
        np.testing.assert_allclose(result["outputs"], tf_result["outputs"], atol=1e-5, rtol=0, err_msg=name)
        for key, row in (("kernel", "fit"), ("kernel_no_cudnn", "fit_no_cudnn")):
            if result["verdicts"][row] == "carries":  # what TensorFlow's stateful fit gives
                np.testing.assert_allclose(result[key], tf_result["kernel"], atol=1e-5, rtol=0, err_msg=name)
                carried += 1
    assert carried >= 2


@pytest.mark.slow
def test_backend_behaviour_is_deterministic_in_its_verdicts_only(behaviour: dict[str, dict[str, Any]]) -> None:
    # Verdicts are short strings from the vocabulary: no numbers, addresses or object names.
    for result in behaviour.values():
        for verdict in result["verdicts"].values():
            assert isinstance(verdict, str) and len(verdict) < 60
            words = verdict.replace("H0", "").replace("H1", "")  # the names of the two assigned states
            assert not any(ch.isdigit() for ch in words), verdict


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"backend": "mxnet"}, ValueError, "backend must be one of"),
        ({"backend": None}, TypeError, "backend must be a str"),
        ({"seed": -1}, ValueError, r"seed must be an integer between 0 and 4294967295, got -1"),
        ({"seed": 2**32}, ValueError, "seed must be"),
        ({"seed": 1.0}, TypeError, "seed must be"),
        ({"units": 0}, ValueError, "units must be an integer between 1 and 16"),
        ({"units": 17}, ValueError, "units must be"),
        ({"batch": 1}, ValueError, "batch must be an integer between 2 and 16"),
        ({"batch": 17}, ValueError, "batch must be"),
        ({"timesteps": 21}, ValueError, "timesteps must be an integer between 1 and 20"),
        ({"features": 17}, ValueError, "features must be"),
        ({"batch": True}, TypeError, "batch must be"),
        ({"timesteps": 0}, ValueError, "timesteps must be"),
        ({"timesteps": "5"}, TypeError, "timesteps must be"),
        ({"features": 0}, ValueError, "features must be"),
        ({"tracked": 1}, TypeError, "tracked must be True or False"),
        ({"timeout": 0}, ValueError, "timeout must be a positive"),
    ],
)
def test_backend_behaviour_refuses_bad_input_before_a_process_starts(
    no_process: None, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    kwargs = {"backend": "tensorflow", **kwargs}
    with pytest.raises(error, match=match):
        backend_behaviour(**kwargs)
