"""JAX internals that diffinterface relies on for speed, each behind a version check.

``FAST_CALL``: a compiled kernel is called through the C++ callable that
``Compiled.__call__`` forwards to (``Compiled._executable.create_cpp_call``, private since
jax 0.4.30, checked at 0.10): the same checks of the arguments (structure, shapes, dtypes,
a TypeError for others) without the Python forwarding layer, ≈ 0.5 µs of a 5 µs call.
A test asserts that it is on at the versions in constraints.txt, so that an upgrade that
loses it fails CI instead of silently slowing every prepared call.
"""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["FAST_CALL", "fast_call"]

_VERSION = tuple(int(p) for p in jax.__version__.split(".")[:2])
#: whether compiled kernels are called through their C++ callable (see the docstring)
FAST_CALL = _VERSION >= (0, 4) and hasattr(jax.stages.Compiled, "_executable")


def fast_call(compiled: Any) -> Any:
    """The C++ callable behind ``compiled`` where :data:`FAST_CALL`, else ``compiled``."""
    if not FAST_CALL:
        return compiled
    make = getattr(compiled._executable, "create_cpp_call", None)
    params = getattr(compiled, "_params", None)
    call = None if make is None or params is None else make(params)
    return compiled if call is None else call
