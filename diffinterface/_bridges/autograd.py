"""HIPS autograd side of DifferentiateWith: a primitive with its VJP and JVP.

The primitive evaluates f through the inner backend; its VJP is the inner pullback and its
JVP the inner pushforward, so autograd.grad, jacobian, make_vjp and make_jvp reach the inner
backend. Arguments after x are constants (their VJP is refused with a clear error).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from autograd.extend import defjvp_argnum, defvjp_argnum, primitive

from diffinterface._differentiate_with import InnerCalls
from diffinterface._errors import UnsupportedError

__all__ = ["call"]

_ONLY_X = (
    "A di.DifferentiateWith function is differentiated only with respect to its first "
    "argument x, but argument #{i} is being differentiated by autograd too. Pass the "
    "differentiated quantities in x (concatenate them)."
)


def call(inner: InnerCalls, x: Any, args: tuple[Any, ...]) -> Any:
    """g(x, *args) for autograd boxes."""
    return _boundary(x, inner, *args)


@primitive
def _boundary(x: Any, inner: InnerCalls, *args: Any) -> Any:
    return inner.value(np.asarray(x), args)


def _vjp(argnum: int, ans: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
    if argnum != 0:
        raise UnsupportedError(_ONLY_X.format(i=argnum - 1))
    x, inner, *rest = args
    return lambda u: inner.pullback(np.asarray(x), np.asarray(u), tuple(rest))


def _jvp(argnum: int, t: Any, ans: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
    if argnum != 0:
        raise UnsupportedError(_ONLY_X.format(i=argnum - 1))
    x, inner, *rest = args
    return inner.pushforward(np.asarray(x), np.asarray(t), tuple(rest))


defvjp_argnum(_boundary, _vjp)
defjvp_argnum(_boundary, _jvp)
