"""Preparation: prepared JAX calls never retrace, and a preparation used with other
arguments raises PreparationMismatchError naming what differs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import diffinterface as di
from diffinterface.testsuite._collections import energy as scalar_fn
from diffinterface.testsuite._collections import energy_derivatives as scalar_derivatives
from diffinterface.testsuite._collections import wave as vector_fn
from tests._counting import CountingFunction
from tests.conftest import assert_close, vector_jacobian

X = np.linspace(-0.5, 0.8, 4)
T = np.ones(4)

# operator -> arguments after x, and the function it differentiates
CALLS: dict[str, tuple[tuple[Any, ...], Any]] = {
    "pushforward": ((T,), vector_fn),
    "pullback": ((T,), vector_fn),
    "jacobian": ((), vector_fn),
    "gradient": ((), scalar_fn),
    "hvp": (((T, 2 * T),), scalar_fn),
    "hessian": ((), scalar_fn),
}


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("operator", sorted(CALLS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prepared_jax_calls_do_not_retrace(operator: str, mode: str, dtype: Any) -> None:
    args, f = CALLS[operator]
    x = X.astype(dtype)
    args = tuple(
        tuple(a.astype(dtype) for a in arg) if isinstance(arg, tuple) else arg.astype(dtype)
        for arg in args
    )
    counted = CountingFunction(f)
    backend = di.AutoJAX(mode=mode)
    prep = getattr(di, f"prepare_{operator}")(counted, backend, x, *args)
    assert counted.calls > 0
    traced = counted.calls
    first = getattr(di, operator)(counted, backend, x, *args, prep=prep)
    for _ in range(3):
        again = getattr(di, operator)(counted, backend, x + 0.1, *args, prep=prep)
    assert counted.calls == traced, "a prepared call traced f again"
    assert not np.array_equal(
        np.asarray(first if not isinstance(first, tuple) else first[0]),
        np.asarray(again if not isinstance(again, tuple) else again[0]),
    )


def test_prepared_call_with_new_values_is_correct() -> None:
    prep = di.prepare_jacobian(vector_fn, "jax", X)
    for shift in (0.0, 0.3, -1.2):
        assert_close(
            di.jacobian(vector_fn, "jax", X + shift, prep=prep), vector_jacobian(X + shift), 1e-12
        )


def _mismatch(prep: Any, call: Any, slot: str) -> None:
    with pytest.raises(di.PreparationMismatchError) as info:
        call(prep)
    message = str(info.value)
    assert f"✗ {slot}:" in message, message
    assert "Prepare again" in message
    # JAX runs the kernel before the check: its own complaint must not show as the cause
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


@pytest.mark.parametrize(("backend", "other"), [("torch", "jax"), ("jax", "torch")])
def test_mismatch_names_what_differs(backend: str, other: str) -> None:
    prep = di.prepare_gradient(scalar_fn, backend, X)

    def g(x: Any) -> Any:
        return scalar_fn(x)

    _mismatch(prep, lambda p: di.gradient(scalar_fn, backend, np.ones(5), prep=p), "x")
    _mismatch(prep, lambda p: di.gradient(scalar_fn, backend, X.astype(np.float32), prep=p), "x")
    _mismatch(prep, lambda p: di.gradient(scalar_fn, backend, torch.from_numpy(X), prep=p), "x")
    _mismatch(prep, lambda p: di.gradient(g, backend, X, prep=p), "f")
    _mismatch(prep, lambda p: di.gradient(scalar_fn, other, X, prep=p), "backend")
    _mismatch(prep, lambda p: di.hessian(scalar_fn, backend, X, prep=p), "operator")
    _mismatch(
        prep,
        lambda p: di.gradient(lambda x, c: scalar_fn(x), backend, X, di.Constant(1.0), prep=p),
        "contexts",
    )
    # the same arguments are fine, and the backend may be given by name or object
    assert_close(
        di.gradient(scalar_fn, di.backend(backend), X, prep=prep), scalar_derivatives(X)[1], 1e-12
    )


@pytest.mark.parametrize("backend", ["autograd", "jax", "torch"])
def test_a_name_accepted_once_accepts_only_its_own_backend(backend: str) -> None:
    """A prepared call remembers the backend names it accepted: the name keeps working, a
    name or configuration of another backend (or another mode) is still refused."""
    prep = di.prepare_gradient(scalar_fn, di.backend(backend), X)
    want = scalar_derivatives(X)[1]
    for _ in range(2):
        assert_close(di.gradient(scalar_fn, backend, X, prep=prep), want, 1e-12)
    _mismatch(prep, lambda p: di.gradient(scalar_fn, "finitediff", X, prep=p), "backend")
    if backend != "autograd":  # AutoAutograd has no mode
        forward = type(di.backend(backend))(mode="forward")  # type: ignore[call-arg]
        _mismatch(prep, lambda p: di.gradient(scalar_fn, forward, X, prep=p), "backend")
    assert_close(di.gradient(scalar_fn, backend, X, prep=prep), want, 1e-12)


@pytest.mark.parametrize("backend", ["autograd", "jax"])
def test_mismatch_of_tangents_and_context_kind(backend: str) -> None:
    prep = di.prepare_hvp(scalar_fn, backend, X, T)
    _mismatch(prep, lambda p: di.hvp(scalar_fn, backend, X, (T, T), prep=p), "tangents")
    prep = di.prepare_gradient(lambda x, c: scalar_fn(x) * c, "autograd", X, di.Constant(2.0))
    _mismatch(prep, lambda p: di.gradient(p.f, "autograd", X, di.Cache(2.0), prep=p), "contexts")


@pytest.mark.parametrize("backend", ["autograd", "finitediff", "jax", "torch"])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_a_prepared_call_checks_each_context(backend: str, count: int) -> None:
    """Array and static Constants, one to three of them: the same ones (other objects,
    equal values) give the analytic gradient; each one changed in shape, in value (static),
    in kind (Cache), one left out, one added or one not wrapped is refused."""
    weights = [np.arange(1.0, 5.0), 3.0, np.full(4, 0.5)][:count]

    def f(x: Any, *cs: Any) -> Any:  # Σ (w ∘ x)² · s + Σ v ∘ x
        xp = di.array_namespace(x)
        y = xp.sum((cs[0] * x) ** 2) * (cs[1] if count > 1 else 1.0)
        return y + xp.sum(cs[2] * x) if count > 2 else y

    def constants(values: list[Any]) -> list[Any]:
        return [di.Constant(v if type(v) is float else np.array(v)) for v in values]

    scale = weights[1] if count > 1 else 1.0
    want = 2 * weights[0] ** 2 * X * scale + (weights[2] if count > 2 else 0)
    prep = di.prepare_gradient(f, backend, X, *constants(weights))
    tolerance = 1e-6 if backend == "finitediff" else 1e-12
    for _ in range(2):
        assert_close(di.gradient(f, backend, X, *constants(weights), prep=prep), want, tolerance)
    for i, w in enumerate(weights):
        changed = list(constants(weights))
        changed[i] = di.Constant(w + 1.0 if type(w) is float else np.ones(5))
        _mismatch(prep, lambda p, c=changed: di.gradient(f, backend, X, *c, prep=p), "contexts")
        changed[i] = di.Cache(np.ones(4))
        _mismatch(prep, lambda p, c=changed: di.gradient(f, backend, X, *c, prep=p), "contexts")
        changed[i] = w
        with pytest.raises(di.InvalidArgumentError, match=f"Context #{i} .* di\\.Constant"):
            di.gradient(f, backend, X, *changed, prep=prep)
    fewer, more = constants(weights)[:-1], [*constants(weights), di.Constant(1.0)]
    _mismatch(prep, lambda p: di.gradient(f, backend, X, *fewer, prep=p), "contexts")
    _mismatch(prep, lambda p: di.gradient(f, backend, X, *more, prep=p), "contexts")
    assert_close(di.gradient(f, backend, X, *constants(weights), prep=prep), want, tolerance)


def test_prep_from_another_function_is_rejected() -> None:
    with pytest.raises(di.InvalidArgumentError, match="prepare_gradient"):
        di.gradient(scalar_fn, "torch", X, prep="not a prep")  # type: ignore[arg-type]


def test_static_constants_are_fixed_at_preparation() -> None:
    def first_k(x: Any, k: int) -> Any:  # k sets a shape: JAX needs it static
        return di.array_namespace(x).sum(x[:k] ** 2)

    prep = di.prepare_gradient(first_k, "jax", X, di.Constant(2))
    assert_close(
        di.gradient(first_k, "jax", X, di.Constant(2), prep=prep), [-1.0, -0.4 / 3, 0, 0], 1e-12
    )
    _mismatch(prep, lambda p: di.gradient(first_k, "jax", X, di.Constant(3), prep=p), "contexts")
