"""Accuracy, evaluations of f and time per call of finite differences, against scipy and
numdifftools, on a battery of smooth functions with derivatives written by hand.

For each case (a scalar function at a point, or a vector function's Jacobian, gradient or
Hessian) and each method, the relative error against the hand-written derivative (max
|error| / max |derivative| for arrays), the number of points at which f was evaluated
(counted by wrapping f, so every method is counted the same way) and the time per call:

* ``di fixed``: today's backend, ``di.derivative / jacobian / gradient / hessian`` with
  ``"finitediff"`` (central, h = eps^(1/3)·max(1, |x|); Hessian: central of central);
* ``adaptive``: the Richardson schemes of ``backends/_finite_difference_operators.py`` with
  their defaults (``Scheme()``: central, order 8, steps 0.25·scale / 3^k, up to 8 steps);
  ``est≥err`` counts the entries whose error estimate bounds the true error;
* ``scipy``: ``scipy.differentiate.derivative / jacobian / hessian`` with their defaults;
* ``numdifftools``: ``nd.Derivative / Jacobian / Gradient / Hessian`` with their defaults.

Then the Hessian of the chained Rosenbrock function at n = 100 with a vectorised f (a batch
of points on a leading axis) against today's one f call per perturbation.
Run: ``.venv/bin/python benchmarks/finite_difference_accuracy.py`` (about a minute;
numdifftools: ``pip install -c constraints.txt numdifftools`` or the ``bench`` extra).
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.differentiate as sd

import diffinterface as di
from diffinterface.backends import _finite_difference_operators as fdo
from diffinterface.backends import _finite_difference_sampling as smp
from diffinterface.backends._finite_difference_sampling import batched, looped
from diffinterface.backends._finite_difference_schemes import Scheme

try:
    import numdifftools as nd
except ImportError:  # optional: the bench extra
    nd = None

ADAPTIVE = Scheme()
ROUNDS = 5

# ---- the battery: functions and their derivatives, by hand --------------------------------
# Scalar: (name, f, f', points). Vector functions take x with the variables on the LAST axis
# (any leading batch axes) and return outputs on the last axis.
SCALAR = [
    ("exp", np.exp, np.exp, [-1.0, 0.5, 2.0]),
    ("sin", np.sin, np.cos, [0.3, 1.0, 2.5]),
    ("log1p", np.log1p, lambda x: 1.0 / (1.0 + x), [0.2, 1.0, 4.0]),
    ("x^1.5", lambda x: x**1.5, lambda x: 1.5 * np.sqrt(x), [0.45, 0.5, 0.6]),
    ("atan", np.arctan, lambda x: 1.0 / (1.0 + x * x), [-0.5, 1.0, 3.0]),
]


def rosenbrock(x: np.ndarray) -> np.ndarray:
    a, b = x[..., :-1], x[..., 1:]
    return np.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2, axis=-1)


def rosenbrock_gradient(x: np.ndarray) -> np.ndarray:
    a, b = x[:-1], x[1:]
    g = np.zeros_like(x)
    g[:-1] = -400.0 * a * (b - a * a) - 2.0 * (1.0 - a)
    g[1:] += 200.0 * (b - a * a)
    return g


def rosenbrock_hessian(x: np.ndarray) -> np.ndarray:
    n, i = x.size, np.arange(x.size - 1)
    h = np.zeros((n, n))
    h[i, i] += 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
    h[i + 1, i + 1] += 200.0
    h[i, i + 1] = h[i + 1, i] = -400.0 * x[:-1]
    return h


def brown(x: np.ndarray) -> np.ndarray:
    """Brown's almost-linear function (Moré, Garbow, Hillstrom #27)."""
    n = x.shape[-1]
    head = x[..., :-1] + np.sum(x, axis=-1, keepdims=True) - (n + 1)
    return np.concatenate([head, np.prod(x, axis=-1, keepdims=True) - 1.0], axis=-1)


def brown_jacobian(x: np.ndarray) -> np.ndarray:
    j = np.eye(x.size) + 1.0
    j[-1] = [np.prod(np.delete(x, i)) for i in range(x.size)]
    return j


def broyden(x: np.ndarray) -> np.ndarray:
    """Broyden's tridiagonal function (MGH #30)."""
    zero = np.zeros((*x.shape[:-1], 1))
    left = np.concatenate([zero, x[..., :-1]], axis=-1)
    right = np.concatenate([x[..., 1:], zero], axis=-1)
    return (3.0 - 2.0 * x) * x - left - 2.0 * right + 1.0


def broyden_jacobian(x: np.ndarray) -> np.ndarray:
    return np.diag(3.0 - 4.0 * x) - np.eye(x.size, k=-1) - 2.0 * np.eye(x.size, k=1)


def robertson(y: np.ndarray) -> np.ndarray:
    """Robertson's stiff chemical kinetics, dy/dt as a function of y."""
    y1, y2, y3 = y[..., 0], y[..., 1], y[..., 2]
    r1, r2, r3 = 0.04 * y1, 1e4 * y2 * y3, 3e7 * y2 * y2
    return np.stack([-r1 + r2, r1 - r2 - r3, r3], axis=-1)


def robertson_jacobian(y: np.ndarray) -> np.ndarray:
    _, y2, y3 = y
    return np.array(
        [[-0.04, 1e4 * y3, 1e4 * y2], [0.04, -1e4 * y3 - 6e7 * y2, -1e4 * y2], [0.0, 6e7 * y2, 0.0]]
    )


# (name, operator, f, derivative, x)
VECTOR = [
    ("rosenbrock n=6", "gradient", rosenbrock, rosenbrock_gradient, np.linspace(-1.2, 1.0, 6)),
    ("brown n=5", "jacobian", brown, brown_jacobian, 0.5 + 0.1 * np.arange(5.0)),
    ("broyden n=6", "jacobian", broyden, broyden_jacobian, -np.ones(6)),
    ("robertson n=3", "jacobian", robertson, robertson_jacobian, np.array([0.9, 3e-5, 0.1])),
    ("rosenbrock n=6", "hessian", rosenbrock, rosenbrock_hessian, np.linspace(-1.2, 1.0, 6)),
]


# ---- counting and timing ------------------------------------------------------------------
class Counted:
    """f, counting the points it is evaluated at; ``batch_axis`` says where a batch sits:
    "leading" (ours), "trailing" (scipy.differentiate: variables first), None (one point)."""

    def __init__(self, f: Callable[..., Any], ndim: int, batch_axis: str | None) -> None:
        self.f, self.ndim, self.batch_axis, self.points = f, ndim, batch_axis, 0

    def __call__(self, x: Any) -> Any:
        x = np.asarray(x)
        batch = x.shape[: x.ndim - self.ndim] if self.batch_axis != "trailing" else x.shape[1:]
        self.points += int(np.prod(batch))
        if self.batch_axis == "trailing" and self.ndim:  # variables first, batch after
            out = np.asarray(self.f(np.moveaxis(x, 0, -1)))
            return np.moveaxis(out, -1, 0) if out.ndim > len(batch) else out
        return self.f(x)


def per_call(fn: Callable[[], Any], budget: float = 0.02, clock: Any = time.perf_counter) -> float:
    start = clock()
    fn()
    once = clock() - start
    reps = max(1, min(200, int(budget / max(once, 1e-7))))
    start = clock()
    for _ in range(reps):
        fn()
    return (clock() - start) / reps


def relative_error(a: Any, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


# ---- the methods, per kind of case ---------------------------------------------------------
def scalar_methods(f: Callable[..., Any]) -> dict[str, Callable[[float], tuple[Any, Counted, Any]]]:
    def ours(x: float) -> tuple[Any, Counted, Any]:
        c = Counted(f, 0, "leading")
        est = fdo.derivative(batched(c), np.array(x), ADAPTIVE)
        return est.value, c, est.error

    def fixed(x: float) -> tuple[Any, Counted, Any]:
        c = Counted(f, 0, None)
        return di.derivative(c, "finitediff", x), c, None

    def scipy(x: float) -> tuple[Any, Counted, Any]:
        c = Counted(f, 0, "leading")
        res = sd.derivative(c, x)
        return res.df, c, res.error

    def ndt(x: float) -> tuple[Any, Counted, Any]:
        c = Counted(f, 0, "leading")
        res = nd.Derivative(c, full_output=True)(x)
        return res.estimate, c, res.error_estimate

    return {"di fixed": fixed, "adaptive": ours, "scipy": scipy} | (
        {"numdifftools": ndt} if nd else {}
    )


def vector_methods(
    op: str, f: Callable[..., Any]
) -> dict[str, Callable[[np.ndarray], tuple[Any, Counted, Any]]]:
    def ours(x: np.ndarray) -> tuple[Any, Counted, Any]:
        c = Counted(f, 1, "leading")
        est = getattr(fdo, op)(batched(c), x, ADAPTIVE)
        return est.value, c, est.error

    def fixed(x: np.ndarray) -> tuple[Any, Counted, Any]:
        c = Counted(f, 1, None)
        return getattr(di, op)(c, "finitediff", x), c, None

    def scipy(x: np.ndarray) -> tuple[Any, Counted, Any]:
        c = Counted(f, 1, "trailing")
        res = (sd.hessian if op == "hessian" else sd.jacobian)(c, x)
        return res.ddf if op == "hessian" else res.df, c, res.error

    def ndt(x: np.ndarray) -> tuple[Any, Counted, Any]:
        c = Counted(f, 1, None)
        kind = {"gradient": nd.Gradient, "jacobian": nd.Jacobian, "hessian": nd.Hessian}[op]
        return kind(c)(x), c, None

    return {"di fixed": fixed, "adaptive": ours, "scipy": scipy} | (
        {"numdifftools": ndt} if nd else {}
    )


def run_battery() -> dict[str, dict[str, list[float]]]:
    cases: list[tuple[str, Any, Any, dict[str, Any]]] = []
    for name, f, df, xs in SCALAR:
        cases += [(f"{name} x={x:g}", x, df(x), scalar_methods(f)) for x in xs]
    for name, op, f, d, x in VECTOR:
        cases.append((f"{name} {op}", x, d(x), vector_methods(op, f)))
    names = list(cases[0][3])
    summary: dict[str, dict[str, list[float]]] = {m: {"err": [], "n": [], "t": []} for m in names}
    bounded = total = 0
    head = "".join(f"{m:>27}" for m in names)
    print(
        f"{'case':<26}{head}\n{'':<26}"
        + "".join(f"{'rel.err  f-evals  µs/call':>27}" for _ in names)
    )
    for label, x, truth, methods in cases:
        row = f"{label:<26}"
        for m, run in methods.items():
            value, counted, error = run(x)
            err = relative_error(value, truth)
            seconds = per_call(lambda run=run, x=x: run(x))
            summary[m]["err"].append(err)
            summary[m]["n"].append(counted.points)
            summary[m]["t"].append(seconds)
            row += f"{err:>10.1e}{counted.points:>8d}{seconds * 1e6:>9.0f}"
            if m == "adaptive":
                true = np.abs(np.asarray(value, dtype=np.float64) - truth)
                bounded += int(np.sum(np.asarray(error) >= true))
                total += true.size
        print(row)
    print(
        f"{'median':<26}"
        + "".join(
            f"{statistics.median(s['err']):>10.1e}{statistics.median(s['n']):>8.0f}"
            f"{statistics.median(s['t']) * 1e6:>9.0f}"
            for s in summary.values()
        )
    )
    print(
        f"{'total f-evaluations':<26}"
        + "".join(f"{sum(s['n']):>18d}{'':>9}" for s in summary.values())
    )
    print(f"adaptive error estimate ≥ true error in {bounded}/{total} entries")
    return summary


def vectorised_hessian(n: int = 100) -> None:
    x = np.random.default_rng(0).uniform(-1.0, 1.0, n)
    truth = rosenbrock_hessian(x)
    prep = di.prepare_hessian(rosenbrock, "finitediff", x)
    fx = rosenbrock(x)
    runs: dict[str, Callable[[], Any]] = {
        "today: di.hessian, one f call per point": lambda: di.hessian(
            rosenbrock, "finitediff", x, prep=prep
        ),
        "fixed central, one f call per point": lambda: fdo.hessian(
            looped(rosenbrock), x, Scheme.fixed()
        ),
        "fixed central, vectorised f": lambda: fdo.hessian(
            batched(rosenbrock), x, Scheme.fixed(), fx
        ),
        "adaptive, vectorised f": lambda: fdo.hessian(batched(rosenbrock), x, ADAPTIVE, fx),
    }
    counts = {
        "today: di.hessian, one f call per point": (2 * n + 1) * (2 * n + 2),
        "fixed central, one f call per point": n * (n + 1) + 1,
        "fixed central, vectorised f": fdo.hessian(
            batched(rosenbrock), x, Scheme.fixed(), fx
        ).evaluations,
        "adaptive, vectorised f": fdo.hessian(batched(rosenbrock), x, ADAPTIVE, fx).evaluations,
    }
    points = np.broadcast_to(x, (n * (n + 1), n)).copy()
    chunk = smp._MEMORY_BUDGET // n  # the sampling engine's default chunk
    runs["(f alone on the same points, same chunks)"] = lambda: [
        rosenbrock(points[i : i + chunk]) for i in range(0, len(points), chunk)
    ]
    counts["(f alone on the same points, same chunks)"] = len(points)
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(ROUNDS):  # interleaved rounds
        for k, fn in runs.items():
            wall[k].append(per_call(fn, budget=0.2))
            cpu[k].append(per_call(fn, budget=0.2, clock=time.process_time))
    base = "today: di.hessian, one f call per point"
    print(
        f"\nHessian of the chained Rosenbrock function, n = {n}, {ROUNDS} interleaved rounds:"
        " wall time (best, median) and this process's CPU time (best; less sensitive to"
        " other processes on a shared machine), speed-up against today"
    )
    for k, fn in runs.items():
        best, median, best_cpu = min(wall[k]), statistics.median(wall[k]), min(cpu[k])
        result = fn()
        value = getattr(result, "value", result)
        err = "" if isinstance(result, list) else f"rel.err {relative_error(value, truth):.1e}"
        print(
            f"  {k:<42}{best * 1e3:7.1f} ms {min(wall[base]) / best:6.1f}x"
            f"{median * 1e3:7.1f} ms {statistics.median(wall[base]) / median:6.1f}x"
            f"{best_cpu * 1e3:7.1f} ms cpu {min(cpu[base]) / best_cpu:6.1f}x"
            f"  {err:<15}  f-evals {counts[k]}"
        )


def main() -> None:
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    run_battery()
    vectorised_hessian()
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
