"""PyTorch adapter: eager ``torch.autograd`` or ``torch.func``, whichever is faster per operator.

On CPU, eager autograd beats ``torch.func`` several times over for gradients, HVPs and
Hessians (see ../shared/BASELINES.md), so single pullbacks, gradients and second order run
eagerly (Hessians and batched HVPs through ``is_grads_batched``). Batched pullbacks
(reverse Jacobians) use ``torch.func.vjp`` under ``vmap``, ~10× faster than eager
``is_grads_batched`` for a 200×200 Jacobian; pushforwards use ``torch.func.jvp`` (under
``vmap`` for batches). Functions that write into arrays (``y=``,
Cache contexts) cannot run under ``torch.func``; they are differentiated eagerly with
reverse autograd or forward-mode dual tensors. Single backward passes on plain tensors call
torch's autograd engine directly (private API, with ``torch.autograd.grad`` as the fallback;
see :func:`_backward`): its argument handling costs more than a small gradient itself.

Forward mode (``torch.func.jvp`` and dual tensors alike) keeps its levels in state shared
by all threads, so forward-mode kernels hold one lock: a preparation may be used from many
threads, and forward-mode calls then run one at a time. Reverse mode runs concurrently.
"""

from __future__ import annotations

import math
import threading
from typing import Any, ClassVar

import numpy as np
import torch
import torch.autograd.forward_ad as fwad
from torch.func import jvp, vjp, vmap
from torch.overrides import has_torch_function

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._arrays import shares_memory
from diffinterface._prep import Problem
from diffinterface._trees import Structure

__all__ = ["TorchAdapter"]

#: torch's forward-AD levels are process-global: two threads entering them at once corrupt
#: each other's tangents. Reentrant, for forward over forward (SecondOrder).
_FORWARD_AD = threading.RLock()

#: private torch API (what ``torch.autograd.grad`` calls), see :func:`_backward`; None in
#: a torch without them, which then takes the public path only
_engine_run_backward: Any = getattr(torch.autograd.graph, "_engine_run_backward", None)
_vmap: Any = getattr(torch._vmap_internals, "_vmap", None)

#: the largest x (in elements) whose Hessian basis a preparation keeps (8 MB in float64)
_KEPT_BASIS = 1024


def _leaf(x: Any) -> Any:
    """A fresh leaf that autograd tracks, sharing x's memory (a copy of an inference
    tensor, which autograd cannot track outside inference mode)."""
    if x.is_inference():
        return x.clone().requires_grad_(True)
    return x.detach().requires_grad_(True)


def _grad(y: Any, x: Any, u: Any, *, batched: bool = False, create_graph: bool = False) -> Any:
    """``uᵀ ∂y/∂x`` by eager backward (``u`` None: ones, for a one-element y); zeros where
    y does not depend on x.

    (Zeros are made here rather than by ``materialize_grads=True``, which costs ~3 µs of
    Python per call in torch.)
    """
    g = None
    if y.requires_grad and not (batched and u.shape[0] == 0):  # else f ignores x, or no u
        (g,) = _backward(y, (x,), u, create_graph, batched)
    if g is None:
        shape = (u.shape[0], *x.shape) if batched else x.shape
        return torch.zeros(shape, dtype=x.dtype, device=x.device)
    return g


def _backward(
    y: Any, xs: tuple[Any, ...], u: Any, create_graph: bool, batched: bool = False
) -> tuple[Any, ...]:
    """``torch.autograd.grad(y, xs, u, create_graph=create_graph, allow_unused=True,
    is_grads_batched=batched)``, for a non-empty batch of ``u``.

    For plain tensors this calls the engine the way ``grad`` does, without the Python that
    ``grad`` spends on normalising and validating its arguments (``_make_grads``): ~9 µs,
    about a third of a small gradient's cost, and ~20 µs for a batch. The engine call
    (``_engine_run_backward``: outputs, grad_outputs, retain_graph, create_graph, inputs,
    allow_unreachable, accumulate_grad) and the batching (``_vmap_internals._vmap``) are
    private torch API (torch 2.13), so this path is taken only where ``grad`` would pass
    exactly these arguments to them: tensors of no subclass, no ``__torch_function__``
    mode active, and ``u`` already of y's shape (after the batch axis) and dtype, as
    ``_make_grads`` leaves it, or None for a one-element floating y, which ``_make_grads``
    replaces by ``ones_like(y)``. Anything else goes through ``grad``, which validates or
    raises as usual.
    """
    plain = (
        _engine_run_backward is not None
        and type(y) is torch.Tensor
        and not has_torch_function((y, *xs))
        and not y.is_nested
        and all(type(x) is torch.Tensor for x in xs)
    )
    if plain and u is None and not batched and y.numel() == 1 and y.dtype.is_floating_point:
        u = torch.ones_like(y)  # new on every call: the result may be a view of it
    elif not (
        plain
        and type(u) is torch.Tensor
        and u.dtype == y.dtype
        and (u.shape[1:] if batched else u.shape) == y.shape
        and (_vmap is not None or not batched)
    ):
        return torch.autograd.grad(
            y, xs, u, create_graph=create_graph, allow_unused=True, is_grads_batched=batched
        )

    if not batched:
        return _engine_run_backward(
            (y,), (u,), create_graph, create_graph, xs, True, accumulate_grad=False
        )

    def vjp(us: tuple[Any, ...]) -> tuple[Any, ...]:
        return _engine_run_backward(
            (y,), us, create_graph, create_graph, xs, True, accumulate_grad=False
        )

    return _vmap(vjp, 0, 0, allow_none_pass_through=True)((u,))


def _is_plain(t: Any) -> bool:
    """Whether t is a tensor of no subclass and not a torch.func wrapper: one with storage."""
    return type(t) is torch.Tensor and not torch._C._functorch.is_functorch_wrapped_tensor(t)


def _apart_from(r: Any, buffer: Any) -> Any:
    """``r``, or a copy of it where it may share memory with ``buffer`` (a plain tensor)."""
    if _is_plain(r) and not shares_memory(r, buffer):
        return r
    return r.clone()


def _like(t: Any, ref: Any) -> Any:
    """Tangent ``t`` as an ordinary tensor of ``ref``'s dtype: ``torch.func.jvp`` promotes a
    0-d float32 tangent to float64 through Python-number arithmetic (``0.5 * x``) and returns
    an immutable "ZeroTensor" where the tangent vanishes (a second derivative of 2x)."""
    if t._is_zerotensor():
        return torch.zeros(t.shape, dtype=ref.dtype, device=t.device)
    return t if t.dtype == ref.dtype else t.to(ref.dtype)


def _with_grad(compute: Any, x: Any, *args: Any) -> Any:
    """``compute(leaves, *args)`` with autograd recording, on leaves made from x (a tensor,
    or a tuple of them), outside inference mode (where autograd records nothing:
    ``torch.enable_grad()`` does not leave it); entering the contexts costs more than many
    small operators, so only when needed."""
    if torch.is_grad_enabled() and not torch.is_inference_mode_enabled():
        return compute(_leaves(x), *args)
    with torch.inference_mode(False), torch.enable_grad():
        return compute(_leaves(x), *args)


def _leaves(x: Any) -> Any:
    return tuple(map(_leaf, x)) if type(x) is tuple else _leaf(x)


class TorchAdapter(Adapter):
    """Adapter for :class:`~diffinterface.AutoTorch`."""

    native_kind: ClassVar[str] = "torch"
    accepted_kinds: ClassVar[frozenset[str]] = frozenset({"torch"})
    supports_mutation: ClassVar[bool] = True

    def stack(self, arrays: list[Any]) -> Any:
        return torch.stack(arrays)

    def eye(self, n: int, like: Any) -> Any:
        return torch.eye(n, dtype=like.dtype, device=like.device)

    def ones(self, template: Any, like: Any) -> Any:
        return torch.ones(tuple(template.shape), dtype=template.dtype, device=like.device)

    def to_native(self, a: Any) -> Any:
        a = np.asarray(a)
        if not a.flags.writeable or any(s < 0 for s in a.strides):
            a = np.array(a)
        return torch.from_numpy(a)

    def output_template(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        with torch.no_grad():
            return fn(x, *consts)

    # -- primitives -------------------------------------------------------------------
    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        if mutates:
            return _dual_pushforward(fn)

        def push(x: Any, t: Any, *consts: Any) -> Any:
            with _FORWARD_AD:
                y, ty = jvp(lambda v: fn(v, *consts), (x,), (t,))  # type: ignore[misc]
            return y, _like(ty, y)

        return push

    def pushforward_batch(self, fn: Fn, mutates: bool) -> Kernel:
        if mutates:
            return self._loop(_dual_pushforward(fn))
        no_tangents = self._loop(self.pushforward(fn, mutates))

        def push_batch(x: Any, ts: Any, *consts: Any) -> Any:
            if ts.shape[0] == 0:  # vmap over an empty batch breaks reshape(-1) in f
                return no_tangents(x, ts, *consts)

            def one(t: Any) -> Any:
                return jvp(lambda v: fn(v, *consts), (x,), (t,))

            with _FORWARD_AD:
                y, tys = vmap(one, out_dims=(None, 0))(ts)  # type: ignore[arg-type]
            return y, _like(tys, y)

        return push_batch

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        return self._eager_pullback(fn, batched=False)

    def pullback_batch(self, fn: Fn, mutates: bool) -> Kernel:
        if mutates:
            return self._eager_pullback(fn, batched=True)

        no_cotangents = self._loop(self.pullback(fn, mutates))

        # torch.func's vjp under vmap is ~10× faster than eager is_grads_batched here.
        def pull_batch(x: Any, us: Any, *consts: Any) -> Any:
            if us.shape[0] == 0:  # vmap over an empty batch breaks reshape(-1) in f
                return no_cotangents(x, us, *consts)
            y, pull = vjp(lambda v: fn(v, *consts), x)  # type: ignore[misc]
            return y, vmap(pull)(us)[0]

        return pull_batch

    @staticmethod
    def _eager_pullback(fn: Fn, batched: bool) -> Kernel:
        def pull(x: Any, u: Any, *consts: Any) -> Any:
            if torch._C._functorch.is_functorch_wrapped_tensor(x):
                # differentiated by torch.func (SecondOrder): eager autograd cannot run here
                y, pull_u = vjp(lambda v: fn(v, *consts), x)  # type: ignore[misc]
                return y, (vmap(pull_u)(u) if batched else pull_u(u))[0]
            if x.requires_grad and torch.is_grad_enabled():
                # differentiated by eager autograd (SecondOrder): keep the graph
                y = fn(x, *consts)
                return y, _grad(y, x, u, batched=batched, create_graph=True)
            return _with_grad(value_and_pull, x, u, consts)

        def value_and_pull(xl: Any, u: Any, consts: tuple[Any, ...]) -> Any:
            y = fn(xl, *consts)
            return y.detach(), _grad(y, xl, u, batched=batched)

        return pull

    # -- faster operators (eager autograd) --------------------------------------------
    def native_gradient(self, fn: Fn, p: Problem) -> Kernel:
        def value_and_gradient(xl: Any, consts: tuple[Any, ...]) -> Any:
            y = fn(xl, *consts)
            return y.detach(), _grad(y, xl, None)

        def gradient(x: Any, *consts: Any) -> Any:
            return _with_grad(value_and_gradient, x, consts)

        return gradient

    def structured_gradient(self, fn: Fn, p: Problem, tree: Structure) -> Kernel:
        return _structured_gradient(fn, tree, with_value=True)

    def plain_structured_gradient(self, fn: Fn, p: Problem, tree: Structure) -> Kernel:
        return _structured_gradient(fn, tree, with_value=False)

    def structured_hvp(self, fn: Fn, p: Problem, tree: Structure) -> Kernel:
        return _structured_hvp(fn, tree, p.batch, with_gradient=True)

    def plain_structured_hvp(self, fn: Fn, p: Problem, tree: Structure) -> Kernel:
        return _structured_hvp(fn, tree, p.batch, with_gradient=False)

    def native_hvp(self, fn: Fn, p: Problem) -> Kernel:
        batched = p.batch is not None

        def gradient_and_hvp(xl: Any, t: Any, consts: tuple[Any, ...]) -> Any:
            g = _grad(fn(xl, *consts), xl, None, create_graph=True)
            return g.detach(), _grad(g, xl, t, batched=batched)

        def hvp(x: Any, t: Any, *consts: Any) -> Any:
            return _with_grad(gradient_and_hvp, x, t, consts)

        return hvp

    def native_hessian(self, fn: Fn, p: Problem) -> Kernel:
        shape = tuple(p.x.shape)
        n = math.prod(shape)

        def new_basis(like: Any) -> Any:
            return torch.eye(n, dtype=like.dtype, device=like.device).reshape((n, *shape))

        # A small basis (~6 µs to build at n = 100) is made once and read by every call and
        # thread; keeping a large one would double the memory a Hessian needs, for little gain.
        kept = new_basis(p.x) if n <= _KEPT_BASIS else None

        def derivatives(xl: Any, consts: tuple[Any, ...]) -> Any:
            reuse = (
                kept is not None
                and _is_plain(xl)
                and xl.dtype == kept.dtype
                and xl.device == kept.device
            )
            y = fn(xl, *consts)
            g = _grad(y, xl, None, create_graph=True)
            h = _grad(g, xl, kept if reuse else new_basis(xl), batched=True)
            if reuse:  # the basis itself comes back where g is xl: the next call reads it
                h = _apart_from(h, kept)
            return y.detach(), g.detach(), h.reshape(shape + shape)

        def hessian(x: Any, *consts: Any) -> Any:
            return _with_grad(derivatives, x, consts)

        return hessian

    def native_second_derivative(self, fn: Fn, p: Problem) -> Kernel:
        if not p.mutates:
            return _func_second_derivative(fn)
        return _eager_second_derivative(fn)


def _structured_gradient(fn: Fn, tree: Structure, with_value: bool) -> Kernel:
    """The gradient of ``fn(x, *consts)`` for x a structure of tensors, in x's structure
    (after f's value when ``with_value``): autograd records no joining of the leaves into
    a vector and no cutting it back."""

    def derivatives(leaves: tuple[Any, ...], consts: tuple[Any, ...]) -> Any:
        y = fn(tree.build(leaves), *consts)
        if y.requires_grad:
            grads = _backward(y, leaves, None, False)
            pairs = zip(leaves, grads, strict=True)
            g = tree.build([torch.zeros_like(a) if d is None else d for a, d in pairs])
        else:  # f ignores x
            g = tree.build([torch.zeros_like(a) for a in leaves])
        if not with_value:
            return g
        value = y.detach()
        if y.is_leaf or y._is_view():  # f returned (a view of) a leaf: not the caller's
            value = value.clone()
        return value, g

    def gradient(x: Any, *consts: Any) -> Any:
        leaves = tree.leaves(x)
        assert leaves is not None  # x was checked against the preparation
        return _with_grad(derivatives, tuple(leaves), consts)

    return gradient


def _structured_hvp(fn: Fn, tree: Structure, batch: int | None, with_gradient: bool) -> Kernel:
    """``H·t`` for x and t structures of tensors (t a tuple of ``batch`` of them), in x's
    structure (a tuple of them for a batch), after the gradient when ``with_gradient``: a
    double backward pass over the leaves, as :meth:`TorchAdapter.native_hvp` makes over
    one tensor, with no joining of the leaves into a vector and no cutting it back."""

    def zeros(a: Any) -> Any:
        shape = a.shape if batch is None else (batch, *a.shape)
        return torch.zeros(shape, dtype=a.dtype, device=a.device)

    def derivatives(leaves: tuple[Any, ...], tangents: tuple[Any, ...], consts: Any) -> Any:
        y = fn(tree.build(leaves), *consts)
        grads = _backward(y, leaves, None, True) if y.requires_grad else (None,) * len(leaves)
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
        result = (
            tree.build(hv)
            if batch is None
            else tuple(tree.build([h[i] for h in hv]) for i in range(batch))
        )
        if not with_gradient:
            return result
        pairs_g = zip(leaves, grads, strict=True)
        g = tree.build([torch.zeros_like(a) if d is None else d.detach() for a, d in pairs_g])
        return g, result

    def hvp(x: Any, t: Any, *consts: Any) -> Any:
        leaves = tree.leaves(x)
        assert leaves is not None  # x and t were checked against the preparation
        if batch is None:
            tangents = tuple(tree.leaves(t) or ())
        else:  # one stack per leaf
            columns = zip(*(tree.leaves(ti) or () for ti in t), strict=True)
            tangents = tuple(torch.stack(column) for column in columns)
        return _with_grad(derivatives, tuple(leaves), tangents, consts)

    return hvp


def _dual_pushforward(fn: Fn) -> Kernel:
    """Eager forward mode with dual tensors: works on code that writes into buffers."""

    def push(x: Any, t: Any, *consts: Any) -> Any:
        with _FORWARD_AD, fwad.dual_level():
            y = fn(fwad.make_dual(x, t), *consts)
            primal, tangent = fwad.unpack_dual(y)
        if tangent is None:
            tangent = torch.zeros_like(primal)
        return primal.detach(), _like(tangent, primal)

    return push


def _func_second_derivative(fn: Fn) -> Kernel:
    """Forward over forward with ``torch.func.jvp``, f run once: the value and the first
    derivative come out of the same pass as the second."""

    def second(x: Any, *consts: Any) -> Any:
        one = torch.ones_like(x)

        def d1(v: Any) -> Any:
            y, d = jvp(lambda w: fn(w, *consts), (v,), (one,))  # type: ignore[misc]
            return d, y

        with _FORWARD_AD:
            d, dd, y = jvp(d1, (x,), (one,), has_aux=True)  # type: ignore[misc]
        return y, _like(d, y), _like(dd, y)

    return second


def _eager_second_derivative(fn: Fn) -> Kernel:
    """Reverse over dual forward mode, for code that writes into buffers: f runs once, the
    second derivative is one batched backward pass of the first."""

    def derivatives(xl: Any, consts: tuple[Any, ...]) -> Any:
        with fwad.dual_level():
            y = fn(fwad.make_dual(xl, torch.ones_like(xl)), *consts)
            primal, d = fwad.unpack_dual(y)
        if d is None:
            d = torch.zeros_like(primal)
        m = d.numel()
        basis = torch.eye(m, dtype=d.dtype, device=d.device)
        dd = _grad(d.reshape(-1), xl, basis, batched=True).reshape(d.shape)
        return primal.detach(), d.detach(), dd

    def second(x: Any, *consts: Any) -> Any:
        with _FORWARD_AD:
            return _with_grad(derivatives, x, consts)

    return second
