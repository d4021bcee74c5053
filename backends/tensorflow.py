"""TensorFlow adapter: GradientTape and ForwardAccumulator, every kernel a concrete function.

Each kernel is traced at preparation by ``tf.function(autograph=False)`` into a concrete
function of flat tensors (x's leaves, the tangents, the array Constants; flattened with
optree so that dict keys keep x's order), run once there (TensorFlow optimises the graph,
and XLA compiles it, at the first call), and called with tensors only (``_call_flat``, see
``diffinterface.backends._tensorflow_compat``): a prepared call never retraces. The trace
runs under x's device, so the results are there. Reverse products use ``tf.GradientTape``,
forward products ``tf.autodiff.ForwardAccumulator``, batches of either ``tf.vectorized_map``;
Jacobians in reverse mode and Hessians ``tape.jacobian``, HVPs forward over reverse, second
derivatives forward over forward. Called on symbolic tensors (a di operator inside the
caller's ``tf.function``), the kernels are traced into the caller's function instead;
called on tensors that the caller's tape records, the concrete function is recorded too,
so TensorFlow differentiates through it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import optree
import tensorflow as tf

from diffinterface._adapter import Adapter, Fn, Kernel, Problem, kernel
from diffinterface._derived import uses_forward_mode
from diffinterface._errors import UnsupportedError, raise_original
from diffinterface.backends._tensorflow_arrays import TensorFlowArrays, as_tensor, mutation_error
from diffinterface.backends._tensorflow_compat import flat_caller

__all__ = ["TensorFlowAdapter", "TensorFlowArrays"]

_ZERO = tf.UnconnectedGradients.ZERO
#: batches of at most this many products are unrolled in the graph rather than vectorised
_UNROLLED = 8
_EAGER = type(tf.constant(0.0))
_XLA_REFUSED = (
    "XLA cannot compile this function ({error}). Use AutoTensorFlow(jit_compile=False), "
    "which runs any TensorFlow code (a DifferentiateWith inside f runs its inner backend "
    "through tf.numpy_function, which XLA refuses)."
)
_PYTHON_BRANCH = (
    "diffinterface traces f with tf.function(autograph=False), as jax.jit traces a JAX "
    "function: a Python `if` or `while` on a tensor's value cannot be traced. Write it with "
    "xp.where (or tf.cond / tf.while_loop)."
)


class TensorFlowAdapter(Adapter):
    """Adapter for :class:`~diffinterface.AutoTensorFlow`."""

    native_kind: ClassVar[str] = "tensorflow"
    accepted_kinds: ClassVar[frozenset[str]] = frozenset({"tensorflow"})
    supports_mutation: ClassVar[bool] = False
    compiles: ClassVar[bool] = True

    def stack(self, arrays: list[Any]) -> Any:
        return tf.stack(arrays)

    def eye(self, n: int, like: Any) -> Any:
        return tf.eye(n, dtype=like.dtype)

    def ones(self, template: Any, like: Any) -> Any:
        return tf.ones(tuple(template.shape), dtype=template.dtype)

    def evaluate(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        """``fn(x, *consts)`` eagerly; an assignment into a tensor explained."""
        try:
            return fn(x, *consts)
        except TypeError as e:
            explained = mutation_error(e)
            if explained is None:
                raise
            raise explained from e

    output_template = evaluate

    def compile(self, kernel: Kernel, example_args: tuple[Any, ...]) -> Kernel:
        leaves = optree.tree_leaves(example_args, none_is_leaf=True)
        if any(isinstance(a, tf.Tensor) and tf.is_symbolic_tensor(a) for a in leaves):
            return kernel  # inside the caller's tf.function: traced into it
        return _concrete(kernel, example_args, self.config.jit_compile)  # type: ignore[attr-defined]

    # -- primitives -------------------------------------------------------------------
    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        def push(x: Any, t: Any, *consts: Any) -> Any:
            return _jvp(fn, x, t, consts)

        return push

    def pushforward_batch(self, fn: Fn, mutates: bool) -> Kernel:
        def push_batch(x: Any, ts: Any, *consts: Any) -> Any:
            y = fn(x, *consts)
            return y, _mapped(lambda t: _jvp(fn, x, t, consts)[1], ts, y)

        return push_batch

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        def pull(x: Any, u: Any, *consts: Any) -> Any:
            return _value_and_grad(fn, x, consts, u)

        return pull

    def pullback_batch(self, fn: Fn, mutates: bool) -> Kernel:
        def pull_batch(x: Any, us: Any, *consts: Any) -> Any:
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(x)
                y = fn(x, *consts)
            return y, _pullbacks(tape, y, x, us)

        return pull_batch

    # -- faster operators -------------------------------------------------------------
    @kernel("gradient")
    def gradient(self, fn: Fn, p: Problem) -> Kernel:
        def gradient(x: Any, *consts: Any) -> Any:
            return _value_and_grad(fn, x, consts)

        return gradient

    @kernel("gradient", structured=True)
    def structured_gradient(self, fn: Fn, p: Problem) -> Kernel:
        """The gradient with respect to x's leaves themselves (no joining into a vector)."""
        leaves = p.structure.leaves  # type: ignore[union-attr]

        def gradient(x: Any, *consts: Any) -> Any:
            xs = list(leaves(x))  # type: ignore[arg-type]
            with tf.GradientTape() as tape:
                tape.watch(xs)
                y = fn(x, *consts)
            return y, tape.gradient(y, xs, unconnected_gradients=_ZERO)

        return gradient

    @kernel("derivative")
    def derivative(self, fn: Fn, p: Problem) -> Kernel:
        def derivative(x: Any, *consts: Any) -> Any:
            return _jvp(fn, x, tf.ones_like(x), consts)

        return derivative

    @kernel("second_derivative")
    def second_derivative(self, fn: Fn, p: Problem) -> Kernel:
        """Forward over forward: f runs once for the value and both derivatives."""

        def second_derivative(x: Any, *consts: Any) -> Any:
            one = tf.ones_like(x)
            with tf.autodiff.ForwardAccumulator(x, one) as outer:
                y, d = _jvp(fn, x, one, consts)
            return y, d, outer.jvp(d, unconnected_gradients=_ZERO)

        return second_derivative

    @kernel("jacobian")
    def jacobian(self, fn: Fn, p: Problem) -> Kernel:
        """Rows of pullbacks (``tape.jacobian``), or in forward mode columns of JVPs along
        the basis."""
        x_shape, y_shape = tuple(p.x.shape), tuple(p.y.shape)
        n, m = math.prod(x_shape), math.prod(y_shape)
        if not uses_forward_mode(self):

            def reverse(x: Any, *consts: Any) -> Any:
                with tf.GradientTape(persistent=True) as tape:
                    tape.watch(x)
                    y = fn(x, *consts)
                return y, _jacobian(tape, y, x)

            return reverse

        def forward(x: Any, *consts: Any) -> Any:
            basis = tf.reshape(tf.eye(n, dtype=x.dtype), (n, *x_shape))
            y = fn(x, *consts)
            cols = _mapped(lambda t: _jvp(fn, x, t, consts)[1], basis, y)
            return y, tf.reshape(tf.transpose(tf.reshape(cols, (n, m))), y_shape + x_shape)

        return forward

    @kernel("hvp")
    def hvp(self, fn: Fn, p: Problem) -> Kernel:
        """One HVP forward over reverse (a ForwardAccumulator around the gradient's tape);
        a batch reverse over reverse (H is symmetric: H·t = (tᵀH)ᵀ), which TensorFlow
        vectorises at a fraction of the tracing time of a batch of forward products."""
        if p.batch is None:

            def hvp(x: Any, t: Any, *consts: Any) -> Any:
                with tf.autodiff.ForwardAccumulator(x, t) as acc:
                    g = _value_and_grad(fn, x, consts)[1]
                return g, acc.jvp(g, unconnected_gradients=_ZERO)

            return hvp

        def hvp_batch(x: Any, ts: Any, *consts: Any) -> Any:
            with tf.GradientTape(persistent=True) as outer:
                outer.watch(x)
                g = _value_and_grad(fn, x, consts)[1]
            return g, _pullbacks(outer, g, x, ts)

        return hvp_batch

    @kernel("hessian")
    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        """The Jacobian of the gradient (reverse over reverse, nested tapes)."""

        def hessian(x: Any, *consts: Any) -> Any:
            with tf.GradientTape(persistent=True) as outer:
                outer.watch(x)
                y, g = _value_and_grad(fn, x, consts)
            return y, g, _jacobian(outer, g, x)

        return hessian


# -- building blocks ----------------------------------------------------------------------


def _value_and_grad(fn: Fn, x: Any, consts: tuple[Any, ...], u: Any = None) -> Any:
    """``(f(x), uᵀJ)`` (u = 1 for a scalar f: the gradient) with a GradientTape."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x, *consts)
    return y, tape.gradient(y, x, output_gradients=u, unconnected_gradients=_ZERO)


def _jvp(fn: Fn, x: Any, t: Any, consts: tuple[Any, ...]) -> Any:
    """``(f(x), J·t)`` with a ForwardAccumulator."""
    with tf.autodiff.ForwardAccumulator(x, t) as acc:
        y = fn(x, *consts)
    return y, acc.jvp(y, unconnected_gradients=_ZERO)


def _mapped(one: Callable[[Any], Any], ts: Any, like: Any) -> Any:
    """``one(t)`` for each t along ts's first axis, stacked; an empty stack of ``like``-shaped
    results for an empty batch. Up to :data:`_UNROLLED` tangents are unrolled in the
    graph; more are vectorised by ``tf.vectorized_map`` (ops it cannot vectorise run in a
    while_loop), whose conversion of the graph takes longer to trace than a few copies."""
    k = ts.shape[0]
    if k == 0:
        return tf.zeros((0, *like.shape), like.dtype)
    if k <= _UNROLLED:
        return tf.stack([one(ts[i]) for i in range(k)])
    return tf.vectorized_map(one, ts, warn=False)


def _pullbacks(tape: Any, y: Any, x: Any, us: Any) -> Any:
    """``uᵀ ∂y/∂x`` for each u along us's first axis (``tape``: persistent, recorded y)."""

    def one(u: Any) -> Any:
        return tape.gradient(y, x, output_gradients=u, unconnected_gradients=_ZERO)

    return _mapped(one, us, x)


def _jacobian(tape: Any, y: Any, x: Any) -> Any:
    """``∂y/∂x`` of shape ``y.shape + x.shape`` (``tape``: persistent, recorded y): one
    pullback per entry of y, by ``tape.jacobian`` beyond :data:`_UNROLLED` entries."""
    m = math.prod(y.shape)
    if m > _UNROLLED:
        return tape.jacobian(y, x, unconnected_gradients=_ZERO)
    basis = tf.reshape(tf.eye(m, dtype=y.dtype), (m, *y.shape))
    return tf.reshape(_pullbacks(tape, y, x, basis), (*y.shape, *x.shape))


def _concrete(kernel: Kernel, example_args: tuple[Any, ...], jit_compile: bool) -> Kernel:
    """``kernel`` traced into a concrete function of the flat tensors of arguments like
    ``example_args``, run once, and called with tensors only (see the module's docstring).

    Raises:
        the exception f raises while it is traced (a note names a Python branch on a
        tensor); UnsupportedError where XLA refuses the kernel.
    """
    leaves, treedef = optree.tree_flatten(example_args, none_is_leaf=True)
    tensors = [as_tensor(a) for a in leaves]
    device = tensors[0].device
    flat_args = treedef == optree.tree_structure(tuple(leaves), none_is_leaf=True)

    def flat_kernel(*flat: Any) -> Any:
        with tf.device(device):
            return kernel(*optree.tree_unflatten(treedef, list(flat)))

    traced = tf.function(flat_kernel, autograph=False, jit_compile=jit_compile)
    try:
        concrete = traced.get_concrete_function(*[tf.TensorSpec(t.shape, t.dtype) for t in tensors])
    except tf.errors.OperatorNotAllowedInGraphError as e:
        e.add_note(_PYTHON_BRANCH)
        raise
    call = flat_caller(concrete)
    if flat_args:

        def run(*args: Any) -> Any:
            return call([a if type(a) is _EAGER else as_tensor(a) for a in args])

    else:

        def run(*args: Any) -> Any:
            return call([as_tensor(a) for a in optree.tree_leaves(args, none_is_leaf=True)])

    try:
        call(tensors)  # TensorFlow optimises the graph (XLA compiles it) at the first call
    except tf.errors.OpError as e:
        if jit_compile and "when trying to compile" in str(e):  # XLA's refusal
            raise UnsupportedError(_XLA_REFUSED.format(error=str(e).splitlines()[0])) from e
        raise_original(e)
        raise
    return run
