"""Differentiate one model with every installed backend and print the results side by side.

The model is written once against the array API (``di.array_namespace``); the backend is
picked at run time by name. Each backend's gradient, Hessian-vector product and Jacobian
is compared with JAX's (or the first backend's) and timed with a prepared call.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

import diffinterface as di


def loss(w: Any, data: Any) -> Any:
    """A small logistic-regression loss: mean log(1 + exp(-y · (X @ w)))."""
    xp = di.array_namespace(w)
    features, labels = data[:, :-1], data[:, -1]
    margins = labels * xp.matmul(features, w)
    return xp.sum(xp.log(1.0 + xp.exp(-margins))) / features.shape[0]


def layer(w: Any) -> Any:
    """tanh(A @ w): an array-valued function for the Jacobian."""
    xp = di.array_namespace(w)
    a = xp.reshape(xp.arange(w.shape[0] * 4, dtype=w.dtype), (4, w.shape[0])) / 10.0
    return xp.tanh(xp.matmul(a, w))


def median_seconds(call: Any, repeat: int = 50) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> int:
    rng = np.random.default_rng(0)
    n = 5
    data = np.column_stack([rng.normal(size=(40, n)), np.sign(rng.normal(size=40))])
    w = rng.normal(size=n)
    t = np.ones(n)
    names = di.available_backends()
    print(f"backends installed: {', '.join(names)}\n")
    rows = []
    for name in names:
        ctx = di.Constant(data)
        g = di.gradient(loss, name, w, ctx)
        hv = di.hvp(loss, name, w, t, ctx)
        jac = di.jacobian(layer, name, w)
        prep = di.prepare_gradient(loss, name, w, ctx)

        def prepared_call(name: str = name, prep: di.Prep = prep) -> Any:
            return di.gradient(loss, name, w, di.Constant(data), prep=prep)

        seconds = median_seconds(prepared_call)
        rows.append((name, g, hv, jac, seconds))
    reference = rows[0]
    print(
        f"{'backend':<12}{'gradient[0:3]':<40}{'max |Δ| vs ' + reference[0]:<22}"
        f"{'prepared gradient':>18}"
    )
    for name, g, hv, jac, seconds in rows:
        diff = max(
            np.max(np.abs(g - reference[1])),
            np.max(np.abs(hv - reference[2])),
            np.max(np.abs(jac - reference[3])),
        )
        print(
            f"{name:<12}{np.array2string(g[:3], precision=6):<40}{diff:<22.2e}"
            f"{seconds * 1e6:>15.1f} µs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
