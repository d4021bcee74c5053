"""What the suite expects of a backend on a scenario: how accurate its results must be
(:func:`default_tolerance`) and whether it declares it cannot run the scenario at all
(:func:`unsupported_reason`), both read from the backend's own declarations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optree

import diffinterface as di
from diffinterface._adapter import adapter_for
from diffinterface._backend_types import BackendLike, resolve_backend
from diffinterface.testsuite._scenario import Scenario

__all__ = [
    "SECOND_ORDER_OPERATORS",
    "default_tolerance",
    "dense_backend",
    "for_backend",
    "unsupported_reason",
]


SECOND_ORDER_OPERATORS = frozenset({"second_derivative", "hvp", "hessian"})


def dense_backend(b: Any) -> Any:
    """The backend that computes the products: the one AutoSparse or Distributed wraps
    (through both), else b."""
    while isinstance(b, di.AutoSparse | di.Distributed):
        b = b.backend
    return b


def for_backend(scenario: Scenario, backend: BackendLike) -> Scenario:
    """The scenario as ``backend`` takes it: with its batch-accepting f for a backend that
    takes a vectorised f (``AutoFiniteDiff(vectorized=True)``, also inside AutoSparse)."""
    if getattr(dense_backend(resolve_backend(backend)), "vectorized", False):
        return scenario.vectorized()
    return scenario


def default_tolerance(backend: BackendLike, dtype: Any, order: int = 1) -> float:
    """Relative tolerance that fits the backend's error: rounding for AD, truncation for FD."""
    b = dense_backend(resolve_backend(backend))
    eps = float(np.finfo(dtype).eps)
    if isinstance(b, di.SecondOrder):
        steps = [s for s in (b.outer, b.inner) if isinstance(s, di.AutoFiniteDiff)]
        if isinstance(b.inner, di.AutoFiniteDiff) and order == 2:
            # differences of a finite-difference gradient, whoever differentiates it
            return 1e-4 if eps < 1e-10 else 0.05
        if steps and order == 2:  # differences of an AD gradient
            return default_tolerance(steps[0], dtype, 1)
        return default_tolerance(b.inner, dtype, order)
    if not isinstance(b, di.AutoFiniteDiff):
        return 200 * eps
    if b.step == "adaptive":  # extrapolated: near rounding for first derivatives
        one_sided = b.method == "forward"
        if order == 2:
            return 50 * eps ** (1 / 2 if one_sided else 2 / 3)
        return 50 * eps ** (2 / 3 if one_sided else 0.8)
    if order == 2:
        return 50 * eps**0.5 if eps < 1e-10 else 0.05
    if b.method == "complex":
        return 200 * eps
    return 50 * eps ** (1 / 2 if b.method == "forward" else 2 / 3)


def unsupported_reason(backend: BackendLike, scenario: Scenario) -> str | None:
    """Why ``backend`` cannot run ``scenario``, from the backend's own declarations."""
    b = resolve_backend(backend)
    if isinstance(b, di.SecondOrder) and scenario.operator not in SECOND_ORDER_OPERATORS:
        return "SecondOrder is for second-order operators (second_derivative, hvp, hessian)"
    adapter = adapter_for(b)
    if scenario.mutates and not adapter.supports_mutation:
        return f"{adapter.mutation_refusal}, so it cannot differentiate mutation"
    most = adapter.max_ndim
    if most is not None and max(np.ndim(a) for a in optree.tree_leaves(scenario.x)) > most:
        return f"its arrays have at most {most} dimensions"
    if (
        isinstance(b, di.AutoSparse)
        and scenario.mutates
        and scenario.operator in ("jacobian", "hessian")
        and not getattr(b.sparsity_detector, "follows_mutation", True)
    ):
        return "its sparsity detector cannot follow writes into arrays"
    return None
