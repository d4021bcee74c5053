"""torch internals that diffinterface relies on, each behind a version check.

``ENGINE_BACKWARD``: a single backward pass on plain tensors calls the autograd engine the
way ``torch.autograd.grad`` does (``torch.autograd.graph._engine_run_backward``, private,
checked at torch 2.13), without the Python that ``grad`` spends normalising and
validating its arguments (``_make_grads``): ≈ 9 µs of a small gradient, ≈ 20 µs of a batch.
``BATCHED_BACKWARD``: a batch of backward passes through ``torch._vmap_internals._vmap``,
as ``grad(..., is_grads_batched=True)`` runs them. ``is_functorch_wrapped`` tells a tensor
inside a ``torch.func`` transform, ``functorch_level`` whether one runs at all
(``torch._C._functorch``). ``JVP_NESTING``: whether ``torch.func.jvp`` counts its nesting
where :func:`in_open_level` reads it
(``torch._functorch.eager_transforms.JVP_NESTING``). A test asserts each is on at the
versions in constraints.txt, so that an upgrade that loses one fails CI.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.autograd.forward_ad as fwad
from torch._functorch import eager_transforms
from torch.overrides import has_torch_function

__all__ = [
    "BATCHED_BACKWARD",
    "ENGINE_BACKWARD",
    "JVP_NESTING",
    "backward",
    "functorch_level",
    "in_open_level",
    "is_functorch_wrapped",
]

_VERSION = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
_engine_run_backward: Any = getattr(torch.autograd.graph, "_engine_run_backward", None)
_vmap: Any = getattr(getattr(torch, "_vmap_internals", None), "_vmap", None)
#: whether single backward passes call the engine directly (see the module's docstring)
ENGINE_BACKWARD = _VERSION >= (2, 3) and _engine_run_backward is not None
#: whether batches of backward passes do too
BATCHED_BACKWARD = ENGINE_BACKWARD and _vmap is not None

is_functorch_wrapped: Any = torch._C._functorch.is_functorch_wrapped_tensor
#: ``functorch_level()``: the innermost running torch.func transform's level, else None
functorch_level: Any = torch._C._functorch.maybe_current_level
#: whether torch.func.jvp's nesting counter is where in_open_level reads it
JVP_NESTING = hasattr(eager_transforms, "JVP_NESTING") and hasattr(fwad, "_current_level")


def in_open_level() -> bool:
    """Whether the caller has an eager forward-mode level open (``dual_level()``, as
    ``gradcheck(check_forward_ad=True)`` opens), in which neither ``dual_level()`` nor an
    outermost ``torch.func.jvp`` can open their own ("Nested forward mode AD is not
    supported"); inside ``torch.func.jvp`` (its nesting counter above 0) a nested
    ``torch.func.jvp`` works as usual."""
    return fwad._current_level >= 0 and getattr(eager_transforms, "JVP_NESTING", 0) == 0


def backward(
    y: Any, xs: tuple[Any, ...], u: Any, create_graph: bool, batched: bool = False
) -> tuple[Any, ...]:
    """``torch.autograd.grad(y, xs, u, create_graph=create_graph, allow_unused=True,
    is_grads_batched=batched)``, for a non-empty batch of ``u``.

    For plain tensors this calls the engine as ``grad`` does (see the module's docstring):
    tensors of no subclass, no ``__torch_function__`` mode active, and ``u`` already of
    y's shape (after the batch axis) and dtype, as ``_make_grads`` leaves it, or None for a
    one-element floating y, which ``_make_grads`` replaces by ``ones_like(y)``. Anything
    else goes through ``grad``, which validates or raises as usual.
    """
    plain = (
        ENGINE_BACKWARD
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
        and (BATCHED_BACKWARD or not batched)
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
