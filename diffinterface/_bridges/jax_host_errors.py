"""Exceptions that f raises in the JAX bridge's host calls, found again from JAX's error.

JAX (0.10.2) turns an exception raised in a ``jax.pure_callback`` into a
``jax.errors.JaxRuntimeError`` that holds only its text (no ``__cause__``/``__context__``),
and logs it first. The host functions of :mod:`diffinterface._bridges.jax` are wrapped by
:func:`recorded` and :func:`original_error` returns f's own exception for JAX's error
(:class:`~diffinterface._bridges.host_errors.HostErrors`). It is registered with
:func:`diffinterface._errors.raise_original`, which the bridge calls where it evaluates host
calls at once (:func:`raised_as_itself`) and any caller of a JAX kernel can call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import jax

from diffinterface._bridges.host_errors import HostErrors
from diffinterface._errors import raise_original, register_original_finder

__all__ = ["original_error", "raised_as_itself", "recorded"]

_ERRORS = HostErrors(
    "(raised inside f, called on the host by a di.DifferentiateWith function under JAX)",
    jax.errors.JaxRuntimeError,
    lambda e: f"\n{type(e).__name__}: {e}",  # how JAX ends its error's text
    str.endswith,
)
recorded, original_error = _ERRORS.recorded, _ERRORS.original_error


@contextlib.contextmanager
def raised_as_itself() -> Iterator[None]:
    """Around host calls evaluated at once (no jax.jit around them): JAX's error for an
    exception of f becomes that exception again. (While tracing, nothing is raised here.)"""
    try:
        yield
    except jax.errors.JaxRuntimeError as e:
        raise_original(e)
        raise


class _KnownErrors(logging.Filter):
    """Drops JAX's log record of an exception raised by a host function of the bridge
    (JAX logs every one before wrapping it): the exception surfaces once, where it is
    raised."""

    def filter(self, record: logging.LogRecord) -> bool:
        e = record.exc_info[1] if record.exc_info else None
        return e is None or not _ERRORS.holds(e)


register_original_finder(original_error)
logging.getLogger("jax._src.callback").addFilter(_KnownErrors())
