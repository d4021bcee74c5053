"""JAX side of DifferentiateWith: three primitives whose work is done on the host.

``value_p(x, *arrays)`` evaluates f, ``push_p(x, t, *arrays)`` computes J·t and
``pull_p(x, u, *arrays)`` computes uᵀ·J, each through ``jax.pure_callback`` into the inner
backend. The JVP of ``value_p`` is ``push_p`` (linear in t), and the transposes of
``push_p`` and ``pull_p`` are each other, so jax.jvp, jax.grad, jax.vjp, jacfwd and jacrev
all work, under jax.jit too. Batching: a batch of tangents for one x is one batched inner
call; any other batch is a ``lax.map`` over host calls. Derivatives of second order
(jax.hessian of g) are refused with an error naming SecondOrder/finite differences.

An exception raised in f on the host reaches JAX's caller as a ``JaxRuntimeError``; the
host functions record it (``jax_host_errors``), so that it is raised as itself where the
primitives are evaluated without ``jax.jit``, and :func:`original_error` finds it from
JAX's error elsewhere.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from diffinterface._bridges.jax_host_errors import original_error, raised_as_itself, recorded
from diffinterface._differentiate_with import InnerCalls
from diffinterface._errors import InvalidArgumentError, UnsupportedError

__all__ = ["call", "original_error"]

_ONLY_X = (
    "A di.DifferentiateWith function is differentiated only with respect to its first "
    "argument x, but argument #{i} is being differentiated here too. Pass the "
    "differentiated quantities in x (concatenate them), or hold argument #{i} constant "
    "with jax.lax.stop_gradient."
)
_SECOND_ORDER = (
    "Second-order differentiation through a di.DifferentiateWith function is not "
    "supported (its derivative is computed outside JAX). Compute second derivatives of "
    "that function with a di operator (di.hessian, di.hvp) on the inner backend instead."
)


class _Layout:
    """The arguments after x: JAX arrays become operands of the primitives; everything else
    (NumPy arrays, numbers, strings) is a static parameter, so that a float64 NumPy
    constant is never cast to float32 by JAX. Static NumPy arrays compare by identity."""

    __slots__ = ("shapes", "statics")

    def __init__(self, args: tuple[Any, ...]) -> None:
        statics: list[tuple[Any] | None] = []
        shapes: list[Any] = []
        for i, a in enumerate(args):
            if isinstance(a, jax.Array):
                statics.append(None)
                shapes.append(None)
            elif isinstance(a, np.ndarray):
                statics.append((_ByIdentity(a),))
                shapes.append((a.shape, a.dtype))
            else:
                try:
                    hash(a)
                except TypeError:
                    raise InvalidArgumentError(
                        f"Argument #{i + 1} of a di.DifferentiateWith function called from "
                        f"JAX is a {type(a).__name__}, which is neither an array nor hashable. "
                        "Pass arrays, numbers, strings or tuples of them."
                    ) from None
                statics.append((a,))
                shapes.append((a,))
        self.statics = tuple(statics)
        #: what f's output shape may depend on (NumPy constants by shape, not identity)
        self.shapes = tuple(shapes)

    def __hash__(self) -> int:
        return hash(self.statics)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Layout) and self.statics == other.statics

    def merge(self, arrays: tuple[Any, ...]) -> tuple[Any, ...]:
        """All arguments after x, in order, from the operands' values."""
        it = iter(arrays)
        return tuple(next(it) if s is None else _unwrap(s[0]) for s in self.statics)


class _ByIdentity:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.value is self.value


def _unwrap(static: Any) -> Any:
    return static.value if isinstance(static, _ByIdentity) else static


def call(inner: InnerCalls, x: Any, args: tuple[Any, ...]) -> Any:
    """g(x, *args) for JAX arrays or tracers."""
    layout = _Layout(args)
    arrays = tuple(a for a in args if isinstance(a, jax.Array))
    return value_p.bind(x, *arrays, inner=inner, layout=layout)


# -- host functions (NumPy in, NumPy out) ---------------------------------------------------


def _host_value(inner: InnerCalls, layout: _Layout, dtype: Any) -> Any:
    def run(x: np.ndarray, *arrays: np.ndarray) -> np.ndarray:
        y = inner.value(np.asarray(x), layout.merge(tuple(np.asarray(a) for a in arrays)))
        return np.asarray(y, dtype)

    return recorded(run)


def _host_linear(
    inner: InnerCalls, layout: _Layout, operator: str, batched: bool, dtype: Any
) -> Any:
    method = getattr(inner, operator)

    def run(x: np.ndarray, t: np.ndarray, *arrays: np.ndarray) -> np.ndarray:
        args = layout.merge(tuple(np.asarray(a) for a in arrays))
        x, t = np.asarray(x), np.asarray(t)
        if batched:
            return np.stack([np.asarray(r, dtype) for r in method(x, tuple(t), args)])
        return np.asarray(method(x, t, args), dtype)

    return recorded(run)


# -- shapes -----------------------------------------------------------------------------------


def _output_spec(inner: InnerCalls, layout: _Layout, x: Any, arrays: tuple[Any, ...]) -> Any:
    """Shape and dtype of f(x): f evaluated once per signature, at ones of x's shape."""
    key = ("jax output", layout.shapes, _spec(x), tuple(_spec(a) for a in arrays))
    found = inner.memo.get(key)
    if found is None:
        ones = [np.ones(a.shape, a.dtype) for a in (x, *arrays)]
        with np.errstate(all="ignore"):
            y = inner.value(ones[0], layout.merge(tuple(ones[1:])))
        found = inner.memo[key] = (np.shape(y), np.result_type(y))
    shape, dtype = found
    return jax.ShapeDtypeStruct(shape, jax.dtypes.canonicalize_dtype(dtype))


def _spec(a: Any) -> tuple[Any, ...]:
    return (tuple(a.shape), np.dtype(a.dtype))


def _linear_spec(
    operator: str, inner: InnerCalls, layout: _Layout, batched: bool, x: Any, t: Any, arrays: Any
) -> jax.ShapeDtypeStruct:
    if operator == "pushforward":
        y = _output_spec(inner, layout, x, arrays)
        shape, dtype = y.shape, y.dtype
    else:
        shape, dtype = tuple(x.shape), x.dtype
    if batched:
        shape = (t.shape[0], *shape)
    return jax.ShapeDtypeStruct(shape, dtype)


# -- the primitives ---------------------------------------------------------------------------


def _value_impl(x: Any, *arrays: Any, inner: InnerCalls, layout: _Layout) -> Any:
    spec = _output_spec(inner, layout, x, arrays)
    host = _host_value(inner, layout, spec.dtype)
    with raised_as_itself():
        return jax.pure_callback(host, spec, x, *arrays, vmap_method="sequential")


def _value_abstract(x: Any, *arrays: Any, inner: InnerCalls, layout: _Layout) -> Any:
    spec = _output_spec(inner, layout, x, arrays)
    return jax.core.ShapedArray(spec.shape, spec.dtype)


def _linear_impl(operator: str) -> Any:
    def impl(
        x: Any, t: Any, *arrays: Any, inner: InnerCalls, layout: _Layout, batched: bool
    ) -> Any:
        spec = _linear_spec(operator, inner, layout, batched, x, t, arrays)
        host = _host_linear(inner, layout, operator, batched, spec.dtype)
        with raised_as_itself():
            return jax.pure_callback(host, spec, x, t, *arrays, vmap_method="sequential")

    return impl


def _linear_abstract(operator: str) -> Any:
    def abstract(
        x: Any, t: Any, *arrays: Any, inner: InnerCalls, layout: _Layout, batched: bool
    ) -> Any:
        spec = _linear_spec(operator, inner, layout, batched, x, t, arrays)
        return jax.core.ShapedArray(spec.shape, spec.dtype)

    return abstract


def _primitive(name: str, impl: Any, abstract: Any) -> Primitive:
    p = Primitive(name)
    p.def_impl(impl)
    p.def_abstract_eval(abstract)
    mlir.register_lowering(p, mlir.lower_fun(impl, multiple_results=False))
    return p


value_p = _primitive("di_differentiate_with", _value_impl, _value_abstract)
push_p = _primitive(
    "di_differentiate_with_pushforward",
    _linear_impl("pushforward"),
    _linear_abstract("pushforward"),
)
pull_p = _primitive(
    "di_differentiate_with_pullback", _linear_impl("pullback"), _linear_abstract("pullback")
)


# -- differentiation rules --------------------------------------------------------------------


def _check_only_x(tangents: Any) -> None:
    for i, t in enumerate(tangents):
        if type(t) is not ad.Zero:
            raise UnsupportedError(_ONLY_X.format(i=i + 1))


def _value_jvp(primals: Any, tangents: Any, *, inner: InnerCalls, layout: _Layout) -> Any:
    x, *arrays = primals
    _check_only_x(tangents[1:])
    y = value_p.bind(x, *arrays, inner=inner, layout=layout)
    tx = ad.instantiate_zeros(tangents[0])
    return y, push_p.bind(x, tx, *arrays, inner=inner, layout=layout, batched=False)


def _linear_jvp(p: Primitive) -> Any:
    def jvp(primals: Any, tangents: Any, **params: Any) -> Any:
        x, t, *arrays = primals
        if type(tangents[0]) is not ad.Zero:
            raise UnsupportedError(_SECOND_ORDER)
        _check_only_x(tangents[2:])
        out = p.bind(x, t, *arrays, **params)
        return out, p.bind(x, ad.instantiate_zeros(tangents[1]), *arrays, **params)

    return jvp


def _transpose_into(other: Primitive) -> Any:
    """The transpose of push_p is pull_p and vice versa (both linear in t only)."""

    def transpose(ct: Any, x: Any, t: Any, *arrays: Any, **params: Any) -> Any:
        if ad.is_undefined_primal(x) or any(ad.is_undefined_primal(a) for a in arrays):
            raise UnsupportedError(_SECOND_ORDER)
        if type(ct) is ad.Zero:
            return [None, None, *(None for _ in arrays)]
        return [None, other.bind(x, ct, *arrays, **params), *(None for _ in arrays)]

    return transpose


ad.primitive_jvps[value_p] = _value_jvp
ad.primitive_jvps[push_p] = _linear_jvp(push_p)
ad.primitive_jvps[pull_p] = _linear_jvp(pull_p)
ad.primitive_transposes[push_p] = _transpose_into(pull_p)
ad.primitive_transposes[pull_p] = _transpose_into(push_p)


# -- batching ---------------------------------------------------------------------------------


def _batch(p: Primitive) -> Any:
    def rule(args: Any, dims: Any, **params: Any) -> Any:
        if p is not value_p and not params["batched"] and _only_tangent_batched(dims):
            # a batch of tangents at one x (jacfwd, jacrev): one batched inner call
            t = jnp.moveaxis(args[1], dims[1], 0)
            return p.bind(args[0], t, *args[2:], **{**params, "batched": True}), 0
        mapped = [jnp.moveaxis(a, d, 0) for a, d in zip(args, dims, strict=True) if d is not None]

        def one(slices: Any) -> Any:
            it = iter(slices)
            full = [next(it) if d is not None else a for a, d in zip(args, dims, strict=True)]
            return p.bind(*full, **params)

        with raised_as_itself():
            return jax.lax.map(one, mapped), 0

    return rule


def _only_tangent_batched(dims: Any) -> bool:
    return dims[1] is not None and all(d is None for i, d in enumerate(dims) if i != 1)


for _p in (value_p, push_p, pull_p):
    batching.primitive_batchers[_p] = _batch(_p)
