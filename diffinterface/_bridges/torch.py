"""torch side of DifferentiateWith: a ``torch.autograd.Function`` calling the inner backend.

``forward`` evaluates f, ``backward`` is the inner pullback and ``jvp`` the inner
pushforward, so ``.backward()``, ``torch.autograd.grad``, forward-mode AD and the
``torch.func`` transforms (grad, vjp, jvp, jacrev, jacfwd; vmap through a loop over the
batch) all reach the inner backend. The arguments differentiated are the tensors that need
a gradient (``ctx.needs_input_grad``) or carry a tangent; the others are constants.

torch's older batching, which ``torch.autograd.grad(is_grads_batched=True)``,
``autograd.functional.jacobian(vectorize=True)`` and gradcheck's batched checks use, knows
nothing of ``torch.autograd.Function``: its batched tensors reach ``forward`` themselves,
and are taken apart there (see :func:`_legacy_batched`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import torch

from diffinterface._errors import UnsupportedError
from diffinterface._inner_calls import InnerCalls

__all__ = ["call"]

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


def call(inner: InnerCalls, arguments: tuple[Any, ...]) -> Any:
    """g(*arguments) where some arguments are torch tensors."""
    return _Boundary.apply(inner, *arguments)


class _Boundary(torch.autograd.Function):
    """y = f(*arguments); its backward and jvp are the inner pullback and pushforward with
    respect to the arguments that need a gradient or carry a tangent."""

    @staticmethod
    def forward(inner: InnerCalls, *arguments: Any) -> Any:
        return _legacy_batched(_value, (), inner, *arguments)

    @staticmethod
    def setup_context(ctx: Any, inputs: Any, output: Any) -> None:
        inner, *arguments = inputs
        tensors = [a for a in arguments if isinstance(a, torch.Tensor)]
        ctx.save_for_backward(*tensors)
        ctx.save_for_forward(*tensors)
        # no zeros for the tangents of constant tensors: they arrive as None (not differentiated)
        ctx.set_materialize_grads(False)
        ctx.inner = inner
        ctx.others = tuple(None if isinstance(a, torch.Tensor) else a for a in arguments)

    @staticmethod
    def backward(ctx: Any, grad_y: Any) -> Any:
        active = tuple(i for i, needed in enumerate(ctx.needs_input_grad[1:]) if needed)
        grads: list[Any] = [None] * len(ctx.needs_input_grad)
        if grad_y is not None and active:
            arguments = _saved_arguments(ctx)
            results = _Pullback.apply(_Active(ctx.inner, active), *arguments, grad_y)
            for i, r in zip(active, results, strict=True):
                grads[1 + i] = r
        return tuple(grads)

    @staticmethod
    def jvp(ctx: Any, _: Any, *tangents: Any) -> Any:
        active = tuple(i for i, t in enumerate(tangents) if t is not None)
        ts = (tangents[i] for i in active)
        return _Pushforward.apply(_Active(ctx.inner, active), *_saved_arguments(ctx), *ts)

    @staticmethod
    def vmap(info: Any, in_dims: Any, inner: InnerCalls, *arguments: Any) -> Any:
        return _loop(_Boundary, info, in_dims, (inner, *arguments)), 0


def _saved_arguments(ctx: Any) -> tuple[Any, ...]:
    tensors = iter(ctx.saved_tensors)
    return tuple(next(tensors) if a is None else a for a in ctx.others)


class _Linear(torch.autograd.Function):
    """``operator`` of the inner backend at (*arguments) with respect to the active ones,
    linear in its tangents (pushforward: one per active argument; pullback: one
    cotangent); not differentiable itself (a second derivative through the boundary),
    batched over its tangents in one inner call."""

    operator: str

    @classmethod
    def forward(cls, call: _Active, *rest: Any) -> Any:
        _check_first_order(rest)
        tangents = tuple(range(call.count(cls.operator, rest), len(rest)))
        return _legacy_batched(_linear(cls.operator), tangents, call, *rest)

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
    def vmap(cls, info: Any, in_dims: Any, call: _Active, *rest: Any) -> Any:
        _check_first_order(rest)
        n = call.count(cls.operator, rest)
        dims = in_dims[1:]
        out_dims = 0 if cls.operator == "pushforward" else (0,) * len(call.active)
        if all(d is None for d in dims[:n]):
            # a batch of tangents at one point (jacrev, jacfwd): one batched inner call
            ts = [
                t.expand(info.batch_size, *t.shape) if d is None else t.movedim(d, 0)
                for t, d in zip(rest[n:], dims[n:], strict=True)
            ]
            return _linear(cls.operator)(call, *rest[:n], *ts, batched=True), out_dims
        return _loop(cls, info, in_dims, (call, *rest)), out_dims


class _Pushforward(_Linear):
    operator = "pushforward"


class _Pullback(_Linear):
    operator = "pullback"


@dataclass(frozen=True)
class _Active:
    """The inner calls and the positions of the arguments they differentiate (one input of
    the linear functions, which torch.func passes through untouched: not a pytree)."""

    inner: InnerCalls
    active: tuple[int, ...]

    def count(self, operator: str, rest: tuple[Any, ...]) -> int:
        """How many of a linear function's inputs are g's arguments (then come one tangent
        per active argument, or one cotangent)."""
        return len(rest) - (len(self.active) if operator == "pushforward" else 1)


def _value(inner: InnerCalls, *arguments: Any) -> Any:
    like = next(a for a in arguments if isinstance(a, torch.Tensor))
    return inner.value(arguments, like)


@cache
def _linear(operator: str) -> Any:
    """``operator`` of the inner backend for plain tensors (tangents batched on axis 0 when
    ``batched``): f's output for a pushforward, a tuple (one per active argument) for a
    pullback. The inputs are detached: the outer framework's tangents, which a caller's
    forward-mode level may attach, are not the inner backend's."""

    def compute(call: _Active, *rest: Any, batched: bool = False) -> Any:
        inner, active, n = call.inner, call.active, call.count(operator, rest)
        arguments = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in rest[:n])
        ts = tuple(t.detach().contiguous() for t in rest[n:])
        if operator == "pushforward":
            tangents = tuple(zip(*ts, strict=True)) if batched else ts
            y = inner.pushforward(arguments, active, tangents, batched)
            return torch.stack(y) if batched else y
        results = inner.pullback(arguments, active, tuple(ts[0]) if batched else ts[0], batched)
        if batched:
            return tuple(torch.stack(r) for r in zip(*results, strict=True))
        return results

    return compute


def _legacy_batched(compute: Any, tangents: tuple[int, ...], first: Any, *inputs: Any) -> Any:
    """``compute(first, *inputs)`` where inputs may be batched by torch's older vmap
    (``torch._vmap_internals``), whose batched tensors cannot be detached or converted to
    NumPy: the batch (the innermost vmap level) is taken out, computed by one batched call
    (only inputs among ``tangents`` batched: a batch of tangents at one point) or example by
    example, and put back. Other inputs go straight to ``compute``."""
    batched = [_is_legacy_batched(a) for a in inputs]
    if not any(batched):
        return compute(first, *inputs)
    level = _legacy_level()
    plain = [
        torch._remove_batch_dim(a, level, 0, 0) if b else a
        for a, b in zip(inputs, batched, strict=True)
    ]
    if any(map(_is_legacy_batched, plain)):
        raise UnsupportedError(_NESTED_LEGACY_VMAP)
    size = next(a.shape[0] for a, b in zip(plain, batched, strict=True) if b)
    if all(i in tangents for i, b in enumerate(batched) if b):
        for i in tangents:
            if not batched[i]:
                plain[i] = plain[i].expand(size, *plain[i].shape)
        result = compute(first, *plain, batched=True)
    else:
        rows = [
            compute(first, *(a[i] if b else a for a, b in zip(plain, batched, strict=True)))
            for i in range(size)
        ]
        result = _stacked(rows)
    if isinstance(result, tuple):
        return tuple(torch._add_batch_dim(r, 0, level) for r in result)
    return torch._add_batch_dim(result, 0, level)


def _stacked(rows: list[Any]) -> Any:
    """Results of several examples stacked along axis 0 (each output of a tuple apart)."""
    if isinstance(rows[0], tuple):
        return tuple(torch.stack(column) for column in zip(*rows, strict=True))
    return torch.stack(rows)


def _is_legacy_batched(a: Any) -> bool:
    return isinstance(a, torch.Tensor) and torch._C._functorch.is_legacy_batchedtensor(a)


def _legacy_level() -> int:
    """The innermost level of torch's older vmap (private torch API, as torch 2.13 has it)."""
    level = torch._C._vmapmode_increment_nesting()
    torch._C._vmapmode_decrement_nesting()
    return int(level) - 1


def _check_first_order(arguments: tuple[Any, ...]) -> None:
    """An argument reaches the inner backend wrapped by torch.func only when a derivative of
    the boundary's derivative is being taken (torch.func.hessian, jacfwd of jacrev)."""
    if any(
        isinstance(a, torch.Tensor) and torch._C._functorch.is_functorch_wrapped_tensor(a)
        for a in arguments
    ):
        raise UnsupportedError(_SECOND_ORDER)


def _loop(fn: Any, info: Any, in_dims: Any, inputs: tuple[Any, ...]) -> Any:
    """fn applied to each example of a vmapped batch, stacked along axis 0."""
    moved = [a if d is None else a.movedim(d, 0) for a, d in zip(inputs, in_dims, strict=True)]
    return _stacked(
        [
            fn.apply(*(a if d is None else a[b] for a, d in zip(moved, in_dims, strict=True)))
            for b in range(info.batch_size)
        ]
    )
