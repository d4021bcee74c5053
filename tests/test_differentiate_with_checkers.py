"""DifferentiateWith under the frameworks' own gradient checkers, for every outer framework ×
inner backend: torch.autograd.gradcheck (reverse, forward, batched reverse and batched
forward), jax.test_util.check_grads (forward and reverse, also under jax.jit and jax.vmap),
tf.test.compute_gradient (reverse mode, eagerly and in tf.function),
autograd.test_util.check_grads, and finite differences through di operators against
analytic derivatives. The checkers compare with numerical differences of g itself, so they
are a reference independent of the inner backend; a g with a wrong derivative is shown to
fail each of them. Everything runs in float64."""

from __future__ import annotations

from typing import Any

import autograd.test_util
import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
import tensorflow as tf
import torch
from torch.autograd.gradcheck import GradcheckError

import diffinterface as di
from tests.conftest import assert_close

INNERS = ["jax", "torch", "tensorflow", "autograd", "finitediff"]
X = np.array([0.3, -0.8, 1.1, 0.5])


def vector(x: Any) -> Any:
    """ℝ⁴ → ℝ⁴ with a full Jacobian: sin(x)·Σx² + e^(x₀)·x."""
    xp = di.array_namespace(x)
    return xp.sin(x) * xp.sum(x * x) + xp.exp(x[0]) * x


def scalar(x: Any) -> Any:
    """ℝ⁴ → ℝ: (Σ cos(x)·x)²."""
    xp = di.array_namespace(x)
    return xp.sum(xp.cos(x) * x) ** 2


def of_scalar(s: Any) -> Any:
    """ℝ (0-d x) → ℝ³: (sin s, s², eˢ)."""
    xp = di.array_namespace(s)
    return xp.stack([xp.sin(s), s * s, xp.exp(s)])


def vector_jacobian(x: np.ndarray) -> np.ndarray:
    e0 = np.eye(x.size)[0]
    diagonal = np.diag(np.cos(x) * np.sum(x * x) + np.exp(x[0]))
    return diagonal + np.outer(np.sin(x), 2 * x) + np.exp(x[0]) * np.outer(x, e0)


def scalar_jacobian(x: np.ndarray) -> np.ndarray:
    return 2 * np.sum(np.cos(x) * x) * (np.cos(x) - x * np.sin(x))


def of_scalar_jacobian(s: np.ndarray) -> np.ndarray:
    return np.array([np.cos(s), 2 * s, np.exp(s)])


#: name → (f, x, its analytic Jacobian at x: shape y.shape + x.shape)
CASES = {
    "vector": (vector, X, vector_jacobian(X)),
    "scalar": (scalar, X, scalar_jacobian(X)),
    "0-d x": (of_scalar, np.array(0.7), of_scalar_jacobian(np.array(0.7))),
}


def wrong_derivative(x: Any) -> Any:
    """Value x, but torch differentiates it as x + sin(x): the checkers must catch it."""
    return x + torch.sin(x) - torch.sin(x).detach()


# -- torch ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("inner", INNERS)
def test_torch_gradcheck(inner: str, case: str) -> None:
    f, x0, _ = CASES[case]
    g = di.DifferentiateWith(f, inner)
    x = torch.tensor(x0, requires_grad=True)
    assert torch.autograd.gradcheck(
        g,
        (x,),
        check_backward_ad=True,
        check_forward_ad=True,
        check_batched_grad=True,
        check_batched_forward_grad=True,
    )


@pytest.mark.parametrize("inner", INNERS)
def test_torch_gradgradcheck_is_refused(inner: str) -> None:
    """Second order through the boundary is refused by design, with di's own error."""
    g = di.DifferentiateWith(vector, inner)
    x = torch.tensor(X, requires_grad=True)
    with pytest.raises(di.UnsupportedError, match="Second-order"):
        torch.autograd.gradgradcheck(g, (x,))
    with pytest.raises(di.UnsupportedError, match="Second-order"):
        torch.autograd.gradgradcheck(
            g, (x,), check_fwd_over_rev=True, check_rev_over_rev=False, check_undefined_grad=False
        )


# -- JAX --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("inner", INNERS)
def test_jax_check_grads(inner: str, case: str) -> None:
    f, x0, _ = CASES[case]
    g = di.DifferentiateWith(f, inner)
    with jax.enable_x64(True):
        x = jnp.asarray(x0)
        batch = jnp.stack([x, 0.5 * x, -x])
        checks = [(g, x), (jax.jit(g), x), (jax.jit(jax.vmap(g)), batch)]
        if case == "vector":  # vmap without jit: ~3× slower (lax.map compiled per call)
            checks.append((jax.vmap(g), batch))
        for transformed, arg in checks:
            jax.test_util.check_grads(transformed, (arg,), order=1, modes=("fwd", "rev"))


# -- TensorFlow (reverse mode only: forward mode through the boundary is refused) --------------


def tf_gradient_error(g: Any, x0: np.ndarray, compiled: bool) -> float:
    """The largest difference between TensorFlow's theoretical (tape) and numerical
    Jacobians of g, relative to the largest entry."""
    fn = tf.function(g, autograph=False) if compiled else g
    theoretical, numerical = tf.test.compute_gradient(fn, [tf.constant(x0)], delta=1e-5)
    t, n = theoretical[0], numerical[0]
    return float(np.max(np.abs(t - n)) / max(1.0, float(np.max(np.abs(n)))))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("inner", INNERS)
def test_tensorflow_compute_gradient(inner: str, case: str) -> None:
    f, x0, jac = CASES[case]
    g = di.DifferentiateWith(f, inner)
    for compiled in (False, True):
        assert tf_gradient_error(g, x0, compiled) < 1e-6
    theoretical, _ = tf.test.compute_gradient(g, [tf.constant(x0)])
    assert_close(theoretical[0], jac.reshape(theoretical[0].shape), 1e-7)


# -- HIPS autograd ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("inner", INNERS)
def test_autograd_check_grads(inner: str, case: str) -> None:
    f, x0, _ = CASES[case]
    g = di.DifferentiateWith(f, inner)
    autograd.test_util.check_grads(g, modes=["fwd", "rev"], order=1)(x0)


# -- finite differences through di operators --------------------------------------------------


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("inner", INNERS)
def test_finite_differences_through_di_operators(inner: str, case: str) -> None:
    """The outer finite differences see only g's values: every di operator matches the
    analytic Jacobian, and pushforward and pullback agree (⟨u, J·t⟩ = ⟨Jᵀ·u, t⟩)."""
    f, x0, jac = CASES[case]
    g = di.DifferentiateWith(f, inner)
    rng = np.random.default_rng(0)
    y_shape = jac.shape[: jac.ndim - x0.ndim]
    t, u = rng.normal(size=x0.shape), rng.normal(size=y_shape)
    flat = jac.reshape(int(np.prod(y_shape)), x0.size)
    rtol = 1e-7
    assert_close(di.jacobian(g, "finitediff", x0), jac, rtol)
    jt = di.pushforward(g, "finitediff", x0, t)
    ju = di.pullback(g, "finitediff", x0, u)
    assert_close(jt, (flat @ t.reshape(-1)).reshape(y_shape), rtol)
    assert_close(ju, (u.reshape(-1) @ flat).reshape(x0.shape), rtol)
    assert abs(np.sum(u * jt) - np.sum(ju * t)) <= rtol * max(1.0, float(np.abs(flat).max()))
    if case == "scalar":
        assert_close(di.gradient(g, "finitediff", x0), jac, rtol)
    if case == "0-d x":
        assert_close(di.derivative(g, "finitediff", x0), jac, rtol)


# -- the checkers can fail --------------------------------------------------------------------


def test_each_checker_catches_a_wrong_inner_derivative() -> None:
    g = di.DifferentiateWith(wrong_derivative, "torch")
    with pytest.raises(GradcheckError):
        torch.autograd.gradcheck(g, (torch.tensor(X, requires_grad=True),))
    with pytest.raises(GradcheckError):
        torch.autograd.gradcheck(
            g,
            (torch.tensor(X, requires_grad=True),),
            check_forward_ad=True,
            check_backward_ad=False,
            check_undefined_grad=False,
        )
    with jax.enable_x64(True):
        for modes in (("fwd",), ("rev",)):
            with pytest.raises(AssertionError):
                jax.test_util.check_grads(jax.jit(g), (jnp.asarray(X),), order=1, modes=modes)
    for mode in ("fwd", "rev"):
        with pytest.raises(AssertionError):
            autograd.test_util.check_grads(g, modes=[mode], order=1)(X)
    for compiled in (False, True):
        assert tf_gradient_error(g, X, compiled) > 1e-3
