"""TensorFlow internals that diffinterface relies on, each behind a check.

``CALL_FLAT``: a concrete function is called through ``ConcreteFunction._call_flat(tensors,
captured_inputs)`` (private, checked at TensorFlow 2.21), the method that ``__call__`` ends
in after binding the arguments to the traced function's structured signature: ≈ 20-40 µs
of Python per call saved, the same recording on an enclosing GradientTape or
ForwardAccumulator. The guard of a preparation has compared the arguments' shapes, dtypes
and devices before the call, which ``_call_flat`` does not do eagerly.
``WATCHED``: whether a tensor is watched by an active ``tf.GradientTape``
(``tensorflow.python.eager.record.should_record_backprop``) or carries the tangent of an
active ``tf.autodiff.ForwardAccumulator`` (``forwardprop_util.pack_tangents``), eagerly or
in the function being traced.
A test asserts each is on at the versions in constraints.txt, so that an upgrade that
loses one fails CI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

try:
    from tensorflow.python.eager import forwardprop_util, record
    from tensorflow.python.eager.polymorphic_function.concrete_function import (
        ConcreteFunction,
    )
except ImportError:  # pragma: no cover - another layout of TensorFlow's internals
    forwardprop_util = record = ConcreteFunction = None

__all__ = ["CALL_FLAT", "WATCHED", "flat_caller", "has_tangent", "watched"]

_VERSION = tuple(int(p) for p in tf.__version__.split(".")[:2])
#: whether concrete functions are called through ``_call_flat`` (see the docstring)
CALL_FLAT = (
    _VERSION >= (2, 20)
    and ConcreteFunction is not None
    and hasattr(ConcreteFunction, "_call_flat")
    and hasattr(ConcreteFunction, "captured_inputs")
)
#: whether :func:`watched` can tell tensors that an enclosing differentiation records
WATCHED = (
    record is not None
    and forwardprop_util is not None
    and hasattr(record, "should_record_backprop")
    and hasattr(forwardprop_util, "pack_tangents")
)


def flat_caller(concrete: Any) -> Callable[[list[Any]], Any]:
    """``call(tensors)``: the concrete function on a list of tensors (its flat arguments),
    returning its outputs in their structure; through ``_call_flat`` where
    :data:`CALL_FLAT`."""
    if not CALL_FLAT:
        return lambda tensors: concrete(*tensors)
    call = concrete._call_flat
    if any(callable(c) for c in getattr(concrete, "_captured_inputs", ())):
        # captures read at call time (tf.experimental's by-reference captures)
        return lambda tensors: call(tensors, concrete.captured_inputs)
    captured = concrete.captured_inputs
    return lambda tensors: call(tensors, captured)


def watched(t: Any) -> bool:
    """Whether an active GradientTape or ForwardAccumulator records the tensor ``t``
    (eager, or symbolic in the function being traced)."""
    if not WATCHED:
        return False
    return bool(record.should_record_backprop([t])) or has_tangent(t)


def has_tangent(t: Any) -> bool:
    """Whether an active ForwardAccumulator has a tangent for the tensor ``t``."""
    return WATCHED and bool(forwardprop_util.pack_tangents([t]).tangents)
