"""Hand-written NumPy counterparts (see ``diffinterface.testsuite._native``): HIPS
autograd's ``grad`` / ``jacobian`` / ``hessian`` / ``hessian_vector_product``, and scipy's
``approx_derivative`` for finite differences."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import optree

import diffinterface as di
from diffinterface.testsuite._native_inputs import Native, inputs
from diffinterface.testsuite._scenario import Scenario

__all__ = ["autograd_candidates", "finitediff_candidates"]


# -- HIPS autograd ------------------------------------------------------------------------


def autograd_candidates(backend: di.AutoAutograd, sc: Scenario) -> list[Native]:
    import autograd

    f, args = inputs(sc, np.asarray)
    if sc.operator == "hvp":
        hvp = autograd.hessian_vector_product(f)
        x, t, consts = args[0], args[1], args[2:]
        return [Native("autograd.hessian_vector_product(f)", lambda: hvp(x, *consts, t))]
    name = "grad" if sc.operator == "gradient" else sc.operator
    op = getattr(autograd, name)(f)
    return [Native(f"autograd.{name}(f)", lambda: op(*args))]


# -- finite differences -------------------------------------------------------------------


def finitediff_candidates(backend: di.AutoFiniteDiff, sc: Scenario) -> list[Native]:
    from scipy.optimize._numdiff import approx_derivative  # scipy's own FD Jacobian

    f, args = inputs(sc, np.asarray)
    x, rest = args[0], args[1:]
    flat, unflatten = _flattener(x)
    eps = float(np.finfo(sc.dtype).eps)
    scheme = {"central": "3-point", "forward": "2-point", "complex": "cs"}[backend.method]

    def f_flat(v: Any, *c: Any) -> Any:
        return np.asarray(f(unflatten(v), *c)).reshape(-1)

    if sc.operator in ("gradient", "jacobian"):

        def first() -> Any:
            d = approx_derivative(f_flat, flat, method=scheme, args=tuple(rest))
            if sc.operator == "gradient":
                return unflatten(d.reshape(-1))
            return d.reshape((-1, *flat.shape))

        return [Native(f"scipy approx_derivative({scheme})", first)]
    # second order: an outer central difference of an inner first difference
    inner_scheme, inner_rel = ("cs", None) if scheme == "cs" else ("3-point", eps**0.25)
    outer_rel = eps ** (1 / 3) if scheme == "cs" else eps**0.25
    consts = tuple(rest[1:] if sc.operator == "hvp" else rest)

    def grad(v: Any) -> Any:
        return approx_derivative(f_flat, v, method=inner_scheme, rel_step=inner_rel, args=consts)

    label = f"scipy approx_derivative({inner_scheme}) inside a central difference"
    if sc.operator == "hessian":

        def hessian() -> Any:
            h = approx_derivative(grad, flat, method="3-point", rel_step=outer_rel)
            return ((h + h.T) / 2).reshape(x.shape + x.shape)

        return [Native(label, hessian)]
    t = rest[0].reshape(-1)

    def hvp() -> Any:
        s = outer_rel * max(1.0, float(np.max(np.abs(flat)))) / float(np.max(np.abs(t)))
        return ((grad(flat + s * t) - grad(flat - s * t)) / (2 * s)).reshape(x.shape)

    return [Native(label, hvp)]


def _flattener(x: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """x's entries as one vector, and the inverse map (leaves in x's structure)."""
    leaves, tree = optree.tree_flatten(x)
    shapes = [np.shape(v) for v in leaves]
    sizes = [math.prod(s) for s in shapes]
    flat = np.concatenate([np.reshape(v, -1) for v in leaves])

    def unflatten(v: np.ndarray) -> Any:
        parts = np.split(v, np.cumsum(sizes)[:-1])
        leaves = [p.reshape(s) for p, s in zip(parts, shapes, strict=True)]
        return optree.tree_unflatten(tree, leaves)

    if tree.num_leaves == 1 and not isinstance(x, dict | list | tuple):
        return flat, lambda v: v.reshape(shapes[0])
    return flat, unflatten
