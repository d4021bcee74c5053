"""Shared handling of results: batches of tangents and ``out=``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optree

from diffinterface._errors import InvalidArgumentError
from diffinterface._namespace import array_namespace
from diffinterface._prep import write_out
from diffinterface._structured import is_structure

__all__ = ["as_matrix", "batch_of", "finish"]


def batch_of(tangents: Any, x: Any = None) -> int | None:
    """The number of tangents in a batch (a tuple of them), or None for one tangent.

    With a structured ``x`` (tangents shaped like x), a tuple with x's own structure is
    one tangent.
    """
    if not isinstance(tangents, tuple):
        return None
    t: Any = tangents
    if is_structure(x) and optree.tree_structure(t, none_is_leaf=True) == (
        optree.tree_structure(x, none_is_leaf=True)
    ):
        return None
    return len(tangents)


def finish(result: Any, batch: int | None, out: Any) -> Any:
    """Split a stacked batch into a tuple (when ``batch``) and copy into ``out`` if given."""
    if batch is None:
        if out is None:
            return result
        if type(result).__module__.startswith("scipy.sparse"):  # an AutoSparse result
            from diffinterface._sparse.compressed import write_sparse_out

            return write_sparse_out(result, out)
        return write_out(out, result)
    parts = tuple(_item(result, i) for i in range(batch))
    if out is None:
        return parts
    if not isinstance(out, tuple) or len(out) != batch:
        raise InvalidArgumentError(
            f"With a tuple of {batch} tangents, out= must be a tuple of {batch} arrays; "
            f"got {type(out).__name__}."
        )
    return tuple(write_out(o, p) for o, p in zip(out, parts, strict=True))


def _item(stacked: Any, i: int) -> Any:
    """``stacked[i]``, a 0-d array rather than a NumPy scalar for a stack of 0-d results."""
    part = stacked[i]
    return np.asarray(part) if isinstance(part, np.generic) else part


def as_matrix(result: Any, x: Any, flat: bool) -> Any:
    """With ``flat``, a Jacobian or Hessian of an array x as a 2-D matrix (rows, x.size).

    (For structured x the flat matrix is already built from the flat problem.)
    """
    if not flat or is_structure(x):
        return result
    n = math.prod(getattr(x, "shape", ()))
    return array_namespace(result).reshape(result, (-1, n))
