"""Long runs: 100,000 prepared gradient calls per backend, with flat memory and no retracing.

For each backend one preparation of ``f(x) = sum(sin(x) * x) + x[0] * x[-1]`` (n = 8,
float64 NumPy x, a new x every call) is called ``--calls`` times. At the start (after one
warm-up call), the middle and the end the script prints

* RSS: the process's resident memory (``/proc/self/statm``);
* traced: the Python heap held, by ``tracemalloc`` (started before the run; its growth is
  what a leak of Python objects or NumPy buffers would show);
* compiles: JAX backend compilations since the start (``jax.monitoring`` events), which a
  retrace or recompile would add;
* f calls: how often f's Python body ran (0 under JAX: the prepared call runs compiled code;
  1 per call under torch and autograd; 2n + 1 under central finite differences).

Every 1000th result is checked against the analytic gradient. This is a measurement script,
not a timed test: ``.venv/bin/python benchmarks/long_run.py [--calls N] [--backends ...]``.
tracemalloc slows allocation-heavy code; the times are only there to show the run's length.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc
from typing import Any

import jax
import numpy as np

import diffinterface as di

N = 8
_compiles = 0
_f_calls = 0


def _count_compiles(event: str, duration: float, **kwargs: Any) -> None:
    global _compiles
    if event == "/jax/core/compile/backend_compile_duration":
        _compiles += 1


jax.monitoring.register_event_duration_secs_listener(_count_compiles)


def f(x: Any) -> Any:
    global _f_calls
    _f_calls += 1
    xp = di.array_namespace(x)
    return xp.sum(xp.sin(x) * x) + x[0] * x[-1]


def gradient_of_f(x: np.ndarray) -> np.ndarray:
    g = np.cos(x) * x + np.sin(x)
    g[0] += x[-1]
    g[-1] += x[0]
    return g


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def snapshot(label: str, calls: int, t0: float, compiles0: int, f_calls0: int) -> dict[str, Any]:
    gc.collect()
    traced, peak = tracemalloc.get_traced_memory()
    return {
        "at": label,
        "calls": calls,
        "seconds": time.perf_counter() - t0,
        "rss_mib": rss_mib(),
        "traced_kib": traced / 1024,
        "peak_kib": peak / 1024,
        "compiles": _compiles - compiles0,
        "f_calls": _f_calls - f_calls0,
    }


def run(backend: Any, calls: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (16, N))
    prep = di.prepare_gradient(f, backend, points[0])
    di.gradient(f, backend, points[0], prep=prep)  # warm-up
    tracemalloc.start()
    t0 = time.perf_counter()
    marks = [snapshot("start", 0, t0, _compiles, _f_calls)]
    compiles0, f_calls0 = _compiles, _f_calls
    for i in range(1, calls + 1):
        x = points[i % len(points)] * (1 + 1e-6 * (i % 997))  # a new x each call
        g = di.gradient(f, backend, x, prep=prep)
        if i % 1000 == 0:
            np.testing.assert_allclose(g, gradient_of_f(x), rtol=1e-6, atol=1e-8)
        if i == calls // 2:
            marks.append(snapshot("middle", i, t0, compiles0, f_calls0))
    marks.append(snapshot("end", calls, t0, compiles0, f_calls0))
    tracemalloc.stop()
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--backends", nargs="*", default=["jax", "torch", "autograd", "finitediff"])
    args = parser.parse_args()
    print(f"{args.calls} prepared gradient calls per backend, n = {N}, float64 NumPy x\n")
    header = (
        f"{'backend':<12}{'at':<8}{'calls':>8}{'s':>8}{'RSS MiB':>10}{'traced KiB':>12}"
        f"{'peak KiB':>10}{'compiles':>10}{'f calls':>10}"
    )
    print(header)
    print("-" * len(header))
    for name in args.backends:
        marks = run(di.backend(name), args.calls)
        for m in marks:
            print(
                f"{name:<12}{m['at']:<8}{m['calls']:>8}{m['seconds']:>8.1f}{m['rss_mib']:>10.1f}"
                f"{m['traced_kib']:>12.1f}{m['peak_kib']:>10.1f}{m['compiles']:>10}"
                f"{m['f_calls']:>10}"
            )
        growth = marks[-1]["traced_kib"] - marks[1]["traced_kib"]
        rss_growth = marks[-1]["rss_mib"] - marks[1]["rss_mib"]
        print(
            f"{name:<12}middle → end: traced {growth:+.1f} KiB, RSS {rss_growth:+.1f} MiB, "
            f"{marks[-1]['compiles']} compiles, {marks[-1]['f_calls'] / args.calls:.0f} f calls "
            "per call\n"
        )


if __name__ == "__main__":
    main()
