"""Tests of lstm_utils/tracked_state.py: StatefulLSTM / StatefulGRU, tracked state on every backend.

The factory's checks run here, in this process (Keras 3 on TensorFlow). What the layer does
on each backend runs in one child process per installed backend (``run_on_backend``), once
for the module; PyTorch is skipped where it is not installed (``make torch``). Those child
processes are marked ``slow`` (``make test-slow``, which CI runs); chapter 12's cells assert
the layer's JAX behaviour under ``make test``.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

from lstm_utils.backends import BACKENDS, backend_behaviour, installed_backends, run_on_backend
from lstm_utils.tracked_state import (
    CHECKED_KERAS_VERSION,
    TrackedStateLogic,
    stateful_gru_class,
    stateful_lstm_class,
)

INSTALLED = installed_backends()
B, T, F, U = 2, 5, 3, 4


def backend_param(name: str) -> Any:
    return pytest.param(name, marks=pytest.mark.skipif(name not in INSTALLED, reason=f"{name} is not installed"))


# ---------------------------------------------------------------- the factory, in this process


def test_the_factory_makes_a_registered_lstm_subclass_once() -> None:
    import keras
    import tensorflow as tf

    cls = stateful_lstm_class(keras)
    assert cls.__name__ == "StatefulLSTM"
    assert issubclass(cls, keras.layers.LSTM) and issubclass(cls, TrackedStateLogic)
    assert keras.saving.get_registered_name(cls) == "lstm_utils>StatefulLSTM"
    assert keras.saving.get_registered_object("lstm_utils>StatefulLSTM") is cls
    # tf.keras is the same Keras 3 package: the same class, registered once.
    assert stateful_lstm_class(tf.keras) is cls
    assert stateful_lstm_class(keras) is cls
    gru = stateful_gru_class(keras)
    assert gru.__name__ == "StatefulGRU" and issubclass(gru, keras.layers.GRU)
    assert keras.saving.get_registered_name(gru) == "lstm_utils>StatefulGRU"


def test_the_factory_refuses_keras_2_and_other_things() -> None:
    import tf_keras

    with pytest.raises(TypeError, match=r"for Keras 3 \(keras\); got tf_keras \(Keras 2\), which needs no fix"):
        stateful_lstm_class(tf_keras)
    with pytest.raises(TypeError, match="Keras 2"):
        stateful_gru_class(tf_keras)
    with pytest.raises(TypeError, match="expects the Keras 3 package"):
        stateful_lstm_class(np)
    with pytest.raises(TypeError, match=r"expects the Keras 3 package \(keras\), got 'keras'"):
        stateful_lstm_class("keras")  # type: ignore[arg-type]
    fake = types.ModuleType("keras_lookalike")
    with pytest.raises(TypeError, match="got the module 'keras_lookalike'"):
        stateful_lstm_class(fake)


def test_the_factory_refuses_a_keras_without_the_private_method(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    monkeypatch.delattr(keras.layers.RNN, "_create_state_variables")
    with pytest.raises(
        RuntimeError, match=rf"no RNN._create_state_variables.*checked on Keras {CHECKED_KERAS_VERSION}"
    ):
        stateful_lstm_class(keras)


def test_layer_states_are_tracked_weights_and_stateful_by_default() -> None:
    import keras

    cls = stateful_lstm_class(keras)
    inputs = keras.Input(batch_shape=(B, T, F))
    layer = cls(U, name="lstm")
    model = keras.Model(inputs, layer(inputs))
    assert layer.stateful is True
    assert [w.path for w in model.non_trainable_weights] == ["lstm/state_h", "lstm/state_c"]
    assert all(any(v is s for v in model.non_trainable_variables) for s in layer.states)
    assert len(model.weights) == 5 and len(layer.get_weights()) == 5
    assert [tuple(s.shape) for s in layer.states] == [(B, U), (B, U)]
    stock = keras.layers.LSTM(U, stateful=True)
    keras.Model(inputs, stock(inputs))
    assert len(stock.weights) == 3
    gru = stateful_gru_class(keras)(U, name="gru")
    gru_model = keras.Model(inputs, gru(inputs))
    assert [w.path for w in gru_model.non_trainable_weights] == ["gru/state_h"]
    assert cls(U, stateful=False).stateful is False


def test_layer_refuses_a_non_bool_stateful() -> None:
    import keras

    with pytest.raises(TypeError, match="stateful must be True or False, got 1"):
        stateful_lstm_class(keras)(U, stateful=1)


# ---------------------------------------------------------------- on every backend, in child processes

SNIPPET = f"""
import os, tempfile
import numpy as np
import keras
from lstm_utils.reference import reference_forward
from lstm_utils.tracked_state import stateful_gru_class, stateful_lstm_class

B, T, F, U = {B}, {T}, {F}, {U}
BACKEND = keras.backend.backend()
StatefulLSTM = stateful_lstm_class(keras)
StatefulGRU = stateful_gru_class(keras)
rng = np.random.RandomState(0)
W = (rng.randn(F, 4 * U) * 0.5).astype("float32")
RW = (rng.randn(U, 4 * U) * 0.5).astype("float32")
BIAS = (rng.randn(4 * U) * 0.1).astype("float32")
DK = (rng.randn(U, 1) * 0.5).astype("float32")
X = rng.randn(2 * B, T, F).astype("float32")
Y = rng.randn(2 * B, 1).astype("float32")
H1, C1 = (rng.randn(B, U) * 0.5).astype("float32"), (rng.randn(B, U) * 0.5).astype("float32")
ZERO = np.zeros((B, U), "float32")
npy = lambda v: np.asarray(keras.ops.convert_to_numpy(v))

def build(cls, dense=False, **kwargs):
    inputs = keras.Input(batch_shape=(B, T, F))
    layer = cls(U, stateful=True, name="lstm", **kwargs)
    outputs = layer(inputs)
    if dense:
        head = keras.layers.Dense(1, name="dense")
        outputs = head(outputs)
    model = keras.Model(inputs, outputs)
    layer.cell.set_weights([W, RW, BIAS])
    if dense:
        head.set_weights([DK, np.zeros(1, "float32")])
    return model, layer

model, layer = build(StatefulLSTM)
first = reference_forward(layer, X[:B], [ZERO, ZERO])
results["ref_continued"] = reference_forward(layer, X[B:], first[1])[0][:, -1]
results["ref_fresh"] = reference_forward(layer, X[B:], [ZERO, ZERO])[0][:, -1]
results["ref_first"] = first[0][:, -1]
results["ref_from_h1"] = reference_forward(layer, X[:B], [H1, C1])[0][:, -1]
model.predict(X[:B], batch_size=B, verbose=0)
results["predict_2"] = model.predict(X[B:], batch_size=B, verbose=0)
model.predict_on_batch(X[:B])  # a third batch, then reset
layer.reset_state()
results["states_after_reset"] = [npy(s) for s in layer.states]
results["predict_after_reset"] = model.predict(X[:B], batch_size=B, verbose=0)
layer.states[0].assign(H1)
layer.states[1].assign(C1)
results["predict_after_assign"] = model.predict(X[:B], batch_size=B, verbose=0)

# .keras round trip: the state is saved, and the loaded layer carries on from it.
layer.states[0].assign(H1)
layer.states[1].assign(C1)
path = os.path.join(tempfile.mkdtemp(), "tracked.keras")
model.save(path)
loaded = keras.models.load_model(path)  # no custom_objects: the class is registered
loaded_layer = loaded.get_layer("lstm")
results["loaded_class"] = type(loaded_layer).__name__
results["loaded_states"] = [npy(s) for s in loaded_layer.states]
results["loaded_predict"] = loaded.predict(X[:B], batch_size=B, verbose=0)

def fit_kernel(cls, **kwargs):
    model, layer = build(cls, dense=True, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    model.fit(X, Y, batch_size=B, epochs=1, shuffle=False, verbose=0)
    return npy(layer.cell.kernel)

results["tracked_fit_kernel"] = fit_kernel(StatefulLSTM)
if BACKEND == "tensorflow":
    results["stock_fit_kernel"] = fit_kernel(keras.layers.LSTM)
    results["stateless_fit_kernel"] = fit_kernel(lambda units, stateful, **kw: keras.layers.LSTM(units, **kw))

gru_inputs = keras.Input(batch_shape=(B, T, F))
gru = StatefulGRU(U, name="gru")
gru_model = keras.Model(gru_inputs, gru(gru_inputs))
gru_first = reference_forward(gru, X[:B], [ZERO])
gru_model.predict(X[:B], batch_size=B, verbose=0)
results["gru_predict_2"] = gru_model.predict(X[B:], batch_size=B, verbose=0)
results["gru_ref_continued"] = reference_forward(gru, X[B:], gru_first[1])[0][:, -1]
results["gru_ref_fresh"] = reference_forward(gru, X[B:], [ZERO])[0][:, -1]
"""


@pytest.fixture(scope="module")
def runs() -> dict[str, dict[str, Any]]:
    """The snippet's results on every installed backend: one child process each, for the whole module."""
    return {name: run_on_backend(name, SNIPPET) for name in INSTALLED}


def close(a: Any, b: Any, atol: float = 1e-5) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=0))


BACKEND_PARAMS = [backend_param(name) for name in BACKENDS]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_two_predicts_continue(runs: dict[str, dict[str, Any]], backend: str) -> None:
    run = runs[backend]
    assert not close(run["ref_continued"], run["ref_fresh"]), "the two references must differ"
    assert close(run["predict_2"], run["ref_continued"])
    assert close(run["gru_predict_2"], run["gru_ref_continued"])
    assert not close(run["gru_predict_2"], run["gru_ref_fresh"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_reset_state_zeroes_and_assign_works_after_tracing(runs: dict[str, dict[str, Any]], backend: str) -> None:
    run = runs[backend]
    assert np.all(np.asarray(run["states_after_reset"]) == 0)
    assert close(run["predict_after_reset"], run["ref_first"])
    assert close(run["predict_after_assign"], run["ref_from_h1"])
    assert not close(run["ref_from_h1"], run["ref_first"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_a_keras_file_keeps_the_state(runs: dict[str, dict[str, Any]], backend: str) -> None:
    run = runs[backend]
    assert run["loaded_class"] == "StatefulLSTM"
    h1_c1 = np.asarray(run["loaded_states"])
    assert h1_c1.shape == (2, B, U) and np.any(h1_c1 != 0)
    assert close(run["loaded_predict"], run["ref_from_h1"])


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_fit_equals_the_stock_stateful_fit_on_tensorflow(runs: dict[str, dict[str, Any]], backend: str) -> None:
    if "tensorflow" not in runs:
        pytest.skip("the TensorFlow backend is the reference")
    tf_run = runs["tensorflow"]
    stock, stateless = np.asarray(tf_run["stock_fit_kernel"]), np.asarray(tf_run["stateless_fit_kernel"])
    assert np.max(np.abs(stock - stateless)) > 1e-3, "carrying the state must change the fit"
    # On PyTorch, too, without use_cudnn=False: the layer starts each call from a copy of the state.
    np.testing.assert_allclose(runs[backend]["tracked_fit_kernel"], stock, atol=1e-5, rtol=0)


@pytest.mark.slow
@pytest.mark.skipif("jax" not in INSTALLED, reason="jax is not installed")
def test_backend_behaviour_with_the_tracked_layer_on_jax_carries_everywhere() -> None:
    verdicts = backend_behaviour("jax", tracked=True)["verdicts"]
    for row in (
        "eager_calls",
        "two_predicts",
        "one_predict_two_batches",
        "predict_on_batch",
        "fit",
        "fit_no_cudnn",
    ):
        assert verdicts[row] == "carries", row
    assert verdicts["states_tracked"] == "tracked"
    assert verdicts["states_after_predict"] == "last state"
    assert verdicts["assign_again_then_predict"] == "uses H1"
    assert verdicts["reset_state"] == "zeroes"
