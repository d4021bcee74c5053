"""torch side of DifferentiateWith: a ``torch.autograd.Function`` calling the inner backend.

``forward`` evaluates f, ``backward`` is the inner pullback and ``jvp`` the inner
pushforward, so ``.backward()``, ``torch.autograd.grad``, forward-mode AD and the
``torch.func`` transforms (grad, vjp, jvp, jacrev, jacfwd; vmap through a loop over the
batch) all reach the inner backend. Tensors other than x are constants.
"""

from __future__ import annotations

from typing import Any

import torch

from diffinterface._differentiate_with import InnerCalls
from diffinterface._errors import UnsupportedError

__all__ = ["call"]

_ONLY_X = (
    "A di.DifferentiateWith function is differentiated only with respect to its first "
    "argument x, but argument #{i} requires grad. Pass the differentiated quantities in x "
    "(concatenate them), or pass argument #{i} detached (.detach())."
)
_SECOND_ORDER = (
    "Second-order differentiation through a di.DifferentiateWith function is not "
    "supported (its derivative is computed outside torch's graph). Compute second "
    "derivatives of that function with a di operator (di.hessian, di.hvp) instead."
)


def call(inner: InnerCalls, x: Any, args: tuple[Any, ...]) -> Any:
    """g(x, *args) for torch tensors."""
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor) and a.requires_grad and torch.is_grad_enabled():
            raise UnsupportedError(_ONLY_X.format(i=i + 1))
    return _Boundary.apply(x, inner, *args)


class _Boundary(torch.autograd.Function):
    """y = f(x); its backward and jvp are the inner pullback and pushforward."""

    @staticmethod
    def forward(x: Any, inner: InnerCalls, *args: Any) -> Any:
        return inner.value(x, args)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        x, inner, *args = inputs
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        ctx.inner, ctx.args = inner, tuple(args)

    @staticmethod
    def backward(ctx: Any, grad_y: Any) -> Any:
        for i, needed in enumerate(ctx.needs_input_grad[2:]):
            if needed:
                raise UnsupportedError(_ONLY_X.format(i=i + 1))
        (x,) = ctx.saved_tensors
        grad_x = _Pullback.apply(x, grad_y, ctx.inner, *ctx.args)
        return (grad_x, None, *(None for _ in ctx.args))

    @staticmethod
    def jvp(ctx: Any, tx: Any, *_: Any) -> Any:
        (x,) = ctx.saved_tensors
        return _Pushforward.apply(x, tx, ctx.inner, *ctx.args)

    @staticmethod
    def vmap(info: Any, in_dims: Any, x: Any, inner: InnerCalls, *args: Any) -> Any:
        return _loop(_Boundary, info, in_dims, (x, inner, *args)), 0


class _Linear(torch.autograd.Function):
    """``operator(x, t)`` of the inner backend, linear in t; not differentiable itself
    (a second derivative through the boundary), batched over t in one inner call."""

    operator: str

    @classmethod
    def forward(cls, x: Any, t: Any, inner: InnerCalls, *args: Any) -> Any:
        _check_first_order(x)
        return getattr(inner, cls.operator)(x, t.contiguous(), args)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        pass

    @staticmethod
    def backward(ctx: Any, *_: Any) -> Any:
        raise UnsupportedError(_SECOND_ORDER)

    @staticmethod
    def jvp(ctx: Any, *_: Any) -> Any:
        raise UnsupportedError(_SECOND_ORDER)

    @classmethod
    def vmap(cls, info: Any, in_dims: Any, x: Any, t: Any, inner: InnerCalls, *args: Any) -> Any:
        _check_first_order(x)
        if in_dims[1] is not None and all(d is None for i, d in enumerate(in_dims) if i != 1):
            # a batch of tangents at one x (jacrev, jacfwd): one batched inner call
            ts = tuple(t.movedim(in_dims[1], 0).contiguous())
            return torch.stack(getattr(inner, cls.operator)(x, ts, args)), 0
        return _loop(cls, info, in_dims, (x, t, inner, *args)), 0


class _Pushforward(_Linear):
    operator = "pushforward"


class _Pullback(_Linear):
    operator = "pullback"


def _check_first_order(x: Any) -> None:
    """x reaches the inner backend wrapped by torch.func only when a derivative of the
    boundary's derivative is being taken (torch.func.hessian, jacfwd of jacrev)."""
    if torch._C._functorch.is_functorch_wrapped_tensor(x):
        raise UnsupportedError(_SECOND_ORDER)


def _loop(fn: Any, info: Any, in_dims: Any, inputs: tuple[Any, ...]) -> Any:
    """fn applied to each example of a vmapped batch, stacked along axis 0."""
    moved = [a if d is None else a.movedim(d, 0) for a, d in zip(inputs, in_dims, strict=True)]
    rows = [
        fn.apply(*(a if d is None else a[b] for a, d in zip(moved, in_dims, strict=True)))
        for b in range(info.batch_size)
    ]
    return torch.stack(rows)
