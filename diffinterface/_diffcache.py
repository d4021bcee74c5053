"""``DiffCache`` and ``get_tmp``: scratch buffers that survive automatic differentiation.

Code that writes into its own preallocated buffers breaks under AD: the values written are
complex steps, tracked tensors or dual tensors that an ordinary float64 buffer cannot hold.
``tmp = get_tmp(cache, x)`` hands out a buffer of the cache's shape whose array type, dtype,
device and AD transform match ``x``, reusing one buffer per array type, dtype and device
where that is sound and creating one per call where the framework demands it (inside
``torch.func`` transforms). JAX, HIPS autograd and TensorFlow arrays are immutable:
``get_tmp`` refuses them at once. The ``di.Cache`` context and the output buffer of a
mutating ``f(y, x)`` are built on the same functions. See ``docs/buffers.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from diffinterface._arrays import kind, kind_of
from diffinterface._errors import InvalidArgumentError, UnsupportedError

__all__ = ["DiffCache", "get_tmp", "new_buffer"]

_IMMUTABLE = (
    "di.get_tmp got {what}: {framework} arrays are immutable, so there is no buffer that f "
    "could write into. Either write this function without in-place writes (build arrays "
    "functionally, e.g. with xp.stack or xp.where), or differentiate it with "
    "di.AutoTorch() or di.AutoFiniteDiff(), which differentiate code that writes into "
    "buffers: the whole f, or only the part that writes, as g = di.DifferentiateWith(part, "
    "di.AutoTorch()) called inside f."
)


class DiffCache:
    """A scratch buffer for code that is differentiated: get one with :func:`get_tmp`.

    Args:
        buffer: a NumPy array or torch tensor to use as scratch space (its shape is the
            buffer's shape; it is itself handed out when no AD type is in flight and the
            array type, dtype and device match), or any array or number as a template of
            the shape only (a JAX array, a torch tensor that requires grad).
        like_ndim: the number of axes of an unbatched ``like``. A ``like`` with more axes
            gets a buffer with ``like``'s extra leading (batch) axes prepended to the
            cache's shape. ``None`` (the default): the buffer always has the cache's shape.

    Raises:
        InvalidArgumentError: ``buffer`` is not an array or number, or ``like_ndim`` is
            not a non-negative int.

    Example:
        >>> import numpy as np, diffinterface as di
        >>> cache = di.DiffCache(np.zeros(3))
        >>> def f(x):
        ...     tmp = di.get_tmp(cache, x)  # float64, complex, torch, tracked, ...
        ...     tmp[...] = 2 * x
        ...     return di.array_namespace(x).sum(tmp * x)
        >>> di.gradient(f, di.AutoFiniteDiff(method="complex"), np.ones(3))
        array([4., 4., 4.])
    """

    __slots__ = ("_buffers", "_dtype_name", "like_ndim", "shape")

    def __init__(self, buffer: Any, *, like_ndim: int | None = None) -> None:
        if isinstance(buffer, bool | np.bool_) or not (
            isinstance(buffer, int | float | complex | np.generic) or kind_of(buffer)
        ):
            raise InvalidArgumentError(
                f"di.DiffCache needs an array (the scratch buffer or a template of its shape); "
                f"got a {type(buffer).__name__}. Pass e.g. di.DiffCache(np.zeros(n))."
            )
        if like_ndim is not None and (not isinstance(like_ndim, int) or like_ndim < 0):
            raise InvalidArgumentError(
                f"like_ndim must be None or a non-negative int (the axes of one unbatched "
                f"`like`); got {like_ndim!r}."
            )
        self.shape: tuple[int, ...] = tuple(np.shape(buffer))
        self.like_ndim = like_ndim
        #: dtype used when ``like`` carries no floating dtype (e.g. an integer array)
        dtype = buffer.dtype if hasattr(buffer, "dtype") else np.result_type(buffer)
        self._dtype_name = str(dtype).removeprefix("torch.")
        self._buffers: dict[tuple[Any, ...], Any] = {}
        name = kind_of(buffer)
        key = kind(name).buffer_key(buffer) if name else None
        if key is not None:
            self._buffers[key] = buffer

    def __repr__(self) -> str:
        extra = "" if self.like_ndim is None else f", like_ndim={self.like_ndim}"
        return f"DiffCache(shape={self.shape}, dtype={self._dtype_name}{extra})"


def get_tmp(cache: DiffCache, like: Any) -> Any:
    """A writable buffer of ``cache``'s shape that can hold the values AD passes as ``like``.

    Pass the differentiated input (or a value computed from it) as ``like``. The buffer's
    array type, dtype and device are ``like``'s (complex while finite differences take a
    complex step; a tensor of the active ``torch.func`` level inside a transform). Its
    contents are left over from earlier calls: write before you read. Do not return the
    buffer, or a view of it, from f: a reused buffer is overwritten by the next call.

    Shape: the cache's shape, with ``like``'s leading axes prepended when ``like`` has more
    axes than the cache's ``like_ndim`` (a batch); inside ``torch.func.vmap`` shapes are
    per example and the buffer is batched by vmap itself.

    Reuse: one buffer per (dtype, device) for NumPy arrays (plain evaluation and finite
    differences) and eager torch tensors (also with ``requires_grad`` or forward-mode
    duals; detached from any old graph before it is handed out); a new buffer per call for
    tensors inside ``torch.func`` transforms (grad, jvp, vjp, vmap, jacrev, ...).

    Raises:
        UnsupportedError: ``like`` is a JAX array or tracer, a HIPS autograd box or a
            TensorFlow tensor: those arrays are immutable.
        InvalidArgumentError: ``cache`` is not a DiffCache, or ``like`` is not an array.
    """
    if not isinstance(cache, DiffCache):
        raise InvalidArgumentError(
            f"di.get_tmp needs a di.DiffCache as its first argument; got a "
            f"{type(cache).__name__}. Create one once, outside f: cache = "
            "di.DiffCache(np.zeros(n))."
        )
    like = _scalar_as_array(like)
    name = kind_of(like)
    if name is None:
        raise InvalidArgumentError(
            f"di.get_tmp(cache, like) needs `like` to be an array (the input being "
            f"differentiated, or a value computed from it); got a {type(like).__name__}."
        )
    shape = _shape(cache, tuple(like.shape))
    buffer = kind(name).scratch(cache._buffers, shape, like, cache._dtype_name)
    if buffer is None:
        array_kind = kind(name)
        what = array_kind.describe_array(like)
        raise UnsupportedError(_IMMUTABLE.format(what=what, framework=array_kind.library))
    return buffer


def new_buffer(shape: tuple[int, ...], like: Any) -> Any:
    """A new zero array of ``shape`` with ``like``'s array type, dtype, device and transform.

    For buffers that must not be reused, such as the output ``y`` of a mutating ``f(y, x)``
    (f returns it). Only called for backends that declare ``supports_mutation``.
    """
    like = _scalar_as_array(like)
    return kind(kind_of(like) or "numpy").zeros(shape, like)


def _scalar_as_array(like: Any) -> Any:
    """Python and NumPy numbers (finite differences of a scalar x pass these) as 0-d arrays."""
    if isinstance(like, int | float | complex | np.generic) and not isinstance(like, bool):
        return np.asarray(like)
    return like


def _shape(cache: DiffCache, like_shape: tuple[int, ...]) -> tuple[int, ...]:
    extra = 0 if cache.like_ndim is None else len(like_shape) - cache.like_ndim
    return like_shape[:extra] + cache.shape if extra > 0 else cache.shape
