"""The torch backend's eager kernels: backward passes on a detached leaf made from x.

Each runs f once, with autograd recording, outside inference mode (where autograd records
nothing: ``torch.enable_grad()`` does not leave it), on leaves made from x, and marks the
thread as differentiating while f runs (see ``_torch_arrays.tracked``): a nested di call
inside f then computes through its x. Results are detached.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import torch
import torch.autograd.forward_ad as fwad

from diffinterface._adapter import Fn, Kernel, Problem
from diffinterface._errors import UnsupportedError
from diffinterface._trees import Structure
from diffinterface.backends._torch_arrays import RUNNING, tracked
from diffinterface.backends._torch_compat import backward, functorch_level, in_open_level

__all__ = [
    "FORWARD_AD",
    "dual_pushforward",
    "dual_second_derivative",
    "grad",
    "gradient",
    "hessian",
    "hvp",
    "level_pushforward",
    "like",
    "on_leaves",
    "pullback",
    "structured_gradient",
    "structured_hvp",
]

#: torch's forward-AD levels are process-global: two threads entering them at once corrupt
#: each other's tangents. Reentrant, for forward over forward (SecondOrder).
FORWARD_AD = threading.RLock()

#: the largest x (in elements) whose Hessian basis a preparation keeps (8 MB in float64)
KEPT_BASIS = 1024


def _leaf(x: Any) -> Any:
    """A fresh leaf that autograd tracks, sharing x's memory (a copy of an inference
    tensor, which autograd cannot track outside inference mode)."""
    if x.is_inference():
        return x.clone().requires_grad_(True)
    return x.detach().requires_grad_(True)


def on_leaves(derivatives: Any, composed: Kernel | None = None, tensors_of: Any = None) -> Kernel:
    """The kernel ``run(x, *args)``: ``derivatives(leaves, *args)`` on leaves made from x (a
    tensor or a tuple of them; from ``tensors_of(x)`` when given) with autograd recording,
    marked as running f (see the module's docstring). Entering the grad-mode contexts costs
    more than many small operators: only when needed.

    With ``composed``: ``composed(x, *args)`` instead where an enclosing differentiation
    tracks x (one of its tensors), which computes through x. None can while no torch.func
    transform, forward-mode level or di torch differentiation runs, which is cheaper to
    ask than whether each tensor is tracked. One function for all this: each Python call
    on the way to f costs ≈ 0.1 µs.
    """

    def run(x: Any, *args: Any) -> Any:
        xs = x if tensors_of is None else tensors_of(x)
        depth = RUNNING.depth
        if (
            composed is not None
            and (depth or fwad._current_level >= 0 or functorch_level() is not None)
            and any(map(tracked, xs if type(xs) is tuple else (xs,)))
        ):
            return composed(x, *args)
        RUNNING.depth = depth + 1
        try:
            if torch.is_grad_enabled() and not torch.is_inference_mode_enabled():
                return derivatives(_leaves(xs), *args)
            with torch.inference_mode(False), torch.enable_grad():
                return derivatives(_leaves(xs), *args)
        finally:
            RUNNING.depth = depth

    return run


def _leaves(x: Any) -> Any:
    if type(x) is not tuple:
        return _leaf(x)
    return tuple(  # _leaf of each, written out: a call per tensor costs more than its test
        [
            a.clone().requires_grad_(True) if a.is_inference() else a.detach().requires_grad_(True)
            for a in x
        ]
    )


def grad(y: Any, x: Any, u: Any, *, batched: bool = False, create_graph: bool = False) -> Any:
    """``uᵀ ∂y/∂x`` by eager backward (``u`` None: ones, for a one-element y); zeros where
    y does not depend on x (made here: ``materialize_grads=True`` costs ≈ 3 µs)."""
    g = None
    if y.requires_grad and not (batched and u.shape[0] == 0):  # else f ignores x, or no u
        (g,) = backward(y, (x,), u, create_graph, batched)
    if g is None:
        shape = (u.shape[0], *x.shape) if batched else x.shape
        return torch.zeros(shape, dtype=x.dtype, device=x.device)
    return g


def like(t: Any, ref: Any) -> Any:
    """Tangent ``t`` as an ordinary tensor of ``ref``'s dtype: ``torch.func.jvp`` promotes a
    0-d float32 tangent to float64 through Python-number arithmetic (``0.5 * x``) and returns
    an immutable "ZeroTensor" where the tangent vanishes (a second derivative of 2x)."""
    if t._is_zerotensor():
        return torch.zeros(t.shape, dtype=ref.dtype, device=t.device)
    return t if t.dtype == ref.dtype else t.to(ref.dtype)


def pullback(fn: Fn, batched: bool) -> Kernel:
    """``(x, u, *consts) -> (y, uᵀJ)`` (a stack for ``batched``) on a detached leaf."""

    def value_and_pull(xl: Any, u: Any, *consts: Any) -> Any:
        y = fn(xl, *consts)
        return y.detach(), grad(y, xl, u.detach(), batched=batched)

    return on_leaves(value_and_pull)


def gradient(fn: Fn, with_value: bool, composed: Kernel) -> Kernel:
    """``(x, *consts) -> ∇f`` (after f's value when ``with_value``) on a detached leaf;
    ``composed`` where x is tracked (see :func:`on_leaves`)."""

    def value_and_gradient(xl: Any, *consts: Any) -> Any:
        y = fn(xl, *consts)
        return y.detach(), grad(y, xl, None)

    def gradient_alone(xl: Any, *consts: Any) -> Any:
        return grad(fn(xl, *consts), xl, None)

    return on_leaves(value_and_gradient if with_value else gradient_alone, composed)


def hvp(fn: Fn, batched: bool, composed: Kernel) -> Kernel:
    """``(x, t, *consts) -> (∇f, H·t)`` by double backward; ``composed`` where x is tracked."""

    def gradient_and_hvp(xl: Any, t: Any, *consts: Any) -> Any:
        g = grad(fn(xl, *consts), xl, None, create_graph=True)
        return g.detach(), grad(g, xl, t.detach(), batched=batched)

    return on_leaves(gradient_and_hvp, composed)


def hessian(fn: Fn, p: Problem, composed: Kernel) -> Kernel:
    """Double backward, the second one batched over a basis (``composed`` where x is
    tracked); a small basis (≈ 6 µs to build at n = 100) is made once and read by every
    call and thread; keeping a large one would double the memory a Hessian needs, for
    little gain."""
    shape = tuple(p.x.shape)
    n = math.prod(shape)

    def new_basis(like: Any) -> Any:
        return torch.eye(n, dtype=like.dtype, device=like.device).reshape((n, *shape))

    kept = new_basis(p.x) if n <= KEPT_BASIS else None

    def derivatives(xl: Any, *consts: Any) -> Any:
        reuse = (
            kept is not None
            and type(xl) is torch.Tensor
            and xl.dtype == kept.dtype
            and xl.device == kept.device
        )
        y = fn(xl, *consts)
        g = grad(y, xl, None, create_graph=True)
        h = grad(g, xl, kept if reuse else new_basis(xl), batched=True)
        if reuse and h.untyped_storage().data_ptr() == kept.untyped_storage().data_ptr():  # type: ignore[union-attr]
            h = h.clone()  # the basis itself came back (g is xl): the next call reads it
        return y.detach(), g.detach(), h.reshape(shape + shape)

    return on_leaves(derivatives, composed)


def structured_gradient(fn: Fn, tree: Structure, with_value: bool, composed: Kernel) -> Kernel:
    """The gradient of ``fn(x, *consts)`` for x a structure of tensors, as x's leaves
    (after f's value when ``with_value``): autograd records no joining of the leaves into a
    vector and no cutting it back. ``composed`` where x is tracked."""

    def derivatives(leaves: tuple[Any, ...], *consts: Any) -> Any:
        y = fn(tree.build(leaves), *consts)
        grads = backward(y, leaves, None, False) if y.requires_grad else (None,) * len(leaves)
        g = [torch.zeros_like(a) if d is None else d for a, d in zip(leaves, grads, strict=True)]
        if not with_value:
            return g
        value = y.detach()
        if y.is_leaf or y._is_view():  # f returned (a view of) a leaf: not the caller's
            value = value.clone()
        return value, g

    return on_leaves(derivatives, composed, _tensors_of(tree))


def _tensors_of(tree: Structure) -> Any:
    """x's tensors (its structure's leaves) as a tuple, or None where x already is one (the
    tuple of the arguments of di.Args)."""
    if tree.arguments_are_arrays:
        return None
    return lambda x: tuple(tree.leaves(x))  # type: ignore[arg-type]


def structured_hvp(
    fn: Fn, tree: Structure, batch: int | None, with_gradient: bool, composed: Kernel
) -> Kernel:
    """``H·t`` for x and t structures of tensors (t a tuple of ``batch`` of them) as x's
    leaves (stacked on a first axis for a batch), after the gradient when
    ``with_gradient``: a double backward pass over the leaves. ``composed`` where x is
    tracked."""

    def zeros(a: Any) -> Any:
        shape = a.shape if batch is None else (batch, *a.shape)
        return torch.zeros(shape, dtype=a.dtype, device=a.device)

    def tangent_leaves(t: Any) -> tuple[Any, ...]:
        if batch is None:
            return tuple(a.detach() for a in tree.leaves(t) or ())
        columns = zip(*(tree.leaves(ti) or () for ti in t), strict=True)  # a stack per leaf
        return tuple(torch.stack(column).detach() for column in columns)

    def derivatives(leaves: tuple[Any, ...], t: Any, *consts: Any) -> Any:
        tangents = tangent_leaves(t)
        y = fn(tree.build(leaves), *consts)
        grads = backward(y, leaves, None, True) if y.requires_grad else (None,) * len(leaves)
        # the gradient's entries that depend on x; the others add nothing to H·t
        pairs = [
            (g, t)
            for g, t in zip(grads, tangents, strict=True)
            if g is not None and g.requires_grad
        ]
        products: tuple[Any, ...] = (None,) * len(leaves)
        if pairs:
            outputs, cotangents = zip(*pairs, strict=True)
            products = torch.autograd.grad(
                outputs, leaves, cotangents, allow_unused=True, is_grads_batched=batch is not None
            )
        hv = [zeros(a) if h is None else h for a, h in zip(leaves, products, strict=True)]
        if not with_gradient:
            return hv
        pairs_g = zip(leaves, grads, strict=True)
        return [torch.zeros_like(a) if d is None else d.detach() for a, d in pairs_g], hv

    return on_leaves(derivatives, composed, _tensors_of(tree))


def dual_pushforward(fn: Fn) -> Kernel:
    """Eager forward mode with dual tensors: works on code that writes into buffers."""

    def push(x: Any, t: Any, *consts: Any) -> Any:
        with FORWARD_AD:
            if in_open_level():
                return level_pushforward(fn, x, t, consts)
            with fwad.dual_level():
                y = fn(fwad.make_dual(x.detach(), t.detach()), *consts)
                primal, tangent = fwad.unpack_dual(y)
        if tangent is None:
            tangent = torch.zeros_like(primal)
        return primal.detach(), like(tangent, primal)

    return push


def level_pushforward(fn: Fn, x: Any, t: Any, consts: tuple[Any, ...]) -> Any:
    """``(f(x), J·t)`` by dual tensors at the caller's open eager level (see
    ``_torch_compat.in_open_level``). An input that carries a tangent of that level would
    add the caller's derivative to J·t (one level cannot hold two): refused. (Tensors f
    reads from elsewhere, closures or globals, are not checked: hold them constant.)"""
    with fwad._set_fwd_grad_enabled(True):  # off inside a torch.autograd.Function
        if any(_has_tangent(a) for a in (x, t, *consts)):
            raise UnsupportedError(_TANGENT_AT_OPEN_LEVEL)
        y = fn(fwad.make_dual(x, t), *consts)
        primal, tangent = fwad.unpack_dual(y)
    if tangent is None:
        tangent = torch.zeros_like(primal)
    return primal.detach(), like(tangent.detach(), primal)


def _has_tangent(a: Any) -> bool:
    return isinstance(a, torch.Tensor) and fwad.unpack_dual(a).tangent is not None


_TANGENT_AT_OPEN_LEVEL = (
    "di.pushforward with the torch backend was called inside an eager forward-mode level "
    "(torch.autograd.forward_ad.dual_level()) with an input that carries a tangent of that "
    "level: torch cannot nest eager forward-mode levels, so the outer derivative would be "
    "lost. Detach the inputs (.detach()) for a first-order pushforward, or take the outer "
    "derivative with torch.func.jvp, which nests."
)


def dual_second_derivative(fn: Fn) -> Kernel:
    """Reverse over dual forward mode, for code that writes into buffers: f runs once, the
    second derivative is one batched backward pass of the first."""

    def derivatives(xl: Any, *consts: Any) -> Any:
        with fwad.dual_level():
            y = fn(fwad.make_dual(xl, torch.ones_like(xl)), *consts)
            primal, d = fwad.unpack_dual(y)
        if d is None:
            d = torch.zeros_like(primal)
        basis = torch.eye(d.numel(), dtype=d.dtype, device=d.device)
        dd = grad(d.reshape(-1), xl, basis, batched=True).reshape(d.shape)
        return primal.detach(), d.detach(), dd

    on_leaf = on_leaves(derivatives)

    def second(x: Any, *consts: Any) -> Any:
        with FORWARD_AD:
            return on_leaf(x, *consts)

    return second
