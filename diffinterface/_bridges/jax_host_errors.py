"""Exceptions that f raises in the JAX bridge's host calls, found again from JAX's error.

JAX (0.10.2) turns an exception raised in a ``jax.pure_callback`` into a
``jax.errors.JaxRuntimeError`` that holds only its text (no ``__cause__``/``__context__``),
and logs it first. The host functions of :mod:`diffinterface._bridges.jax` are wrapped by
:func:`recorded`, which keeps the last few such exceptions; :func:`original_error` returns
f's own exception for JAX's error. It is registered with
:func:`diffinterface._errors.raise_original`, which the bridge calls where it evaluates host
calls at once (:func:`raised_as_itself`) and any caller of a JAX kernel can call.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

import jax
import numpy as np

from diffinterface._errors import raise_original, register_original_finder

__all__ = ["original_error", "raised_as_itself", "recorded"]

#: the latest exceptions raised by host functions and not yet claimed by original_error
#: (a few: one whose JAX error nobody passes to original_error is dropped in time)
_RAISED: collections.deque[BaseException] = collections.deque(maxlen=8)
_RAISED_LOCK = threading.Lock()
_HOST_NOTE = "(raised inside f, called on the host by a di.DifferentiateWith function under JAX)"


def original_error(e: BaseException) -> BaseException | None:
    """The exception f raised in a host call of the JAX bridge, if ``e`` is JAX's wrapper of
    it (a ``JaxRuntimeError`` whose text ends with that exception's type and message);
    else None. Each recorded exception is returned once."""
    if not isinstance(e, jax.errors.JaxRuntimeError):
        return None
    text = str(e)
    with _RAISED_LOCK:
        for original in reversed(_RAISED):
            if text.endswith(_summary(original)):
                _RAISED.remove(original)
                return original
    return None


def _summary(e: BaseException) -> str:
    """How JAX ends its error's text for an exception raised in a host callback."""
    try:
        return f"\n{type(e).__name__}: {e}"
    except Exception:  # a broken __str__: never matched
        return "\0"


def recorded(run: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """``run`` (a host function) recording what it raises, for :func:`original_error`."""

    def host(*arrays: np.ndarray) -> np.ndarray:
        try:
            return run(*arrays)
        except BaseException as e:
            if _HOST_NOTE not in getattr(e, "__notes__", ()):
                e.add_note(_HOST_NOTE)
            with _RAISED_LOCK:
                _RAISED.append(e)
            raise

    return host


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
        if e is None:
            return True
        with _RAISED_LOCK:
            return not any(e is r for r in _RAISED)


register_original_finder(original_error)
logging.getLogger("jax._src.callback").addFilter(_KnownErrors())
