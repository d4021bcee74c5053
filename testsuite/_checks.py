"""The checks of one case's results: a :class:`Checker` compares each result with the
scenario's reference (values within a tolerance) and with the contract (x's array type,
dtype and device; the expected shape), collecting the problems it finds. The helpers below
it serve the variants a case runs: a counting f for the prepared calls, ``out=`` buffers.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import optree

from diffinterface._arrays import ArrayKind, dtype_name, kind, kind_of
from diffinterface.testsuite._scenario import Scenario

__all__ = [
    "Checker",
    "CountingFunction",
    "is_jax",
    "out_like",
    "same_objects",
    "takes_out",
    "with_function",
]


class Checker:
    """Compares results of one scenario; ``problems`` lists what was wrong, by variant."""

    def __init__(self, scenario: Scenario, rtol: float, correctness: bool, contract: bool):
        self.scenario, self.rtol = scenario, rtol
        self.correctness, self.contract = correctness, contract
        self.problems: list[str] = []

    def compare(self, what: str, got: Any, want: Any, rtol: float | None = None) -> None:
        if isinstance(want, dict | list):  # a result in the structure of a structured x
            if optree.tree_structure(got) != optree.tree_structure(want):
                self.problems.append(
                    f"{what}: structure {optree.tree_structure(got)}, expected "
                    f"{optree.tree_structure(want)}"
                )
                return
            paths, leaves, _ = optree.tree_flatten_with_path(want)
            for path, g, w in zip(paths, optree.tree_leaves(got), leaves, strict=True):
                self.compare(f"{what}{''.join(f'[{k!r}]' for k in path)}", g, w, rtol)
            return
        if isinstance(want, tuple):
            if not isinstance(got, tuple) or len(got) != len(want):
                self.problems.append(f"{what}: expected a tuple of {len(want)} results")
                return
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                self.compare(f"{what}[{i}]", g, w, rtol)
            return
        if _is_sparse(got):  # AutoSparse: a scipy.sparse matrix of the flattened result
            got = self._sparse_as_dense(what, got, np.shape(want))
            if got is None:
                return
        elif self.contract:
            problem = _contract_problem(got, self.scenario.x, np.shape(want))
            if problem:
                self.problems.append(f"{what}: {problem}")
                return
        if self.correctness:
            problem = _value_problem(got, want, self.rtol if rtol is None else rtol)
            if problem:
                self.problems.append(f"{what}: {problem}")

    def _sparse_as_dense(self, what: str, got: Any, shape: tuple[int, ...]) -> Any:
        x_shape = tuple(np.shape(self.scenario.x))
        rows = math.prod(shape[: len(shape) - len(x_shape)])
        expected = (rows, math.prod(x_shape))
        dtype = np.dtype(_dtype_name(self.scenario.x))
        if self.contract and (tuple(got.shape) != expected or got.dtype != dtype):
            self.problems.append(
                f"{what}: sparse result of shape {got.shape} and dtype {got.dtype}, expected "
                f"{expected} and {dtype}"
            )
            return None
        return got.toarray().reshape(shape)


def _is_sparse(a: Any) -> bool:
    return type(a).__module__.startswith("scipy.sparse")


def is_jax(a: Any) -> bool:
    return type(a).__module__.split(".")[0] in ("jax", "jaxlib")


def _dtype_name(x: Any) -> str:
    return "float64" if isinstance(x, int | float) else dtype_name(x)


def takes_out(x: Any) -> bool:
    """Whether results for x's array type can be written into ``out=``: not for JAX's and
    TensorFlow's immutable arrays (their kind keeps the default, refusing ``write``)."""
    name = kind_of(x)
    return name is None or type(kind(name)).write is not ArrayKind.write


def _contract_problem(result: Any, x: Any, shape: tuple[int, ...]) -> str | None:
    x = optree.tree_leaves(x)[0]  # a structured x: its leaves share type, dtype, device
    if isinstance(x, int | float):
        x = np.asarray(x, dtype=np.float64)
    if type(result) is not type(x) and not (is_jax(x) and is_jax(result)):
        return f"array type {type(result).__name__}, expected {type(x).__name__} (x's type)"
    if result.dtype != x.dtype:
        return f"dtype {result.dtype}, expected {x.dtype} (x's dtype)"
    if getattr(result, "device", None) != getattr(x, "device", None):
        return f"device {result.device}, expected {x.device} (x's device)"
    if tuple(result.shape) != tuple(shape):
        return f"shape {tuple(result.shape)}, expected {tuple(shape)}"
    return None


def _value_problem(got: Any, want: Any, rtol: float) -> str | None:
    g = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        return f"shape {g.shape}, expected {w.shape}"
    if w.size == 0:
        return None
    scale = max(1.0, float(np.max(np.abs(w))))
    err = np.abs(g - w)
    worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
    if not np.isfinite(err).all() or float(err.max()) > rtol * scale:
        return (
            f"max |got − expected| = {float(err.max()):.3g} at {worst} "
            f"(got {g[worst]:.10g}, expected {w[worst]:.10g}) > {rtol:.2g} × {scale:.3g}"
        )
    return None


# -- for the variants: prepared calls, out= ----------------------------------------------


class CountingFunction:
    """f that counts how often its Python code runs (once per trace under JAX), and at how
    many points: with ``batched``, f takes a batch of points on x's leading axis."""

    def __init__(self, f: Any, batched: bool = False) -> None:
        self.f, self.calls, self.points, self.batched = f, 0, 0, batched
        self.__name__ = getattr(f, "__name__", "f")

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        self.points += len(optree.tree_leaves(args[0])[0]) if self.batched else 1
        return self.f(*args)


def with_function(sc: Scenario, f: Any) -> Scenario:
    """``sc`` with f replaced, keeping its name and its reference results."""
    return replace(sc, f=f, name=sc.name, reference=sc.expected(), _resolved=None)


def out_like(result: Any) -> Any:
    """Zeroed buffers like ``result``, to pass as ``out=``."""
    return optree.tree_map(_zeros_like, result)


def _zeros_like(r: Any) -> Any:
    if _is_sparse(r):
        out = r.copy()
        out.data[...] = 0
        return out
    return r.clone() * 0 if hasattr(r, "clone") else np.zeros_like(r)


def same_objects(got: Any, out: Any) -> bool:
    """Whether ``got`` is ``out`` itself (leaf by leaf for a structure)."""
    if isinstance(out, dict | list | tuple):
        return (
            isinstance(got, type(out))
            and optree.tree_structure(got) == optree.tree_structure(out)
            and all(
                g is o
                for g, o in zip(optree.tree_leaves(got), optree.tree_leaves(out), strict=True)
            )
        )
    return got is out
