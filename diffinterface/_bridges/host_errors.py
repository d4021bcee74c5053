"""Exceptions that f raises in a bridge's host functions, found again from the error the
framework makes of them.

JAX's ``pure_callback`` and TensorFlow's ``numpy_function`` turn an exception raised in a
host function into an error of their own that holds only its text. A bridge wraps its host
functions with :meth:`HostErrors.recorded`, which keeps the last few such exceptions, and
registers :meth:`HostErrors.original_error` with
:func:`diffinterface._errors.register_original_finder`, so that f's own exception is raised
again where diffinterface sees the framework's error.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable

import numpy as np

__all__ = ["HostErrors"]


class HostErrors:
    """The latest exceptions of one bridge's host functions, not yet claimed (a few: one
    whose framework error nobody looks up is dropped in time).

    Args:
        note: added to each exception, saying where it was raised.
        wrapper: the framework's error type for an exception of a host function.
        summary: how the framework writes an exception into its error's text.
        found_in: whether that summary is in the error's text (``(text, summary)``).
    """

    def __init__(
        self,
        note: str,
        wrapper: type[BaseException],
        summary: Callable[[BaseException], str],
        found_in: Callable[[str, str], bool],
    ) -> None:
        self._note, self._wrapper = note, wrapper
        self._summary, self._found_in = summary, found_in
        self._raised: collections.deque[BaseException] = collections.deque(maxlen=8)
        self._lock = threading.Lock()

    def recorded(self, run: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        """``run`` (a host function) recording what it raises."""

        def host(*arrays: np.ndarray) -> np.ndarray:
            try:
                return run(*arrays)
            except BaseException as e:
                if self._note not in getattr(e, "__notes__", ()):
                    e.add_note(self._note)
                with self._lock:
                    self._raised.append(e)
                raise

        return host

    def original_error(self, e: BaseException) -> BaseException | None:
        """The recorded exception that ``e`` (the framework's error) was made of, else
        None. Each recorded exception is returned once."""
        if not isinstance(e, self._wrapper):
            return None
        text = str(e)
        with self._lock:
            for original in reversed(self._raised):
                if self._found_in(text, self._text(original)):
                    self._raised.remove(original)
                    return original
        return None

    def holds(self, e: BaseException) -> bool:
        """Whether ``e`` is a recorded exception not yet claimed."""
        with self._lock:
            return any(e is r for r in self._raised)

    def _text(self, e: BaseException) -> str:
        try:
            return self._summary(e)
        except Exception:  # a broken __str__: never matched
            return "\0"
