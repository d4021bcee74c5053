"""A di operator called inside another differentiation (nested), and results that belong
to the caller: each case computes the right number against an analytic reference or
raises an error that names the way out; never a silent zero."""

from __future__ import annotations

from typing import Any

import autograd
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import diffinterface as di
from tests.conftest import BACKENDS, backend_id, to_numpy

X = np.array([0.1, 0.2, 0.3])


def cube(z: Any) -> Any:
    return di.array_namespace(z).sum(z**3) / 3


def sum_of_gradient(inner: Any) -> Any:
    """v ↦ Σ ∇cube(v) = Σ v², whose gradient is 2v."""

    def f(v: Any) -> Any:
        return di.array_namespace(v).sum(di.gradient(cube, inner, v))

    return f


@pytest.mark.parametrize("outer", [di.AutoTorch(), di.AutoTorch(mode="forward")], ids=repr)
def test_torch_inside_torch_differentiates_through_the_inner_call(outer: Any) -> None:
    np.testing.assert_allclose(di.gradient(sum_of_gradient("torch"), outer, X), 2 * X)


@pytest.mark.parametrize("inner", ["jax", "autograd", "finitediff"])
def test_another_backend_inside_torch_names_the_way_out(inner: str) -> None:
    with pytest.raises(di.UnsupportedError, match=r"SecondOrder.*DifferentiateWith"):
        di.gradient(sum_of_gradient(inner), "torch", X)


def test_a_di_operator_inside_jax_transformations_is_traced_through() -> None:
    with jax.enable_x64(True):
        x = jnp.asarray(X)
        np.testing.assert_allclose(jax.jit(lambda v: di.gradient(cube, "jax", v))(x), X**2)
        np.testing.assert_allclose(jax.grad(sum_of_gradient("jax"))(x), 2 * X)
        with pytest.raises(di.UnsupportedError, match="JAX transformation"):
            jax.grad(sum_of_gradient("finitediff"))(x)


def test_autograd_inside_autograd_nests() -> None:
    np.testing.assert_allclose(autograd.grad(sum_of_gradient("autograd"))(X), 2 * X)
    with pytest.raises(di.UnsupportedError, match="HIPS autograd"):
        autograd.grad(sum_of_gradient("finitediff"))(X)


def test_torch_func_outside_a_di_torch_call_differentiates_through_it() -> None:
    x = torch.tensor(X)
    got = torch.func.grad(lambda v: di.gradient(cube, "torch", v).sum())(x)
    np.testing.assert_allclose(got.numpy(), 2 * X)


OPERATORS = {
    "pushforward": lambda b, x: di.pushforward(lambda v: v * v, b, x, torch.ones_like(x)),
    "pullback": lambda b, x: di.pullback(lambda v: v * v, b, x, torch.ones_like(x)),
    "jacobian": lambda b, x: di.jacobian(lambda v: v * v, b, x),
    "derivative": lambda b, x: di.derivative(lambda v: v * v, b, x[0]),
    "second_derivative": lambda b, x: di.second_derivative(lambda v: v**3, b, x[0]),
    "gradient": lambda b, x: di.gradient(lambda v: (v**3).sum(), b, x),
    "hvp": lambda b, x: di.hvp(lambda v: (v**3).sum(), b, x, torch.ones_like(x)),
    "hessian": lambda b, x: di.hessian(lambda v: (v**3).sum(), b, x),
}


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b.name == "torch"], ids=backend_id)
@pytest.mark.parametrize("operator", list(OPERATORS))
def test_results_for_a_tensor_that_requires_grad_are_detached(backend: Any, operator: str) -> None:
    y = torch.tensor(X, requires_grad=True)
    result = OPERATORS[operator](backend, y * 2)
    assert not result.requires_grad and result.grad_fn is None
    result.numpy()  # the caller can use it as a plain tensor


def test_numpy_arrays_captured_by_f_under_torch_name_the_fix() -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]])

    def f(x: Any) -> Any:
        return di.array_namespace(x).sum(a @ x)

    with pytest.raises(di.InvalidArgumentError, match=r"di\.Constant\(array\).*xp\.asarray"):
        di.gradient(f, "torch", np.array([1.0, 2.0]))

    def fixed(x: Any, a: Any) -> Any:
        return di.array_namespace(x).sum(a @ x)

    g = di.gradient(fixed, "torch", np.array([1.0, 2.0]), di.Constant(a))
    np.testing.assert_allclose(g, a.sum(axis=0))


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
@pytest.mark.parametrize("kind", ["numpy", "jax"])
def test_dict_results_keep_x_key_order(backend: Any, kind: str) -> None:
    if backend.name == "jax" or kind == "numpy":
        with jax.enable_x64(True):
            params = {"b": np.ones(2), "a": np.full(3, 2.0)}
            if kind == "jax":
                params = {k: jnp.asarray(v) for k, v in params.items()}

            def f(p: Any) -> Any:
                xp = di.array_namespace(p["a"])
                return xp.sum(p["b"] ** 2) + xp.sum(p["a"] ** 3)

            prep = di.prepare_gradient(f, backend, params)
            for g in (di.gradient(f, backend, params), di.gradient(f, backend, params, prep=prep)):
                assert list(g) == ["b", "a"]
                np.testing.assert_allclose(to_numpy(g["a"]), 12.0, rtol=1e-6)
            h = di.hessian(f, backend, params)
            assert list(h) == ["b", "a"] and list(h["a"]) == ["b", "a"]


@pytest.mark.parametrize("name", ["jax", "torch", "autograd", "finitediff"])
def test_mismatch_messages_name_the_callers_f_and_structure(name: str) -> None:
    def total(x: Any) -> Any:
        return di.array_namespace(x).sum(x * x)

    array_prep = di.prepare_gradient(total, name, X)
    with pytest.raises(di.PreparationMismatchError) as info:
        di.gradient(total, name, {"a": X}, prep=array_prep)
    assert "✓ f: prepared " in str(info.value) and "✗ x" in str(info.value)

    def by_key(d: Any) -> Any:
        return total(d["a"])

    dict_prep = di.prepare_gradient(by_key, name, {"a": X})
    other = "finitediff" if name != "finitediff" else "torch"
    with pytest.raises(di.PreparationMismatchError) as info:
        di.gradient(by_key, other, {"a": X}, prep=dict_prep)
    message = str(info.value)
    assert "✓ f: prepared " in message and "by_key" in message and "✗ backend" in message
    assert "{'a': *}" in message and "f_flat" not in message


A0, B0 = np.array([0.5, 1.5]), np.array([2.0, 3.0])
#: the gradient in b of :func:`_first_argument_derivative` for each operator
WANT = {"gradient": 6 * A0 * B0**2, "jacobian": 6 * A0 * B0**2, "hvp": 6 * B0**2}
WANT["hessian"] = WANT["hvp"]


def _a_squared_b_cubed(a: Any, b: Any) -> Any:
    return di.array_namespace(a).sum(a**2 * b**3)


def _first_argument_derivative(
    backend: str, operator: str, structured: bool, a: Any, b: Any, along: tuple[Any, Any]
) -> Any:
    """Σ ∂/∂a of a²b³ (gradient, or the Jacobian of a²b³ elementwise): Σ 2ab³, whose
    gradient in b is 6ab²; or Σ ∂²/∂a² of Σ a²b³ (HVP along (1, 0), or the Hessian): Σ 2b³,
    whose gradient in b is 6b²; by ``backend``, with x = di.Args(a, b) or {"a": a, "b": b}.
    An enclosing differentiation in b tracks x's *second* leaf, and the first only when a
    is made from b."""
    g = _a_squared_b_cubed if operator != "jacobian" else lambda a, b: a**2 * b**3
    if structured:
        x, t, h = {"a": a, "b": b}, {"a": along[0], "b": along[1]}, lambda p: g(p["a"], p["b"])
    else:
        x, t, h = di.Args(a, b), di.Args(*along), g
    result = getattr(di, operator)(h, backend, *((x, t) if operator == "hvp" else (x,)))
    first = result["a"] if structured else result[0]
    if operator == "hessian":
        first = first["a"] if structured else first[0]
    return di.array_namespace(first).sum(first)


@pytest.mark.parametrize("structured", [False, True], ids=["Args", "dict"])
@pytest.mark.parametrize("operator", ["gradient", "hvp"])
@pytest.mark.parametrize("outer", ["torch.func", "torch", "torch-forward"])
def test_torch_inside_torch_tracks_any_leaf_of_x(
    outer: str, operator: str, structured: bool
) -> None:
    a = torch.as_tensor(A0)  # made outside the enclosing differentiation
    along = (torch.ones(2, dtype=a.dtype), torch.zeros(2, dtype=a.dtype))

    def f(b: Any) -> Any:
        return _first_argument_derivative("torch", operator, structured, a, b, along)

    if outer == "torch.func":
        got = torch.func.grad(f)(torch.as_tensor(B0)).numpy()
    else:
        mode = "forward" if outer == "torch-forward" else "reverse"
        got = di.gradient(f, di.AutoTorch(mode=mode), B0)
    np.testing.assert_allclose(got, WANT[operator], rtol=1e-12)


@pytest.mark.parametrize("traced_a", [False, True], ids=["one-traced", "all-traced"])
@pytest.mark.parametrize("structured", [False, True], ids=["Args", "dict"])
@pytest.mark.parametrize("operator", ["gradient", "jacobian", "hvp", "hessian"])
def test_jax_transformations_through_some_or_all_leaves_of_x(
    operator: str, structured: bool, traced_a: bool
) -> None:
    # x's leaves may mix tracers and arrays, and a structured Jacobian or Hessian is cut
    # into blocks inside the enclosing transformation
    def f(b: Any) -> Any:
        a0, along = jnp.asarray(A0), (jnp.ones(2, b.dtype), jnp.zeros(2, b.dtype))  # constants
        a = a0 + 0 * b if traced_a else a0
        return _first_argument_derivative("jax", operator, structured, a, b, along)

    with jax.enable_x64(True):
        b = jnp.asarray(B0)
        np.testing.assert_allclose(jax.grad(f)(b), WANT[operator], rtol=1e-12)
        np.testing.assert_allclose(jax.jit(jax.grad(f))(b), WANT[operator], rtol=1e-12)


@pytest.mark.parametrize("traced_a", [False, True], ids=["one-traced", "all-traced"])
@pytest.mark.parametrize("structured", [False, True], ids=["Args", "dict"])
@pytest.mark.parametrize("operator", ["gradient", "jacobian", "hvp", "hessian"])
def test_autograd_through_some_or_all_leaves_of_x(
    operator: str, structured: bool, traced_a: bool
) -> None:
    # x's leaves may mix autograd's boxes and NumPy arrays; its boxed results (a tuple or a
    # dict box) come back as x's leaves
    def f(b: Any) -> Any:
        a = A0 + 0 * b if traced_a else A0
        return _first_argument_derivative(
            "autograd", operator, structured, a, b, (np.ones(2), np.zeros(2))
        )

    np.testing.assert_allclose(autograd.grad(f)(B0), WANT[operator], rtol=1e-12)
