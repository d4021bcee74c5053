"""JAX side of DifferentiateWith: three primitives whose work is done on the host.

g's JAX arrays are the primitives' operands (the other arguments are static, see
:mod:`~diffinterface._bridges.jax_host`). ``value_p(*operands)`` evaluates f,
``push_p(*operands, *tangents)`` computes Σ ∂f/∂argᵢ·tᵢ over the operands that have a
tangent ("active": their positions are a parameter), and ``pull_p(*operands, u)`` computes
uᵀ·∂f/∂argᵢ for each active operand (one result each), each through ``jax.pure_callback``
into one call of the inner backend. The JVP of ``value_p`` is ``push_p`` over the operands
whose tangent is not a symbolic zero (constants cost nothing), and the transposes of
``push_p`` and ``pull_p`` are each other, so jax.jvp, jax.grad (also with argnums),
jax.vjp, jacfwd and jacrev all work, under jax.jit too. Batching: a batch of tangents at
one point is one batched inner call; any other batch is a ``lax.map`` over host calls.
Derivatives of second order (jax.hessian of g) are refused with an error naming
SecondOrder/finite differences.

An exception raised in f on the host reaches JAX's caller as a ``JaxRuntimeError``; the
host functions record it (``jax_host_errors``), so that it is raised as itself where the
primitives are evaluated without ``jax.jit``, and :func:`original_error` finds it from
JAX's error elsewhere.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from diffinterface._bridges.jax_host import (
    Layout,
    host_linear,
    host_value,
    linear_specs,
    output_spec,
)
from diffinterface._bridges.jax_host_errors import original_error, raised_as_itself
from diffinterface._errors import UnsupportedError
from diffinterface._inner_calls import InnerCalls

__all__ = ["call", "original_error"]

_SECOND_ORDER = (
    "Second-order differentiation through a di.DifferentiateWith function is not "
    "supported (its derivative is computed outside JAX). Compute second derivatives of "
    "that function with a di operator (di.hessian, di.hvp) on the inner backend instead."
)


def call(inner: InnerCalls, arguments: tuple[Any, ...]) -> Any:
    """g(*arguments) where some arguments are JAX arrays or tracers."""
    layout = Layout(arguments)
    operands = tuple(arguments[i] for i in layout.positions)
    return value_p.bind(*operands, inner=inner, layout=layout)


# -- the primitives ---------------------------------------------------------------------------


def _value_impl(*operands: Any, inner: InnerCalls, layout: Layout) -> Any:
    spec = output_spec(inner, layout, operands)
    host = host_value(inner, layout, spec.dtype)
    with raised_as_itself():
        return jax.pure_callback(host, spec, *operands, vmap_method="sequential")


def _value_abstract(*operands: Any, inner: InnerCalls, layout: Layout) -> Any:
    spec = output_spec(inner, layout, operands)
    return jax.core.ShapedArray(spec.shape, spec.dtype)


def _linear_impl(operator: str) -> Any:
    def impl(*args: Any, inner: InnerCalls, layout: Layout, active: Any, batched: bool) -> Any:
        operands, ts = _split(args, layout)
        spec = linear_specs(operator, inner, layout, active, batched, operands, ts[0])
        host = host_linear(inner, layout, operator, active, batched, spec)
        with raised_as_itself():
            return jax.pure_callback(host, spec, *args, vmap_method="sequential")

    return impl


def _linear_abstract(operator: str) -> Any:
    def abstract(*args: Any, inner: InnerCalls, layout: Layout, active: Any, batched: bool) -> Any:
        operands, ts = _split(args, layout)
        spec = linear_specs(operator, inner, layout, active, batched, operands, ts[0])
        shaped = [jax.core.ShapedArray(s.shape, s.dtype) for s in _listed(spec)]
        return shaped if isinstance(spec, list) else shaped[0]

    return abstract


def _split(args: tuple[Any, ...], layout: Layout) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A linear primitive's inputs: the operands, then the tangents (or the cotangent)."""
    n = len(layout.positions)
    return tuple(args[:n]), tuple(args[n:])


def _listed(spec: Any) -> list[Any]:
    return spec if isinstance(spec, list) else [spec]


def _primitive(name: str, impl: Any, abstract: Any, multiple_results: bool = False) -> Primitive:
    p = Primitive(name)
    p.multiple_results = multiple_results
    p.def_impl(impl)
    p.def_abstract_eval(abstract)
    mlir.register_lowering(p, mlir.lower_fun(impl, multiple_results=multiple_results))
    return p


value_p = _primitive("di_differentiate_with", _value_impl, _value_abstract)
push_p = _primitive(
    "di_differentiate_with_pushforward",
    _linear_impl("pushforward"),
    _linear_abstract("pushforward"),
)
pull_p = _primitive(
    "di_differentiate_with_pullback",
    _linear_impl("pullback"),
    _linear_abstract("pullback"),
    multiple_results=True,
)


# -- differentiation rules --------------------------------------------------------------------


def _nonzero(tangents: Any) -> tuple[int, ...]:
    return tuple(j for j, t in enumerate(tangents) if type(t) is not ad.Zero)


def _value_jvp(primals: Any, tangents: Any, *, inner: InnerCalls, layout: Layout) -> Any:
    y = value_p.bind(*primals, inner=inner, layout=layout)
    active = _nonzero(tangents)  # not empty: JAX calls a JVP rule only for a nonzero tangent
    ts = (tangents[j] for j in active)
    return y, push_p.bind(*primals, *ts, inner=inner, layout=layout, active=active, batched=False)


def _linear_jvp(p: Primitive) -> Any:
    """A linear primitive's JVP: linear in its tangents, refused in its operands."""

    def jvp(primals: Any, tangents: Any, **params: Any) -> Any:
        n = len(params["layout"].positions)
        if _nonzero(tangents[:n]):
            raise UnsupportedError(_SECOND_ORDER)
        out = p.bind(*primals, **params)
        ts = [ad.instantiate_zeros(t) for t in tangents[n:]]
        return out, p.bind(*primals[:n], *ts, **params)

    return jvp


def _push_transpose(ct: Any, *args: Any, layout: Layout, active: Any, **params: Any) -> Any:
    """The tangents' cotangents of push_p: one pull_p over the tangents being transposed."""
    operands, ts = _split(args, layout)
    if any(map(ad.is_undefined_primal, operands)):
        raise UnsupportedError(_SECOND_ORDER)
    which = tuple(j for j, t in enumerate(ts) if ad.is_undefined_primal(t))
    result: list[Any] = [None] * len(args)
    if type(ct) is ad.Zero or not which:
        return result
    sub = tuple(active[j] for j in which)
    cts = pull_p.bind(*operands, ct, layout=layout, active=sub, **params)
    for j, c in zip(which, cts, strict=True):
        result[len(operands) + j] = c
    return result


def _pull_transpose(cts: Any, *args: Any, layout: Layout, active: Any, **params: Any) -> Any:
    """The cotangent's cotangent of pull_p: one push_p over its nonzero cotangents."""
    operands, (u,) = _split(args, layout)
    if any(map(ad.is_undefined_primal, operands)):
        raise UnsupportedError(_SECOND_ORDER)
    nonzero = _nonzero(cts)
    if not ad.is_undefined_primal(u) or not nonzero:
        return [None] * len(args)
    sub = tuple(active[j] for j in nonzero)
    ct_u = push_p.bind(*operands, *(cts[j] for j in nonzero), layout=layout, active=sub, **params)
    return [*(None for _ in operands), ct_u]


ad.primitive_jvps[value_p] = _value_jvp
ad.primitive_jvps[push_p] = _linear_jvp(push_p)
ad.primitive_jvps[pull_p] = _linear_jvp(pull_p)
ad.primitive_transposes[push_p] = _push_transpose
ad.primitive_transposes[pull_p] = _pull_transpose


# -- batching ---------------------------------------------------------------------------------


def _batch(p: Primitive) -> Any:
    def rule(args: Any, dims: Any, **params: Any) -> Any:
        n = len(params["layout"].positions)
        if p is not value_p and not params["batched"] and _only_tangents_batched(dims, n):
            # a batch of tangents at one point (jacfwd, jacrev): one batched inner call
            size = next(a.shape[d] for a, d in zip(args, dims, strict=True) if d is not None)
            ts = [
                jnp.broadcast_to(t, (size, *t.shape)) if d is None else jnp.moveaxis(t, d, 0)
                for t, d in zip(args[n:], dims[n:], strict=True)
            ]
            out = p.bind(*args[:n], *ts, **{**params, "batched": True})
            return out, _dims(p, out)
        mapped = [jnp.moveaxis(a, d, 0) for a, d in zip(args, dims, strict=True) if d is not None]

        def one(slices: Any) -> Any:
            it = iter(slices)
            full = [next(it) if d is not None else a for a, d in zip(args, dims, strict=True)]
            return p.bind(*full, **params)

        with raised_as_itself():
            out = jax.lax.map(one, mapped)
        return out, _dims(p, out)

    return rule


def _dims(p: Primitive, out: Any) -> Any:
    return [0] * len(out) if p.multiple_results else 0


def _only_tangents_batched(dims: Any, n: int) -> bool:
    return all(d is None for d in dims[:n]) and any(d is not None for d in dims[n:])


for _p in (value_p, push_p, pull_p):
    batching.primitive_batchers[_p] = _batch(_p)
