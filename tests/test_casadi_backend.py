"""di.AutoCasADi beyond the shared scenarios (which test_scenarios, test_sparse and
test_native run on it): MX symbols, structured x, contexts as parameters, float32,
exact sparse patterns, generated C, threads, SecondOrder and DifferentiateWith around it,
and the refusals, each against JAX or an analytic reference."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import diffinterface as di
from diffinterface.testsuite import default_scenarios, sparse_scenarios, test_differentiation
from tests._counting import CountingFunction

from .conftest import assert_close

X = np.linspace(0.1, 0.9, 5)


def model(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(xp.exp(x[1:] * x[:-1])) + xp.sum(xp.sin(x) ** 2)


def chain(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.concat([x[1:] * x[:-1], xp.tanh(x)])


def scaled(x: Any, a: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(a * xp.cos(x))


@pytest.mark.parametrize("operator", ["gradient", "jacobian", "hessian"])
def test_mx_symbols_on_the_default_scenarios(operator: str) -> None:
    scenarios = [s for s in default_scenarios() if s.operator == operator]
    report = test_differentiation([di.AutoCasADi(symbols="MX")], scenarios)
    assert report.failures == [], report


def test_structured_x_is_joined_by_the_core() -> None:
    def energy(p: Any) -> Any:
        xp = di.array_namespace(p["w"])
        return xp.sum(xp.tanh(p["w"] @ p["v"]) ** 2) + xp.sum(p["v"] ** 3)

    p = {"w": np.linspace(-1, 1, 6).reshape(2, 3), "v": np.linspace(0.2, 0.6, 3)}
    for op in (di.gradient, di.value_and_gradient, di.hessian):
        ours, ref = op(energy, di.AutoCasADi(), p), op(energy, di.AutoJAX(), p)
        for a, b in zip(_leaves(ours), _leaves(ref), strict=True):
            assert_close(a, np.asarray(b), 1e-12)


def _leaves(tree: Any) -> list[Any]:
    if isinstance(tree, dict):
        return [v for t in tree.values() for v in _leaves(t)]
    if isinstance(tree, list | tuple):
        return [v for t in tree for v in _leaves(t)]
    return [tree]


def test_float_constants_are_parameters_and_static_ones_are_baked_in() -> None:
    counted = CountingFunction(scaled)
    a1, a2 = np.full(5, 2.0), np.linspace(1, 3, 5)
    prep = di.prepare_gradient(counted, di.AutoCasADi(), X, di.Constant(a1))
    counted.calls = 0
    for a in (a1, a2):  # a new value needs no new trace
        got = di.gradient(counted, di.AutoCasADi(), X, di.Constant(a), prep=prep)
        assert_close(got, -a * np.sin(X), 1e-14)
    assert counted.calls == 0
    index = np.array([0, 2, 4])

    def picked(x: Any, i: Any) -> Any:
        return di.array_namespace(x).sum(x[i] ** 2)

    prep = di.prepare_gradient(picked, "casadi", X, di.Constant(index))
    assert_close(di.gradient(picked, "casadi", X, di.Constant(index.copy()), prep=prep),
                 np.where(np.isin(np.arange(5), index), 2 * X, 0), 1e-14)  # fmt: skip
    with pytest.raises(di.PreparationMismatchError, match="baked into CasADi's expression"):
        di.gradient(picked, "casadi", X, di.Constant(np.array([1, 2, 3])), prep=prep)


def test_float32_in_float32_out() -> None:
    x32 = X.astype(np.float32)
    for op, f in ((di.gradient, model), (di.jacobian, chain), (di.hessian, model)):
        got = op(f, "casadi", x32)
        assert got.dtype == np.float32
        assert_close(got, np.asarray(op(f, "casadi", X)), 1e-6)
    sparse = di.hessian(model, di.AutoSparse(di.AutoCasADi()), x32)
    assert sparse.dtype == np.float32


def test_sparse_patterns_are_casadis_exact_ones() -> None:
    """The pattern has exactly the structural nonzeros (tridiagonal Hessian, banded
    Jacobian), with no detector and no colouring, and the same numbers as dense."""
    sparse = di.AutoSparse(di.AutoCasADi())
    assert sparse.sparsity_detector is None
    h = di.hessian(model, sparse, X)
    assert h.format == "csr" and h.nnz == 5 + 2 * 4
    assert_close(h.toarray(), di.hessian(model, "jax", X), 1e-12)
    j = di.jacobian(chain, sparse, X)
    assert j.nnz == 2 * 4 + 5
    assert_close(j.toarray(), di.jacobian(chain, "jax", X), 1e-12)
    coloured = di.AutoSparse(di.AutoCasADi(), sparsity_detector=di.TracerSparsityDetector())
    assert_close(di.jacobian(chain, coloured, X).toarray(), j.toarray(), 1e-14)
    report = test_differentiation([sparse, coloured], sparse_scenarios(n=6, grid=3))
    assert report.failures == [], report


def test_generated_c_gives_the_same_numbers() -> None:
    compiled = di.AutoCasADi(codegen=True)
    for op, f, args in ((di.value_gradient_and_hessian, model, ()), (di.hvp, model, (X,))):
        plain = op(f, di.AutoCasADi(), X, *args)
        for a, b in zip(_leaves(op(f, compiled, X, *args)), _leaves(plain), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_a_prepared_call_from_two_threads() -> None:
    prep = di.prepare_hessian(model, "casadi", X)
    points = [X + 0.01 * k for k in range(40)]
    expected = [di.hessian(model, "casadi", p, prep=prep) for p in points]  # one thread
    assert_close(expected[-1], di.hessian(model, "jax", points[-1]), 1e-12)
    errors: list[str] = []

    def work(offset: int) -> None:
        for i in range(offset, len(points), 2):
            got = di.hessian(model, "casadi", points[i], prep=prep)
            if not np.array_equal(got, expected[i]):
                errors.append(f"point {i}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_second_order_and_differentiate_with() -> None:
    ref = np.asarray(di.hessian(model, "jax", X))
    assert_close(di.hessian(model, di.SecondOrder(di.AutoCasADi(), di.AutoCasADi()), X), ref, 1e-12)
    assert_close(di.hessian(model, di.SecondOrder("jax", "casadi"), X), ref, 1e-12)
    with pytest.raises(di.UnsupportedError, match="make CasADi the inner backend"):
        di.hessian(model, di.SecondOrder("casadi", "jax"), X)
    g = di.DifferentiateWith(model, "casadi")
    assert_close(di.gradient(g, "jax", X), di.gradient(model, "jax", X), 1e-12)


def test_refusals_name_the_operation_and_the_way_out() -> None:
    def branching(x: Any) -> Any:
        return x[0] * 2 if x[0] > 0 else x[0]

    def cubic(x: Any) -> Any:
        return di.array_namespace(x).sum(x.reshape(1, 5, 1))

    def sorting(x: Any) -> Any:
        return di.array_namespace(x).sort(x)

    def writing(y: Any, x: Any) -> None:
        y[...] = x**2

    cases = [
        (branching, r"Python control flow .* xp\.where"),
        (cubic, r"at most 2 dimensions, and reshape would have shape \(1, 5, 1\)"),
        (sorting, r"no function xp\.sort\. .*\"jax\""),
    ]
    for f, message in cases:
        with pytest.raises(di.UnsupportedError, match=message):
            di.prepare_gradient(f, "casadi", X)
    with pytest.raises(
        di.UnsupportedError, match=r"cannot differentiate a mutating .*di\.AutoTorch"
    ):
        di.jacobian(writing, "casadi", X, y=np.zeros(5))
    with pytest.raises(di.UnsupportedError, match="immutable"):
        di.gradient(model, "casadi", X, di.Cache(np.zeros(5)))


def test_large_arrays_are_handed_to_the_buffer_and_small_ones_copied() -> None:
    """x, a Constant and the results above and below the copying threshold (4096 entries;
    a Jacobian of n = 600 is above it, its x below), float64 and float32, called twice:
    each call gets its own result arrays."""
    for n, dtype in ((5000, np.float64), (5000, np.float32), (600, np.float64), (20, np.float64)):
        x = np.linspace(-1, 1, n).astype(dtype)
        a = np.linspace(1, 2, n).astype(dtype)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        if n <= 600:
            prep = di.prepare_jacobian(chain, "casadi", x)
            first = di.jacobian(chain, "casadi", x, prep=prep)
            second = di.jacobian(chain, "casadi", x[::-1].copy(), prep=prep)
            assert first is not second and not np.shares_memory(first, second)
            assert_close(first, di.jacobian(chain, "jax", x), tol)
        prep = di.prepare_gradient(scaled, "casadi", x, di.Constant(a))
        got = di.gradient(scaled, "casadi", x, di.Constant(2 * a), prep=prep)
        again = di.gradient(scaled, "casadi", -x, di.Constant(a), prep=prep)
        assert got.dtype == dtype and not np.shares_memory(got, again)
        assert_close(got, -2 * a * np.sin(x), tol)
        assert_close(again, a * np.sin(x), tol)
