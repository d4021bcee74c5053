"""Native TensorFlow baselines for the coming ``di.AutoTensorFlow`` backend (issue 20).

Times, in µs per call, the hand-written ways to compute each operator with TensorFlow
alone, on float64 inputs: eager GradientTape, ``tf.function`` with ``jit_compile=False``
and ``True``, the polymorphic function versus its concrete function, NumPy versus
tf.Tensor inputs, the ``.numpy()`` conversion, ForwardAccumulator JVPs, three ways to a
200×200 Jacobian, HVPs and a Hessian. Each figure is the best of ``REPEATS`` means over a
loop of calls that each end with the result materialised (``.numpy()`` is timed apart).
It also checks that no timed call retraces. The numbers are recorded in
``docs/_draft_tensorflow_notes.md``.

Run: ``TF_CPP_MIN_LOG_LEVEL=2 TF_ENABLE_ONEDNN_OPTS=0 .venv/bin/python
benchmarks/tensorflow_baselines.py`` (add ``--quick`` for a short smoke run).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import tensorflow as tf

QUICK = "--quick" in sys.argv
REPEATS = 3 if QUICK else 7
TARGET_S = 0.02 if QUICK else 0.15  # wall time of one repeat
F64 = tf.float64
ROWS: list[tuple[str, str, float]] = []
TRACES: dict[str, int] = {}


def bench(case: str, label: str, fn: Callable[[], Any]) -> float:
    """Best-of-REPEATS mean µs per call of ``fn``; the row is recorded."""
    fn()
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    loops = max(3, int(TARGET_S / one))
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - t0) / loops)
    us = best * 1e6
    ROWS.append((case, label, us))
    print(f"{case:26s} {label:58s} {us:12.1f}", flush=True)
    return us


def traced(name: str, fn: Callable[..., Any], **options: Any) -> Any:
    """``tf.function(fn)`` that counts its traces under ``name``."""

    def counted(*args: Any) -> Any:
        TRACES[name] = TRACES.get(name, 0) + 1
        return fn(*args)

    return tf.function(counted, autograph=False, **options)


# ---------------------------------------------------------------------------------------
# gradient


def f_sum_exp(x: Any) -> Any:
    return tf.reduce_sum(tf.exp(x))


def f_first(x: Any) -> Any:
    return x[0]


def tape_grad(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def grad(x: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
        return tape.gradient(y, x)

    return grad


def gradient_cases(name: str, f: Callable[[Any], Any], n: int) -> None:
    x_np = np.linspace(0.1, 1.0, n)
    x_tf = tf.constant(x_np)
    spec = tf.TensorSpec([n], F64)
    cpu = x_tf.device
    grad = tape_grad(f)
    expected = tape_grad(f)(x_tf).numpy()
    case = f"gradient {name} n={n}"
    bench(case, "eager GradientTape (tf.Tensor in)", lambda: grad(x_tf))
    bench(case, "eager GradientTape (NumPy in)", lambda: grad(tf.constant(x_np)))
    for jit in (False, True):
        tag = f"jit_compile={jit}"
        poly = traced(f"{case} {tag}", grad, jit_compile=jit)
        np.testing.assert_allclose(poly(x_tf).numpy(), expected, rtol=1e-12)
        concrete = poly.get_concrete_function(spec)
        sig = traced(f"{case} sig {tag}", grad, jit_compile=jit, input_signature=[spec])
        sig(x_tf)
        bench(case, f"tf.function {tag}, polymorphic, tf.Tensor in", lambda p=poly: p(x_tf))
        bench(case, f"tf.function {tag}, polymorphic, NumPy in", lambda p=poly: p(x_np))
        bench(case, f"tf.function {tag}, input_signature, tf.Tensor in", lambda s=sig: s(x_tf))
        bench(case, f"tf.function {tag}, concrete fn, tf.Tensor in", lambda c=concrete: c(x_tf))
        captured = concrete.captured_inputs
        bench(
            case,
            f"tf.function {tag}, concrete fn via _call_flat (private API)",
            lambda c=concrete, k=captured: c._call_flat([x_tf], k),
        )
        bench(
            case,
            f"tf.function {tag}, concrete fn, NumPy in (convert_to_tensor)",
            lambda c=concrete: c(tf.convert_to_tensor(x_np)),
        )
        bench(
            case,
            f"tf.function {tag}, concrete fn, tf.Tensor in, .numpy() out",
            lambda c=concrete: c(x_tf).numpy(),
        )
        bench(
            case,
            f"tf.function {tag}, concrete fn, inside `with tf.device(x.device)`",
            lambda c=concrete: _on(cpu, c, x_tf),
        )
    out = grad(x_tf)
    bench(case, "  .numpy() of the result alone", lambda: out.numpy())
    bench(case, "  tf.convert_to_tensor(NumPy x) alone", lambda: tf.convert_to_tensor(x_np))
    bench(case, "  tf.constant(NumPy x) alone", lambda: tf.constant(x_np))


def _on(device: str, c: Any, x: Any) -> Any:
    with tf.device(device):
        return c(x)


def preparation_cases(n: int, m: int) -> None:
    """Seconds to trace (get_concrete_function) and to the end of the first call (XLA compiles
    there, lazily), for a fresh tf.function each time."""
    x = tf.constant(np.linspace(0.1, 1.0, n))
    rng = np.random.default_rng(0)
    w, xm = tf.constant(rng.standard_normal((m, m))), tf.constant(rng.standard_normal(m))

    def jac(x: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.tanh(tf.linalg.matvec(w, x))
        return tape.jacobian(y, x)

    for label, kernel, arg in (
        (f"gradient Σexp(x) n={n}", tape_grad(f_sum_exp), x),
        (f"jacobian tape.jacobian {m}x{m}", jac, xm),
    ):
        for jit in (False, True):
            t0 = time.perf_counter()
            c = tf.function(kernel, jit_compile=jit, autograph=False)
            c = c.get_concrete_function(tf.TensorSpec(arg.shape, arg.dtype))
            t1 = time.perf_counter()
            c(arg).numpy()
            t2 = time.perf_counter()
            for us, what in ((t1 - t0, "trace"), (t2 - t1, "first call")):
                ROWS.append((f"preparation {label}", f"{what}, jit_compile={jit}", us * 1e6))
                print(f"preparation {label:36s} {what}, jit_compile={jit}: {us * 1e3:9.1f} ms")


# ---------------------------------------------------------------------------------------
# pushforward / pullback


def jvp_cases(n: int) -> None:
    x = tf.constant(np.linspace(0.1, 1.0, n))
    v = tf.constant(np.ones(n))
    case = f"jvp exp(x) n={n}"

    def jvp(x: Any, v: Any) -> Any:
        with tf.autodiff.ForwardAccumulator(x, v) as acc:
            y = tf.exp(x)
        return acc.jvp(y)

    def vjp(x: Any, u: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.exp(x)
        return tape.gradient(y, x, output_gradients=u)

    bench(case, "eager ForwardAccumulator", lambda: jvp(x, v))
    spec = [tf.TensorSpec([n], F64)] * 2
    for jit in (False, True):
        cj = traced(f"{case} jvp {jit}", jvp, jit_compile=jit).get_concrete_function(*spec)
        cv = traced(f"{case} vjp {jit}", vjp, jit_compile=jit).get_concrete_function(*spec)
        bench(case, f"ForwardAccumulator, concrete fn jit_compile={jit}", lambda c=cj: c(x, v))
        bench(case, f"GradientTape vjp, concrete fn jit_compile={jit}", lambda c=cv: c(x, v))


# ---------------------------------------------------------------------------------------
# Jacobian of tanh(W x + b), 200 × 200


def jacobian_cases(m: int) -> None:
    rng = np.random.default_rng(0)
    w = tf.constant(rng.standard_normal((m, m)) / np.sqrt(m))
    b = tf.constant(rng.standard_normal(m))
    x = tf.constant(rng.standard_normal(m))
    eye = tf.eye(m, dtype=F64)
    case = f"jacobian tanh(Wx+b) {m}x{m}"

    def layer(x: Any) -> Any:
        return tf.tanh(tf.linalg.matvec(w, x) + b)

    def tape_jacobian(x: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return tape.jacobian(y, x)

    def tape_jacobian_loop(x: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return tape.jacobian(y, x, experimental_use_pfor=False)

    def batch_jacobian(x: Any) -> Any:
        xb = x[None]
        with tf.GradientTape() as tape:
            tape.watch(xb)
            y = layer(xb[0])[None]
        return tape.batch_jacobian(y, xb)[0]

    def vmap_vjp(x: Any) -> Any:  # reverse: one pullback per output, vectorised
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = layer(x)
        return tf.vectorized_map(lambda u: tape.gradient(y, x, output_gradients=u), eye)

    def vmap_vjp_retape(x: Any) -> Any:  # reverse, the tape inside the vectorised body
        def row(u: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
            return tape.gradient(y, x, output_gradients=u)

        return tf.vectorized_map(row, eye)

    def vmap_jvp(x: Any) -> Any:  # forward: one pushforward per input, vectorised
        def column(v: Any) -> Any:
            with tf.autodiff.ForwardAccumulator(x, v) as acc:
                y = layer(x)
            return acc.jvp(y)

        return tf.transpose(tf.vectorized_map(column, eye))

    def analytic(x: Any) -> Any:  # the hand-derived formula, for scale
        y = layer(x)
        return (1.0 - y * y)[:, None] * w

    expected = analytic(x).numpy()
    spec = tf.TensorSpec([m], F64)
    kernels = {
        "tape.jacobian (pfor)": tape_jacobian,
        "tape.jacobian (experimental_use_pfor=False, while loop)": tape_jacobian_loop,
        "tape.batch_jacobian on a batch of 1": batch_jacobian,
        "vectorized_map of VJPs (one tape)": vmap_vjp,
        "vectorized_map of VJPs (tape per row)": vmap_vjp_retape,
        "vectorized_map of ForwardAccumulator JVPs": vmap_jvp,
        "analytic (1 - y²)·W, for scale": analytic,
    }
    for jit in (False, True):
        for label, kernel in kernels.items():
            name = f"{case} {label} {jit}"
            try:
                c = traced(name, kernel, jit_compile=jit).get_concrete_function(spec)
                np.testing.assert_allclose(c(x).numpy(), expected, rtol=1e-10, atol=1e-12)
            except Exception as e:  # a variant XLA cannot compile is reported, not fatal
                print(f"{case:26s} {label} jit_compile={jit}: {type(e).__name__}: {e!s:.150}")
                continue
            bench(case, f"{label}, jit_compile={jit}", lambda c=c: c(x))


# ---------------------------------------------------------------------------------------
# second order


def f_energy(x: Any) -> Any:
    return tf.reduce_sum(x * x) * tf.reduce_sum(tf.sin(x))


def second_order_cases(n_hvp: int, n_hess: int) -> None:
    for n, what in ((n_hvp, "hvp"), (n_hess, "hessian")):
        x = tf.constant(np.linspace(0.1, 1.0, n))
        v = tf.constant(np.ones(n))
        case = f"{what} Σx²·Σsin x n={n}"

        def fwd_over_rev(x: Any, v: Any) -> Any:
            with tf.autodiff.ForwardAccumulator(x, v) as acc:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = f_energy(x)
                g = tape.gradient(y, x)
            return acc.jvp(g)

        def rev_over_rev(x: Any, v: Any) -> Any:
            with tf.GradientTape() as outer:
                outer.watch(x)
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    y = f_energy(x)
                g = inner.gradient(y, x)
                gv = tf.reduce_sum(g * v)
            return outer.gradient(gv, x)

        def hess_jacobian_of_grad(x: Any, v: Any) -> Any:
            with tf.GradientTape() as outer:
                outer.watch(x)
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    y = f_energy(x)
                g = inner.gradient(y, x)
            return outer.jacobian(g, x)

        def hess_vmap_hvp(x: Any, v: Any, n: int = n) -> Any:
            eye = tf.eye(n, dtype=F64)
            return tf.vectorized_map(lambda e: fwd_over_rev(x, e), eye)

        kernels = (
            {
                "forward over reverse (ForwardAccumulator ∘ tape)": fwd_over_rev,
                "reverse over reverse (nested tapes)": rev_over_rev,
            }
            if what == "hvp"
            else {
                "tape.jacobian of the tape gradient": hess_jacobian_of_grad,
                "vectorized_map of forward-over-reverse HVPs": hess_vmap_hvp,
            }
        )
        spec = [tf.TensorSpec([n], F64)] * 2
        for jit in (False, True):
            for label, kernel in kernels.items():
                c = traced(f"{case} {label} {jit}", kernel, jit_compile=jit)
                c = c.get_concrete_function(*spec)
                bench(case, f"{label}, jit_compile={jit}", lambda c=c, x=x, v=v: c(x, v))


def main() -> None:
    print(f"load average {os.getloadavg()}, cores {os.cpu_count()}")
    print(
        f"TensorFlow {tf.__version__}, NumPy {np.__version__}, "
        f"oneDNN opts {os.environ.get('TF_ENABLE_ONEDNN_OPTS')}, "
        f"threads intra={tf.config.threading.get_intra_op_parallelism_threads()}"
    )
    print(f"{'case':26s} {'method':58s} {'µs/call':>12s}")
    gradient_cases("Σexp(x)", f_sum_exp, 10 if QUICK else 1000)
    gradient_cases("x[0]", f_first, 1)
    preparation_cases(10 if QUICK else 1000, 20 if QUICK else 200)
    jvp_cases(10 if QUICK else 1000)
    jacobian_cases(20 if QUICK else 200)
    second_order_cases(10 if QUICK else 1000, 10 if QUICK else 100)
    retraced = {k: v for k, v in TRACES.items() if v > 1}
    print("functions traced more than once:", retraced or "none")


if __name__ == "__main__":
    main()
