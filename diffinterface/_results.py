"""Results: a kernel's native outputs as the caller gets them, and ``out=``.

A kernel returns native arrays in the layout the operators compute in (x-shaped outputs
of a structured x as x's leaves; a batch of tangents as one stack). :func:`finisher`
composes, at preparation, the function that converts each output to x's array kind and
device and lays it out: x's structure, a tuple per tangent of a batch, a Jacobian or
Hessian as blocks (or one matrix with ``flat=True``). :func:`write_out` copies a result
into the caller's ``out=``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optree

from diffinterface._arrays import identity, kind, kind_of
from diffinterface._conversions import converter
from diffinterface._errors import InvalidArgumentError
from diffinterface._trees import Structure, is_structure, reshaped

__all__ = ["aux_converter", "copying", "finisher", "shares_memory", "write_out", "write_results"]

Convert = Callable[[Any], Any]


def finisher(
    outputs: Sequence[str],
    structure: Structure,
    batch: int | None,
    convert: Sequence[Convert],
    flat: bool,
    passed: frozenset[str] = frozenset(),
    blocks: Callable[[Any], Any] | None = None,
    y_shape: tuple[int, ...] = (),
    batched_from: int | None = None,
    y_structure: Structure | None = None,
) -> Callable[[Any], Any]:
    """The function from the kernel's outputs (a tuple with several, one output alone
    with one) to the caller's results.

    Args:
        outputs: what each output is shaped like: "y", "x", "yx" or "xx".
        structure: x's structure.
        batch: the number of tangents of a batch (x- or y-shaped outputs of the last
            position are stacked), None for one.
        convert: per output, native array → x's kind and device.
        flat: Jacobians and Hessians of structured x as one matrix rather than blocks.
        passed: kinds of outputs handed over as they are (AutoSparse's sparse matrices).
        blocks: a Jacobian or Hessian (converted) as the nested leaves of its blocks
            (compiled where the results are a compiling backend's arrays), default
            :meth:`Structure.block_leaves`.
        y_shape: the shape of f's output (a Jacobian's leading axes).
        batched_from: the position of the first output stacked over a batch (default:
            the last output alone; an error estimate after it is stacked too).
        y_structure: f's output structure where f returns a dict / list / tuple of arrays
            (its outputs joined into one array, see ``diffinterface._functions``).
    """
    first_batched = len(outputs) - 1 if batched_from is None else batched_from
    parts = [
        _part(
            shaped,
            structure,
            batch if i >= first_batched else None,
            conv,
            flat,
            passed,
            blocks,
            y_shape,
            y_structure,
        )
        for i, (shaped, conv) in enumerate(zip(outputs, convert, strict=True))
    ]
    if len(parts) == 1:
        return parts[0]
    if all(p is identity for p in parts):
        return tuple
    return lambda results: tuple([p(r) for p, r in zip(parts, results)])  # noqa: B905


def _part(
    shaped: str,
    structure: Structure,
    batch: int | None,
    convert: Convert,
    flat: bool,
    passed: frozenset[str],
    blocks: Callable[[Any], Any] | None,
    y_shape: tuple[int, ...],
    y_structure: Structure | None,
) -> Convert:
    """The finishing of one output (see :func:`finisher`)."""
    if shaped in passed:
        return identity
    build, n = structure.build, structure.size
    if y_structure is not None and shaped in ("y", "yx") and not (shaped == "yx" and flat):
        return _output_part(shaped, structure, y_structure, batch, convert, y_shape)
    if shaped == "yx" or shaped == "xx":
        if flat:
            rows = math.prod(y_shape) if shaped == "yx" else n
            return lambda r: reshaped(convert(r), (rows, n))
        if structure.is_array:
            return convert
        lead = len(y_shape)
        cut = blocks or (lambda m: structure.block_leaves(m, shaped, lead))
        return lambda r: structure.build_blocks(cut(convert(r)), shaped)
    if batch is not None:
        if shaped == "x" and not structure.is_array:  # leaves with a leading batch axis
            return lambda r: tuple(
                build([_item(a, i) for a in map(convert, r)]) for i in range(batch)
            )
        return lambda r: _split(convert(r), batch)
    if shaped == "x" and not structure.is_array:
        return build if convert is identity else lambda r: build([convert(a) for a in r])
    return convert


def _output_part(
    shaped: str,
    structure: Structure,
    y_structure: Structure,
    batch: int | None,
    convert: Convert,
    y_shape: tuple[int, ...],
) -> Convert:
    """An output shaped like f's structured output: f's structure of arrays ("y"; a tuple
    of them for a batch), or a Jacobian as f's structure of x's blocks, output-major as
    ``jax.jacobian`` lays it out ("yx")."""
    y_build, y_cut = y_structure.build, y_structure.cut
    if shaped == "y":
        if batch is None:
            return lambda r: y_build(y_cut(convert(r)))
        return lambda r: tuple(y_build(y_cut(part)) for part in _split(convert(r), batch))
    lead = len(y_shape)

    def blocks_of(rows: Any, leaf_shape: tuple[int, ...]) -> Any:
        block = rows.reshape(leaf_shape + tuple(rows.shape[lead:]))
        if structure.is_array:
            return block
        return structure.build_blocks(structure.block_leaves(block, "yx", len(leaf_shape)), "yx")

    if len(y_structure.shapes) == 1:  # the one array is f's one leaf itself
        return lambda r: y_build([blocks_of(convert(r), y_structure.shapes[0])])
    offsets, shapes = y_structure.offsets, y_structure.shapes
    bounds = list(zip(offsets[:-1], offsets[1:], shapes, strict=True))
    return lambda r: y_build([blocks_of(convert(r)[a:b], s) for a, b, s in bounds])


def _split(stacked: Any, batch: int) -> tuple[Any, ...]:
    return tuple(_item(stacked, i) for i in range(batch))


def _item(stacked: Any, i: int) -> Any:
    """``stacked[i]``, a 0-d array rather than a NumPy scalar for a stack of 0-d results."""
    part = stacked[i]
    return np.asarray(part) if isinstance(part, np.generic) else part


def copying(convert: Convert) -> Convert:
    """``convert`` followed by a copy (for a result that may share memory with x)."""

    def convert_and_copy(r: Any) -> Any:
        a = convert(r)
        name = kind_of(a)
        return kind(name).copy(a) if name else a

    return convert_and_copy


def write_out(out: Any, result: Any, role: str = "out") -> Any:
    """Copy ``result`` (an array, a structure of arrays, or a tuple of them for a batch)
    into the caller's ``out`` and return ``out``.

    Raises:
        InvalidArgumentError: ``out`` has another kind, structure, shape or dtype, or holds
            immutable arrays.
    """
    if result is out:  # a kernel wrote straight into the caller's array
        return out
    if type(result) is tuple and not (type(out) is tuple and len(out) == len(result)):
        raise InvalidArgumentError(
            f"With a tuple of {len(result)} tangents, {role}= must be a tuple of "
            f"{len(result)} arrays; got {type(out).__name__}."
        )
    if is_structure(result) or is_structure(out):
        spec_out = optree.tree_structure(out, none_is_leaf=True)
        spec_result = optree.tree_structure(result, none_is_leaf=True)
        if spec_out != spec_result:
            raise InvalidArgumentError(
                f"{role}= must have the result's structure {spec_result}; got {spec_out}."
            )
        optree.tree_map(lambda o, r: write_out(o, r, role), out, result, none_is_leaf=True)
        return out
    name = kind_of(result)
    if name is None:
        raise InvalidArgumentError(f"{role}= is given for a result that is not an array.")
    kind(name).write(out, result, role)
    return out


def write_results(
    result: Any, y: Any, out: Any, last_only: bool, error: bool = False, error_out: Any = None
) -> Any:
    """``result`` (all outputs, or the last alone with ``last_only``; with ``error``, an
    error estimate after them) with f's value written into ``y`` (a mutating f's output),
    with ``last_only`` the operator's result into ``out``, and the estimate into
    ``error_out``, each where given."""
    if y is not None:  # all outputs were computed, f's value first
        write_out(y, result[0], "y")
        if last_only:
            result = result[-2:] if error else result[-1]
    if not error:
        return write_out(out, result) if out is not None and last_only else result
    if out is not None and last_only:
        result = (write_out(out, result[0]), result[1])
    if error_out is not None:
        result = (*result[:-1], write_out(error_out, result[-1], "error"))
    return result


def aux_converter(x_kind: str, device: Any, layout: Any) -> Callable[[Any], Any]:
    """f's aux from the arrays the kernel returned: as x's array type, on x's device, no
    longer traced or attached to a graph, and put back together with its other leaves."""

    def leaf(a: Any) -> Any:
        name = kind_of(a)
        if name is None:  # a compiled kernel's number: a 0-d array of its library
            return a
        return converter(name, x_kind, device)(kind(name).plain_value(a))

    return lambda arrays: layout.rebuild(tuple(map(leaf, arrays)))


def shares_memory(y: Any, arrays: tuple[Any, ...]) -> bool:
    """Whether f's output (an evaluated template) may share memory with its inputs: its
    value, tangents and cotangents would then be views of the caller's arrays."""
    name = kind_of(y)
    return name is not None and any(kind(name).shares_memory(y, a) for a in arrays)
