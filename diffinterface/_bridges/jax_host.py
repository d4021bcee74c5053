"""The host side of the JAX bridge: which arguments are operands, the host functions that
call the inner backend (NumPy in, NumPy out) and the shapes of their results.

g's positional arguments split in two (:class:`Layout`): JAX arrays (and tracers) become
operands of the bridge's primitives, so that JAX can differentiate, batch and compile them;
everything else (NumPy arrays, numbers, strings) is a static parameter of the primitives, so
that a float64 NumPy constant is never cast to float32 by JAX and costs nothing to trace.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from diffinterface._bridges.jax_host_errors import recorded
from diffinterface._errors import InvalidArgumentError
from diffinterface._inner_calls import Active, InnerCalls

__all__ = ["Layout", "host_linear", "host_output", "host_value", "linear_specs", "output_spec"]


class Layout:
    """Where g's operands (its JAX arrays) sit among its arguments, and the other arguments
    as static values (NumPy arrays compare by identity)."""

    __slots__ = ("positions", "shapes", "statics")

    def __init__(self, arguments: tuple[Any, ...]) -> None:
        statics: list[tuple[Any] | None] = []
        shapes: list[Any] = []
        for i, a in enumerate(arguments):
            if isinstance(a, jax.Array):
                statics.append(None)
                shapes.append(None)
            elif isinstance(a, np.ndarray):
                statics.append((_ByIdentity(a),))
                shapes.append((a.shape, a.dtype))
            else:
                try:
                    hash(a)
                except TypeError:
                    raise InvalidArgumentError(
                        f"Argument #{i} of a di.DifferentiateWith function called from JAX "
                        f"is a {type(a).__name__}, which is neither an array nor hashable. "
                        "Pass arrays, numbers, strings, tuples of them, or dicts / lists / "
                        "tuples of arrays."
                    ) from None
                statics.append((a,))
                shapes.append((a,))
        self.statics = tuple(statics)
        #: the argument position of each operand
        self.positions = tuple(i for i, s in enumerate(statics) if s is None)
        #: what f's output shape may depend on (NumPy constants by shape, not identity)
        self.shapes = tuple(shapes)

    def __hash__(self) -> int:
        return hash(self.statics)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.statics == other.statics

    def merge(self, operands: tuple[Any, ...]) -> tuple[Any, ...]:
        """All of g's arguments, in order, from the operands' values."""
        it = iter(operands)
        return tuple(next(it) if s is None else _unwrap(s[0]) for s in self.statics)

    def active(self, operands: tuple[int, ...]) -> Active:
        """The argument positions of the operands numbered ``operands``."""
        return tuple(self.positions[j] for j in operands)


class _ByIdentity:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.value is self.value


def _unwrap(static: Any) -> Any:
    return static.value if isinstance(static, _ByIdentity) else static


# -- host functions (NumPy in, NumPy out) ---------------------------------------------------


def host_value(inner: InnerCalls, layout: Layout, dtype: Any) -> Any:
    """f(*arguments) from the operands' values."""

    def run(*operands: np.ndarray) -> np.ndarray:
        y = inner.value(layout.merge(tuple(map(np.asarray, operands))))
        return np.asarray(y, dtype)

    return recorded(run)


def host_linear(
    inner: InnerCalls,
    layout: Layout,
    operator: str,
    active: tuple[int, ...],
    batched: bool,
    spec: Any,
) -> Any:
    """The inner pushforward (operands, then one tangent per active operand, in; f's output
    out) or pullback (operands and one cotangent in; one array per active operand out), in
    the dtypes of ``spec`` (from :func:`linear_specs`). The cotangent is cast to f's own
    output dtype (JAX may have made it float32, when a NumPy float64 constant made f's
    output float64)."""
    n, positions = len(layout.positions), layout.active(active)

    def run(*inputs: np.ndarray) -> Any:
        arrays = tuple(map(np.asarray, inputs))
        arguments = layout.merge(arrays[:n])
        if operator == "pushforward":
            ts = arrays[n:]
            tangents = tuple(zip(*ts, strict=True)) if batched else ts
            y = inner.pushforward(arguments, positions, tangents, batched)
            return np.asarray(np.stack(y) if batched else y, spec.dtype)
        u = arrays[n].astype(host_output(inner, layout, arrays[:n])[1], copy=False)
        results = inner.pullback(arguments, positions, tuple(u) if batched else u, batched)
        per_argument = tuple(zip(*results, strict=True)) if batched else results
        return tuple(
            np.asarray(np.stack(r) if batched else r, s.dtype)
            for s, r in zip(spec, per_argument, strict=True)
        )

    return recorded(run)


# -- shapes -----------------------------------------------------------------------------------


def output_spec(inner: InnerCalls, layout: Layout, operands: tuple[Any, ...]) -> Any:
    """Shape and dtype of f's output in JAX (float32 without x64 mode)."""
    shape, dtype = host_output(inner, layout, operands)
    return jax.ShapeDtypeStruct(shape, jax.dtypes.canonicalize_dtype(dtype))


def host_output(
    inner: InnerCalls, layout: Layout, operands: tuple[Any, ...]
) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Shape and dtype of f's output on the host: f evaluated once per signature, at ones."""
    key = ("jax output", layout.shapes, tuple(map(_spec, operands)))
    found = inner.memo.get(key)
    if found is None:
        ones = tuple(np.ones(np.shape(a), a.dtype) for a in operands)
        with np.errstate(all="ignore"):
            y = inner.value(layout.merge(ones))
        found = inner.memo[key] = (np.shape(y), np.result_type(y))
    return found


def _spec(a: Any) -> tuple[Any, ...]:
    """An operand's shape and dtype (an array, a tracer, or a typed Python number, which
    JAX hands to the primitives for a number it differentiates)."""
    return (np.shape(a), np.dtype(a.dtype))


def linear_specs(
    operator: str,
    inner: InnerCalls,
    layout: Layout,
    active: tuple[int, ...],
    batched: bool,
    operands: tuple[Any, ...],
    t: Any,
) -> Any:
    """The result of the pushforward (f's output) or pullback (a list: one per active
    operand), with the batch axis in front when ``batched`` (``t``: a tangent or the
    cotangent, whose axis 0 is the batch)."""
    batch = (t.shape[0],) if batched else ()
    if operator == "pushforward":
        y = output_spec(inner, layout, operands)
        return jax.ShapeDtypeStruct((*batch, *y.shape), y.dtype)
    return [
        jax.ShapeDtypeStruct((*batch, *np.shape(operands[j])), operands[j].dtype) for j in active
    ]
