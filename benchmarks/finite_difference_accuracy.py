"""Accuracy, evaluations of f and time per call of finite differences, against scipy and
numdifftools, on a battery of smooth functions with derivatives written by hand.

For each case (a scalar function at a point, or a vector function's Jacobian, gradient or
Hessian) and each method, the relative error against the hand-written derivative (max
|error| / max |derivative| for arrays), the number of points at which f was evaluated
(counted by wrapping f, so every method is counted the same way) and the time per call:

* ``di fixed``: ``di.derivative / jacobian / gradient / hessian`` with
  ``di.AutoFiniteDiff()`` (central, h = eps^(1/3)·max(1, |x|); Hessians by second
  differences with eps^(1/4)), prepared, f called once per point;
* ``di adaptive``: the same with ``di.AutoFiniteDiff(step="adaptive", vectorized=True)``
  (Richardson extrapolation over steps 0.25·s(x)/3^k, order 8, up to 8 steps), prepared,
  with ``error=True``; ``est≥err`` counts the entries whose error estimate bounds the error;
* ``scipy``: ``scipy.differentiate.derivative / jacobian / hessian`` with their defaults;
* ``numdifftools``: ``nd.Derivative / Jacobian / Gradient / Hessian`` with their defaults
  (the object made once, as a preparation).

Then the Hessian of the chained Rosenbrock function at n = 100 (the seed scenario): one f
call per point against a vectorised f (a batch of points on a leading axis).
Run: ``.venv/bin/python benchmarks/finite_difference_accuracy.py`` (about a minute;
numdifftools: the ``bench`` extra, ``pip install -c constraints.txt numdifftools``).
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
from diffinterface.backends._finite_difference_points import MEMORY_BUDGET
from diffinterface.backends._finite_differences import second_differences

try:
    import numdifftools as nd
except ImportError:  # optional: the bench extra
    nd = None

FIXED = di.AutoFiniteDiff()
ADAPTIVE = di.AutoFiniteDiff(step="adaptive", vectorized=True)
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


# ---- the methods ----------------------------------------------------------------------------
#: a method: (f, x, operator, ndim of x) -> a call returning (value, error estimate or None),
#: and the Counted f it calls (its count is reset after any preparation)
Method = Callable[[Callable[..., Any], Any, str, int], tuple[Callable[[], Any], Counted]]


def diffinterface(backend: Any) -> Method:
    def make(f: Callable[..., Any], x: Any, op: str, ndim: int) -> Any:
        c = Counted(f, ndim, "leading" if backend.vectorized else None)
        prep = getattr(di, f"prepare_{op}")(c, backend, x)
        adaptive = backend.step == "adaptive"

        def call() -> Any:
            result = getattr(di, op)(c, backend, x, prep=prep, error=adaptive)
            return result if adaptive else (result, None)

        c.points = 0
        return call, c

    return make


def scipy_differentiate(f: Callable[..., Any], x: Any, op: str, ndim: int) -> Any:
    c = Counted(f, ndim, "trailing" if ndim else "leading")

    def call() -> Any:
        if op == "derivative":
            res = sd.derivative(c, x)
            return res.df, res.error
        if op == "hessian":
            res = sd.hessian(c, x)
            return res.ddf, res.error
        res = sd.jacobian(c, x)
        return res.df, res.error

    return call, c


def numdifftools(f: Callable[..., Any], x: Any, op: str, ndim: int) -> Any:
    c = Counted(f, ndim, "leading" if not ndim else None)
    kind = {
        "derivative": nd.Derivative,
        "gradient": nd.Gradient,
        "jacobian": nd.Jacobian,
        "hessian": nd.Hessian,
    }[op]
    made = kind(c, full_output=True) if op == "derivative" else kind(c)

    def call() -> Any:
        if op == "derivative":
            res = made(x)
            return res.estimate, res.error_estimate
        return made(x), None

    return call, c


METHODS: dict[str, Method] = {
    "di fixed": diffinterface(FIXED),
    "di adaptive": diffinterface(ADAPTIVE),
    "scipy.differentiate": scipy_differentiate,
} | ({"numdifftools": numdifftools} if nd else {})


def run_battery() -> dict[str, dict[str, list[float]]]:
    cases = [
        (f"{name} x={x:g}", "derivative", f, df(x), x, 0) for name, f, df, xs in SCALAR for x in xs
    ]
    cases += [(f"{name} {op}", op, f, d(x), x, 1) for name, op, f, d, x in VECTOR]
    summary: dict[str, dict[str, list[float]]] = {m: {"err": [], "n": [], "t": []} for m in METHODS}
    bounded = total = 0
    head = "".join(f"{m:>27}" for m in METHODS)
    print(
        f"{'case':<26}{head}\n{'':<26}"
        + "".join(f"{'rel.err  f-evals  µs/call':>27}" for _ in METHODS)
    )
    for label, op, f, truth, x, ndim in cases:
        row = f"{label:<26}"
        for m, make in METHODS.items():
            call, counted = make(f, x, op, ndim)
            value, error = call()
            points = counted.points
            err = relative_error(value, truth)
            seconds = per_call(call)
            summary[m]["err"].append(err)
            summary[m]["n"].append(points)
            summary[m]["t"].append(seconds)
            row += f"{err:>10.1e}{points:>8d}{seconds * 1e6:>9.0f}"
            if m == "di adaptive":
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
    print(f"{'worst':<26}" + "".join(f"{max(s['err']):>10.1e}{'':>17}" for s in summary.values()))
    print(
        f"{'total f-evaluations':<26}"
        + "".join(f"{sum(s['n']):>18d}{'':>9}" for s in summary.values())
    )
    print(f"di adaptive: error estimate ≥ true error in {bounded}/{total} entries")
    return summary


def vectorised_hessian(n: int = 100) -> None:
    """The rosenbrock seed's Hessian: the kernel before this change (f(x) and four-point
    second differences, one f call per point), the prepared di.hessian with one f call per
    point, with a vectorised f (fixed and adaptive steps), and f alone on the vectorised
    call's points in its chunks. (scipy.differentiate.hessian takes 7.1 million
    evaluations and about 10 s here: left out.)"""
    x = np.linspace(-1.2, 1.2, n)
    truth = rosenbrock_hessian(x)
    rel = float(np.finfo(np.float64).eps) ** 0.25

    def main_kernel() -> Any:  # diffinterface before this change: 1 + 2n² points
        y = np.array(rosenbrock(x))
        return second_differences(rosenbrock, x, (), y, False, rel, rel).reshape(n, n)

    preps = {b: di.prepare_hessian(rosenbrock, b, x) for b in (FIXED, ADAPTIVE, VECTORISED)}
    points = np.broadcast_to(x, (n * (n + 1) + 1, n)).copy()
    chunk = MEMORY_BUDGET // n  # the engine's default chunk
    runs: dict[str, tuple[Callable[[], Any], int]] = {
        "before: one f call per point (1 + 2n²)": (main_kernel, 1 + 2 * n * n),
        "di.hessian, one f call per point": (
            lambda: di.hessian(rosenbrock, FIXED, x, prep=preps[FIXED]),
            n * (n + 1) + 1,
        ),
        "di.hessian, vectorised f": (
            lambda: di.hessian(rosenbrock, VECTORISED, x, prep=preps[VECTORISED]),
            n * (n + 1) + 1,
        ),
        "di.hessian, vectorised f, adaptive": (
            lambda: di.hessian(rosenbrock, ADAPTIVE, x, prep=preps[ADAPTIVE]),
            _points(rosenbrock, ADAPTIVE, x),
        ),
        "(f alone on the vectorised call's points)": (
            lambda: [rosenbrock(points[i : i + chunk]) for i in range(0, len(points), chunk)],
            len(points),
        ),
    }
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(ROUNDS):  # interleaved rounds
        for k, (fn, _) in runs.items():
            wall[k].append(per_call(fn, budget=0.2))
            cpu[k].append(per_call(fn, budget=0.2, clock=time.process_time))
    base = next(iter(runs))
    print(
        f"\nHessian of the chained Rosenbrock function, n = {n}, {ROUNDS} interleaved rounds:"
        " wall time (best, median) and this process's CPU time (best; less sensitive to"
        " other processes on a shared machine), speed-up against one f call per point before"
    )
    for k, (fn, count) in runs.items():
        best, median, best_cpu = min(wall[k]), statistics.median(wall[k]), min(cpu[k])
        result = fn()
        err = "" if isinstance(result, list) else f"rel.err {relative_error(result, truth):.1e}"
        print(
            f"  {k:<42}{best * 1e3:7.1f} ms {min(wall[base]) / best:6.1f}x"
            f"{median * 1e3:7.1f} ms {statistics.median(wall[base]) / median:6.1f}x"
            f"{best_cpu * 1e3:7.1f} ms cpu {min(cpu[base]) / best_cpu:6.1f}x"
            f"  {err:<15}  f-evals {count}"
        )


VECTORISED = di.AutoFiniteDiff(vectorized=True)


def _points(f: Callable[..., Any], backend: Any, x: np.ndarray) -> int:
    c = Counted(f, 1, "leading")
    prep = di.prepare_hessian(c, backend, x)
    c.points = 0
    di.hessian(c, backend, x, prep=prep)
    return c.points


def main() -> None:
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    run_battery()
    vectorised_hessian()
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
