"""DiffCache / get_tmp: buffer-using code differentiated by every backend that allows
mutation and checked against analytic or complex-step references; buffers work inside
torch.func transforms and are reused where the docs say; JAX and autograd refuse at once."""

from __future__ import annotations

from typing import Any

import autograd
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as fwad
from torch.func import grad, jacfwd, jacrev, vmap

import diffinterface as di
from diffinterface.testsuite._collections import bump_derivatives, energy_derivatives
from tests.conftest import (
    IMMUTABLE_BACKENDS,
    MUTATING_BACKENDS,
    as_kind,
    assert_close,
    assert_contract,
    backend_id,
    tolerance,
)

mutating = pytest.mark.parametrize("backend", MUTATING_BACKENDS, ids=backend_id)
immutable = pytest.mark.parametrize("backend", IMMUTABLE_BACKENDS, ids=backend_id)

# -- example 1: a Clayton-copula sampler filling a 5×3 buffer row by row ------------------

UNIFORMS = np.random.default_rng(7).uniform(0.05, 0.95, (5, 3))
SAMPLES = di.DiffCache(np.zeros((5, 3)))


def clayton_fill(u: Any, tau: Any, w: Any) -> None:
    """Samples of a 3-d Clayton copula with Kendall's tau, by conditional inversion of the
    uniforms w, written into the buffer u one entry at a time."""
    theta = 2 * tau / (1 - tau)
    for i in range(w.shape[0]):
        v = w[i, 0]
        u[i, 0] = v
        acc = v**-theta  # Σ u_j^-θ over the row so far, kept out of the buffer (see docs)
        for k in range(1, w.shape[1]):
            v = ((acc - k + 1) * (w[i, k] ** (-theta / (1 + k * theta)) - 1) + 1) ** (-1 / theta)
            u[i, k] = v
            acc = acc + v**-theta


def clayton_sample(tau: Any, w: Any) -> Any:
    """The sampler with its buffer from a DiffCache."""
    u = di.get_tmp(SAMPLES, tau)
    clayton_fill(u, tau, w)
    return 1.0 * u  # a new array: the buffer itself is reused by the next call


def clayton_reference(tau: complex) -> np.ndarray:
    """The same sampler written functionally (complex-step safe), without a buffer."""
    theta = 2 * tau / (1 - tau)
    rows = []
    for w in UNIFORMS:
        row = [w[0] + 0j]
        for k in range(1, len(w)):
            acc = sum(v**-theta for v in row)
            e = -theta / (1 + k * theta)
            row.append(((acc - k + 1) * (w[k] ** e - 1) + 1) ** (-1 / theta))
        rows.append(row)
    return np.array(rows)


def complex_step(f: Any, x: float) -> np.ndarray:
    h = 1e-30
    return np.imag(f(x + 1j * h)) / h


@mutating
def test_clayton_sampler_derivative_wrt_tau(backend: Any) -> None:
    tau, rtol = 0.4, tolerance(backend, np.float64)
    want = complex_step(clayton_reference, tau)
    assert np.all((np.real(clayton_reference(tau)) > 0) & (np.real(clayton_reference(tau)) < 1))
    w = di.Constant(UNIFORMS)
    value, d = di.value_and_derivative(clayton_sample, backend, tau, w)
    assert_close(value, np.real(clayton_reference(tau)), 1e-14)
    assert_close(d, want, rtol)
    # jacobian of a scalar x: reverse mode pulls back all 15 outputs at once
    prep = di.prepare_jacobian(clayton_sample, backend, tau, w)
    for _ in range(2):
        assert_close(di.jacobian(clayton_sample, backend, tau, w, prep=prep), want, rtol)


def clayton_into(out: Any, tau: Any, w: Any, tmp: Any) -> None:
    """The mutating form, with the sample buffer passed as a di.Cache context."""
    clayton_fill(tmp, tau, w)
    out[...] = tmp


@mutating
def test_clayton_sampler_with_cache_context_and_y(backend: Any) -> None:
    tau = torch.tensor(0.4, dtype=torch.float64) if backend.name == "torch" else 0.4
    y = as_kind(np.zeros((5, 3)), "torch" if backend.name == "torch" else "numpy")
    ctx = (di.Constant(UNIFORMS), di.Cache(np.zeros((5, 3))))
    d = di.derivative(clayton_into, backend, tau, *ctx, y=y)
    assert_close(d, complex_step(clayton_reference, 0.4), tolerance(backend, np.float64))
    assert_close(y, np.real(clayton_reference(0.4)), 1e-14)


# -- example 2: foo(du, u, A, tmp) — tmp = A u in a scratch buffer, du = u + tmp ---------

N = 5
A_MATRIX = np.random.default_rng(3).normal(size=(N, N))
U0 = np.linspace(-1.0, 1.2, N)


def foo(du: Any, u: Any, a: Any, cache: di.DiffCache) -> None:
    """du = u + A u, with A u stored in a buffer from the DiffCache."""
    tmp = di.get_tmp(cache, u)
    tmp[...] = a @ u
    du[...] = u + tmp


def foo_cache(du: Any, u: Any, a: Any, tmp: Any) -> None:
    """The same with the buffer given as a di.Cache context."""
    tmp[...] = a @ u
    du[...] = u + tmp


def foo_out_of_place(u: Any, a: Any, cache: di.DiffCache) -> Any:
    tmp = di.get_tmp(cache, u)
    tmp[...] = a @ u
    return u + tmp


@mutating
@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("form", ["y= DiffCache", "y= Cache", "out-of-place DiffCache"])
def test_foo_jacobian_is_identity_plus_a(backend: Any, kind: str, form: str) -> None:
    u, want = as_kind(U0, kind), np.eye(N) + A_MATRIX
    cache = di.DiffCache(np.zeros(N))
    a = di.Constant(A_MATRIX)
    if form == "y= DiffCache":
        f, ctx, y = foo, (a, di.Constant(cache)), as_kind(np.zeros(N), kind)
    elif form == "y= Cache":
        f, ctx, y = foo_cache, (a, di.Cache(np.zeros(N))), as_kind(np.zeros(N), kind)
    else:
        f, ctx, y = foo_out_of_place, (a, di.Constant(cache)), None
    prep = di.prepare_jacobian(f, backend, u, *ctx, y=y)
    for _ in range(2):
        value, jac = di.value_and_jacobian(f, backend, u, *ctx, prep=prep, y=y)
        assert_close(jac, want, tolerance(backend, np.float64))
        assert_close(value, U0 + A_MATRIX @ U0, 1e-14)
        assert_contract(jac, u, (N, N))


# -- example 3: explicit Euler reusing its state buffers over 100 steps -----------------

STEPS, H = 100, 0.05
B_MATRIX = np.random.default_rng(5).normal(size=(4, 4)) / 2
X0 = np.array([0.3, -0.7, 1.1, 0.2])


def euler_final_sum(x: Any, b: Any, state: di.DiffCache, rate: di.DiffCache) -> Any:
    """Σ u(T) for u' = tanh(B u) − u/2, u(0) = x, by explicit Euler in two reused buffers."""
    xp = di.array_namespace(x)
    u, du = di.get_tmp(state, x), di.get_tmp(rate, x)
    u[...] = x
    for _ in range(STEPS):
        du[...] = xp.tanh(b @ u) - 0.5 * u
        u[...] = u + H * du
    return xp.sum(u)


def euler_gradient_reference(x: np.ndarray) -> np.ndarray:
    """Analytic: ∇ Σu(T) = J_0ᵀ ⋯ J_{T-1}ᵀ 1 with J_k = I + H (diag(1 − tanh²(B u_k)) B − I/2)."""
    u, jacobians = x.copy(), []
    for _ in range(STEPS):
        z = np.tanh(B_MATRIX @ u)
        jacobians.append(np.eye(4) + H * ((1 - z**2)[:, None] * B_MATRIX - 0.5 * np.eye(4)))
        u = u + H * (z - 0.5 * u)
    g = np.ones(4)
    for j in reversed(jacobians):
        g = j.T @ g
    return g


def euler_contexts() -> tuple[Any, ...]:
    return (
        di.Constant(B_MATRIX),
        di.Constant(di.DiffCache(np.zeros(4))),
        di.Constant(di.DiffCache(np.zeros(4))),
    )


@mutating
def test_euler_gradient_wrt_initial_state(backend: Any) -> None:
    want, rtol = euler_gradient_reference(X0), tolerance(backend, np.float64)
    ctx = euler_contexts()
    prep = di.prepare_gradient(euler_final_sum, backend, X0, *ctx)
    for _ in range(2):
        assert_close(di.gradient(euler_final_sum, backend, X0, *ctx, prep=prep), want, rtol)
    t = np.array([1.0, -2.0, 0.5, 0.25])
    assert_close(di.pushforward(euler_final_sum, backend, X0, t, *ctx), want @ t, rtol)


# -- second order: buffers inside nested transforms ----------------------------------------

SQUARES, BUMP = di.DiffCache(np.zeros(4)), di.DiffCache(np.zeros(1))


def energy_via_get_tmp(x: Any) -> Any:
    """Σx² · Σsin x, with x² stored in a DiffCache buffer first."""
    xp = di.array_namespace(x)
    tmp = di.get_tmp(SQUARES, x)
    tmp[...] = x * x
    return xp.sum(tmp) * xp.sum(xp.sin(x))


def bump_via_get_tmp(t: Any) -> Any:
    """t² sin t, with t² stored in a DiffCache buffer first."""
    tmp = di.get_tmp(BUMP, t)
    tmp[0] = t * t
    return tmp[0] * di.array_namespace(t).sin(t)


@mutating
def test_second_order_operators_with_get_tmp(backend: Any) -> None:
    x0 = np.linspace(-0.5, 0.8, 4)
    _, g, h = energy_derivatives(x0)
    rtol = tolerance(backend, np.float64, 2)
    _, grad_, hess = di.value_gradient_and_hessian(energy_via_get_tmp, backend, x0)
    assert_close(grad_, g, tolerance(backend, np.float64))
    assert_close(hess, h, rtol)
    t = np.cos(x0)
    assert_close(di.hvp(energy_via_get_tmp, backend, x0, t), h @ t, rtol)
    want = bump_derivatives(0.8)
    got = di.value_derivative_and_second_derivative(bump_via_get_tmp, backend, 0.8)
    assert_close(got[1], want[1], tolerance(backend, np.float64))
    assert_close(got[2], want[2], rtol)


# -- torch.func transforms, directly ------------------------------------------------------


def test_get_tmp_inside_torch_func_transforms() -> None:
    a, cache = torch.from_numpy(A_MATRIX), di.DiffCache(np.zeros(N))
    u = torch.from_numpy(U0.copy())
    want = np.eye(N) + A_MATRIX

    def f(v: Any) -> Any:
        return foo_out_of_place(v, a, cache)

    assert_close(jacrev(f)(u), want, 1e-14)
    assert_close(jacfwd(f)(u), want, 1e-14)
    batch = torch.from_numpy(np.stack([U0, 2 * U0, -U0]))
    assert_close(vmap(f)(batch), batch.numpy() @ want.T, 1e-14)
    assert_close(vmap(jacrev(f))(batch), np.stack([want] * 3), 1e-14)
    state, rate = di.DiffCache(np.zeros(4)), di.DiffCache(np.zeros(4))
    b = torch.from_numpy(B_MATRIX)
    g = grad(lambda x: euler_final_sum(x, b, state, rate))(torch.from_numpy(X0.copy()))
    assert_close(g, euler_gradient_reference(X0), 1e-13)


def test_torch_func_buffers_are_new_per_call_and_of_the_transform() -> None:
    cache, seen = di.DiffCache(torch.zeros(3)), []

    def f(v: Any) -> Any:
        tmp = di.get_tmp(cache, v)
        seen.append(tmp)
        tmp[...] = v * v
        return tmp.sum()

    x = torch.tensor([1.0, 2.0, 3.0])
    assert_close(grad(f)(x), 2 * x, 0.0)
    assert_close(grad(f)(x), 2 * x, 0.0)
    assert seen[0] is not seen[1]
    assert all(t is not di.get_tmp(cache, x) for t in seen)


# -- reuse ------------------------------------------------------------------------------


def test_numpy_buffers_are_reused_per_dtype() -> None:
    buffer = np.zeros(3)
    cache = di.DiffCache(buffer)
    x = np.ones(3)
    assert di.get_tmp(cache, x) is buffer  # the caller's buffer, when the dtype matches
    assert di.get_tmp(cache, 2 * x) is buffer
    step = di.get_tmp(cache, x + 1e-20j)  # a complex step
    assert step.dtype == np.complex128 and step.shape == (3,)
    assert di.get_tmp(cache, x - 1e-20j) is step
    single = di.get_tmp(cache, x.astype(np.float32))
    assert single.dtype == np.float32 and di.get_tmp(cache, np.float32(1.0)) is single
    assert di.get_tmp(cache, 0.5) is buffer  # Python numbers count as float64 arrays
    assert di.get_tmp(cache, np.arange(3)).dtype == np.float64  # no float dtype: the cache's


def test_torch_eager_buffer_is_reused_and_detached() -> None:
    cache = di.DiffCache(np.zeros(3))
    grads, bufs = [], []
    for scale in (1.0, 2.0):
        x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
        tmp = di.get_tmp(cache, x)
        assert tmp.is_leaf and not tmp.requires_grad and tmp.dtype == torch.float64
        bufs.append(tmp)
        tmp[...] = scale * x * x
        (g,) = torch.autograd.grad(tmp.sum(), x)
        grads.append(g)
    assert bufs[0] is bufs[1]
    assert_close(grads[0], [2.0, 4.0, 6.0], 0.0)
    assert_close(grads[1], [4.0, 8.0, 12.0], 0.0)
    with fwad.dual_level():
        x = fwad.make_dual(torch.ones(3, dtype=torch.float64), torch.full((3,), 2.0).double())
        tmp = di.get_tmp(cache, x)
        assert tmp is bufs[0] and fwad.unpack_dual(tmp).tangent is None
        tmp[...] = 3 * x
        assert_close(fwad.unpack_dual(tmp).tangent, [6.0, 6.0, 6.0], 0.0)
        assert fwad.unpack_dual(di.get_tmp(cache, x)).tangent is None  # detached again
    assert di.get_tmp(cache, torch.ones(3)).dtype == torch.float32


def test_cache_context_buffer_is_allocated_once_per_preparation() -> None:
    seen: dict[str, list[Any]] = {}  # buffers kept alive, so that `is` is meaningful

    def f(x: Any, tmp: Any) -> Any:
        seen.setdefault(str(tmp.dtype), []).append(tmp)
        tmp[...] = x * x
        return 1.0 * tmp

    for backend in ("finitediff", di.AutoFiniteDiff(method="complex"), "torch"):
        seen.clear()
        x = as_kind(U0, "torch" if backend == "torch" else "numpy")
        cache = di.Cache(np.zeros(N))
        prep = di.prepare_jacobian(f, backend, x, cache)
        for _ in range(3):
            assert_close(di.jacobian(f, backend, x, cache, prep=prep), np.diag(2 * U0), 1e-6)
        assert all(b is bufs[0] for bufs in seen.values() for b in bufs), backend
    di.jacobian(f, "finitediff", U0, di.Cache(U0))  # a Cache never overwrites its value
    assert_close(U0, np.linspace(-1.0, 1.2, N), 0.0)


def test_output_of_a_mutating_f_is_new_per_call() -> None:
    """fn returns y, so reusing it would make f(x + h) − f(x − h) a buffer minus itself."""
    outputs: list[Any] = []

    def f(y: Any, x: Any) -> None:
        outputs.append(y)
        y[...] = x * x

    jac = di.jacobian(f, "finitediff", U0, y=np.zeros(N))
    assert_close(jac, np.diag(2 * U0), 1e-6)
    assert len({id(y) for y in outputs}) == len(outputs) == 2 * N + 2  # + the template


# -- shape rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_batched_like_gets_a_batched_buffer(kind: str) -> None:
    cache = di.DiffCache(np.zeros(3), like_ndim=1)
    assert tuple(di.get_tmp(cache, as_kind(np.ones(3), kind)).shape) == (3,)
    assert tuple(di.get_tmp(cache, as_kind(np.ones((4, 3)), kind)).shape) == (4, 3)
    assert tuple(di.get_tmp(cache, as_kind(np.ones((2, 5, 3)), kind)).shape) == (2, 5, 3)
    assert tuple(di.get_tmp(cache, as_kind(np.ones(()), kind)).shape) == (3,)
    # without like_ndim the buffer always has the cache's shape (a scalar accumulator, ...)
    plain = di.DiffCache(np.zeros(()))
    assert tuple(di.get_tmp(plain, as_kind(np.ones((4, 3)), kind)).shape) == ()


def test_batched_foo_under_numpy_and_vmap() -> None:
    cache = di.DiffCache(np.zeros(N), like_ndim=1)
    batch = np.stack([U0, 2 * U0])

    def foo_rows(u: Any, a: Any) -> Any:  # u of shape (..., N)
        tmp = di.get_tmp(cache, u)
        tmp[...] = u @ a.T
        return u + tmp

    want = batch @ (np.eye(N) + A_MATRIX).T
    assert_close(foo_rows(batch, A_MATRIX), want, 1e-14)
    a = torch.from_numpy(A_MATRIX)
    assert_close(foo_rows(torch.from_numpy(batch), a), want, 1e-14)
    assert_close(vmap(foo_rows, in_dims=(0, None))(torch.from_numpy(batch), a), want, 1e-14)


# -- immutable arrays and bad arguments ---------------------------------------------------

WAY_OUT = r"immutable.*functional.*di\.AutoTorch\(\) or di\.AutoFiniteDiff\(\)"


def test_jax_refuses_at_once_and_names_the_ways_out() -> None:
    cache = di.DiffCache(np.zeros(3))
    with pytest.raises(di.UnsupportedError, match="JAX array: JAX arrays are " + WAY_OUT):
        di.get_tmp(cache, jnp.ones(3))
    with pytest.raises(di.UnsupportedError, match="JAX tracer"):
        jax.grad(lambda x: di.get_tmp(cache, x).sum())(jnp.ones(3))


def test_autograd_refuses_boxes() -> None:
    cache = di.DiffCache(np.zeros(3))
    with pytest.raises(di.UnsupportedError, match="autograd box: HIPS autograd arrays are"):
        autograd.grad(lambda x: di.get_tmp(cache, x).sum())(np.ones(3))


@immutable
def test_immutable_backends_refuse_code_using_get_tmp(backend: Any) -> None:
    with pytest.raises(di.UnsupportedError, match=WAY_OUT):
        di.gradient(euler_final_sum, backend, X0, *euler_contexts())


def test_bad_arguments() -> None:
    with pytest.raises(di.InvalidArgumentError, match=r"needs a di\.DiffCache"):
        di.get_tmp(np.zeros(3), np.ones(3))
    with pytest.raises(di.InvalidArgumentError, match=r"di\.DiffCache\(np\.zeros\(n\)\)"):
        di.DiffCache([0.0, 0.0])
    with pytest.raises(di.InvalidArgumentError, match="like_ndim"):
        di.DiffCache(np.zeros(3), like_ndim=-1)
    with pytest.raises(di.InvalidArgumentError, match="`like` to be an array"):
        di.get_tmp(di.DiffCache(np.zeros(3)), "x")
    assert repr(di.DiffCache(np.zeros((2, 3)), like_ndim=1)) == (
        "DiffCache(shape=(2, 3), dtype=float64, like_ndim=1)"
    )
