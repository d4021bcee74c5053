"""TensorFlow tensors as an array kind (see ``diffinterface._arrays``).

Eager tensors, the symbolic tensors of a ``tf.function`` being traced, and ``tf.Variable``
are TensorFlow arrays. They are immutable: ``out=``, ``y=``, ``di.Cache`` and ``di.get_tmp``
are refused as for JAX arrays, and an assignment into a tensor in f is explained
(:func:`mutation_error`). A tensor is *traced* when it is symbolic (the caller's
``tf.function``) or an active GradientTape or ForwardAccumulator records it: another
framework cannot carry derivatives back to it, so converting it to NumPy is refused (the
TensorFlow backend itself differentiates through it, as TensorFlow nests). The signature of
a tensor includes its device; conversions from NumPy keep the dtype (never float32 for
float64) and place the tensor on the device asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from diffinterface._arrays import ArrayKind, identity, register_kind
from diffinterface._conversions import nested_error
from diffinterface._errors import UnsupportedError
from diffinterface.backends._tensorflow_compat import watched
from diffinterface.backends._tensorflow_namespace import NAMESPACE

__all__ = ["IMMUTABLE", "TensorFlowArrays", "as_tensor", "mutation_error"]

IMMUTABLE = (
    "TensorFlow tensors are immutable, so f cannot assign into one ({detail}). Either build "
    "the array functionally (xp.where, xp.stack, xp.concat, or tf.tensor_scatter_nd_update "
    "for scattered entries), or compute the mutating part with a backend that allows writes "
    "and let TensorFlow call it: g = di.DifferentiateWith(part, di.AutoTorch()) (or "
    "di.AutoFiniteDiff()), then call g(x) inside f."
)


def mutation_error(error: BaseException) -> UnsupportedError | None:
    """The explained error for TensorFlow's item-assignment TypeError, else None.

    The backend calls this on an exception from f and raises the result ``from error``.
    """
    text = str(error)
    if (
        isinstance(error, TypeError)
        and "does not support item assignment" in text
        and any(name in text for name in ("Tensor'", "Variable'"))
    ):
        return UnsupportedError(IMMUTABLE.format(detail=text))
    return None


def as_tensor(a: Any) -> Any:
    """A tensor with a's values and dtype (a itself for a tensor; a variable's value)."""
    if isinstance(a, tf.Tensor):
        return a
    if isinstance(a, tf.Variable):
        return tf.convert_to_tensor(a)
    return tf.constant(np.asarray(a))  # NumPy's dtype: a Python float is float64


class TensorFlowArrays(ArrayKind):
    """TensorFlow tensors (eager and symbolic) and variables."""

    name = "tensorflow"
    library = "TensorFlow"
    float_dtypes = frozenset({"float16", "bfloat16", "float32", "float64"})
    bridge = "diffinterface._bridges.tensorflow"

    def is_array(self, a: Any) -> bool:
        return isinstance(a, tf.Tensor | tf.Variable)

    def signature(self, a: Any) -> tuple[Any, ...]:
        return ("tensorflow", tuple(a.shape), a.dtype, a.device)

    def dtype_name(self, a: Any) -> str:
        return str(a.dtype.name)

    def describe_array(self, a: Any) -> str:
        if isinstance(a, tf.Variable):
            return "a TensorFlow variable"
        if tf.is_symbolic_tensor(a):
            return "a symbolic TensorFlow tensor"
        return "a TensorFlow tensor"

    def is_real_floating(self, a: Any) -> bool:
        return bool(a.dtype.is_floating)

    def to_numpy(self, a: Any) -> np.ndarray:
        what = self.traced_by(a)
        if what is not None:
            raise nested_error(what)
        return np.asarray(a.numpy())  # a copy (a 0-d tensor gives a NumPy scalar)

    def from_numpy(self, a: np.ndarray, device: Any = None) -> Any:
        if device is None:
            return tf.constant(a)
        with tf.device(device):
            return tf.constant(a)

    def to_device(self, device: Any) -> Callable[[Any], Any]:
        # The kernels run on x's device (traced under its device scope): results are there.
        return identity

    def device(self, a: Any) -> Any:
        return a.device

    def namespace(self, arrays: tuple[Any, ...]) -> Any:
        return NAMESPACE

    def traced_by(self, a: Any) -> str | None:
        if tf.is_symbolic_tensor(a):
            return "a tf.function being traced (a symbolic tensor)"
        if not isinstance(a, tf.Variable) and watched(a):
            return "a tf.GradientTape or tf.autodiff.ForwardAccumulator"
        return None


register_kind(TensorFlowArrays(), ("tensorflow",))
