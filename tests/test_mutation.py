"""Mutating functions (y=) and Cache contexts: differentiated by torch and finite
differences, refused with a clear error by JAX and autograd."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import diffinterface as di
from diffinterface.testsuite._collections import bump_derivatives
from diffinterface.testsuite._collections import energy_derivatives as scalar_derivatives
from diffinterface.testsuite._collections import wave as vector_fn
from tests.conftest import (
    IMMUTABLE_BACKENDS,
    MUTATING_BACKENDS,
    as_kind,
    assert_close,
    assert_contract,
    backend_id,
    tolerance,
    vector_jacobian,
)


def vector_fn_mutating(y: Any, x: Any) -> None:
    """Writes sin(x) · Σx² into y, one entry at a time."""
    xp = di.array_namespace(x)
    total = xp.sum(x * x)
    for i in range(y.shape[0]):
        y[i] = xp.sin(x[i]) * total


def curve_mutating(y: Any, t: Any) -> None:
    """Writes (t² sin t, t³) into y."""
    xp = di.array_namespace(t)
    y[0] = t * t * xp.sin(t)
    y[1] = t * t * t


def scalar_fn_with_cache(x: Any, tmp: Any) -> Any:
    """Σx² · Σsin(x), with x² stored in a scratch buffer first."""
    xp = di.array_namespace(x)
    tmp[...] = x * x
    return xp.sum(tmp) * xp.sum(xp.sin(x))


mutating = pytest.mark.parametrize("backend", MUTATING_BACKENDS, ids=backend_id)
immutable = pytest.mark.parametrize("backend", IMMUTABLE_BACKENDS, ids=backend_id)


@mutating
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_mutating_jacobian_pushforward_pullback(backend: Any, kind: str) -> None:
    x0 = np.linspace(-0.5, 0.8, 4)
    x = as_kind(x0, kind)
    jac = vector_jacobian(x0)
    rtol = tolerance(backend, np.float64)
    y = as_kind(np.zeros(4), kind)
    assert_close(di.jacobian(vector_fn_mutating, backend, x, y=y), jac, rtol)
    assert_close(y, vector_fn(x0), 1e-15)
    t = as_kind(np.cos(x0), kind)
    y = as_kind(np.zeros(4), kind)
    value, jt = di.value_and_pushforward(vector_fn_mutating, backend, x, t, y=y)
    assert_close(jt, jac @ np.cos(x0), rtol)
    assert_close(value, vector_fn(x0), 1e-15)
    batch = (t, as_kind(np.ones(4), kind))
    prep = di.prepare_pullback(vector_fn_mutating, backend, x, batch, y=y)
    for _ in range(2):
        got = di.pullback(vector_fn_mutating, backend, x, batch, prep=prep, y=y)
        assert_close(got[0], np.cos(x0) @ jac, rtol)
        assert_close(got[1], np.ones(4) @ jac, rtol)
        assert_contract(got[0], x, (4,))


@mutating
def test_mutating_derivative(backend: Any) -> None:
    y = np.zeros(2)
    value, d = di.value_and_derivative(curve_mutating, backend, 0.8, y=y)
    want = bump_derivatives(0.8)
    assert_close(d, [want[1], 3 * 0.8**2], tolerance(backend, np.float64))
    assert_close(value, [want[0], 0.8**3], 1e-15)
    assert_close(y, value, 0.0)


@mutating
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_cache_context_every_operator(backend: Any, kind: str) -> None:
    x0 = np.linspace(-0.5, 0.8, 4)
    x = as_kind(x0, kind)
    cache = di.Cache(np.zeros(4))
    y, g, h = scalar_derivatives(x0)
    first, second = tolerance(backend, np.float64), tolerance(backend, np.float64, 2)
    assert_close(di.gradient(scalar_fn_with_cache, backend, x, cache), g, first)
    assert_close(di.jacobian(scalar_fn_with_cache, backend, x, cache), g, first)
    t = as_kind(np.ones(4), kind)
    assert_close(di.hvp(scalar_fn_with_cache, backend, x, t, cache), h @ np.ones(4), second)
    values = di.value_gradient_and_hessian(scalar_fn_with_cache, backend, x, cache)
    for got, want, rtol in zip(values, (y, g, h), (1e-15, first, second), strict=True):
        assert_close(got, want, rtol)


@mutating
def test_cache_context_second_derivative(backend: Any) -> None:
    def bump_with_cache(t: Any, tmp: Any) -> Any:
        xp = di.array_namespace(t)
        tmp[0] = t * t
        return tmp[0] * xp.sin(t)

    got = di.value_derivative_and_second_derivative(
        bump_with_cache, backend, 0.8, di.Cache(np.zeros(1))
    )
    want = bump_derivatives(0.8)
    assert_close(got[1], want[1], tolerance(backend, np.float64))
    assert_close(got[2], want[2], tolerance(backend, np.float64, 2))


@immutable
def test_immutable_backends_refuse_mutation_and_name_the_way_out(backend: Any) -> None:
    x = np.linspace(-0.5, 0.8, 4)
    with pytest.raises(di.UnsupportedError, match=r"AutoTorch\(\) or di\.AutoFiniteDiff"):
        di.jacobian(vector_fn_mutating, backend, x, y=np.zeros(4))
    with pytest.raises(di.UnsupportedError, match="immutable"):
        di.gradient(scalar_fn_with_cache, backend, x, di.Cache(np.zeros(4)))
