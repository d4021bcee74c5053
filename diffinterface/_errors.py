"""The exceptions diffinterface raises.

One base class, :class:`DiffInterfaceError`, and a few subclasses that say what kind of
mistake was made. Each message states what was wrong, with the values, and what to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "DiffInterfaceError",
    "InvalidArgumentError",
    "PreparationMismatchError",
    "UnsupportedError",
    "WorkerError",
    "raise_original",
    "register_original_finder",
]


class DiffInterfaceError(Exception):
    """Base class of every error raised by diffinterface itself."""

    #: TensorFlow's AutoGraph re-raises an exception from the Python code of a
    #: ``tf.function`` as a ``StagingError`` unless it has this attribute: a di call inside
    #: the caller's ``tf.function`` raises diffinterface's own error, with its type.
    ag_pass_through = True


class InvalidArgumentError(DiffInterfaceError, TypeError, ValueError):
    """An argument has the wrong type, dtype, shape or structure for the operator.

    It subclasses both ``TypeError`` and ``ValueError`` so that code catching either of the
    built-in exceptions keeps working.
    """


class UnsupportedError(DiffInterfaceError, NotImplementedError):
    """The chosen backend cannot do what was asked (e.g. differentiate a mutating function)."""


class PreparationMismatchError(DiffInterfaceError, ValueError):
    """A preparation was used with arguments other than the ones it was made for."""


class WorkerError(DiffInterfaceError, RuntimeError):
    """A worker of :class:`~diffinterface.Distributed` died before it returned its chunk,
    and the engine could not recompute it: no result was assembled."""


#: ``find(e)``: the exception that f raised, if ``e`` is a framework's wrapper of it (JAX
#: turns an exception raised in a host callback into a ``JaxRuntimeError``), else None.
#: Registered by the modules that call f inside a framework (diffinterface._bridges.jax).
_ORIGINAL_FINDERS: list[Callable[[BaseException], BaseException | None]] = []


def register_original_finder(find: Callable[[BaseException], BaseException | None]) -> None:
    """Add ``find`` to the functions :func:`raise_original` asks."""
    if find not in _ORIGINAL_FINDERS:
        _ORIGINAL_FINDERS.append(find)


def raise_original(e: BaseException, note: str | None = None) -> None:
    """Raise the exception f raised, with its own type, traceback and chain, if ``e`` is a
    framework's wrapper of it (see ``_ORIGINAL_FINDERS``); else return (the caller then
    re-raises ``e``). With ``note``, the exception that surfaces (f's own, or ``e``) gets
    it, unless it is one of diffinterface's own errors. Called where an exception from a
    kernel is caught, once per exception."""
    original = next((o for o in map(_call_with(e), _ORIGINAL_FINDERS) if o is not None), e)
    if note is not None and not isinstance(original, DiffInterfaceError):
        original.add_note(note)
    if original is e:
        return
    context = original.__context__
    try:
        raise original
    finally:  # raising it here made e its context: f's own context is kept instead
        original.__context__ = context


def _call_with(e: BaseException) -> Callable[[Callable[[BaseException], Any]], Any]:
    return lambda find: find(e)
