"""The function an adapter differentiates: the user's f with its contexts and ``y=`` folded
in, ``fn(x, *consts) -> y``, where ``consts`` are the array-valued Constant values only.

* :func:`native_function` folds a mutating ``f(y, x, ...)``, Cache contexts (a scratch
  buffer per thread, from a DiffCache) and static Constants into fn;
* :func:`on_structure` makes fn a function of the one array the operators see, for x a
  structure (see ``diffinterface._trees``);
* :func:`checked_output` refuses, once at preparation, an output derivatives cannot flow
  through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import optree

from diffinterface._arrays import kind, kind_of
from diffinterface._contexts import Cache, Constant, is_static
from diffinterface._diffcache import DiffCache, get_tmp, new_buffer
from diffinterface._errors import InvalidArgumentError
from diffinterface._namespace import array_namespace
from diffinterface._trees import Structure

__all__ = [
    "Fn",
    "OutputStructure",
    "checked_output",
    "joined_output",
    "native_function",
    "numbers_as_arrays",
    "on_structure",
]

Fn = Callable[..., Any]


def native_function(
    f: Callable[..., Any], contexts: tuple[Any, ...], y: Any, structure: Structure
) -> Fn:
    """Fold mutation (y=), Cache contexts and static Constants into ``fn(x, *consts)``.

    Each Cache becomes a :class:`DiffCache` per thread, made on the thread's first call, so
    its buffers are reused across prepared calls where the backend allows (never the
    caller's array itself: ``di.Cache(x)`` must not overwrite x; never another thread's
    buffer), with x's first leaf as the array the buffer is made like. The output of a
    mutating f is a new buffer on every call, since fn returns it.
    """
    if structure.args:  # f takes the arguments one by one
        f = _unpacking(f, y is not None)
    if y is None and not any(isinstance(c, Cache) or is_static(c.value) for c in contexts):
        return f
    first_leaf = structure.leaves if not structure.is_array else None
    plan: list[Callable[[Any], Any] | None] = []
    for c in contexts:
        if isinstance(c, Constant):
            plan.append(_static(c.value) if is_static(c.value) else None)
        else:
            plan.append(_scratch(np.shape(c.value)))
    y_shape = None if y is None else tuple(y.shape)
    scratch_slots = [i for i, c in enumerate(contexts) if isinstance(c, Cache)]

    needs_like = y is not None or bool(scratch_slots)

    def fn(xv: Any, *consts: Any) -> Any:
        like = xv
        if needs_like and first_leaf is not None:
            like = first_leaf(xv)[0]  # type: ignore[index]
        it = iter(consts)
        args = [next(it) if make is None else make(like) for make in plan]
        if y_shape is None:
            return _apart_from(f(xv, *args), [args[i] for i in scratch_slots])
        out = new_buffer(y_shape, like)
        f(out, xv, *args)
        return out

    return fn


def _unpacking(f: Callable[..., Any], mutating: bool) -> Fn:
    """f of several arguments as a function of their tuple (after y= for a mutating f)."""
    if mutating:
        return lambda y, arguments, *rest: f(y, *arguments, *rest)
    return lambda arguments, *rest: f(*arguments, *rest)


def on_structure(fn: Fn, structure: Structure) -> Fn:
    """``fn`` of x's structure as a function of the one array the operators see (the
    leaf itself for one leaf, the vector of all entries for several; a stack of those
    vectors for a vectorised f, whose leaves then get the batch's leading axis)."""
    if structure.is_array:
        return fn
    build, cut = structure.build, structure.cut

    def fn_of_array(v: Any, *consts: Any) -> Any:
        return fn(build(cut(v, len(v.shape) - 1)), *consts)

    return fn_of_array


class OutputStructure:
    """f's output structure where f returns a dict / list / tuple of arrays, learnt at its
    first evaluation (at preparation); None while f returns one array. ``refused_by`` names
    the operator that needs one array (gradient, hvp, hessian, second_derivative), if so."""

    def __init__(self, refused_by: str | None = None) -> None:
        self.structure: Structure | None = None
        self.refused_by = refused_by


def joined_output(fn: Fn, output: OutputStructure) -> Fn:
    """``fn`` whose structured output (a dict / list / tuple of arrays) comes back as the one
    array the operators see: its leaves joined (the leaf itself for one leaf), as x's are.

    Raises:
        InvalidArgumentError: f returns another structure than at its first evaluation, a
            structure with other leaves than arrays, or one where one array is needed.
    """

    def joined(xv: Any, *consts: Any) -> Any:
        out = fn(xv, *consts)
        if not isinstance(out, dict | list | tuple):
            return out
        if output.structure is None:
            _check_output_leaves(out, output.refused_by)
            output.structure = Structure(out)
        leaves = output.structure.leaves(out)
        if leaves is None:
            raise InvalidArgumentError(
                f"f returned {type(out).__name__} of another structure than at preparation "
                f"({output.structure.describe()}): an output's structure must not depend on x."
            )
        return output.structure.join(leaves, array_namespace(*leaves))

    return joined


def _check_output_leaves(out: Any, refused_by: str | None) -> None:
    hint = "If f returns (output, aux), pass has_aux=True."
    if refused_by is not None:
        raise InvalidArgumentError(
            f"f returned a {type(out).__name__}; {refused_by} needs one array. Structured "
            f"outputs work with pushforward, pullback, derivative and jacobian. {hint}"
        )
    for leaf in optree.tree_leaves(out, none_is_leaf=True):
        if kind_of(leaf) is None:
            raise InvalidArgumentError(
                f"f returned a {type(out).__name__} holding a {type(leaf).__name__}; a "
                f"structured output must hold arrays only. {hint}"
            )


def numbers_as_arrays(fn: Fn) -> Fn:
    """``fn`` whose Python-number output (``math.sin(x)``, fine for finite differences)
    becomes a 0-d array of x's dtype, so that float32 x gives float32 results."""

    def fn_array(xv: Any, *consts: Any) -> Any:
        r = fn(xv, *consts)
        if isinstance(r, int | float | complex) and not isinstance(r, bool):
            return np.asarray(r, dtype=xv.dtype)
        return r

    return fn_array


def checked_output(fn: Fn, config: Any, y: Any) -> Fn:
    """``fn`` that refuses an output derivatives cannot flow through (used once, at prep).

    f must return one array of the type it receives; a NumPy array (a constant) is fine
    under JAX too, and a NumPy scalar (``np.sum(...)``) wherever f receives NumPy arrays.
    """

    def checked(xv: Any, *consts: Any) -> Any:
        out = fn(xv, *consts)
        out_kind, x_kind = kind_of(out), kind_of(xv)
        numpy_ok = x_kind in ("numpy", "jax", "autograd")
        if out_kind == x_kind or (numpy_ok and isinstance(out, np.ndarray | np.generic)):
            return out
        raise InvalidArgumentError(
            f"f must return one array of the type it receives (under {config!r}); it "
            f"returned {_what(out, x_kind, y)}"
        )

    return checked


def _what(out: Any, x_kind: str | None, y: Any) -> str:
    if out is None:
        hint = " A mutating f(y, x) must be passed with y=." if y is None else ""
        return f"nothing (None).{hint}"
    if isinstance(out, bool | int | float | complex):
        return (
            f"the Python {type(out).__name__} {out!r}, through which no derivative flows. "
            "Return an array computed from x: e.g. xp.sum(...) rather than "
            "float(xp.sum(...)) or .item()."
        )
    return (
        f"a {kind_of(out) or type(out).__name__} array although it received a {x_kind} "
        "array. Build the output from x with xp = di.array_namespace(x) instead of calling "
        "one library directly."
    )


def _apart_from(result: Any, scratch: list[Any]) -> Any:
    """``result``, copied when it is (a view of) one of f's Cache buffers: the next
    evaluation overwrites those (finite differences subtract two evaluations, and prepared
    calls reuse the buffers)."""
    for buf in scratch:
        if (
            result is buf
            or getattr(result, "base", None) is buf
            or getattr(result, "_base", None) is buf
        ):
            name = kind_of(result)
            return kind(name).copy(result) if name else result
    return result


def _static(value: Any) -> Callable[[Any], Any]:
    return lambda _x: value


def _scratch(shape: tuple[int, ...]) -> Callable[[Any], Any]:
    local = threading.local()

    def scratch(like: Any) -> Any:
        cache = getattr(local, "cache", None)
        if cache is None:
            cache = local.cache = DiffCache(np.zeros(shape))
        return get_tmp(cache, like)

    return scratch
