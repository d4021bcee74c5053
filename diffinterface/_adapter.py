"""The protocol every backend adapter implements, its declared kernels, and its registry.

An adapter works in its framework's own array kind ("native" arrays). The core hands it an
out-of-place function ``fn(x, *consts) -> y`` (mutating functions and Cache contexts
already folded in) and asks for *kernels*: functions of native arrays computing one
operator. Everything is derived from the two abstract primitives, :meth:`Adapter.pushforward`
and :meth:`Adapter.pullback` (see ``diffinterface._derived``); an adapter computes an
operator its own way only where it declares it, with :func:`kernel` on the method::

    class MyAdapter(Adapter):
        @kernel("gradient")
        def gradient(self, fn, p): ...

The declaration is checked when the class is defined: an unknown operator is an error.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np

from diffinterface._backend_types import Backend, framework_of
from diffinterface._trees import Structure

__all__ = [
    "OPERATORS",
    "Adapter",
    "Fn",
    "Kernel",
    "KernelDeclaration",
    "NumpyAdapter",
    "Problem",
    "adapter_for",
    "kernel",
]

Fn = Callable[..., Any]
Kernel = Callable[..., Any]

#: the operators a kernel can be declared for
OPERATORS = frozenset(
    {
        "pushforward",
        "pullback",
        "derivative",
        "gradient",
        "jacobian",
        "second_derivative",
        "hvp",
        "hessian",
    }
)


@dataclass(frozen=True)
class Problem:
    """What a kernel builder knows about the call it builds for (native arrays).

    ``x`` is x's example as the kernel takes it: one native array, or, for a kernel
    declared ``structured``, x's structure of native arrays (``structure`` describes it).
    ``last_only``: the kernel returns the last output alone (the operator's own result),
    for a kernel declared ``last_only``. ``with_error``: the kernel returns, after its
    outputs, an estimate of the error of its last one (the same shape), for a kernel
    declared ``errors``.
    """

    x: Any
    y: Any  # something with fn's output shape and dtype
    batch: int | None  # number of tangents, None for one tangent
    mutates: bool  # f writes into arrays (y= or Cache): the backend must allow it
    structure: Structure | None = None
    last_only: bool = False
    with_error: bool = False
    #: the Constant values at preparation (native), for kernels that compile parts
    #: themselves (AutoSparse's compressed products)
    consts: tuple[Any, ...] = ()
    #: the caller's ``(f, x, contexts, y)``, x as the one array the operators see, for
    #: AutoSparse's sparsity detectors
    source: Any = None

    @property
    def x_size(self) -> int:
        return math.prod(self.x.shape) if self.structure is None else self.structure.size


@dataclass(frozen=True)
class KernelDeclaration:
    """An operator an adapter computes its own way, and what its kernel method takes:
    ``structured``: x in its structure (x-shaped results as x's leaves); ``last_only``: it
    honours ``Problem.last_only``; ``writes_out``: it takes ``out=`` (a NumPy array for
    the operator's own result) and writes into it (with ``Problem.with_error`` also
    ``error_out=`` for the estimate); ``errors``: it honours ``Problem.with_error`` (an
    estimate of its result's error, as finite differences with adaptive steps give)."""

    operator: str
    method: str
    structured: bool = False
    last_only: bool = False
    writes_out: bool = False
    errors: bool = False


def kernel(
    operator: str,
    *,
    structured: bool = False,
    last_only: bool = False,
    writes_out: bool = False,
    errors: bool = False,
) -> Callable[[Callable[..., Kernel]], Callable[..., Kernel]]:
    """Declare an adapter method ``(self, fn, p: Problem) -> Kernel`` as the adapter's own
    way to compute ``operator`` (see :class:`KernelDeclaration` for the options)."""

    def declare(method: Callable[..., Kernel]) -> Callable[..., Kernel]:
        method.__di_kernel__ = (operator, structured, last_only, writes_out, errors)  # type: ignore[attr-defined]
        return method

    return declare


class Adapter(abc.ABC):
    """Base class of the backend adapters.

    Class attributes declare what the generic code reads:

    * ``native_kind``: the array kind f receives (``"numpy"``, ``"torch"``, ``"jax"``);
    * ``accepted_kinds``: input kinds the kernels take as they are, without conversion;
    * ``supports_mutation``: whether f may write into arrays (``y=`` and Cache contexts);
    * ``compiles``: whether preparation compiles f (a prepared call never runs f's Python
      code, and the compiled code drops outputs nobody asked for);
    * ``checks_arguments``: whether its compiled kernels check the shapes and dtypes of
      their arguments themselves (JAX's executables do), so that a prepared call may start
      one before the guard compares them;
    * ``plain_values``: whether f only receives plain values (finite differences), so that
      a Python number returned by f still carries the derivative;
    * ``kernels``: the declared kernels, by (operator, structured), collected from
      :func:`kernel` declarations when the class is defined.
    """

    native_kind: ClassVar[str]
    accepted_kinds: ClassVar[frozenset[str]]
    supports_mutation: ClassVar[bool]
    compiles: ClassVar[bool] = False
    checks_arguments: ClassVar[bool] = False
    plain_values: ClassVar[bool] = False
    kernels: ClassVar[dict[tuple[str, bool], KernelDeclaration]] = {}
    #: kinds of outputs handed to the caller as the kernels return them (no conversion to
    #: x's array type, no blocks): AutoSparse's scipy.sparse matrices
    raw_outputs: ClassVar[frozenset[str]] = frozenset()
    #: why f may not write into arrays, for backends that do not ``support_mutation``
    mutation_refusal: ClassVar[str] = "its arrays are immutable"
    #: the array kind f receives where it is not ``native_kind`` (CasADi traces f with
    #: symbolic arrays, its kernels take NumPy arrays), for the capability tables
    receives: ClassVar[str | None] = None
    #: the most dimensions f's arrays may have (CasADi's: 2), None for any
    max_ndim: ClassVar[int | None] = None
    #: backends that can differentiate mutating code, named in errors of those that cannot
    mutation_hint: ClassVar[str] = (
        "Use di.AutoTorch() or di.AutoFiniteDiff(), which differentiate code that writes "
        "into arrays"
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = dict(cls.kernels)
        for name, member in vars(cls).items():
            mark = getattr(member, "__di_kernel__", None)
            if mark is None:
                continue
            operator, structured, last_only, writes_out, errors = mark
            if operator not in OPERATORS:
                raise TypeError(
                    f"{cls.__name__}.{name} declares a kernel for {operator!r}, which is not "
                    f"an operator; choose one of {sorted(OPERATORS)}."
                )
            declared[(operator, structured)] = KernelDeclaration(
                operator, name, structured, last_only, writes_out, errors
            )
        cls.kernels = declared

    def __init__(self, config: Backend) -> None:
        self.config = config

    def for_operator(self, operator: str) -> Adapter:
        """The adapter that computes ``operator`` (another one where this adapter only
        handles some operators, as AutoSparse's)."""
        return self

    def point_function(self, f: Callable[..., Any]) -> Callable[..., Any]:
        """The caller's f as a function of one point x, for code that calls it itself
        (AutoSparse's sparsity detectors): f, unless the adapter hands f batches of points."""
        return f

    def declared(self, operator: str, structured: bool) -> KernelDeclaration | None:
        """The adapter's own kernel for ``operator`` (taking x's structure), if declared."""
        return self.kernels.get((operator, structured))

    # -- arrays -----------------------------------------------------------------------
    @abc.abstractmethod
    def stack(self, arrays: list[Any]) -> Any:
        """Stack native arrays along a new leading axis."""

    @abc.abstractmethod
    def eye(self, n: int, like: Any) -> Any:
        """The n×n identity with ``like``'s dtype and device."""

    @abc.abstractmethod
    def ones(self, template: Any, like: Any) -> Any:
        """Ones with ``template``'s shape and dtype, on ``like``'s device."""

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
    @abc.abstractmethod
    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        """``(x, t, *consts) -> (y, J t)`` for one tangent ``t``."""

    @abc.abstractmethod
    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        """``(x, u, *consts) -> (y, uᵀ J)`` for one cotangent ``u``."""

    def pushforward_batch(self, fn: Fn, mutates: bool) -> Kernel:
        """``(x, T, *consts) -> (y, stack of J t)`` for tangents stacked on axis 0."""
        return self._loop(self.pushforward(fn, mutates))

    def pullback_batch(self, fn: Fn, mutates: bool) -> Kernel:
        """``(x, U, *consts) -> (y, stack of uᵀ J)`` for cotangents stacked on axis 0."""
        return self._loop(self.pullback(fn, mutates))

    def sparse_kernel(self, operator: str, fn: Fn, p: Problem) -> Kernel:
        """``jacobian`` or ``hessian`` as a scipy.sparse CSR array of the exact pattern, for
        a backend whose configuration declares ``exact_sparsity`` (AutoSparse asks it)."""
        raise NotImplementedError(f"{type(self).__name__} computes no exact sparse {operator}")

    def _loop(self, single: Kernel) -> Kernel:
        """Fallback batching for frameworks without vmap: one call per tangent."""

        def batched(x: Any, ts: Any, *consts: Any) -> tuple[Any, Any]:
            if ts.shape[0] == 0:  # no tangents (x or f(x) is empty): an empty stack
                y, r = single(x, ts.sum(0), *consts)
                return y, r[None][:0]
            results = [single(x, ts[i], *consts) for i in range(ts.shape[0])]
            return results[0][0], self.stack([r[1] for r in results])

        return batched


class NumpyAdapter(Adapter):
    """An adapter whose kernels take and return NumPy arrays (on the CPU): its array
    methods, once for every such backend."""

    def stack(self, arrays: list[Any]) -> Any:
        return np.stack(arrays)

    def eye(self, n: int, like: Any) -> Any:
        return np.eye(n, dtype=like.dtype)

    def ones(self, template: Any, like: Any) -> Any:
        return np.ones(np.shape(template), dtype=template.dtype)


@cache
def adapter_for(config: Backend) -> Adapter:
    """The adapter that implements backend ``config``, importing its framework on first use.

    Raises:
        ImportError: the framework is not installed; the message names the pip extra.
    """
    registered = framework_of(config)
    if registered is not None and importlib.util.find_spec(registered[0]) is None:
        framework, extra = registered
        raise ImportError(
            f"The {config.name!r} backend needs the {framework!r} package, which is not "
            f"installed. Install it with: pip install 'diffinterface[{extra}]'"
        )
    module_name, class_name = type(config).adapter.split(":")
    cls: type[Adapter] = getattr(importlib.import_module(module_name), class_name)
    return cls(config)
