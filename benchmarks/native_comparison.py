"""Prepared diffinterface calls against hand-written native code, repeated for steadier figures.

Runs ``benchmark_differentiation`` on the seed scenarios ``--repeats`` times (each run times
every prepared call in alternating pairs with the fastest native counterpart, see
``diffinterface.testsuite._native``) and prints, per backend × scenario, the median over the
runs of the prepared time, the native time, the ratio and the added time, as a Markdown
table (the one in docs/performance.md), then the finite-difference Jacobian's error and
memory against scipy's approx_derivative, then the two-argument scenario (a prepared
gradient of f(a, b) = a[0]·b[0] in ``di.Args(a, b)`` against ``jax.grad(argnums=(0, 1))``
and its torch and autograd counterparts, from ``structured_overhead.py``). ``--profile``
adds a cProfile of the prepared call on the dispatch-overhead scenario (gradient of x[0],
n = 1) for each backend.

Run: ``.venv/bin/python benchmarks/native_comparison.py [--repeats 3] [--budget 0.5]
[--backends jax torch]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import statistics
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's logs (this program's choice)
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import torch
from structured_overhead import args_against_native

import diffinterface as di
from diffinterface.testsuite import benchmark_differentiation, seed_scenarios
from diffinterface.testsuite._native import in_native_kind
from diffinterface.testsuite._seeds import OVERHEAD_SCENARIO

BACKENDS = [
    di.AutoJAX(),
    di.AutoTorch(),
    di.AutoTensorFlow(),
    di.AutoAutograd(),
    di.AutoFiniteDiff(),
    di.AutoFiniteDiff(method="forward"),
    di.AutoFiniteDiff(method="complex"),
    di.AutoCasADi(),
]
FINITE_DIFFERENCES = [b for b in BACKENDS if isinstance(b, di.AutoFiniteDiff)]


def _us(seconds: float) -> str:
    if abs(seconds) >= 1:
        return f"{seconds:.3g} s"
    if abs(seconds) >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def comparison(repeats: int, budget: float, backends: list[Any]) -> list[dict[str, Any]]:
    """Median over ``repeats`` runs of each native-comparison figure, per case."""
    runs = [
        benchmark_differentiation(
            backends, seed_scenarios(), budget=budget, unprepared=False, memory=False
        ).to_dict("records")
        for _ in range(repeats)
    ]
    rows = []
    for i, first in enumerate(runs[0]):
        native = first.get("native_s")
        if not isinstance(native, float) or math.isnan(native):  # no counterpart, or refused
            continue
        same = [run[i] for run in runs]
        rows.append(
            {
                "scenario": first["scenario"],
                "backend": first["backend"],
                "method": first["native_method"],
                **{
                    key: statistics.median(r[key] for r in same)
                    for key in ("paired_s", "native_s", "native_ratio", "added_s")
                },
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | backend | prepared | native | ratio | added | native method |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        sign = "+" if r["added_s"] >= 0 else "−"
        lines.append(
            f"| {r['scenario']} | {r['backend']} | {_us(r['paired_s'])} | "
            f"{_us(r['native_s'])} | {r['native_ratio']:.2f} | {sign}{_us(abs(r['added_s']))} | "
            f"{r['method']} |"
        )
    return "\n".join(lines)


def fd_accuracy_and_memory() -> None:
    """Finite-difference Jacobian (tanh(W x + b), n = 200): error against the analytic
    Jacobian for diffinterface and scipy's approx_derivative at the same method and step,
    and the tracemalloc peak of a prepared call without and with out= (after the thread's
    first call with out=, which allocates its work buffer)."""
    import tracemalloc

    import numpy as np

    from diffinterface.testsuite._native import native_candidates

    (sc,) = [s for s in seed_scenarios() if s.operator == "jacobian"]
    exact = sc.expected()[-1]
    print("\n| method | diffinterface error | scipy error | peak | peak with out= |")
    print("|---|---:|---:|---:|---:|")
    for b in FINITE_DIFFERENCES:
        prep = sc.prepare(b)
        ours = sc.call(b, prep=prep)
        theirs = native_candidates(b, sc)[0].call()
        out = np.empty_like(ours)
        sc.call(b, prep=prep, out=out)  # the first call with out= makes the thread's buffer
        peaks = []
        for kwargs in ({}, {"out": out}):
            tracemalloc.start()
            sc.call(b, prep=prep, **kwargs)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        scale = np.max(np.abs(exact))
        errors = [np.max(np.abs(j - exact)) / scale for j in (ours, theirs)]
        print(
            f"| {b.method} | {errors[0]:.1e} | {errors[1]:.1e} | "
            f"{peaks[0] / 1024:.0f} kB | {peaks[1] / 1024:.0f} kB |"
        )


def profile_overhead(calls: int = 20000) -> None:
    """cProfile of the prepared call on the dispatch-overhead scenario, per backend."""
    (sc,) = [s for s in seed_scenarios() if s.name == OVERHEAD_SCENARIO]
    for b in [*BACKENDS[:5], di.AutoCasADi()]:
        scn = in_native_kind(sc, b)
        prep = scn.prepare(b)
        x = scn.x
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            di.gradient(sc.f, b, x, prep=prep)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(8)
        print(f"\n## {b!r}: {calls} prepared calls\n{text.getvalue()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per timing")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--backends", nargs="*", help="backend names (e.g. jax torch); all seven when omitted"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    backends = [di.backend(b) for b in args.backends] if args.backends else BACKENDS
    print(markdown(comparison(args.repeats, args.budget, backends)))
    if not args.backends:
        fd_accuracy_and_memory()
        args_against_native()
    if args.profile:
        profile_overhead()


if __name__ == "__main__":
    main()
