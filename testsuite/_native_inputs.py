"""The inputs of the hand-written native counterparts (``diffinterface.testsuite._native``):
one way to compute an operator (:class:`Native`), f with its static constants folded in
and its arguments converted once to the framework's array type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optree

from diffinterface._contexts import is_static
from diffinterface.testsuite._scenario import Scenario

__all__ = ["Native", "inputs", "jax_converter", "needs_x64", "tf_converter", "torch_converter"]


@dataclass(frozen=True)
class Native:
    """One hand-written way to compute a scenario's operator: ``call()`` runs it once."""

    method: str
    call: Callable[[], Any]


def inputs(sc: Scenario, convert: Callable[[Any], Any]) -> tuple[Callable[..., Any], list[Any]]:
    """(f of (x, [t,] *array constants) with static constants folded in, the arguments)."""
    statics = [c.value if is_static(c.value) else None for c in sc.contexts]
    arrays = [convert(c.value) for c in sc.contexts if not is_static(c.value)]

    def f(x: Any, *array_values: Any) -> Any:
        it = iter(array_values)
        return sc.f(x, *(next(it) if s is None else s for s in statics))

    args = [optree.tree_map(convert, sc.x)]
    if sc.tangents is not None:
        args.append(convert(sc.tangents))
    return f, args + arrays


def tf_converter(a: Any) -> Any:
    import tensorflow as tf

    return tf.constant(np.asarray(a))


def torch_converter(a: Any) -> Any:
    import torch

    return torch.from_numpy(np.array(a))


def needs_x64(sc: Scenario) -> bool:
    import jax

    return sc.dtype == np.float64 and not getattr(jax.config, "jax_enable_x64")  # noqa: B009


def jax_converter(sc: Scenario) -> Callable[[Any], Any]:
    """NumPy to JAX arrays, float64 kept (under x64 when JAX's x64 mode is off)."""
    import jax

    x64 = needs_x64(sc)

    def convert(a: Any) -> Any:
        with jax.enable_x64(x64):
            return jax.device_put(np.asarray(a))

    return convert
