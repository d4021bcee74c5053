"""jacobian: the full Jacobian, shape ``f(x).shape + x.shape``, from one batched primitive.

Forward mode pushes the n basis vectors of x through one batched pushforward; reverse mode
pulls the m basis vectors of f(x) back through one batched pullback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from diffinterface._adapter import Adapter, Fn, Kernel
from diffinterface._backend_types import BackendLike
from diffinterface._contexts import Context
from diffinterface._operators._results import as_matrix, finish
from diffinterface._prep import OperatorSpec, Prep, Problem, execute, prepare

__all__ = ["jacobian", "prepare_jacobian", "value_and_jacobian"]


def prepare_jacobian(
    f: Callable[..., Any], backend: BackendLike, x: Any, *contexts: Context, y: Any = None
) -> Prep:
    """Prepare :func:`jacobian` and :func:`value_and_jacobian` for these arguments."""
    return prepare(JACOBIAN, f, backend, x, None, contexts, y)


def jacobian(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
    flat: bool = False,
) -> Any:
    """The Jacobian of ``f(x, *contexts)``, of shape ``f(x).shape + x.shape``.

    With ``y=``, f is a mutating ``f(y, x, *contexts)`` and y receives f(x). For x a
    dict / list / tuple of arrays, the Jacobian has x's structure with blocks of shape
    ``f(x).shape + leaf.shape``. ``flat=True`` gives one matrix of shape
    ``(f(x).size, x.size)`` instead (x.size: all of x's entries).

    Raises:
        PreparationMismatchError: ``prep`` was made for other arguments.
        UnsupportedError: ``y=`` with a backend that cannot differentiate mutation.
    """
    _, jac = execute(JACOBIAN, f, backend, x, None, contexts, prep, y, flat, plain=True, out=out)
    return finish(as_matrix(jac, x, flat), None, out)


def value_and_jacobian(
    f: Callable[..., Any],
    backend: BackendLike,
    x: Any,
    *contexts: Context,
    prep: Prep | None = None,
    out: Any = None,
    y: Any = None,
    flat: bool = False,
) -> tuple[Any, Any]:
    """``(f(x), J(x))``; arguments as in :func:`jacobian`."""
    value, jac = execute(JACOBIAN, f, backend, x, None, contexts, prep, y, flat)
    return value, finish(as_matrix(jac, x, flat), None, out)


def uses_forward_mode(adapter: Adapter, sizes: tuple[int, int] | None = None) -> bool:
    """Whether the adapter builds Jacobians column by column (pushforwards).

    A backend without a ``mode`` option (HIPS autograd) uses forward mode only when x has
    fewer entries than f(x) (``sizes`` = (x.size, f(x).size)): its batched pullback shares
    one forward pass, while each pushforward reruns f.
    """
    mode = getattr(adapter.config, "mode", None)
    if mode is None:
        return sizes is None or sizes[0] < sizes[1]
    return bool(mode == "forward")


def build_jacobian(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """Generic kernel ``(x, *consts) -> (y, J)`` from one batched pushforward or pullback."""
    x_shape, y_shape = tuple(p.x.shape), tuple(p.y.shape)
    n, m = math.prod(x_shape), math.prod(y_shape)
    if uses_forward_mode(adapter, (n, m)):
        push = adapter.pushforward_batch(fn, p.mutates)

        def forward(x: Any, *consts: Any) -> Any:
            basis = adapter.eye(n, p.x).reshape((n, *x_shape))
            y, cols = push(x, basis, *consts)
            return y, cols.reshape((n, m)).T.reshape(y_shape + x_shape)

        return forward
    pull = adapter.pullback_batch(fn, p.mutates)

    def reverse(x: Any, *consts: Any) -> Any:
        basis = adapter.eye(m, p.y).reshape((m, *y_shape))
        y, rows = pull(x, basis, *consts)
        return y, rows.reshape(y_shape + x_shape)

    return reverse


JACOBIAN = OperatorSpec("jacobian", build_jacobian, outputs=("y", "yx"))
