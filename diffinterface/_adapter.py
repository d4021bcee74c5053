"""The protocol every backend adapter implements, with generic batching fallbacks.

An adapter works in its framework's own array type ("native" arrays). The core hands it
an out-of-place function ``fn(x, *consts) -> y`` (mutating functions and Cache contexts
already folded in) and asks for *kernels*: functions of native arrays computing one
operator. Everything is derived from two primitives, :meth:`Adapter.pushforward` and
:meth:`Adapter.pullback`; an adapter may also define ``native_<operator>`` methods where its
framework has something faster (see ``diffinterface._operators``), and ``plain_<operator>``
methods for a kernel returning the plain operator's result alone where skipping the other
outputs saves work (a backend that compiles gets that by compiling the last output alone).
For structured x, ``structured_<operator>(fn, p, tree)`` and
``plain_structured_<operator>(fn, p, tree)`` kernels take x in its structure ``tree`` and
give x-shaped results in it (see ``diffinterface._structured.Fusion``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from diffinterface._backend_types import Backend

__all__ = ["Adapter", "Fn", "Kernel"]

Fn = Callable[..., Any]
Kernel = Callable[..., Any]


class Adapter:
    """Base class of the backend adapters (one per module in ``diffinterface.backends``).

    Class attributes declare capabilities that the generic code reads:

    * ``native_kind``: the array kind f receives (``"numpy"``, ``"torch"``, ``"jax"``);
    * ``accepted_kinds``: input kinds the kernels take as they are, without conversion;
    * ``supports_mutation``: whether f may write into arrays (``y=`` and Cache contexts;
      the buffers themselves come from ``diffinterface._diffcache``, by array type);
    * ``compiles``: whether preparation traces and compiles f once;
    * ``plain_values``: whether f only receives plain values (finite differences), so that
      a Python number returned by f still carries the derivative;
    * ``writes_out``: operators whose ``native_<operator>`` kernel takes ``out=`` (a NumPy
      array for the plain result) and writes the result into it instead of a new array.
    """

    native_kind: ClassVar[str]
    accepted_kinds: ClassVar[frozenset[str]]
    supports_mutation: ClassVar[bool]
    #: whether preparation compiles f (a prepared call must then never run f's Python code)
    compiles: ClassVar[bool] = False
    plain_values: ClassVar[bool] = False
    writes_out: ClassVar[frozenset[str]] = frozenset()
    #: backends that can differentiate mutating code, named in errors of those that cannot
    MUTATION_HINT: ClassVar[str] = (
        "Use di.AutoTorch() or di.AutoFiniteDiff(), which differentiate code that writes "
        "into arrays"
    )

    def __init__(self, config: Backend) -> None:
        self.config = config

    # -- arrays -----------------------------------------------------------------------
    def stack(self, arrays: list[Any]) -> Any:
        """Stack native arrays along a new leading axis."""
        raise NotImplementedError

    def eye(self, n: int, like: Any) -> Any:
        """The n×n identity with ``like``'s dtype and device."""
        raise NotImplementedError

    def ones(self, template: Any, like: Any) -> Any:
        """Ones with ``template``'s shape and dtype, on ``like``'s device."""
        raise NotImplementedError

    def to_native(self, a: Any) -> Any:
        """Convert a NumPy, torch or JAX array (a Constant's value) to a native array."""
        raise NotImplementedError

    # -- compilation ------------------------------------------------------------------
    def compile(self, kernel: Kernel, example_args: tuple[Any, ...]) -> Kernel:
        """Compile ``kernel`` for arguments like ``example_args`` (identity by default)."""
        return kernel

    def output_template(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        """Something with the shape and dtype of ``fn(x, *consts)`` (default: evaluate)."""
        return fn(x, *consts)

    def evaluate(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        """``fn(x, *consts)`` on native arrays, in the framework's right numeric setting."""
        return fn(x, *consts)

    # -- primitives -------------------------------------------------------------------
    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        """``(x, t, *consts) -> (y, J t)`` for one tangent ``t``."""
        raise NotImplementedError

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        """``(x, u, *consts) -> (y, uᵀ J)`` for one cotangent ``u``."""
        raise NotImplementedError

    def pushforward_batch(self, fn: Fn, mutates: bool) -> Kernel:
        """``(x, T, *consts) -> (y, stack of J t)`` for tangents stacked on axis 0."""
        return self._loop(self.pushforward(fn, mutates))

    def pullback_batch(self, fn: Fn, mutates: bool) -> Kernel:
        """``(x, U, *consts) -> (y, stack of uᵀ J)`` for cotangents stacked on axis 0."""
        return self._loop(self.pullback(fn, mutates))

    def _loop(self, single: Kernel) -> Kernel:
        """Fallback batching for frameworks without vmap: one call per tangent."""

        def batched(x: Any, ts: Any, *consts: Any) -> tuple[Any, Any]:
            if ts.shape[0] == 0:  # no tangents (x or f(x) is empty): an empty stack
                y, r = single(x, ts.sum(0), *consts)
                return y, r[None][:0]
            results = [single(x, ts[i], *consts) for i in range(ts.shape[0])]
            return results[0][0], self.stack([r[1] for r in results])

        return batched
