"""Keras 3 backends side by side: run code on TensorFlow, JAX or PyTorch, one fresh process each.

Keras 3 picks its backend once, when ``keras`` is first imported (from ``KERAS_BACKEND``),
so a chapter that compares backends cannot switch in its own process. :func:`run_on_backend`
runs a snippet in a fresh Python process with ``KERAS_BACKEND`` set and returns the
``results`` dict the snippet fills; :func:`backend_behaviour` runs every probe of a stateful
LSTM there and returns one measured verdict per row of chapter 12's table
(:data:`BEHAVIOUR_ROWS`). :func:`installed_backends` says which backends can run here.

PyTorch is an opt-in (``make torch``): without it the ``torch`` column is simply missing.

See chapter 12.

Examples
--------
>>> from lstm_utils.backends import BACKENDS, installed_backends
>>> BACKENDS
('tensorflow', 'jax', 'torch')
>>> set(installed_backends()) <= set(BACKENDS)
True
"""

from __future__ import annotations

import importlib.util
import json
import math
import numbers
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lstm_utils._layers import check_int

__all__ = [
    "BACKENDS",
    "BEHAVIOUR_ROWS",
    "BackendRunError",
    "installed_backends",
    "run_on_backend",
    "backend_behaviour",
]

BACKENDS: tuple[str, ...] = ("tensorflow", "jax", "torch")
"""The Keras 3 backends, in the order chapter 12's tables list them."""

_INSTALL = {
    "tensorflow": "pip install tensorflow (the book's requirements.lock pins it)",
    "jax": "pip install jax (the book's requirements.lock pins it)",
    "torch": "`make torch` adds the CPU build of PyTorch to .venv (an opt-in: the book runs without it)",
}

_SOURCE_NAME = "<run_on_backend source>"
MAX_PROBE_SIZE = 16  # backend_behaviour: the largest units, batch and features
MAX_PROBE_TIMESTEPS = 20
_TRACEBACK_LINES = 40  # how much of the child's traceback a BackendRunError keeps

BEHAVIOUR_ROWS: dict[str, str] = {
    "states_tracked": "state variables in model.non_trainable_variables",
    "eager_calls": "two eager model(x) calls",
    "two_predicts": "two predict() calls",
    "one_predict_two_batches": "one predict() over two batches",
    "predict_on_batch": "two predict_on_batch() calls",
    "states_after_predict": "layer.states after two predict() calls",
    "fit": "stateful fit() over two batches",
    "fit_no_cudnn": "stateful fit() with LSTM(use_cudnn=False)",
    "assign_then_predict": "assign(H0) on a fresh model, then predict()",
    "assign_again_then_predict": "then assign(H1), predict() again",
    "assign_again_then_predict_on_batch": "then assign(H1), predict_on_batch()",
    "reset_state": "reset_state() after an eager call",
    "initial_state_eager": "eager initial_state=[h0, c0]",
    "initial_state_symbolic": "symbolic initial_state (Inputs), predict()",
    "outputs_vs_numpy": "stateless LSTM outputs vs the float64 NumPy LSTM",
    "partial_last_batch": "predict(batch + 1 rows, batch_size=batch)",
    "list_replacement": "layer.states[i] = keras.Variable(...) after a predict()",
    "unroll_free_time_axis": "LSTM(unroll=True) on Input((None, features))",
}
"""Row key -> what it probes, in table order: the keys of ``backend_behaviour(...)["verdicts"]``."""


class BackendRunError(RuntimeError):
    """A snippet run by :func:`run_on_backend` failed in its child process.

    The message names the backend and ends with the tail of the child's traceback;
    ``backend``, ``returncode`` and ``stderr`` (all the child wrote there) are kept.

    Examples
    --------
    >>> error = BackendRunError("jax", 1, "Traceback ...\\nValueError: bad\\n")
    >>> error.backend, error.returncode
    ('jax', 1)
    >>> print(error)
    the snippet failed on the jax backend (exit status 1):
    Traceback ...
    ValueError: bad
    """

    def __init__(self, backend: str, returncode: int, stderr: str, reason: str | None = None) -> None:
        self.backend = backend
        self.returncode = returncode
        self.stderr = stderr
        head = reason or f"the snippet failed on the {backend} backend (exit status {returncode})"
        tail = _traceback_tail(stderr)
        super().__init__(f"{head}:\n{tail}" if tail else head)


def _traceback_tail(stderr: str) -> str:
    """The child's last traceback (its last ``_TRACEBACK_LINES`` lines), without the log lines before it."""
    start = stderr.rfind("Traceback (most recent call last)")
    text = stderr[start:] if start >= 0 else stderr
    lines = text.rstrip().splitlines()
    return "\n".join(lines[-_TRACEBACK_LINES:])


def installed_backends() -> tuple[str, ...]:
    """The backends of :data:`BACKENDS` whose package is installed, found without importing them.

    Returns
    -------
    tuple of str
        A sub-tuple of :data:`BACKENDS`, in its order (``torch`` only after ``make torch``).

    Notes
    -----
    Only ``importlib.util.find_spec`` is asked, so nothing is imported; a package that is
    installed but broken shows up here and fails in :func:`run_on_backend`.
    See chapter 12.

    Examples
    --------
    >>> "tensorflow" in installed_backends()
    True
    """
    return tuple(name for name in BACKENDS if importlib.util.find_spec(name) is not None)


def _check_backend(backend: Any, function: str) -> str:
    if not isinstance(backend, str):
        raise TypeError(
            f"{function}: backend must be a str, one of {BACKENDS}, got {backend!r} ({type(backend).__name__})"
        )
    if backend not in BACKENDS:
        raise ValueError(f"{function}: backend must be one of {BACKENDS}, got {backend!r}")
    if importlib.util.find_spec("keras") is None:
        raise ModuleNotFoundError(f"{function}: Keras 3 (keras) is not installed", name="keras")
    if importlib.util.find_spec(backend) is None:
        raise ModuleNotFoundError(
            f"{function}: the {backend} backend needs the {backend!r} package, which is not installed: "
            f"{_INSTALL[backend]}",
            name=backend,
        )
    return backend


def _check_timeout(timeout: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError(
            f"run_on_backend: timeout must be a number of seconds, got {timeout!r} ({type(timeout).__name__})"
        )
    value = float(timeout)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"run_on_backend: timeout must be a positive, finite number of seconds, got {timeout!r}")
    return value


# What the child process runs: the snippet, then ``results`` as JSON written to a file (the
# child's stdout is the snippet's own and is discarded). Any failure: a traceback on stderr.
_CHILD = r"""
import json, linecache, sys, traceback

def _plain(value, where):
    import numpy as np
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"results{where} has the key {key!r}: only str keys come back")
        return {key: _plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
    raise TypeError(
        f"results{where} is a {type(value).__module__}.{type(value).__qualname__}: only None, bool, "
        "int, float, str, lists, tuples, dicts with str keys and NumPy arrays and scalars come back "
        "(convert tensors and variables with keras.ops.convert_to_numpy)"
    )

def _main():
    source_path, result_path, expected, name = sys.argv[1:5]
    with open(source_path, encoding="utf-8") as file:
        source = file.read()
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    import keras
    actual = keras.backend.backend()
    if actual != expected:
        raise RuntimeError(f"KERAS_BACKEND={expected!r} was set, but Keras runs on the {actual!r} backend")
    namespace = {"__name__": "__main__", "results": {}}
    try:
        exec(compile(source, name, "exec"), namespace)
    except SystemExit as stop:
        raise RuntimeError(
            f"the snippet called sys.exit({stop.code!r}): results come back only from a snippet that runs to its end"
        ) from None
    results = namespace.get("results")
    if not isinstance(results, dict):
        raise TypeError(f"the snippet must leave a dict in results, got {type(results).__name__}")
    plain = _plain(results, "")
    with open(result_path, "w", encoding="utf-8") as file:
        json.dump(plain, file)

try:
    _main()
except BaseException:
    traceback.print_exc()
    sys.stderr.flush()
    sys.exit(1)
"""


def _child_environment(backend: str) -> dict[str, str]:
    env = dict(os.environ)
    env["KERAS_BACKEND"] = backend
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"  # TensorFlow's C++ start-up lines (they go to the discarded stderr anyway)
    env["GLOG_minloglevel"] = "3"
    env["PYTHONWARNINGS"] = env.get("PYTHONWARNINGS", "ignore")
    # The child imports this very lstm_utils (its snippets may use it), wherever it lies.
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [package_root, env.get("PYTHONPATH", "")] if p)
    return env


def run_on_backend(backend: str, source: str, *, timeout: float = 300.0) -> dict[str, Any]:
    """Run Python ``source`` in a fresh process on one Keras 3 backend and return its ``results``.

    The child is ``sys.executable`` with ``KERAS_BACKEND=backend`` set before anything
    imports Keras and TensorFlow's C++ logging turned off. ``source`` starts with an empty
    dict named ``results`` in its namespace and fills it; that dict comes back through a
    JSON file. The child's stdout and stderr are captured, never shown: a notebook cell that
    calls this prints only what the cell itself prints. The child's working directory is a
    temporary folder, removed afterwards, and it imports the same ``lstm_utils`` as this
    process.

    Parameters
    ----------
    backend : str
        One of :data:`BACKENDS`, installed (see :func:`installed_backends`).
    source : str
        Python code that compiles. Values in ``results`` must be ``None``, ``bool``,
        ``int``, ``float``, ``str``, lists, tuples and dicts with ``str`` keys of these, or
        NumPy arrays and scalars (convert tensors with ``keras.ops.convert_to_numpy``).
    timeout : float
        Seconds the child may run (default 300).

    Returns
    -------
    dict
        ``results`` as JSON gives it back: NumPy arrays and tuples become (nested) lists,
        NumPy scalars become Python numbers.

    Raises
    ------
    TypeError
        If ``backend`` or ``source`` is not a ``str`` or ``timeout`` is not a number.
    ValueError
        If ``backend`` is not one of :data:`BACKENDS`, ``timeout`` is not positive and
        finite, or ``source`` holds a null byte.
    ModuleNotFoundError
        If the backend's package (or Keras) is not installed; the message says how to
        install it (``make torch`` for PyTorch).
    SyntaxError
        If ``source`` does not compile (checked here, before any process starts).
    TimeoutError
        If the child runs longer than ``timeout`` (it is killed).
    BackendRunError
        If the snippet raises, leaves something other than a dict in ``results`` or a
        value that cannot come back, or Keras runs on another backend than asked; the
        message names the backend and ends with the child's traceback.

    Notes
    -----
    Each call pays for a fresh process (importing TensorFlow or JAX takes seconds): put
    everything one backend must do in one snippet. See chapter 12.

    Examples
    --------
    >>> run_on_backend("tensorflow", "import keras; results['backend'] = keras.backend.backend()")
    {'backend': 'tensorflow'}
    """
    backend = _check_backend(backend, "run_on_backend")
    if not isinstance(source, str):
        raise TypeError(f"run_on_backend: source must be Python code in a str, got {type(source).__name__}")
    try:
        compile(source, _SOURCE_NAME, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise SyntaxError(f"run_on_backend: source does not compile: {error.msg} (line {error.lineno})") from error
    except ValueError as error:  # a null byte (Python 3.11)
        raise ValueError(f"run_on_backend: source does not compile: {error}") from error
    seconds = _check_timeout(timeout)
    with tempfile.TemporaryDirectory(prefix="lstm_utils_backend_") as folder:
        source_path = Path(folder, "source.py")
        result_path = Path(folder, "results.json")
        source_path.write_text(source, encoding="utf-8")
        command = [sys.executable, "-c", _CHILD, str(source_path), str(result_path), backend, _SOURCE_NAME]
        try:
            done = subprocess.run(
                command,
                env=_child_environment(backend),
                cwd=folder,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=seconds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"run_on_backend: the {backend} run took longer than timeout={seconds:g} s and was stopped"
            ) from None
        if done.returncode != 0:
            raise BackendRunError(backend, done.returncode, done.stderr)
        if not result_path.exists():
            raise BackendRunError(
                backend,
                done.returncode,
                done.stderr,
                reason=f"the snippet on the {backend} backend exited before returning its results (sys.exit?)",
            )
        results: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    return results


# The probes of backend_behaviour, run in the child. PARAMS (seed, sizes, layer) is put before it.
_PROBE = r'''
import numpy as np
import keras
from keras import ops
from lstm_utils.reference import lstm_step

SEED, U, B, T, F = (PARAMS[k] for k in ("seed", "units", "batch", "timesteps", "features"))
LR = 0.5          # SGD learning rate of the fit rows: two steps, large enough to tell carry from none
ATOL = 1e-5       # outputs and states
FIT_ATOL = 1e-6   # kernels after fit (Keras agrees with the float64 NumPy training to ~1e-7)
if PARAMS["tracked"]:
    from lstm_utils.tracked_state import stateful_lstm_class
    Stateful = stateful_lstm_class(keras)
else:
    Stateful = keras.layers.LSTM

rng = np.random.RandomState(SEED)
W = (rng.randn(F, 4 * U) * 0.5).astype("float32")
RW = (rng.randn(U, 4 * U) * 0.5).astype("float32")
BIAS = (rng.randn(4 * U) * 0.1).astype("float32")
DK = (rng.randn(U, 1) * 0.5).astype("float32")
DB = np.zeros(1, "float32")
X = rng.randn(2 * B, T, F).astype("float32")
Y = rng.randn(2 * B, T, 1).astype("float32")
H0, C0, H1, C1 = ((rng.randn(B, U) * 0.5).astype("float32") for _ in range(4))
ZERO = np.zeros((B, U), "float32")
X_LONG = rng.randn(B, T + 2, F).astype("float32")  # drawn last: the draws above do not depend on it

def forward_with(x, h, c, kernel, recurrent_kernel, bias):
    seq = []
    for t in range(x.shape[1]):
        h, c = lstm_step(x[:, t], h, c, kernel, recurrent_kernel, bias)
        seq.append(h)
    return np.stack(seq, 1), h, c

def forward(x, h, c):
    return forward_with(x, h, c, W, RW, BIAS)

# The stateful models return sequences: the first steps show most clearly where a batch started.
FIRST, FIRST_H, FIRST_C = forward(X[:B], ZERO, ZERO)
CONTINUED, CONTINUED_H, _ = forward(X[B:], FIRST_H, FIRST_C)
FRESH, FRESH_H, _ = forward(X[B:], ZERO, ZERO)
FROM_H0 = forward(X[:B], H0, C0)
FROM_H1 = forward(X[:B], H1, C1)[0]
AFTER_H0 = forward(X[:B], FROM_H0[1], FROM_H0[2])[0]

def npy(value):
    return np.asarray(ops.convert_to_numpy(value), dtype="float64")

def close(a, b, atol=ATOL):
    a, b = npy(a), np.asarray(b, dtype="float64")
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=0))

def which(value, candidates):
    hits = [name for name, ref in candidates.items() if close(value, ref)]
    return hits[0] if len(hits) == 1 else ("indistinguishable" if hits else "other")

def carry(second):
    return which(second, {"carries": CONTINUED, "does not carry": FRESH})

def error(e):
    kind = type(e).__name__
    return f"error: {kind} (in-place)" if "inplace operation" in str(e) else f"error: {kind}"

def stateful_model(dense=False, layer_class=None, **kwargs):
    inputs = keras.Input(batch_shape=(B, T, F))
    layer = (layer_class or Stateful)(U, stateful=True, return_sequences=True, name="lstm", **kwargs)
    outputs = layer(inputs)
    if dense:
        head = keras.layers.Dense(1, name="dense")
        outputs = head(outputs)
    model = keras.Model(inputs, outputs)
    layer.cell.set_weights([W, RW, BIAS])
    if dense:
        head.set_weights([DK, DB])
    return model, layer

verdicts = {}
raw = {}

def probe(row, function):
    try:
        verdicts[row] = function()
    except Exception as e:
        verdicts[row] = error(e)

def states_tracked():
    model, layer = stateful_model()
    tracked = {id(v) for v in model.non_trainable_variables}
    return "tracked" if all(id(s) in tracked for s in layer.states) else "not tracked"

def eager_calls():
    model, layer = stateful_model()
    model(X[:B])
    return carry(model(X[B:]))

def two_predicts():
    model, layer = stateful_model()
    model.predict(X[:B], batch_size=B, verbose=0)
    verdict = carry(model.predict(X[B:], batch_size=B, verbose=0))
    raw["states_after_predict"] = which(layer.states[0], {
        "last state": CONTINUED_H, "state after the first batch": FIRST_H, "still zeros": ZERO,
        "last state without carry": FRESH_H})
    return verdict

def one_predict():
    model, layer = stateful_model()
    return carry(model.predict(X, batch_size=B, verbose=0)[B:])

def predict_on_batch():
    model, layer = stateful_model()
    model.predict_on_batch(X[:B])
    return carry(model.predict_on_batch(X[B:]))

def kernel_of(layer):
    return npy(layer.cell.kernel)

def fit_kernel(**kwargs):
    model, layer = stateful_model(dense=True, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(LR), loss="mse")
    model.fit(X, Y, batch_size=B, epochs=1, shuffle=False, verbose=0)
    return kernel_of(layer)

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))

def numpy_step(x, h0, c0, y, kernel, recurrent_kernel, bias, dense_kernel, dense_bias):
    """One SGD step of LSTM(return_sequences=True) -> Dense(1) on the mean squared error, in float64 NumPy.

    Returns the updated weights and the state the batch ended with (computed with the
    weights before the update), by backpropagation through time.
    """
    h, c, cache = h0, c0, []
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent_kernel + bias
        i, f, g, o = sigmoid(z[:, :U]), sigmoid(z[:, U:2 * U]), np.tanh(z[:, 2 * U:3 * U]), sigmoid(z[:, 3 * U:])
        c_new = f * c + i * g
        cache.append((x[:, t], h, c, i, f, g, o, np.tanh(c_new), y[:, t]))
        h, c = o * np.tanh(c_new), c_new
    grads = [np.zeros_like(kernel), np.zeros_like(recurrent_kernel), np.zeros_like(bias)]
    d_dense_kernel, d_dense_bias = np.zeros_like(dense_kernel), np.zeros_like(dense_bias)
    dh_next, dc = np.zeros_like(h), np.zeros_like(c)
    for t, (x_t, h_prev, c_prev, i, f, g, o, tanh_c, y_t) in reversed(list(enumerate(cache))):
        h_t = o * tanh_c
        d_pred = 2.0 * (h_t @ dense_kernel + dense_bias - y_t) / y.size
        d_dense_kernel += h_t.T @ d_pred
        d_dense_bias += d_pred.sum(axis=0)
        dh = dh_next + d_pred @ dense_kernel.T
        dc = dc + dh * o * (1.0 - tanh_c ** 2)
        dz = np.concatenate(
            [dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2), dh * tanh_c * o * (1 - o)], axis=1)
        grads[0] += x_t.T @ dz
        grads[1] += h_prev.T @ dz
        grads[2] += dz.sum(axis=0)
        dh_next, dc = dz @ recurrent_kernel.T, dc * f
    weights = (kernel, recurrent_kernel, bias, dense_kernel, dense_bias)
    updated = [w - LR * d for w, d in zip(weights, [*grads, d_dense_kernel, d_dense_bias])]
    return updated, h, c

def numpy_fit_kernel(carry):
    """The kernel after fit() over the two batches, in NumPy: with carry, batch 2 starts from the
    state batch 1 ended with (what stateful=True does); without, from zeros."""
    weights = [np.asarray(w, "float64") for w in (W, RW, BIAS, DK, DB)]
    h, c = ZERO.astype("float64"), ZERO.astype("float64")
    for k in range(2):
        xb, yb = X[k * B:(k + 1) * B].astype("float64"), Y[k * B:(k + 1) * B].astype("float64")
        start = (h, c) if carry else (ZERO.astype("float64"), ZERO.astype("float64"))
        weights, h, c = numpy_step(xb, *start, yb, *weights)
    return weights[0]

REFERENCE_KERNEL = numpy_fit_kernel(carry=True)
STATELESS_KERNEL = numpy_fit_kernel(carry=False)
raw["kernel_reference"] = REFERENCE_KERNEL
raw["kernel_stateless"] = STATELESS_KERNEL
raw["fit_separation"] = float(np.max(np.abs(REFERENCE_KERNEL - STATELESS_KERNEL)))

def fit_verdict(key, **kwargs):
    raw[key] = None
    kernel = fit_kernel(**kwargs)
    raw[key] = kernel
    hits = [name for name, ref in (("carries", REFERENCE_KERNEL), ("does not carry", STATELESS_KERNEL))
            if close(kernel, ref, FIT_ATOL)]
    return hits[0] if len(hits) == 1 else ("indistinguishable" if hits else "other")

def assign_rows():
    model, layer = stateful_model()
    layer.states[0].assign(H0)
    layer.states[1].assign(C0)
    first = model.predict(X[:B], batch_size=B, verbose=0)
    verdicts["assign_then_predict"] = which(first, {"uses H0": FROM_H0[0], "starts from zeros": FIRST})
    layer.states[0].assign(H1)
    layer.states[1].assign(C1)
    second = model.predict(X[:B], batch_size=B, verbose=0)
    verdicts["assign_again_then_predict"] = which(second, {
        "uses H1": FROM_H1, "uses H0": FROM_H0[0], "continues": AFTER_H0, "starts from zeros": FIRST})
    layer.states[0].assign(H1)
    layer.states[1].assign(C1)
    third = model.predict_on_batch(X[:B])
    return which(third, {"uses H1": FROM_H1, "uses H0": FROM_H0[0], "starts from zeros": FIRST})

def reset_state():
    model, layer = stateful_model()
    model(X[:B])
    layer.reset_state()
    zero = all(bool(np.all(npy(s) == 0)) for s in layer.states)
    after = close(model(X[:B]), FIRST)
    return "zeroes" if zero and after else ("does not zero" if not zero else "other")

def stateless_layer(**kwargs):
    layer = keras.layers.LSTM(U, **kwargs)
    layer.build((B, T, F))
    layer.cell.set_weights([W, RW, BIAS])
    return layer

def initial_state_eager():
    layer = stateless_layer(return_state=True)
    _, h, c = layer(ops.convert_to_tensor(X[:B]), initial_state=[ops.convert_to_tensor(H0), ops.convert_to_tensor(C0)])
    return "works" if close(h, FROM_H0[1]) and close(c, FROM_H0[2]) else "wrong values"

def initial_state_symbolic():
    xi, hi, ci = keras.Input((T, F)), keras.Input((U,)), keras.Input((U,))
    layer = keras.layers.LSTM(U, return_state=True)
    model = keras.Model([xi, hi, ci], layer(xi, initial_state=[hi, ci]))
    layer.cell.set_weights([W, RW, BIAS])
    _, h, c = model.predict([X[:B], H0, C0], batch_size=B, verbose=0)
    return "works" if close(h, FROM_H0[1]) and close(c, FROM_H0[2]) else "wrong values"

def outputs_vs_numpy():
    layer = stateless_layer(return_sequences=True)
    outputs = npy(layer(X[:B], initial_state=[H0, C0]))
    raw["outputs"] = outputs
    raw["outputs_max_difference"] = float(np.max(np.abs(outputs - FROM_H0[0])))
    return "matches" if close(outputs, FROM_H0[0]) else "differs"

def partial_last_batch():
    model, layer = stateful_model()
    rows = len(model.predict(X[:B + 1], batch_size=B, verbose=0))
    return "pads silently" if rows > B + 1 else ("returns every row" if rows == B + 1 else "drops rows")

def list_replacement():
    model, layer = stateful_model()
    model.predict(X[:B], batch_size=B, verbose=0)
    layer.reset_state()
    layer.states[0] = keras.Variable(H1)
    layer.states[1] = keras.Variable(C1)
    after = model.predict(X[:B], batch_size=B, verbose=0)
    return which(after, {"takes effect": FROM_H1, "ignored": FIRST})

def unroll_free_time_axis():
    try:
        inputs = keras.Input((None, F))
        layer = keras.layers.LSTM(U, unroll=True)
        model = keras.Model(inputs, layer(inputs))
        layer.cell.set_weights([W, RW, BIAS])
    except Exception as e:
        return "error at build: " + type(e).__name__
    try:
        first = model.predict(X[:B], batch_size=B, verbose=0)
    except Exception as e:
        return "error at predict: " + type(e).__name__
    try:  # a second length: a backend that retraces with a free time axis cannot unroll then
        second = model.predict(X_LONG, batch_size=B, verbose=0)
    except Exception as e:
        return "first length only, then error: " + type(e).__name__
    right = close(first, FIRST_H) and close(second, forward(X_LONG, ZERO, ZERO)[1])
    return "works" if right else "wrong values"

probe("states_tracked", states_tracked)
probe("eager_calls", eager_calls)
probe("two_predicts", two_predicts)
probe("one_predict_two_batches", one_predict)
probe("predict_on_batch", predict_on_batch)
verdicts["states_after_predict"] = raw.pop("states_after_predict", "not measured")
probe("fit", lambda: fit_verdict("kernel"))
probe("fit_no_cudnn", lambda: fit_verdict("kernel_no_cudnn", use_cudnn=False))
probe("assign_again_then_predict_on_batch", assign_rows)
probe("reset_state", reset_state)
probe("initial_state_eager", initial_state_eager)
probe("initial_state_symbolic", initial_state_symbolic)
probe("outputs_vs_numpy", outputs_vs_numpy)
probe("partial_last_batch", partial_last_batch)
probe("list_replacement", list_replacement)
probe("unroll_free_time_axis", unroll_free_time_axis)
for row in ROWS:
    verdicts.setdefault(row, "not measured")
results["backend"] = keras.backend.backend()
results["keras_version"] = keras.__version__
results["verdicts"] = {row: verdicts[row] for row in ROWS}
results.update(raw)
'''


def backend_behaviour(
    backend: str,
    *,
    seed: int = 0,
    units: int = 4,
    batch: int = 2,
    timesteps: int = 5,
    features: int = 3,
    tracked: bool = False,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Measure how a stateful LSTM behaves on one Keras 3 backend: one verdict per table row.

    One fresh process (:func:`run_on_backend`) builds small LSTMs with fixed weights
    (drawn from ``seed``), runs every probe of :data:`BEHAVIOUR_ROWS` and decides each
    verdict there by comparing what Keras returned with a float64 NumPy LSTM
    (``lstm_utils.reference.lstm_step``) started from the candidate states, or, for
    ``fit`` (SGD, learning rate 0.5, mean squared error, two batches, ``shuffle=False``),
    with the kernels of two float64 NumPy trainings (backpropagation through time):
    one where the second batch starts from the state the first ended with (what
    ``stateful=True`` should do) and one where it starts from zeros. Nothing is assumed: a
    verdict is what was measured.

    Parameters
    ----------
    backend : str
        One of :data:`BACKENDS`, installed.
    seed : int
        Seeds the weights, inputs, targets and the states ``H0``/``H1``
        (0 .. 2**32 - 1).
    units, batch, timesteps, features : int
        The LSTM's sizes: ``units``, ``features`` 1 .. 16, ``batch`` 2 .. 16 (two rows at
        least, so that a partial last batch exists), ``timesteps`` 1 .. 20. The probe is
        meant to be small: with longer sequences and wider layers the initial state's
        effect on the outputs and on the fitted kernel fades towards float32 noise, and
        verdicts would turn ``"indistinguishable"``; and it stays quick.
    tracked : bool
        Probe ``lstm_utils.StatefulLSTM`` (state variables tracked, module
        ``lstm_utils.tracked_state``) instead of ``keras.layers.LSTM`` in the stateful
        rows (default ``False``).
    timeout : float
        Seconds the child may run.

    Returns
    -------
    dict
        ``"backend"`` and ``"keras_version"`` (what the child ran); ``"verdicts"``, row key
        -> verdict, in the order of :data:`BEHAVIOUR_ROWS`; and raw values:
        ``"outputs"`` (the stateless LSTM's ``return_sequences`` outputs from
        ``[H0, C0]``, shape ``(batch, timesteps, units)``, for cross-backend agreement),
        ``"outputs_max_difference"`` (from the NumPy LSTM), ``"kernel"`` and
        ``"kernel_no_cudnn"`` (the LSTM kernel after the stateful fits, ``None`` where the
        fit failed), ``"kernel_reference"`` and ``"kernel_stateless"`` (the NumPy trainings
        with and without the carried state), and
        ``"fit_separation"`` (the largest difference between those two: how far apart
        "carries" and "does not carry" lie). Arrays are nested lists.

    Raises
    ------
    TypeError, ValueError, ModuleNotFoundError
        For a bad ``backend`` (as :func:`run_on_backend`), a size or seed that is not an
        integer in its range, or ``tracked`` that is not a ``bool``; before any process
        starts.
    BackendRunError, TimeoutError
        If the child fails outside the probes (each probe's own error is a verdict).

    Notes
    -----
    Verdict vocabulary (short, deterministic strings):

    - carry rows (``eager_calls``, ``two_predicts``, ``one_predict_two_batches``,
      ``predict_on_batch``): ``"carries"`` (the second batch continues from the first's
      final state), ``"does not carry"`` (it starts from zeros);
    - ``fit``, ``fit_no_cudnn``: ``"carries"`` (the kernel equals the carrying NumPy
      training's, ``atol=1e-6``), ``"does not carry"`` (it equals the one from zeros);
    - ``states_tracked``: ``"tracked"`` / ``"not tracked"``;
    - ``states_after_predict``: ``"last state"``, ``"still zeros"``, ``"state after the
      first batch"``, ``"last state without carry"``;
    - ``assign_then_predict``: ``"uses H0"`` / ``"starts from zeros"``;
      ``assign_again_then_predict`` and ``..._predict_on_batch``: ``"uses H1"`` (the new
      value), ``"uses H0"`` (the value the traced function captured), ``"continues"``,
      ``"starts from zeros"``;
    - ``reset_state``: ``"zeroes"`` / ``"does not zero"``;
    - ``initial_state_eager``, ``initial_state_symbolic``: ``"works"`` / ``"wrong values"``;
    - ``outputs_vs_numpy``: ``"matches"`` / ``"differs"`` (``atol=1e-5``);
    - ``partial_last_batch``: ``"pads silently"`` (more rows come back than went in),
      ``"returns every row"``, ``"drops rows"``;
    - ``list_replacement``: ``"takes effect"`` / ``"ignored"``;
    - ``unroll_free_time_axis`` (``predict`` with ``timesteps``, then ``timesteps + 2``):
      ``"works"`` (both right), ``"error at build: <Type>"``, ``"error at predict: <Type>"``,
      ``"first length only, then error: <Type>"`` (the second length fails: TensorFlow
      retraces with a free time axis), ``"wrong values"``.

    Any row: ``"error: <Type>"`` when the probe raised (``"error: RuntimeError (in-place)"``
    for PyTorch autograd's in-place modification error), ``"indistinguishable"`` when
    both candidates matched, ``"other"`` when none did, ``"not measured"`` when an earlier
    step failed.

    Takes about 5-15 s per call (most of it importing the backend and tracing).
    See chapter 12.

    Examples
    --------
    >>> from lstm_utils.backends import BEHAVIOUR_ROWS
    >>> list(BEHAVIOUR_ROWS)[:3]
    ['states_tracked', 'eager_calls', 'two_predicts']
    """
    backend = _check_backend(backend, "backend_behaviour")
    params = {
        "seed": check_int("seed", seed, 0, 2**32 - 1),
        "units": check_int("units", units, 1, MAX_PROBE_SIZE),
        "batch": check_int("batch", batch, 2, MAX_PROBE_SIZE),
        "timesteps": check_int("timesteps", timesteps, 1, MAX_PROBE_TIMESTEPS),
        "features": check_int("features", features, 1, MAX_PROBE_SIZE),
    }
    if not isinstance(tracked, bool):
        raise TypeError(f"backend_behaviour: tracked must be True or False, got {tracked!r} ({type(tracked).__name__})")
    _check_timeout(timeout)
    header = f"PARAMS = {dict(params, tracked=tracked)!r}\nROWS = {list(BEHAVIOUR_ROWS)!r}\n"
    return run_on_backend(backend, header + _PROBE, timeout=timeout)
