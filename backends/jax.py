"""JAX adapter: jvp/vjp under vmap, every kernel compiled ahead of time with ``jax.jit``.

Kernels are lowered and compiled once at preparation (``jit(...).lower(...).compile()``), so
a prepared call never retraces. When JAX's x64 mode is off and an argument is float64, the
kernel is traced, compiled and run inside ``jax.enable_x64(True)``: float64 in means float64
accuracy out, never a silent float32 downcast.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import jax
import numpy as np

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._operators.hvp import gradient_function
from diffinterface._prep import Problem
from diffinterface._trees import Structure

__all__ = ["JaxAdapter"]


def _needs_x64(args: tuple[Any, ...]) -> bool:
    if getattr(jax.config, "jax_enable_x64"):  # noqa: B009 (not in jax's stubs)
        return False
    leaves = jax.tree_util.tree_leaves(args)
    return any(getattr(a, "dtype", None) == np.float64 for a in leaves)


def _cpp_call(compiled: Any) -> Kernel:
    """The C++ callable that ``compiled.__call__`` makes on its first call and forwards
    every call to: the same checks of the arguments (structure, shapes, dtypes, a
    TypeError for others) without the Python forwarding layer, ≈ 0.5 µs of a 5 µs call.
    Private JAX API (``Compiled._executable.create_cpp_call``, jax 0.10), so ``compiled``
    itself where it is missing or gives no callable."""
    make = getattr(getattr(compiled, "_executable", None), "create_cpp_call", None)
    params = getattr(compiled, "_params", None)
    if make is None or params is None:
        return compiled
    try:
        call = make(params)
    except Exception:  # another jax's signature: the public call
        return compiled
    return compiled if call is None else call


class JaxAdapter(Adapter):
    """Adapter for :class:`~diffinterface.AutoJAX`."""

    native_kind: ClassVar[str] = "jax"
    accepted_kinds: ClassVar[frozenset[str]] = frozenset({"numpy", "jax"})
    supports_mutation: ClassVar[bool] = False
    compiles: ClassVar[bool] = True

    # Arrays made outside the compiled kernel stay NumPy: jnp would downcast float64 when
    # x64 is off, and a NumPy argument costs a compiled JAX function nothing extra.
    def stack(self, arrays: list[Any]) -> Any:
        return np.stack([np.asarray(a) for a in arrays])

    def eye(self, n: int, like: Any) -> Any:
        # Called inside the traced kernel: jnp.eye is an op of the compiled program, where
        # np.eye would be baked in as an n×n constant (800 MB at n = 10000).
        return jax.numpy.eye(n, dtype=like.dtype)

    def ones(self, template: Any, like: Any) -> Any:
        return np.ones(template.shape, dtype=template.dtype)

    def to_native(self, a: Any) -> Any:
        if hasattr(a, "detach"):  # a torch tensor
            return a.detach().cpu().numpy()
        return a

    def output_template(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        if _needs_x64((x, *consts)):
            with jax.enable_x64(True):
                return jax.eval_shape(fn, x, *consts)
        return jax.eval_shape(fn, x, *consts)

    def evaluate(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        if _needs_x64((x, *consts)):
            with jax.enable_x64(True):
                return fn(x, *consts)
        return fn(x, *consts)

    def compile(self, kernel: Kernel, example_args: tuple[Any, ...]) -> Kernel:
        if not _needs_x64(example_args):
            return _cpp_call(jax.jit(kernel).lower(*example_args).compile())
        with jax.enable_x64(True):
            compiled64 = _cpp_call(jax.jit(kernel).lower(*example_args).compile())
        if all(isinstance(a, jax.Array) for a in jax.tree_util.tree_leaves(example_args)):
            # JAX arrays keep their float64 outside x64 mode: no mode switch per call. A
            # preparation only accepts arguments of the kinds it was made for.
            return compiled64

        def run_x64(*args: Any) -> Any:
            with jax.enable_x64(True):
                return compiled64(*args)

        return run_x64

    # -- primitives -------------------------------------------------------------------
    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        def push(x: Any, t: Any, *consts: Any) -> Any:
            return jax.jvp(lambda v: fn(v, *consts), (x,), (t,))

        return push

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        def pull(x: Any, u: Any, *consts: Any) -> Any:
            y, vjp = jax.vjp(lambda v: fn(v, *consts), x)
            return y, vjp(u)[0]

        return pull

    def pushforward_batch(self, fn: Fn, mutates: bool) -> Kernel:
        push = self.pushforward(fn, mutates)

        def push_batch(x: Any, ts: Any, *consts: Any) -> Any:
            return jax.vmap(lambda t: push(x, t, *consts), out_axes=(None, 0))(ts)

        return push_batch

    def pullback_batch(self, fn: Fn, mutates: bool) -> Kernel:
        def pull_batch(x: Any, us: Any, *consts: Any) -> Any:
            y, vjp = jax.vjp(lambda v: fn(v, *consts), x)
            return y, jax.vmap(lambda u: vjp(u)[0])(us)

        return pull_batch

    # -- faster operators ---------------------------------------------------------------
    def native_hessian(self, fn: Fn, p: Problem) -> Kernel:
        """The generic Hessian (a vmapped batch of pushforwards of the gradient) with the
        batch laid out along the last axis, as ``jax.hessian`` does: the compiled code is
        ≈ 12 % faster than with the batch stacked first (n = 100)."""
        grad = gradient_function(self, fn, p)
        shape = tuple(p.x.shape)
        n = math.prod(shape)

        def kernel(x: Any, *consts: Any) -> Any:
            basis = jax.numpy.eye(n, dtype=x.dtype).reshape((n, *shape))

            def column(t: Any) -> Any:
                return jax.jvp(lambda v: grad(v, *consts), (x,), (t,))

            g, h = jax.vmap(column, out_axes=(None, -1))(basis)
            return fn(x, *consts), g, h.reshape(shape + shape)

        return kernel

    def structured_gradient(self, fn: Fn, p: Problem, tree: Structure) -> Kernel:
        """The gradient of ``fn(x, *consts)`` for x a structure of arrays, in x's
        structure, as ``jax.grad`` computes it: the compiled code has no joining of the
        leaves into one vector and cutting it back."""

        def gradient(x: Any, *consts: Any) -> Any:
            y, vjp = jax.vjp(lambda v: fn(v, *consts), x)
            return y, vjp(jax.numpy.ones_like(y))[0]

        return gradient
