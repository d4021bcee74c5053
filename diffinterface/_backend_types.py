"""Backend objects: small frozen configurations that name an AD framework and its options.

A backend object only says *which* framework and *how*; the code that talks to the
framework (its adapter, see ``diffinterface._adapter``) lives in the module that the
configuration's ``adapter`` names and is imported the first time the backend is used.
A backend is registered by name with one :func:`register_backend` line. Importing this
module imports no framework.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Literal

from diffinterface._arrays import register_kind_module
from diffinterface._errors import InvalidArgumentError

__all__ = [
    "AutoAutograd",
    "AutoFiniteDiff",
    "AutoJAX",
    "AutoTensorFlow",
    "AutoTorch",
    "Backend",
    "BackendLike",
    "SecondOrder",
    "available_backends",
    "backend",
    "framework_of",
    "register_backend",
    "resolve_backend",
]

Mode = Literal["reverse", "forward"]


@dataclass(frozen=True)
class Backend:
    """Base class of every backend configuration (frozen, hashable, readable repr).

    Class attributes: ``name`` (the registered name, or what the configuration is);
    ``adapter``, the ``"module:Class"`` of its adapter; ``first_order``, whether it is a
    first-order backend that :class:`SecondOrder` and ``AutoSparse`` can wrap.
    """

    name: ClassVar[str]
    adapter: ClassVar[str]
    first_order: ClassVar[bool] = True
    #: (module, pip extra) that a configuration not registered by name needs installed
    requires: ClassVar[tuple[str, str] | None] = None

    def _check_choice(self, option: str, choices: tuple[Any, ...]) -> None:
        value = getattr(self, option)
        if value not in choices:
            raise InvalidArgumentError(
                f"{type(self).__name__}({option}={value!r}) is not a valid option; choose one "
                f"of {choices}."
            )


BackendLike = Backend | str


@dataclass(frozen=True)
class AutoJAX(Backend):
    """Differentiate with JAX; every prepared operator is ``jax.jit``-compiled ahead of time.

    Args:
        mode: ``"reverse"`` (jacobians by vmapped VJPs) or ``"forward"`` (by vmapped JVPs).
    """

    mode: Mode = "reverse"
    name: ClassVar[str] = "jax"
    adapter: ClassVar[str] = "diffinterface.backends.jax:JaxAdapter"

    def __post_init__(self) -> None:
        self._check_choice("mode", ("reverse", "forward"))


@dataclass(frozen=True)
class AutoTorch(Backend):
    """Differentiate with PyTorch: eager ``torch.autograd`` or ``torch.func``, per operator.

    Gradients, HVPs and Hessians use eager autograd (the fastest way on CPU); pushforwards
    and batched Jacobians use ``torch.func`` (jvp/vjp under vmap). Mutating functions and
    :class:`~diffinterface.Cache` contexts always go through eager autograd.

    Args:
        mode: ``"reverse"`` (jacobians by vmapped VJPs) or ``"forward"`` (by vmapped JVPs).
    """

    mode: Mode = "reverse"
    name: ClassVar[str] = "torch"
    adapter: ClassVar[str] = "diffinterface.backends.torch:TorchAdapter"

    def __post_init__(self) -> None:
        self._check_choice("mode", ("reverse", "forward"))


@dataclass(frozen=True)
class AutoAutograd(Backend):
    """Differentiate with HIPS autograd (make_vjp for reverse, make_jvp for forward products)."""

    name: ClassVar[str] = "autograd"
    adapter: ClassVar[str] = "diffinterface.backends.autograd:AutogradAdapter"


@dataclass(frozen=True)
class AutoFiniteDiff(Backend):
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
    adapter: ClassVar[str] = "diffinterface.backends.finitediff:FiniteDiffAdapter"

    def __post_init__(self) -> None:
        self._check_choice("method", ("central", "forward", "complex"))
        if self.rel_step is not None and not self.rel_step > 0:
            raise InvalidArgumentError(
                f"AutoFiniteDiff(rel_step={self.rel_step!r}) must be a positive number or None."
            )


@dataclass(frozen=True)
class AutoTensorFlow(Backend):
    """Differentiate with TensorFlow; every prepared operator is a ``tf.function`` traced
    into a concrete function ahead of time (one per kernel, run once at preparation).

    Reverse products use ``tf.GradientTape``, forward products
    ``tf.autodiff.ForwardAccumulator``, batches of them ``tf.vectorized_map``; Jacobians in
    reverse mode and Hessians use ``tape.jacobian``.

    Args:
        mode: ``"reverse"`` (Jacobians by ``tape.jacobian``) or ``"forward"`` (by a
            vectorised batch of JVPs).
        jit_compile: compile every kernel with XLA as well (``tf.function(jit_compile=True)``):
            about half the fixed cost of a call and faster element-wise code, for 50-200 ms
            more per preparation. XLA refuses some operations (``tf.numpy_function``, hence a
            DifferentiateWith inside f, string operations, some dynamic shapes); preparation
            then raises an error naming ``jit_compile=False``, the default that runs any f.
    """

    mode: Mode = "reverse"
    jit_compile: bool = False
    name: ClassVar[str] = "tensorflow"
    adapter: ClassVar[str] = "diffinterface.backends.tensorflow:TensorFlowAdapter"

    def __post_init__(self) -> None:
        self._check_choice("mode", ("reverse", "forward"))
        if not isinstance(self.jit_compile, bool):
            raise InvalidArgumentError(
                f"AutoTensorFlow(jit_compile={self.jit_compile!r}) must be True or False."
            )


@dataclass(frozen=True)
class SecondOrder(Backend):
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

    outer: Backend
    inner: Backend
    name: ClassVar[str] = "second_order"
    adapter: ClassVar[str] = "diffinterface._second_order:SecondOrderAdapter"
    first_order: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for role in ("outer", "inner"):
            b = getattr(self, role)
            if isinstance(b, str):
                object.__setattr__(self, role, backend(b))
            elif not (isinstance(b, Backend) and b.first_order):
                raise InvalidArgumentError(
                    f"SecondOrder({role}=...) must be a first-order backend such as "
                    f"di.AutoJAX() or its name; got {b!r}."
                )
        if getattr(self.outer, "method", None) == "complex":
            raise InvalidArgumentError(
                "SecondOrder(outer=AutoFiniteDiff(method='complex')) would pass complex "
                "points to the inner backend's gradient; use method='central' outside."
            )


@dataclass(frozen=True)
class _Entry:
    config: type[Backend]
    framework: str  # the module whose presence makes the backend available
    extra: str  # the pip extra that installs the framework


_REGISTRY: dict[str, _Entry] = {}


def register_backend(
    config: type[Backend], framework: str, extra: str, arrays: tuple[str, ...] = ()
) -> None:
    """Register a backend configuration class under its ``name``.

    Args:
        config: the configuration class (its ``adapter`` names the adapter to import).
        framework: the top-level module whose presence makes the backend available.
        extra: the pip extra of diffinterface that installs the framework.
        arrays: top-level packages whose array types the adapter's module describes (it
            registers their :class:`~diffinterface._arrays.ArrayKind` when imported).
    """
    _REGISTRY[config.name] = _Entry(config, framework, extra)
    for package in arrays:
        register_kind_module(package, config.adapter.split(":")[0])


register_backend(AutoJAX, framework="jax", extra="jax", arrays=("jax", "jaxlib"))
register_backend(AutoTorch, framework="torch", extra="torch", arrays=("torch",))
register_backend(AutoTensorFlow, framework="tensorflow", extra="tensorflow", arrays=("tensorflow",))
register_backend(AutoAutograd, framework="autograd", extra="autograd", arrays=("autograd",))
register_backend(AutoFiniteDiff, framework="numpy", extra="all")


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


def framework_of(config: Backend) -> tuple[str, str] | None:
    """(module, pip extra) that the backend needs installed: its framework's for a
    registered backend, its ``requires`` for another, else None."""
    entry = _REGISTRY.get(config.name)
    if entry is None or type(config) is not entry.config:
        return config.requires
    return (entry.framework, entry.extra)


def resolve_backend(b: BackendLike) -> Backend:
    """Return the backend object for a backend object or a backend name.

    Raises:
        InvalidArgumentError: ``b`` is neither a backend object nor a known name.
    """
    if isinstance(b, Backend):
        return b
    if isinstance(b, str):
        return _named(b)
    raise InvalidArgumentError(
        f"Expected a backend such as di.AutoJAX() or a name in {sorted(_REGISTRY)}, "
        f"got {b!r} of type {type(b).__name__}."
    )


@cache
def _named(name: str) -> Backend:
    """``backend(name)``, made once per name (backends are frozen values)."""
    return backend(name)
