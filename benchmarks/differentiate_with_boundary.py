"""The cost of the DifferentiateWith boundary: a gradient taken by an outer framework
through ``g = di.DifferentiateWith(f, inner)``, against f's own gradient written by hand in
the inner framework (jitted jax.grad, eager torch backward, autograd.grad; a prepared
di.gradient for finite differences).

boundary = median(time through g) − median(time of the inner's own gradient); both are
timed interleaved in one process, after warm-up. f(x) = Σ sin(x)·x, a scalar. Run:
``.venv/bin/python benchmarks/differentiate_with_boundary.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import autograd
import autograd.numpy as anp
import jax
import jax.numpy as jnp
import numpy as np
import torch

import diffinterface as di

REPEATS = 200
SIZES = (10, 100_000)


def f(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(xp.sin(x) * x)


def inner_gradient(inner: str, n: int) -> Callable[[], Any]:
    """f's gradient written by hand in the inner framework, at x = linspace."""
    x = np.linspace(-1.0, 1.0, n)
    if inner == "jax":
        with jax.enable_x64(True):
            xj = jnp.asarray(x)
            grad = jax.jit(jax.grad(f))
            grad(xj).block_until_ready()

        def run_jax() -> Any:
            with jax.enable_x64(True):
                return np.asarray(grad(xj))

        return run_jax
    if inner == "torch":
        xt = torch.from_numpy(x)

        def run_torch() -> Any:
            v = xt.detach().requires_grad_()
            f(v).backward()
            return v.grad

        return run_torch
    if inner == "autograd":
        grad_ag = autograd.grad(lambda v: anp.sum(anp.sin(v) * v))
        return lambda: grad_ag(x)
    prep = di.prepare_gradient(f, inner, x)
    return lambda: di.gradient(f, inner, x, prep=prep)


def outer_gradient(outer: str, inner: str, n: int) -> Callable[[], Any]:
    """The gradient of g = DifferentiateWith(f, inner) taken by the outer framework."""
    x = np.linspace(-1.0, 1.0, n)
    g = di.DifferentiateWith(f, inner)
    if outer == "jax":
        with jax.enable_x64(True):
            xj = jnp.asarray(x)
            grad = jax.jit(jax.grad(g))
            grad(xj).block_until_ready()

        def run_jax() -> Any:
            with jax.enable_x64(True):
                return np.asarray(grad(xj))

        return run_jax
    if outer == "torch":
        xt = torch.from_numpy(x)

        def run_torch() -> Any:
            v = xt.detach().requires_grad_()
            g(v).backward()
            return v.grad

        return run_torch
    grad_ag = autograd.grad(g)
    return lambda: grad_ag(x)


def median_pair(a: Callable[[], Any], b: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median seconds of a and b, timed alternately."""
    ta, tb = [], []
    np.testing.assert_allclose(_numpy(a()), _numpy(b()), rtol=1e-6)  # the same gradient
    for _ in range(3):
        a(), b()
    for _ in range(repeats):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return statistics.median(ta), statistics.median(tb)


def _numpy(a: Any) -> np.ndarray:
    return a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def main() -> None:
    torch.set_num_threads(1)
    print(f"gradient of Σ sin(x)·x through DifferentiateWith; medians of {REPEATS} interleaved")
    print(
        f"{'outer':<9}{'inner':<11}{'n':>8}{'inner own (µs)':>16}{'through g (µs)':>16}"
        f"{'boundary (µs)':>15}{'ratio':>8}"
    )
    for n in SIZES:
        for inner in ("jax", "torch", "autograd", "finitediff"):
            if inner == "finitediff" and n > 1000:
                continue  # n evaluations of f per gradient: the boundary is negligible
            for outer in ("jax", "torch", "autograd"):
                if outer == inner:
                    continue
                reps = REPEATS if n <= 1000 else REPEATS // 10
                own, through = median_pair(
                    inner_gradient(inner, n), outer_gradient(outer, inner, n), reps
                )
                print(
                    f"{outer:<9}{inner:<11}{n:>8}{1e6 * own:>16.1f}{1e6 * through:>16.1f}"
                    f"{1e6 * (through - own):>15.1f}{through / own:>8.2f}"
                )


if __name__ == "__main__":
    main()
