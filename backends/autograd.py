"""HIPS autograd adapter: ``make_vjp`` (reverse) and ``make_jvp`` (forward) on NumPy arrays.

autograd has no vmap: a batch of cotangents reuses one forward pass (one ``make_vjp``) and
loops over the backward passes; a batch of tangents loops over ``make_jvp``, rerunning f
each time. So Jacobians are reverse mode unless f has more outputs than inputs, and the
Hessian is reverse over reverse (one forward pass of the gradient, one backward pass per
row); HVPs are forward over reverse. autograd's boxes cannot be written into NumPy arrays,
so mutating functions are refused. Boxes themselves (a di operator inside autograd's own
differentiation) are differentiated through: autograd nests.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, ClassVar

import autograd.numpy as anp
import numpy as np
from autograd import grad, make_jvp, make_vjp
from autograd.builtins import DictBox, SequenceBox
from autograd.builtins import tuple as atuple
from autograd.differential_operators import value_and_grad
from autograd.numpy.numpy_boxes import ArrayBox
from autograd.tracer import getval

from diffinterface._adapter import Fn, Kernel, NumpyAdapter, Problem, kernel
from diffinterface._arrays import NUMPY, ArrayKind, register_kind
from diffinterface._conversions import nested_error

__all__ = ["AutogradAdapter", "AutogradArrays"]


class AutogradArrays(ArrayKind):
    """HIPS autograd's boxes (arrays traced by autograd) as an array kind."""

    name = "autograd"
    library = "HIPS autograd"
    float_dtypes = NUMPY.float_dtypes
    bridge = "diffinterface._bridges.autograd"
    values_of = "numpy"

    def is_array(self, a: Any) -> bool:
        return isinstance(a, ArrayBox)

    def describe_array(self, a: Any) -> str:
        return "an autograd box"

    def to_numpy(self, a: Any) -> np.ndarray:
        raise nested_error(self.traced_by(a))

    def traced_by(self, a: Any) -> str | None:
        return "HIPS autograd"

    def plain_value(self, a: Any) -> Any:
        return getval(a)

    def namespace(self, arrays: tuple[Any, ...]) -> Any:
        return _NAMESPACE


def _with_array_api_names() -> Any:
    """autograd.numpy plus the array-API spellings that NumPy 1 style lacks."""
    names = {name: getattr(anp, name) for name in dir(anp) if not name.startswith("_")}
    names.update(
        concat=anp.concatenate,
        pow=anp.power,
        permute_dims=anp.transpose,
        matrix_transpose=lambda a: anp.swapaxes(a, -1, -2),
        asin=anp.arcsin,
        acos=anp.arccos,
        atan=anp.arctan,
        atan2=anp.arctan2,
        asinh=anp.arcsinh,
        acosh=anp.arccosh,
        atanh=anp.arctanh,
    )
    return SimpleNamespace(**names)


_NAMESPACE = _with_array_api_names()
register_kind(AutogradArrays(), ("autograd",))


class AutogradAdapter(NumpyAdapter):
    """Adapter for :class:`~diffinterface.AutoAutograd`."""

    native_kind: ClassVar[str] = "numpy"
    accepted_kinds: ClassVar[frozenset[str]] = frozenset({"numpy", "autograd"})
    supports_mutation: ClassVar[bool] = False

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

    @kernel("gradient", structured=True, last_only=True)
    def structured_gradient(self, fn: Fn, p: Problem) -> Kernel:
        """The gradient of ``fn(x, *consts)`` for x a structure of arrays, as x's leaves
        (after f's value unless ``p.last_only``): autograd records no joining of the leaves
        into a vector and no cutting it back."""
        one, leaves = self.ones(p.y, p.x), p.structure.leaves  # type: ignore[union-attr]
        with_value = not p.last_only

        def gradient(x: Any, *consts: Any) -> Any:
            vjp, y = make_vjp(lambda v: fn(v, *consts))(x)
            g = _like_leaves(vjp(one), leaves(x), leaves)
            return (y, g) if with_value else g

        return gradient

    @kernel("hvp", structured=True)
    def structured_hvp(self, fn: Fn, p: Problem) -> Kernel:
        """``(∇f, H·t)`` for x and t structures of arrays (t a tuple of them for a batch),
        as x's leaves (stacked for a batch): forward over reverse with respect to the
        structure itself, one ``make_jvp`` of the gradient per tangent (reverse over
        reverse was 15 % slower on the autoencoder)."""
        batch, leaves = p.batch, p.structure.leaves  # type: ignore[union-attr]

        def gradient_and_hvp(x: Any, t: Any, *consts: Any) -> Any:
            push = make_jvp(grad(lambda v: fn(v, *consts)))(x)
            refs = leaves(x)
            pairs = [push(ti) for ti in ((t,) if batch is None else t)]
            products = [_like_leaves(hv, refs, leaves) for _, hv in pairs]
            stacked = (
                products[0] if batch is None else [np.stack(c) for c in zip(*products, strict=True)]
            )
            return _like_leaves(pairs[0][0], refs, leaves), stacked

        return gradient_and_hvp

    @kernel("hessian")
    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        """Reverse over reverse, f traced once: one forward pass gives the value (kept
        aside, unboxed) and the gradient, then one backward pass per row."""
        shape = np.shape(p.x)
        n = int(np.prod(shape))
        basis = np.eye(n, dtype=p.x.dtype).reshape((n, *shape))

        def hessian(x: Any, *consts: Any) -> Any:
            value: list[Any] = []

            def gradient(v: Any) -> Any:
                y, g = value_and_grad(lambda w: fn(w, *consts))(v)
                value.append(getval(y))
                return _like(g, v)

            vjp, g = make_vjp(gradient)(x)
            rows = _stack([_like(vjp(e), x) for e in basis], x)
            return value[0], g, rows.reshape(shape + shape)

        return hessian

    @kernel("second_derivative")
    def second_derivative(self, fn: Fn, p: Problem) -> Kernel:
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


def _like_leaves(result: Any, refs: Any, leaves: Any) -> list[Any]:
    """autograd's result in x's structure as x's leaves (``leaves``: x's structure's), each
    shaped like x's (see :func:`_like`)."""
    found = leaves(result)
    if found is None:  # boxed containers: inside an enclosing autograd differentiation
        found = leaves(_unboxed(result))
    return [_like(a, r) for a, r in zip(found, refs, strict=True)]


def _unboxed(tree: Any) -> Any:
    """autograd's boxes of tuples, lists and dicts as plain containers of boxed leaves."""
    if isinstance(tree, SequenceBox):
        return type(getval(tree))(_unboxed(tree[i]) for i in range(len(tree)))
    if isinstance(tree, DictBox):
        return {key: _unboxed(tree[key]) for key in getval(tree)}
    return tree


def _like(d: Any, ref: Any) -> Any:
    """autograd returns a scalar 0.0 where f does not depend on x: give it ref's shape."""
    if type(d) is np.ndarray and type(ref) is np.ndarray and d.shape == ref.shape:
        return d  # the common case, on every call
    if getattr(d, "shape", None) == np.shape(ref):
        return d
    return np.broadcast_to(np.asarray(d, dtype=np.result_type(ref)), np.shape(ref)).copy()
