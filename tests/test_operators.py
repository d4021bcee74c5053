"""Every operator × backend × array kind × dtype against analytic derivatives.

Each case checks the plain call, the value_and_ variant, the prepared call and ``out=``,
and the contract: results in x's array type, dtype and shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import diffinterface as di
from tests.conftest import DTYPES, KINDS, as_kind, assert_close, assert_contract, tolerance

VALUE_VARIANT = {
    "pushforward": "value_and_pushforward",
    "pullback": "value_and_pullback",
    "derivative": "value_and_derivative",
    "gradient": "value_and_gradient",
    "jacobian": "value_and_jacobian",
    "second_derivative": "value_derivative_and_second_derivative",
    "hvp": "gradient_and_hvp",
    "hessian": "value_gradient_and_hessian",
}
SECOND_ORDER = {"second_derivative", "hvp", "hessian"}


# -- functions with analytic derivatives (written once, for every backend) -------------


def vector_fn(x: Any) -> Any:
    """sin(x) · Σx²: array → array of x's shape."""
    xp = di.array_namespace(x)
    return xp.sin(x) * xp.sum(x * x)


def vector_jacobian(x: np.ndarray) -> np.ndarray:
    flat = x.reshape(-1)
    jac = np.diag(np.cos(flat) * np.sum(flat**2)) + np.outer(np.sin(flat), 2 * flat)
    return jac.reshape(x.shape + x.shape)


def scalar_fn(x: Any) -> Any:
    """Σx² · Σsin(x): array → scalar, with a dense Hessian."""
    xp = di.array_namespace(x)
    return xp.sum(x * x) * xp.sum(xp.sin(x))


def scalar_derivatives(x: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
    flat = x.reshape(-1)
    q, s = np.sum(flat**2), np.sum(np.sin(flat))
    g = 2 * flat * s + q * np.cos(flat)
    h = (
        2 * s * np.eye(flat.size)
        + 2 * np.outer(flat, np.cos(flat))
        + 2 * np.outer(np.cos(flat), flat)
        - q * np.diag(np.sin(flat))
    )
    return q * s, g.reshape(x.shape), h.reshape(x.shape + x.shape)


def curve(t: Any) -> Any:
    """scalar → vector (sin t, t³)."""
    xp = di.array_namespace(t)
    return xp.stack([xp.sin(t), t * t * t])


def curve_derivatives(t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.array([np.sin(t), t**3]),
        np.array([np.cos(t), 3 * t**2]),
        np.array([-np.sin(t), 6 * t]),
    )


def bump(t: Any) -> Any:
    """scalar → scalar t² sin t."""
    xp = di.array_namespace(t)
    return t * t * xp.sin(t)


def bump_derivatives(t: float) -> tuple[float, float, float]:
    s, c = np.sin(t), np.cos(t)
    return t * t * s, 2 * t * s + t * t * c, 2 * s + 4 * t * c - t * t * s


# -- the check shared by every case ---------------------------------------------------


def check(
    operator: str,
    f: Any,
    backend: Any,
    x: Any,
    args: tuple[Any, ...],
    expected: tuple[Any, ...],
    dtype: Any,
) -> None:
    """Plain, value variant, prepared and out= calls of ``operator`` against ``expected``.

    ``expected`` holds every output of the value variant, value first.
    """
    order = 2 if operator in SECOND_ORDER else 1
    rtol = tolerance(backend, dtype, order)
    run = getattr(di, operator)
    batch = isinstance(args[-1], tuple) if args else False

    def compare(result: Any, want: Any) -> None:
        if batch:
            assert isinstance(result, tuple) and len(result) == len(want)
            for r, w in zip(result, want, strict=True):
                compare_one(r, w)
        else:
            compare_one(result, want)

    def compare_one(result: Any, want: Any) -> None:
        assert_contract(result, x, np.shape(want))
        assert_close(result, want, rtol)

    compare(run(f, backend, x, *args), expected[-1])
    values = getattr(di, VALUE_VARIANT[operator])(f, backend, x, *args)
    assert len(values) == len(expected)
    for i, (v, w) in enumerate(zip(values, expected, strict=True)):
        is_batch_part = batch and i == len(expected) - 1
        if is_batch_part:
            compare(v, w)
        else:
            assert_contract(v, x, np.shape(w))
            assert_close(v, w, rtol if i == len(expected) - 1 else tolerance(backend, dtype))
    prep = getattr(di, f"prepare_{operator}")(f, backend, x, *args)
    compare(run(f, backend, x, *args, prep=prep), expected[-1])
    compare(run(f, backend, x, *args, prep=prep), expected[-1])  # reuse
    if not hasattr(x, "devices"):  # JAX arrays are immutable: no out=
        like = np.asarray(x) if isinstance(x, float) else x
        if batch:
            outs = tuple(_zeros(like, np.shape(w)) for w in expected[-1])
            got = run(f, backend, x, *args, out=outs)
            assert all(g is o for g, o in zip(got, outs, strict=True))
        else:
            out = _zeros(like, np.shape(expected[-1]))
            assert run(f, backend, x, *args, out=out) is out
        compare(got if batch else out, expected[-1])


def _zeros(like: Any, shape: tuple[int, ...]) -> Any:
    if isinstance(like, np.ndarray):
        return np.zeros(shape, like.dtype)
    return like.new_zeros(shape)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture(params=[(3,), (2, 3)], ids=["vector", "matrix"])
def point(request: pytest.FixtureRequest, dtype: Any) -> np.ndarray:
    n = int(np.prod(request.param))
    return np.linspace(-0.7, 0.9, n).reshape(request.param).astype(dtype)


# -- array input ----------------------------------------------------------------------


def test_pushforward(backend: Any, kind: str, dtype: Any, point: np.ndarray) -> None:
    jac = vector_jacobian(point.astype(np.float64))
    t1, t2 = np.ones_like(point), np.cos(point)
    flat = jac.reshape(point.size, point.size)
    want = [(flat @ t.reshape(-1)).reshape(point.shape) for t in (t1, t2)]
    y = vector_fn(point.astype(np.float64))
    x = as_kind(point, kind)
    check("pushforward", vector_fn, backend, x, (as_kind(t1, kind),), (y, want[0]), dtype)
    batch = (as_kind(t1, kind), as_kind(t2, kind))
    check("pushforward", vector_fn, backend, x, (batch,), (y, tuple(want)), dtype)


def test_pullback(backend: Any, kind: str, dtype: Any, point: np.ndarray) -> None:
    jac = vector_jacobian(point.astype(np.float64)).reshape(point.size, point.size)
    u1, u2 = np.ones_like(point), np.sin(point)
    want = [(u.reshape(-1) @ jac).reshape(point.shape) for u in (u1, u2)]
    y = vector_fn(point.astype(np.float64))
    x = as_kind(point, kind)
    check("pullback", vector_fn, backend, x, (as_kind(u1, kind),), (y, want[0]), dtype)
    batch = (as_kind(u1, kind), as_kind(u2, kind))
    check("pullback", vector_fn, backend, x, (batch,), (y, tuple(want)), dtype)


def test_jacobian(backend: Any, kind: str, dtype: Any, point: np.ndarray) -> None:
    p64 = point.astype(np.float64)
    expected = (vector_fn(p64), vector_jacobian(p64))
    check("jacobian", vector_fn, backend, as_kind(point, kind), (), expected, dtype)


def test_gradient(backend: Any, kind: str, dtype: Any, point: np.ndarray) -> None:
    y, g, _ = scalar_derivatives(point.astype(np.float64))
    check("gradient", scalar_fn, backend, as_kind(point, kind), (), (y, g), dtype)


def test_hvp(backend: Any, kind: str, dtype: Any, point: np.ndarray) -> None:
    _, g, h = scalar_derivatives(point.astype(np.float64))
    t1, t2 = np.ones_like(point), np.linspace(1, -1, point.size).reshape(point.shape)
    t2 = t2.astype(point.dtype)
    flat = h.reshape(point.size, point.size)
    want = [(flat @ t.reshape(-1)).reshape(point.shape) for t in (t1, t2)]
    x = as_kind(point, kind)
    check("hvp", scalar_fn, backend, x, (as_kind(t1, kind),), (g, want[0]), dtype)
    batch = (as_kind(t1, kind), as_kind(t2, kind))
    check("hvp", scalar_fn, backend, x, (batch,), (g, tuple(want)), dtype)


def test_hessian(backend: Any, kind: str, dtype: Any, point: np.ndarray) -> None:
    expected = scalar_derivatives(point.astype(np.float64))
    check("hessian", scalar_fn, backend, as_kind(point, kind), (), expected, dtype)


# -- scalar input ---------------------------------------------------------------------


@pytest.mark.parametrize("output", ["scalar", "vector"])
def test_derivative(backend: Any, kind: str, dtype: Any, output: str) -> None:
    f, expected = (
        (bump, bump_derivatives(0.8))
        if output == "scalar"
        else (
            curve,
            curve_derivatives(0.8),
        )
    )
    x = as_kind(np.asarray(0.8, dtype), kind)
    check("derivative", f, backend, x, (), expected[:2], dtype)
    check("second_derivative", f, backend, x, (), expected, dtype)


def test_python_number_is_float64(backend: Any) -> None:
    expected = bump_derivatives(0.8)
    check("derivative", bump, backend, 0.8, (), expected[:2], np.float64)
    check("second_derivative", bump, backend, 0.8, (), expected, np.float64)


def test_float64_accuracy_under_jax_without_x64() -> None:
    import jax

    assert not jax.config.jax_enable_x64  # the default: JAX would compute in float32
    x = np.linspace(0.1, 1.0, 5)
    g = di.gradient(scalar_fn, "jax", x)
    assert g.dtype == np.float64
    assert_close(g, scalar_derivatives(x)[1], 1e-13)
