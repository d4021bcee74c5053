"""Preparation: everything that can be done once for an operator, and the prepared call.

:func:`prepare` validates the arguments, converts them to the backend's array type, folds
mutation and contexts into an out-of-place function ``fn(x, *consts)``, asks the operator's
builder for a kernel and compiles it. The result, :class:`Prep`, is plain data: the
compiled kernel, converters, and the signature of the arguments it was made for.
:func:`execute` checks a call against that signature and runs the kernel.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import optree

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._arrays import (
    _identity,
    check_dtype,
    converter,
    describe,
    is_real_floating,
    kind_of,
    shares_memory,
    signature,
    to_input_array,
)
from diffinterface._backend_types import Backend, BackendLike, adapter_for, resolve_backend
from diffinterface._contexts import (
    Cache,
    Constant,
    check_contexts,
    context_signature,
    is_static,
)
from diffinterface._diffcache import DiffCache, get_tmp, new_buffer
from diffinterface._errors import (
    DiffInterfaceError,
    InvalidArgumentError,
    PreparationMismatchError,
    UnsupportedError,
)
from diffinterface._sparse.backend import AutoSparse
from diffinterface._structured import (
    Fusion,
    StructuredPrep,
    execute_structured,
    is_structure,
    prepare_structured,
)

__all__ = [
    "OperatorSpec",
    "Prep",
    "Problem",
    "Variants",
    "check_call",
    "execute",
    "prepare",
    "run_kernel",
    "same_backend",
    "same_function",
    "write_out",
]

_NUMBERS = (int, float, np.integer, np.floating)

#: which kernels a preparation compiles: both, or the one an unprepared call needs
Variants = Literal["both", "plain", "value"]


@dataclass(frozen=True)
class Problem:
    """What a kernel builder knows about the call it builds for (native arrays)."""

    x: Any  # native x
    y: Any  # something with fn's output shape and dtype
    batch: int | None  # number of tangents, None for a single tangent
    mutates: bool  # f writes into arrays (y= or Cache): the backend must allow it


Builder = Callable[[Adapter, Fn, Problem], Kernel]


@dataclass(frozen=True)
class OperatorSpec:
    """An operator: its name, argument rules and generic kernel builder."""

    name: str
    build: Builder
    tangents: Literal["x", "y"] | None = None  # tangents shaped like x or like y
    scalar_x: bool = False  # derivative, second_derivative
    scalar_y: bool = False  # gradient, hvp, hessian
    #: what each kernel output is shaped like: "y", "x", "yx" (Jacobian), "xx" (Hessian)
    outputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Prep:
    """A preparation for one operator: compiled kernel plus the signature it was made for.

    Build it with the matching ``di.prepare_<operator>`` and pass it as ``prep=``.
    """

    operator: str
    f: Callable[..., Any]
    backend: Backend | AutoSparse
    signature: tuple[Any, ...]
    #: all outputs of the value variant (None when only the plain one was prepared)
    kernel: Kernel | None
    x_in: Callable[[Any], Any]
    result_out: Callable[[Any], Any]
    const_in: tuple[Callable[[Any], Any] | None, ...]
    batch: int | None
    tangent_in: Callable[[Any], Any] | None
    #: the last output alone (the plain operator): compiled on its own where the backend
    #: compiles, so that the compiled code skips the value, or the adapter's
    #: ``plain_<operator>`` kernel; None elsewhere
    plain_kernel: Kernel | None = None
    #: the kernel takes ``out=`` (a NumPy array) for the plain result and writes into it
    takes_out: bool = False
    #: conversion of the plain result when it differs from ``result_out`` (no copy of a
    #: gradient, Jacobian or Hessian, which cannot be a view of the inputs)
    plain_out: Callable[[Any], Any] | None = None
    #: the kernels take x in its structure and return x-shaped results in it (structured x
    #: of native arrays, see :class:`~diffinterface._structured.Fusion`)
    fused: bool = False
    #: fused on a backend that compiles: the Jacobian or Hessian output cut into x's
    #: blocks by compiled code (see :meth:`~diffinterface._structured.Fusion.block_cutter`)
    cut_blocks: Kernel | None = None
    #: the kernels are compiled, pure and return before their work is done (JAX's
    #: asynchronous dispatch): a prepared call starts them before checking its arguments
    dispatch_first: bool = False
    #: ``direct(x, t, contexts)``: the plain operator as one call with its conversions, for
    #: a preparation without a batch of tangents or y (what :func:`execute` runs after its
    #: quickest check); None elsewhere
    direct: Callable[[Any, Any, tuple[Any, ...]], Any] | None = None

    def __repr__(self) -> str:
        return (
            f"Prep({self.operator}, backend={self.backend!r}, "
            f"x={describe(self.signature[0])}, batch={self.batch})"
        )


# --------------------------------------------------------------------------------------
# signatures


def _call_signature(x: Any, tangents: Any, contexts: tuple[Any, ...], y: Any) -> tuple[Any, ...]:
    if tangents is None:
        t_sig: Any = None
    elif isinstance(tangents, tuple):
        t_sig = tuple(signature(t) for t in tangents)
    else:
        t_sig = signature(tangents)
    return (
        signature(x),
        t_sig,
        context_signature(contexts),
        None if y is None else signature(y),
    )


_SLOTS = ("x", "tangents", "contexts", "y")


def same_function(prepared: Any, called: Any) -> bool:
    """Whether ``called`` is the f a preparation was made for. A bound method counts as the
    same when it binds the same function to the same object: ``obj.f`` is a new object at
    every attribute access."""
    return prepared is called or (isinstance(prepared, types.MethodType) and prepared == called)


def _mismatch(
    prep: Prep, operator: str, f: Any, backend: Backend | AutoSparse, sig: tuple[Any, ...]
) -> str:
    rows = [
        ("operator", prep.operator, operator),
        ("f", getattr(prep.f, "__name__", prep.f), getattr(f, "__name__", f)),
        ("backend", prep.backend, backend),
    ]
    rows += list(zip(_SLOTS, prep.signature, sig, strict=True))
    same = {"f": same_function(prep.f, f)}
    lines = [
        f"  {'✓' if same.get(name, a is b or a == b) else '✗'} {name}: prepared {a!r}, called {b!r}"
        for name, a, b in rows
    ]
    return (
        "This preparation was made for other arguments:\n"
        + "\n".join(lines)
        + f"\nPrepare again with di.prepare_{operator}(...) for the new arguments, "
        "or call without prep= (prepares each call)."
    )


# --------------------------------------------------------------------------------------
# prepare


def prepare(
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tangents: Any,
    contexts: tuple[Any, ...],
    y: Any = None,
    variants: Variants = "both",
    fusion: Fusion | None = None,
) -> Prep:
    """Validate, convert, build and compile: the work behind every ``prepare_<operator>``.

    A backend that compiles gets two kernels: all outputs of the value variant, and the
    plain operator's result alone (the compiled code then skips the value, which can cost
    more than the derivative). ``variants`` limits this to the one an unprepared call needs.
    ``fusion`` (x is the vector of a structured x's leaves) moves the flattening into the
    kernels when the leaves are native arrays: into the compiled code where the backend
    compiles, or away altogether where the adapter has a ``structured_<operator>`` kernel.

    Raises:
        InvalidArgumentError: bad x, tangents, contexts or output of f.
        UnsupportedError: the backend cannot do this (e.g. differentiate mutation).
        ImportError: the backend's framework is not installed.
    """
    if is_structure(x):
        plain = None if variants == "both" else variants == "plain"
        return prepare_structured(spec, f, backend, x, tangents, contexts, y, plain)  # type: ignore[return-value]
    if not callable(f):
        raise InvalidArgumentError(f"f must be callable, got {type(f).__name__}.")
    config = resolve_backend(backend)
    adapter = adapter_for(config)
    x = to_input_array(x, "x")
    if spec.scalar_x and x.shape != ():
        raise InvalidArgumentError(
            f"{spec.name} needs a scalar (0-d) x; got shape {tuple(x.shape)}. "
            "Use pushforward or jacobian for array inputs."
        )
    check_contexts(contexts)
    mutates = y is not None or any(isinstance(c, Cache) for c in contexts)
    if y is not None:
        _check_mutation(spec, adapter, y)
    if mutates and not adapter.supports_mutation:
        raise UnsupportedError(
            f"{config!r} cannot give f a writable di.Cache buffer: its arrays are immutable. "
            f"{adapter.MUTATION_HINT}, or pass the scratch space as di.Constant and write "
            "f without in-place updates."
        )
    x_kind = kind_of(x)
    assert x_kind is not None
    check_dtype(x, x_kind, adapter.native_kind, "x", config)
    x_in = _to_native(adapter, x_kind)
    xn = x_in(x)
    const_in = tuple(_const_converter(adapter, c) for c in contexts)
    consts = tuple(conv(c.value) for conv, c in zip(const_in, contexts, strict=True) if conv)
    fn = _native_function(f, contexts, y)
    if adapter.plain_values:
        fn = _numbers_as_arrays(fn)
    y_template = _output_template(spec, adapter, fn, xn, consts, y)

    batch: int | None = None
    tangent_in = None
    example: tuple[Any, ...] = (xn,)
    if spec.tangents is not None:
        like = x if spec.tangents == "x" else y_template
        batch, tangent_in = _tangent_plan(spec, adapter, tangents, like)
        example = (xn, tangent_in(tangents))
    elif tangents is not None:
        raise AssertionError("tangents given to an operator without tangents")

    problem = Problem(x=xn, y=y_template, batch=batch, mutates=mutates)
    device = getattr(x, "device", None) if x_kind == "torch" else None
    result_out = converter(adapter.native_kind, x_kind, device)
    plain_out = None
    if any(shares_memory(y_template, a) for a in (xn, *consts)):
        # f returns (a view of) its input: its value, tangents and cotangents would come
        # back as views of the caller's arrays, so hand out copies.
        if spec.name in _FRESH_RESULTS:
            plain_out = result_out
        result_out = _copying(result_out)
    plain_kernel = None
    takes_out = fused = False
    cut_blocks = None
    if isinstance(config, AutoSparse) and spec.name in ("jacobian", "hessian"):
        from diffinterface._sparse.compressed import build_sparse, is_sparse

        call = (f, x, contexts, y)
        kernel: Kernel | None = build_sparse(spec.name, config, adapter, fn, problem, consts, call)
        dense_out, plain_out = result_out, None

        def result_out(r: Any) -> Any:
            return r if is_sparse(r) else dense_out(r)

    else:
        native = getattr(adapter, f"native_{spec.name}", None)
        takes_out = native is not None and spec.name in adapter.writes_out and y is None
        raw = (native or (lambda fn_, p: spec.build(adapter, fn_, p)))(fn, problem)
        example_args = (*example, *consts)
        # Leaves of another kind (NumPy under JAX) are cheaper joined outside the kernel:
        # one transfer in and one result out, instead of one per leaf.
        structured = None if mutates else getattr(adapter, f"structured_{spec.name}", None)
        fused = (
            fusion is not None
            and y is None
            and x_kind == adapter.native_kind
            and (adapter.compiles or structured is not None)
        )
        plain = getattr(adapter, f"plain_{spec.name}", None)
        plain_args: tuple[Any, ...] = (fn, problem)
        if fused:
            assert fusion is not None
            if structured is not None:
                fn_of_x = _native_function(fusion.f, contexts, None)
                raw = structured(fn_of_x, problem, fusion.structure)
                plain = getattr(adapter, f"plain_structured_{spec.name}", None)
                plain_args = (fn_of_x, problem, fusion.structure)
            else:
                raw, plain = fusion.kernel(raw, batch), None
            x_in = _identity  # x's structure of native arrays
            example = (fusion.x, *example[1:])
            if fusion.tangents is not None:
                tangent_in = _leafwise(adapter, fusion.tangents)
                example = (example[0], tangent_in(fusion.tangents))
            example_args = (*example, *consts)
            # x-shaped results come in x's structure (a tuple of them for a batch)
            if result_out is not _identity:
                result_out = _on_leaves(result_out, fusion, batch)
            if plain_out is not None and plain_out is not _identity:
                plain_out = _on_leaves(plain_out, fusion, batch)
            if adapter.compiles:
                cut_blocks = fusion.block_cutter(adapter, raw, example_args)
        try:
            if y is None and variants != "value":
                if adapter.compiles:
                    plain_kernel = adapter.compile(_last_output(raw), example_args)
                elif plain is not None:
                    plain_kernel = plain(*plain_args)
            compile_all = not adapter.compiles or y is not None or variants != "plain"
            kernel = adapter.compile(raw, example_args) if compile_all else None
        except DiffInterfaceError:
            raise
        except Exception as e:  # JAX traces f here
            e.add_note(f"(raised while diffinterface compiled {spec.name} with {config!r})")
            raise

    return Prep(
        operator=spec.name,
        f=f,
        backend=config,
        signature=_call_signature(x, tangents, contexts, y),
        kernel=kernel,
        x_in=x_in,
        result_out=result_out,
        const_in=const_in,
        batch=batch,
        tangent_in=tangent_in,
        plain_kernel=plain_kernel,
        plain_out=plain_out,
        takes_out=takes_out,
        fused=fused,
        cut_blocks=cut_blocks,
        dispatch_first=adapter.compiles and y is None and not isinstance(config, AutoSparse),
        direct=_direct(
            plain_kernel or kernel,
            x_in,
            tangent_in,
            const_in,
            plain_out or result_out,
            plain_kernel is None,
        )
        if batch is None and y is None
        else None,
    )


def _direct(
    kernel: Kernel | None,
    x_in: Any,
    tangent_in: Any,
    const_in: tuple[Any, ...],
    convert: Any,
    last: bool,
) -> Callable[[Any, Any, tuple[Any, ...]], Any] | None:
    """``direct(x, t, contexts)``: ``convert`` of ``kernel``'s result (its last output when
    ``last``) for x, the tangent t (if any) and the contexts' values, in as few Python
    calls as possible."""
    if kernel is None:
        return None
    if last:
        kernel = _last_output(kernel)
    values = [(i, conv) for i, conv in enumerate(const_in) if conv is not None]
    if tangent_in is None and x_in is _identity and not values:
        if convert is _identity:
            return lambda x, t, contexts: kernel(x)
        return lambda x, t, contexts: convert(kernel(x))
    if (
        tangent_in is None
        and x_in is _identity
        and convert is _identity
        and all(conv is _identity for _, conv in values)
    ):
        slots = [i for i, _ in values]
        return lambda x, t, contexts: kernel(x, *[contexts[i].value for i in slots])

    def direct(x: Any, t: Any, contexts: tuple[Any, ...]) -> Any:
        consts = [conv(contexts[i].value) for i, conv in values]
        if tangent_in is None:
            return convert(kernel(x_in(x), *consts))
        return convert(kernel(x_in(x), tangent_in(t), *consts))

    return direct


#: operators whose result AD or differences compute afresh: never a view of x or tangents
_FRESH_RESULTS = frozenset({"gradient", "jacobian", "hessian"})


def _leafwise(adapter: Adapter, leaves: Any) -> Callable[[Any], Any]:
    """A converter to native arrays of structures like ``leaves`` (arrays of one kind)."""
    if all(kind_of(a) in adapter.accepted_kinds for a in optree.tree_leaves(leaves)):
        return _identity
    return partial(optree.tree_map, adapter.to_native)


def _on_leaves(convert: Callable[[Any], Any], fusion: Fusion, batch: int | None) -> Any:
    """``convert`` applied leaf by leaf to the results of a fused kernel."""
    if batch is None:
        return fusion.structure.mapping(convert)
    return partial(optree.tree_map, convert)


def _copying(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def convert_and_copy(r: Any) -> Any:
        return _copy(convert(r))

    return convert_and_copy


def _copy(a: Any) -> Any:
    """A copy of a NumPy array or torch tensor (differentiable for torch); JAX arrays and
    anything else as they are (immutable)."""
    kind = kind_of(a)
    if kind == "torch":
        return a.clone()
    return np.array(a) if kind == "numpy" else a


def _last_output(kernel: Kernel) -> Kernel:
    def last_output(*args: Any) -> Any:
        return kernel(*args)[-1]

    return last_output


def _check_mutation(spec: OperatorSpec, adapter: Adapter, y: Any) -> None:
    if not adapter.supports_mutation:
        raise UnsupportedError(
            f"{type(adapter.config).__name__} cannot differentiate a mutating function "
            f"f(y, x): its arrays are immutable. {adapter.MUTATION_HINT}, "
            "or rewrite f to return its output."
        )
    if kind_of(y) is None:
        raise InvalidArgumentError(
            f"y= must be an array that f(y, x) writes its output into; got {type(y).__name__}."
        )


def _to_native(adapter: Adapter, kind: str) -> Callable[[Any], Any]:
    if kind in adapter.accepted_kinds:
        return _identity
    return adapter.to_native


def _const_converter(adapter: Adapter, c: Any) -> Callable[[Any], Any] | None:
    """How a context's value is passed to the kernel; None when ``fn`` supplies it itself
    (a Cache buffer, or a static Constant folded in at preparation)."""
    if isinstance(c, Cache) or is_static(c.value):
        return None
    kind = kind_of(c.value)
    # Unhashable non-arrays (nested data) are handed to f as they are.
    return _identity if kind is None else _to_native(adapter, kind)


def _native_function(f: Callable[..., Any], contexts: tuple[Any, ...], y: Any) -> Fn:
    """Fold mutation (y=), Cache contexts and static Constants into ``fn(x, *consts)``.

    ``consts`` are then only the array (and unhashable) Constant values, in order. Each
    Cache becomes a :class:`DiffCache` per thread, made on the thread's first call, so its
    buffers are reused across prepared calls where the backend allows (never the caller's
    array itself: ``di.Cache(x)`` must not overwrite x; never another thread's buffer).
    The output of a mutating f is a new buffer on every call, since fn returns it.
    """
    if y is None and not any(isinstance(c, Cache) or is_static(c.value) for c in contexts):
        return f
    plan: list[Callable[[Any], Any] | None] = []
    for c in contexts:
        if isinstance(c, Constant):
            plan.append(_static(c.value) if is_static(c.value) else None)
        else:
            plan.append(_scratch(np.shape(c.value)))
    y_shape = None if y is None else tuple(y.shape)

    scratch_slots = [i for i, c in enumerate(contexts) if isinstance(c, Cache)]

    def fn(xv: Any, *consts: Any) -> Any:
        it = iter(consts)
        args = [next(it) if make is None else make(xv) for make in plan]
        if y_shape is None:
            return _apart_from(f(xv, *args), [args[i] for i in scratch_slots])
        out = new_buffer(y_shape, xv)
        f(out, xv, *args)
        return out

    return fn


def _apart_from(result: Any, scratch: list[Any]) -> Any:
    """``result``, copied when it is (a view of) one of f's Cache buffers: the next
    evaluation overwrites those (finite differences subtract two evaluations, and prepared
    calls reuse the buffers)."""
    for buf in scratch:
        if (
            result is buf
            or getattr(result, "base", None) is buf
            or (getattr(result, "_base", None) is buf)
        ):
            return _copy(result)
    return result


def _numbers_as_arrays(fn: Fn) -> Fn:
    """``fn`` whose Python-number output (``math.sin(x)``, fine for finite differences)
    becomes a 0-d array of x's dtype, so that float32 x gives float32 results."""

    def fn_array(xv: Any, *consts: Any) -> Any:
        r = fn(xv, *consts)
        if isinstance(r, int | float | complex) and not isinstance(r, bool):
            return np.asarray(r, dtype=xv.dtype)
        return r

    return fn_array


def _static(value: Any) -> Callable[[Any], Any]:
    return lambda _x: value


def _scratch(shape: tuple[int, ...]) -> Callable[[Any], Any]:
    local = threading.local()

    def scratch(x: Any) -> Any:
        cache = getattr(local, "cache", None)
        if cache is None:
            cache = local.cache = DiffCache(np.zeros(shape))
        return get_tmp(cache, x)

    return scratch


def _output_template(
    spec: OperatorSpec, adapter: Adapter, fn: Fn, xn: Any, consts: tuple[Any, ...], y: Any
) -> Any:
    """Evaluate (or trace) f once: its output's shape and dtype, after checking its type.

    Raises:
        InvalidArgumentError: f returned no array, a Python number, another library's
            array, or (for gradient, hvp, hessian) a non-scalar.
    """
    try:
        out = adapter.output_template(_checked_output(fn, adapter, y), xn, consts)
    except DiffInterfaceError:
        raise
    except Exception as e:
        e.add_note(
            f"(raised inside f while diffinterface prepared {spec.name} with {adapter.config!r})"
        )
        raise
    if isinstance(out, np.generic | int | float):
        out = np.asarray(out)
    if not is_real_floating(out, kind_of(out)):
        raise InvalidArgumentError(
            f"f returned an array of dtype {out.dtype}; differentiation needs a real floating "
            "output (float32 or float64): compute it in one of those (an integer or bool "
            "output is piecewise constant and has no useful derivative; bfloat16 is not "
            "supported)."
        )
    if spec.scalar_y and tuple(out.shape) != ():
        raise InvalidArgumentError(
            f"{spec.name} needs f to return a scalar (0-d) array; f returned shape "
            f"{tuple(out.shape)}. Use jacobian for array outputs, or reduce the output "
            "(e.g. xp.sum)."
        )
    return out


def _checked_output(fn: Fn, adapter: Adapter, y: Any) -> Fn:
    """``fn`` that refuses an output derivatives cannot flow through (used once, at prep).

    f must return one array of the type it receives; a NumPy array (a constant) is fine
    under JAX too, and a NumPy scalar (``np.sum(...)``) wherever f receives NumPy arrays.
    """

    def checked(xv: Any, *consts: Any) -> Any:
        out = fn(xv, *consts)
        out_kind, x_kind = kind_of(out), kind_of(xv)
        numpy_ok = x_kind in ("numpy", "jax")
        if out_kind == x_kind or (numpy_ok and isinstance(out, np.ndarray | np.generic)):
            return out
        if out is None:
            hint = " A mutating f(y, x) must be passed with y=." if y is None else ""
            what = f"nothing (None).{hint}"
        elif isinstance(out, list | tuple):
            what = f"a {type(out).__name__}. Return e.g. xp.stack([...]) instead."
        elif isinstance(out, bool | int | float | complex):
            what = (
                f"the Python {type(out).__name__} {out!r}, through which no derivative "
                "flows. Return an array computed from x: e.g. xp.sum(...) rather than "
                "float(xp.sum(...)) or .item()."
            )
        else:
            lib = {"numpy": "NumPy array", "torch": "torch tensor", "jax": "JAX array"}
            what = (
                f"a {lib.get(out_kind or '', type(out).__name__)} although it received "
                f"a {lib.get(x_kind or '', type(xv).__name__)}. Build the output from x "
                "with xp = di.array_namespace(x) instead of calling one library directly."
            )
        raise InvalidArgumentError(
            f"f must return one array of the type it receives (under {adapter.config!r}); "
            f"it returned {what}"
        )

    return checked


def _tangent_plan(
    spec: OperatorSpec, adapter: Adapter, tangents: Any, like: Any
) -> tuple[int | None, Callable[[Any], Any]]:
    """Check the tangents against ``like`` and return (batch size, converter to native)."""
    what = "tangent" if spec.tangents == "x" else "cotangent"
    shape, dtype = tuple(like.shape), str(like.dtype).removeprefix("torch.")
    if isinstance(tangents, list):
        raise InvalidArgumentError(
            f"{spec.name} got a list of {what}s; pass one {what} as an array, or several as "
            f"a tuple (a list is ambiguous): tuple({what}s)."
        )
    single = not isinstance(tangents, tuple)
    items = (tangents,) if single else tangents
    if not items:
        raise InvalidArgumentError(f"{spec.name} got an empty tuple of {what}s; pass at least one.")
    number_dtype = np.dtype(dtype) if dtype in np.sctypeDict else np.dtype(np.float64)

    def as_array(t: Any, role: str) -> Any:
        """A tangent as an array; a Python or NumPy number takes ``like``'s dtype."""
        if kind_of(t) is None and isinstance(t, _NUMBERS) and not isinstance(t, bool):
            return np.asarray(t, dtype=number_dtype)
        return to_input_array(t, role)

    for i, t in enumerate(items):
        t = as_array(t, f"{what} #{i}")
        if tuple(t.shape) != shape or str(t.dtype).removeprefix("torch.") != dtype:
            raise InvalidArgumentError(
                f"{what} #{i} of {spec.name} has shape {tuple(t.shape)} and dtype "
                f"{str(t.dtype).removeprefix('torch.')}; it must match "
                f"{'x' if spec.tangents == 'x' else 'f(x)'}: shape {shape}, dtype {dtype}."
            )
    kinds = {kind_of(as_array(t, what)) for t in items}
    convs = {k: _to_native(adapter, k) for k in kinds if k is not None}
    if single:
        conv = convs[kind_of(as_array(tangents, what)) or ""]
        # an array's kind, shape and dtype are checked with the call's signature; a number
        # becomes an array
        return None, lambda t: conv(t if kind_of(t) else as_array(t, what))
    if kinds == {"numpy"} and "numpy" in adapter.accepted_kinds:
        return len(items), lambda ts: np.stack([as_array(t, what) for t in ts])

    def stack(ts: tuple[Any, ...]) -> Any:
        arrays = [as_array(t, what) for t in ts]
        return adapter.stack([convs[kind_of(a)](a) for a in arrays])  # type: ignore[index]

    return len(items), stack


# --------------------------------------------------------------------------------------
# prepared call


def execute(
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tangents: Any,
    contexts: tuple[Any, ...],
    prep: Prep | None,
    y: Any = None,
    flat: bool = False,
    plain: bool = False,
    out: Any = None,
) -> tuple[Any, ...]:
    """Run ``spec`` (preparing first when ``prep`` is None); results in x's array kind.

    For structured x (a dict / list / tuple of arrays) results shaped like x come back in
    x's structure; ``flat`` asks for Jacobians and Hessians as one 2-D matrix instead of
    blocks. With ``plain`` only the last output (the plain operator's result) is wanted:
    the others come back as None, and are not computed where the backend compiles. A
    kernel that writes into ``out`` (the caller's array for that result) is given it, so
    that no result array is allocated; the caller still copies into ``out`` otherwise.

    Raises:
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    if plain and y is None and out is None and type(prep) is StructuredPrep:
        if prep.direct is not None:  # see StructuredPrep.direct
            result = prep.direct(spec, f, backend, x, tangents, contexts)
            if result is not None:
                return (*LEADING[len(spec.outputs)], result)
    elif plain and y is None and out is None and type(prep) is Prep and prep.direct is not None:
        # The commonest prepared call, through the quickest check (see Prep.direct); a
        # compiled kernel is started first (see _run_then_check), the others after it.
        # Anything the check does not accept (a Python number as x, a mismatch to name)
        # takes the general path below.
        if prep.dispatch_first:
            try:
                result = prep.direct(x, tangents, contexts)
            except Exception:  # refused or failed: the general path below says why
                result = None
            if result is not None and _made_for(prep, spec, f, backend, x, tangents, contexts):
                return (*LEADING[len(spec.outputs)], result)
        elif _made_for(prep, spec, f, backend, x, tangents, contexts):
            return (*LEADING[len(spec.outputs)], run_direct(spec, prep, x, tangents, contexts))
    if type(x) is not np.ndarray and kind_of(x) is None:  # arrays skip both checks
        if is_structure(x):
            return execute_structured(spec, f, backend, x, tangents, contexts, prep, y, flat, plain)
        if isinstance(x, _NUMBERS) and not isinstance(x, bool):
            x = to_input_array(x, "x")
    plain = plain and y is None  # a mutating f's output is written into y: keep it
    if prep is None:
        variants: Variants = "plain" if plain else "value"
        prep = prepare(spec, f, backend, x, tangents, contexts, y, variants)
    elif type(prep) is Prep and prep.dispatch_first and y is None:
        return _run_then_check(spec, prep, f, backend, x, tangents, contexts, plain, flat, out)
    else:
        check_call(prep, spec, f, backend, x, tangents, contexts, y)
    converted = run_kernel(spec, prep, x, tangents, contexts, plain, flat, out)
    if y is not None:
        write_out(y, converted[0], "y")
    return converted


def _made_for(
    prep: Prep,
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tangents: Any,
    contexts: tuple[Any, ...],
) -> bool:
    """Whether ``prep`` was made for this call (and ``prep.direct`` computes it): the same
    f, operator and backend, and the same signatures of x, one tangent (a batch never
    matches here) and the contexts; y and out= are the caller's to check."""
    return (
        same_function(prep.f, f)
        and prep.operator is spec.name
        and (backend is prep.backend or same_backend(backend, prep.backend))
        and signature(x) == prep.signature[0]
        and (None if tangents is None else signature(tangents)) == prep.signature[1]
        and (context_signature(contexts) if contexts else ()) == prep.signature[2]
    )


def _run_then_check(
    spec: OperatorSpec,
    prep: Prep,
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tangents: Any,
    contexts: tuple[Any, ...],
    plain: bool,
    flat: bool,
    out: Any,
) -> tuple[Any, ...]:
    """:func:`run_kernel`, then :func:`check_call` while the compiled kernel computes.

    Python work between two compiled calls costs several times its own length here (a
    check of ≈ 2 µs made a 130 µs kernel 7–9 % slower; see docs/performance.md).
    Compiled kernels are pure, so running one for arguments the check then refuses only
    wastes its work; when the kernel refuses them (another shape, dtype or kind), the
    check names what differs.

    Raises:
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    try:
        results = run_kernel(spec, prep, x, tangents, contexts, plain, flat, out)
    except Exception:
        try:
            check_call(prep, spec, f, backend, x, tangents, contexts, None)
        except DiffInterfaceError as mismatch:
            raise mismatch from None
        raise
    check_call(prep, spec, f, backend, x, tangents, contexts, None)
    return results


def note_failure(e: Exception, spec: OperatorSpec, backend: Any) -> None:
    """Add to ``e``, raised by a kernel, which operator and backend it was computing."""
    e.add_note(f"(raised while diffinterface computed {spec.name} with {backend!r})")


def run_direct(spec: OperatorSpec, prep: Prep, x: Any, t: Any, contexts: tuple[Any, ...]) -> Any:
    """``prep.direct(x, t, contexts)`` for a checked call, its errors noted as
    :func:`run_kernel` notes them."""
    assert prep.direct is not None
    try:
        return prep.direct(x, t, contexts)
    except Exception as e:
        note_failure(e, spec, prep.backend)
        raise


def run_kernel(
    spec: OperatorSpec,
    prep: Prep,
    x: Any,
    tangents: Any,
    contexts: tuple[Any, ...],
    plain: bool,
    flat: bool = False,
    out: Any = None,
) -> tuple[Any, ...]:
    """Convert the (checked) arguments, run ``prep``'s kernel and convert its results back
    (only the last one with ``plain``, the others None); arguments as in :func:`execute`."""
    args = [prep.x_in(x)]
    if prep.tangent_in is not None:
        args.append(prep.tangent_in(tangents))
    if contexts:
        convs = zip(prep.const_in, contexts, strict=True)
        args += [conv(c.value) for conv, c in convs if conv is not None]
    convert = prep.result_out
    if plain and prep.plain_out is not None:
        convert = prep.plain_out
    try:
        if plain and prep.plain_kernel is not None:
            return (*LEADING[len(spec.outputs)], convert(prep.plain_kernel(*args)))
        assert prep.kernel is not None  # prepared for every variant, or for this one
        if prep.takes_out and type(out) is np.ndarray and type(x) is np.ndarray and not flat:
            results = prep.kernel(*args, out=out)
        else:
            results = prep.kernel(*args)
    except Exception as e:
        note_failure(e, spec, prep.backend)
        raise
    if plain:
        return (*LEADING[len(results)], convert(results[-1]))
    if convert is _identity:
        return tuple(results)
    return tuple([convert(r) for r in results])


#: the None outputs before the last one of a plain call, by number of outputs
LEADING = {n: (None,) * (n - 1) for n in range(1, 5)}


def check_call(
    prep: Prep,
    spec: OperatorSpec,
    f: Any,
    backend: BackendLike,
    x: Any,
    tangents: Any,
    contexts: tuple[Any, ...],
    y: Any,
) -> None:
    """Check that ``prep`` was made for this call.

    Raises:
        PreparationMismatchError: it was made for other arguments.
        InvalidArgumentError: ``prep`` is not a preparation.
    """
    if (
        type(prep) is Prep
        and y is None
        and _made_for(prep, spec, f, backend, x, tangents, contexts)
    ):
        return  # the common case; a batch of tangents or y= is compared in full below
    if isinstance(prep, StructuredPrep):
        raise PreparationMismatchError(
            f"This preparation was made for a structured x "
            f"({prep.flattening.describe()}); called with a {type(x).__name__}. Prepare "
            f"again with di.prepare_{spec.name}(...) for the new arguments."
        )
    if not isinstance(prep, Prep):
        raise InvalidArgumentError(
            f"prep= must come from di.prepare_{spec.name}(...); got {type(prep).__name__}."
        )
    config = backend if backend is prep.backend else resolve_backend(backend)
    sig = _call_signature(x, tangents, contexts, y)
    if (
        prep.operator != spec.name
        or not same_function(prep.f, f)
        or prep.backend != config
        or prep.signature != sig
    ):
        raise PreparationMismatchError(_mismatch(prep, spec.name, f, config, sig))


def same_backend(called: BackendLike, prepared: Backend | AutoSparse) -> bool:
    """Whether ``called`` (an object or a name) is the prepared backend; names resolve to
    one cached object, so identity decides without comparing fields."""
    if called is prepared:
        return True
    config = resolve_backend(called)
    return config is prepared or config == prepared


def write_out(out: Any, result: Any, role: str = "out") -> Any:
    """Copy ``result`` into the caller's array ``out`` and return ``out``.

    Raises:
        InvalidArgumentError: ``out`` has another kind, shape or dtype, or is a JAX array.
    """
    if result is out:  # a kernel wrote straight into the caller's array
        return out
    if is_structure(out) or is_structure(result):
        return _write_out_structure(out, result, role)
    kind = kind_of(out)
    if (
        kind != kind_of(result)
        or tuple(out.shape) != tuple(result.shape)
        or (out.dtype != result.dtype)
    ):
        raise InvalidArgumentError(
            f"{role}= must be a {kind_of(result)} array of shape {tuple(result.shape)} and "
            f"dtype {result.dtype}; got {describe(signature(out))}."
        )
    if kind == "numpy":
        np.copyto(out, result)
    elif kind == "torch":
        out.copy_(result)
    else:
        raise InvalidArgumentError(
            f"{role}= cannot be a JAX array: JAX arrays are immutable. Call without {role}= "
            "and use the returned array."
        )
    return out


def _write_out_structure(out: Any, result: Any, role: str) -> Any:
    """write_out leaf by leaf, for results in the structure of a structured x."""
    import optree

    if optree.tree_structure(out, none_is_leaf=True) != optree.tree_structure(
        result, none_is_leaf=True
    ):
        raise InvalidArgumentError(
            f"{role}= must have the result's structure "
            f"{optree.tree_structure(result, none_is_leaf=True)}; got "
            f"{optree.tree_structure(out, none_is_leaf=True)}."
        )
    optree.tree_map(lambda o, r: write_out(o, r, role), out, result, none_is_leaf=True)
    return out
