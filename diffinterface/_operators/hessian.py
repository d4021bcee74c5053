"""hessian: the full Hessian, shape ``x.shape + x.shape``, as one batch of HVPs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._operators._results import as_matrix, finish
from diffinterface._operators.hvp import gradient_function
from diffinterface._prep import OperatorSpec, Prep, Problem, execute, prepare

__all__ = ["hessian", "prepare_hessian", "value_gradient_and_hessian"]


def prepare_hessian(
    f: Callable[..., Any], backend: BackendLike, x: Any, *contexts: Context
) -> Prep:
    """Prepare :func:`hessian` and :func:`value_gradient_and_hessian` for these arguments."""
    return prepare(HESSIAN, f, backend, x, None, contexts)


def hessian(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    flat: bool = False,
) -> Any:
    """The Hessian of a scalar ``f(x, *contexts)``, of shape ``x.shape + x.shape``.

    For x a dict / list / tuple of arrays, the Hessian is x's structure of x's structures
    of blocks ``leaf_i.shape + leaf_j.shape``; ``flat=True`` gives one (x.size, x.size)
    matrix instead.

    Raises:
        InvalidArgumentError: f(x) is not a scalar.
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    _, _, h = execute(HESSIAN, f, backend, x, None, contexts, prep, flat=flat, plain=True)
    return finish(as_matrix(h, x, flat), None, out)


def value_gradient_and_hessian(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: tuple[Any, Any] | None = None,
    flat: bool = False,
) -> tuple[Any, Any, Any]:
    """``(f(x), ∇f(x), H(x))``; ``out=`` is a pair (gradient array, Hessian array)."""
    value, g, h = execute(HESSIAN, f, backend, x, None, contexts, prep, flat=flat)
    out_g, out_h = (None, None) if out is None else out
    return value, finish(g, None, out_g), finish(as_matrix(h, x, flat), None, out_h)


def build_hessian(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """Generic kernel ``(x, *consts) -> (y, ∇f, H)``: batched pushforward of the gradient."""
    x_shape = tuple(p.x.shape)
    n = math.prod(x_shape)
    push = adapter.pushforward_batch(gradient_function(adapter, fn, p), p.mutates)

    def kernel(x: Any, *consts: Any) -> Any:
        basis = adapter.eye(n, p.x).reshape((n, *x_shape))
        g, cols = push(x, basis, *consts)
        return fn(x, *consts), g, cols.reshape(x_shape + x_shape)

    return kernel


HESSIAN = OperatorSpec("hessian", build_hessian, scalar_y=True, outputs=("y", "x", "xx"))
