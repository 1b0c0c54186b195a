"""How long one streamed LSTM step takes, every way a user could pick, side by side.

Usage::

    python benchmarks/streaming.py                 # every size, writes benchmarks/results/streaming.{json,png}
    python benchmarks/streaming.py --quick         # fewer repetitions (a smoke test, ~1 minute)
    python benchmarks/streaming.py --sizes 1x64    # one size: BATCHxUNITS[xFEATURES]

Each size runs in its own process (thread pools of TensorFlow, BLAS, LiteRT and ONNX
Runtime are created once per process and disturb each other otherwise), with one thread
at batch 1 and two at larger batches. In each process every way gets the same weights and
the same input, and is first checked against Keras (``model.predict`` over the whole
sequence) over 50 steps from zero state; a way that disagrees is reported as such and not
timed. Then each step is timed on its own: median and 90th percentile in microseconds. The
NumPy GEMM rate of the step's fused matrix product is measured in the same process. A peer
whose package is not installed is reported as skipped, with the reason.

The machine is shared and timings vary from run to run: compare ratios within one run,
and look at the load average printed with the table.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = ["1x16", "1x64", "1x256", "1x1024", "64x1024x64"]
CHECK_STEPS = 50
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")


def parse_size(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.lower().split("x")]
    if len(parts) == 2:
        parts.append(8)
    if len(parts) != 3 or min(parts) < 1:
        raise SystemExit(f"--sizes takes BATCHxUNITS or BATCHxUNITSxFEATURES, got {text!r}")
    return parts[0], parts[1], parts[2]


# ----------------------------------------------------------------------------- one process


def time_calls(call: Callable[[], Any], budget_s: float, max_calls: int) -> dict[str, float]:
    for _ in range(5):
        call()
    samples: list[float] = []
    clock = time.perf_counter_ns
    end = time.perf_counter() + budget_s
    while len(samples) < max_calls and (len(samples) < 15 or time.perf_counter() < end):
        start = clock()
        call()
        samples.append((clock() - start) / 1000.0)
    values = np.array(samples)
    return {"median_us": float(np.median(values)), "p90_us": float(np.percentile(values, 90)), "calls": len(samples)}


def measure_size(batch: int, units: int, features: int, threads: int, budget_s: float) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    import lstm_utils

    lstm_utils.quiet_tensorflow()
    import keras
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already fixed by TF_NUM_INTRAOP_THREADS if TensorFlow started
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    from lstm_utils.streaming import Streamer, step_model

    lstm_utils.set_seed(0)
    rng = np.random.default_rng(0)
    model = keras.Sequential(
        [keras.Input((None, features)), keras.layers.LSTM(units, return_sequences=True), keras.layers.Dense(1)]
    )
    x = rng.normal(size=(batch, CHECK_STEPS, features)).astype("float32")
    expected = model.predict(x, verbose=0, batch_size=batch)
    weights = model.get_weights()
    results: dict[str, Any] = {}
    tolerance = 1e-5 if units <= 256 else 1e-4

    def record(way: str, make: Callable[[], tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]]) -> None:
        """make() -> (step(x_t) -> y_t, reset()); checked over CHECK_STEPS, then timed from the state reached."""
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                step, reset = make()
                reset()
                got = np.stack([np.asarray(step(x[:, t])).reshape(batch, -1) for t in range(CHECK_STEPS)], axis=1)
        except Exception as error:  # a peer that fails to build or convert is reported, not timed
            results[way] = {"status": "failed", "reason": f"{type(error).__name__}: {str(error)[:200]}"}
            return
        difference = float(np.max(np.abs(got - expected)))
        if not difference <= tolerance:
            results[way] = {"status": "disagrees", "max_difference": difference}
            return
        x_t = x[:, 0].copy()
        slow = way.startswith("keras_predict")
        timing = time_calls(lambda: step(x_t), 0.5 if slow else budget_s, 40 if slow else 20000)
        results[way] = {"status": "ok", "max_difference": difference, **timing}

    def skipped(way: str, reason: str) -> None:
        results[way] = {"status": "skipped", "reason": reason}

    def stateful_model(kind: Any = keras, unroll: bool = False) -> Any:
        m = kind.Sequential(
            [
                kind.Input(batch_shape=(batch, 1, features)),
                kind.layers.LSTM(units, stateful=True, return_sequences=True, unroll=unroll),
                kind.layers.Dense(1),
            ]
        )
        m.set_weights(weights)
        return m

    # --- Keras itself, on a stateful copy
    stateful = stateful_model()

    def keras_way(call: Callable[[np.ndarray], Any]) -> Callable[[], Any]:
        def make() -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]:
            return (lambda x_t: np.asarray(call(x_t[:, None]))), (lambda: lstm_utils.reset_states(stateful))

        return make

    record("keras_predict", keras_way(lambda v: stateful.predict(v, verbose=0, batch_size=batch)))
    if batch == 1 and units <= 64:
        record("keras_eager", keras_way(stateful))
    else:
        skipped("keras_eager", "timed at batch 1 and up to 64 units only")
    record("keras_predict_on_batch", keras_way(stateful.predict_on_batch))

    # --- tf.function over the step model, state in and out
    stepper = step_model(model, batch_size=batch)
    zeros = [np.zeros((batch, units), np.float32) for _ in range(2)]

    def explicit(
        call: Callable[..., Any],
    ) -> Callable[[], tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]]:
        def make() -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]:
            state: list[Any] = list(zeros)

            def step(x_t: np.ndarray) -> np.ndarray:
                y, *new = call(x_t, *state)
                state[:] = new
                return np.asarray(y)

            def reset() -> None:
                state[:] = list(zeros)

            return step, reset

        return make

    for way, jit in (("tf_function", False), ("tf_function_xla", True)):
        function = tf.function(lambda a, b, c: stepper([a, b, c], training=False), jit_compile=jit)
        record(way, explicit(function))

    # --- other frameworks, when installed
    if importlib.util.find_spec("jax") is None:
        skipped("jax_jit", "jax is not installed")
    else:
        skipped("jax_jit", "needs KERAS_BACKEND=jax in its own process; not run by this script yet")
    if importlib.util.find_spec("torch") is None:
        skipped("torch_lstmcell", "torch is not installed")
    else:
        import torch

        torch.set_num_threads(threads)
        cell = torch.nn.LSTMCell(features, units)
        kernel, recurrent, bias = weights[0], weights[1], weights[2]
        with torch.no_grad():  # Keras i, f, c, o is torch's i, f, g, o; torch keeps (4U, in)
            cell.weight_ih.copy_(torch.from_numpy(kernel.T.copy()))
            cell.weight_hh.copy_(torch.from_numpy(recurrent.T.copy()))
            cell.bias_ih.copy_(torch.from_numpy(bias))
            cell.bias_hh.zero_()
        head_w, head_b = torch.from_numpy(weights[3]), torch.from_numpy(weights[4])

        def torch_step(x_t: np.ndarray, h: Any, c: Any) -> Any:
            with torch.no_grad():
                h, c = cell(torch.from_numpy(x_t), (h, c))
                return (h @ head_w + head_b).numpy(), h, c

        tz = [torch.zeros(batch, units) for _ in range(2)]
        record("torch_lstmcell", lambda: _torch_make(torch_step, tz))

    # --- NumPy by hand, allocating every step
    kernel, recurrent, bias, head_w, head_b = weights

    def numpy_alloc_make() -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]:
        state = [np.zeros((batch, units), np.float32), np.zeros((batch, units), np.float32)]

        def step(x_t: np.ndarray) -> np.ndarray:
            h, c = state
            z = x_t @ kernel + h @ recurrent + bias
            i, f, g, o = np.split(z, 4, axis=1)
            c = 1 / (1 + np.exp(-f)) * c + 1 / (1 + np.exp(-i)) * np.tanh(g)
            h = 1 / (1 + np.exp(-o)) * np.tanh(c)
            state[:] = [h, c]
            result: np.ndarray = h @ head_w + head_b
            return result

        def reset() -> None:
            state[:] = [np.zeros((batch, units), np.float32), np.zeros((batch, units), np.float32)]

        return step, reset

    record("numpy_allocating", numpy_alloc_make)

    # --- the Streamer
    from lstm_utils._streaming_engines import numba_available

    engines = ["numpy"] + (["numba"] if numba_available() else [])
    for engine in engines:

        def make_streamer(engine: str = engine) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]:
            streamer = Streamer(model, batch, engine=engine)
            return streamer.step, streamer.reset

        record(f"streamer_{engine}", make_streamer)
    if not numba_available():
        skipped("streamer_numba", "numba is not installed (pip install lstm_utils[fast])")
    results["streamer_auto_engine"] = {"status": "info", "engine": Streamer(model, batch).engine}

    # --- ONNX Runtime, from the step model through tf2onnx
    if importlib.util.find_spec("tf2onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        skipped("onnxruntime", "tf2onnx or onnxruntime is not installed")
    else:

        def onnx_make() -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]:
            import onnxruntime as ort
            import tf2onnx

            spec = [
                tf.TensorSpec((batch, features), tf.float32, name="x_t"),
                tf.TensorSpec((batch, units), tf.float32, name="h"),
                tf.TensorSpec((batch, units), tf.float32, name="c"),
            ]
            function = tf.function(lambda a, b, c: stepper([a, b, c], training=False), input_signature=spec)
            proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=17)
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
            names = [i.name for i in session.get_inputs()]
            step, reset = explicit(lambda *args: session.run(None, dict(zip(names, args, strict=True))))()
            return step, reset

        record("onnxruntime", onnx_make)

    # --- LiteRT
    if importlib.util.find_spec("ai_edge_litert") is None:
        for way in ("litert_stateful_unroll", "litert_explicit_state", "litert_keras2_fused"):
            skipped(way, "ai-edge-litert is not installed")
    else:
        from ai_edge_litert.interpreter import Interpreter

        def interpreter(keras_model: Any) -> Any:
            content = tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
            it = Interpreter(model_content=content, num_threads=threads)
            it.allocate_tensors()
            return it

        def litert_stateful(kind: Any) -> Callable[[], tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]]:
            def make() -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]:
                its = [interpreter(stateful_model(kind, unroll=kind is keras))]
                x_index, y_index = its[0].get_input_details()[0]["index"], its[0].get_output_details()[0]["index"]

                def step(x_t: np.ndarray) -> np.ndarray:
                    it = its[0]
                    it.set_tensor(x_index, x_t[:, None])
                    it.invoke()
                    result: np.ndarray = it.get_tensor(y_index)
                    return result

                def reset() -> None:  # reset_all_variables() leaves the state as it is (chapter 11): start anew
                    its[0] = interpreter(stateful_model(kind, unroll=kind is keras))

                return step, reset

            return make

        record("litert_stateful_unroll", litert_stateful(keras))

        def litert_explicit() -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]:
            it = interpreter(stepper)
            by_name = {
                d["name"].split(":")[0].removeprefix("serving_default_"): d["index"] for d in it.get_input_details()
            }
            order = [by_name[t.name] for t in stepper.inputs]
            outputs = sorted(it.get_output_details(), key=lambda d: int(d["name"].rsplit(":", 1)[1]))
            out_index = [d["index"] for d in outputs]

            def call(*args: np.ndarray) -> list[np.ndarray]:
                for index, value in zip(order, args, strict=True):
                    it.set_tensor(index, value)
                it.invoke()
                return [it.get_tensor(i) for i in out_index]

            return explicit(call)()

        record("litert_explicit_state", litert_explicit)
        import tf_keras

        def litert_keras2_fused() -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]:
            # A stateless Keras 2 LSTM with a fixed (batch, 1) input converts to the fused
            # UNIDIRECTIONAL_SEQUENCE_LSTM op, which keeps its state between invokes (chapter 11).
            m = tf_keras.Sequential(
                [
                    tf_keras.Input(batch_shape=(batch, 1, features)),
                    tf_keras.layers.LSTM(units, return_sequences=True),
                    tf_keras.layers.Dense(1),
                ]
            )
            m.set_weights(weights)
            it = interpreter(m)
            if "UNIDIRECTIONAL_SEQUENCE_LSTM" not in {op["op_name"] for op in it._get_ops_details()}:
                raise RuntimeError("the converter did not emit UNIDIRECTIONAL_SEQUENCE_LSTM")
            x_index, y_index = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

            def step(x_t: np.ndarray) -> np.ndarray:
                it.set_tensor(x_index, x_t[:, None])
                it.invoke()
                result: np.ndarray = it.get_tensor(y_index)
                return result

            return step, it.reset_all_variables

        record("litert_keras2_fused", litert_keras2_fused)

    # --- the GEMM rate NumPy reaches on the step's fused product, in this process
    a = rng.normal(size=(batch, features + units + 1)).astype(np.float32)
    w = rng.normal(size=(features + units + 1, 4 * units)).astype(np.float32)
    out = np.empty((batch, 4 * units), np.float32)
    gemm = time_calls(lambda: np.dot(a, w, out=out), budget_s, 20000)
    flops = 2.0 * batch * (features + units + 1) * 4 * units
    return {
        "batch": batch,
        "units": units,
        "features": features,
        "threads": threads,
        "numpy_gemm_gflops": flops / (gemm["median_us"] * 1e3),
        "numpy_gemm_us": gemm,
        "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS"),
        "ways": results,
    }


def _torch_make(
    torch_step: Callable[..., Any], zeros: list[Any]
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None]]:
    state = list(zeros)

    def step(x_t: np.ndarray) -> np.ndarray:
        y, h, c = torch_step(x_t, *state)
        state[:] = [h, c]
        result: np.ndarray = y
        return result

    def reset() -> None:
        state[:] = list(zeros)

    return step, reset


# ----------------------------------------------------------------------------- the parent


def table(runs: list[dict[str, Any]]) -> str:
    ways: list[str] = []
    for run in runs:
        ways += [w for w in run["ways"] if w not in ways and run["ways"][w]["status"] != "info"]
    header = (
        "| way | "
        + " | ".join(f"batch {r['batch']}, {r['units']} units, {r['features']} features" for r in runs)
        + " |"
    )
    lines = [header, "|---" * (len(runs) + 1) + "|"]
    for way in ways:
        cells = []
        for run in runs:
            entry = run["ways"].get(way, {"status": "-"})
            if entry["status"] == "ok":
                best = run["fastest_peer_us"]
                cells.append(
                    f"{entry['median_us']:,.1f} (p90 {entry['p90_us']:,.1f}; {entry['median_us'] / best:.2f}x)"
                )
            else:
                cells.append(entry["status"])
        lines.append(f"| {way} | " + " | ".join(cells) + " |")
    lines.append("| NumPy GEMM GFLOP/s | " + " | ".join(f"{r['numpy_gemm_gflops']:.1f}" for r in runs) + " |")
    lines.append("| threads | " + " | ".join(str(r["threads"]) for r in runs) + " |")
    lines.append(
        "| Streamer auto engine | " + " | ".join(r["ways"]["streamer_auto_engine"]["engine"] for r in runs) + " |"
    )
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [3, 2]})
    single = sorted((r for r in runs if r["batch"] == 1), key=lambda r: r["units"])
    ways = sorted({w for r in runs for w, e in r["ways"].items() if e["status"] == "ok"})
    for way in ways:
        points = [
            (r["units"], r["ways"][way]["median_us"]) for r in single if r["ways"].get(way, {}).get("status") == "ok"
        ]
        if points:
            style = "-o" if way.startswith("streamer") else "--."
            left.plot(*zip(*points, strict=True), style, label=way)
    left.set(xscale="log", yscale="log", xlabel="units (batch 1)", ylabel="median us per step", title="batch 1")
    left.legend(fontsize=7)
    big = [r for r in runs if r["batch"] > 1]
    if big:
        run = big[-1]
        ok = sorted(((w, e["median_us"]) for w, e in run["ways"].items() if e["status"] == "ok"), key=lambda p: p[1])
        right.barh([w for w, _ in ok], [t for _, t in ok])
        right.set(xscale="log", xlabel="median us per step", title=f"batch {run['batch']}, {run['units']} units")
        right.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", default=DEFAULT_SIZES, help="BATCHxUNITS[xFEATURES] ...")
    parser.add_argument("--quick", action="store_true", help="shorter timing budgets")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run one size in this process, print JSON
    parser.add_argument("--budget", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    budget = args.budget if args.budget is not None else (0.1 if args.quick else 0.4)
    if args.one:
        batch, units, features = parse_size(args.one)
        threads = 1 if batch == 1 else 2
        print("RESULT " + json.dumps(measure_size(batch, units, features, threads, budget)))
        return
    started = time.time()
    runs = []
    for size in args.sizes:
        parse_size(size)
        command = [sys.executable, __file__, "--one", size, "--budget", str(budget)]
        # Thread pools read these when their library loads, so they are set before the child starts.
        pool = str(1 if parse_size(size)[0] == 1 else 2)
        env = dict(os.environ, TF_NUM_INTEROP_THREADS="1")
        env.update(dict.fromkeys(THREAD_VARIABLES, pool))
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT, env=env)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(f"size {size} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            continue
        run = json.loads(line[len("RESULT ") :])
        peers = [e["median_us"] for w, e in run["ways"].items() if e["status"] == "ok" and not w.startswith("streamer")]
        run["fastest_peer_us"] = min(peers) if peers else float("nan")
        runs.append(run)
        print(f"{size}: done in {time.time() - started:.0f} s", file=sys.stderr)
    load = os.getloadavg()
    report = {
        "load_average_1_5_15": load,
        "seconds": time.time() - started,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "streaming.json").write_text(json.dumps(report, indent=1))
    text = table(runs)
    (args.out / "streaming.md").write_text(text + f"\n\nload average (1, 5, 15 min): {load}\n")
    plot(runs, args.out / "streaming.png")
    print(text)
    print(f"\nload average (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {report['seconds']:.0f} s in all")
    print("The machine is shared: compare ratios within this run, not absolute numbers across runs.")
    print(f"wrote {args.out / 'streaming.json'}, {args.out / 'streaming.md'}, {args.out / 'streaming.png'}")


if __name__ == "__main__":
    main()
