"""DifferentiateWith: every outer framework × every inner backend against analytic
derivatives, under each outer framework's transforms (JAX grad/jvp/jit/vmap, torch
autograd and torch.func, TensorFlow's GradientTape eagerly and in tf.function, HIPS
autograd, finite differences and di operators)."""

from __future__ import annotations

import warnings
from typing import Any

import autograd
import autograd.numpy as anp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow
import torch
import torch.autograd.forward_ad as fwad
import torch.func as func

import diffinterface as di
from tests.conftest import assert_close

FRAMEWORKS = ["jax", "torch", "tensorflow", "autograd", "finitediff"]
X0 = np.array([0.3, -0.8, 1.1, 0.5])
W = np.array([1.0, -2.0, 0.5, 3.0])


def wave(x: Any) -> Any:
    """sin(x) · Σx², written once for every array library."""
    xp = di.array_namespace(x)
    return xp.sin(x) * xp.sum(x * x)


def wave_jacobian(x: np.ndarray) -> np.ndarray:
    return np.diag(np.cos(x) * np.sum(x * x)) + np.outer(np.sin(x), 2 * x)


def tol(*backends: str) -> float:
    return 1e-7 if "finitediff" in backends else 1e-12


def outer_jacobians(outer: str, g: Any, x: np.ndarray) -> dict[str, Any]:
    """Jacobians (and W-weighted gradients, JVPs along W) of g by the outer framework."""
    if outer == "jax":
        with jax.enable_x64(True):
            xj = jnp.asarray(x)
            loss = jax.grad(lambda v: jnp.sum(jnp.asarray(W) * g(v)))
            y, ty = jax.jvp(g, (xj,), (jnp.asarray(W),))
            return {
                "value": y,
                "jit(jacrev)": jax.jit(jax.jacrev(g))(xj),
                "jacfwd": jax.jacfwd(g)(xj),
                "grad": loss(xj),
                "jit(vmap(grad))": jax.jit(jax.vmap(loss))(jnp.stack([xj, xj]))[1],
                "jvp": ty,
                "vjp": jax.vjp(g, xj)[1](jnp.asarray(W))[0],
            }
    if outer == "torch":
        xt = torch.tensor(x, requires_grad=True)
        y = g(xt)
        y.backward(torch.tensor(W))
        xd = torch.tensor(x)
        loss = func.grad(lambda v: torch.sum(torch.tensor(W) * g(v)))
        return {
            "value": y,
            "backward": xt.grad,
            "autograd.grad": torch.autograd.grad(g(xd.requires_grad_()), xd, torch.tensor(W))[0],
            "func.jacrev": func.jacrev(g)(torch.tensor(x)),
            "func.jacfwd": func.jacfwd(g)(torch.tensor(x)),
            "func.grad": loss(torch.tensor(x)),
            "func.vmap(grad)": func.vmap(loss)(torch.stack([torch.tensor(x)] * 2))[1],
            "func.jvp": func.jvp(g, (torch.tensor(x),), (torch.tensor(W),))[1],
        }
    if outer == "tensorflow":  # reverse mode only (see test_tensorflow_differentiate_with.py)
        xt, w = tensorflow.constant(x), tensorflow.constant(W)

        def jacobian(v: Any) -> Any:
            with tensorflow.GradientTape() as tape:
                tape.watch(v)
                y = g(v)
            return tape.jacobian(y, v)

        with tensorflow.GradientTape(persistent=True) as tape:
            tape.watch(xt)
            y = g(xt)
            loss = tensorflow.reduce_sum(w * y)
        return {
            "value": y,
            "tape.gradient(grad)": tape.gradient(loss, xt),
            "vjp": tape.gradient(y, xt, output_gradients=w),
            "tape.jacobian": tape.jacobian(y, xt),
            "tf.function(tape.jacobian)": tensorflow.function(jacobian)(xt),
        }
    if outer == "autograd":
        return {
            "value": g(x),
            "jacobian": autograd.jacobian(g)(x),
            "grad": autograd.grad(lambda v: anp.sum(W * g(v)))(x),
            "jvp": autograd.make_jvp(g)(x)(W)[1],
        }
    return {"value": g(x), "jacobian": di.jacobian(g, "finitediff", x)}


@pytest.mark.parametrize("inner", FRAMEWORKS)
@pytest.mark.parametrize("outer", FRAMEWORKS)
def test_outer_transforms_reach_the_inner_backend(outer: str, inner: str) -> None:
    g = di.DifferentiateWith(wave, inner)
    jac, rtol = wave_jacobian(X0), tol(outer, inner)
    expected = {"value": wave(X0), "grad": W @ jac, "jvp": jac @ W, "vjp": W @ jac}
    for name, got in outer_jacobians(outer, g, X0).items():
        key = next((k for k in expected if k in name), None)
        want = expected[key] if key else (W @ jac if name in ("backward", "autograd.grad") else jac)
        try:
            assert_close(got, want, rtol if name != "value" else 1e-15)
        except AssertionError as e:
            raise AssertionError(f"{outer} {name} of DifferentiateWith(f, {inner!r}): {e}") from e


@pytest.mark.parametrize("inner", FRAMEWORKS)
@pytest.mark.parametrize(
    "outer", [*FRAMEWORKS, di.AutoJAX(mode="forward"), di.AutoTorch("forward")]
)
def test_di_operators_over_differentiate_with(outer: Any, inner: str) -> None:
    g = di.DifferentiateWith(wave, inner)
    outer_name = outer if isinstance(outer, str) else outer.name
    rtol = tol(outer_name, inner)
    prep = di.prepare_jacobian(g, outer, X0)
    for _ in range(2):
        assert_close(di.jacobian(g, outer, X0, prep=prep), wave_jacobian(X0), rtol)
    value, grad = di.value_and_gradient(lambda v: di.array_namespace(v).sum(g(v)), outer, X0)
    assert_close(grad, np.ones(4) @ wave_jacobian(X0), rtol)
    assert_close(value, np.sum(wave(X0)), 1e-14)


# -- mixing: mutation inside JAX, JAX inside torch, constants, nesting, dtypes ----------------

SCRATCH = di.DiffCache(np.zeros(4))


def smooth_in_place(x: Any, a: Any) -> Any:
    """tanh(A x) accumulated in a scratch buffer (torch code that mutates)."""
    tmp = di.get_tmp(SCRATCH, x)
    tmp[...] = a @ x
    tmp[...] = torch.tanh(tmp) + x
    return 1.0 * tmp


A = np.random.default_rng(1).normal(size=(4, 4))


def test_jax_model_with_a_mutating_inner_function_differentiated_by_torch() -> None:
    g = di.DifferentiateWith(smooth_in_place, "torch")

    def loss(x: Any) -> Any:
        return jnp.sum(jnp.cos(g(2.0 * x, A)) * x)

    with jax.enable_x64(True):
        xj = jnp.asarray(X0)
        got = jax.jit(jax.grad(loss))(xj)
    # analytic: u = 2x, s = tanh(A u) + u, L = Σ cos(s)·x
    u = 2 * X0
    s = np.tanh(A @ u) + u
    ds_du = np.diag(1 - np.tanh(A @ u) ** 2) @ A + np.eye(4)
    want = np.cos(s) + 2 * ((-np.sin(s) * X0) @ ds_du)
    assert_close(got, want, 1e-12)


def test_torch_model_calling_a_jax_function_under_autograd_grad() -> None:
    g = di.DifferentiateWith(lambda v, b: jnp.exp(v) * b, "jax")
    b = np.array([2.0, -1.0, 0.5, 1.5])
    x = torch.tensor(X0, requires_grad=True)
    loss = torch.sum(torch.sin(x) * g(x, torch.tensor(b)))
    (got,) = torch.autograd.grad(loss, x)
    want = np.cos(X0) * np.exp(X0) * b + np.sin(X0) * np.exp(X0) * b
    assert_close(got, want, 1e-14)
    assert got.dtype == torch.float64


def test_float32_stays_float32_and_constants_of_every_kind() -> None:
    g = di.DifferentiateWith(lambda v, a, k: k * (a @ v), "finitediff")
    x32 = X0.astype(np.float32)
    got = jax.jacrev(lambda v: g(v, A.astype(np.float32), 3.0))(jnp.asarray(x32))
    assert got.dtype == jnp.float32
    assert_close(got, 3.0 * A, 2e-3)
    xt = torch.tensor(x32, requires_grad=True)
    y = g(xt, torch.tensor(A, dtype=torch.float32), 3.0)
    assert y.dtype == torch.float32
    (jt,) = torch.autograd.grad(y.sum(), xt)
    assert_close(jt, 3.0 * A.sum(axis=0), 2e-3)


def test_nested_and_repeated_calls_reuse_preparations() -> None:
    inner = di.DifferentiateWith(wave, "finitediff")
    outer = di.DifferentiateWith(lambda v: 2.0 * inner(v) + v, "torch")

    def loss(x: Any) -> Any:
        return jnp.sum(outer(x) * outer(0.5 * x))

    with jax.enable_x64(True):
        xj = jnp.asarray(X0)
        got = [jax.grad(loss)(xj) for _ in range(3)]
    j1, j2 = 2 * wave_jacobian(X0) + np.eye(4), 2 * wave_jacobian(0.5 * X0) + np.eye(4)
    y1, y2 = 2 * wave(X0) + X0, 2 * wave(0.5 * X0) + 0.5 * X0
    want = y2 @ j1 + 0.5 * (y1 @ j2)
    for g in got:
        assert_close(g, want, 1e-7)
    # one pullback preparation per signature, however often g is differentiated
    assert sum(k[0] == "pullback" for k in outer.inner._preps) == 1


# -- clear errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("inner", ["finitediff", "torch"])
def test_second_order_through_the_boundary_is_refused(inner: str) -> None:
    g = di.DifferentiateWith(wave, inner)
    with jax.enable_x64(True), pytest.raises(di.UnsupportedError, match="Second-order"):
        jax.hessian(lambda v: jnp.sum(g(v)))(jnp.asarray(X0))
    x = torch.tensor(X0, requires_grad=True)
    (gr,) = torch.autograd.grad(g(x).sum(), x, create_graph=True)
    with pytest.raises(di.UnsupportedError, match="Second-order"):
        torch.autograd.grad(gr.sum(), x)
    with pytest.raises(di.UnsupportedError, match="Second-order"):
        func.hessian(lambda v: g(v).sum())(torch.tensor(X0))


def test_bad_arguments() -> None:
    with pytest.raises(di.InvalidArgumentError, match="callable"):
        di.DifferentiateWith(np.zeros(3), "torch")  # type: ignore[arg-type]
    with pytest.raises(di.InvalidArgumentError, match="backend"):
        di.DifferentiateWith(wave, "theano")
    g = di.DifferentiateWith(lambda v, d: v * d["k"], "finitediff")
    with pytest.raises(di.InvalidArgumentError, match="neither an array nor hashable"):
        jax.grad(lambda v: jnp.sum(g(v, {"k": 2.0})))(jnp.ones(3))
    with pytest.raises(di.InvalidArgumentError, match="x must be an array"):
        g("text", {"k": 1.0})
    assert (
        repr(di.DifferentiateWith(wave, "jax"))
        == "DifferentiateWith(wave, AutoJAX(mode='reverse'))"
    )


# -- torch's eager forward mode and older batching (issue 18, items 4 and 5) -----------------


@pytest.mark.parametrize("inner", FRAMEWORKS)
def test_torch_eager_forward_mode_reaches_the_inner_backend(inner: str) -> None:
    """Inside forward_ad.dual_level() (gradcheck's check_forward_ad opens one), the inner
    torch backend used to open a nested level and fail."""
    g = di.DifferentiateWith(wave, inner)
    with fwad.dual_level():
        y = g(fwad.make_dual(torch.tensor(X0), torch.tensor(W)))
        value, jvp = fwad.unpack_dual(y)
    assert_close(value, wave(X0), 1e-15)
    assert_close(jvp, wave_jacobian(X0) @ W, tol(inner))


def test_torch_pushforward_inside_a_callers_forward_mode_level() -> None:
    """The torch backend's pushforwards (plain, batched, mutating f) inside an open level."""

    def mutating(x: Any) -> Any:
        y = torch.zeros_like(x)
        y[...] = wave(x)
        return y

    x, t = torch.tensor(X0), torch.tensor(W)
    jac = wave_jacobian(X0)
    with fwad.dual_level():
        assert_close(di.pushforward(wave, "torch", x, t), jac @ W, 1e-12)
        assert_close(di.pushforward(mutating, "torch", x, t), jac @ W, 1e-12)
        batch = di.pushforward(wave, "torch", x, (t, 2 * t))
        assert_close(batch[1], 2 * jac @ W, 1e-12)
        assert_close(di.jacobian(wave, di.AutoTorch("forward"), x), jac, 1e-12)
        with pytest.raises(di.UnsupportedError, match="carries a tangent of that level"):
            di.pushforward(wave, "torch", fwad.make_dual(x, t), t)


@pytest.mark.parametrize("inner", FRAMEWORKS)
def test_torch_batched_gradients_reach_the_inner_backend(inner: str) -> None:
    """torch's older vmap (is_grads_batched, vectorized functional.jacobian) used to hand
    its batched tensors to the NumPy conversion ("Batching rule not implemented for
    aten::detach")."""
    g = di.DifferentiateWith(wave, inner)
    jac, rtol = wave_jacobian(X0), tol(inner)
    x = torch.tensor(X0, requires_grad=True)
    basis = torch.eye(4, dtype=torch.float64)
    (rows,) = torch.autograd.grad(g(x), x, basis, is_grads_batched=True)
    assert_close(rows, jac, rtol)
    for strategy in ("reverse-mode", "forward-mode"):
        got = torch.autograd.functional.jacobian(g, x, vectorize=True, strategy=strategy)
        assert_close(got, jac, rtol)
    # the older vmap over g itself: one inner call per example
    xs = torch.stack([x.detach(), 2 * x.detach()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        values = torch._vmap_internals.vmap(g)(xs)
        assert_close(values[1], wave(2 * X0), 1e-15)
        with pytest.raises(di.UnsupportedError, match=r"torch\.func\.vmap"):
            torch._vmap_internals.vmap(torch._vmap_internals.vmap(g))(xs[None])


# -- an exception from f under JAX keeps its type (issue 18, item 6) -----------------------------


class _FromF(ValueError):
    pass


def _failing(exc: BaseException, calls: list[int]) -> Any:
    """f that raises ``exc`` (chained to a KeyError) where x[0] > 2, counting its calls."""

    def f(x: Any) -> Any:
        calls.append(1)
        if x[0] > 2:
            try:
                {}["key"]
            except KeyError as e:
                raise exc from e
        return 2.0 * x

    return f


@pytest.mark.parametrize("exc", [_FromF("bad x"), KeyboardInterrupt("stop")], ids=type)
@pytest.mark.parametrize("transform", ["call", "grad", "jvp", "vmap"])
def test_an_error_from_f_surfaces_as_itself_under_jax(exc: BaseException, transform: str) -> None:
    """Without jax.jit, the host call is evaluated at once: JAX's JaxRuntimeError is
    replaced by f's own exception (BaseExceptions too), with its own chain, raised once."""
    calls: list[int] = []
    g = di.DifferentiateWith(_failing(exc, calls), "finitediff")
    run = {
        "call": g,
        "grad": jax.grad(lambda v: jnp.sum(g(v))),
        "jvp": lambda v: jax.jvp(g, (v,), (v,)),
        "vmap": jax.vmap(g),
    }[transform]
    x = jnp.full((2, 3) if transform == "vmap" else (3,), 3.0)
    with pytest.raises(type(exc)) as info:
        run(x)
    assert info.value is exc and str(exc) == str(info.value)
    assert type(exc.__cause__) is KeyError and exc.__context__ is exc.__cause__
    assert len(calls) == 2  # f at ones (for its output shape), then the failing call


def test_original_error_finds_what_f_raised_from_jaxs_error() -> None:
    """Under jax.jit JAX reports f's exception as a JaxRuntimeError (documented);
    original_error finds f's exception from it, once, and nothing for other errors."""
    from diffinterface._bridges.jax import original_error

    g = di.DifferentiateWith(_failing(KeyboardInterrupt("stop"), []), "finitediff")
    with pytest.raises(jax.errors.JaxRuntimeError) as info:
        jax.jit(g)(jnp.full(3, 3.0))
    original = original_error(info.value)
    assert type(original) is KeyboardInterrupt and str(original) == "stop"
    assert original_error(info.value) is None  # returned once
    assert original_error(ValueError("stop")) is None
    unrelated = jax.errors.JaxRuntimeError("INTERNAL: other\nKeyboardInterrupt: x")
    assert original_error(unrelated) is None


@pytest.mark.parametrize("prepared", [False, True])
def test_an_error_from_f_surfaces_as_itself_from_a_di_operator_over_jax(prepared: bool) -> None:
    calls: list[int] = []
    g = di.DifferentiateWith(_failing(_FromF("bad x"), calls), "finitediff")

    def model(v: Any) -> Any:
        return jnp.sum(g(v))

    prep = di.prepare_gradient(model, "jax", np.ones(3)) if prepared else None
    calls.clear()
    with pytest.raises(_FromF, match="bad x"):
        di.gradient(model, "jax", np.full(3, 3.0), prep=prep)
    assert len(calls) == (1 if prepared else 2)  # the kernel ran once (and f at ones)


def test_raise_original_is_what_the_core_hook_does() -> None:
    """The line the core needs (``raise_original(e)`` where a kernel's exception is noted):
    JAX's error from the JAX backend's compiled kernel becomes f's own exception, with f's
    own chain, raised once (f ran at ones for its shape, then once more)."""
    from diffinterface._errors import raise_original

    calls: list[int] = []
    exc = _FromF("bad x")
    g = di.DifferentiateWith(_failing(exc, calls), "finitediff")
    with pytest.raises(_FromF, match="bad x") as info:
        try:
            di.gradient(lambda v: jnp.sum(g(v)), "jax", np.full(3, 3.0))
        except jax.errors.JaxRuntimeError as e:
            raise_original(e)
            raise
    assert info.value is exc and type(exc.__context__) is KeyError
    assert len(calls) == 2
