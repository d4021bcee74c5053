"""Cross-backend agreement on random functions built from exp, sin, tanh, matmul, sums,
products and broadcasting: every backend against torch (AD) and the complex step (FD)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import diffinterface as di
from tests.conftest import BACKENDS, assert_close, backend_id, tolerance

N = 4


def random_model(seed: int) -> Any:
    """f(x, A) -> vector of x's shape: a random chain of elementwise and mixing steps."""
    steps = np.random.default_rng(seed).integers(0, 6, size=5)

    def f(x: Any, a: Any) -> Any:
        xp = di.array_namespace(x)
        v = x
        for step in steps:
            if step == 0:
                v = xp.exp(0.3 * v)
            elif step == 1:
                v = xp.sin(v) + x
            elif step == 2:
                v = xp.tanh(xp.matmul(a, v))
            elif step == 3:
                v = v * x
            elif step == 4:  # broadcasting: an outer product summed over one axis
                v = xp.sum(v[:, None] * xp.cos(x)[None, :], axis=1) / N
            else:
                v = v + xp.sum(v * v) / N
        return v

    return f


def summed(f: Any) -> Any:
    def g(x: Any, a: Any) -> Any:
        return di.array_namespace(x).sum(f(x, a))

    return g


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_random_functions_agree(backend: Any, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    x, a, t = rng.normal(size=N), di.Constant(rng.normal(size=(N, N)) / 2), rng.normal(size=N)
    f = random_model(seed)
    g = summed(f)
    ours = [
        di.jacobian(f, backend, x, a),
        di.gradient(g, backend, x, a),
        di.hvp(g, backend, x, t, a),
        di.hessian(g, backend, x, a),
    ]
    for reference in [di.AutoTorch(), di.AutoFiniteDiff(method="complex")]:
        first = max(tolerance(backend, np.float64), tolerance(reference, np.float64))
        second = max(tolerance(backend, np.float64, 2), tolerance(reference, np.float64, 2))
        assert_close(ours[0], di.jacobian(f, reference, x, a), first)
        assert_close(ours[1], di.gradient(g, reference, x, a), first)
        assert_close(ours[2], di.hvp(g, reference, x, t, a), second)
        assert_close(ours[3], di.hessian(g, reference, x, a), second)
