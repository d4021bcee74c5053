"""JAX internals that diffinterface relies on for speed, each behind a version check.

``FAST_CALL``: a compiled kernel is called through the C++ callable that
``Compiled.__call__`` forwards to (``Compiled._executable.create_cpp_call``, private since
jax 0.4.30, checked at 0.10): the same checks of the arguments (structure, shapes, dtypes,
a TypeError for others) without the Python forwarding layer, ≈ 0.5 µs of a 5 µs call.

``FAST_X64``: a float64 kernel called with NumPy arguments outside x64 mode switches the
mode on for the call through the thread-local setting behind ``jax.enable_x64``
(``jax._src.config.enable_x64.swap_local`` / ``set_local``, checked at 0.10), ≈ 0.2 µs
where the context manager's four Python calls take ≈ 1.3 µs.

A test asserts that both are on at the versions in constraints.txt, so that an upgrade
that loses one fails CI instead of silently slowing every prepared call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

__all__ = ["FAST_CALL", "FAST_X64", "fast_call", "in_x64"]

_VERSION = tuple(int(p) for p in jax.__version__.split(".")[:2])
#: whether compiled kernels are called through their C++ callable (see the docstring)
FAST_CALL = _VERSION >= (0, 4) and hasattr(jax.stages.Compiled, "_executable")

_CONFIG = getattr(getattr(jax, "_src", None), "config", None)
_X64_STATE: Any = getattr(_CONFIG, "enable_x64", None)
#: whether x64 mode is switched per call through its thread-local setting (see above)
FAST_X64 = (
    _VERSION >= (0, 4) and hasattr(_X64_STATE, "swap_local") and hasattr(_X64_STATE, "set_local")
)


def fast_call(compiled: Any) -> Any:
    """The C++ callable behind ``compiled`` where :data:`FAST_CALL`, else ``compiled``."""
    if not FAST_CALL:
        return compiled
    make = getattr(compiled._executable, "create_cpp_call", None)
    params = getattr(compiled, "_params", None)
    call = None if make is None or params is None else make(params)
    return compiled if call is None else call


def in_x64(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` run with JAX's x64 mode on (and the caller's mode restored after it)."""
    if not FAST_X64 or getattr(_X64_STATE, "_update_thread_local_hook", None) is not None:

        def run_x64(*args: Any) -> Any:
            with jax.enable_x64(True):
                return call(*args)

        return run_x64
    swap, restore = _X64_STATE.swap_local, _X64_STATE.set_local

    def run_x64_fast(*args: Any) -> Any:
        previous = swap(True)
        try:
            return call(*args)
        finally:
            restore(previous)

    return run_x64_fast
