"""``Distributed(AutoJAX(...), devices=...)``: the batch axis sharded over JAX devices, in
one compiled call.

The batched kernels are the wrapped JAX backend's own, with the stacked tangents (or the
basis a Jacobian or Hessian makes inside the compiled code) constrained to be split along
the batch axis over a one-axis ``jax.sharding.Mesh`` of the devices; XLA partitions the
vmapped products accordingly (a batch that the devices do not divide evenly is padded by
XLA). Results are JAX arrays laid out over the devices as computed (``np.asarray`` gathers
them). Everything is compiled at preparation by the wrapped backend.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from diffinterface._adapter import Adapter, Fn, Kernel, Problem
from diffinterface._derived import HESSIAN, JACOBIAN
from diffinterface._distributed.backend import Distributed
from diffinterface._distributed.worker import JobKind

__all__ = ["Devices"]


class Devices:
    """Batched kernels of the wrapped JAX backend, sharded over ``config.devices``."""

    compiles = True

    def __init__(self, config: Distributed, inner: Adapter, adapter: Adapter) -> None:
        self.inner, self.adapter = inner, adapter  # adapter: the Distributed one
        mesh = Mesh(np.array(config.devices), ("batch",))
        #: None for one device: nothing to split (a constraint would still make XLA
        #: partition the program, which made it slower here)
        self.split = NamedSharding(mesh, PartitionSpec("batch")) if mesh.size > 1 else None

    def compile(self, kernel: Kernel, example_args: tuple[Any, ...]) -> Kernel:
        return self.inner.compile(kernel, example_args)

    def products(
        self, job_kind: JobKind, fn: Fn, mutates: bool, local: Kernel, y: Any = None
    ) -> Kernel:
        """``local`` (the wrapped backend's batched kernel) with its tangents split over the
        devices."""
        split = self.split
        if split is None:
            return local

        def sharded(x: Any, ts: Any, *consts: Any) -> Any:
            return local(x, jax.lax.with_sharding_constraint(ts, split), *consts)

        return sharded

    def jacobian(self, fn: Fn, p: Problem) -> Kernel:
        """The generic Jacobian: one batched product over the basis, split over the
        devices by the Distributed adapter's batched products."""
        return JACOBIAN.build(self.adapter, fn, p)

    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        """The generic Hessian (batched HVPs along the basis, split over the devices)."""
        every = HESSIAN.build(self.adapter, fn, p)
        if not p.last_only:
            return every

        def hessian_only(x: Any, *consts: Any) -> Any:
            return every(x, *consts)[-1]

        return hessian_only

    def check(self, p: Problem) -> None:
        """Nothing leaves the process."""
