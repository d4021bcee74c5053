"""Nothing lost: no operator modifies the caller's x, tangents or Constant arrays; results
are the caller's own arrays (never a reused internal buffer, never a view of an input);
torch's grad mode and ``requires_grad`` flags, JAX's configuration and NumPy's error
state are as before every call, also after an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest
import torch

import diffinterface as di
from tests.conftest import BACKENDS, backend_id, shares_memory, to_numpy

X = np.array([[0.3, -0.7, 1.1], [0.2, 0.9, -1.3]])
C = np.array([[1.5, 0.5, -2.0], [0.25, 1.0, 3.0]])
KINDS = ["numpy", "torch"]


def vector(x: Any, c: Any) -> Any:
    return di.array_namespace(x).sin(x) * c


def scalar(x: Any, c: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(xp.sin(x) * c * x)


def of_scalar(x: Any, c: Any) -> Any:
    return di.array_namespace(x).sin(x * c)


def _input(a: np.ndarray, kind: str, requires_grad: bool = False) -> Any:
    if kind == "torch":
        return torch.tensor(a, requires_grad=requires_grad)
    return a.copy()


#: operator → (f, its value_and_… form, whether it takes a tangent)
OPERATORS: dict[str, tuple[Callable[..., Any], Callable[..., Any], bool]] = {
    "pushforward": (vector, di.value_and_pushforward, True),
    "pullback": (vector, di.value_and_pullback, True),
    "derivative": (of_scalar, di.value_and_derivative, False),
    "gradient": (scalar, di.value_and_gradient, False),
    "jacobian": (vector, di.value_and_jacobian, False),
    "second_derivative": (of_scalar, di.value_derivative_and_second_derivative, False),
    "hvp": (scalar, di.gradient_and_hvp, True),
    "hessian": (scalar, di.value_gradient_and_hessian, False),
}


def prepare(operator: str, backend: Any, x: Any, t: Any, c: Any) -> Any:
    f, _, takes_t = OPERATORS[operator]
    return getattr(di, f"prepare_{operator}")(f, backend, x, *((t,) if takes_t else ()), c)


def call(
    operator: str, backend: Any, x: Any, t: Any, c: Any, prep: Any = None, f: Any = None
) -> tuple[Any, ...]:
    """The operator's value_and_… form (with ``f`` instead of the operator's own, if given)."""
    own, value_and, takes_t = OPERATORS[operator]
    return value_and(f or own, backend, x, *((t,) if takes_t else ()), c, prep=prep)


def _arguments(operator: str, kind: str, requires_grad: bool = False) -> tuple[Any, Any, Any]:
    """(x, tangent, Constant) for the operator, in the array kind."""
    scalar_x = OPERATORS[operator][0] is of_scalar
    x = _input(np.array(0.4) if scalar_x else X, kind, requires_grad)
    t = _input(np.ones_like(X) * 0.5, kind, requires_grad)
    c = di.Constant(_input(C, kind, requires_grad))
    return x, t, c


def _snapshot(*arrays: Any) -> list[np.ndarray]:
    return [to_numpy(a.detach() if isinstance(a, torch.Tensor) else a).copy() for a in arrays]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("operator", sorted(OPERATORS))
@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_inputs_are_never_modified_and_results_never_shared(
    backend: Any, operator: str, kind: str
) -> None:
    x, t, c = _arguments(operator, kind)
    inputs = (x, t, c.value)
    before = _snapshot(*inputs)
    prep = prepare(operator, backend, x, t, c)
    first = call(operator, backend, x, t, c, prep)
    second = call(operator, backend, x, t, c, prep)
    for a, b in zip(_snapshot(*inputs), before, strict=True):
        np.testing.assert_array_equal(a, b)
    for r1, r2 in zip(first, second, strict=True):
        np.testing.assert_array_equal(to_numpy(r1), to_numpy(r2))
        assert not shares_memory(r1, r2), "two prepared calls returned the same buffer"
        assert not any(shares_memory(r1, a) for a in inputs), "a result is a view of an input"


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_results_of_f_returning_its_input_are_copies(backend: Any) -> None:
    """f = identity (or a view of x): the value, J·t and uᵀJ must still be new arrays."""
    for kind in KINDS:
        x, t, _ = _arguments("jacobian", kind)
        for f in (lambda v: v, lambda v: v[1:]):
            y, tx = di.value_and_pushforward(f, backend, x, t)
            y2, ux = di.value_and_pullback(f, backend, x, tx)
            for r, inputs in ((y, (x, t)), (tx, (x, t)), (y2, (x, tx)), (ux, (x, tx))):
                assert not any(shares_memory(r, a) for a in inputs), (kind, f)


@pytest.mark.parametrize("operator", sorted(OPERATORS))
@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_requires_grad_and_grad_of_torch_inputs_are_untouched(backend: Any, operator: str) -> None:
    x, t, c = _arguments(operator, "torch", requires_grad=True)
    plain = torch.tensor(X)
    for grad_mode in (True, False):
        with torch.set_grad_enabled(grad_mode):
            call(operator, backend, x, t, c)
            assert torch.is_grad_enabled() is grad_mode
    for a in (x, t, c.value):
        assert a.requires_grad and a.grad is None and a.is_leaf
    assert not plain.requires_grad


# --------------------------------------------------------------------------------------
# global state, also after an error


def _state() -> dict[str, Any]:
    return {
        "torch grad mode": torch.is_grad_enabled(),
        "torch inference mode": torch.is_inference_mode_enabled(),
        "torch default dtype": torch.get_default_dtype(),
        "jax config": dict(jax.config.values),
        "numpy errors": np.geterr(),
    }


class Interrupt(Exception):
    """Raised by f part-way through a call."""


def failing(f: Callable[..., Any], after: int) -> Callable[..., Any]:
    """f that raises on its ``after``-th call (inside the framework's transform)."""
    count = 0

    def g(*args: Any) -> Any:
        nonlocal count
        count += 1
        if count > after:
            raise Interrupt
        return f(*args)

    return g


@pytest.mark.parametrize("operator", sorted(OPERATORS))
@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_global_state_is_restored_after_calls_and_errors(backend: Any, operator: str) -> None:
    before = _state()
    x, t, c = _arguments(operator, "numpy")
    call(operator, backend, x, t, c)
    assert _state() == before
    with torch.no_grad():
        call(operator, backend, x, t, c)
        assert not torch.is_grad_enabled()
    # an error inside f, at preparation (its first call) and part-way through a computation
    for after in (0, 1):
        with pytest.raises(Interrupt):
            call(operator, backend, x, t, c, f=failing(OPERATORS[operator][0], after))
        assert _state() == before
    # and the next call still works (no forward-AD level or lock left behind)
    call(operator, backend, x, t, c)
