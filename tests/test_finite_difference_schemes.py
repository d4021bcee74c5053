"""The finite-difference numerics (backends/_finite_difference_schemes.py and _operators):
accuracy against hand-written derivatives, error estimates against the true error, exact
evaluation counts, a vectorised f against one call per point, float32, NaN, edge cases."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from diffinterface import InvalidArgumentError
from diffinterface.backends import _finite_difference_operators as first_order
from diffinterface.backends import _finite_difference_second_order as second_order
from diffinterface.backends._finite_difference_points import batched, looped
from diffinterface.backends._finite_difference_schemes import Scheme

ops = SimpleNamespace(**{n: getattr(first_order, n) for n in first_order.__all__})
ops.__dict__.update({n: getattr(second_order, n) for n in second_order.__all__})
ADAPTIVE = Scheme()
FIXED = {m: Scheme.fixed(m) for m in ("central", "forward", "backward", "complex")}

# Scalar functions with their derivatives (first, second), by hand.
SCALAR: list[
    tuple[str, Callable[..., Any], Callable[..., Any], Callable[..., Any], list[float]]
] = [
    ("exp", np.exp, np.exp, np.exp, [-1.0, 0.3, 1.0, 2.5]),
    ("sin", np.sin, np.cos, lambda x: -np.sin(x), [0.1, 0.7, 2.0, 4.0]),
    ("log1p", np.log1p, lambda x: 1 / (1 + x), lambda x: -1 / (1 + x) ** 2, [0.0, 0.5, 2.0, 10.0]),
    (
        "x^1.5",
        lambda x: x**1.5,
        lambda x: 1.5 * x**0.5,
        lambda x: 0.75 * x**-0.5,
        [0.5, 0.6, 1.0, 3.0],
    ),
    (
        "atan",
        np.arctan,
        lambda x: 1 / (1 + x * x),
        lambda x: -2 * x / (1 + x * x) ** 2,
        [-1.0, 0.5, 2.0],
    ),
]
SCALAR_CASES = [(name, f, d1, d2, x) for name, f, d1, d2, xs in SCALAR for x in xs]


def rosenbrock(x: np.ndarray) -> np.ndarray:  # batch on leading axes
    a, b = x[..., :-1], x[..., 1:]
    return np.sum(100 * (b - a * a) ** 2 + (1 - a) ** 2, axis=-1)


def rosenbrock_gradient(x: np.ndarray) -> np.ndarray:
    a, b = x[:-1], x[1:]
    g = np.zeros_like(x)
    g[:-1] = -400 * a * (b - a * a) - 2 * (1 - a)
    g[1:] += 200 * (b - a * a)
    return g


def rosenbrock_hessian(x: np.ndarray) -> np.ndarray:
    n = x.size
    h = np.zeros((n, n))
    i = np.arange(n - 1)
    h[i, i] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    h[i + 1, i + 1] += 200
    h[i, i + 1] = h[i + 1, i] = -400 * x[:-1]
    return h


def broyden_tridiagonal(x: np.ndarray) -> np.ndarray:
    pad = np.zeros((*x.shape[:-1], 1))
    left = np.concatenate([pad, x[..., :-1]], axis=-1)
    right = np.concatenate([x[..., 1:], pad], axis=-1)
    return (3 - 2 * x) * x - left - 2 * right + 1


def broyden_jacobian(x: np.ndarray) -> np.ndarray:
    return np.diag(3 - 4 * x) - np.eye(x.size, k=-1) - 2 * np.eye(x.size, k=1)


def brown_almost_linear(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    head = x[..., :-1] + np.sum(x, axis=-1, keepdims=True) - (n + 1)
    return np.concatenate([head, np.prod(x, axis=-1, keepdims=True) - 1], axis=-1)


def brown_jacobian(x: np.ndarray) -> np.ndarray:
    n = x.size
    j = np.eye(n) + 1
    j[-1] = [np.prod(np.delete(x, i)) for i in range(n)]
    return j


VECTOR = [
    ("broyden", broyden_tridiagonal, broyden_jacobian),
    ("brown", brown_almost_linear, brown_jacobian),
]
X5 = np.array([0.3, -0.7, 1.1, 0.5, -1.4])


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize(("name", "f", "d1", "d2", "x"), SCALAR_CASES)
def test_derivative_adaptive_is_accurate_and_bounded(name, f, d1, d2, x) -> None:
    est = ops.derivative(batched(f), np.array(x), ADAPTIVE)
    true = abs(float(est.value) - d1(x))
    assert true <= 1e-12 * max(1.0, abs(d1(x)))
    assert est.error >= true  # the estimate bounds the error
    assert est.error <= 1e-8 * max(1.0, abs(d1(x)))  # and is not vacuous
    assert est.evaluations <= 2 * ADAPTIVE.num_steps


def test_error_estimates_bound_the_true_error_in_most_entries() -> None:
    bounded = total = 0
    for _, f, d1, d2, x in SCALAR_CASES:
        for op, exact in ((ops.derivative, d1), (ops.second_derivative, d2)):
            est = op(batched(f), np.array(x), ADAPTIVE)
            bounded += int(est.error >= abs(float(est.value) - exact(x)))
            total += 1
    for _, f, jac in VECTOR:
        est = ops.jacobian(batched(f), X5, ADAPTIVE)
        bounded += int(np.sum(est.error >= np.abs(est.value - jac(X5))))
        total += est.value.size
    assert bounded >= 0.95 * total


@pytest.mark.parametrize(("name", "f", "d1", "d2", "x"), SCALAR_CASES)
def test_second_derivative(name, f, d1, d2, x) -> None:
    adaptive = ops.second_derivative(batched(f), np.array(x), ADAPTIVE)
    assert abs(float(adaptive.value) - d2(x)) <= 1e-9 * max(1.0, abs(d2(x)))
    fixed = ops.second_derivative(batched(f), np.array(x), FIXED["central"])
    assert abs(float(fixed.value) - d2(x)) <= 1e-6 * max(1.0, abs(d2(x)))
    assert np.isnan(fixed.error)  # one step: no estimate


@pytest.mark.parametrize(("name", "f", "jac"), VECTOR)
@pytest.mark.parametrize(
    "scheme", [ADAPTIVE, Scheme("forward", order=4), Scheme("complex", order=4)]
)
def test_jacobian(name, f, jac, scheme) -> None:
    est = ops.jacobian(batched(f), X5, scheme)
    assert est.value.shape == (5, 5)
    assert relative_error(est.value, jac(X5)) <= 1e-10


def test_rosenbrock_gradient_hessian_hvp_pushforward() -> None:
    x = np.linspace(-1.2, 1.0, 6)
    g, h = rosenbrock_gradient(x), rosenbrock_hessian(x)
    t = np.array([np.linspace(1, 2, 6), np.zeros(6), np.eye(6)[2]])
    evaluate = batched(rosenbrock)
    assert relative_error(ops.gradient(evaluate, x, ADAPTIVE).value, g) <= 1e-12
    hess = ops.hessian(evaluate, x, ADAPTIVE)
    assert relative_error(hess.value, h) <= 1e-11
    assert np.array_equal(hess.value, hess.value.T)
    assert np.all(hess.error >= np.abs(hess.value - h))
    assert relative_error(ops.hvp(evaluate, x, t, ADAPTIVE).value, t @ h) <= 1e-11
    assert relative_error(ops.pushforward(evaluate, x, t, ADAPTIVE).value, t @ g) <= 1e-12
    assert relative_error(ops.hessian(evaluate, x, FIXED["central"]).value, h) <= 1e-7
    assert relative_error(ops.hvp(evaluate, x, t, FIXED["central"]).value, t @ h) <= 1e-6


@pytest.mark.parametrize(
    ("operator", "scheme", "expected"),
    [  # n = 5 inputs, k = 2 tangents; the formulas of the operators module's docstring
        ("jacobian", FIXED["central"], 2 * 5),
        ("jacobian", FIXED["forward"], 5 + 1),  # + f(x)
        ("jacobian", FIXED["backward"], 5 + 1),
        ("jacobian", FIXED["complex"], 5),
        ("jacobian", Scheme(rtol=0), 2 * 5 * 8),  # every step, no early stop
        ("jacobian", Scheme("forward", order=3, rtol=0, num_steps=4), 5 * 4 + 1),
        ("pushforward", FIXED["central"], 2 * 2),
        ("hessian", FIXED["central"], 5 * 6 + 1),
        ("hessian", Scheme(rtol=0, num_steps=3, order=4), 5 * 6 * 3 + 1),
        ("hvp", FIXED["central"], 2 * (2 * 6 + 5) + 1),
    ],
)
def test_evaluation_counts_are_exact(operator, scheme, expected) -> None:
    calls = [0]

    def f(x: np.ndarray) -> np.ndarray:
        calls[0] += 1
        return (
            brown_almost_linear(x)[-1] + rosenbrock(x)
            if operator in ("hessian", "hvp")
            else brown_almost_linear(x)
        )

    t = np.stack([np.ones(5), np.arange(5.0)])
    args = (X5, t) if operator in ("pushforward", "hvp") else (X5,)
    est = getattr(ops, operator)(looped(f), *args, scheme)
    assert est.evaluations == calls[0] == expected  # one f call per point, looped


def test_adaptive_counts_add_up_and_stop_early() -> None:
    points = [0]

    def f(x: np.ndarray) -> np.ndarray:
        points[0] += len(x)
        return np.exp(x[..., 0]) * np.sin(x[..., 1])

    est = ops.gradient(batched(f), np.array([0.4, 1.3]), ADAPTIVE)
    assert est.evaluations == points[0] == 2 * 2 * (ADAPTIVE.levels + 2)  # converged at once
    assert est.calls == 1
    est = ops.derivative(batched(lambda x: np.exp(10 * x)), np.array(0.3), ADAPTIVE)
    assert 2 * (ADAPTIVE.levels + 2) < est.evaluations < 2 * ADAPTIVE.num_steps  # later rounds
    assert est.calls == est.evaluations // 2 - ADAPTIVE.levels - 1  # one step per round


@pytest.mark.parametrize("operator", ["gradient", "hessian", "hvp", "pushforward"])
@pytest.mark.parametrize("scheme", [ADAPTIVE, FIXED["central"], FIXED["forward"]])
def test_vectorised_and_chunked_match_one_call_per_point(operator, scheme) -> None:
    x = np.linspace(-0.8, 1.1, 7)
    t = np.stack([np.linspace(1, 2, 7), np.cos(np.arange(7.0))])
    args = (x, t) if operator in ("pushforward", "hvp") else (x,)
    run = getattr(ops, operator)
    calls = {"loop": 0, "vectorised": 0}

    def counted(key: str) -> Callable[[np.ndarray], np.ndarray]:
        def f(x: np.ndarray) -> np.ndarray:
            calls[key] += 1
            return rosenbrock(x)

        return f

    loop = run(looped(counted("loop")), *args, scheme)
    vectorised = run(batched(counted("vectorised")), *args, scheme)
    chunked = run(batched(rosenbrock), *args, scheme, chunk_size=5)
    for other in (vectorised, chunked):
        np.testing.assert_array_equal(other.value, loop.value)
        np.testing.assert_array_equal(other.error, loop.error)
    assert vectorised.evaluations == loop.evaluations == calls["loop"]
    rounds = 1 + scheme.num_steps - min(scheme.num_steps, scheme.levels + 2)
    assert calls["vectorised"] == vectorised.calls <= rounds + 1  # + f(x) where needed


def test_chunk_size_bounds_each_call() -> None:
    from diffinterface.backends._finite_difference_points import Directions
    from diffinterface.backends._finite_difference_sampling import differentiate_along

    sizes: list[int] = []

    def f(x: np.ndarray) -> np.ndarray:
        sizes.append(len(x))
        return rosenbrock(x)

    x = np.linspace(-0.8, 1.1, 9)
    whole = differentiate_along(
        batched(rosenbrock), x, Directions.coordinates(np.ones(9)), FIXED["central"]
    )
    est = differentiate_along(
        batched(f), x, Directions.coordinates(np.ones(9)), FIXED["central"], chunk_size=4
    )
    assert max(sizes) <= 4 and sum(sizes) == est.evaluations == 18
    np.testing.assert_array_equal(est.value, whole.value)


@pytest.mark.parametrize("scheme", [ADAPTIVE, FIXED["central"], FIXED["complex"]])
def test_float32_stays_float32_and_float64_is_not_downcast(scheme) -> None:
    x32 = X5.astype(np.float32)
    est = ops.jacobian(batched(broyden_tridiagonal), x32, scheme)
    assert est.value.dtype == np.float32 and est.error.dtype == np.float32
    assert (
        relative_error(est.value.astype(np.float64), broyden_jacobian(X5.astype(np.float32)))
        <= 1e-3
    )
    est64 = ops.jacobian(batched(broyden_tridiagonal), X5, scheme)
    assert est64.value.dtype == np.float64
    assert relative_error(est64.value, broyden_jacobian(X5)) <= 1e-9


def test_float32_points_reach_f_as_float32() -> None:
    seen: set[Any] = set()

    def f(x: np.ndarray) -> np.ndarray:
        seen.add(x.dtype)
        return np.sin(x)

    ops.derivative(batched(f), np.array(0.3, dtype=np.float32), ADAPTIVE)
    assert seen == {np.dtype(np.float32)}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # f's own (1/0, log of -1)
def test_nan_where_f_of_x_is_not_finite() -> None:
    est = ops.derivative(batched(lambda x: 1 / x), np.array(0.0), FIXED["forward"])
    assert np.isnan(est.value)
    est = ops.jacobian(batched(lambda x: np.log(x)), np.array([-1.0, 2.0]), FIXED["forward"])
    assert np.isnan(est.value[0, 0]) and est.value[1, 1] == pytest.approx(0.5)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_adaptive_skips_steps_where_f_is_not_finite() -> None:
    """log at 0.05: the largest steps cross 0 (NaN), the smaller ones give the answer."""
    est = ops.derivative(batched(np.log), np.array(0.05), ADAPTIVE)
    assert abs(float(est.value) - 20.0) <= 1e-7 * 20 and est.error >= abs(float(est.value) - 20)


def test_zero_tangent_and_empty_x() -> None:
    x = np.array([0.5, 1.5])
    est = ops.pushforward(batched(rosenbrock), x, np.zeros((1, 2)), ADAPTIVE)
    assert est.value.shape == (1,) and est.value[0] == 0 and est.evaluations == 1  # y's shape
    est = ops.pushforward(batched(rosenbrock), x, np.zeros((1, 2)), ADAPTIVE, fx=rosenbrock(x))
    assert est.value[0] == 0 and est.error[0] == 0 and est.evaluations == 0
    empty = ops.jacobian(
        batched(lambda x: np.sum(x, axis=-1, keepdims=True)), np.zeros(0), ADAPTIVE
    )
    assert empty.value.shape == (1, 0) and empty.evaluations == 1


def test_threads_share_nothing() -> None:
    x = np.linspace(-1, 1, 5)
    expected = ops.hessian(batched(rosenbrock), x, ADAPTIVE).value
    results: list[np.ndarray] = []

    def work() -> None:
        for _ in range(5):
            results.append(ops.hessian(batched(rosenbrock), x, ADAPTIVE).value)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 20 and all(np.array_equal(r, expected) for r in results)


@pytest.mark.parametrize(
    "options",
    [
        dict(method="sideways"),
        dict(order=3),
        dict(method="forward", order=0),
        dict(num_steps=0),
        dict(step_ratio=1.0),
    ],
)
def test_invalid_schemes_say_what_to_use(options) -> None:
    with pytest.raises(InvalidArgumentError, match=r"use|need"):
        Scheme(**options)


@pytest.mark.parametrize("scheme", [ADAPTIVE, FIXED["central"]])
def test_complex_x_gives_complex_derivatives(scheme) -> None:
    """A difference nested in an outer complex step (SecondOrder) sees complex x."""
    x = np.array([1.0 + 0.5j, -0.3 + 0.0j])
    jac = ops.jacobian(batched(lambda z: z**3), x, scheme)
    assert jac.value.dtype == np.complex128
    np.testing.assert_allclose(
        jac.value, np.diag(3 * x**2), rtol=1e-12 if scheme is ADAPTIVE else 1e-9
    )
    hess = ops.hessian(batched(lambda z: np.sum(z**3, axis=-1)), x, scheme)
    tol = 1e-9 if scheme is ADAPTIVE else 1e-6
    np.testing.assert_allclose(hess.value, np.diag(6 * x), rtol=tol, atol=tol)


@pytest.mark.parametrize("method", ["forward", "backward"])
@pytest.mark.parametrize(("name", "f", "d1", "d2", "x"), SCALAR_CASES[:8])
def test_one_sided_adaptive(method, name, f, d1, d2, x) -> None:
    """One-sided differences (f evaluated on one side of x only) extrapolate too."""
    seen: list[np.ndarray] = []

    def g(p: np.ndarray) -> np.ndarray:
        seen.append(p)
        return f(p)

    first = ops.derivative(batched(g), np.array(x), Scheme(method))
    second = ops.second_derivative(batched(g), np.array(x), Scheme(method))
    assert abs(float(first.value) - d1(x)) <= 1e-10 * max(1.0, abs(d1(x))) and first.error >= 0
    assert abs(float(second.value) - d2(x)) <= 1e-8 * max(1.0, abs(d2(x)))
    side = np.concatenate([p.ravel() for p in seen]) - x
    assert np.all(side >= 0) if method == "forward" else np.all(side <= 0)


def test_integer_x_is_differentiated_in_floating_point() -> None:
    est = ops.gradient(batched(rosenbrock), np.array([1, 2, 0]), ADAPTIVE)
    assert est.value.dtype == np.float64
    assert relative_error(est.value, rosenbrock_gradient(np.array([1.0, 2.0, 0.0]))) <= 1e-12


@pytest.mark.parametrize("operator", ["jacobian", "hessian"])
def test_later_rounds_evaluate_only_unconverged_directions(operator) -> None:
    """Columns 0 and 2 vary fast (more steps), column 1 slowly: later rounds take 0 and 2."""

    def f(x: np.ndarray) -> np.ndarray:
        y = np.exp(20 * x[..., 0]) + x[..., 1] ** 2 + np.sin(30 * x[..., 2])
        return y if operator == "hessian" else np.stack([y, x[..., 1] * y], axis=-1)

    x = np.array([0.2, 0.5, 0.3])
    run = getattr(ops, operator)
    est = run(batched(f), x, ADAPTIVE)
    assert est.value.shape == ((3, 3) if operator == "hessian" else (2, 3))
    assert est.calls > 1  # rounds after the first (f(x) rides in the first call)
    np.testing.assert_array_equal(run(looped(f), x, ADAPTIVE).value, est.value)
    if operator == "jacobian":
        e = np.exp(4.0) + 0.25 + np.sin(9.0)
        row = np.array([20 * np.exp(4.0), 1.0, 30 * np.cos(9.0)])
        truth = np.stack([row, 0.5 * row + np.array([0, e, 0])])
    else:
        truth = np.diag([400 * np.exp(4.0), 2.0, -900 * np.sin(9.0)])
    assert relative_error(est.value, truth) <= 1e-11
