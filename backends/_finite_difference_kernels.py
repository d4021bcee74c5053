"""The finite-difference backend's kernels from the sampling engine: adaptive steps (with
error estimates) and vectorised f, for every operator.

Each builder takes the adapter's ``fn(x, *consts)`` and the :class:`Problem` and returns a
kernel of NumPy arrays whose outputs are the operator's (``diffinterface._derived``): the
last one alone with ``Problem.last_only``, followed by an estimate of its error with
``Problem.with_error``. f is reached through ``looped(fn)`` (one call per point) or
``batched(fn)`` (``vectorized=True``: a batch of points per call), f(x) in the first call.
Each kernel keeps its work arrays per thread (``WorkArrays``): a preparation may be shared
between threads, and a Jacobian or gradient written into ``out=`` (its error into
``error_out=``) allocates nothing of their size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from diffinterface._adapter import Fn, Kernel, Problem
from diffinterface._errors import InvalidArgumentError
from diffinterface.backends import _finite_difference_operators as ops
from diffinterface.backends import _finite_difference_second_order as second
from diffinterface.backends._finite_difference_points import (
    Evaluate,
    WorkArrays,
    batched,
    looped,
)
from diffinterface.backends._finite_difference_sampling import Estimate
from diffinterface.backends._finite_difference_schemes import Scheme, real_dtype

__all__ = ["SampledKernels", "one_point"]


def one_point(fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
    """f at x alone, for a vectorised f: a batch of one point.

    Raises:
        InvalidArgumentError: f did not return one output per point.
    """
    values = np.asarray(fn(np.asarray(x)[None], *consts))
    if values.shape[:1] != (1,):
        raise InvalidArgumentError(
            "With vectorized=True f receives a batch of points on a leading axis (here shape "
            f"{(1, *np.shape(x))}) and must return one output per point, stacked on the "
            f"leading axis; it returned shape {values.shape}. Vectorise f (e.g. index "
            "x[..., i] rather than x[i], reduce over axis=-1), or use vectorized=False."
        )
    return values[0, ...]


class SampledKernels:
    """The kernels of one finite-difference configuration built on the sampling engine.

    Args:
        scheme: the difference scheme (fixed or adaptive steps).
        vectorized: f takes a batch of points on a leading axis.
        chunk_size: at most this many points per call of a vectorised f (None: 512 KiB).
    """

    def __init__(self, scheme: Scheme, vectorized: bool, chunk_size: int | None) -> None:
        self.scheme, self.vectorized, self.chunk = scheme, vectorized, chunk_size
        #: second differences: one fixed step is central for every method (a one-sided
        #: second difference errs by O(h)), the first derivatives then by the method's own
        one_fixed = scheme.num_steps == 1 and scheme.method == "forward"
        self.second = Scheme.fixed("central", scheme.initial_step) if one_fixed else scheme

    def _evaluate(self, fn: Fn, consts: tuple[Any, ...]) -> Evaluate:
        return batched(fn, *consts) if self.vectorized else looped(fn, *consts)

    def _run(self, operator: Any, fn: Fn, p: Problem, arrays: WorkArrays, **options: Any) -> Any:
        """``(x, *args, consts) -> Estimate``: the engine's operator on this configuration."""
        chunk, y_like, errors = self.chunk, p.y, p.with_error
        scheme = self.scheme
        if operator in (second.second_derivative, second.hvp, second.hessian):
            scheme, options = self.second, {**options, "first_scheme": self.scheme}

        def run(x: Any, *args: Any, consts: tuple[Any, ...], **more: Any) -> Estimate:
            evaluate = self._evaluate(fn, consts)
            return operator(
                evaluate,
                x,
                *args,
                scheme,
                chunk_size=chunk,
                y_like=y_like,
                arrays=arrays,
                errors=errors,
                **options,
                **more,
            )

        return run

    # -- first order --------------------------------------------------------------------
    def jacobian(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, J)`` (J alone with ``last_only``), J written into ``out=`` where given."""
        run = self._run(ops.jacobian, fn, p, WorkArrays(), value=not p.last_only)

        def kernel(x: Any, *consts: Any, out: Any = None, error_out: Any = None) -> Any:
            est = run(x, consts=consts, out=out, error_out=error_out)
            return _outputs(p, est, value=est.fx)

        return kernel

    def pushforward(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, J·t)`` for one tangent or a stack of them (``Problem.batch``)."""
        run = self._run(ops.pushforward, fn, p, WorkArrays(), value=not p.last_only)
        single = p.batch is None

        def kernel(x: Any, t: Any, *consts: Any) -> Any:
            est = _one_or_batch(run, x, t, consts, single)
            return _outputs(p, est, value=est.fx)

        return kernel

    def pullback(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, uᵀJ)`` from the Jacobian (in work arrays), for one cotangent or a stack of
        them; the error bound |u|ᵀ·err(J)."""
        arrays = WorkArrays()
        run = self._run(ops.jacobian, fn, p, arrays, value=not p.last_only)
        single = p.batch is None

        def kernel(x: Any, u: Any, *consts: Any) -> Any:
            y_shape = tuple(u.shape if single else u.shape[1:])
            dtype = x.dtype if x.dtype.kind == "c" else real_dtype(x.dtype)
            jac = arrays.take("J", (*y_shape, *x.shape), dtype)
            err = arrays.take("J error", jac.shape, real_dtype(x.dtype))
            est = run(x, consts=consts, out=jac, error_out=err)
            m, k = math.prod(y_shape), 1 if single else u.shape[0]
            rows, shape = np.reshape(u, (k, m)), x.shape if single else (k, *x.shape)
            est.value = (rows @ jac.reshape(m, x.size)).astype(dtype).reshape(shape)
            if est.error is not None:
                bound = np.abs(rows) @ err.reshape(m, x.size)
                est.error = bound.astype(err.dtype).reshape(shape)
            return _outputs(p, est, value=est.fx)

        return kernel

    # -- second order -------------------------------------------------------------------
    def second_derivative(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, y', y'')``; y'' alone with ``last_only``."""
        run = self._run(second.second_derivative, fn, p, WorkArrays(), with_first=not p.last_only)

        def kernel(x: Any, *consts: Any) -> Any:
            est = run(x, consts=consts)
            return _outputs(p, est, est.fx, est.first.value if est.first is not None else None)

        return kernel

    def hvp(self, fn: Fn, p: Problem) -> Kernel:
        """``(∇f, H·t)``, or H·t alone with ``last_only``, for one tangent or a stack."""
        run = self._run(second.hvp, fn, p, WorkArrays(), with_gradient=not p.last_only)
        single = p.batch is None

        def kernel(x: Any, t: Any, *consts: Any) -> Any:
            est = _one_or_batch(run, x, t, consts, single)
            return _outputs(p, est, est.first.value if est.first is not None else None)

        return kernel

    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, ∇f, H)``, or H alone with ``last_only``."""
        run = self._run(second.hessian, fn, p, WorkArrays(), with_gradient=not p.last_only)

        def kernel(x: Any, *consts: Any) -> Any:
            est = run(x, consts=consts)
            return _outputs(p, est, est.fx, est.first.value if est.first is not None else None)

        return kernel


def _one_or_batch(run: Any, x: Any, t: Any, consts: tuple[Any, ...], single: bool) -> Any:
    """``run`` on a stack of tangents; one tangent goes in as a stack of one and its result
    (and error) comes out unstacked."""
    est = run(x, t[None] if single else t, consts=consts)
    if single:
        est.value = est.value[0]
        est.error = None if est.error is None else est.error[0]
    return est


def _outputs(p: Problem, est: Estimate, *before: Any, value: Any = None) -> Any:
    """The kernel's outputs: those ``before`` the result (or ``value``, f(x), alone), the
    result, and its error estimate with ``p.with_error``; the result (and estimate)
    alone with ``p.last_only``. f(x), a view of the work arrays, is copied (in f's dtype
    and shape where the problem knows them)."""
    if p.last_only:
        before = ()
    elif value is not None:
        before = (value,)
    if est.fx is not None and before and before[0] is est.fx:
        fx = est.fx.real if p.y is not None and p.y.dtype.kind != "c" else est.fx  # complex step
        y = np.array(fx) if p.y is None else np.array(fx, dtype=p.y.dtype)
        before = (y if p.y is None else y.reshape(p.y.shape), *before[1:])
    outputs = (*before, est.value)
    if p.with_error:
        return (*outputs, est.error)
    return outputs if len(outputs) > 1 else outputs[0]
