"""How many times a prepared call runs f: each evaluation can be an expensive simulation.

The expected counts are the minimum of each backend's method for x of size n (see
docs/backends.md, "Evaluations of f"): AD backends run f once per call (JAX, TensorFlow and
CasADi none: the compiled kernel or expression graph does not run f's Python code), HIPS
autograd once per tangent where it pushes tangents forward (it has no vmap), finite
differences as their formulas need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import diffinterface as di
from tests._counting import CountingFunction
from tests.conftest import BACKENDS, COMPILING_BACKENDS, backend_id

N = 3
X = np.linspace(0.1, 0.5, N)
T = np.ones(N)


def total(v: Any) -> Any:
    return di.array_namespace(v).sum(v**3)


def cube(v: Any) -> Any:
    return v**3


#: operator → (f, prepare, call)
CASES: dict[str, tuple[Any, Callable[..., Any], Callable[..., Any]]] = {
    "pushforward": (
        cube,
        lambda f, b, **kw: di.prepare_pushforward(f, b, X, T, **kw),
        lambda f, b, p, **kw: di.pushforward(f, b, X, T, prep=p, **kw),
    ),
    "pushforward of 2 tangents": (
        cube,
        lambda f, b, **kw: di.prepare_pushforward(f, b, X, (T, T), **kw),
        lambda f, b, p, **kw: di.pushforward(f, b, X, (T, T), prep=p, **kw),
    ),
    "pullback": (
        cube,
        lambda f, b, **kw: di.prepare_pullback(f, b, X, T, **kw),
        lambda f, b, p, **kw: di.pullback(f, b, X, T, prep=p, **kw),
    ),
    "derivative": (
        cube,
        lambda f, b, **kw: di.prepare_derivative(f, b, 0.3, **kw),
        lambda f, b, p, **kw: di.derivative(f, b, 0.3, prep=p, **kw),
    ),
    "gradient": (
        total,
        lambda f, b, **kw: di.prepare_gradient(f, b, X, **kw),
        lambda f, b, p, **kw: di.gradient(f, b, X, prep=p, **kw),
    ),
    "value_and_gradient": (
        total,
        lambda f, b, **kw: di.prepare_gradient(f, b, X, **kw),
        lambda f, b, p, **kw: di.value_and_gradient(f, b, X, prep=p, **kw),
    ),
    "jacobian": (
        cube,
        lambda f, b, **kw: di.prepare_jacobian(f, b, X, **kw),
        lambda f, b, p, **kw: di.jacobian(f, b, X, prep=p, **kw),
    ),
    "second_derivative": (
        cube,
        lambda f, b, **kw: di.prepare_second_derivative(f, b, 0.3, **kw),
        lambda f, b, p, **kw: di.second_derivative(f, b, 0.3, prep=p, **kw),
    ),
    "value_derivative_and_second_derivative": (
        cube,
        lambda f, b, **kw: di.prepare_second_derivative(f, b, 0.3, **kw),
        lambda f, b, p, **kw: di.value_derivative_and_second_derivative(f, b, 0.3, prep=p, **kw),
    ),
    "hvp": (
        total,
        lambda f, b, **kw: di.prepare_hvp(f, b, X, T, **kw),
        lambda f, b, p, **kw: di.hvp(f, b, X, T, prep=p, **kw),
    ),
    "gradient_and_hvp": (
        total,
        lambda f, b, **kw: di.prepare_hvp(f, b, X, T, **kw),
        lambda f, b, p, **kw: di.gradient_and_hvp(f, b, X, T, prep=p, **kw),
    ),
    "hessian": (
        total,
        lambda f, b, **kw: di.prepare_hessian(f, b, X, **kw),
        lambda f, b, p, **kw: di.hessian(f, b, X, prep=p, **kw),
    ),
    "value_gradient_and_hessian": (
        total,
        lambda f, b, **kw: di.prepare_hessian(f, b, X, **kw),
        lambda f, b, p, **kw: di.value_gradient_and_hessian(f, b, X, prep=p, **kw),
    ),
}

n = N
#: the evaluations of f per prepared call of each finite-difference method with fixed steps
#: (first-order parts by the method, second differences central; Hessians from second
#: differences along e_i and e_i + e_j): value + perturbations
FINITE_DIFFERENCES = {
    "central": {
        "pushforward": 3,
        "pushforward of 2 tangents": 5,
        "pullback": 1 + 2 * n,
        "derivative": 3,
        "gradient": 1 + 2 * n,
        "value_and_gradient": 1 + 2 * n,
        "jacobian": 1 + 2 * n,
        "second_derivative": 5,
        "value_derivative_and_second_derivative": 5,
        "hvp": 1 + 4 * n,
        "gradient_and_hvp": 1 + 2 * n + 4 * n,
        "hessian": 1 + n * (n + 1),
        "value_gradient_and_hessian": 1 + 2 * n + n * (n + 1),
    },
    "forward": {
        "pushforward": 2,
        "pushforward of 2 tangents": 3,
        "pullback": 1 + n,
        "derivative": 2,
        "gradient": 1 + n,
        "value_and_gradient": 1 + n,
        "jacobian": 1 + n,
        "second_derivative": 4,
        "value_derivative_and_second_derivative": 4,
        "hvp": 1 + 4 * n,
        "gradient_and_hvp": 1 + n + 4 * n,
        "hessian": 1 + n * (n + 1),
        "value_gradient_and_hessian": 1 + n + n * (n + 1),
    },
    "complex": {
        "pushforward": 2,
        "pushforward of 2 tangents": 3,
        "pullback": 1 + n,
        "derivative": 2,
        "gradient": 1 + n,
        "value_and_gradient": 1 + n,
        "jacobian": 1 + n,
        "second_derivative": 4,
        "value_derivative_and_second_derivative": 4,
        "hvp": 1 + 2 * n,
        "gradient_and_hvp": 1 + n + 2 * n,
        "hessian": 1 + n * (n + 1),
        "value_gradient_and_hessian": 1 + n + n * (n + 1),
    },
}


#: with step="adaptive" (central): 5 steps (the first round: levels + 2) of 2 points per
#: direction, converged at once on these polynomials; f(x) only where an output or the
#: stencil needs it; second differences along e_i, e_i + e_j (Hessian) or e_i, u, e_i + u
#: (HVP) give the gradient from the same points
STEPS = 5
ADAPTIVE = {
    "pushforward": 2 * STEPS,
    "pushforward of 2 tangents": 2 * 2 * STEPS,
    "pullback": 2 * n * STEPS,
    "derivative": 2 * STEPS,
    "gradient": 2 * n * STEPS,
    "value_and_gradient": 1 + 2 * n * STEPS,
    "jacobian": 2 * n * STEPS,
    "second_derivative": 1 + 2 * STEPS,
    "value_derivative_and_second_derivative": 1 + 2 * STEPS,
    "hvp": 1 + 2 * (n + (n + 1)) * STEPS,
    "gradient_and_hvp": 1 + 2 * (n + (n + 1)) * STEPS,
    "hessian": 1 + n * (n + 1) * STEPS,
    "value_gradient_and_hessian": 1 + n * (n + 1) * STEPS,
}


def expected_count(backend: Any, case: str) -> int:
    if backend in COMPILING_BACKENDS:
        return 0  # compiled or traced: f's Python code ran at preparation only
    if backend.name == "finitediff" and backend.step == "adaptive":
        return ADAPTIVE[case]
    if backend.name == "finitediff":
        return FINITE_DIFFERENCES[backend.method][case]
    if backend.name == "autograd" and case == "pushforward of 2 tangents":
        return 2  # no vmap: one forward pass per tangent
    return 1


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
@pytest.mark.parametrize("case", list(CASES))
def test_a_prepared_call_evaluates_f_as_often_as_its_method_needs(backend: Any, case: str) -> None:
    f, prepare, call = CASES[case]
    counted = CountingFunction(f)
    prep = prepare(counted, backend)
    counted.calls = 0
    call(counted, backend, prep)
    assert counted.calls == expected_count(backend, case)


def with_aux(f: Any) -> Any:
    """f returning (output, aux), aux computed from x's traced values as users write it."""

    def f_and_aux(v: Any) -> Any:
        return f(v), {"twice": v * 2.0, "label": "stats"}

    return f_and_aux


def expected_count_with_aux(backend: Any, case: str) -> int:
    """As many evaluations as without aux: f's own evaluation at x gives aux, except where
    the method makes none at x (CasADi's compiled graph; finite differences' Hessian takes
    f(x) inside its batch of points): one more."""
    if backend.name == "casadi":
        return 1
    if backend.name == "finitediff" and (backend.step == "adaptive" or "hessian" in case):
        return expected_count(backend, case) + 1
    return expected_count(backend, case)


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
@pytest.mark.parametrize("case", list(CASES))
def test_with_aux_a_prepared_call_evaluates_f_no_more_often(backend: Any, case: str) -> None:
    f, prepare, call = CASES[case]
    counted = CountingFunction(with_aux(f))
    prep = prepare(counted, backend, has_aux=True)
    counted.calls = 0
    results = call(counted, backend, prep, has_aux=True)
    assert counted.calls == expected_count_with_aux(backend, case)
    aux = results[0][1] if case.startswith("value") else results[1]
    x = 0.3 if ("derivative" in case and "second" in case) or case == "derivative" else X
    assert aux["label"] == "stats"
    assert isinstance(aux["twice"], np.ndarray)  # x's array type, off any graph
    np.testing.assert_allclose(aux["twice"], np.asarray(x) * 2.0, rtol=1e-12)
