"""The adapter behind :class:`~diffinterface.Distributed`: the wrapped backend's adapter,
with every batch spread over workers (``workers.Workers``) or JAX devices
(``devices.Devices``).

Which operators are spread (the others run on the caller, with the wrapped backend):

* ``jacobian``: blocks of columns or rows, each computed by the wrapped backend's own
  Jacobian (so finite differences take the same steps as without Distributed);
* ``hessian``: its columns, as chunks of the wrapped backend's HVPs;
* ``pushforward``, ``pullback`` and ``hvp`` with a batch of tangents: chunks of it;
* ``gradient`` and ``pullback`` of a finite-difference backend: its Jacobian, spread, since
  they need every column;
* AutoSparse's colour groups, through :meth:`DistributedAdapter.pushforward_batch` and
  ``pullback_batch`` and the declared ``hvp`` kernel, which AutoSparse calls.

``derivative``, ``second_derivative`` and the ``gradient`` of an AD backend are handed to
the wrapped backend's adapter (:meth:`DistributedAdapter.for_operator`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from diffinterface._adapter import Adapter, Fn, Kernel, Problem, adapter_for, kernel
from diffinterface._distributed.backend import Distributed
from diffinterface._distributed.worker import JobKind, hvp_kernel

__all__ = ["DistributedAdapter", "Spread"]


class Spread(Protocol):
    """Where the batches go: ``workers.Workers`` or ``devices.Devices``."""

    compiles: bool

    def compile(self, kernel: Kernel, example_args: tuple[Any, ...]) -> Kernel:
        """Compile a kernel (of the wrapped backend, or one calling the workers)."""

    def products(
        self, job_kind: JobKind, fn: Fn, mutates: bool, local: Kernel, y: Any = None
    ) -> Kernel:
        """``(x, T, *consts) -> (first output, stacked products)``; ``local``: the wrapped
        backend's own batched kernel."""

    def jacobian(self, fn: Fn, p: Problem) -> Kernel:
        """``(x, *consts) -> (y, J)``."""

    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        """``(x, *consts) -> (y, ∇f, H)``, or H alone with ``p.last_only``."""

    def check(self, p: Problem) -> None:
        """Raise at preparation what would fail at a call (contexts that cannot be sent)."""


class DistributedAdapter(Adapter):
    """Kernels of ``Distributed(backend, ...)`` on the wrapped backend's arrays."""

    def __init__(self, config: Distributed) -> None:
        super().__init__(config)
        self.inner = inner = adapter_for(config.backend)
        self.native_kind = inner.native_kind  # type: ignore[misc]
        self.accepted_kinds = inner.accepted_kinds  # type: ignore[misc]
        self.supports_mutation = inner.supports_mutation  # type: ignore[misc]
        self.plain_values = inner.plain_values  # type: ignore[misc]
        self.mutation_hint = inner.mutation_hint  # type: ignore[misc]
        self.spread: Spread
        if config.devices is not None:
            from diffinterface._distributed.devices import Devices

            self.spread = Devices(config, inner, self)
        else:
            from diffinterface._distributed.workers import Workers

            self.spread = Workers(config, inner)
        self.compiles = self.spread.compiles  # type: ignore[misc]

    def for_operator(self, operator: str) -> Adapter:
        if operator in ("derivative", "second_derivative"):
            return self.inner.for_operator(operator)
        if operator == "gradient" and not self.inner.plain_values:
            return self.inner.for_operator(operator)
        return self

    # -- arrays and compilation: the wrapped backend's --------------------------------
    def stack(self, arrays: list[Any]) -> Any:
        return self.inner.stack(arrays)

    def eye(self, n: int, like: Any) -> Any:
        return self.inner.eye(n, like)

    def ones(self, template: Any, like: Any) -> Any:
        return self.inner.ones(template, like)

    def output_template(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        return self.inner.output_template(fn, x, consts)

    def evaluate(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        return self.inner.evaluate(fn, x, consts)

    def compile(self, kernel: Kernel, example_args: tuple[Any, ...]) -> Kernel:
        return self.spread.compile(kernel, example_args)

    # -- primitives: one tangent on the caller, a batch spread ------------------------
    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        return self.inner.pushforward(fn, mutates)

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        return self.inner.pullback(fn, mutates)

    def pushforward_batch(self, fn: Fn, mutates: bool) -> Kernel:
        local = self.inner.pushforward_batch(fn, mutates)
        return self.spread.products("pushforward", fn, mutates, local)

    def pullback_batch(self, fn: Fn, mutates: bool) -> Kernel:
        local = self.inner.pullback_batch(fn, mutates)
        return self.spread.products("pullback", fn, mutates, local)

    # -- the operators' kernels ---------------------------------------------------------
    @kernel("pushforward")
    def pushforwards(self, fn: Fn, p: Problem) -> Kernel:
        if p.batch is None:
            return self._on_caller(self.inner.pushforward(fn, p.mutates), p, p.x)
        self.spread.check(p)
        return self.pushforward_batch(fn, p.mutates)

    @kernel("pullback")
    def pullbacks(self, fn: Fn, p: Problem) -> Kernel:
        if self.inner.plain_values:  # uᵀJ by differences needs every column of J
            return _contracted(self.spread.jacobian(fn, replace(p, batch=None)), p.batch)
        if p.batch is None:
            return self._on_caller(self.inner.pullback(fn, p.mutates), p, p.y)
        self.spread.check(p)
        return self.pullback_batch(fn, p.mutates)

    @kernel("hvp")
    def hvps(self, fn: Fn, p: Problem) -> Kernel:
        local = hvp_kernel(self.inner, fn, p)
        if p.batch is None:
            return self._on_caller(local, p, p.x)
        self.spread.check(p)
        return self.spread.products("hvp", fn, p.mutates, local, p.y)

    @kernel("jacobian")
    def jacobian(self, fn: Fn, p: Problem) -> Kernel:
        return self.spread.jacobian(fn, p)

    @kernel("gradient")
    def gradient(self, fn: Fn, p: Problem) -> Kernel:
        """Only for finite differences (see :meth:`for_operator`): the gradient is the
        Jacobian of a scalar f, one difference per entry of x, spread."""
        return self.spread.jacobian(fn, p)

    @kernel("hessian", last_only=True)
    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        return self.spread.hessian(fn, p)

    def _on_caller(self, local: Kernel, p: Problem, t_example: Any) -> Kernel:
        """A kernel of the wrapped backend for one tangent, run on the caller: compiled
        here when the workers' kernels are not (the wrapped backend compiles it as it
        would without Distributed)."""
        if self.compiles:
            return local
        return self.inner.compile(local, (p.x, t_example, *p.consts))


def _contracted(jacobian: Kernel, batch: int | None) -> Kernel:
    """``(x, u, *consts) -> (y, uᵀJ)`` (stacked for a batch) from a Jacobian kernel, on
    NumPy arrays (those of the finite-difference backends), as they contract it."""

    def pullback(x: Any, u: Any, *consts: Any) -> Any:
        y, jac = jacobian(x, *consts)
        k = 1 if batch is None else u.shape[0]  # not -1: y or x may be empty
        rows = u.reshape(k, y.size) @ jac.reshape(y.size, x.size)
        return y, rows.reshape(((k,) if batch is not None else ()) + x.shape)

    return pullback
