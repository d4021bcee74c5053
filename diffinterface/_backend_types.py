"""Backend objects: small frozen configurations that name an AD framework and its options.

A backend object only says *which* framework and *how*; the code that talks to the
framework lives in ``diffinterface.backends.<name>`` and is imported the first time a
backend is used (see :func:`adapter_for`). Importing this module imports no framework.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Union

from diffinterface._errors import InvalidArgumentError

if TYPE_CHECKING:
    from diffinterface._adapter import Adapter
    from diffinterface._sparse.backend import AutoSparse

__all__ = [
    "AutoAutograd",
    "AutoFiniteDiff",
    "AutoJAX",
    "AutoTorch",
    "Backend",
    "BackendLike",
    "SecondOrder",
    "adapter_for",
    "available_backends",
    "backend",
    "resolve_backend",
]

Mode = Literal["reverse", "forward"]


def _check_choice(owner: str, option: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidArgumentError(
            f"{owner}({option}={value!r}) is not a valid option; choose one of {choices}."
        )


@dataclass(frozen=True)
class AutoJAX:
    """Differentiate with JAX; every prepared operator is ``jax.jit``-compiled ahead of time.

    Args:
        mode: ``"reverse"`` (jacobians by vmapped VJPs) or ``"forward"`` (by vmapped JVPs).
    """

    mode: Mode = "reverse"
    name: ClassVar[str] = "jax"

    def __post_init__(self) -> None:
        _check_choice("AutoJAX", "mode", self.mode, ("reverse", "forward"))


@dataclass(frozen=True)
class AutoTorch:
    """Differentiate with PyTorch: eager ``torch.autograd`` or ``torch.func``, per operator.

    Gradients, HVPs and Hessians use eager autograd (the fastest way on CPU); pushforwards
    and batched Jacobians use ``torch.func`` (jvp/vjp under vmap). Mutating functions and
    :class:`~diffinterface.Cache` contexts always go through eager autograd.

    Args:
        mode: ``"reverse"`` (jacobians by vmapped VJPs) or ``"forward"`` (by vmapped JVPs).
    """

    mode: Mode = "reverse"
    name: ClassVar[str] = "torch"

    def __post_init__(self) -> None:
        _check_choice("AutoTorch", "mode", self.mode, ("reverse", "forward"))


@dataclass(frozen=True)
class AutoAutograd:
    """Differentiate with HIPS autograd (make_vjp for reverse, make_jvp for forward products)."""

    name: ClassVar[str] = "autograd"


@dataclass(frozen=True)
class AutoFiniteDiff:
    """Finite differences on NumPy.

    Args:
        method: ``"central"`` (error O(h²)), ``"forward"`` (O(h), half the evaluations) or
            ``"complex"`` (complex step: exact to rounding for first derivatives; f must be
            real-analytic and written so that complex inputs flow through it).
        rel_step: relative step; ``None`` picks the usual optimum for the method and dtype
            (eps^(1/2) forward, eps^(1/3) central, eps^(1/4) for second differences).
    """

    method: Literal["central", "forward", "complex"] = "central"
    rel_step: float | None = None
    name: ClassVar[str] = "finitediff"

    def __post_init__(self) -> None:
        _check_choice("AutoFiniteDiff", "method", self.method, ("central", "forward", "complex"))
        if self.rel_step is not None and not self.rel_step > 0:
            raise InvalidArgumentError(
                f"AutoFiniteDiff(rel_step={self.rel_step!r}) must be a positive number or None."
            )


FirstOrderBackend = AutoJAX | AutoTorch | AutoAutograd | AutoFiniteDiff


@dataclass(frozen=True)
class SecondOrder:
    """Second derivatives as ``outer`` differentiation of ``inner`` differentiation.

    For ``second_derivative``, ``hvp``, ``hessian`` and their variants: the inner backend
    computes the derivative (or gradient) function, the outer backend differentiates it:
    a pushforward if the outer backend is in forward mode (or finite differences), else a
    pullback (Hessians are symmetric). Within one framework the two compose natively (e.g.
    forward-over-reverse: ``SecondOrder(AutoJAX(mode="forward"), AutoJAX())``); across two
    frameworks the inner derivative function is bridged into the outer framework by
    :class:`~diffinterface.DifferentiateWith`.

    Args:
        outer: backend object or name that differentiates the derivative function.
        inner: backend object or name that computes the derivative function.

    Raises:
        InvalidArgumentError: a backend is not a first-order backend, or the outer one
            takes complex steps (AD gradients are not complex-analytic functions).
    """

    outer: FirstOrderBackend
    inner: FirstOrderBackend
    name: ClassVar[str] = "second_order"

    def __post_init__(self) -> None:
        for role in ("outer", "inner"):
            b = getattr(self, role)
            if isinstance(b, str):
                object.__setattr__(self, role, backend(b))
            elif not isinstance(b, AutoJAX | AutoTorch | AutoAutograd | AutoFiniteDiff):
                raise InvalidArgumentError(
                    f"SecondOrder({role}=...) must be a first-order backend such as "
                    f"di.AutoJAX() or its name; got {b!r}."
                )
        if isinstance(self.outer, AutoFiniteDiff) and self.outer.method == "complex":
            raise InvalidArgumentError(
                "SecondOrder(outer=AutoFiniteDiff(method='complex')) would pass complex "
                "points to the inner backend's gradient; use method='central' outside."
            )


Backend = FirstOrderBackend | SecondOrder
BackendLike = Union[Backend, "AutoSparse", str]


@dataclass(frozen=True)
class _Entry:
    config: type
    adapter: str  # "module:Class", imported on first use
    framework: str  # the module whose presence makes the backend available
    extra: str  # the pip extra that installs the framework


_REGISTRY: dict[str, _Entry] = {
    "jax": _Entry(AutoJAX, "diffinterface.backends.jax:JaxAdapter", "jax", "jax"),
    "torch": _Entry(AutoTorch, "diffinterface.backends.torch:TorchAdapter", "torch", "torch"),
    "autograd": _Entry(
        AutoAutograd, "diffinterface.backends.autograd:AutogradAdapter", "autograd", "autograd"
    ),
    "finitediff": _Entry(
        AutoFiniteDiff, "diffinterface.backends.finitediff:FiniteDiffAdapter", "numpy", "all"
    ),
}


def backend(name: str, **options: Any) -> Backend:
    """Build a backend object from its name, e.g. ``backend("jax", mode="forward")``.

    Raises:
        InvalidArgumentError: the name is unknown or an option is invalid.
    """
    entry = _REGISTRY.get(name)
    if entry is None:
        raise InvalidArgumentError(
            f"Unknown backend name {name!r}; choose one of {sorted(_REGISTRY)}."
        )
    try:
        return entry.config(**options)
    except TypeError as e:
        raise InvalidArgumentError(f"backend({name!r}, **{options!r}): {e}") from e


def available_backends() -> list[str]:
    """Names of the backends whose framework is installed here (nothing is imported)."""
    return [n for n, e in _REGISTRY.items() if importlib.util.find_spec(e.framework) is not None]


def resolve_backend(b: BackendLike) -> Backend | AutoSparse:
    """Return the backend object for a backend object or a backend name.

    Raises:
        InvalidArgumentError: ``b`` is neither a backend object nor a known name.
    """
    if isinstance(b, str):
        return _named(b)
    if isinstance(b, AutoJAX | AutoTorch | AutoAutograd | AutoFiniteDiff | SecondOrder):
        return b
    from diffinterface._sparse.backend import AutoSparse  # its module imports this one

    if isinstance(b, AutoSparse):
        return b
    raise InvalidArgumentError(
        f"Expected a backend such as di.AutoJAX() or a name in {sorted(_REGISTRY)}, "
        f"got {b!r} of type {type(b).__name__}."
    )


@cache
def _named(name: str) -> Backend:
    """``backend(name)``, made once per name (backends are frozen values)."""
    return backend(name)


@cache
def adapter_for(b: Backend | AutoSparse) -> Adapter:
    """The adapter that implements backend ``b``, importing its framework on first use.

    For an AutoSparse, the adapter of its dense backend (which computes the products).

    Raises:
        ImportError: the framework is not installed; the message names the pip extra.
    """
    if isinstance(b, SecondOrder):
        from diffinterface._second_order import SecondOrderAdapter

        return SecondOrderAdapter(b, adapter_for(b.outer), adapter_for(b.inner))
    from diffinterface._sparse.backend import AutoSparse

    if isinstance(b, AutoSparse):
        return adapter_for(b.backend)
    entry = _REGISTRY[b.name]
    if importlib.util.find_spec(entry.framework) is None:
        raise ImportError(
            f"The {b.name!r} backend needs the {entry.framework!r} package, which is not "
            f"installed. Install it with: pip install 'diffinterface[{entry.extra}]'"
        )
    module_name, class_name = entry.adapter.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(b)
