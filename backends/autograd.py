"""HIPS autograd adapter: ``make_vjp`` (reverse) and ``make_jvp`` (forward) on NumPy arrays.

autograd has no vmap: a batch of cotangents reuses one forward pass (one ``make_vjp``) and
loops over the backward passes; a batch of tangents loops over ``make_jvp``, rerunning f
each time. So Jacobians are reverse mode unless f has more outputs than inputs, and the
Hessian is reverse over reverse (one forward pass of the gradient, one backward pass per
row); HVPs are forward over reverse. autograd's boxes cannot be written into NumPy arrays,
so mutating functions are refused.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from autograd import grad, make_jvp, make_vjp
from autograd.builtins import tuple as atuple
from autograd.differential_operators import value_and_grad

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._prep import Problem
from diffinterface._trees import Structure

__all__ = ["AutogradAdapter"]


class AutogradAdapter(Adapter):
    """Adapter for :class:`~diffinterface.AutoAutograd`."""

    native_kind: ClassVar[str] = "numpy"
    accepted_kinds: ClassVar[frozenset[str]] = frozenset({"numpy"})
    supports_mutation: ClassVar[bool] = False

    def stack(self, arrays: list[Any]) -> Any:
        return np.stack(arrays)

    def eye(self, n: int, like: Any) -> Any:
        return np.eye(n, dtype=like.dtype)

    def ones(self, template: Any, like: Any) -> Any:
        return np.ones(np.shape(template), dtype=template.dtype)

    def to_native(self, a: Any) -> Any:
        if hasattr(a, "detach"):  # a torch tensor
            return a.detach().cpu().numpy()
        return np.array(a)

    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        def push(x: Any, t: Any, *consts: Any) -> Any:
            y, ty = make_jvp(lambda v: fn(v, *consts))(x)(t)
            return y, _like(ty, y)

        return push

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        def pull(x: Any, u: Any, *consts: Any) -> Any:
            vjp, y = make_vjp(lambda v: fn(v, *consts))(x)
            return y, _like(vjp(u), x)

        return pull

    def pullback_batch(self, fn: Fn, mutates: bool) -> Kernel:
        def pull_batch(x: Any, us: Any, *consts: Any) -> Any:
            vjp, y = make_vjp(lambda v: fn(v, *consts))(x)
            return y, _stack([_like(vjp(u), x) for u in us], x)

        return pull_batch

    def structured_gradient(self, fn: Fn, p: Problem, tree: Structure) -> Kernel:
        """The gradient of ``fn(x, *consts)`` for x a structure of arrays, in x's
        structure: autograd records no joining of the leaves into a vector and no cutting
        it back."""
        one = self.ones(p.y, p.x)

        def gradient(x: Any, *consts: Any) -> Any:
            vjp, y = make_vjp(lambda v: fn(v, *consts))(x)
            return y, _like_x(tree, vjp(one), x)

        return gradient

    def structured_hvp(self, fn: Fn, p: Problem, tree: Structure) -> Kernel:
        """``(∇f, H·t)`` for x and t structures of arrays (t a tuple of them for a batch),
        in x's structure (a tuple of them for a batch): forward over reverse with respect
        to the structure itself, one ``make_jvp`` of the gradient per tangent (reverse over
        reverse was 15 % slower on the autoencoder weights)."""
        batch = p.batch

        def gradient_and_hvp(x: Any, t: Any, *consts: Any) -> Any:
            push = make_jvp(grad(lambda v: fn(v, *consts)))(x)
            if batch is None:
                g, hv = push(t)
                return _like_x(tree, g, x), _like_x(tree, hv, x)
            pairs = [push(ti) for ti in t]
            hvs = tuple(_like_x(tree, hv, x) for _, hv in pairs)
            return _like_x(tree, pairs[0][0], x), hvs

        return gradient_and_hvp

    def native_hessian(self, fn: Fn, p: Problem) -> Kernel:
        """Reverse over reverse, f traced once: one forward pass of the value and gradient,
        one backward pass per row."""
        shape = np.shape(p.x)
        n = int(np.prod(shape))
        basis = np.eye(n, dtype=p.x.dtype).reshape((n, *shape))

        def hessian(x: Any, *consts: Any) -> Any:
            def value_and_gradient(v: Any) -> Any:
                y, g = value_and_grad(lambda w: fn(w, *consts))(v)
                return atuple((y, _like(g, v)))

            vjp, (y, g) = make_vjp(value_and_gradient)(x)
            no_value = np.zeros_like(y)
            rows = _stack([_like(vjp((no_value, e)), x) for e in basis], x)
            return y, g, rows.reshape(shape + shape)

        return hessian

    def native_second_derivative(self, fn: Fn, p: Problem) -> Kernel:
        """Forward over forward, f traced once: the value and first derivative come out of
        the same pass as the second."""
        one = np.ones(np.shape(p.x), dtype=p.x.dtype)

        def second_derivative(x: Any, *consts: Any) -> Any:
            def value_and_derivative(v: Any) -> Any:
                y, d = make_jvp(lambda w: fn(w, *consts))(v)(one)
                return atuple((y, _like(d, y)))

            (y, d), (_, dd) = make_jvp(value_and_derivative)(x)(one)
            return y, d, _like(dd, y)

        return second_derivative


def _stack(rows: list[Any], x: Any) -> Any:
    """The rows stacked on a new first axis; an empty stack of x-shaped rows for no rows
    (an empty x or f(x))."""
    return np.stack(rows) if rows else np.zeros((0, *np.shape(x)), dtype=np.result_type(x))


def _like_x(tree: Structure, d: Any, x: Any) -> Any:
    """autograd's result d in x's structure, each leaf shaped like x's (see :func:`_like`)."""
    leaves, refs = tree.leaves(d), tree.leaves(x)
    assert leaves is not None and refs is not None  # x was checked; autograd keeps its structure
    return tree.build([_like(a, r) for a, r in zip(leaves, refs, strict=True)])


def _like(d: Any, ref: Any) -> Any:
    """autograd returns a scalar 0.0 where f does not depend on x: give it ref's shape."""
    if type(d) is np.ndarray and type(ref) is np.ndarray and d.shape == ref.shape:
        return d  # the common case, on every call
    if getattr(d, "shape", None) == np.shape(ref):
        return d
    return np.broadcast_to(np.asarray(d, dtype=np.result_type(ref)), np.shape(ref)).copy()
