"""TensorFlow side of DifferentiateWith: a ``tf.custom_gradient`` whose gradient is the
inner pullback.

On eager tensors g computes f's value and, under a GradientTape, its pullback by calling
the inner backend directly; on symbolic tensors (a ``tf.function`` being traced: the
caller's, or the TensorFlow backend's kernels) both run on the host through
``tf.numpy_function``, f's output shape and dtype found once per argument signature by
evaluating f at ones (as the JAX boundary does). So ``tape.gradient``, ``tape.jacobian``
and reverse-mode di operators reach the inner backend, eagerly and in ``tf.function``.
Arguments after x are constants; one that a tape records is refused.

Reverse mode only. TensorFlow takes forward-mode products (``ForwardAccumulator``) of a
custom gradient by differentiating its backward function, and a second derivative by
differentiating it too: the pullback is therefore itself a ``custom_gradient`` of (x, dy)
whose gradient raises :class:`~diffinterface.UnsupportedError`, where TensorFlow would
otherwise give zero tangents inside ``tf.function`` or drop the pullback's dependence on x
(``tests/test_tensorflow_bridge_feasibility.py``). XLA (``jit_compile=True``) refuses
``tf.numpy_function``.

TensorFlow turns an exception raised in a ``tf.numpy_function`` into a
``tf.errors.UnknownError`` that keeps only its text; the host functions record what they
raise, and :func:`original_error` (registered with ``diffinterface._errors``) finds it
again, so that it surfaces as itself from a di operator's prepared call.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from diffinterface._backend_types import resolve_backend
from diffinterface._errors import UnsupportedError, register_original_finder
from diffinterface._inner_calls import InnerCalls
from diffinterface.backends._tensorflow_arrays import as_tensor
from diffinterface.backends._tensorflow_compat import has_tangent, watched

__all__ = ["call", "original_error"]

_ONLY_X = (
    "A di.DifferentiateWith function is differentiated only with respect to its first "
    "argument x, but TensorFlow records argument #{i} too (a GradientTape watches it, or it "
    "is a trainable variable read under one). Pass the differentiated quantities in x "
    "(concatenate them), or hold argument #{i} constant with tf.stop_gradient."
)
_FORWARD_OR_SECOND = (
    "Forward-mode derivatives and second derivatives through a di.DifferentiateWith "
    "function are not supported under TensorFlow: its derivative is the inner backend's "
    "pullback, computed outside TensorFlow's graph, and TensorFlow would have to "
    "differentiate that pullback (tf.autodiff.ForwardAccumulator does so for forward mode, "
    "and so does a tape over a tape). Differentiate g with a GradientTape, tape.jacobian or "
    "a reverse-mode di operator (di.gradient, di.pullback, di.jacobian with "
    "AutoTensorFlow(mode='reverse')); for second derivatives of f use a di operator on the "
    "inner backend (di.hessian, di.hvp) or di.SecondOrder."
)
_HOST_NOTE = "(raised inside f, called on the host by a di.DifferentiateWith function under TF)"


def call(inner: InnerCalls, arguments: tuple[Any, ...]) -> Any:
    """g(*arguments) for TensorFlow tensors."""
    if resolve_backend(inner.backend).name == "tensorflow":
        return inner.f(*arguments)  # TensorFlow differentiates f itself: no boundary
    x, *args = arguments
    x = as_tensor(x)
    if has_tangent(x):
        raise UnsupportedError(_FORWARD_OR_SECOND)
    arrays: list[Any] = []
    layout: list[tuple[Any] | None] = []
    for i, a in enumerate(args):
        if isinstance(a, tf.Tensor | tf.Variable):
            a = as_tensor(a)
            if watched(a):
                raise UnsupportedError(_ONLY_X.format(i=i + 1))
            layout.append(None)
            arrays.append(a)
        else:
            layout.append((a,))
    return _boundary(inner, x, arrays, tuple(layout))


def _boundary(inner: InnerCalls, x: Any, arrays: list[Any], layout: tuple[Any, ...]) -> Any:
    def merged(values: tuple[np.ndarray, ...]) -> tuple[Any, ...]:
        it = iter(values)
        return tuple(next(it) if s is None else s[0] for s in layout)

    def value(xv: np.ndarray, *values: np.ndarray) -> np.ndarray:
        return np.asarray(inner.value((xv, *merged(values))))

    def pull(xv: np.ndarray, dy: np.ndarray, *values: np.ndarray) -> np.ndarray:
        (gx,) = inner.pullback((xv, *merged(values)), (0,), dy)
        return np.asarray(gx, dtype=xv.dtype)

    @tf.custom_gradient
    def pullback(x: Any, dy: Any) -> Any:
        return _host(pull, [x, dy, *arrays], (x.shape, x.dtype)), _refuse

    @tf.custom_gradient
    def boundary(x: Any) -> Any:
        spec = None if _eager(x, arrays) else _output_spec(inner, x, arrays, merged)
        return _host(value, [x, *arrays], spec), lambda dy: pullback(x, dy)

    return boundary(x)


def _refuse(*_: Any) -> Any:
    raise UnsupportedError(_FORWARD_OR_SECOND)


def _eager(x: Any, arrays: list[Any]) -> bool:
    return not any(tf.is_symbolic_tensor(a) for a in (x, *arrays))


def _host(run: Callable[..., np.ndarray], inputs: list[Any], spec: Any) -> Any:
    """``run`` on the inputs' values: called directly on eager tensors (an exception
    propagates as itself), through ``tf.numpy_function`` on symbolic ones, where ``spec``
    gives the output's (shape, dtype)."""
    if _eager(inputs[0], inputs[1:]):
        with tf.device(inputs[0].device):
            return tf.constant(run(*(a.numpy() for a in inputs)))
    shape, dtype = spec
    out = tf.numpy_function(_recorded(run), inputs, dtype, stateful=False)
    out.set_shape(shape)  # numpy_function loses the static shape
    return out


def _output_spec(
    inner: InnerCalls, x: Any, arrays: list[Any], merged: Callable[[Any], Any]
) -> tuple[Any, Any]:
    """Shape and dtype of f(x): f evaluated once per signature, at ones of x's shape."""
    statics = tuple(_static_key(a) for a in merged(tuple(None for _ in arrays)))
    key = ("tensorflow output", statics, *(_spec(a) for a in (x, *arrays)))
    found = inner.memo.get(key)
    if found is None:
        ones = [np.ones(*_spec(a)) for a in (x, *arrays)]
        with np.errstate(all="ignore"):
            y = inner.value((ones[0], *merged(tuple(ones[1:]))))
        found = inner.memo[key] = (np.shape(y), tf.as_dtype(np.result_type(y)))
    return found


def _spec(a: Any) -> tuple[Any, Any]:
    return (tuple(a.shape), a.dtype.as_numpy_dtype)


def _static_key(a: Any) -> Any:
    """What f's output shape may depend on in an argument that is not a tensor (None for
    a tensor's slot): a NumPy array's shape and dtype, a hashable value, else its id."""
    if isinstance(a, np.ndarray):
        return ("array", a.shape, a.dtype)
    try:
        hash(a)
    except TypeError:
        return ("object", id(a))
    return a


# -- exceptions raised on the host ------------------------------------------------------------

#: the latest exceptions raised by host functions and not yet claimed by original_error
_RAISED: collections.deque[BaseException] = collections.deque(maxlen=8)
_RAISED_LOCK = threading.Lock()


def _recorded(run: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """``run`` (a host function) recording what it raises, for :func:`original_error`."""

    def host(*arrays: np.ndarray) -> np.ndarray:
        try:
            return run(*arrays)
        except BaseException as e:
            if _HOST_NOTE not in getattr(e, "__notes__", ()):
                e.add_note(_HOST_NOTE)
            with _RAISED_LOCK:
                _RAISED.append(e)
            raise

    return host


def original_error(e: BaseException) -> BaseException | None:
    """The exception f raised in a host call of this boundary, if ``e`` is TensorFlow's
    error for it (an ``OpError`` whose text holds that exception's type and message);
    else None. Each recorded exception is returned once."""
    if not isinstance(e, tf.errors.OpError):
        return None
    text = str(e)
    with _RAISED_LOCK:
        for original in reversed(_RAISED):
            if _summary(original) in text:
                _RAISED.remove(original)
                return original
    return None


def _summary(e: BaseException) -> str:
    """How TensorFlow writes an exception of a host function into its error's text."""
    try:
        return f"{type(e).__name__}: {e}\n"
    except Exception:  # a broken __str__: never matched
        return "\0"


register_original_finder(original_error)
