"""TensorFlow side of DifferentiateWith: a ``tf.custom_gradient`` whose gradient is the
inner pullback.

On eager tensors g computes f's value and, under a GradientTape, its pullback by calling
the inner backend directly; on symbolic tensors (a ``tf.function`` being traced: the
caller's, or the TensorFlow backend's kernels) both run on the host through
``tf.numpy_function``, f's output shape and dtype found once per argument signature by
evaluating f at ones (as the JAX boundary does). So ``tape.gradient``, ``tape.jacobian``
and reverse-mode di operators reach the inner backend, eagerly and in ``tf.function``.
The arguments differentiated are x and the floating-point tensors after it that TensorFlow
may ask a gradient of: eagerly those a tape watches (also a trainable variable read under
one), in a function being traced all of them (a tape outside the function asks later);
they are the ``tf.custom_gradient``'s inputs and take one inner pullback. The other
arguments (NumPy arrays, numbers, strings, integer tensors) are constants.

Reverse mode only. TensorFlow takes forward-mode products (``ForwardAccumulator``) of a
custom gradient by differentiating its backward function, and a second derivative by
differentiating it too: the pullback is therefore itself a ``custom_gradient`` (of the
differentiated tensors and dy) whose gradient raises :class:`~diffinterface.UnsupportedError`,
where TensorFlow would otherwise give zero tangents inside ``tf.function`` or drop the
pullback's dependence on x (``tests/test_tensorflow_bridge_feasibility.py``). XLA
(``jit_compile=True``) refuses ``tf.numpy_function``.

TensorFlow turns an exception raised in a ``tf.numpy_function`` into a
``tf.errors.UnknownError`` that keeps only its text; the host functions record what they
raise, and :func:`original_error` (registered with ``diffinterface._errors``) finds it
again, so that it surfaces as itself from a di operator's prepared call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from diffinterface._backend_types import resolve_backend
from diffinterface._bridges.host_errors import HostErrors
from diffinterface._errors import UnsupportedError, register_original_finder
from diffinterface._inner_calls import InnerCalls
from diffinterface.backends._tensorflow_arrays import as_tensor
from diffinterface.backends._tensorflow_compat import has_tangent, watched

__all__ = ["call", "original_error"]

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

#: (shape, dtype) of a host function's output, or a list of them
Spec = Any


def call(inner: InnerCalls, arguments: tuple[Any, ...]) -> Any:
    """g(*arguments) where some arguments are TensorFlow tensors (or variables)."""
    if resolve_backend(inner.backend).name == "tensorflow":
        return inner.f(*arguments)  # TensorFlow differentiates f itself: no boundary
    arguments = tuple(
        as_tensor(a) if i == 0 or isinstance(a, tf.Tensor | tf.Variable) else a
        for i, a in enumerate(arguments)
    )
    tensors = tuple(i for i, a in enumerate(arguments) if isinstance(a, tf.Tensor))
    if any(has_tangent(arguments[i]) for i in tensors):
        raise UnsupportedError(_FORWARD_OR_SECOND)
    eager = not any(tf.is_symbolic_tensor(arguments[i]) for i in tensors)
    active = tuple(
        i
        for i in tensors
        if i == 0 or (arguments[i].dtype.is_floating and (not eager or watched(arguments[i])))
    )
    return _boundary(inner, arguments, tensors, active, eager)


def _boundary(
    inner: InnerCalls,
    arguments: tuple[Any, ...],
    tensors: tuple[int, ...],
    active: tuple[int, ...],
    eager: bool,
) -> Any:
    """f's value as a ``tf.custom_gradient`` of the active tensors, whose gradient is the
    inner pullback with respect to them; the host functions take the values of every
    tensor argument (positions ``tensors``), then the cotangent."""

    def merged(values: tuple[Any, ...]) -> tuple[Any, ...]:
        out = list(arguments)
        for i, v in zip(tensors, values, strict=True):
            out[i] = v
        return tuple(out)

    def value(*values: np.ndarray) -> np.ndarray:
        return np.asarray(inner.value(merged(values)))

    def pull(*values: np.ndarray) -> list[np.ndarray]:
        at = merged(values[:-1])
        results = inner.pullback(at, active, values[-1])
        return [np.asarray(r, dtype=at[i].dtype) for i, r in zip(active, results, strict=True)]

    def current(xs: tuple[Any, ...]) -> list[Any]:
        """The tensor arguments, the active ones as the custom gradient's inputs ``xs``."""
        given = dict(zip(active, xs, strict=True))
        return [given.get(i, arguments[i]) for i in tensors]

    grad_specs = [(arguments[i].shape, arguments[i].dtype) for i in active]

    @tf.custom_gradient
    def pullback(*inputs: Any) -> Any:
        *xs, dy = inputs
        return _host(pull, [*current(tuple(xs)), dy], grad_specs), _refuse

    @tf.custom_gradient
    def boundary(*xs: Any) -> Any:
        spec = None if eager else _output_spec(inner, arguments, tensors, merged)
        y = _host(value, current(xs), spec)
        return y, lambda dy: pullback(*xs, dy)

    return boundary(*(arguments[i] for i in active))


def _refuse(*_: Any) -> Any:
    raise UnsupportedError(_FORWARD_OR_SECOND)


def _host(run: Callable[..., Any], inputs: list[Any], spec: Spec) -> Any:
    """``run`` on the inputs' values: called directly on eager tensors (an exception
    propagates as itself), through ``tf.numpy_function`` on symbolic ones (also a pullback
    that ``tape.jacobian`` traces after an eager call), where ``spec`` gives the output's
    (shape, dtype), or a list of them for a list of outputs."""
    if not any(tf.is_symbolic_tensor(a) for a in inputs):
        with tf.device(inputs[0].device):
            out = run(*(a.numpy() for a in inputs))
            return [tf.constant(o) for o in out] if isinstance(out, list) else tf.constant(out)
    several = isinstance(spec, list)
    specs = spec if several else [spec]
    dtypes = [dtype for _, dtype in specs]
    outs = tf.numpy_function(
        _recorded(run), inputs, dtypes if several else dtypes[0], stateful=False
    )
    outs = outs if several else [outs]
    for o, (shape, _) in zip(outs, specs, strict=True):
        o.set_shape(shape)  # numpy_function loses the static shape
    return outs if several else outs[0]


def _output_spec(
    inner: InnerCalls,
    arguments: tuple[Any, ...],
    tensors: tuple[int, ...],
    merged: Callable[[Any], Any],
) -> tuple[Any, Any]:
    """Shape and dtype of f's output: f evaluated once per signature, at ones of the
    tensors' shapes."""
    statics = tuple(_static_key(a) for i, a in enumerate(arguments) if i not in tensors)
    specs = tuple(_spec(arguments[i]) for i in tensors)
    key = ("tensorflow output", statics, *specs)
    found = inner.memo.get(key)
    if found is None:
        with np.errstate(all="ignore"):
            y = inner.value(merged(tuple(np.ones(*s) for s in specs)))
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

_ERRORS = HostErrors(
    _HOST_NOTE,
    tf.errors.OpError,
    lambda e: f"{type(e).__name__}: {e}\n",  # how TensorFlow writes it into its error's text
    lambda text, summary: summary in text,
)
_recorded, original_error = _ERRORS.recorded, _ERRORS.original_error


register_original_finder(original_error)
