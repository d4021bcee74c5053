"""The exceptions diffinterface raises.

One base class, :class:`DiffInterfaceError`, and a few subclasses that say what kind of
mistake was made. Each message states what was wrong, with the values, and what to do.
"""

from __future__ import annotations

__all__ = [
    "DiffInterfaceError",
    "InvalidArgumentError",
    "PreparationMismatchError",
    "UnsupportedError",
]


class DiffInterfaceError(Exception):
    """Base class of every error raised by diffinterface itself."""


class InvalidArgumentError(DiffInterfaceError, TypeError, ValueError):
    """An argument has the wrong type, dtype, shape or structure for the operator.

    It subclasses both ``TypeError`` and ``ValueError`` so that code catching either of the
    built-in exceptions keeps working.
    """


class UnsupportedError(DiffInterfaceError, NotImplementedError):
    """The chosen backend cannot do what was asked (e.g. differentiate a mutating function)."""


class PreparationMismatchError(DiffInterfaceError, ValueError):
    """A preparation was used with arguments other than the ones it was made for."""
