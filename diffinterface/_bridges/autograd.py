"""HIPS autograd side of DifferentiateWith: a primitive with its VJP and JVP.

The primitive evaluates f through the inner backend; its VJP is the inner pullback and its
JVP the inner pushforward, so autograd.grad (also with argnum), jacobian, make_vjp and
make_jvp reach the inner backend. autograd hands the rules every argument it traces through
one call of the primitive at once (``defvjp_argnums``, ``defjvp_argnums``), so the
arguments it differentiates together take one inner call; the others are constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from autograd.extend import defjvp_argnums, defvjp_argnums, primitive

from diffinterface._inner_calls import InnerCalls

__all__ = ["call"]


def call(inner: InnerCalls, arguments: tuple[Any, ...]) -> Any:
    """g(*arguments) where some arguments are autograd boxes."""
    return _boundary(inner, *arguments)


@primitive
def _boundary(inner: InnerCalls, *arguments: Any) -> Any:
    return inner.value(_arrays(arguments))


def _arrays(arguments: tuple[Any, ...], active: tuple[int, ...] = ()) -> tuple[Any, ...]:
    """The arguments with x and the active ones as NumPy arrays (autograd differentiates
    Python numbers too)."""
    return tuple(np.asarray(a) if i == 0 or i in active else a for i, a in enumerate(arguments))


def _vjp(argnums: tuple[int, ...], ans: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
    inner, *arguments = args
    active = tuple(i - 1 for i in argnums)
    plain = _arrays(tuple(arguments), active)
    return lambda u: _like(arguments, active, inner.pullback(plain, active, np.asarray(u)))


def _jvp(argnums: tuple[int, ...], ts: Any, ans: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
    inner, *arguments = args
    active = tuple(i - 1 for i in argnums)
    plain = _arrays(tuple(arguments), active)
    return inner.pushforward(plain, active, tuple(map(np.asarray, ts)))


def _like(arguments: list[Any], active: tuple[int, ...], results: tuple[Any, ...]) -> Any:
    """Each cotangent as its argument's kind: a number for a number (autograd's vector
    space of floats), else an array."""
    return tuple(
        float(r) if isinstance(arguments[i], float) else r
        for i, r in zip(active, results, strict=True)
    )


defvjp_argnums(_boundary, _vjp)
defjvp_argnums(_boundary, _jvp)
