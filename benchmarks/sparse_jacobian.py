"""Sparse versus dense Jacobians of a tridiagonal function, printed as ratios.

``f(x)_i = sin(x_i) (x_{i-1} + x_{i+1}) + x_i³`` (the ``tridiagonal`` sparse scenario) at
n = 100, 1000 and 10000. For each n, in one interleaved run (medians of rounds that call
every method in turn, one torch thread):

* prepared ``jacobian`` with ``di.AutoSparse(backend)`` (3 colours: 3 products, batched) versus
  the same backend's dense prepared ``jacobian`` (n products), for JAX forward mode and
  central finite differences — the speed-up must grow with n;
* ``di.AutoSparse(di.AutoFiniteDiff())`` versus scipy's finite-difference Jacobian given the
  same pattern (``scipy.optimize._numdiff.approx_derivative(..., method="3-point",
  sparsity=pattern)``, the routine behind ``least_squares(jac_sparsity=...)``);
* ``di.AutoSparse(di.AutoJAX(mode="forward"))`` versus sparsejac's ``jit(jacfwd(f,
  sparsity))`` and asdex's ``jit(asdex.jacobian(f, x))`` (its own detection and colouring),
  when they are installed (``pip install -c constraints.txt 'diffinterface[bench]'``).
  Both return a JAX BCOO matrix; diffinterface a scipy CSR array (the conversion is
  included in its time);
* ``di.AutoSparse(di.AutoCasADi())``: CasADi's exact pattern from its expression graph and
  its own sparse Jacobian (no detector, no colouring), versus the same CasADi products
  coloured along the project's tracer's pattern (``sparsity_detector=
  di.TracerSparsityDetector()``).

Preparation (detection + colouring + compilation) is timed once per n and printed too.
Run: ``.venv/bin/python benchmarks/sparse_jacobian.py [--sizes 100,1000,10000]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize._numdiff import approx_derivative

import diffinterface as di
from diffinterface.testsuite._sparse_scenarios import tridiagonal

ROUNDS = 7


def per_call(fn: Callable[[], Any], budget: float = 0.05) -> float:
    """Seconds per call: as many calls as fit in ``budget`` (at least one)."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    reps = max(1, int(budget / max(once, 1e-7)))
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def interleaved(methods: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            times[name].append(per_call(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def prepared(backend: Any, x: np.ndarray) -> tuple[Callable[[], Any], float]:
    start = time.perf_counter()
    prep = di.prepare_jacobian(tridiagonal, backend, x)
    seconds = time.perf_counter() - start
    return (lambda: di.jacobian(tridiagonal, backend, x, prep=prep)), seconds


def sparsejac_method(x: np.ndarray, pattern: Any) -> Callable[[], Any] | None:
    try:
        import sparsejac
    except ImportError:
        return None
    import jax
    from jax.experimental import sparse as jsparse

    with jax.enable_x64(True):
        coo = pattern.tocoo()
        bcoo = jsparse.BCOO(
            (np.ones(coo.nnz), np.stack([coo.row, coo.col], axis=1)), shape=pattern.shape
        )
        jac = jax.jit(sparsejac.jacfwd(tridiagonal, sparsity=bcoo))
        xj = jax.device_put(x)
        jac(xj).data.block_until_ready()

    def run() -> Any:
        with jax.enable_x64(True):
            return jac(xj).data.block_until_ready()

    return run


def asdex_method(x: np.ndarray) -> tuple[Callable[[], Any], float] | None:
    try:
        import asdex
    except ImportError:
        return None
    import jax

    with jax.enable_x64(True):
        xj = jax.device_put(x)
        start = time.perf_counter()
        jac = jax.jit(asdex.jacobian(tridiagonal, xj))
        jac(xj).data.block_until_ready()
        seconds = time.perf_counter() - start

    def run() -> Any:
        with jax.enable_x64(True):
            return jac(xj).data.block_until_ready()

    return run, seconds


def check(results: dict[str, Any], reference: np.ndarray) -> None:
    for name, value in results.items():
        dense = value.toarray() if sp.issparse(value) else np.asarray(value)
        err = float(np.max(np.abs(dense - reference)))
        assert err < 1e-6, f"{name}: max error {err:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    jax_sparse = di.AutoSparse(di.AutoJAX(mode="forward"))
    fd_sparse = di.AutoSparse(di.AutoFiniteDiff())
    casadi_coloured = di.AutoSparse(di.AutoCasADi(), sparsity_detector=di.TracerSparsityDetector())
    print(f"{'n':>6} {'method':<38} {'median':>11} {'prepare':>10}")
    summary = []
    for n in map(int, args.sizes.split(",")):
        x = np.linspace(-0.8, 0.9, n)
        methods, prep_s = {}, {}
        for name, backend in (
            ("sparse jax(forward)", jax_sparse),
            ("dense jax(forward)", di.AutoJAX(mode="forward")),
            ("sparse finitediff", fd_sparse),
            ("dense finitediff", di.AutoFiniteDiff()),
            ("sparse casadi (exact pattern)", di.AutoSparse(di.AutoCasADi())),
            ("sparse casadi (tracer, coloured)", casadi_coloured),
        ):
            methods[name], prep_s[name] = prepared(backend, x)
        pattern = methods["sparse jax(forward)"]()
        methods["scipy approx_derivative(sparsity)"] = lambda x=x, p=pattern: approx_derivative(
            tridiagonal, x, method="3-point", sparsity=p
        )
        sj = sparsejac_method(x, pattern)
        if sj is not None:
            methods["sparsejac jit(jacfwd)"] = sj
        asd = asdex_method(x)
        if asd is not None:
            methods["asdex jit(jacobian)"], prep_s["asdex jit(jacobian)"] = asd
        reference = methods["dense jax(forward)"]()
        check(
            {k: v() for k, v in methods.items() if not k.startswith(("sparsejac", "asdex"))},
            reference,
        )
        del reference
        t = interleaved(methods, args.rounds)
        for name, seconds in t.items():
            prep = f"{prep_s[name] * 1e3:8.1f} ms" if name in prep_s else ""
            print(f"{n:>6} {name:<38} {seconds * 1e3:9.3f} ms {prep:>10}", flush=True)
        summary.append((n, t))
    print("\nRatios (time of the other method / time of diffinterface's sparse Jacobian):")
    print(
        f"{'n':>6} {'dense/sparse jax':>17} {'dense/sparse FD':>16} {'scipy/sparse FD':>16}"
        f" {'sparsejac/sparse jax':>21} {'asdex/sparse jax':>17} {'asdex/sparse casadi':>20}"
        f" {'coloured/exact casadi':>22}"
    )
    casadi = "sparse casadi (exact pattern)"
    for n, t in summary:
        print(
            f"{n:>6} {t['dense jax(forward)'] / t['sparse jax(forward)']:16.1f}×"
            f" {t['dense finitediff'] / t['sparse finitediff']:15.1f}×"
            f" {t['scipy approx_derivative(sparsity)'] / t['sparse finitediff']:15.2f}×"
            f" {_ratio(t, 'sparsejac jit(jacfwd)', 'sparse jax(forward)', 21)}"
            f" {_ratio(t, 'asdex jit(jacobian)', 'sparse jax(forward)', 17)}"
            f" {_ratio(t, 'asdex jit(jacobian)', casadi, 20)}"
            f" {_ratio(t, 'sparse casadi (tracer, coloured)', casadi, 22)}"
        )


def _ratio(t: dict[str, float], other: str, ours: str, width: int) -> str:
    if other not in t:
        return f"{'(not installed)':>{width}}"
    return f"{t[other] / t[ours]:{width - 1}.2f}×"


if __name__ == "__main__":
    main()
