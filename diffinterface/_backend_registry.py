"""The backend registry: the base class of backend configurations, registration by name,
and the lookups from a name or an object to a configuration. Importing this module imports
no framework; the built-in configurations register themselves in
``diffinterface._backend_types``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from diffinterface._arrays import register_kind_module
from diffinterface._errors import InvalidArgumentError

__all__ = [
    "Backend",
    "BackendLike",
    "available_backends",
    "backend",
    "framework_of",
    "register_backend",
    "resolve_backend",
]


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
    #: the backend computes sparse Jacobians and Hessians with their exact pattern itself
    #: (its adapter's ``sparse_kernel``): AutoSparse needs no detector nor colouring
    exact_sparsity: ClassVar[bool] = False

    def _check_choice(self, option: str, choices: tuple[Any, ...]) -> None:
        value = getattr(self, option)
        if value not in choices:
            raise InvalidArgumentError(
                f"{type(self).__name__}({option}={value!r}) is not a valid option; choose one "
                f"of {choices}."
            )


BackendLike = Backend | str


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
