"""The inner backend's side of ``DifferentiateWith``: f's value, pushforward and pullback.

The bridges (one per outer framework) hand :class:`InnerCalls` all of g's positional
arguments and the positions the outer framework differentiates ("active"); the inner call
differentiates f with respect to those arguments only, in one di operator call: one active
argument is x itself, several are ``di.Args``, and every other argument is a
``di.Constant`` (f's arguments are put back in their order by a wrapper made once per
active set). Active arguments of different dtypes (or array types, devices) cannot be one
``di.Args``: they take one inner call per dtype. Preparations are made on first use per
(operator, active set, signatures) and kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial, reduce
from operator import add
from typing import Any

import numpy as np
import optree

from diffinterface._adapter import adapter_for
from diffinterface._arrays import kind_of, signature
from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Constant, is_static
from diffinterface._conversions import converter
from diffinterface._operators.pullback import prepare_pullback, pullback
from diffinterface._operators.pushforward import prepare_pushforward, pushforward
from diffinterface._trees import Args, is_structure

__all__ = ["InnerCalls"]

#: positions of g's arguments that the outer framework differentiates, in increasing order
Active = tuple[int, ...]


class InnerCalls:
    """f's value, pushforward and pullback by the inner backend.

    Arrays are NumPy arrays or torch tensors (the bridges pass host NumPy arrays for JAX and
    autograd); results come back as arrays of the arguments' kind, dtype and device.
    """

    def __init__(self, f: Callable[..., Any], backend: BackendLike) -> None:
        self.f = f
        self.backend = backend
        self._preps: dict[tuple[Any, ...], Any] = {}
        self._reordered: dict[tuple[Active, int], Callable[..., Any]] = {}
        #: what the bridges remember per argument signature (e.g. f's output shape)
        self.memo: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def value(self, arguments: tuple[Any, ...], like: Any = None) -> Any:
        """f(*arguments) evaluated on the inner backend's arrays, returned as an array of the
        kind and device of ``like`` (default: the first argument, x; a number counts as a
        0-d float64 NumPy array)."""
        adapter = adapter_for(self.backend)
        x, *args = arguments
        like = x if like is None else like
        src = kind_of(like) or "numpy"
        native = adapter.native_kind
        kx = kind_of(x)
        x = converter(kx, native)(x) if kx is not None else _to(native, np.asarray(x))
        y = adapter.evaluate(self.f, x, tuple(_to(native, a) for a in args) if args else ())
        kind = kind_of(y)
        if kind is None:  # a Python or NumPy number
            y, kind = np.asarray(y), "numpy"
        return converter(kind, src, getattr(like, "device", None))(y)

    def pushforward(
        self, arguments: tuple[Any, ...], active: Active, tangents: Any, batched: bool = False
    ) -> Any:
        """Σᵢ ∂f/∂argᵢ · tᵢ over the active arguments i (``tangents``: one per active
        argument, in order; with ``batched``, a tuple of such tuples computed as one batch).
        Returns an array of f's output shape, or a tuple of them with ``batched``."""
        if len(active) == 1:  # one argument: one inner call, its tangents as they are
            t = tuple(t[0] for t in tangents) if batched else tangents[0]
            return self._call("pushforward", arguments, active, t)
        parts = []
        for group in _groups(arguments, active):
            picked = tuple(active.index(i) for i in group)
            batch = tangents if batched else (tangents,)
            ts = tuple(_pack(tuple(t[j] for j in picked)) for t in batch)
            parts.append(self._call("pushforward", arguments, group, ts if batched else ts[0]))
        if batched:
            return tuple(reduce(add, column) for column in zip(*parts, strict=True))
        return reduce(add, parts)

    def pullback(
        self, arguments: tuple[Any, ...], active: Active, ty: Any, batched: bool = False
    ) -> Any:
        """uᵀ·∂f/∂argᵢ for each active argument i (``ty``: one cotangent u, or a tuple of
        them with ``batched``). Returns a tuple with one array per active argument, or a
        tuple of such tuples with ``batched``."""
        if len(active) == 1:  # one argument: one inner call, no grouping by dtype
            result = self._call("pullback", arguments, active, ty)
            return tuple((r,) for r in result) if batched else (result,)
        found: dict[int, Any] = {}  # argument position → its cotangent (or batch of them)
        for group in _groups(arguments, active):
            result = self._call("pullback", arguments, group, ty)
            if len(group) == 1:
                result = tuple((r,) for r in result) if batched else (result,)
            per_argument = zip(*result, strict=True) if batched else result
            found.update(zip(group, per_argument, strict=True))
        if batched:
            return tuple(zip(*(found[i] for i in active), strict=True))
        return tuple(found[i] for i in active)

    def _call(self, operator: str, arguments: tuple[Any, ...], active: Active, t: Any) -> Any:
        """One inner pushforward or pullback of f with respect to the ``active`` arguments
        (of one dtype): x is the one active argument, or ``di.Args`` of them, and the other
        arguments are constants."""
        x = arguments[active[0]] if len(active) == 1 else Args(*(arguments[i] for i in active))
        contexts = tuple(Constant(a) for i, a in enumerate(arguments) if i not in active)
        f = self._function(active, len(arguments))
        if operator == "pushforward":
            prep = self._prep(operator, prepare_pushforward, f, x, t, contexts, active)
            return pushforward(f, self.backend, x, t, *contexts, prep=prep)
        prep = self._prep(operator, prepare_pullback, f, x, t, contexts, active)
        return pullback(f, self.backend, x, t, *contexts, prep=prep)

    def _function(self, active: Active, n: int) -> Callable[..., Any]:
        """f itself when the active arguments come first (x alone, x and the next ones),
        else a wrapper that puts the arguments back in f's order (one per active set)."""
        if active == tuple(range(len(active))):
            return self.f
        found = self._reordered.get((active, n))
        if found is None:
            order = (*active, *(i for i in range(n) if i not in active))
            where = tuple(order.index(i) for i in range(n))
            f = self.f

            def reordered(*values: Any) -> Any:
                return f(*(values[j] for j in where))

            found = self._reordered.setdefault((active, n), reordered)
        return found

    def _prep(
        self,
        operator: str,
        prepare: Callable[..., Any],
        f: Callable[..., Any],
        x: Any,
        t: Any,
        contexts: tuple[Constant, ...],
        active: Active,
    ) -> Any:
        ts = t if isinstance(t, tuple) and not isinstance(t, Args) else (t,)
        key = (
            operator,
            active,
            _signature(x),
            ts is t,
            tuple(_signature(s) for s in ts),
            tuple(c.value if is_static(c.value) else signature(c.value) for c in contexts),
        )
        prep = self._preps.get(key)
        if prep is None:
            with self._lock:
                prep = self._preps.get(key)
                if prep is None:
                    prep = self._preps[key] = prepare(f, self.backend, x, t, *contexts)
        return prep


def _groups(arguments: tuple[Any, ...], active: Active) -> list[Active]:
    """The active arguments by array type, dtype and device, in order of first appearance:
    ``di.Args`` needs one of each, so each group is one inner call (one in all, unless
    arguments of several dtypes are differentiated together)."""
    groups: dict[Any, list[int]] = {}
    for i in active:
        sig = signature(arguments[i])
        groups.setdefault((sig[0], str(sig[2]), str(sig[3:])), []).append(i)
    return [tuple(g) for g in groups.values()]


def _pack(values: tuple[Any, ...]) -> Any:
    """The inner call's x or tangent: the one value, or ``di.Args`` of several."""
    return values[0] if len(values) == 1 else Args(*values)


def _signature(x: Any) -> Any:
    return tuple(map(signature, x)) if isinstance(x, Args) else signature(x)


def _to(target: str, a: Any) -> Any:
    """An array as an array of kind ``target`` (also inside a dict / list / tuple);
    anything else unchanged."""
    if is_structure(a):
        return optree.tree_map(partial(_to, target), a, none_is_leaf=True)
    src = kind_of(a)
    return a if src is None else converter(src, target)(a)
