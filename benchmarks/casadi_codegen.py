"""When does ``di.AutoCasADi(codegen=True)`` pay off? Preparation time against call time.

For each problem (the chained Rosenbrock's gradient, Hessian and sparse Hessian, the
tridiagonal function's sparse Jacobian) and size, prepares with and without generated C
(gcc -O1 through CasADi's jit) and times prepared calls in interleaved rounds (medians).
Break-even = (extra preparation time) / (time saved per call): the number of calls after
which compiling was worth it. Run:
``.venv/bin/python benchmarks/casadi_codegen.py [--sizes 100,1000] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import diffinterface as di
from diffinterface.testsuite._sparse_scenarios import rosenbrock, tridiagonal


def per_call(fn: Callable[[], Any], budget: float = 0.05) -> float:
    """Seconds per call: as many calls as fit in ``budget`` (at least one)."""
    start = time.perf_counter()
    fn()
    reps = max(1, int(budget / max(time.perf_counter() - start, 1e-7)))
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def prepared(
    operator: str, f: Callable[..., Any], backend: Any, x: np.ndarray
) -> tuple[Callable[[], Any], float]:
    start = time.perf_counter()
    prep = getattr(di, f"prepare_{operator}")(f, backend, x)
    seconds = time.perf_counter() - start
    op = getattr(di, operator)
    return (lambda: op(f, backend, x, prep=prep)), seconds


PROBLEMS = [
    ("gradient", "rosenbrock gradient", rosenbrock, False),
    ("hessian", "rosenbrock Hessian", rosenbrock, False),
    ("hessian", "rosenbrock sparse Hessian", rosenbrock, True),
    ("jacobian", "tridiagonal sparse Jacobian", tridiagonal, True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'problem':<30} {'n':>5} {'prepare':>9} {'+ gcc':>9} {'call':>10} {'compiled':>10}"
        f" {'speed-up':>9} {'break-even':>11}"
    )
    for operator, name, f, sparse in PROBLEMS:
        for n in map(int, args.sizes.split(",")):
            if operator == "hessian" and not sparse and n > 1000:
                continue
            x = np.linspace(-0.8, 0.9, n)
            backends = [di.AutoCasADi(), di.AutoCasADi(codegen=True)]
            if sparse:
                backends = [di.AutoSparse(b) for b in backends]
            (plain, prep_plain), (compiled, prep_compiled) = (
                prepared(operator, f, b, x) for b in backends
            )
            a, b = np.asarray(_dense(plain())), np.asarray(_dense(compiled()))
            assert np.allclose(a, b, rtol=1e-12, atol=1e-12), name
            times: dict[str, list[float]] = {"plain": [], "compiled": []}
            for _ in range(args.rounds):
                times["plain"].append(per_call(plain))
                times["compiled"].append(per_call(compiled))
            t_plain, t_compiled = (statistics.median(v) for v in times.values())
            saved = t_plain - t_compiled
            calls = (prep_compiled - prep_plain) / saved if saved > 0 else float("inf")
            print(
                f"{name:<30} {n:>5} {prep_plain * 1e3:7.0f}ms {prep_compiled:8.2f}s"
                f" {t_plain * 1e6:8.1f}µs {t_compiled * 1e6:8.1f}µs"
                f" {t_plain / t_compiled:8.1f}× {calls:11.2g}",
                flush=True,
            )


def _dense(a: Any) -> Any:
    return a.toarray() if hasattr(a, "toarray") else a


if __name__ == "__main__":
    main()
