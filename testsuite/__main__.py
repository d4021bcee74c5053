"""The main job: ``python -m diffinterface.testsuite [options]``.

With no options it checks the default and seed scenarios on every installed backend (both
modes where a framework has them) and the sparse scenarios on each of them wrapped in
``di.AutoSparse``, prints a correctness table (pass / fail / not supported
per backend × operator), benchmarks the seed scenarios, prints the benchmark table, the
comparison of prepared calls with hand-written native code and the cross-backend table, and
saves a plot of time per backend per scenario and the table as Markdown (for the docs).
Exit status 1 when any case fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib.metadata import packages_distributions, version
from pathlib import Path
from typing import Any

import diffinterface as di
from diffinterface._backend_types import framework_of
from diffinterface.testsuite._benchmark import benchmark_differentiation
from diffinterface.testsuite._collections import default_scenarios
from diffinterface.testsuite._configurations import CONFIGURATIONS
from diffinterface.testsuite._plot import plot
from diffinterface.testsuite._seeds import OVERHEAD_SCENARIO, seed_scenarios
from diffinterface.testsuite._sparse_scenarios import sparse_scenarios
from diffinterface.testsuite._testing import CaseResult, test_differentiation

_FINITE_DIFFERENCE_WORDS = {"adaptive": ("step", "adaptive"), "vectorized": ("vectorized", True)}


def quiet_tensorflow() -> None:
    """Set TensorFlow's log variables, unless set already, before the TensorFlow backend
    first imports it: without them TensorFlow prints its oneDNN and CPU-feature banners and
    a C++ warning for every failed op. A program's choice (see docs/backends.md): the
    library itself sets none."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def parse_backend(text: str) -> Any:
    """``jax`` or ``jax:forward`` or ``finitediff:complex``, ``finitediff:adaptive``,
    ``finitediff:vectorized`` (options joined by ``+``: ``finitediff:forward+adaptive``),
    ``casadi:MX``."""
    name, _, option = text.partition(":")
    options: dict[str, Any] = {}
    for part in option.split("+") if option else ():
        if name != "finitediff":
            options["symbols" if name == "casadi" else "mode"] = part
        else:
            key, value = _FINITE_DIFFERENCE_WORDS.get(part, ("method", part))
            options[key] = value
    return di.backend(name, **options)


def parse_sizes(items: list[str]) -> dict[str, int]:
    """``["vector=10000", ...]`` as ``{"vector": 10000, ...}``."""
    return {key: int(value) for key, _, value in (item.partition("=") for item in items)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diffinterface.testsuite",
        description="Check and benchmark AD backends side by side.",
    )
    parser.add_argument(
        "--backends",
        help="comma-separated, e.g. jax,torch:forward,finitediff:complex,"
        "finitediff:adaptive+vectorized "
        "(default: every installed backend in every mode)",
    )
    parser.add_argument(
        "--scenarios",
        default="default,seed,sparse",
        help="collections to check: default,seed,sparse (sparse: on AutoSparse(backend))",
    )
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        metavar="KEY=N",
        help="seed scenario size, e.g. --size vector=10000 --size samples=100 "
        "(keys: matrix vector features samples hidden layer rosenbrock_n)",
    )
    parser.add_argument("--budget", type=float, default=0.25, help="seconds per timing")
    parser.add_argument("--no-benchmark", action="store_true", help="only check correctness")
    parser.add_argument(
        "--no-native",
        action="store_true",
        help="skip the comparison with hand-written native code (about half the benchmark time)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1, as the baselines; on a busy 2-core machine "
        "more threads spin against each other and make small torch calls 20× slower)",
    )
    parser.add_argument("--csv", type=Path, help="write the benchmark records as CSV")
    parser.add_argument("--json", type=Path, help="write the benchmark records as JSON")
    parser.add_argument(
        "--plot", type=Path, default=Path("results/benchmark.png"), help="benchmark plot (PNG)"
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=Path("results/benchmark.md"),
        help="benchmark table as Markdown",
    )
    args = parser.parse_args(argv)
    quiet_tensorflow()
    if "torch" in di.available_backends():
        import torch

        torch.set_num_threads(args.torch_threads)

    if args.backends:
        backends = [parse_backend(b) for b in args.backends.split(",")]
    else:
        backends = [
            b
            for name in di.available_backends()
            for b in CONFIGURATIONS.get(name, (di.backend(name),))
        ]
    collections = set(args.scenarios.split(","))
    seeds = seed_scenarios(**parse_sizes(args.size))
    scenarios = (default_scenarios() if "default" in collections else []) + (
        seeds if "seed" in collections else []
    )
    sparse = sparse_scenarios() if "sparse" in collections else []
    sparse_backends = [di.AutoSparse(b) for b in backends] if sparse else []
    print(f"backends: {', '.join(map(repr, backends))}")
    print(f"checking {len(scenarios)} scenarios × {len(backends)} backends", flush=True)
    if sparse:
        print(
            f"and {len(sparse)} sparse scenarios × the same backends in di.AutoSparse", flush=True
        )
    print()

    started, done = time.perf_counter(), [0]
    total = (len(scenarios) + len(sparse)) * len(backends)

    def show(result: CaseResult) -> None:
        done[0] += 1
        if result.status == "fail":
            print(f"  {result}", flush=True)
        if done[0] % 50 == 0 or done[0] == total:
            elapsed = time.perf_counter() - started
            print(f"  [{done[0]}/{total} cases, {elapsed:.0f} s]", flush=True)

    report = test_differentiation(backends, scenarios, progress=show)
    report.results += test_differentiation(sparse_backends, sparse, progress=show).results
    print("\nCorrectness (passed/supported per backend × operator; n/s = not supported):")
    print(report)

    if not args.no_benchmark and "seed" in collections:
        print("\nBenchmark of the seed scenarios (median per call):", flush=True)

        def tick(record: dict[str, Any]) -> None:
            print(f"  {record['backend']:<20} {record['scenario']}", flush=True)

        table = benchmark_differentiation(
            backends,
            seeds,
            budget=args.budget,
            native=not args.no_native,
            progress=tick,
            csv=args.csv,
            json=args.json,
        )
        print_benchmark(table)
        print_native(table)
        print_cross_backend(table)
        plot(table, args.plot)
        write_markdown(table, args.markdown, args.torch_threads)
    return 0 if report.ok else 1


def _records(table: Any) -> list[dict[str, Any]]:
    """The benchmark's rows as dicts, from a DataFrame or the list itself (no pandas)."""
    return table.to_dict("records") if hasattr(table, "to_dict") else table


def print_benchmark(table: Any) -> None:
    records = _records(table)
    print(
        f"\n{'scenario':<42}{'backend':<22}{'prepared':>12}{'× fastest':>11}"
        f"{'unprepared':>13}{'prepare':>11}{'peak mem':>11}{'f calls':>16}"
    )
    for r in records:
        if r["status"] != "ok":
            print(f"{r['scenario']:<42}{r['backend']:<22}  {r['status']}")
            continue
        print(
            f"{r['scenario']:<42}{r['backend']:<22}{_time(r['prepared_s']):>12}"
            f"{r['ratio_to_fastest']:>10.1f}×{_time(r['unprepared_s']):>13}"
            f"{_time(r['prepare_s']):>11}{r['peak_bytes'] / 1024:>9.0f} kB{_calls(r):>16}"
        )


def _calls(record: dict[str, Any]) -> str:
    """Python calls of f per prepared call, with the points where a vectorised f took
    batches of them."""
    calls, points = record.get("calls"), record.get("points")
    if calls is None or points is None or calls != calls:  # missing, or NaN in a DataFrame
        return "-"
    return f"{int(calls)} ({int(points)} pts)" if points != calls else str(int(calls))


#: targets of the native comparison: the ratio where the native call takes this long or
#: more, and the added time per call on the dispatch-overhead scenario
RATIO_TARGET, RATIO_FROM_S, ADDED_TARGET_S = 1.05, 100e-6, 1.5e-6


def print_native(table: Any) -> None:
    """Prepared calls against the fastest hand-written native call, with the targets."""
    records = _records(table)
    rows = [r for r in records if isinstance(r.get("native_s"), float) and r["native_s"] > 0]
    if not rows:
        return
    print(
        "\nPrepared call against the same operator written by hand with the framework's own "
        "API\n(x in the framework's array type; alternating pairs; ratio and added time are "
        "medians over the pairs;\ntarget: ratio ≤ "
        f"{RATIO_TARGET} where native ≥ {_time(RATIO_FROM_S)}, added ≤ {_time(ADDED_TARGET_S)} "
        "on the overhead scenario):"
    )
    print(
        f"{'scenario':<42}{'backend':<22}{'prepared':>11}{'native':>11}{'ratio':>8}"
        f"{'added':>11}  {'target':<7}native method"
    )
    for r in rows:
        if r["scenario"] == OVERHEAD_SCENARIO:
            met: str | bool = r["added_s"] <= ADDED_TARGET_S
        elif r["native_s"] >= RATIO_FROM_S:
            met = r["native_ratio"] <= RATIO_TARGET
        else:
            met = "-"
        mark = met if isinstance(met, str) else ("met" if met else "MISSED")
        print(
            f"{r['scenario']:<42}{r['backend']:<22}{_time(r['paired_s']):>11}"
            f"{_time(r['native_s']):>11}{r['native_ratio']:>7.2f}×"
            f"{_signed_time(r['added_s']):>11}  {mark:<7}{r['native_method']}"
        )


def print_cross_backend(table: Any) -> None:
    """Each backend's prepared time relative to the fastest backend, per seed scenario."""
    records = _records(table)
    ok = [r for r in records if r["status"] == "ok"]
    backends = list(dict.fromkeys(r["backend"] for r in ok))
    print("\nCross-backend: prepared time relative to the fastest backend (1.0 = fastest):")
    print(f"{'scenario':<42}" + "".join(f"{b[:13]:>14}" for b in backends))
    for scenario in dict.fromkeys(r["scenario"] for r in ok):
        ratio = {r["backend"]: r["ratio_to_fastest"] for r in ok if r["scenario"] == scenario}
        cells = [f"{ratio[b]:.3g}" if b in ratio else "-" for b in backends]
        print(f"{scenario:<42}" + "".join(f"{c:>14}" for c in cells))


def _signed_time(seconds: float) -> str:
    return ("-" if seconds < 0 else "+") + _time(abs(seconds))


def _time(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _version(module: str) -> str:
    """The installed version of the distribution that provides ``module`` (TensorFlow's is
    ``tensorflow-cpu`` on Linux x86_64)."""
    distributions = packages_distributions().get(module, [module])
    return version(distributions[0])


def write_markdown(table: Any, path: Path, torch_threads: int) -> None:
    """The benchmark table as Markdown, headed by when and on what it was measured."""
    records = _records(table)
    frameworks = (framework_of(di.backend(n)) for n in di.available_backends())
    packages = dict.fromkeys(["numpy", *(fw[0] for fw in frameworks if fw is not None)])
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
        f"`python -m diffinterface.testsuite` on {platform.system()} {platform.machine()}, "
        f"{_cpu_count()} CPU cores, Python {platform.python_version()}, {versions}; "
        f"median per call, {torch_threads} torch thread(s).",
        "",
        "| scenario | backend | prepared | × fastest | unprepared | prepare | peak mem | f calls |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        if r["status"] != "ok":
            lines.append(f"| {r['scenario']} | {r['backend']} | {r['status']} | | | | | |")
            continue
        lines.append(
            f"| {r['scenario']} | {r['backend']} | {_time(r['prepared_s'])} "
            f"| {r['ratio_to_fastest']:.1f}× | {_time(r['unprepared_s'])} "
            f"| {_time(r['prepare_s'])} | {r['peak_bytes'] / 1024:.0f} kB | {_calls(r)} |"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    print(f"wrote {path}")


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
