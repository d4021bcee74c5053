"""benchmark_differentiation: time preparation, prepared and unprepared calls per case.

Times are medians over calibrated repetitions (each sample long enough to measure, the
whole case within a time budget), with the interquartile range as the spread. Memory is the
tracemalloc peak of one prepared call: Python and NumPy allocations (torch's and XLA's own
allocators are not seen by tracemalloc).

Beside each prepared call, the same operator written by hand with the framework's own API
(the fastest of :func:`~diffinterface.testsuite._native.native_candidates`) is timed in
pairs with it, alternating, both on inputs of the framework's own array type: the ratio
and the added time are the medians over the pairs, which a busy machine disturbs far less
than two separate medians.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import diffinterface as di
from diffinterface._backend_types import BackendLike, resolve_backend
from diffinterface.testsuite._checks import CountingFunction, with_function
from diffinterface.testsuite._expectations import dense_backend, for_backend
from diffinterface.testsuite._native import (
    Native,
    in_native_kind,
    native_candidates,
    native_kind,
)
from diffinterface.testsuite._scenario import Scenario
from diffinterface.testsuite._testing import backend_label, unsupported_reason

__all__ = ["benchmark_differentiation"]


def benchmark_differentiation(
    backends: Sequence[BackendLike],
    scenarios: Iterable[Scenario],
    *,
    budget: float = 0.5,
    unprepared: bool = True,
    memory: bool = True,
    native: bool = True,
    progress: Callable[[dict[str, Any]], Any] | None = None,
    csv: str | Path | None = None,
    json: str | Path | None = None,
) -> Any:
    """Benchmark every backend on every scenario.

    Args:
        backends: backend objects or names.
        scenarios: e.g. ``seed_scenarios()``.
        budget: seconds to spend timing each prepared (and each unprepared) call.
        unprepared: also time unprepared calls (prepare + call, e.g. a JAX compile each).
        memory: measure the tracemalloc peak of one prepared call.
        native: time the hand-written native counterpart interleaved with the prepared call.
        progress: called with each record as it is done.
        csv: also write the records to this CSV file (needs pandas).
        json: also write the records to this JSON file (needs pandas).

    Returns:
        A pandas DataFrame when pandas is installed, else a list of dicts. Columns:
        backend, scenario, operator, status, prepare_s (first preparation, incl. any
        compile), first_call_s (the first prepared call), prepared_s and prepared_iqr_s
        (median and spread per call), unprepared_s, peak_bytes (tracemalloc peak of one
        prepared call), peak_bytes_out (the same with ``out=`` where the result can be
        written into), samples, ratio_to_fastest (prepared time relative to the fastest
        backend on that scenario);
        with ``native``: native_method (the fastest hand-written way), native_s and
        paired_s (native and prepared call, median per call over the pairs, inputs of the
        framework's array type), native_ratio (median of the per-pair ratios prepared /
        native), added_s (median per-pair difference, prepared − native) and pairs (how
        many pairs were timed).
    """
    records: list[dict[str, Any]] = []
    scenario_list = list(scenarios)
    for sc in scenario_list:
        for b in backends:
            backend = resolve_backend(b)
            record = _benchmark_case(backend, sc, budget, unprepared, memory)
            if native and record["status"] == "ok":
                record.update(_native_comparison(backend, sc, budget))
            records.append(record)
            if progress is not None:
                progress(record)
    for sc in scenario_list:
        times = [r["prepared_s"] for r in records if r["scenario"] == sc.name and r["prepared_s"]]
        for r in records:
            if r["scenario"] == sc.name and r["prepared_s"]:
                r["ratio_to_fastest"] = r["prepared_s"] / min(times)
    try:
        import pandas as pd
    except ImportError:
        if csv is not None or json is not None:
            raise ImportError("Writing CSV or JSON needs pandas: pip install pandas") from None
        return records
    table = pd.DataFrame.from_records(records)
    for path, write in ((csv, table.to_csv), (json, table.to_json)):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            write(path)
    return table


def _benchmark_case(
    backend: Any, sc: Scenario, budget: float, unprepared: bool, memory: bool
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "backend": backend_label(backend),
        "scenario": sc.name,
        "operator": sc.operator,
        "status": "ok",
        "prepare_s": None,
        "first_call_s": None,
        "prepared_s": None,
        "prepared_iqr_s": None,
        "unprepared_s": None,
        "peak_bytes": None,
        "peak_bytes_out": None,
        "samples": 0,
        "ratio_to_fastest": None,
        "calls": None,
        "points": None,
    }
    if unsupported_reason(backend, sc) is not None:
        record["status"] = "not supported"
        return record
    sc = for_backend(sc, backend)  # a vectorised backend: the scenario's batch-accepting f
    try:
        start = time.perf_counter()
        prep = sc.prepare(backend)
        record["prepare_s"] = time.perf_counter() - start
        start = time.perf_counter()
        first = sc.call(backend, prep=prep)
        record["first_call_s"] = time.perf_counter() - start
        median, iqr, samples = _time(lambda: sc.call(backend, prep=prep), budget, warm=False)
        record.update(prepared_s=median, prepared_iqr_s=iqr, samples=samples)
        if unprepared:
            record["unprepared_s"] = _time(lambda: sc.call(backend), budget, warm=False)[0]
        if memory:
            record["peak_bytes"] = _peak_bytes(lambda: sc.call(backend, prep=prep))
            out = _out_like(first)
            if out is not None:
                record["peak_bytes_out"] = _peak_bytes(lambda: sc.call(backend, prep=prep, out=out))
        record["calls"], record["points"] = _evaluations(backend, sc)
    except Exception as e:
        record["status"] = f"error: {type(e).__name__}: {e}"[:200]
    return record


def _evaluations(backend: Any, sc: Scenario) -> tuple[int, int]:
    """(calls of f, points f was evaluated at) in one prepared call, counted by wrapping f."""
    batched = getattr(dense_backend(backend), "vectorized", False)
    counted = CountingFunction(sc.f, batched=batched)
    scn = with_function(sc, counted)
    prep = scn.prepare(backend)
    counted.calls = counted.points = 0
    scn.call(backend, prep=prep)
    return counted.calls, counted.points


def _peak_bytes(call: Callable[[], Any]) -> int:
    """The tracemalloc peak of one call (Python and NumPy allocations)."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _out_like(result: Any) -> Any:
    """A NumPy array or tensor to pass as ``out=`` for ``result`` (None where out= cannot
    take it: JAX arrays, structures, sparse matrices)."""
    if isinstance(result, np.ndarray):
        return np.empty_like(result)
    if hasattr(result, "detach"):
        return result.detach().clone()
    return None


def _native_comparison(backend: Any, sc: Scenario, budget: float) -> dict[str, Any]:
    """The prepared call against the fastest hand-written native call (empty if none)."""
    try:
        candidates = native_candidates(backend, sc)
        if not candidates:
            return {}
        best = _fastest(candidates, budget / 4)
        scn = in_native_kind(for_backend(sc, backend), backend)
        prep = scn.prepare(backend)
        # called as a user calls it (not through Scenario.call, which costs µs of its own)
        operator, f, args = getattr(di, sc.operator), scn.f, scn.arguments()
        operator(f, backend, *args, prep=prep)  # the first call, outside the timing
        if native_kind(backend) == "jax":
            import jax

            def prepared() -> Any:
                return jax.block_until_ready(operator(f, backend, *args, prep=prep))

        else:

            def prepared() -> Any:
                return operator(f, backend, *args, prep=prep)

        pair = _time_pair(prepared, best.call, budget)
    except Exception as e:
        return {"native_method": f"error: {type(e).__name__}: {e}"[:200]}
    return {"native_method": best.method, **pair}


def _fastest(candidates: list[Native], budget: float) -> Native:
    """The candidate with the smallest median time; each has run at least once on return."""
    if len(candidates) == 1:
        candidates[0].call()
        return candidates[0]
    return min(candidates, key=lambda c: _time(c.call, budget)[0])


def _time_pair(a: Callable[[], Any], b: Callable[[], Any], budget: float) -> dict[str, Any]:
    """Time ``a`` and ``b`` in alternating pairs of samples; medians over the pairs.

    Both have run before (preparation, candidate choice); one more call of each calibrates
    the number of calls per sample.
    """
    start = time.perf_counter()
    a()
    b()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(5e-4 / once))  # each pair at least ~0.5 ms
    pairs = max(_fewest(once, budget), min(1000, int(budget / (once * number))))
    ta: list[float] = []
    tb: list[float] = []
    for i in range(pairs):
        for call, times in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
            start = time.perf_counter()
            for _ in range(number):
                call()
            times.append((time.perf_counter() - start) / number)
    ra, rb = np.array(ta), np.array(tb)
    return {
        "paired_s": float(np.median(ra)),
        "native_s": float(np.median(rb)),
        "native_ratio": float(np.median(ra / rb)),
        "added_s": float(np.median(ra - rb)),
        "pairs": pairs,
    }


def _fewest(once: float, budget: float) -> int:
    return 3 if once < budget else 1


def _time(call: Callable[[], Any], budget: float, warm: bool = True) -> tuple[float, float, int]:
    """(median, interquartile range, samples) of the time per call, in seconds.

    At least 3 samples, or 1 when one call alone takes the whole budget (the slow finite
    differences, which would otherwise dominate the main job's time).
    """
    if warm:
        call()
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(1e-3 / once))  # each sample at least ~1 ms
    samples = max(_fewest(once, budget), min(200, int(budget / (once * number))))
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(number):
            call()
        times.append((time.perf_counter() - start) / number)
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return float(median), float(q3 - q1), samples
