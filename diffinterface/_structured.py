"""Structured inputs: x (and its tangents and ``out=``) as a nested dict / list / tuple of
arrays, such as a model's parameters.

A structure is flattened (with optree) into one vector ``v`` of its leaves, f is called as
``f(unravel(v), ...)``, and the operator runs on the vector as for any array x. Results shaped
like x come back in x's structure; a Jacobian comes back as x's structure of blocks of shape
``y.shape + leaf.shape``, a Hessian as x's structure of x's structures of blocks
``leaf_i.shape + leaf_j.shape`` (as ``jax.jacobian`` and ``jax.hessian`` lay them out), or
as one 2-D matrix with ``flat=True``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import optree

from diffinterface._adapter import Adapter, Kernel
from diffinterface._arrays import describe, kind_of, signature, to_input_array
from diffinterface._contexts import context_signature
from diffinterface._errors import InvalidArgumentError, PreparationMismatchError
from diffinterface._namespace import array_namespace
from diffinterface._trees import Structure

if TYPE_CHECKING:
    from diffinterface._prep import OperatorSpec, Prep, Variants

__all__ = [
    "Flattening",
    "Fusion",
    "StructuredPrep",
    "execute_structured",
    "is_structure",
]

_STRUCTURES = (dict, list, tuple)

#: see :func:`_acceptor`
Accepts = Callable[["OperatorSpec", Any, Any, Any, Any, tuple[Any, ...], bool], bool]
#: see :func:`_checked_direct`
Direct = Callable[["OperatorSpec", Any, Any, Any, Any, tuple[Any, ...]], Any]


def is_structure(x: Any) -> bool:
    """Whether x is a dict, list or tuple (of arrays), rather than one array."""
    return isinstance(x, _STRUCTURES)


@dataclass(frozen=True)
class Flattening:
    """How one structure of arrays maps to a vector: tree shape, leaf shapes and offsets."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]  # start of each leaf in the vector, then the total size
    leaves: tuple[Any, ...]  # signatures of the leaves (kind, shape, dtype[, device])

    @staticmethod
    def of(tree: Any, role: str = "x") -> Flattening:
        """The flattening of ``tree``.

        Raises:
            InvalidArgumentError: a leaf is not a real floating array, or the leaves differ
                in array type, dtype or device.
        """
        leaves, treedef = optree.tree_flatten(tree, none_is_leaf=True)
        if not leaves:
            raise InvalidArgumentError(f"{role} is an empty {type(tree).__name__}; give arrays.")
        if not any(kind_of(a) for a in leaves):
            raise InvalidArgumentError(
                f"{role} is a {type(tree).__name__} of numbers; expected a NumPy array (pass "
                f"np.asarray({role})) or a structure (dict, list, tuple) of arrays."
            )
        arrays = [to_input_array(a, f"{role} leaf #{i}") for i, a in enumerate(leaves)]
        sigs = tuple(signature(a) for a in arrays)
        kinds = {(s[0], str(s[2]), str(s[3]) if len(s) > 3 else "") for s in sigs}
        if len(kinds) > 1:
            found = ", ".join(sorted(describe(s) for s in set(sigs)))
            raise InvalidArgumentError(
                f"The arrays of {role} must share one array type, dtype and device, so that "
                f"they can be differentiated as one vector; found {found}. Convert them, e.g. "
                "to float64 NumPy arrays."
            )
        return Flattening.layout(treedef, tuple(tuple(a.shape) for a in arrays), sigs)

    @staticmethod
    def layout(treedef: Any, shapes: tuple[tuple[int, ...], ...], leaves: Any = ()) -> Flattening:
        """The flattening of a structure with these leaf shapes (no leaf checks)."""
        offsets = tuple(np.cumsum([0, *(math.prod(s) for s in shapes)]).tolist())
        return Flattening(treedef, shapes, offsets, tuple(leaves))

    @property
    def size(self) -> int:
        return self.offsets[-1]

    def checked(self, tree: Any, role: str = "x") -> Any:
        """``tree`` with its leaves as arrays; it must have x's structure and leaf shapes.

        Raises:
            InvalidArgumentError: ``tree`` does not have x's structure and leaf shapes.
        """
        leaves, treedef = optree.tree_flatten(tree, none_is_leaf=True)
        arrays = [to_input_array(a, role) for a in leaves]
        shapes = tuple(tuple(a.shape) for a in arrays)
        if treedef != self.treedef or shapes != self.shapes:
            raise InvalidArgumentError(
                f"{role} must have the structure and shapes of x: {self.describe()}; got "
                f"{treedef} with shapes {list(shapes)}."
            )
        return optree.tree_unflatten(treedef, arrays)

    def cut(self, v: Any) -> list[Any]:
        """The vector v (or any array whose last axis has x's size) cut into x's leaves,
        the leading axes of v kept in front of each leaf's shape."""
        lead = tuple(v.shape[:-1])
        pieces = [v[..., a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True)]
        return [p.reshape(lead + s) for p, s in zip(pieces, self.shapes, strict=True)]

    def unravel(self, v: Any) -> Any:
        """:meth:`cut`, the pieces in x's structure."""
        return optree.tree_unflatten(self.treedef, self.cut(v))

    def unravel_square(self, h: Any) -> Any:
        """A (size, size) matrix as x's structure of x's structures of blocks."""
        rows = [
            self.unravel(h[a:b].reshape((*s, self.size)))
            for a, b, s in zip(self.offsets[:-1], self.offsets[1:], self.shapes, strict=True)
        ]
        return optree.tree_unflatten(self.treedef, rows)

    def describe(self) -> str:
        return f"{self.treedef} with shapes {list(self.shapes)}"


def join(tree: Any) -> Any:
    """The leaves of a structure of arrays of one kind (NumPy, torch, JAX, or traced by
    autograd) as one vector."""
    leaves = optree.tree_leaves(tree, none_is_leaf=True)
    if len(leaves) == 1:
        return leaves[0].reshape(-1)
    if kind_of(leaves[0]) == "numpy":
        return np.concatenate([a.reshape(-1) for a in leaves])
    xp = array_namespace(*leaves)
    return xp.concat([xp.reshape(a, (-1,)) for a in leaves])


@dataclass(frozen=True)
class Fusion:
    """The flattening moved into a backend's kernels (see ``_prep.prepare``), for x's
    leaves of the backend's own array type.

    A fused kernel takes x in its structure, and x-shaped tangents in x's structure (a
    tuple of such structures for a batch); it returns x-shaped results in x's structure (a
    tuple of them for a batch). A backend that compiles joins and cuts the leaves in its
    compiled code, whose call also flattens x and builds the results' structure (in JAX's
    C++ dispatch): a prepared call is one compiled call. An adapter may instead
    differentiate with respect to the structure itself with a ``structured_<operator>``
    kernel. Jacobians and Hessians stay matrices, cut outside, since ``flat=`` is chosen
    per call.
    """

    flattening: Flattening
    outputs: tuple[str, ...]
    x: Any  # x with its leaves as native arrays, the example to compile for
    tangents: Any  # x-shaped tangents (one structure or a tuple of them), else None
    f: Callable[..., Any]  # f of x's structure
    structure: Structure  # x's structure, for ``structured_<operator>`` kernels

    def kernel(self, raw: Kernel, batch: int | None) -> Kernel:
        """``raw`` (a kernel of the flat problem) on x's structure, with x-shaped results
        in it."""
        fl, outputs, x_tangents = self.flattening, self.outputs, self.tangents is not None

        def fused(x: Any, *args: Any) -> tuple[Any, ...]:
            if x_tangents:
                args = (_join_tangents(args[0], batch), *args[1:])
            results = raw(join(x), *args)
            return tuple(
                _unravel(fl, r, batch) if kind == "x" else r
                for r, kind in zip(results, outputs, strict=True)
            )

        return fused

    def block_cutter(
        self, adapter: Adapter, kernel: Kernel, example: tuple[Any, ...]
    ) -> Kernel | None:
        """The Jacobian or Hessian output of the fused ``kernel`` cut into x's blocks (in
        x's structure), compiled by the adapter; None without such an output."""
        kind = next((k for k in self.outputs if k in ("yx", "xx")), None)
        if kind is None:
            return None
        template = adapter.output_template(kernel, example[0], example[1:])
        matrix = template[self.outputs.index(kind)]
        fl = self.flattening
        return adapter.compile(fl.unravel if kind == "yx" else fl.unravel_square, (matrix,))


def _join_tangents(t: Any, batch: int | None) -> Any:
    """x-shaped tangents (a tuple of them for a batch) as a vector or a stack of them."""
    if batch is None:
        return join(t)
    vectors = [join(ti) for ti in t]
    return array_namespace(vectors[0]).stack(vectors)


def _unravel(fl: Flattening, r: Any, batch: int | None) -> Any:
    """An x-shaped result (a stacked batch of them) in x's structure (a tuple of them)."""
    if batch is not None and r.ndim == 2:
        return tuple(fl.unravel(r[i]) for i in range(batch))
    return fl.unravel(r)


# --------------------------------------------------------------------------------------
# preparation and prepared call


@dataclass(frozen=True, eq=False)
class StructuredPrep:
    """A preparation for structured x: the flat problem's Prep plus the flattening."""

    flat: Prep
    flattening: Flattening
    f: Callable[..., Any]
    f_flat: Callable[..., Any]
    tangents: Any  # the flattening of the tangents' batch layout, for mismatch checks
    #: signatures of the tangents' leaves and of the contexts, checked by fused calls
    call: tuple[Any, ...]
    #: the quickest check, of a call on a fused preparation without tangents or with one
    #: x-shaped tangent (see :func:`_acceptor`); None elsewhere
    accepts: Accepts | None
    #: the plain operator's result in x's structure for a call ``accepts`` takes, where the
    #: kernel gives it as it is (an x-shaped result, as gradient's and hvp's; see
    #: :func:`_checked_direct`); None elsewhere
    direct: Direct | None

    @property
    def operator(self) -> str:
        return self.flat.operator

    @property
    def backend(self) -> Any:
        return self.flat.backend

    def __repr__(self) -> str:
        return (
            f"Prep({self.operator}, backend={self.backend!r}, x={self.flattening.describe()}, "
            f"batch={self.flat.batch})"
        )


def prepare_structured(
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: Any,
    x: Any,
    tangents: Any,
    contexts: tuple[Any, ...],
    y: Any,
    plain: bool | None = None,
) -> StructuredPrep:
    """:func:`~diffinterface._prep.prepare` for structured x (``plain``: for an unprepared
    plain call (True) or value call (False), as ``prepare``'s ``variants``)."""
    if spec.scalar_x:
        raise InvalidArgumentError(
            f"{spec.name} needs a scalar x; got a {type(x).__name__}. Use gradient, "
            "pushforward or jacobian for structured inputs."
        )
    if not callable(f):
        raise InvalidArgumentError(f"f must be callable, got {type(f).__name__}.")
    fl = Flattening.of(x)
    f_flat = _flat_function(f, fl, mutating=y is not None)
    t_arg, layout = _tangent_argument(spec, fl, tangents)
    variants: Variants = "both" if plain is None else "plain" if plain and y is None else "value"
    x = fl.checked(x)
    x_tangents = t_arg if spec.tangents == "x" else None
    fusion = Fusion(fl, spec.outputs, x, x_tangents, f, Structure(x))
    v, flat_t = join(x), _flat_tangents(spec, t_arg, layout)
    flat = _prep.prepare(spec, f_flat, backend, v, flat_t, contexts, y, variants, fusion)
    call = _fused_signature(t_arg, contexts)
    accepts = direct = None
    if flat.fused and (spec.tangents is None or layout == "one"):  # one x-shaped tangent
        accepts = _acceptor(flat, f, fusion.structure, x, fl.leaves, call)
        if flat.direct is not None and spec.outputs[-1] == "x":
            direct = _checked_direct(flat, accepts)
    return StructuredPrep(flat, fl, f, f_flat, layout, call, accepts, direct)


def _acceptor(
    flat: Prep,
    f: Callable[..., Any],
    structure: Structure,
    example: Any,
    signatures: tuple[Any, ...],
    call: tuple[Any, ...],
) -> Accepts:
    """``accepts(spec, f, backend, x, t, contexts, started)``: whether a call has the
    prepared f, operator, backend and contexts, an x of the prepared structure and leaf
    ``signatures`` (those of the prepared x, ``example``) and, where prepared with one
    x-shaped tangent, a tangent t of x's structure with the prepared leaf signatures (the
    ``call`` signature: tangents' leaves and contexts). Once a compiled kernel has accepted
    x (``started``), only the types of x's leaves are compared (the kernel compares the
    structure, shapes and dtypes itself). Everything it reads is bound here: it runs on
    every prepared call."""
    leaves_of, operator, prepared = structure.leaves, flat.operator, flat.backend
    types = tuple(map(type, structure.leaves(example) or ()))
    tangent_signatures, contexts_signature = call
    same_function, same_backend = _prep.same_function, _prep.same_backend

    def accepts(
        spec: OperatorSpec,
        called: Any,
        backend: Any,
        x: Any,
        t: Any,
        contexts: tuple[Any, ...],
        started: bool,
    ) -> bool:
        leaves = leaves_of(x)
        if t is not None:  # one x-shaped tangent
            t_leaves = leaves_of(t)
            if t_leaves is None or tuple(map(signature, t_leaves)) != tangent_signatures:
                return False
        elif tangent_signatures:
            return False
        return (
            leaves is not None
            and (called is f or same_function(f, called))
            and spec.name is operator
            and (backend is prepared or same_backend(backend, prepared))
            and (
                tuple(map(type, leaves)) == types
                if started
                else tuple(map(signature, leaves)) == signatures
            )
            and (context_signature(contexts) if contexts else ()) == contexts_signature
        )

    return accepts


def _checked_direct(flat: Prep, accepts: Accepts) -> Direct:
    """``direct(spec, f, backend, x, t, contexts)``: ``flat.direct``'s result for a call that
    ``accepts`` takes, else None (the general path then names what differs). A compiled
    kernel starts before the check, as in :func:`~diffinterface._prep.execute`."""
    run = flat.direct
    assert run is not None

    def check_then_run(
        spec: OperatorSpec, f: Any, backend: Any, x: Any, t: Any, contexts: tuple[Any, ...]
    ) -> Any:
        if not accepts(spec, f, backend, x, t, contexts, False):
            return None
        try:  # _prep.run_direct's work without its call: this runs on every prepared call
            return run(x, t, contexts)
        except Exception as e:
            _prep.note_failure(e, spec, flat.backend)
            raise

    def run_then_check(
        spec: OperatorSpec, f: Any, backend: Any, x: Any, t: Any, contexts: tuple[Any, ...]
    ) -> Any:
        try:
            result = run(x, t, contexts)
        except Exception:  # refused or failed: the general path says why
            return None
        return result if accepts(spec, f, backend, x, t, contexts, True) else None

    return run_then_check if flat.dispatch_first else check_then_run


def _tangent_argument(spec: OperatorSpec, fl: Flattening, tangents: Any) -> tuple[Any, str]:
    """The tangents as a fused kernel takes them, and their layout (``"one"``, the size of
    a batch, or ``"y-shaped"``): x-shaped ones in x's structure with their leaves as arrays
    (a tuple of such structures for a batch), others as given.

    Raises:
        InvalidArgumentError: x-shaped tangents without x's structure and leaf shapes.
    """
    if spec.tangents != "x":
        return tangents, "y-shaped"
    if optree.tree_structure(tangents, none_is_leaf=True) == fl.treedef:
        return fl.checked(tangents, "the tangent"), "one"
    if isinstance(tangents, tuple) and tangents:
        parts = tuple(fl.checked(t, f"tangent #{i}") for i, t in enumerate(tangents))
        return parts, f"{len(tangents)}"
    raise InvalidArgumentError(
        f"The tangent of {spec.name} must have x's structure ({fl.describe()}), or be a tuple "
        f"of such structures; got a {type(tangents).__name__}."
    )


def _fused_signature(t_arg: Any, contexts: tuple[Any, ...]) -> tuple[Any, ...]:
    """What a fused call checks besides x: its tangents' leaves and its contexts."""
    leaves = () if t_arg is None else optree.tree_leaves(t_arg, none_is_leaf=True)
    return tuple(map(signature, leaves)), context_signature(contexts)


def execute_structured(
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: Any,
    x: Any,
    tangents: Any,
    contexts: tuple[Any, ...],
    prep: Any,
    y: Any,
    flat: bool,
    plain: bool = False,
) -> tuple[Any, ...]:
    """:func:`~diffinterface._prep.execute` for structured x: results in x's structure."""
    if prep is None:
        prep = prepare_structured(spec, f, backend, x, tangents, contexts, y, plain)
    elif not isinstance(prep, StructuredPrep):
        raise PreparationMismatchError(_mismatch(prep, spec, f, x))
    fl, flat_prep = prep.flattening, prep.flat
    results = None
    if prep.accepts is not None and y is None:
        results = _quick_run(spec, f, backend, x, tangents, contexts, prep, plain)
    if results is None:
        results = _checked_run(spec, f, backend, x, tangents, contexts, prep, y, plain)
    elif "yx" not in spec.outputs and "xx" not in spec.outputs:
        return results  # a fused kernel's: in x's structure already (see _restore)
    return tuple(
        None if r is None else _restore(fl, r, kind, flat_prep, flat)
        for r, kind in zip(results, spec.outputs, strict=True)
    )


def _quick_run(
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: Any,
    x: Any,
    t: Any,
    contexts: tuple[Any, ...],
    prep: StructuredPrep,
    plain: bool,
) -> tuple[Any, ...] | None:
    """The kernel's results (before :func:`_restore`) for a call on a fused preparation
    that ``prep.accepts``, else None (:func:`_checked_run` then names what
    differs). The plain call with ``prep.direct`` has been tried by ``_prep.execute``; a
    compiled kernel starts before the check, as there."""
    assert prep.accepts is not None
    flat = prep.flat
    if not flat.dispatch_first:
        if prep.accepts(spec, f, backend, x, t, contexts, False):
            return _prep.run_kernel(spec, flat, x, t, contexts, plain)
        return None
    try:
        results = _prep.run_kernel(spec, flat, x, t, contexts, plain)
    except Exception:  # refused or failed: _checked_run says why
        return None
    return results if prep.accepts(spec, f, backend, x, t, contexts, True) else None


def _checked_run(
    spec: OperatorSpec,
    f: Callable[..., Any],
    backend: Any,
    x: Any,
    tangents: Any,
    contexts: tuple[Any, ...],
    prep: StructuredPrep,
    y: Any,
    plain: bool,
) -> tuple[Any, ...]:
    """Check the call against ``prep`` and run its flat problem (results before
    :func:`_restore`).

    Raises:
        PreparationMismatchError: naming what differs.
    """
    fl = prep.flattening
    leaves, treedef = optree.tree_flatten(x, none_is_leaf=True)
    leaves = [a if kind_of(a) else to_input_array(a, "x") for a in leaves]
    if (
        not _prep.same_function(prep.f, f)
        or treedef != fl.treedef
        or tuple(map(signature, leaves)) != fl.leaves
    ):
        raise PreparationMismatchError(_mismatch(prep, spec, f, x))
    if prep.operator != spec.name:
        raise PreparationMismatchError(
            f"This preparation was made for {prep.operator}; called for {spec.name}. Prepare "
            f"again with di.prepare_{spec.name}(...), or call without prep=."
        )
    t_arg, layout = _tangent_argument(spec, fl, tangents)
    if layout != prep.tangents:
        raise PreparationMismatchError(
            f"This preparation was made for {prep.tangents} tangents; called with {layout}. "
            f"Prepare again with di.prepare_{spec.name}(...)."
        )
    if prep.flat.fused:
        _check_fused(spec, backend, leaves, t_arg, layout, contexts, prep)
        x = optree.tree_unflatten(treedef, leaves)
        return _prep.run_kernel(spec, prep.flat, x, t_arg, contexts, plain)
    v, flat_t = join(leaves), _flat_tangents(spec, t_arg, layout)
    return _prep.execute(spec, prep.f_flat, backend, v, flat_t, contexts, prep.flat, y, plain=plain)


def _check_fused(
    spec: OperatorSpec,
    backend: Any,
    leaves: list[Any],
    t_arg: Any,
    layout: str,
    contexts: tuple[Any, ...],
    prep: StructuredPrep,
) -> None:
    """Check a fused call (see :class:`Fusion`) beyond x's leaves: backend, tangents and
    contexts (the operator is checked by :func:`execute_structured`).

    Raises:
        PreparationMismatchError: naming what differs.
    """
    flat = prep.flat
    if (
        not _prep.same_backend(backend, flat.backend)
        or _fused_signature(t_arg, contexts) != prep.call
    ):
        v, flat_t = join(leaves), _flat_tangents(spec, t_arg, layout)
        _prep.check_call(flat, spec, prep.f_flat, backend, v, flat_t, contexts, None)
        raise PreparationMismatchError(
            f"This preparation was made for other tangents or contexts. Prepare again with "
            f"di.prepare_{spec.name}(...) for the new arguments."
        )


def _flat_function(f: Callable[..., Any], fl: Flattening, mutating: bool) -> Callable[..., Any]:
    if mutating:

        def f_flat_mutating(y: Any, v: Any, *args: Any) -> Any:
            return f(y, fl.unravel(v), *args)

        return f_flat_mutating

    def f_flat(v: Any, *args: Any) -> Any:
        return f(fl.unravel(v), *args)

    return f_flat


def _flat_tangents(spec: OperatorSpec, t_arg: Any, layout: str) -> Any:
    """The tangents as the flat problem takes them: x-shaped ones as vectors (a tuple of
    vectors for a batch), from :func:`_tangent_argument`."""
    if spec.tangents != "x":
        return t_arg
    if layout == "one":
        return join(t_arg)
    return tuple(join(t) for t in t_arg)


def _restore(fl: Flattening, r: Any, kind: str, prep: Prep, flat: bool) -> Any:
    """One kernel output back in x's structure, by what it is shaped like. A fused ``prep``
    (see :class:`Fusion`) gives x-shaped outputs in x's structure already, and may cut
    Jacobians and Hessians into blocks by compiled code."""
    if kind == "y" or type(r).__module__.startswith("scipy.sparse"):
        return r  # AutoSparse: one sparse matrix over all of x's entries, in leaf order
    if prep.fused and kind == "x":
        return r
    if prep.cut_blocks is not None and not flat:
        return prep.cut_blocks(r)
    batch = prep.batch
    if kind == "x":
        if batch is not None and r.ndim == 2:  # a stacked batch of x-shaped results
            return tuple(fl.unravel(r[i]) for i in range(batch))
        return fl.unravel(r)
    if kind == "yx":  # a Jacobian y.shape + (n,)
        if flat:
            return r.reshape((math.prod(r.shape[:-1]), fl.size))
        return fl.unravel(r)
    if kind == "xx":  # a Hessian (n, n)
        return r if flat else fl.unravel_square(r)
    raise AssertionError(kind)


def _mismatch(prep: Any, spec: OperatorSpec, f: Any, x: Any) -> str:
    same_f = isinstance(prep, StructuredPrep) and _prep.same_function(prep.f, f)
    if isinstance(prep, StructuredPrep):
        x_row = f"  ✗ x: {_difference(prep.flattening, x)}"
    else:
        x_row = f"  ✗ x: prepared {prep!r} for an array x, called with a {type(x).__name__}"
    return (
        "This preparation was made for other arguments:\n"
        f"  {'✓' if same_f else '✗'} f\n"
        f"{x_row}\n"
        f"Prepare again with di.prepare_{spec.name}(...) for the new arguments."
    )


def _difference(fl: Flattening, x: Any) -> str:
    """The first entry of x that differs from the prepared structure, by its key path."""
    prepared = dict(zip(_paths(fl.treedef), fl.leaves, strict=True))
    paths, leaves, _ = optree.tree_flatten_with_path(x, none_is_leaf=True)
    called = {_path_text(p): signature(a) for p, a in zip(paths, leaves, strict=True)}
    for key in prepared.keys() - called.keys():
        return f"prepared with {key} ({describe(prepared[key])}), called without it"
    for key in called.keys() - prepared.keys():
        return f"called with {key} ({describe(called[key])}), prepared without it"
    for key, sig in prepared.items():
        if called[key] != sig:
            return f"{key} was prepared as {describe(sig)}, called as {describe(called[key])}"
    return f"prepared {fl.treedef}, called {optree.tree_structure(x, none_is_leaf=True)}"


def _paths(treedef: Any) -> list[str]:
    return [_path_text(p) for p in optree.treespec_paths(treedef)]


def _path_text(path: tuple[Any, ...]) -> str:
    return "x" + "".join(f"[{k!r}]" for k in path)


# Imported last: _prep imports this module's names while it is itself being imported.
from diffinterface import _prep  # noqa: E402
