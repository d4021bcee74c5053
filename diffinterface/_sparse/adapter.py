"""The adapter behind :class:`~diffinterface.AutoSparse`: compressed sparse Jacobians and
Hessians on top of a dense backend, and scipy.sparse results as an array kind (for
``out=``).

Only ``jacobian`` and ``hessian`` (and their value variants) are sparse; for every other
operator the dense backend's adapter serves (:meth:`SparseAdapter.for_operator`). A dense
backend that knows the exact pattern itself (``exact_sparsity``: CasADi) computes them
with its own ``sparse_kernel`` when no detector is given.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from diffinterface._adapter import Adapter, Fn, Kernel, Problem, adapter_for, kernel
from diffinterface._arrays import ArrayKind, register_kind
from diffinterface._errors import InvalidArgumentError
from diffinterface._sparse.backend import AutoSparse
from diffinterface._sparse.compressed import sparse_hessian, sparse_jacobian

__all__ = ["SparseAdapter", "SparseArrays"]


class SparseArrays(ArrayKind):
    """scipy.sparse matrices (AutoSparse's results): written into ``out=`` in place."""

    name = "scipy.sparse"
    library = "scipy.sparse"

    def is_array(self, a: Any) -> bool:
        return bool(sp.issparse(a))

    def write(self, out: Any, value: Any, role: str) -> None:
        same = (
            sp.issparse(out)
            and out.format == "csr"
            and np.array_equal(out.indptr, value.indptr)
            and np.array_equal(out.indices, value.indices)
        )
        if not same:
            raise InvalidArgumentError(
                f"{role}= for a sparse result must be a scipy.sparse CSR array with the "
                f"result's shape {value.shape}, dtype {value.dtype} and pattern, e.g. the "
                f"result of an earlier call with the same preparation (its .data is "
                f"overwritten); got {type(out).__name__}."
            )
        out.data[...] = value.data


register_kind(SparseArrays(), ("scipy",))


class SparseAdapter(Adapter):
    """Sparse ``jacobian`` and ``hessian`` kernels of ``AutoSparse(backend)``."""

    raw_outputs: ClassVar[frozenset[str]] = frozenset({"yx", "xx"})

    def __init__(self, config: AutoSparse) -> None:
        super().__init__(config)
        self.dense = dense = adapter_for(config.backend)
        self.native_kind = dense.native_kind  # type: ignore[misc]
        self.accepted_kinds = dense.accepted_kinds  # type: ignore[misc]
        self.supports_mutation = dense.supports_mutation  # type: ignore[misc]
        self.plain_values = dense.plain_values  # type: ignore[misc]
        self.mutation_hint = dense.mutation_hint  # type: ignore[misc]
        self.mutation_refusal = dense.mutation_refusal  # type: ignore[misc]
        self.max_ndim = dense.max_ndim  # type: ignore[misc]

    def for_operator(self, operator: str) -> Adapter:
        if operator in ("jacobian", "hessian"):
            return self
        return self.dense.for_operator(operator)  # the dense backend may wrap another

    def point_function(self, f: Any) -> Any:
        return self.dense.point_function(f)

    def stack(self, arrays: list[Any]) -> Any:
        return self.dense.stack(arrays)

    def eye(self, n: int, like: Any) -> Any:
        return self.dense.eye(n, like)

    def ones(self, template: Any, like: Any) -> Any:
        return self.dense.ones(template, like)

    def output_template(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        return self.dense.output_template(fn, x, consts)

    def evaluate(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        return self.dense.evaluate(fn, x, consts)

    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        return self.dense.pushforward(fn, mutates)

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        return self.dense.pullback(fn, mutates)

    @kernel("jacobian")
    def jacobian(self, fn: Fn, p: Problem) -> Kernel:
        if self.config.sparsity_detector is None:  # type: ignore[attr-defined]
            return self.dense.sparse_kernel("jacobian", fn, p)
        return sparse_jacobian(self.config, self.dense, fn, p)  # type: ignore[arg-type]

    @kernel("hessian")
    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        if self.config.sparsity_detector is None:  # type: ignore[attr-defined]
            return self.dense.sparse_kernel("hessian", fn, p)
        return sparse_hessian(self.config, self.dense, fn, p)  # type: ignore[arg-type]
