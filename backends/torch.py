"""PyTorch adapter: eager ``torch.autograd`` or ``torch.func``, whichever is faster per operator.

On CPU, eager autograd beats ``torch.func`` several times over for gradients, HVPs and
Hessians (see ../shared/BASELINES.md), so single pullbacks, gradients and second order run
eagerly (Hessians and batched HVPs through ``is_grads_batched``). Batched pullbacks
(reverse Jacobians) use ``torch.func.vjp`` under ``vmap``; pushforwards ``torch.func.jvp``
(under ``vmap`` for batches). Functions that write into arrays (``y=``, Cache contexts)
cannot run under ``torch.func``; they are differentiated eagerly with reverse autograd or
forward-mode dual tensors. The eager kernels are in ``diffinterface.backends._torch_eager``.

Results never stay attached to the caller's graph, except where an enclosing
differentiation tracks x (see ``diffinterface.backends._torch_arrays``): then every kernel
computes through x (composed ``torch.func`` transforms, double backward), so that the
enclosing differentiation gets the right derivative.

Forward mode (``torch.func.jvp`` and dual tensors alike) keeps its levels in state shared
by all threads, so forward-mode kernels hold one lock: a preparation may be used from many
threads, and forward-mode calls then run one at a time. Reverse mode runs concurrently.
Inside an eager forward-mode level that the caller opened (``forward_ad.dual_level()``, as
``gradcheck(check_forward_ad=True)`` does), torch cannot open another one: pushforwards are
then computed with dual tensors at the caller's level.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch.func import jvp, vjp, vmap

from diffinterface._adapter import Adapter, Fn, Kernel, Problem, kernel
from diffinterface._derived import GRADIENT, HESSIAN, HVP
from diffinterface._kernels import last_output
from diffinterface.backends import _torch_eager as eager
from diffinterface.backends._torch_arrays import tracked
from diffinterface.backends._torch_compat import in_open_level, is_functorch_wrapped
from diffinterface.backends._torch_eager import FORWARD_AD, like

__all__ = ["TorchAdapter"]


def _untracked(*tensors: Any) -> tuple[Any, ...]:
    """The tensors detached where they require grad but no enclosing differentiation
    tracks them (a model's parameters): results must not stay attached to their graph."""
    return tuple(
        t.detach() if type(t) is torch.Tensor and t.requires_grad and not tracked(t) else t
        for t in tensors
    )


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

    def output_template(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        with torch.no_grad():
            return fn(x, *consts)

    # -- primitives -------------------------------------------------------------------
    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        if mutates:
            return eager.dual_pushforward(fn)

        def push(x: Any, t: Any, *consts: Any) -> Any:
            x, t, *rest = _untracked(x, t, *consts)
            consts = tuple(rest)
            with FORWARD_AD:
                if in_open_level():  # torch.func.jvp cannot open its own level here
                    return eager.level_pushforward(fn, x, t, consts)
                y, ty = jvp(lambda v: fn(v, *consts), (x,), (t,))  # type: ignore[misc]
            return y, like(ty, y)

        return push

    def pushforward_batch(self, fn: Fn, mutates: bool) -> Kernel:
        if mutates:
            return self._loop(eager.dual_pushforward(fn))
        one_by_one = self._loop(self.pushforward(fn, mutates))

        def push_batch(x: Any, ts: Any, *consts: Any) -> Any:
            if ts.shape[0] == 0 or in_open_level():
                # vmap over an empty batch breaks reshape(-1) in f; torch.func.jvp cannot
                # run inside a caller's eager forward-mode level
                return one_by_one(x, ts, *consts)
            x, ts, *rest = _untracked(x, ts, *consts)
            consts = tuple(rest)

            def one(t: Any) -> Any:
                return jvp(lambda v: fn(v, *consts), (x,), (t,))

            with FORWARD_AD:
                y, tys = vmap(one, out_dims=(None, 0))(ts)  # type: ignore[arg-type]
            return y, like(tys, y)

        return push_batch

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        return self._pullback(fn, batched=False)

    def pullback_batch(self, fn: Fn, mutates: bool) -> Kernel:
        if mutates:
            return self._pullback(fn, batched=True)
        no_cotangents = self._loop(self.pullback(fn, mutates))

        # torch.func's vjp under vmap is ~10× faster than eager is_grads_batched here.
        def pull_batch(x: Any, us: Any, *consts: Any) -> Any:
            if us.shape[0] == 0:  # vmap over an empty batch breaks reshape(-1) in f
                return no_cotangents(x, us, *consts)
            x, us, *rest = _untracked(x, us, *consts)
            consts = tuple(rest)
            y, pull = vjp(lambda v: fn(v, *consts), x)  # type: ignore[misc]
            return y, vmap(pull)(us)[0]

        return pull_batch

    @staticmethod
    def _pullback(fn: Fn, batched: bool) -> Kernel:
        """Eager reverse mode; through x where an enclosing differentiation tracks it."""
        fast = eager.pullback(fn, batched)

        def pull(x: Any, u: Any, *consts: Any) -> Any:
            if is_functorch_wrapped(x):  # inside torch.func: eager autograd cannot run here
                y, pull_u = vjp(lambda v: fn(v, *consts), x)  # type: ignore[misc]
                return y, (vmap(pull_u)(u) if batched else pull_u(u))[0]
            if tracked(x):  # inside an eager differentiation: keep the graph
                y = fn(x, *consts)
                return y, eager.grad(y, x, u, batched=batched, create_graph=True)
            return fast(x, u, *consts)

        return pull

    # -- faster operators (eager autograd), composed transforms where x is tracked ------
    @kernel("gradient", last_only=True)
    def gradient(self, fn: Fn, p: Problem) -> Kernel:
        composed = GRADIENT.build(self, fn, p)
        if p.last_only:
            composed = last_output(composed)
        return eager.gradient(fn, not p.last_only, composed)

    @kernel("gradient", structured=True, last_only=True)
    def structured_gradient(self, fn: Fn, p: Problem) -> Kernel:
        assert p.structure is not None
        return eager.structured_gradient(
            fn, p.structure, not p.last_only, _composed_gradient(fn, p)
        )

    @kernel("hvp")
    def hvp(self, fn: Fn, p: Problem) -> Kernel:
        return eager.hvp(fn, p.batch is not None, HVP.build(self, fn, p))

    @kernel("hvp", structured=True, last_only=True)
    def structured_hvp(self, fn: Fn, p: Problem) -> Kernel:
        assert p.structure is not None
        return eager.structured_hvp(fn, p.structure, p.batch, not p.last_only, _composed_hvp(fn, p))

    @kernel("hessian")
    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        return eager.hessian(fn, p, HESSIAN.build(self, fn, p))

    @kernel("second_derivative")
    def second_derivative(self, fn: Fn, p: Problem) -> Kernel:
        if p.mutates:
            return eager.dual_second_derivative(fn)
        return _func_second_derivative(fn)


def _composed_gradient(fn: Fn, p: Problem) -> Kernel:
    """The structured gradient by ``torch.func.vjp`` over x's structure: it composes with
    any enclosing differentiation."""
    leaves = p.structure.leaves  # type: ignore[union-attr]

    def gradient(x: Any, *consts: Any) -> Any:
        y, pull = vjp(lambda v: fn(v, *consts), x)  # type: ignore[misc]
        g = leaves(pull(torch.ones_like(y))[0])
        return g if p.last_only else (y, g)

    return gradient


def _composed_hvp(fn: Fn, p: Problem) -> Kernel:
    """The structured HVP by ``torch.func.jvp`` of ``torch.func.grad``: it composes."""
    leaves, batch = p.structure.leaves, p.batch  # type: ignore[union-attr]

    def hvp(x: Any, t: Any, *consts: Any) -> Any:
        grad = torch.func.grad(lambda v: fn(v, *consts))
        with FORWARD_AD:
            pairs: list[Any] = [jvp(grad, (x,), (ti,)) for ti in ((t,) if batch is None else t)]
        products = [leaves(pair[1]) for pair in pairs]
        stacked = (
            products[0] if batch is None else [torch.stack(c) for c in zip(*products, strict=True)]
        )
        return stacked if p.last_only else (leaves(pairs[0][0]), stacked)

    return hvp


def _func_second_derivative(fn: Fn) -> Kernel:
    """Forward over forward with ``torch.func.jvp``, f run once: the value and the first
    derivative come out of the same pass as the second."""

    def second(x: Any, *consts: Any) -> Any:
        x, *rest = _untracked(x, *consts)
        consts = tuple(rest)
        one = torch.ones_like(x)

        def d1(v: Any) -> Any:
            y, d = jvp(lambda w: fn(w, *consts), (v,), (one,))  # type: ignore[misc]
            return d, y

        with FORWARD_AD:
            d, dd, y = jvp(d1, (x,), (one,), has_aux=True)  # type: ignore[misc]
        return y, like(d, y), like(dd, y)

    return second
