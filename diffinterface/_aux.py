"""``has_aux=True``: f returns ``(output, aux)``; the output is differentiated and aux is
passed through. :func:`output_and_aux` splits f; :class:`AuxLayout` keeps aux's layout
(its arrays travel through the kernels, its other leaves stay here) and watches f's
evaluations inside a kernel, so that an eager backend takes aux from the evaluation at x
it makes anyway instead of evaluating f once more.
"""

from __future__ import annotations

import threading
from typing import Any

import optree

from diffinterface._adapter import Adapter, Kernel
from diffinterface._arrays import kind, kind_of
from diffinterface._errors import InvalidArgumentError
from diffinterface._functions import Fn

__all__ = ["AuxLayout", "AuxWatch", "output_and_aux", "with_aux"]


def output_and_aux(fn: Fn) -> tuple[Fn, Fn, AuxLayout]:
    """For f that returns ``(output, aux)`` (``has_aux=True``): the function of its output,
    which is differentiated, the function of aux's arrays, which are not (a tuple: what a
    compiled kernel can return), and the layout that puts aux back together. The function
    of the output shows each aux to the layout's watch (see :meth:`AuxLayout.watch`).

    Raises:
        InvalidArgumentError: f does not return a pair (at preparation, its first call).
    """
    layout = AuxLayout()

    def pair(xv: Any, *consts: Any) -> Any:
        result = fn(xv, *consts)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise InvalidArgumentError(
                f"With has_aux=True, f must return a pair (output, aux); it returned a "
                f"{type(result).__name__}. Return (output, aux), or call without has_aux."
            )
        return result

    def output(xv: Any, *consts: Any) -> Any:
        out, aux = pair(xv, *consts)
        watch = getattr(layout.local, "watch", None)
        if watch is not None:
            watch.see(xv, aux)
        return out

    def aux_arrays(xv: Any, *consts: Any) -> tuple[Any, ...]:
        return layout.record(pair(xv, *consts)[1])

    return output, aux_arrays, layout


class AuxWatch:
    """The aux of f's evaluations on one thread while one kernel runs at ``x``: the first
    one, how many, and the one evaluated at ``x`` itself (not a copy, not traced)."""

    __slots__ = ("at_x", "calls", "first", "previous", "x")

    def __init__(self, x: Any, previous: AuxWatch | None) -> None:
        self.x, self.previous = x, previous
        self.calls, self.first, self.at_x = 0, None, _UNSEEN

    def see(self, xv: Any, aux: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            self.first = aux
        if xv is self.x:
            self.at_x = aux

    def aux_at_x(self, traced: bool) -> Any:
        """f's aux at x from the kernel's own evaluations, or ``_UNSEEN`` where they do
        not give it: an evaluation at x itself (finite differences' f(x)), or, with
        ``traced`` (f ran on traced values at x: an AD backend), its first evaluation with
        aux's arrays taken off the graph, unless one cannot leave its transform (a tensor
        still wrapped by torch.func)."""
        if self.at_x is not _UNSEEN:
            return self.at_x
        if not traced or self.calls == 0:
            return _UNSEEN
        leaves, treedef = optree.tree_flatten(self.first, none_is_leaf=True)
        plain = []
        for a in leaves:
            name = kind_of(a)
            if name is not None:
                a = kind(name).plain_value(a)
                name = kind_of(a)
                if name is not None and kind(name).traced_by(a) is not None:
                    return _UNSEEN
            plain.append(a)
        return optree.tree_unflatten(treedef, plain)


_UNSEEN = object()


class AuxLayout:
    """Where f's aux keeps its arrays (returned by the kernels) and its other leaves
    (numbers, strings: kept here), recorded when f runs: per thread for an f that runs at
    every call, at tracing for a compiled one."""

    def __init__(self) -> None:
        self.local = threading.local()
        self._traced: Any = None

    def record(self, aux: Any) -> tuple[Any, ...]:
        leaves, treedef = optree.tree_flatten(aux, none_is_leaf=True)
        arrays = tuple(i for i, a in enumerate(leaves) if kind_of(a) is not None)
        others = {i: a for i, a in enumerate(leaves) if kind_of(a) is None}
        self.local.layout = self._traced = (treedef, arrays, others)
        return tuple(leaves[i] for i in arrays)

    def watch(self, x: Any) -> AuxWatch:
        """Start watching f's evaluations on this thread (a kernel about to run at x)."""
        watch = self.local.watch = AuxWatch(x, getattr(self.local, "watch", None))
        return watch

    def unwatch(self, watch: AuxWatch) -> None:
        self.local.watch = watch.previous

    def rebuild(self, arrays: tuple[Any, ...]) -> Any:
        """aux from its arrays (as the kernel returned them, converted) and other leaves."""
        treedef, positions, others = getattr(self.local, "layout", self._traced)
        leaves = dict(others)
        leaves.update(zip(positions, arrays, strict=True))
        return optree.tree_unflatten(treedef, [leaves[i] for i in range(len(leaves))])


def with_aux(
    kernel: Kernel, aux: Fn, layout: AuxLayout | None, adapter: Adapter, first_const: int
) -> Kernel:
    """``kernel``'s results paired with f's aux at x (``has_aux``). Where the backend
    compiles, in one compiled call (the compiler shares f's work between the two). Where
    it does not, aux comes from the kernel's own evaluation of f at x where it made one
    (see :meth:`AuxWatch.aux_at_x`), else from one more evaluation."""
    assert layout is not None
    if adapter.compiles:
        return lambda *args, **kwargs: (kernel(*args, **kwargs), aux(args[0], *args[first_const:]))
    traced = not adapter.plain_values

    def paired(*args: Any, **kwargs: Any) -> Any:
        x = args[0]
        watch = layout.watch(x)
        try:
            results = kernel(*args, **kwargs)
        finally:
            layout.unwatch(watch)
        seen = watch.aux_at_x(traced and not _traced(x))
        if seen is _UNSEEN:
            return results, aux(x, *args[first_const:])
        return results, layout.record(seen)

    return paired


def _traced(x: Any) -> bool:
    """Whether x (the kernel's, in its structure) is traced by an enclosing
    differentiation: f's evaluations inside the kernel then compute aux through it."""
    for a in optree.tree_leaves(x, none_is_leaf=True):
        name = kind_of(a)
        if name is not None and kind(name).traced_by(a) is not None:
            return True
    return False
