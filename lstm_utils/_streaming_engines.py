"""The compute engines behind :class:`lstm_utils.Streamer`: plain arrays in, one time step out.

Nothing here knows Keras. :mod:`lstm_utils.streaming` reads a model's weights once and turns
each layer into an :class:`Op` (fused weight matrices, float32); an engine then runs the ops
one time step at a time on buffers it allocated when it was built, so that a step allocates
nothing but the array it returns.

- :class:`NumpyEngine`: NumPy only, always available. Per recurrent layer and step: one
  matrix product of ``[x_t, h, 1]`` with the fused ``[kernel; recurrent_kernel; bias]``
  matrix (the bias rides along as a row), one ``tanh`` over all gates (the sigmoid gates'
  columns are pre-scaled by 0.5, since ``sigmoid(z) = 0.5 * tanh(z / 2) + 0.5``), and a few
  in-place element-wise calls. Best where the matrix product dominates (batch 64 and up).
- :class:`NumbaEngine`: one compiled call per step (or per stream for ``run``) that walks every
  layer in a single loop nest, with a rational ``tanh`` the compiler can vectorise. Best at
  small batches, where a NumPy step is bound by the cost of its ~10 calls, not by arithmetic.
  Needs the optional ``numba`` package.

See chapter 11, ``11_streaming.ipynb``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Op",
    "DENSE_ACTIVATIONS",
    "NumpyEngine",
    "NumbaEngine",
    "numba_available",
    "fast_tanh",
    "GATE_COUNT",
]

DENSE_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax")
"""The ``Dense`` activations an engine computes."""

GATE_COUNT = {"lstm": 4, "gru": 4, "gru_before": 3, "simple": 1, "dense": 1}
"""Columns of an op's fused matrix, in units (GRU with ``reset_after``: z, r, input candidate, recurrent candidate)."""


@dataclass
class Op:
    """One layer (or one stacked cell) as an engine runs it.

    ``kind`` is ``"lstm"``, ``"gru"`` (``reset_after=True``), ``"gru_before"``
    (``reset_after=False``), ``"simple"`` or ``"dense"``. ``weights`` is the fused float32
    matrix of shape ``(n_in + units + 1, GATE_COUNT[kind] * units)`` for a recurrent op (rows:
    kernel, recurrent kernel, bias) and ``(n_in + 1, units)`` for a dense op. ``weights2`` is
    the recurrent candidate matrix ``(units, units)`` of a ``reset_after=False`` GRU.
    """

    kind: str
    n_in: int
    units: int
    weights: np.ndarray
    weights2: np.ndarray | None = None
    activation: str = "linear"
    labels: list[str] = field(default_factory=list)

    @property
    def n_states(self) -> int:
        """How many states the op carries: 2 for an LSTM, 1 for GRU and SimpleRNN, 0 for Dense."""
        return {"lstm": 2, "dense": 0}.get(self.kind, 1)


# --------------------------------------------------------------------------- NumPy engine


class _NumpyRecurrent:
    """Buffers and the step of one recurrent op, for a fixed batch size."""

    def __init__(self, op: Op, batch: int) -> None:
        n, u, g = op.n_in, op.units, GATE_COUNT[op.kind] * op.units
        self.op = op
        self.xh = np.zeros((batch, n + u + 1), np.float32)  # [x_t, h, 1]: one product with [W; U; b]
        self.xh[:, -1] = 1.0
        self.inp = self.xh[:, :n]
        self.h = self.xh[:, n : n + u]
        self.z = np.empty((batch, g), np.float32)
        self.tmp = np.empty((batch, u), np.float32)
        self.c = np.zeros((batch, u), np.float32)
        self.h_new = np.empty((batch, u), np.float32)
        self.rh = np.empty((batch, u), np.float32)
        z = self.z
        self.sig = z[:, : 3 * u] if op.kind == "lstm" else z[:, : 2 * u]
        self.parts = [z[:, k * u : (k + 1) * u] for k in range(g // u)]

    def states(self) -> list[np.ndarray]:
        return [self.h, self.c] if self.op.kind == "lstm" else [self.h]

    def step(self, x: np.ndarray) -> np.ndarray:
        np.copyto(self.inp, x)
        kind, z = self.op.kind, self.z
        np.dot(self.xh, self.op.weights, out=z)
        if kind == "simple":
            np.tanh(z, out=self.h)
            return self.h
        if kind == "lstm":
            i, f, o, g = self.parts
            np.tanh(z, out=z)  # the sigmoid columns were scaled by 0.5: sigmoid(a) = 0.5 tanh(a/2) + 0.5
            np.multiply(self.sig, 0.5, out=self.sig)
            np.add(self.sig, 0.5, out=self.sig)
            np.multiply(self.c, f, out=self.c)
            np.multiply(i, g, out=self.tmp)
            np.add(self.c, self.tmp, out=self.c)
            np.tanh(self.c, out=self.tmp)
            np.multiply(o, self.tmp, out=self.h)
            return self.h
        sig = self.sig
        np.tanh(sig, out=sig)
        np.multiply(sig, 0.5, out=sig)
        np.add(sig, 0.5, out=sig)
        upd, reset, x_cand = self.parts[0], self.parts[1], self.parts[2]
        if kind == "gru":  # reset_after=True: r multiplies (h @ U_h + b_h)
            np.multiply(reset, self.parts[3], out=self.tmp)
        else:  # reset_after=False: r multiplies h before the product
            np.multiply(reset, self.h, out=self.rh)
            assert self.op.weights2 is not None
            np.dot(self.rh, self.op.weights2, out=self.tmp)
        np.add(self.tmp, x_cand, out=self.tmp)
        np.tanh(self.tmp, out=self.tmp)  # the candidate hh
        np.subtract(self.h, self.tmp, out=self.h_new)  # h_new = hh + z * (h - hh)
        np.multiply(self.h_new, upd, out=self.h_new)
        np.add(self.h_new, self.tmp, out=self.h)
        return self.h


class _NumpyDense:
    def __init__(self, op: Op, batch: int) -> None:
        self.op = op
        self.xb = np.ones((batch, op.n_in + 1), np.float32)  # [x, 1]: the bias rides along as a row
        self.inp = self.xb[:, : op.n_in]
        self.y = np.empty((batch, op.units), np.float32)

    def states(self) -> list[np.ndarray]:
        return []

    def step(self, x: np.ndarray) -> np.ndarray:
        np.copyto(self.inp, x)
        y = self.y
        np.dot(self.xb, self.op.weights, out=y)
        activation = self.op.activation
        if activation == "relu":
            np.maximum(y, 0.0, out=y)
        elif activation == "tanh":
            np.tanh(y, out=y)
        elif activation == "sigmoid":  # the columns were scaled by 0.5
            np.tanh(y, out=y)
            np.multiply(y, 0.5, out=y)
            np.add(y, 0.5, out=y)
        elif activation == "softmax":
            np.subtract(y, y.max(axis=1, keepdims=True), out=y)
            np.exp(y, out=y)
            np.divide(y, y.sum(axis=1, keepdims=True), out=y)
        return y


class NumpyEngine:
    """Runs a list of :class:`Op` with NumPy on preallocated buffers (float32)."""

    name = "numpy"

    def __init__(self, ops: list[Op], batch: int) -> None:
        self.batch = batch
        self.layers: list[_NumpyRecurrent | _NumpyDense] = [
            _NumpyDense(op, batch) if op.kind == "dense" else _NumpyRecurrent(op, batch) for op in ops
        ]
        self.out_width = ops[-1].units

    def _forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.step(x)
        return x

    def step(self, x: np.ndarray) -> np.ndarray:
        """One step for a checked float32 ``(batch, features)`` array; a new output array."""
        return self._forward(x).copy()

    def run(self, x: np.ndarray) -> np.ndarray:
        """Every step of a checked float32 ``(batch, timesteps, features)`` array."""
        out = np.empty((x.shape[0], x.shape[1], self.out_width), np.float32)
        for t in range(x.shape[1]):
            out[:, t] = self._forward(x[:, t])
        return out

    def get_states(self) -> list[np.ndarray]:
        return [s.copy() for layer in self.layers for s in layer.states()]

    def set_states(self, values: list[np.ndarray]) -> None:
        targets = [s for layer in self.layers for s in layer.states()]
        for target, value in zip(targets, values, strict=True):
            np.copyto(target, value)


# --------------------------------------------------------------------------- numba engine


def numba_available() -> bool:
    """True when the optional ``numba`` package can be imported (``pip install lstm_utils[fast]``).

    Examples
    --------
    >>> isinstance(numba_available(), bool)
    True
    """
    return importlib.util.find_spec("numba") is not None


# A rational (odd degree 13 over even degree 6) approximation of tanh on [-7.9053, 7.9053],
# beyond which float32 tanh is +-1. Only multiplications, additions and one division, so
# the compiler vectorises it where a call to the C library's tanh would stay scalar. Its
# largest error against numpy.tanh is below 1e-6 (tests/test_streaming.py measures it).
_CLAMP = 7.90531110763549805
_ALPHA = (
    4.89352455891786e-03,
    6.37261928875436e-04,
    1.48572235717979e-05,
    5.12229709037114e-08,
    -8.60467152213735e-11,
    2.00018790482477e-13,
    -2.76076847742355e-16,
)
_BETA = (4.89352518554385e-03, 2.26843463243900e-03, 1.18534705686654e-04, 1.19825839466702e-06)


def fast_tanh(x: np.ndarray) -> np.ndarray:
    """The rational ``tanh`` the numba engine uses, evaluated with NumPy in float32 (for checking it).

    Examples
    --------
    >>> import numpy as np
    >>> z = np.linspace(-10, 10, 2001, dtype=np.float32)
    >>> bool(np.max(np.abs(fast_tanh(z) - np.tanh(z))) < 1e-6)
    True
    """
    f = np.float32
    x = np.clip(np.asarray(x, np.float32), f(-_CLAMP), f(_CLAMP))
    x2 = x * x
    p = f(_ALPHA[6])
    for a in _ALPHA[5::-1]:
        p = x2 * p + f(a)
    q = f(_BETA[3])
    for b in _BETA[2::-1]:
        q = x2 * q + f(b)
    result: np.ndarray = (x * p / q).astype(np.float32)
    return result


_KERNELS: dict[str, Any] = {}

# prog columns (one row per op)
_KIND, _NIN, _UNITS, _W, _W2, _IN, _OUT, _C, _Z, _ACT, _TMP = range(11)
_KIND_CODES = {"dense": 0, "lstm": 1, "gru": 2, "gru_before": 3, "simple": 4}
_ACT_CODES = {name: code for code, name in enumerate(DENSE_ACTIVATIONS)}


def _kernels() -> dict[str, Any]:
    """Compile (once per process; numba caches the machine code on disk) the step and run kernels."""
    if _KERNELS:
        return _KERNELS
    numba: Any = importlib.import_module("numba")

    f32 = np.float32
    lo, hi = f32(-_CLAMP), f32(_CLAMP)
    a1, a3, a5, a7, a9, a11, a13 = (f32(a) for a in _ALPHA)
    b0, b2, b4, b6 = (f32(b) for b in _BETA)
    half, zero = f32(0.5), f32(0.0)
    # No 'nnan'/'ninf': the input check must see NaN and inf. 'contract' gives FMAs, 'reassoc'
    # lets the softmax sums vectorise.
    flags = {"nsz", "arcp", "contract", "afn", "reassoc"}
    jit = numba.njit(fastmath=flags, error_model="numpy", cache=True, nogil=True, boundscheck=False)

    def tanh_(v: Any) -> Any:
        v = lo if v < lo else (hi if v > hi else v)
        v2 = v * v
        p = v2 * (v2 * (v2 * (v2 * (v2 * (v2 * a13 + a11) + a9) + a7) + a5) + a3) + a1
        q = v2 * (v2 * (v2 * b6 + b4) + b2) + b0
        return v * p / q

    tanh = numba.njit(fastmath=flags, error_model="numpy", cache=True, inline="always")(tanh_)

    def matvec_(src: Any, wts: Any, w: int, cols: int, acc: Any) -> None:
        # acc += src @ W, with W row-major (len(src), cols) at wts[w:]. Eight rows at a time, so that
        # acc is loaded and stored once per eight multiply-adds (the loop is store-bound otherwise).
        n = src.size
        k = 0
        while k + 8 <= n:
            v0, v1, v2, v3 = src[k], src[k + 1], src[k + 2], src[k + 3]
            v4, v5, v6, v7 = src[k + 4], src[k + 5], src[k + 6], src[k + 7]
            b = w + k * cols
            r0, r1 = wts[b : b + cols], wts[b + cols : b + 2 * cols]
            r2, r3 = wts[b + 2 * cols : b + 3 * cols], wts[b + 3 * cols : b + 4 * cols]
            r4, r5 = wts[b + 4 * cols : b + 5 * cols], wts[b + 5 * cols : b + 6 * cols]
            r6, r7 = wts[b + 6 * cols : b + 7 * cols], wts[b + 7 * cols : b + 8 * cols]
            for j in range(cols):
                acc[j] += (v0 * r0[j] + v1 * r1[j] + v2 * r2[j] + v3 * r3[j]) + (
                    v4 * r4[j] + v5 * r5[j] + v6 * r6[j] + v7 * r7[j]
                )
            k += 8
        while k < n:
            v = src[k]
            row = wts[w + k * cols : w + (k + 1) * cols]
            for j in range(cols):
                acc[j] += v * row[j]
            k += 1

    matvec = jit(matvec_)

    def forward_(mem: Any, wts: Any, prog: Any, batch: int) -> None:
        for r in range(prog.shape[0]):
            kind, n, u = prog[r, 0], prog[r, 1], prog[r, 2]
            w, w2, src, dst, c_off, z_off, act, tmp = (
                prog[r, 3],
                prog[r, 4],
                prog[r, 5],
                prog[r, 6],
                prog[r, 7],
                prog[r, 8],
                prog[r, 9],
                prog[r, 10],
            )
            if kind == 0:  # dense: y = [x, 1] @ [W; b]
                for b in range(batch):
                    y = mem[dst + b * u : dst + (b + 1) * u]
                    y[:] = wts[w + n * u : w + (n + 1) * u]
                    matvec(mem[src + b * n : src + (b + 1) * n], wts, w, u, y)
                    if act == 1:
                        for j in range(u):
                            y[j] = max(y[j], zero)
                    elif act == 2:
                        for j in range(u):
                            y[j] = tanh(y[j])
                    elif act == 3:
                        for j in range(u):
                            y[j] = half * tanh(y[j]) + half
                    elif act == 4:
                        top = y[0]
                        for j in range(u):
                            top = max(top, y[j])
                        total = zero
                        for j in range(u):
                            e = np.exp(y[j] - top)
                            y[j] = e
                            total += e
                        for j in range(u):
                            y[j] = y[j] / total
                continue
            gates = 4 if kind <= 2 else (3 if kind == 3 else 1)
            cols = gates * u
            for b in range(batch):
                z = mem[z_off + b * cols : z_off + (b + 1) * cols]
                h = mem[dst + b * u : dst + (b + 1) * u]
                z[:] = wts[w + (n + u) * cols : w + (n + u + 1) * cols]  # the bias row
                matvec(mem[src + b * n : src + (b + 1) * n], wts, w, cols, z)
                matvec(h, wts, w + n * cols, cols, z)
                if kind == 1:  # LSTM, columns i, f, o (pre-scaled by 0.5), g
                    c = mem[c_off + b * u : c_off + (b + 1) * u]
                    # one slice per gate, indexed by the loop counter alone: the loop vectorises
                    zi, zf, zo, zg = z[:u], z[u : 2 * u], z[2 * u : 3 * u], z[3 * u :]
                    for j in range(u):
                        i = half * tanh(zi[j]) + half
                        f = half * tanh(zf[j]) + half
                        o = half * tanh(zo[j]) + half
                        cn = f * c[j] + i * tanh(zg[j])
                        c[j] = cn
                        h[j] = o * tanh(cn)
                elif kind == 2:  # GRU, reset_after=True: columns z, r (pre-scaled), x-candidate, h-candidate
                    zz, zr, zx, zh = z[:u], z[u : 2 * u], z[2 * u : 3 * u], z[3 * u :]
                    for j in range(u):
                        zg = half * tanh(zz[j]) + half
                        rg = half * tanh(zr[j]) + half
                        hh = tanh(zx[j] + rg * zh[j])
                        h[j] = hh + zg * (h[j] - hh)
                elif kind == 3:  # GRU, reset_after=False: r * h goes through weights2
                    rh = mem[tmp + b * u : tmp + (b + 1) * u]
                    zz, zr, zx = z[:u], z[u : 2 * u], z[2 * u : 3 * u]
                    for j in range(u):
                        rh[j] = (half * tanh(zr[j]) + half) * h[j]
                    matvec(rh, wts, w2, u, zx)
                    for j in range(u):
                        zg = half * tanh(zz[j]) + half
                        hh = tanh(zx[j])
                        h[j] = hh + zg * (h[j] - hh)
                else:  # SimpleRNN
                    for j in range(u):
                        h[j] = tanh(z[j])

    forward = jit(forward_)

    def finite_(x: Any) -> bool:
        flat = x.ravel()
        for k in range(flat.size):
            v = flat[k]
            if v - v != zero:  # NaN and +-inf give NaN; the fastmath flags keep NaN checks
                return False
        return True

    finite = jit(finite_)

    def step_(x: Any, out: Any, mem: Any, wts: Any, prog: Any) -> bool:
        if not finite(x):
            return False
        batch, features = x.shape
        mem[: batch * features] = x.ravel()
        forward(mem, wts, prog, batch)
        last = prog.shape[0] - 1
        y, width = prog[last, 6], prog[last, 2]
        out.ravel()[:] = mem[y : y + batch * width]
        return True

    def run_(x: Any, out: Any, mem: Any, wts: Any, prog: Any) -> bool:
        if not finite(x):
            return False
        batch, steps, features = x.shape
        last = prog.shape[0] - 1
        y, width = prog[last, 6], prog[last, 2]
        for t in range(steps):
            for b in range(batch):
                mem[b * features : (b + 1) * features] = x[b, t]
            forward(mem, wts, prog, batch)
            for b in range(batch):
                out[b, t] = mem[y + b * width : y + (b + 1) * width]
        return True

    _KERNELS.update(step=jit(step_), run=jit(run_))
    return _KERNELS


class NumbaEngine:
    """Runs a list of :class:`Op` in one compiled call per step (or per stream), float32."""

    name = "numba"

    def __init__(self, ops: list[Op], batch: int) -> None:
        kernels = _kernels()
        self.step_kernel, self._run_kernel = kernels["step"], kernels["run"]
        self.batch = batch
        self.out_width = ops[-1].units
        sizes = {"mem": 0, "wts": 0}
        chunks: dict[str, list[np.ndarray]] = {"mem": [], "wts": []}

        def place(where: str, size: int, fill: np.ndarray | None = None) -> int:
            offset = sizes[where]
            sizes[where] += size
            chunks[where].append(np.zeros(size, np.float32) if fill is None else fill.astype(np.float32).ravel())
            return offset

        src = place("mem", batch * ops[0].n_in)  # x_t is copied to the start of mem
        prog = np.zeros((len(ops), 11), np.int64)
        self._state_slots: list[tuple[int, int]] = []  # (offset, units) of each state, in order
        for r, op in enumerate(ops):
            u, cols = op.units, GATE_COUNT[op.kind] * op.units
            row = prog[r]
            row[_KIND], row[_NIN], row[_UNITS] = _KIND_CODES[op.kind], op.n_in, u
            row[_W] = place("wts", op.weights.size, op.weights)
            row[_W2] = place("wts", op.weights2.size, op.weights2) if op.weights2 is not None else 0
            row[_IN] = src
            row[_OUT] = place("mem", batch * u)
            row[_C] = place("mem", batch * u) if op.kind == "lstm" else 0
            row[_Z] = place("mem", batch * cols) if op.kind != "dense" else 0
            row[_ACT] = _ACT_CODES[op.activation]
            row[_TMP] = place("mem", batch * u) if op.kind == "gru_before" else 0
            if op.kind != "dense":
                self._state_slots.append((int(row[_OUT]), u))
            if op.kind == "lstm":
                self._state_slots.append((int(row[_C]), u))
            src = int(row[_OUT])
        self.mem = np.concatenate(chunks["mem"])
        self.wts = np.concatenate(chunks["wts"])
        self.prog = prog

    def step(self, x: np.ndarray) -> np.ndarray | None:
        """One step for a float32 ``(batch, features)`` array; None (and nothing changed) if it is not finite."""
        out = np.empty((self.batch, self.out_width), np.float32)
        if not self.step_kernel(x, out, self.mem, self.wts, self.prog):
            return None
        return out

    def run(self, x: np.ndarray) -> np.ndarray | None:
        """Every step of a float32 ``(batch, timesteps, features)`` array, in one compiled call."""
        out = np.empty((x.shape[0], x.shape[1], self.out_width), np.float32)
        if not self._run_kernel(x, out, self.mem, self.wts, self.prog):
            return None
        return out

    def get_states(self) -> list[np.ndarray]:
        return [self.mem[o : o + self.batch * u].reshape(self.batch, u).copy() for o, u in self._state_slots]

    def set_states(self, values: list[np.ndarray]) -> None:
        for (o, u), value in zip(self._state_slots, values, strict=True):
            self.mem[o : o + self.batch * u] = value.reshape(-1)
