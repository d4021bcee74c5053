"""Results that could share memory with what the next evaluation of f overwrites, and the
dtype of finite differences of an f that returns a Python number; each against an
analytic derivative."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

import diffinterface as di

MUTATING = [
    di.AutoTorch(),
    di.AutoTorch(mode="forward"),
    *(di.AutoFiniteDiff(method=m) for m in ("central", "forward", "complex")),
]


def squares_into_cache(x: Any, c: Any) -> Any:
    c[...] = x**2
    return c  # f's output is its Cache buffer


def tail_of_cache(x: Any, c: Any) -> Any:
    c[...] = x**2
    return c[1:]  # a view of the Cache buffer


def _numpy(a: Any) -> np.ndarray:
    return a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


@pytest.mark.parametrize("backend", MUTATING, ids=repr)
@pytest.mark.parametrize("f", [squares_into_cache, tail_of_cache], ids=lambda f: f.__name__)
def test_output_that_is_a_cache_buffer(backend: Any, f: Any) -> None:
    """The Jacobian is right (finite differences subtract two evaluations of f), and the
    value of one prepared call survives the next call."""
    x = np.array([1.0, 2.0, 3.0])
    if backend.name == "torch":
        x = torch.from_numpy(x)
    cache = di.Cache(np.zeros(3))
    prep = di.prepare_jacobian(f, backend, x, cache)
    value, jac = di.value_and_jacobian(f, backend, x, cache, prep=prep)
    di.value_and_jacobian(f, backend, 10 * x, cache, prep=prep)
    rows = slice(None) if f is squares_into_cache else slice(1, None)
    expected_value = (np.array([1.0, 2.0, 3.0]) ** 2)[rows]
    expected_jac = np.diag(2 * np.array([1.0, 2.0, 3.0]))[rows]
    np.testing.assert_allclose(_numpy(value), expected_value)
    np.testing.assert_allclose(_numpy(jac), expected_jac, rtol=1e-6, atol=1e-6)


def test_out_read_by_f_through_a_constant() -> None:
    """out= is filled only once J is complete: f may read out (here inside a dict Constant)."""
    w = np.ones(3)

    def f(x: Any, d: Any) -> Any:
        return np.sum(x**2) * d["w"][0]

    x = np.array([1.0, 2.0, 3.0])
    result = di.gradient(f, "finitediff", x, di.Constant({"w": w}), out=w)
    assert result is w
    np.testing.assert_allclose(w, 2 * x, rtol=1e-7)


def test_out_read_by_f_through_a_closure() -> None:
    out = np.ones((3, 3))

    def f(x: Any) -> Any:
        return np.sin(x) * out[0, 0]  # reads the array the Jacobian is written into

    x = np.array([0.1, 0.2, 0.3])
    prep = di.prepare_jacobian(f, "finitediff", x)
    assert di.jacobian(f, "finitediff", x, prep=prep, out=out) is out
    np.testing.assert_allclose(out, np.diag(np.cos(x)), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_python_number_output_keeps_x_dtype(dtype: Any) -> None:
    """f returning a Python float (math.fsum) still gives results of x's dtype, also into
    out= of that dtype."""
    x = np.array([0.5, 1.5], dtype=dtype)

    def f(v: Any) -> float:
        return math.fsum(v * v)

    gradient = di.gradient(f, "finitediff", x)
    assert gradient.dtype == dtype
    out = np.zeros(2, dtype=dtype)
    assert di.gradient(f, "finitediff", x, out=out) is out
    tolerance = 1e-2 if dtype == np.float32 else 1e-7
    np.testing.assert_allclose(out, 2 * x, rtol=tolerance)
