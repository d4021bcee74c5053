"""Tangents and cotangents: one, or a batch (a tuple of them), each shaped like x (or like
f(x) for pullback's cotangents), checked once at preparation.

A tangent has exactly the structure of what it is shaped like; a tuple whose every element
has that structure is a batch. A Python or NumPy number takes the dtype of what it is
shaped like. A list is refused (ambiguous). The kernels take tangents in the caller's
layout with their leaves as native arrays (see ``diffinterface._kernels``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optree

from diffinterface._adapter import Adapter
from diffinterface._arrays import dtype_name, kind_of, signature
from diffinterface._conversions import converter, to_input_array
from diffinterface._derived import OperatorSpec
from diffinterface._errors import InvalidArgumentError
from diffinterface._trees import Args, Structure

__all__ = ["Tangents", "tangents_of"]


@dataclass(frozen=True)
class Tangents:
    """The tangents of a preparation: their batch size (None for one) and signature."""

    like: Structure  # what each tangent is shaped like
    batch: int | None
    kinds: frozenset[str]  # the array kinds of their leaves
    signature: tuple[Any, ...]  # ("one" or the batch size, leaf signatures of each)
    role: str  # "tangent" or "cotangent"
    dtype: Any  # the NumPy dtype a number takes
    value: Any  # the tangents at preparation, normalised
    types: tuple[type, ...]  # the types of their leaves, in order

    def normalise(self, t: Any) -> Any:
        """``t`` with its numbers as arrays (in the caller's layout)."""
        if self.batch is None:
            return self._one(t, self.role)
        if not isinstance(t, tuple):
            return t  # not a batch: the guard names the difference
        return tuple(self._one(ti, f"{self.role} #{i}") for i, ti in enumerate(t))

    def _one(self, t: Any, role: str) -> Any:
        """A tangent with its numbers as arrays; anything else as it is (the guard names
        what differs)."""
        leaves = self.like.leaves(t)
        if leaves is None:
            return t
        return self.like.build([_number_as_array(a, self.dtype) for a in leaves])

    def native(self, adapter: Adapter) -> Any:
        """The tangents at preparation as the kernels take them."""
        convert = self.converter(adapter)
        return self.value if convert is None else convert(self.value)

    def converter(self, adapter: Adapter) -> Callable[[Any], Any] | None:
        """The tangents (normalised) with their leaves as the adapter's native arrays;
        None where they are taken as they are."""
        leaves_of, build = self.like.leaves, self.like.build
        if self.kinds <= adapter.accepted_kinds:
            if not self.like.args:
                return None

            def one(t: Any) -> Any:  # Args as a plain tuple, the kernels' pytree
                return tuple(t)

        else:
            convert = {k: converter(k, adapter.native_kind) for k in self.kinds}

            def one(t: Any) -> Any:
                return build([convert[kind_of(a)](a) for a in leaves_of(t)])  # type: ignore[index,union-attr]

        if self.batch is None:
            return one
        return lambda ts: tuple(one(t) for t in ts)


def tangents_of(
    spec: OperatorSpec, tangents: Any, like: Structure, like_leaves: list[Any]
) -> Tangents:
    """Check the tangents of a preparation against what they are shaped like.

    Raises:
        InvalidArgumentError: a list, an empty tuple, or tangents of another structure,
            shape or dtype.
    """
    role = "tangent" if spec.tangents == "x" else "cotangent"
    shaped = "x" if spec.tangents == "x" else "f(x)"
    if like.is_array:
        if isinstance(tangents, list):
            raise InvalidArgumentError(
                f"{spec.name} got a list of {role}s; pass one {role} as an array, or several "
                f"as a tuple (a list is ambiguous): tuple({role}s)."
            )
        one = not isinstance(tangents, tuple)
    elif like.args:  # several arguments: one tangent is an Args, a batch a tuple of them
        one = type(tangents) is Args
    else:
        one = optree.tree_structure(tangents, none_is_leaf=True) == like.treedef
    if not one and not (isinstance(tangents, tuple) and tangents):
        if isinstance(tangents, tuple):
            raise InvalidArgumentError(
                f"{spec.name} got an empty tuple of {role}s; pass at least one."
            )
        raise InvalidArgumentError(
            f"The {role} of {spec.name} must have the structure of {shaped} "
            f"({like.describe()}), or be a tuple of such; got a {type(tangents).__name__}."
        )
    items = (tangents,) if one else tangents
    dtype = _numpy_dtype(like_leaves[0])
    kinds, signatures, normalised = set(), [], []
    for i, t in enumerate(items):
        what = f"{role} #{i}"
        leaves = like.leaves(t)
        if leaves is None:
            raise InvalidArgumentError(
                f"{what} of {spec.name} must have the structure of {shaped}: "
                f"{like.describe()}; got {optree.tree_structure(t, none_is_leaf=True)}."
            )
        arrays = [_array(a, dtype, what) for a in leaves]
        for a, ref in zip(arrays, like_leaves, strict=True):
            if tuple(a.shape) != tuple(ref.shape) or dtype_name(a) != dtype_name(ref):
                raise InvalidArgumentError(
                    f"{what} of {spec.name} has shape {tuple(a.shape)} and dtype "
                    f"{dtype_name(a)}; it must match {shaped}: shape {tuple(ref.shape)}, "
                    f"dtype {dtype_name(ref)}."
                )
        kinds |= {kind_of(a) for a in arrays}
        signatures.append(tuple(signature(a) for a in arrays))
        normalised.append(like.build(arrays))
    batch = None if one else len(items)
    return Tangents(
        like=like,
        batch=batch,
        kinds=frozenset(k for k in kinds if k is not None),
        signature=("one" if one else batch, tuple(signatures)),
        role=role,
        dtype=dtype,
        value=normalised[0] if one else tuple(normalised),
        types=tuple(type(a) for t in normalised for a in like.leaves(t) or ()),
    )


def _number_as_array(t: Any, dtype: Any) -> Any:
    """A Python or NumPy number as a 0-d array of ``dtype``; anything else as it is."""
    number = isinstance(t, int | float | np.integer | np.floating) and not isinstance(t, bool)
    return np.asarray(t, dtype=dtype) if number and kind_of(t) is None else t


def _array(t: Any, dtype: Any, role: str) -> Any:
    """A tangent's leaf as an array; a Python or NumPy number takes ``dtype``."""
    return to_input_array(_number_as_array(t, dtype), role)


def _numpy_dtype(a: Any) -> Any:
    name = dtype_name(a)
    return np.dtype(name) if name in np.sctypeDict else np.dtype(np.float64)
