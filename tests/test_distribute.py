"""lstm_utils under tf.distribute.MirroredStrategy, on 2 logical CPU devices.

Logical devices must be configured before TensorFlow initialises its devices, which this
test process has long done, so every multi-device check runs in a fresh Python process
(the script below). It writes its findings as JSON; the tests here assert on them. The
first process runs a stream, saves its states half-way; a second, fresh process loads
them and continues, and must give bit-identical outputs to the uninterrupted stream.
The in-process tests at the end check the helpers' refusals and their single-device
behaviour (on Keras 3 and Keras 2 through the ``K`` fixture).

The fresh-process tests are marked ``slow`` (``make test-slow``, which CI runs): they take
about 20 seconds, and chapter 13's cells assert the same behaviour under ``make test``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import lstm_utils
from lstm_utils.distribute import (
    distribute_rows,
    fit_carrying_state,
    gather_rows,
    predict_carrying_state,
    replica_variables,
    replicas_in_sync,
)

SCRIPT = textwrap.dedent(
    r"""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    MODE, DIR = sys.argv[1], sys.argv[2]
    from lstm_utils.distribute import logical_cpus, replica_variables, fit_carrying_state, predict_carrying_state
    DEVICES = logical_cpus(2)  # before TensorFlow sets up its devices
    import numpy as np, tensorflow as tf, keras, tf_keras, lstm_utils

    R, B, T, F, U = 2, 2, 5, 3, 4
    G = R * B
    strategy = tf.distribute.MirroredStrategy(DEVICES)
    out = {"devices": len(DEVICES), "too_late": None}
    try:
        logical_cpus(3)
    except RuntimeError as error:
        out["too_late"] = str(error)
    rng = np.random.default_rng(0)
    W = [rng.normal(0, 0.5, (F, 4 * U)).astype("float32"), rng.normal(0, 0.5, (U, 4 * U)).astype("float32"),
         rng.normal(0, 0.1, (4 * U,)).astype("float32")]
    X = rng.normal(size=(4 * G, T, F)).astype("float32")  # 4 global batches in stateful order
    S0 = [rng.normal(size=(G, U)).astype("float32"), rng.normal(size=(G, U)).astype("float32")]

    def build(batch):
        lstm = keras.layers.LSTM(U, stateful=True, name="lstm")
        model = keras.Sequential([keras.Input(batch_shape=(batch, T, F)), lstm])
        model.layers[0].set_weights(W)
        return model

    def error_of(fn):
        try:
            fn()
        except (ValueError, TypeError) as error:
            return f"{type(error).__name__}: {error}"
        return None

    def maxdiff(first, second):
        return float(max(np.max(np.abs(a - b)) for a, b in zip(first, second, strict=True)))

    def batches(model, xs):
        return [model.predict(xs[k * G:(k + 1) * G], batch_size=G, verbose=0) for k in range(len(xs) // G)]

    if MODE == "first":
        with strategy.scope():
            dist = build(B)
        single = build(G)
        lstm = dist.layers[0]
        out["stateful_batch_size"] = lstm_utils.stateful_batch_size(dist)
        out["check_batch"] = lstm_utils.check_batch(dist, X)
        out["check_batch_per_replica"] = error_of(lambda: lstm_utils.check_batch(dist, X, batch_size=B))
        lstm_utils.set_states(lstm, S0)
        lstm_utils.set_states(single.layers[0], S0)
        copies = replica_variables(lstm.states[0])
        out["copies"] = [bool(np.array_equal(c.numpy(), S0[0][r * B:(r + 1) * B])) for r, c in enumerate(copies)]
        out["get_after_set"] = all(np.array_equal(a, b) for a, b in zip(lstm_utils.get_states(lstm), S0))
        before = lstm_utils.get_states(lstm)
        out["refuse_per_replica"] = error_of(lambda: lstm_utils.set_states(lstm, [s[:B] for s in S0]))
        out["refuse_neither"] = error_of(lambda: lstm_utils.set_states(lstm, [s[:3] for s in S0]))
        out["unchanged_after_refusal"] = all(np.array_equal(a, b) for a, b in zip(lstm_utils.get_states(lstm), before))
        d, s = batches(dist, X[:2 * G]), batches(single, X[:2 * G])
        out["first_half_vs_single_max"] = maxdiff(d, s)
        out["states_vs_single_max"] = maxdiff(lstm_utils.get_states(lstm), lstm_utils.get_states(single.layers[0]))
        h_all = lstm_utils.get_states(lstm)[0]
        out["public_read_is_replica0"] = bool(np.array_equal(lstm.states[0].numpy(), h_all[:B]))
        lstm_utils.save_states(dist, os.path.join(DIR, "states.npz"))
        np.save(os.path.join(DIR, "saved_h.npy"), lstm_utils.get_states(lstm)[0])
        rest, rest_single = batches(dist, X[2 * G:]), batches(single, X[2 * G:])
        np.save(os.path.join(DIR, "stream.npy"), np.concatenate(rest))
        np.save(os.path.join(DIR, "stream_single.npy"), np.concatenate(rest_single))
        lstm_utils.reset_states(dist)
        out["reset_all_zero"] = [bool(np.all(c.numpy() == 0)) for v in lstm.states for c in replica_variables(v)]
        # with_batch_size: global batch inside the scope, one device outside it
        with strategy.scope():
            copy = lstm_utils.with_batch_size(dist, 2 * G)
            out["with_batch_size_odd"] = error_of(lambda: lstm_utils.with_batch_size(dist, 3))
        out["copy_per_replica_rows"] = int(copy.layers[0].states[0].shape[0])
        out["copy_global"] = lstm_utils.stateful_batch_size(copy)
        serve = lstm_utils.with_batch_size(dist, 1)
        out["serve_copies"] = len(replica_variables(serve.layers[0].states[0]))
        # Keras 2 refuses stateful layers in a strategy scope
        with strategy.scope():
            out["keras2"] = error_of(lambda: tf_keras.layers.LSTM(U, stateful=True))
        # the explicit-state helper: 2 replicas vs single-device stateful fit, both Keras versions
        Y = rng.normal(size=(2 * G, 1)).astype("float32")
        dense = [rng.normal(0, 0.5, (U, 1)).astype("float32"), np.zeros(1, "float32")]
        for name, K in (("keras3", keras), ("keras2", tf_keras)):
            def stateful_model(stateful):
                layers = [K.Input(batch_shape=(G, T, F)), K.layers.LSTM(U, stateful=stateful), K.layers.Dense(1)]
                m = K.Sequential(layers)
                m.set_weights(W + dense)
                m.compile(optimizer=K.optimizers.SGD(0.1), loss="mse")
                return m
            ref, ref_stateless = stateful_model(True), stateful_model(False)
            ref_out = ref.predict(X[:2 * G], batch_size=G, verbose=0)
            ref.layers[0].reset_states()
            ref.fit(X[:2 * G], Y, batch_size=G, shuffle=False, epochs=1, verbose=0)
            ref_stateless.fit(X[:2 * G], Y, batch_size=G, shuffle=False, epochs=1, verbose=0)
            with strategy.scope():
                x_in, h_in, c_in = K.Input((T, F)), K.Input((U,)), K.Input((U,))
                seq, h, c = K.layers.LSTM(U, return_state=True)(x_in, initial_state=[h_in, c_in])
                explicit = K.Model([x_in, h_in, c_in], [K.layers.Dense(1)(seq), h, c])
                explicit.set_weights(W + dense)
                optimizer = K.optimizers.SGD(0.1)
            y_pred, _ = predict_carrying_state(explicit, X[:2 * G], batch_size=G, strategy=strategy)
            losses, final = fit_carrying_state(explicit, X[:2 * G], Y, batch_size=G, optimizer=optimizer, loss="mse",
                                               strategy=strategy)
            out[name + "_predict_max"] = float(np.max(np.abs(y_pred - ref_out)))
            out[name + "_fit_max"] = maxdiff(explicit.get_weights(), ref.get_weights())
            out[name + "_vs_stateless"] = maxdiff(explicit.get_weights(), ref_stateless.get_weights())
            out[name + "_final_rows"] = int(final[0].shape[0])
            out[name + "_losses"] = len(losses)
    else:
        with strategy.scope():
            dist = build(B)
        lstm_utils.load_states(dist, os.path.join(DIR, "states.npz"))
        saved = np.load(os.path.join(DIR, "saved_h.npy"))
        out["loaded_rows"] = bool(np.array_equal(lstm_utils.get_states(dist.layers[0])[0], saved))
        resumed = np.concatenate(batches(dist, X[2 * G:]))
        out["resumed_vs_single_device_max"] = maxdiff([resumed], [np.load(os.path.join(DIR, "stream_single.npy"))])
        out["resumed_bit_identical"] = bool(np.array_equal(resumed, np.load(os.path.join(DIR, "stream.npy"))))
        single = build(G)  # the same file on one device with the global batch
        lstm_utils.load_states(single, os.path.join(DIR, "states.npz"))
        out["single_resumed_bit_identical"] = bool(np.array_equal(np.concatenate(batches(single, X[2 * G:])),
                                                                  np.load(os.path.join(DIR, "stream_single.npy"))))
        four = build(1)  # a model for 4 replicas cannot be built here; a wrong batch is refused
        out["wrong_batch"] = error_of(lambda: lstm_utils.load_states(four, os.path.join(DIR, "states.npz")))
    print("RESULT " + json.dumps(out))
    """
)


def run_script(mode: str, directory: Path) -> dict[str, Any]:
    script = directory / "check.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, str(script), mode, str(directory)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, f"the {mode} process failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    directory = tmp_path_factory.mktemp("distribute")
    first = run_script("first", directory)
    second = run_script("second", directory)
    return first, second


@pytest.mark.slow
def test_logical_cpus_makes_devices_once(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, second = runs
    assert first["devices"] == 2 and second["devices"] == 2
    assert "already set up 2 logical CPU device(s), so 3 cannot be made" in first["too_late"]


def test_logical_cpus_refusals() -> None:
    from lstm_utils.distribute import logical_cpus

    with pytest.raises(TypeError, match="count"):
        logical_cpus("2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count"):
        logical_cpus(0)
    assert len(logical_cpus(1)) == 1  # this process runs on one CPU device: asking for it again is fine


@pytest.mark.slow
def test_get_and_set_states_cover_every_replica(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, _ = runs
    assert first["copies"] == [True, True]  # replica r's copy got rows r*B:(r+1)*B of the global state
    assert first["get_after_set"]
    assert first["public_read_is_replica0"]  # what Keras itself shows: replica 0's rows only


@pytest.mark.slow
def test_set_states_refuses_a_batch_that_fits_neither(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, _ = runs
    assert "fits one replica's batch" in first["refuse_per_replica"]
    assert "expected shape (4, 4)" in first["refuse_per_replica"]
    assert "fits neither the global batch (4 rows) nor one replica's (2 rows)" in first["refuse_neither"]
    assert first["unchanged_after_refusal"]


@pytest.mark.slow
def test_distributed_stream_equals_single_device(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, _ = runs
    assert first["first_half_vs_single_max"] < 1e-5
    assert first["states_vs_single_max"] < 1e-5


@pytest.mark.slow
def test_reset_states_zeros_every_replica(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, _ = runs
    assert first["reset_all_zero"] == [True] * 4


@pytest.mark.slow
def test_batch_helpers_speak_of_the_global_batch(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, _ = runs
    assert first["stateful_batch_size"] == 4 and first["check_batch"] == 4
    assert "global batch size 4" in first["check_batch_per_replica"]
    assert first["copy_per_replica_rows"] == 4 and first["copy_global"] == 8
    assert "does not split evenly" in first["with_batch_size_odd"]
    assert first["serve_copies"] == 1


@pytest.mark.slow
def test_keras2_refuses_stateful_layers_under_a_strategy(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    first, _ = runs
    assert "not yet supported with tf.distribute.Strategy" in first["keras2"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["keras3", "keras2"])
def test_explicit_state_helper_equals_single_device_stateful_fit(
    runs: tuple[dict[str, Any], dict[str, Any]], name: str
) -> None:
    first, _ = runs
    assert first[name + "_predict_max"] < 1e-5
    assert first[name + "_fit_max"] < 1e-5
    assert first[name + "_vs_stateless"] > 1e-4  # the check can tell a carried state from none
    assert first[name + "_final_rows"] == 4 and first[name + "_losses"] == 2


@pytest.mark.slow
def test_saved_states_resume_bit_identical_in_a_fresh_process(runs: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _, second = runs
    assert second["loaded_rows"]
    assert second["resumed_bit_identical"]
    assert second["single_resumed_bit_identical"]
    # and equal to the single-device stream that was never interrupted: bit for bit on this CPU
    assert second["resumed_vs_single_device_max"] == 0.0
    assert "does not match the model" in second["wrong_batch"]


# In this process: one device, the helpers' refusals and single-device behaviour.


def explicit_model(K: ModuleType, units: int = 2) -> Any:
    x_in, h_in = K.Input((3, 1)), K.Input((units,))
    seq, h_out = K.layers.GRU(units, return_state=True)(x_in, initial_state=h_in)
    return K.Model([x_in, h_in], [seq, h_out])


def test_plain_variables_have_one_copy(K: ModuleType) -> None:
    lstm = K.layers.LSTM(2, stateful=True)
    lstm(np.zeros((3, 4, 1), "float32"))
    assert replica_variables(lstm.states[0]) == [lstm.states[0]]
    assert replicas_in_sync(lstm.states[0]) == 1


def test_explicit_helper_equals_a_stateful_layer_on_one_device(K: ModuleType) -> None:
    model = explicit_model(K)
    stateful = K.Sequential([K.Input(batch_shape=(2, 3, 1)), K.layers.GRU(2, stateful=True)])
    stateful.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(6, 3, 1)).astype("float32")
    y, [h] = predict_carrying_state(model, x, batch_size=2)
    assert lstm_utils.all_close(y, stateful.predict(x, batch_size=2, verbose=0))
    assert lstm_utils.all_close(h, lstm_utils.get_states(stateful.layers[0])[0])


def test_explicit_helper_starts_from_given_states(K: ModuleType) -> None:
    model = explicit_model(K)
    x = np.ones((2, 3, 1), "float32")
    start = np.full((2, 2), 0.5, "float32")
    y, _ = predict_carrying_state(model, x, batch_size=2, initial_states=[start])
    zero, _ = predict_carrying_state(model, x, batch_size=2)
    assert lstm_utils.all_close(y, model.predict([x, start], verbose=0)[0])
    assert not lstm_utils.all_close(y, zero)


def test_explicit_helper_refusals(K: ModuleType) -> None:
    model = explicit_model(K)
    x = np.ones((4, 3, 1), "float32")
    with pytest.raises(ValueError, match="whole batches of batch_size=3"):
        predict_carrying_state(model, x, batch_size=3)
    with pytest.raises(ValueError, match=r"initial_states\[0\] has 1 rows"):
        predict_carrying_state(model, x, batch_size=2, initial_states=[np.zeros((1, 2))])
    with pytest.raises(TypeError, match="strategy must be a tf.distribute.Strategy"):
        predict_carrying_state(model, x, batch_size=2, strategy="mirrored")
    plain = K.Sequential([K.Input((3, 1)), K.layers.GRU(2)])
    with pytest.raises(ValueError, match=r"must take \[x, \*states\]"):
        predict_carrying_state(plain, x, batch_size=2)
    stateful = K.Sequential([K.Input(batch_shape=(2, 3, 1)), K.layers.GRU(2, stateful=True)])
    with pytest.raises(ValueError, match="holds the stateful layer"):
        predict_carrying_state(stateful, x, batch_size=2)
    with pytest.raises(TypeError, match="optimizer must be a Keras optimizer"):
        fit_carrying_state(model, x, np.zeros((4, 2)), batch_size=2, optimizer=None, loss="mse")
    with pytest.raises(ValueError, match="unknown loss name"):
        fit_carrying_state(model, x, np.zeros((4, 2)), batch_size=2, optimizer=K.optimizers.SGD(), loss="nope")
    with pytest.raises(ValueError, match="same number of samples"):
        fit_carrying_state(model, x, np.zeros((2, 2)), batch_size=2, optimizer=K.optimizers.SGD(), loss="mse")


def test_fit_helper_trains_like_a_stateful_fit_on_one_device(K: ModuleType) -> None:
    model = explicit_model(K)
    stateful = K.Sequential([K.Input(batch_shape=(2, 3, 1)), K.layers.GRU(2, stateful=True)])
    stateful.set_weights(model.get_weights())
    stateful.compile(optimizer=K.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 3, 1)).astype("float32"), rng.normal(size=(4, 2)).astype("float32")
    losses, _ = fit_carrying_state(model, x, y, batch_size=2, optimizer=K.optimizers.SGD(0.1), loss="mse")
    stateful.fit(x, y, batch_size=2, shuffle=False, epochs=1, verbose=0)
    assert len(losses) == 2
    assert all(lstm_utils.all_close(a, b) for a, b in zip(model.get_weights(), stateful.get_weights(), strict=True))


def test_distribute_rows_refusals() -> None:
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    with pytest.raises(TypeError, match="list or tuple"):
        distribute_rows(strategy, np.zeros((2, 2)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="0 rows"):
        distribute_rows(strategy, [np.zeros((0, 2))])
    with pytest.raises(TypeError, match="numeric"):
        distribute_rows(strategy, [np.array(["a", "b"])])
    [value] = distribute_rows(strategy, [np.arange(4.0).reshape(2, 2)])
    assert gather_rows(strategy, [value])[0].tolist() == [[0.0, 1.0], [2.0, 3.0]]
