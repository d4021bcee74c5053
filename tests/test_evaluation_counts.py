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
        lambda f, b: di.prepare_pushforward(f, b, X, T),
        lambda f, b, p: di.pushforward(f, b, X, T, prep=p),
    ),
    "pushforward of 2 tangents": (
        cube,
        lambda f, b: di.prepare_pushforward(f, b, X, (T, T)),
        lambda f, b, p: di.pushforward(f, b, X, (T, T), prep=p),
    ),
    "pullback": (
        cube,
        lambda f, b: di.prepare_pullback(f, b, X, T),
        lambda f, b, p: di.pullback(f, b, X, T, prep=p),
    ),
    "derivative": (
        cube,
        lambda f, b: di.prepare_derivative(f, b, 0.3),
        lambda f, b, p: di.derivative(f, b, 0.3, prep=p),
    ),
    "gradient": (
        total,
        lambda f, b: di.prepare_gradient(f, b, X),
        lambda f, b, p: di.gradient(f, b, X, prep=p),
    ),
    "value_and_gradient": (
        total,
        lambda f, b: di.prepare_gradient(f, b, X),
        lambda f, b, p: di.value_and_gradient(f, b, X, prep=p),
    ),
    "jacobian": (
        cube,
        lambda f, b: di.prepare_jacobian(f, b, X),
        lambda f, b, p: di.jacobian(f, b, X, prep=p),
    ),
    "second_derivative": (
        cube,
        lambda f, b: di.prepare_second_derivative(f, b, 0.3),
        lambda f, b, p: di.second_derivative(f, b, 0.3, prep=p),
    ),
    "value_derivative_and_second_derivative": (
        cube,
        lambda f, b: di.prepare_second_derivative(f, b, 0.3),
        lambda f, b, p: di.value_derivative_and_second_derivative(f, b, 0.3, prep=p),
    ),
    "hvp": (
        total,
        lambda f, b: di.prepare_hvp(f, b, X, T),
        lambda f, b, p: di.hvp(f, b, X, T, prep=p),
    ),
    "gradient_and_hvp": (
        total,
        lambda f, b: di.prepare_hvp(f, b, X, T),
        lambda f, b, p: di.gradient_and_hvp(f, b, X, T, prep=p),
    ),
    "hessian": (
        total,
        lambda f, b: di.prepare_hessian(f, b, X),
        lambda f, b, p: di.hessian(f, b, X, prep=p),
    ),
    "value_gradient_and_hessian": (
        total,
        lambda f, b: di.prepare_hessian(f, b, X),
        lambda f, b, p: di.value_gradient_and_hessian(f, b, X, prep=p),
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
