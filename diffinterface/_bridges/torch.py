"""torch side of DifferentiateWith: a ``torch.autograd.Function`` calling the inner backend.

``forward`` evaluates f, ``backward`` is the inner pullback and ``jvp`` the inner
pushforward, so ``.backward()``, ``torch.autograd.grad``, forward-mode AD and the
``torch.func`` transforms (grad, vjp, jvp, jacrev, jacfwd; vmap through a loop over the
batch) all reach the inner backend. Tensors other than x are constants.

torch's older batching, which ``torch.autograd.grad(is_grads_batched=True)``,
``autograd.functional.jacobian(vectorize=True)`` and gradcheck's batched checks use, knows
nothing of ``torch.autograd.Function``: its batched tensors reach ``forward`` themselves,
and are taken apart there (see :func:`_legacy_batched`).
"""

from __future__ import annotations

from functools import cache
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
_NESTED_LEGACY_VMAP = (
    "A di.DifferentiateWith function was called under two nested levels of torch's older "
    "vmap (torch._vmap_internals, used by is_grads_batched=True and gradcheck), or batched "
    "by an outer level only: not supported. Use torch.func.vmap (with torch.func.vjp or "
    "jacrev) for nested batches."
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
        return _legacy_batched(_value, None, inner, x, *args)

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
        return _legacy_batched(_linear(cls.operator), 1, inner, x, t, *args)

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
            ts = t.movedim(in_dims[1], 0)
            return _linear(cls.operator)(inner, x, ts, *args, batched=True), 0
        return _loop(cls, info, in_dims, (x, t, inner, *args)), 0


class _Pushforward(_Linear):
    operator = "pushforward"


class _Pullback(_Linear):
    operator = "pullback"


def _value(inner: InnerCalls, x: Any, *args: Any) -> Any:
    return inner.value(x, args)


@cache
def _linear(operator: str) -> Any:
    """``operator(x, t)`` of the inner backend for plain tensors (t one tangent, or a batch
    of them on axis 0 when ``batched``). The inputs are detached: the outer framework's
    tangents, which a caller's forward-mode level may attach, are not the inner backend's."""

    def compute(inner: InnerCalls, x: Any, t: Any, *args: Any, batched: bool = False) -> Any:
        method = getattr(inner, operator)
        consts = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
        x, t = x.detach(), t.detach().contiguous()
        if batched:
            return torch.stack(method(x, tuple(t), consts))
        return method(x, t, consts)

    return compute


def _legacy_batched(compute: Any, tangent: int | None, inner: InnerCalls, *inputs: Any) -> Any:
    """``compute(inner, *inputs)`` where inputs may be batched by torch's older vmap
    (``torch._vmap_internals``), whose batched tensors cannot be detached or converted to
    NumPy: the batch (the innermost vmap level) is taken out, computed by one batched call
    (only input #``tangent`` batched: a batch of tangents at one x) or example by example,
    and put back. Other inputs go straight to ``compute``."""
    batched = [_is_legacy_batched(a) for a in inputs]
    if not any(batched):
        return compute(inner, *inputs)
    level = _legacy_level()
    plain = [
        torch._remove_batch_dim(a, level, 0, 0) if b else a
        for a, b in zip(inputs, batched, strict=True)
    ]
    if any(map(_is_legacy_batched, plain)):
        raise UnsupportedError(_NESTED_LEGACY_VMAP)
    if tangent is not None and batched == [i == tangent for i in range(len(inputs))]:
        result = compute(inner, *plain, batched=True)
    else:
        size = next(a.shape[0] for a, b in zip(plain, batched, strict=True) if b)
        result = torch.stack(
            [
                compute(inner, *(a[i] if b else a for a, b in zip(plain, batched, strict=True)))
                for i in range(size)
            ]
        )
    return torch._add_batch_dim(result, 0, level)


def _is_legacy_batched(a: Any) -> bool:
    return isinstance(a, torch.Tensor) and torch._C._functorch.is_legacy_batchedtensor(a)


def _legacy_level() -> int:
    """The innermost level of torch's older vmap (private torch API, as torch 2.13 has it)."""
    level = torch._C._vmapmode_increment_nesting()
    torch._C._vmapmode_decrement_nesting()
    return int(level) - 1


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
