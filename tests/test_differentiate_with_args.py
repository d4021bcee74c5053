"""DifferentiateWith with respect to several arguments (issue 23): every outer framework ×
inner backend differentiates g(a, b) with respect to a and b (b an array, or a dict of
arrays) against analytic derivatives; the constant arguments cost no inner work, and the
arguments differentiated together take one inner call."""

from __future__ import annotations

from typing import Any

import autograd
import autograd.numpy as anp
import autograd.test_util
import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
import tensorflow
import torch
import torch.func as tf
from torch.autograd.gradcheck import GradcheckError

import diffinterface as di
from tests.conftest import assert_close

INNERS = ["jax", "torch", "autograd", "finitediff", "casadi"]
OUTERS = ["jax", "torch", "tensorflow", "autograd"]
OUTERS += ["di:jax", "di:torch", "di:autograd", "di:finitediff"]  # a di operator on that backend
A = np.array([0.3, -0.8])
W = np.array([1.1, 0.5, 2.0])
S = np.array(1.5)


def pair(a: Any, w: Any) -> Any:
    """ℝ² × ℝ³ → ℝ²: sin(a)·Σw² + w₀·a."""
    xp = di.array_namespace(a, w)
    return xp.sin(a) * xp.sum(w * w) + w[0] * a


def with_dict(a: Any, b: Any) -> Any:
    """ℝ² × {w: ℝ³, s: ℝ} → ℝ²: sin(a)·Σw²·s + s·a."""
    xp = di.array_namespace(a)
    return xp.sin(a) * xp.sum(b["w"] * b["w"]) * b["s"] + b["s"] * a


def pair_jacobians() -> tuple[np.ndarray, np.ndarray]:
    ja = np.diag(np.cos(A) * np.sum(W * W) + W[0])
    jw = np.outer(np.sin(A), 2 * W) + np.outer(A, np.eye(3)[0])
    return ja, jw


def dict_jacobians() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    sw = np.sum(W * W)
    ja = np.diag(np.cos(A) * sw * S + S)
    return ja, {"w": np.outer(np.sin(A) * S, 2 * W), "s": np.sin(A) * sw + A}


def tol(outer: str, inner: str) -> float:
    return 1e-7 if "finitediff" in (outer, inner) else 1e-12


def close(got: Any, want: Any, rtol: float, ordered: bool = True) -> None:
    """Entry by entry; dict keys in ``want``'s order when ``ordered`` (JAX sorts them)."""
    if isinstance(want, dict):
        assert list(got) == list(want) if ordered else sorted(got) == sorted(want)
        for k in want:
            close(got[k], want[k], rtol, ordered)
    elif isinstance(want, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            close(g, w, rtol, ordered)
    else:
        assert_close(got, want, rtol)


def tangents(a: np.ndarray, b: Any) -> tuple[Any, Any]:
    return np.linspace(0.5, 1.0, a.size), each(lambda v: np.full(v.shape, -0.7), b)


def each(fn: Any, b: Any) -> Any:
    """fn on an array, or on each array of a dict (keys in their order)."""
    return {k: fn(v) for k, v in b.items()} if isinstance(b, dict) else fn(b)


def _apply(j: np.ndarray, t: np.ndarray) -> np.ndarray:
    """A Jacobian block applied to a tangent of its argument."""
    return np.tensordot(j, t, t.ndim)


def summed(g: Any) -> Any:
    return lambda a, b: di.array_namespace(a).sum(g(a, b))


def derivatives(outer: str, g: Any, a: np.ndarray, b: Any) -> dict[str, Any]:
    """The gradient of Σg and the Jacobians of g with respect to (a, b), by ``outer``."""
    if outer == "jax":
        with jax.enable_x64(True):
            aj, bj = jnp.asarray(a), each(jnp.asarray, b)
            return {
                "gradient": jax.jit(jax.grad(summed(g), argnums=(0, 1)))(aj, bj),
                "jacobian": jax.jit(jax.jacrev(g, argnums=(0, 1)))(aj, bj),
                "jacfwd": jax.jit(jax.jacfwd(g, argnums=(0, 1)))(aj, bj),
            }
    if outer == "torch":
        at, bt = (
            torch.tensor(a, requires_grad=True),
            each(lambda v: torch.tensor(v, requires_grad=True), b),
        )
        g(at, bt).sum().backward()
        ab = torch.tensor(a), each(torch.tensor, b)
        return {
            "gradient": (at.grad, each(lambda v: v.grad, bt)),
            "jacobian": tf.jacrev(g, argnums=(0, 1))(*ab),
        }
    if outer == "tensorflow":  # reverse mode only: a tape, eagerly and in a tf.function
        tensors = tensorflow.constant(a), each(tensorflow.constant, b)

        def by_tape(a: Any, b: Any) -> Any:
            with tensorflow.GradientTape(persistent=True) as tape:
                tape.watch((a, b))
                y = g(a, b)
                total = tensorflow.reduce_sum(y)
            return tape.gradient(total, (a, b)), tape.jacobian(y, (a, b))

        (gradient, jacobian), (traced, traced_jacobian) = (
            by_tape(*tensors),
            tensorflow.function(by_tape, autograph=False)(*tensors),
        )
        return {
            "gradient": gradient,
            "jacobian": jacobian,
            "gradient in tf.function": traced,
            "jacobian in tf.function": traced_jacobian,
        }
    if outer == "autograd":  # its jacobian takes one argnum: forward mode over both instead
        return {
            "gradient": autograd.grad(lambda ab: anp.sum(g(*ab)))((a, b)),
            "jvp": autograd.make_jvp(lambda ab: g(*ab))((a, b))(tangents(a, b))[1],
        }
    backend = outer.removeprefix("di:")
    return {
        "gradient": di.gradient(summed(g), backend, di.Args(a, b)),
        "jacobian": di.jacobian(g, backend, di.Args(a, b)),
    }


#: a dict argument reaches the bridges as one vector (as an array does): two inners suffice
CASES = [(s, o, i) for s in ("array", "dict") for o in OUTERS for i in INNERS]
CASES = [c for c in CASES if c[0] == "array" or c[2] in ("autograd", "finitediff")]


@pytest.mark.parametrize(("second", "outer", "inner"), CASES)
def test_gradient_and_jacobian_over_two_arguments(second: str, outer: str, inner: str) -> None:
    f, b, (ja, jb) = (
        (pair, W, pair_jacobians())
        if second == "array"
        else (with_dict, {"w": W, "s": S}, dict_jacobians())
    )
    g = di.DifferentiateWith(f, inner)
    ones = np.ones(2)
    want_gradient = (ones @ ja, each(lambda j: np.tensordot(ones, j, 1), jb))
    rtol = tol(outer.removeprefix("di:"), inner)
    ta, tb = tangents(A, b)
    want_jvp = ja @ ta + sum(jax.tree.leaves(jax.tree.map(_apply, jb, tb)))
    for name, got in derivatives(outer, g, A, b).items():
        want = {"gradient": want_gradient, "jvp": want_jvp}.get(name.split()[0], (ja, jb))
        try:
            close(got, want, rtol, ordered=outer not in ("jax", "tensorflow"))
        except AssertionError as e:
            raise AssertionError(
                f"{outer} {name} of DifferentiateWith({f.__name__}, {inner!r}): {e}"
            ) from e


def test_the_issue_example_and_a_later_argument_alone() -> None:
    g = di.DifferentiateWith(lambda a, b: a[0] * b[0], "finitediff")
    close(di.gradient(g, "jax", di.Args(np.array([2.0]), np.array([3.0]))), ([3.0], [2.0]), 1e-9)
    h = di.DifferentiateWith(lambda v, k: k * v * v, "finitediff")  # x NumPy, k differentiated
    want = np.sum(A * A)
    with jax.enable_x64(True):
        assert_close(jax.grad(lambda k: jnp.sum(h(A, k)))(2.0), want, 1e-9)
    k = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    (got,) = torch.autograd.grad(h(A, k).sum(), k)
    assert_close(got, want, 1e-9)
    assert_close(autograd.grad(lambda k: anp.sum(h(A, k)))(2.0), want, 1e-9)


# -- checkers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("inner", INNERS)
def test_the_frameworks_checkers_on_two_arguments(inner: str) -> None:
    g = di.DifferentiateWith(pair, inner)
    a, w = (torch.tensor(v, requires_grad=True) for v in (A, W))
    assert torch.autograd.gradcheck(
        g, (a, w), check_forward_ad=True, check_batched_grad=True, check_batched_forward_grad=True
    )
    with jax.enable_x64(True):
        aj, wj = jnp.asarray(A), jnp.asarray(W)
        checks = [(jax.jit(g), (aj, wj))]
        if inner != "jax":  # with the JAX inner backend, g is f: JAX checking itself
            checks.append((g, (aj, wj)))
        if inner == "finitediff":  # a batched, w not: example by example, whatever the inner
            checks.append((jax.jit(jax.vmap(g, in_axes=(0, None))), (jnp.stack([aj, -aj]), wj)))
        for fn, args in checks:
            jax.test_util.check_grads(fn, args, order=1, modes=("fwd", "rev"))
    # TensorFlow's checker: the tape's gradients against its own central differences
    tensors = [tensorflow.constant(A), tensorflow.constant(W)]
    for derived, numerical in zip(*tensorflow.test.compute_gradient(g, tensors), strict=True):
        assert_close(derived, numerical, 1e-6)
    # (check_grads(g)(A, W) would check argument 0 only: both as one tuple argument)
    autograd.test_util.check_grads(lambda aw: g(*aw), modes=["fwd", "rev"], order=1)((A, W))


def test_each_checker_catches_a_wrong_derivative_in_the_second_argument() -> None:
    """torch differentiates w as w + sin(w): the value is right, the derivative is not."""
    g = di.DifferentiateWith(
        lambda a, w: pair(a, w + torch.sin(w) - torch.sin(w).detach()), "torch"
    )
    a, w = (torch.tensor(v, requires_grad=True) for v in (A, W))
    with pytest.raises(GradcheckError):
        torch.autograd.gradcheck(g, (a, w))
    with jax.enable_x64(True):
        for mode in ("fwd", "rev"):
            with pytest.raises(AssertionError):
                jax.test_util.check_grads(g, (jnp.asarray(A), jnp.asarray(W)), 1, modes=(mode,))
    for mode in ("fwd", "rev"):
        with pytest.raises(AssertionError):
            autograd.test_util.check_grads(lambda aw: g(*aw), modes=[mode], order=1)((A, W))
    derived, numerical = tensorflow.test.compute_gradient(
        g, [tensorflow.constant(A), tensorflow.constant(W)]
    )
    assert_close(derived[0], numerical[0], 1e-6)  # a: right
    with pytest.raises(AssertionError):
        assert_close(derived[1], numerical[1], 1e-6)


# -- what it costs: constants are free, arguments differentiated together take one call --------


def counting(calls: list[int]) -> Any:
    def f(a: Any, c: Any) -> Any:
        calls.append(1)
        xp = di.array_namespace(a)
        return xp.sin(a) * xp.sum(c * c)

    return f


DATA = np.linspace(-1.0, 1.0, 50)


def runs(g: Any, second: np.ndarray, both: bool) -> dict[str, Any]:
    """Gradients through g: with respect to a only (``second`` a constant), or both."""
    loss = summed(g)
    argnums = (0, 1) if both else 0
    return {
        "jax": lambda: jax.grad(loss, argnums=argnums)(jnp.asarray(A), jnp.asarray(second)),
        "torch": lambda: loss(
            torch.tensor(A, requires_grad=True), torch.tensor(second, requires_grad=both)
        ).backward(),
        "torch.func": lambda: tf.grad(loss, argnums=argnums)(torch.tensor(A), torch.tensor(second)),
        "autograd": lambda: (
            autograd.grad(lambda ab: loss(*ab))((A, second))
            if both
            else autograd.grad(loss)(A, second)
        ),
        "di": lambda: (
            di.gradient(loss, "jax", di.Args(A, second))
            if both
            else di.gradient(loss, "jax", A, di.Constant(second))
        ),
    }


def test_a_constant_argument_is_not_differentiated() -> None:
    """The finite-difference inner backend evaluates f about twice per differentiated entry:
    the 50 entries of the data would add 100 evaluations."""
    calls: list[int] = []
    g = di.DifferentiateWith(counting(calls), "finitediff")
    with jax.enable_x64(True):
        for name, run in runs(g, DATA, both=False).items():
            run()  # prepares
            calls.clear()
            run()
            assert len(calls) <= 2 * A.size + 2, (name, len(calls))


def test_arguments_differentiated_together_take_one_inner_call() -> None:
    """The torch inner backend evaluates f once per pullback: f's value, then one pullback
    for a and w together (a call per argument would evaluate f three times)."""
    calls: list[int] = []
    g = di.DifferentiateWith(counting(calls), "torch")
    with jax.enable_x64(True):
        for name, run in runs(g, W, both=True).items():
            run()
            calls.clear()
            run()
            # (the JAX backend compiles the gradient, which drops f's unused value)
            assert len(calls) == (1 if name == "di" else 2), (name, len(calls))


# -- mixed with native code; what is still refused -----------------------------------------------


def test_native_jax_grad_with_argnums_over_a_model_calling_g() -> None:
    def model(a: Any, w: Any, f: Any) -> Any:
        return jnp.sum(jnp.cos(f(2.0 * a, w * w)) * a) + jnp.dot(w, w) * a[0]

    g = di.DifferentiateWith(pair, "torch")
    with jax.enable_x64(True):
        aj, wj = jnp.asarray(A), jnp.asarray(W)
        want = jax.grad(lambda a, w: model(a, w, pair), argnums=(0, 1))(aj, wj)  # pair in JAX
        for transform in (lambda fn: fn, jax.jit):
            got = transform(jax.grad(lambda a, w: model(a, w, g), argnums=(0, 1)))(aj, wj)
            close(got, tuple(map(np.asarray, want)), 1e-12)


def test_second_order_with_respect_to_a_later_argument_is_refused() -> None:
    g = di.DifferentiateWith(pair, "finitediff")
    with jax.enable_x64(True), pytest.raises(di.UnsupportedError, match="Second-order"):
        jax.hessian(summed(g), argnums=1)(jnp.asarray(A), jnp.asarray(W))
    w = torch.tensor(W, requires_grad=True)
    (gw,) = torch.autograd.grad(g(torch.tensor(A), w).sum(), w, create_graph=True)
    with pytest.raises(di.UnsupportedError, match="Second-order"):
        torch.autograd.grad(gw.sum(), w)
    with pytest.raises(di.UnsupportedError, match="Second-order"):
        tf.hessian(summed(g), argnums=1)(torch.tensor(A), torch.tensor(W))


def test_arguments_of_two_dtypes_keep_them() -> None:
    """float32 a and float64 w differentiated together: one inner call per dtype (di.Args
    needs one), each gradient in its argument's dtype."""
    g = di.DifferentiateWith(pair, "torch")
    a = torch.tensor(A, dtype=torch.float32, requires_grad=True)
    w = torch.tensor(W, requires_grad=True)
    g(a, w).sum().backward()
    ja, jw = pair_jacobians()
    assert a.grad.dtype == torch.float32 and w.grad.dtype == torch.float64
    assert_close(a.grad, np.ones(2) @ ja, 1e-6)
    assert_close(w.grad, np.ones(2) @ jw, 1e-6)
