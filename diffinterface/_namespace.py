"""``array_namespace``: one NumPy-like namespace for whatever array f receives.

Each array kind gives its namespace (``diffinterface._arrays``): NumPy, torch (also inside
torch.func transforms) and JAX (also tracers) through array-api-compat, HIPS autograd's
boxes ``autograd.numpy`` with the array-API names it lacks, AutoSparse's index-set arrays
the sparsity tracer's own. So a model written against the array API runs under every
backend unchanged.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from diffinterface._arrays import kind, kind_of

__all__ = ["array_namespace"]

_NUMPY = array_api_compat.array_namespace(np.empty(0))


def array_namespace(*arrays: Any) -> Any:
    """The array namespace (``xp``) for ``arrays``: ``xp.sum``, ``xp.exp``, ``xp.matmul``, ...

    Python numbers count as NumPy arrays. Use it inside f so that one f runs under every
    backend: ``xp = di.array_namespace(x); return xp.sum(xp.exp(x))``.

    Raises:
        TypeError: the arrays belong to different libraries, or are not arrays.
    """
    arrays = tuple(a for a in arrays if not isinstance(a, int | float))
    found = None
    for a in arrays:
        name = kind_of(a)
        if name is None:
            raise TypeError(
                f"di.array_namespace got a {type(a).__name__}, which is not an array of a "
                "library diffinterface knows (NumPy, torch, JAX, HIPS autograd, ...)."
            )
        if name != "numpy" and found != name:
            if found is not None:
                raise TypeError(
                    f"di.array_namespace got arrays of two libraries ({found} and {name}); "
                    "convert them to one first, e.g. with xp.asarray."
                )
            found = name
    if found is None:
        return _NUMPY
    return kind(found).namespace(arrays)
