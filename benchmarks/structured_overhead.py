"""What structured inputs cost: a prepared gradient with x as a dict of NumPy arrays against
the same gradient with x as one flat vector; then, with the dict's leaves as JAX arrays or
torch tensors, against hand-written native code on the same dict (``jax.jit(jax.grad(f))``;
``torch.autograd.grad`` over the leaves). Timed in interleaved pairs in one run; medians of
the times and of the per-pair ratios; one torch thread.

Three functions: the dispatch-overhead scenario of the native comparison with x as a
dict (f = p["x"][0], one leaf of one entry), a dispatch-overhead one with three leaves
(three 1-entry leaves, f = Σ leaves²), and the autoencoder loss of the seed scenarios with
its weights as {"W1", "W2"} (64 features, 20 samples, 16 hidden; finite differences
skipped there: one f call per entry). Against native code, "added" is the median of the
per-pair differences: the time a prepared call adds to the hand-written one.
Then a gradient in two arguments, ``di.Args(a, b)``, against native code with ``argnums``.
Last, under JAX, a dict of NumPy arrays against the same dict of JAX arrays (f = tr(A @ B)
of two 30×30 leaves, then Σ tr(X_i @ X_i+1) of eight): native ``jax.jit(jax.grad(f))`` on
the JAX dict, di on the JAX dict, di on the NumPy dict, and the native counterpart of the
NumPy case (the jitted gradient called on the NumPy dict, then ``np.asarray`` of its
leaves), interleaved in one run.
Figures are in docs/structured.md ("What it costs").
Run: ``.venv/bin/python benchmarks/structured_overhead.py`` (``numpy-under-jax``: the last
comparison alone).
"""

from __future__ import annotations

import itertools
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import autograd
import jax
import jax.numpy as jnp
import numpy as np
import torch

import diffinterface as di
from diffinterface.testsuite._seeds import autoencoder_loss, autoencoder_loss_of_weights

REPEATS = 300


def first_entry(p: Any) -> Any:
    return p["x"][0]


def first_entry_flat(v: Any) -> Any:
    return v[0]


def tiny_dict(p: Any) -> Any:
    return p["a"] ** 2 + p["b"] ** 2 + p["c"] ** 2


def tiny_flat(v: Any) -> Any:
    return di.array_namespace(v).sum(v * v)


Case = tuple[str, Callable[..., Any], Any, Callable[..., Any], Any, tuple[Any, ...]]


def cases() -> list[tuple[Case, tuple[Any, ...]]]:
    """(name, f on a dict, the dict, f on a vector, the vector, contexts), flat's contexts."""
    rng = np.random.default_rng(0)
    features, samples, hidden = 64, 20, 16
    data = rng.uniform(size=(features, samples))
    flat = rng.normal(size=2 * hidden * features) / 8
    weights = {
        "W1": flat[: hidden * features].reshape(hidden, features),
        "W2": flat[hidden * features :].reshape(features, hidden),
    }
    tiny = {k: np.array(v) for k, v in zip("abc", (0.1, 0.2, 0.3), strict=True)}
    constants = (di.Constant(data),)
    return [
        (
            (
                "1 leaf, p['x'][0]",
                first_entry,
                {"x": np.array([0.5])},
                first_entry_flat,
                np.array([0.5]),
                (),
            ),
            (),
        ),
        (("3 scalar leaves", tiny_dict, tiny, tiny_flat, np.array([0.1, 0.2, 0.3]), ()), ()),
        (
            (
                "autoencoder {W1, W2}",
                autoencoder_loss_of_weights,
                weights,
                autoencoder_loss,
                flat,
                constants,
            ),
            (*constants, di.Constant(hidden)),
        ),
    ]


def timed(run: Callable[[], Any], other: Callable[[], Any]) -> tuple[float, float, float, float]:
    """Medians over interleaved pairs of blocks of calls (a block lasts ≥ 0.2 ms, so that
    a call of a few µs is not lost in the timer): run's and other's time per call, other /
    run, and other - run."""
    for _ in range(5):
        run(), other()
    t0 = time.perf_counter()
    run()
    inner = max(1, int(2e-4 / max(time.perf_counter() - t0, 1e-7)))
    a, b = [], []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(inner):
            run()
        t1 = time.perf_counter()
        for _ in range(inner):
            other()
        t2 = time.perf_counter()
        a.append((t1 - t0) / inner)
        b.append((t2 - t1) / inner)
    pairs = list(zip(a, b, strict=True))
    ratio = statistics.median(tb / ta for ta, tb in pairs)
    added = statistics.median(tb - ta for ta, tb in pairs)
    return statistics.median(a), statistics.median(b), ratio, added


def native_gradient(backend: str, f: Callable[..., Any], x: Any, extra: tuple[Any, ...]) -> Any:
    """A hand-written native gradient of f on the dict x (leaves in the framework's own
    array type): ``jax.jit(jax.grad(f))`` under x64, ``torch.autograd.grad`` over the
    leaves, or ``autograd.grad(f)``. Returns the native leaves, the constants as native
    arrays, and the call."""
    consts = [c.value for c in extra]
    if backend == "jax":
        with jax.enable_x64(True):
            xj = {k: jnp.asarray(v) for k, v in x.items()}
            cj = [jnp.asarray(c) for c in consts]
            compiled = jax.jit(jax.grad(f))

        def jax_call() -> Any:
            with jax.enable_x64(True):
                return jax.block_until_ready(compiled(xj, *cj))

        return xj, cj, jax_call
    if backend == "autograd":
        grad = autograd.grad(f)
        return x, consts, partial(grad, x, *consts)
    xt = {k: torch.from_numpy(v) for k, v in x.items()}
    ct = [torch.from_numpy(c) for c in consts]

    def torch_call() -> Any:
        leaves = {k: v.detach().requires_grad_() for k, v in xt.items()}
        grads = torch.autograd.grad(f(leaves, *ct), list(leaves.values()))
        return dict(zip(leaves, grads, strict=True))

    return xt, ct, torch_call


def against_native() -> None:
    """A prepared dict gradient against hand-written native code on the same dict."""
    print(f"\nprepared gradient on a dict of native arrays vs native code; medians of {REPEATS}")
    print(
        f"{'case':<24}{'backend':<12}{'native (µs)':>13}{'dict (µs)':>11}{'added (µs)':>12}"
        f"{'ratio':>8}"
    )
    for (name, f_dict, x_dict, _, _, extra), _ in cases():
        for backend in ("jax", "torch", "autograd"):
            xn, consts, native = native_gradient(backend, f_dict, x_dict, extra)
            args = [di.Constant(c) for c in consts]
            prep = di.prepare_gradient(f_dict, backend, xn, *args)
            call = partial(di.gradient, f_dict, backend, xn, *args, prep=prep)
            ours = (lambda c=call: jax.block_until_ready(c())) if backend == "jax" else call
            want, got = native(), ours()
            for k in want:
                np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-6)
            t_native, t_dict, ratio, added = timed(native, ours)
            print(
                f"{name:<24}{backend:<12}{1e6 * t_native:>13.1f}{1e6 * t_dict:>11.1f}"
                f"{1e6 * added:>12.2f}{ratio:>8.2f}"
            )


def first_entries(a: Any, b: Any) -> Any:
    return a[0] * b[0]


def native_args_gradient(backend: str, a: np.ndarray, b: np.ndarray) -> tuple[Any, Any]:
    """The native arrays and a hand-written gradient of first_entries in both arguments:
    ``jax.jit(jax.grad(f, argnums=(0, 1)))`` under x64, ``torch.autograd.grad`` over both
    tensors, or HIPS autograd's grad of f over the pair."""
    if backend == "jax":
        with jax.enable_x64(True):
            aj, bj = jnp.asarray(a), jnp.asarray(b)
            compiled = jax.jit(jax.grad(first_entries, argnums=(0, 1)))

        def jax_call() -> Any:
            with jax.enable_x64(True):
                return jax.block_until_ready(compiled(aj, bj))

        return (aj, bj), jax_call
    if backend == "autograd":
        grad = autograd.grad(lambda pair: first_entries(*pair))
        return (a, b), partial(grad, (a, b))
    at, bt = torch.from_numpy(a), torch.from_numpy(b)

    def torch_call() -> Any:
        la, lb = at.detach().requires_grad_(), bt.detach().requires_grad_()
        return torch.autograd.grad(first_entries(la, lb), (la, lb))

    return (at, bt), torch_call


def args_against_native() -> None:
    """A prepared gradient in two arguments (di.Args) against native code with argnums."""
    print(
        f"\nprepared gradient of f(a, b) = a[0]·b[0] in di.Args(a, b) vs native code; "
        f"medians of {REPEATS}"
    )
    print(f"{'backend':<12}{'native (µs)':>13}{'Args (µs)':>11}{'added (µs)':>12}{'ratio':>8}")
    a, b = np.array([0.5]), np.array([2.0])
    for backend in ("jax", "torch", "autograd"):
        (an, bn), native = native_args_gradient(backend, a, b)
        prep = di.prepare_gradient(first_entries, backend, di.Args(an, bn))
        call = partial(di.gradient, first_entries, backend, di.Args(an, bn), prep=prep)
        ours = (lambda c=call: jax.block_until_ready(c())) if backend == "jax" else call
        for got, want in zip(ours(), native(), strict=True):
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12)
        t_native, t_args, ratio, added = timed(native, ours)
        print(
            f"{backend:<12}{1e6 * t_native:>13.1f}{1e6 * t_args:>11.1f}{1e6 * added:>12.2f}"
            f"{ratio:>8.2f}"
        )


def chained_traces(p: Any) -> Any:
    """Σ tr(X_i @ X_i+1) over the leaves X_0, X_1, ... of the dict p (tr(A @ B) for two)."""
    leaves = list(p.values())
    xp = di.array_namespace(leaves[0])
    return sum(xp.trace(a @ b) for a, b in itertools.pairwise(leaves))


def timed_together(calls: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Per-call times of blocks of calls (a block lasts ≈ 2 ms, so that the scheduling
    hiccups of a shared machine are averaged out), the calls interleaved block by block in
    a new random order each round (a call's place after another shifts its time by a few
    µs), ``rounds`` × REPEATS blocks each."""
    for _ in range(200):
        for call in calls.values():
            call()
    t0 = time.perf_counter()
    for _ in range(20):
        for call in calls.values():
            call()
    inner = max(1, int(2e-3 * 20 * len(calls) / max(time.perf_counter() - t0, 1e-7)))
    times: dict[str, list[float]] = {name: [] for name in calls}
    order, shuffle = list(calls), random.Random(0).shuffle
    for _ in range(rounds * REPEATS):
        shuffle(order)
        for name in order:
            call = calls[name]
            t0 = time.perf_counter()
            for _ in range(inner):
                call()
            times[name].append((time.perf_counter() - t0) / inner)
    return times


def numpy_dict_under_jax(leaves: int = 2, rounds: int = 2) -> None:
    """A dict of NumPy arrays under JAX against the same dict of JAX arrays, and each
    against hand-written native code: the gradient of :func:`chained_traces` with
    ``leaves`` 30×30 float64 leaves."""
    rng = np.random.default_rng(0)
    x_numpy = {f"x{i}": rng.normal(size=(30, 30)) for i in range(leaves)}
    with jax.enable_x64(True):
        x_jax = {k: jnp.asarray(v) for k, v in x_numpy.items()}
        compiled = jax.jit(jax.grad(chained_traces))
    f = chained_traces
    prep_jax = di.prepare_gradient(f, "jax", x_jax)
    prep_numpy = di.prepare_gradient(f, "jax", x_numpy)

    def native_jax() -> Any:
        with jax.enable_x64(True):
            return jax.block_until_ready(compiled(x_jax))

    def native_numpy() -> Any:
        with jax.enable_x64(True):
            result = compiled(x_numpy)
        return {k: np.asarray(v) for k, v in result.items()}

    calls = {
        "native, JAX dict": native_jax,
        "di, JAX dict": lambda: jax.block_until_ready(di.gradient(f, "jax", x_jax, prep=prep_jax)),
        "di, NumPy dict": lambda: di.gradient(f, "jax", x_numpy, prep=prep_numpy),
        "native, NumPy dict": native_numpy,
    }
    got = calls["di, NumPy dict"]()
    assert list(got) == list(x_numpy) and all(type(v) is np.ndarray for v in got.values())
    xs = list(x_numpy.values())  # ∂/∂X_i = X_i+1ᵀ + X_i-1ᵀ (where they exist)
    want = [sum(xs[j].T for j in (i - 1, i + 1) if 0 <= j < leaves) for i in range(leaves)]
    for call in calls.values():
        result = call()
        for k, w in zip(x_numpy, want, strict=True):
            np.testing.assert_allclose(np.asarray(result[k]), w, rtol=1e-12)
    times = timed_together(calls, rounds)
    base = times["native, JAX dict"]
    what = "tr(A @ B)" if leaves == 2 else f"Σ tr(X_i @ X_i+1) over {leaves} leaves"
    print(
        f"\nprepared gradient of {what}, 30×30 float64 leaves, under JAX: dict of NumPy vs "
        f"dict of JAX arrays; medians of {len(base)} interleaved blocks"
    )
    print(f"{'call':<22}{'median (µs)':>13}{'vs native JAX (µs)':>20}{'ratio':>8}")
    for name, ts in times.items():
        added = statistics.median(t - b for t, b in zip(ts, base, strict=True))
        ratio = statistics.median(t / b for t, b in zip(ts, base, strict=True))
        print(f"{name:<22}{1e6 * statistics.median(ts):>13.1f}{1e6 * added:>20.2f}{ratio:>8.2f}")
    pairs = zip(times["di, NumPy dict"], times["di, JAX dict"], strict=True)
    numpy_minus_jax = statistics.median(n - j for n, j in pairs)
    pairs = zip(times["di, NumPy dict"], times["native, NumPy dict"], strict=True)
    over_native = statistics.median(d - n for d, n in pairs)
    print(
        f"di NumPy dict − di JAX dict: {1e6 * numpy_minus_jax:.2f} µs; "
        f"di NumPy dict − native on the NumPy dict: {1e6 * over_native:.2f} µs"
    )


def main() -> None:
    if sys.argv[1:] == ["numpy-under-jax"]:
        numpy_dict_under_jax(2)
        numpy_dict_under_jax(8)
        return
    torch.set_num_threads(1)
    print(f"prepared gradient, dict x vs flat x; medians of {REPEATS} interleaved calls")
    print(f"{'case':<24}{'backend':<12}{'flat (µs)':>11}{'dict (µs)':>11}{'added (µs)':>12}")
    for (name, f_dict, x_dict, f_flat, x_flat, extra), flat_extra in cases():
        for backend in ("jax", "torch", "autograd", "finitediff"):
            if backend == "finitediff" and extra:
                continue
            xd = (
                x_dict
                if backend != "torch"
                else {k: torch.from_numpy(v) for k, v in x_dict.items()}
            )
            xf = x_flat if backend != "torch" else torch.from_numpy(x_flat)
            pd = di.prepare_gradient(f_dict, backend, xd, *extra)
            pf = di.prepare_gradient(f_flat, backend, xf, *flat_extra)
            gd = di.gradient(f_dict, backend, xd, *extra, prep=pd)
            gf = di.gradient(f_flat, backend, xf, *flat_extra, prep=pf)
            got = np.concatenate([np.ravel(np.asarray(gd[k])) for k in sorted(gd)])
            np.testing.assert_allclose(got, np.asarray(gf), rtol=1e-6)  # the same gradient
            t_flat, t_dict, _, added = timed(
                partial(di.gradient, f_flat, backend, xf, *flat_extra, prep=pf),
                partial(di.gradient, f_dict, backend, xd, *extra, prep=pd),
            )
            print(
                f"{name:<24}{backend:<12}{1e6 * t_flat:>11.1f}{1e6 * t_dict:>11.1f}"
                f"{1e6 * added:>12.1f}"
            )
    against_native()
    args_against_native()
    numpy_dict_under_jax(2)
    numpy_dict_under_jax(8)


if __name__ == "__main__":
    main()
