"""torch tensors as an array kind (see ``diffinterface._arrays``), and what tells a tensor
that an enclosing differentiation is tracking.

A tensor is *tracked* when an enclosing differentiation will take its derivative: it is
inside a ``torch.func`` transform, a dual tensor of the caller's forward-mode level, or it
requires grad while diffinterface's own torch
differentiation runs f (:data:`RUNNING`) with grad mode on. A nested di call on a
tracked tensor must keep derivatives flowing: the torch backend computes through it
(double backward, composed transforms), other backends refuse it. A tensor that merely
requires grad (a model's parameter) is not tracked: results come back detached.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.autograd.forward_ad as fwad

from diffinterface._arrays import ArrayKind, identity, register_kind, signature
from diffinterface._conversions import nested_error
from diffinterface.backends._torch_compat import is_functorch_wrapped

__all__ = ["RUNNING", "TorchArrays", "tracked"]


class _State(threading.local):
    #: how many di torch differentiations run f on this thread (a class default: getattr of
    #: a name missing from a thread-local catches an AttributeError, ≈ 0.7 µs)
    depth = 0


#: this thread's count of di torch differentiations running f: the eager kernels
#: (``_torch_eager.on_leaves``) raise it while f runs, :func:`tracked` reads it
RUNNING = _State()


def tracked(t: Any) -> bool:
    """Whether an enclosing differentiation will take t's derivative (module docstring)."""
    if is_functorch_wrapped(t):
        return True
    if fwad._current_level >= 0 and fwad.unpack_dual(t).tangent is not None:
        return True  # a dual tensor of the caller's forward-mode level
    return bool(t.requires_grad) and torch.is_grad_enabled() and RUNNING.depth > 0


class TorchArrays(ArrayKind):
    name = "torch"
    library = "torch"
    float_dtypes = frozenset({"float16", "bfloat16", "float32", "float64"})
    bridge = "diffinterface._bridges.torch"

    def is_array(self, a: Any) -> bool:
        return isinstance(a, torch.Tensor)

    def signature(self, a: Any) -> tuple[Any, ...]:
        return ("torch", tuple(a.shape), a.dtype, a.device)

    def matcher(self, sig: tuple[Any, ...]) -> Callable[[Any], bool]:
        _, shape, dtype, device = sig  # a tensor's shape compares fastest with a tuple

        def matches(a: Any) -> bool:
            if type(a) is torch.Tensor:
                return a.dtype is dtype and a.shape == shape and a.device == device
            return signature(a) == sig

        def matches_on_cpu(a: Any) -> bool:  # is_cpu: no device object made per call
            if type(a) is torch.Tensor:
                return a.dtype is dtype and a.shape == shape and a.is_cpu
            return signature(a) == sig

        return matches_on_cpu if device.type == "cpu" else matches

    def dtype_name(self, a: Any) -> str:
        return str(a.dtype).removeprefix("torch.")

    def describe_array(self, a: Any) -> str:
        return "a torch tensor"

    def is_real_floating(self, a: Any) -> bool:
        return bool(a.dtype.is_floating_point)

    def to_numpy(self, a: Any) -> np.ndarray:
        if tracked(a):
            raise nested_error(self.traced_by(a))
        return a.detach().cpu().numpy()

    def from_numpy(self, a: np.ndarray, device: Any = None) -> Any:
        if not a.flags.writeable or any(s < 0 for s in a.strides):
            a = np.array(a)
        t = torch.from_numpy(a)
        return t if device is None or device.type == "cpu" else t.to(device)

    def to_device(self, device: Any) -> Callable[[Any], Any]:
        if device is None or device.type == "cpu":
            return identity
        return lambda t: t.to(device)

    def device(self, a: Any) -> Any:
        return a.device

    def copy(self, a: Any) -> Any:
        return a.clone()

    def plain_value(self, a: Any) -> Any:
        return a.detach()

    def shares_memory(self, a: Any, b: Any) -> bool:
        if not isinstance(b, torch.Tensor):
            return False
        if is_functorch_wrapped(a) or is_functorch_wrapped(b):  # no storage to compare
            return a is b
        return bool(a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr())

    def write(self, out: Any, value: Any, role: str) -> None:
        self.check_out(out, value, role)
        out.copy_(value)

    def zeros(self, shape: tuple[int, ...], like: Any) -> Any:
        return like.new_zeros(shape, dtype=_floating(like, "float64"))

    def scratch(
        self, buffers: dict[Any, Any], shape: tuple[int, ...], like: Any, fallback: str
    ) -> Any:
        dtype = _floating(like, fallback)
        if is_functorch_wrapped(like):
            # Inside torch.func a buffer must belong to the active transform level: only a
            # tensor created from `like` does (and under vmap it is batched like `like`).
            return like.new_zeros(shape, dtype=dtype)
        key = ("torch", dtype, like.device, torch.is_inference_mode_enabled())
        buf = buffers.get(key)
        if buf is None or tuple(buf.shape) != shape:
            buf = buffers[key] = torch.zeros(shape, dtype=dtype, device=like.device)
        else:
            buf.detach_()  # drop the last call's graph and forward-mode tangent
        return buf

    def buffer_key(self, a: Any) -> tuple[Any, ...] | None:
        if a.requires_grad or a._base is not None or is_functorch_wrapped(a):
            return None  # a view: detach_() refuses views
        return ("torch", a.dtype, a.device, a.is_inference())

    def traced_by(self, a: Any) -> str | None:
        if is_functorch_wrapped(a):
            return "a torch.func transform"
        if tracked(a):
            return "diffinterface's torch differentiation (it requires grad)"
        return None


def _floating(like: Any, fallback: str) -> Any:
    if like.dtype.is_floating_point or like.dtype.is_complex:
        return like.dtype
    return getattr(torch, fallback, torch.float64)


register_kind(TorchArrays(), ("torch",))
