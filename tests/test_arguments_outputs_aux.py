"""Several active arguments (di.Args), structured outputs and auxiliary results, on every
backend, against analytic derivatives: what users of jax.grad(argnums=..., has_aux=...),
jax.jacobian of a dict-valued f, and torch.func expect."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest
import torch

import diffinterface as di
from tests.conftest import BACKENDS, as_kind, backend_id, to_numpy

A = np.array([0.5, -1.2, 2.0])
B = {"w": np.array([0.3, 0.8, -0.4]), "s": np.array(1.5)}


def two_arguments(a: Any, b: Any) -> Any:
    """Σ a²·w·s + s³: ∂/∂a = 2a·w·s, ∂/∂w = a²·s, ∂/∂s = Σ a²·w + 3s²."""
    xp = di.array_namespace(a)
    return xp.sum(a * a * b["w"]) * b["s"] + b["s"] ** 3


def gradients() -> tuple[Any, Any]:
    w, s = B["w"], B["s"]
    return 2 * A * w * s, {"w": A * A * s, "s": np.sum(A * A * w) + 3 * s**2}


def close(got: Any, want: Any, rtol: float) -> None:
    if isinstance(want, dict):
        assert list(got) == list(want)  # x's own key order
        for k in want:
            close(got[k], want[k], rtol)
    elif isinstance(want, tuple):
        assert type(got) is tuple and len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            close(g, w, rtol)
    else:
        np.testing.assert_allclose(to_numpy(got), want, rtol=rtol, atol=rtol)


def tol(backend: Any) -> float:
    return 1e-5 if backend.name == "finitediff" else 1e-10


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_args_give_one_gradient_per_argument(backend: Any) -> None:
    x = di.Args(A, B)
    prep = di.prepare_gradient(two_arguments, backend, x)
    for g in (
        di.gradient(two_arguments, backend, x),
        di.gradient(two_arguments, backend, x, prep=prep),
    ):
        close(g, gradients(), tol(backend))
    value, g = di.value_and_gradient(two_arguments, backend, x, prep=prep)
    close(g, gradients(), tol(backend))
    assert float(value) == pytest.approx(two_arguments(A, B))


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_args_jacobian_and_hessian_blocks_as_jax_lays_them_out(backend: Any) -> None:
    def f(a: Any, c: Any) -> Any:
        return a * c[0] + a**2 * c[1]

    c = np.array([2.0, 0.5])
    jac = di.jacobian(f, backend, di.Args(A, c))
    want = (np.diag(c[0] + 2 * A * c[1]), np.stack([A, A**2], axis=1))
    close(jac, want, tol(backend))
    assert di.jacobian(f, backend, di.Args(A, c), flat=True).shape == (3, 5)
    hess = di.hessian(lambda a, c: di.array_namespace(a).sum(f(a, c)), backend, di.Args(A, c))
    h_aa, h_ac = np.diag(2 * c[1] * np.ones(3)), np.stack([np.ones(3), 2 * A], axis=1)
    rtol = 1e-4 if backend.name == "finitediff" else 1e-10
    close(hess, ((h_aa, h_ac), (h_ac.T, np.zeros((2, 2)))), rtol)
    with jax.enable_x64(True):  # the layout jax.hessian gives with argnums
        ref = jax.hessian(lambda a, c: jax.numpy.sum(f(a, c)), argnums=(0, 1))(A, c)
    close(hess, tuple(tuple(np.asarray(b) for b in row) for row in ref), rtol)


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_args_tangents_and_batches(backend: Any) -> None:
    def f(a: Any, c: Any) -> Any:
        return a * c[0]

    c, ta, tc = np.array([2.0, 0.5]), np.ones(3), np.array([1.0, 0.0])
    pushed = di.pushforward(f, backend, di.Args(A, c), di.Args(ta, tc))
    close(pushed, c[0] * ta + A * tc[0], tol(backend))
    batch = di.pushforward(f, backend, di.Args(A, c), (di.Args(ta, tc), di.Args(ta, 0 * tc)))
    close(batch, (c[0] * ta + A, c[0] * ta), tol(backend))
    pulled = di.pullback(f, backend, di.Args(A, c), np.ones(3))
    close(pulled, (np.full(3, c[0]), np.array([np.sum(A), 0.0])), tol(backend))


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_args_with_contexts_and_out(backend: Any) -> None:
    def f(a: Any, c: Any, scale: Any) -> Any:
        return di.array_namespace(a).sum(a * c) * scale

    c = np.array([1.0, 2.0, 3.0])
    out = (np.zeros(3), np.zeros(3))
    got = di.gradient(f, backend, di.Args(A, c), di.Constant(2.0), out=out)
    assert got is out
    close(out, (2 * c, 2 * A), tol(backend))


def test_a_plain_tuple_stays_one_argument_and_a_mismatch_names_the_argument() -> None:
    def of_tuple(p: Any) -> Any:
        a, c = p
        return di.array_namespace(a).sum(a * c)

    g = di.gradient(of_tuple, "jax", (A, A))
    close(g, (A, A), 1e-12)
    prep = di.prepare_gradient(two_arguments, "jax", di.Args(A, B))
    other = di.Args(A, {"w": np.ones(4), "s": B["s"]})
    with pytest.raises(di.PreparationMismatchError, match=r"argument 2\['w'\] was prepared"):
        di.gradient(two_arguments, "jax", other, prep=prep)
    with pytest.raises(di.PreparationMismatchError, match="one argument"):
        di.gradient(two_arguments, "jax", (A, B), prep=prep)


@pytest.mark.parametrize("count", [1, 2, 3, 4])
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_preparation_for_args_of_arrays_refuses_each_other_argument(
    backend: str, count: int
) -> None:
    """Σ (i+1)·Σ x_i²: ∂/∂x_i = 2(i+1)·x_i. Each argument in turn given as a NumPy array, an
    argument added, one left out: each is named (the check of x is written out per count)."""

    def f(*xs: Any) -> Any:
        return sum(di.array_namespace(a).sum(a * a) * (i + 1) for i, a in enumerate(xs))

    xs = [as_kind(np.arange(2.0) + i, backend) for i in range(count)]
    prep = di.prepare_gradient(f, backend, di.Args(*xs))
    close(
        di.gradient(f, backend, di.Args(*xs), prep=prep),
        tuple(2 * (i + 1) * (np.arange(2.0) + i) for i in range(count)),
        1e-12,
    )
    for k in range(count):
        other = [*xs[:k], to_numpy(xs[k]), *xs[k + 1 :]]
        with pytest.raises(di.PreparationMismatchError, match=rf"called argument {k + 1} was"):
            di.gradient(f, backend, di.Args(*other), prep=prep)
    with pytest.raises(di.PreparationMismatchError, match=rf"called with argument {count + 1} "):
        di.gradient(f, backend, di.Args(*xs, xs[0]), prep=prep)
    if count > 1:
        with pytest.raises(di.PreparationMismatchError, match=rf"called without argument {count} "):
            di.gradient(f, backend, di.Args(*xs[:-1]), prep=prep)


@pytest.mark.parametrize("outer", ["jax", "torch"])
def test_args_under_second_order(outer: str) -> None:
    backend = di.SecondOrder(outer, "finitediff")
    hess = di.hessian(two_arguments, backend, di.Args(A, B), flat=True)
    ref = di.hessian(two_arguments, "jax", di.Args(A, B), flat=True)
    np.testing.assert_allclose(hess, ref, atol=1e-4)


# --------------------------------------------------------------------------------------
# structured outputs


def dict_valued(x: Any) -> Any:
    xp = di.array_namespace(x)
    return {"b": xp.sin(x), "a": xp.stack([xp.sum(x * x), x[0] * x[1]])}


def dict_jacobian(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"b": np.diag(np.cos(x)), "a": np.array([2 * x, [x[1], x[0], 0.0]])}


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_a_dict_valued_f(backend: Any) -> None:
    prep = di.prepare_jacobian(dict_valued, backend, A)
    value, jac = di.value_and_jacobian(dict_valued, backend, A, prep=prep)
    close(value, dict_valued(A), 1e-12)
    close(jac, dict_jacobian(A), tol(backend))
    t = np.array([1.0, 0.0, -1.0])
    close(
        di.pushforward(dict_valued, backend, A, t),
        {k: j @ t for k, j in dict_jacobian(A).items()},
        tol(backend),
    )
    u = {"b": np.ones(3), "a": np.array([1.0, -2.0])}
    want = sum(u[k] @ j for k, j in dict_jacobian(A).items())
    close(di.pullback(dict_valued, backend, A, u), want, tol(backend))
    d = di.derivative(lambda s: {"p": s * s, "q": s**3}, backend, 0.5)
    close(d, {"p": 1.0, "q": 0.75}, tol(backend))


def test_a_structured_jacobian_of_a_structured_x_is_output_major_as_jax() -> None:
    def f(p: Any) -> Any:
        return dict_valued(p["x"] * p["k"])

    p = {"x": A, "k": np.array(2.0)}
    ref = jax.jacobian(
        lambda q: {
            "b": jax.numpy.sin(q["x"] * q["k"]),
            "a": jax.numpy.stack(
                [jax.numpy.sum((q["x"] * q["k"]) ** 2), q["x"][0] * q["k"] * q["x"][1] * q["k"]]
            ),
        }
    )
    with jax.enable_x64(True):
        want = ref(p)
    for backend in ("jax", "torch", "autograd"):
        got = di.jacobian(f, backend, p)
        assert list(got) == ["b", "a"] and list(got["b"]) == ["x", "k"]
        for k in ("b", "a"):
            for leaf in ("x", "k"):
                np.testing.assert_allclose(
                    to_numpy(got[k][leaf]), np.asarray(want[k][leaf]), rtol=1e-10
                )


def test_structured_outputs_only_where_defined() -> None:
    with pytest.raises(di.InvalidArgumentError, match="needs one array"):
        di.second_derivative(lambda s: {"p": s * s}, "jax", 0.5)


# --------------------------------------------------------------------------------------
# auxiliary results


def with_aux(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(x**3), {"mean": xp.mean(x), "label": "cubes"}


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_has_aux_passes_aux_through(backend: Any, kind: str) -> None:
    x = as_kind(A, kind)
    prep = di.prepare_gradient(with_aux, backend, x, has_aux=True)
    for call in (lambda: di.gradient(with_aux, backend, x, has_aux=True),
                 lambda: di.gradient(with_aux, backend, x, prep=prep, has_aux=True)):  # fmt: skip
        g, aux = call()
        close(g, 3 * A**2, tol(backend))
        assert aux["label"] == "cubes" and type(aux["mean"]) is type(x)
        assert float(aux["mean"]) == pytest.approx(A.mean())
        if kind == "torch":
            assert not aux["mean"].requires_grad
    (value, aux), g = di.value_and_gradient(with_aux, backend, x, prep=prep, has_aux=True)
    assert float(value) == pytest.approx(np.sum(A**3)) and aux["label"] == "cubes"
    h, aux = di.hessian(with_aux, backend, x, has_aux=True)
    close(h, np.diag(6 * A), 1e-4 if backend.name == "finitediff" else 1e-10)
    (_g2, hv), aux = di.gradient_and_hvp(
        with_aux, backend, x, as_kind(np.ones(3), kind), has_aux=True
    )
    close(hv, 6 * A, 1e-4 if backend.name == "finitediff" else 1e-10)


def cubes_and_aux(x: Any) -> Any:
    xp = di.array_namespace(x)
    return x**3, {"twice": 2.0 * x, "total": xp.sum(x)}


#: case → a call with has_aux=True giving (result, aux)
AUX_CASES = {
    "pushforward": (lambda b, x, t: di.pushforward(cubes_and_aux, b, x, t, has_aux=True)),
    "pushforward of 2 tangents": (
        lambda b, x, t: di.pushforward(cubes_and_aux, b, x, (t, 2 * t), has_aux=True)
    ),
    "pullback": (lambda b, x, t: di.pullback(cubes_and_aux, b, x, t, has_aux=True)),
    "pullback of 2 cotangents": (
        lambda b, x, t: di.pullback(cubes_and_aux, b, x, (t, 2 * t), has_aux=True)
    ),
    "jacobian": (lambda b, x, t: di.jacobian(cubes_and_aux, b, x, has_aux=True)),
    "value_and_jacobian": (
        lambda b, x, t: di.value_and_jacobian(cubes_and_aux, b, x, has_aux=True)[::-1]
    ),
}


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("case", list(AUX_CASES))
def test_aux_is_f_aux_at_x_off_any_graph(backend: Any, kind: str, case: str) -> None:
    """aux is f's aux at x, as plain arrays of x's type, however the backend evaluates f
    (forward or reverse, one tangent or a batch, transforms or eager)."""
    x, t = as_kind(A, kind), as_kind(np.ones(3), kind)
    result, aux = AUX_CASES[case](backend, x, t)
    if case == "value_and_jacobian":
        aux = aux[1]
    d = 3 * A**2
    if "2 " in case:
        for got, w in zip(result, (d, 2 * d), strict=True):
            close(got, w, tol(backend))
    else:
        close(result, np.diag(d) if "jacobian" in case else d, tol(backend))
    assert type(aux["twice"]) is type(x) and type(aux["total"]) is type(x)
    # numpy() refuses tensors that require grad or still belong to a torch.func transform
    twice = aux["twice"].numpy() if kind == "torch" else aux["twice"]
    np.testing.assert_allclose(twice, 2.0 * A, rtol=1e-15)
    assert float(aux["total"]) == pytest.approx(A.sum(), rel=1e-15)


def test_has_aux_of_a_jacobian_and_its_refusals() -> None:
    def f(x: Any) -> Any:
        return x * x, x.sum()

    jac, aux = di.jacobian(f, "torch", torch.tensor(A), has_aux=True)
    close(jac, np.diag(2 * A), 1e-12)
    assert float(aux) == pytest.approx(A.sum())
    with pytest.raises(di.InvalidArgumentError, match="has_aux=True"):
        di.gradient(with_aux, "jax", A)
    with pytest.raises(di.InvalidArgumentError, match=r"pair \(output, aux\)"):
        di.gradient(lambda x: x.sum(), "jax", A, has_aux=True)
    prep = di.prepare_gradient(with_aux, "jax", A, has_aux=True)
    with pytest.raises(di.PreparationMismatchError, match="✗ has_aux"):
        di.gradient(with_aux, "jax", A, prep=prep)
