"""Allocations per prepared Jacobian of ``foo(du, u, A, tmp)``, with the scratch buffer from a
``di.DiffCache`` versus the same code allocating its buffer on every call.

``foo`` stores ``A @ u`` in a scratch buffer, then writes ``u + tmp`` into ``du`` (the
mutating form, ``y=du``). Both variants get their buffer from a ``buffer_for(u)`` function
passed as a static ``di.Constant``: ``di.get_tmp(cache, u)`` or ``xp.zeros_like(u)``.

* Finite differences (NumPy, 2n + 1 calls of foo per Jacobian): tracemalloc measures the
  bytes newly held after each buffer acquisition (summed over the calls of foo in one
  Jacobian, less the meter's own few bytes) and the peak traced memory of the whole
  prepared call.
* torch eager (the mutating form runs under eager autograd): the torch profiler counts the
  CPU allocations of the whole prepared call and their bytes, and those made while
  acquiring the buffer.

Each number is the median over repeated prepared calls, after one warm-up call; times are
taken in separate runs without tracemalloc or the profiler. This is a
measurement script, not a timed test: ``.venv/bin/python benchmarks/diffcache_allocations.py``.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

import diffinterface as di

N = 100
REPEATS = 15


def foo(du: Any, u: Any, a: Any, buffer_for: Callable[[Any], Any]) -> None:
    """du = u + A u, with A u stored in a scratch buffer first."""
    tmp = buffer_for(u)
    tmp[...] = a @ u
    du[...] = u + tmp


def with_diffcache() -> Callable[[Any], Any]:
    cache = di.DiffCache(np.zeros(N))
    return lambda u: di.get_tmp(cache, u)


def allocating() -> Callable[[Any], Any]:
    return lambda u: di.array_namespace(u).zeros_like(u)


# -- NumPy / finite differences: tracemalloc ----------------------------------------------


def numpy_case(make: Callable[[], Callable[[Any], Any]]) -> dict[str, float]:
    acquired: list[int] = []
    metered = _traced(make(), acquired)

    rng = np.random.default_rng(0)
    u, a, du = rng.normal(size=N), di.Constant(rng.normal(size=(N, N))), np.zeros(N)
    backend = di.AutoFiniteDiff()
    meter = di.Constant(metered)
    prep = di.prepare_jacobian(foo, backend, u, a, meter, y=du)

    def run() -> None:
        di.jacobian(foo, backend, u, a, meter, prep=prep, y=du)

    run()  # warm-up
    rows = []
    tracemalloc.start()
    overhead = _meter_overhead()
    for _ in range(REPEATS):
        acquired.clear()
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        run()
        peak = tracemalloc.get_traced_memory()[1] - start
        rows.append((sum(acquired) - overhead * len(acquired), len(acquired), peak))
    tracemalloc.stop()
    return {
        "buffer bytes": statistics.median(r[0] for r in rows),
        "foo calls": statistics.median(r[1] for r in rows),
        "peak bytes": statistics.median(r[2] for r in rows),
        "time (ms)": _median_ms(run),
    }


def _traced(source: Callable[[Any], Any], log: list[int]) -> Callable[[Any], Any]:
    """``source``, logging the traced bytes still held after each call of it."""

    def metered(u: Any) -> Any:
        before = tracemalloc.get_traced_memory()[0]
        tmp = source(u)
        log.append(tracemalloc.get_traced_memory()[0] - before)
        return tmp

    return metered


def _meter_overhead() -> int:
    """What the meter itself holds while it measures (its `before` int): subtracted."""
    log: list[int] = []
    probe = _traced(lambda u: u, log)
    for _ in range(101):
        probe(None)
    return int(statistics.median(log))


def _median_ms(run: Callable[[], None], repeats: int = 100) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


# -- torch eager: the torch profiler's memory events --------------------------------------


def torch_case(make: Callable[[], Callable[[Any], Any]], mode: str) -> dict[str, float]:
    source = make()

    def metered(u: Any) -> Any:
        with record_function("buffer_for"):
            return source(u)

    gen = torch.Generator().manual_seed(0)
    u = torch.randn(N, dtype=torch.float64, generator=gen)
    a = di.Constant(torch.randn(N, N, dtype=torch.float64, generator=gen))
    du, backend = torch.zeros(N, dtype=torch.float64), di.AutoTorch(mode=mode)
    meter = di.Constant(metered)
    prep = di.prepare_jacobian(foo, backend, u, a, meter, y=du)

    def run() -> None:
        di.jacobian(foo, backend, u, a, meter, prep=prep, y=du)

    run()  # warm-up
    rows = []
    for _ in range(REPEATS):
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run()
        allocs, in_buffer, calls = _allocations(prof.events())
        rows.append((len(allocs), sum(allocs), sum(in_buffer), calls))
    return {
        "allocations": statistics.median(r[0] for r in rows),
        "allocated bytes": statistics.median(r[1] for r in rows),
        "buffer bytes": statistics.median(r[2] for r in rows),
        "foo calls": statistics.median(r[3] for r in rows),
        "time (ms)": _median_ms(run),
    }


def _allocations(events: Any) -> tuple[list[int], list[int], int]:
    """Bytes of each allocation, those inside a buffer_for region, and the regions."""
    regions = [e for e in events if e.name == "buffer_for"]
    allocs, in_buffer = [], []
    for e in events:
        if e.name == "buffer_for" or e.self_cpu_memory_usage <= 0:
            continue
        allocs.append(e.self_cpu_memory_usage)
        start = e.time_range.start
        if any(r.time_range.start <= start <= r.time_range.end for r in regions):
            in_buffer.append(e.self_cpu_memory_usage)
    return allocs, in_buffer, len(regions)


# -- report -------------------------------------------------------------------------------


def report(title: str, cached: dict[str, float], fresh: dict[str, float]) -> None:
    print(f"\n{title}")
    print(f"  {'median per prepared call':<26}{'DiffCache':>12}{'alloc/call':>12}{'ratio':>9}")
    for key in cached:
        c, f = cached[key], fresh[key]
        ratio = f"{f / c:.2f}x" if c else ("n/a" if not f else "inf")
        print(f"  {key:<26}{c:>12,.1f}{f:>12,.1f}{ratio:>9}")


def main() -> None:
    torch.set_num_threads(1)
    print(
        f"foo(du, u, A, tmp) with n = {N}; medians of {REPEATS} prepared jacobian calls "
        "(times: of 100)"
    )
    print("ratio = allocating each call / DiffCache")
    report(
        "AutoFiniteDiff(central), NumPy — tracemalloc",
        numpy_case(with_diffcache),
        numpy_case(allocating),
    )
    for mode in ("reverse", "forward"):
        report(
            f"AutoTorch(mode={mode!r}), eager autograd on CPU — torch profiler",
            torch_case(with_diffcache, mode),
            torch_case(allocating, mode),
        )


if __name__ == "__main__":
    main()
