"""``array_namespace``: one NumPy-like namespace for whatever array f receives.

NumPy, torch (also inside torch.func transforms) and JAX (also tracers) go through
array-api-compat. HIPS autograd's boxes get ``autograd.numpy`` with the few array-API names
it lacks added, so a model written against the array API runs under every backend. The
index-set arrays of AutoSparse's sparsity tracer get the tracer's own namespace.
"""

from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace
from typing import Any

import array_api_compat
import numpy as np

__all__ = ["array_namespace"]

_autograd_namespace: Any = None
_TRACER_MODULE = "diffinterface._sparse.tracer"  # AutoSparse's index-set arrays


def array_namespace(*arrays: Any) -> Any:
    """The array namespace (``xp``) for ``arrays``: ``xp.sum``, ``xp.exp``, ``xp.matmul``, ...

    Python numbers count as NumPy arrays. Use it inside f so that one f runs under every
    backend: ``xp = di.array_namespace(x); return xp.sum(xp.exp(x))``.

    Raises:
        TypeError: the arrays belong to different libraries, or are not arrays.
    """
    if any(_is_autograd_box(a) for a in arrays):
        return _autograd()
    if any(type(a).__module__ == _TRACER_MODULE for a in arrays):
        from diffinterface._sparse.tracing import NAMESPACE

        return NAMESPACE
    arrays = tuple(a for a in arrays if not isinstance(a, int | float))
    if not arrays:
        return array_api_compat.array_namespace(np.empty(0))
    return array_api_compat.array_namespace(*arrays)


def _is_autograd_box(a: Any) -> bool:
    return "autograd" in sys.modules and type(a).__module__.startswith("autograd")


def _autograd() -> Any:
    global _autograd_namespace
    if _autograd_namespace is None:
        import autograd.numpy as anp

        _autograd_namespace = _with_array_api_names(anp)
    return _autograd_namespace


def _with_array_api_names(anp: ModuleType) -> Any:
    """autograd.numpy plus the array-API spellings that NumPy 1 style lacks."""
    names = {name: getattr(anp, name) for name in dir(anp) if not name.startswith("_")}
    names.update(
        concat=anp.concatenate,
        pow=anp.power,
        permute_dims=anp.transpose,
        matrix_transpose=lambda a: anp.swapaxes(a, -1, -2),
        asin=anp.arcsin,
        acos=anp.arccos,
        atan=anp.arctan,
        atan2=anp.arctan2,
        asinh=anp.arcsinh,
        acosh=anp.arccosh,
        atanh=anp.arctanh,
    )
    return SimpleNamespace(**names)
