"""Shared handling of results: batches of tangents and ``out=``."""

from __future__ import annotations

from typing import Any

from diffinterface._errors import InvalidArgumentError
from diffinterface._prep import write_out

__all__ = ["finish"]


def finish(result: Any, batch: int | None, out: Any) -> Any:
    """Split a stacked batch into a tuple (when ``batch``) and copy into ``out`` if given."""
    if batch is None:
        if out is None:
            return result
        if type(result).__module__.startswith("scipy.sparse"):  # an AutoSparse result
            from diffinterface._sparse.compressed import write_sparse_out

            return write_sparse_out(result, out)
        return write_out(out, result)
    parts = tuple(result[i] for i in range(batch))
    if out is None:
        return parts
    if not isinstance(out, tuple) or len(out) != batch:
        raise InvalidArgumentError(
            f"With a tuple of {batch} tangents, out= must be a tuple of {batch} arrays; "
            f"got {type(out).__name__}."
        )
    return tuple(write_out(o, p) for o, p in zip(out, parts, strict=True))
