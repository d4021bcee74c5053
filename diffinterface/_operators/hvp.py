"""hvp: Hessian-vector products H·t, forward over reverse (a pushforward of the gradient)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._operators._results import batch_of, finish
from diffinterface._operators.gradient import build_gradient
from diffinterface._prep import OperatorSpec, Prep, Problem, execute, prepare

__all__ = ["gradient_and_hvp", "hvp", "prepare_hvp"]


def prepare_hvp(
    f: Callable[..., Any], backend: BackendLike, x: Any, tx: Any, *contexts: Context
) -> Prep:
    """Prepare :func:`hvp` and :func:`gradient_and_hvp` for these arguments."""
    return prepare(HVP, f, backend, x, tx, contexts)


def hvp(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tx: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
) -> Any:
    """The Hessian-vector product ``H(x)·tx`` of a scalar ``f(x, *contexts)``.

    ``tx`` is a tangent shaped like x, or a tuple of them (then a tuple of results).

    Raises:
        InvalidArgumentError: f(x) is not a scalar, or tangents of the wrong shape/dtype.
        PreparationMismatchError: ``prep`` was made for other arguments.
    """
    _, hv = execute(HVP, f, backend, x, tx, contexts, prep, plain=True)
    return finish(hv, batch_of(tx, x), out)


def gradient_and_hvp(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    tx: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: tuple[Any, Any] | None = None,
) -> tuple[Any, Any]:
    """``(∇f(x), H(x)·tx)``; ``out=`` is a pair (gradient array, hvp result)."""
    g, hv = execute(HVP, f, backend, x, tx, contexts, prep)
    out_g, out_hv = (None, None) if out is None else out
    return finish(g, None, out_g), finish(hv, batch_of(tx, x), out_hv)


def gradient_function(adapter: Adapter, fn: Fn, p: Problem) -> Fn:
    """``(x, *consts) -> ∇f(x)``, built by the adapter so that it can be differentiated."""
    grad = build_gradient(adapter, fn, p)

    def gradient_only(x: Any, *consts: Any) -> Any:
        return grad(x, *consts)[1]

    return gradient_only


def build_hvp(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """Generic kernel ``(x, t, *consts) -> (∇f, H t)``: pushforward of the gradient."""
    g = gradient_function(adapter, fn, p)
    if p.batch is None:
        return adapter.pushforward(g, p.mutates)
    return adapter.pushforward_batch(g, p.mutates)


HVP = OperatorSpec("hvp", build_hvp, tangents="x", scalar_y=True, outputs=("x", "x"))
