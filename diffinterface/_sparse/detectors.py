"""Sparsity detectors: where a Jacobian's or Hessian's nonzeros can be, found at preparation.

* :class:`TracerSparsityDetector` runs f once on index-set arrays (exact global pattern for
  f written with ``di.array_namespace``; see ``diffinterface._sparse.tracer``);
* :class:`DenseSparsityDetector` computes one dense Jacobian or Hessian with a backend and
  keeps the entries above a threshold (any f, but the pattern is local to x);
* :class:`KnownSparsityDetector` takes the pattern from the user.

Each returns a boolean ``scipy.sparse`` CSR array of shape (f(x).size, x.size) or
(x.size, x.size). scipy is imported only when a detector runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from diffinterface._adapter import adapter_for
from diffinterface._arrays import kind, kind_of
from diffinterface._backend_types import Backend, BackendLike, resolve_backend
from diffinterface._contexts import Cache
from diffinterface._errors import InvalidArgumentError, UnsupportedError
from diffinterface._operators.hessian import hessian
from diffinterface._operators.jacobian import jacobian

__all__ = [
    "DenseSparsityDetector",
    "KnownSparsityDetector",
    "SparsityDetector",
    "TracerSparsityDetector",
]


def _numpy(a: Any) -> Any:
    name = kind_of(a)
    return a if name is None else kind(name).to_numpy(a)


@dataclass(frozen=True)
class TracerSparsityDetector:
    """Exact global pattern by running f on index-set arrays (at preparation, once).

    f must reach its array operations through ``xp = di.array_namespace(x)`` (or Python
    operators and NumPy ufuncs) and return one array; it must not branch on values of x
    (use ``xp.where``) nor write into arrays. Zeros of a constant matrix in ``A @ x`` are
    taken as structural: the pattern is that of this A.
    """

    #: whether it can detect the pattern of a mutating f (y= or Cache); read by the test suite
    follows_mutation: ClassVar[bool] = False

    def _args(self, contexts: tuple[Any, ...], y: Any) -> tuple[Any, ...]:
        if y is not None or any(isinstance(c, Cache) for c in contexts):
            raise UnsupportedError(
                "TracerSparsityDetector cannot follow a function that writes into arrays "
                "(y= or di.Cache). Use sparsity_detector=di.DenseSparsityDetector(backend) or "
                "di.KnownSparsityDetector(pattern)."
            )
        return tuple(_numpy(c.value) for c in contexts)

    def jacobian_sparsity(
        self, f: Callable[..., Any], x: Any, contexts: tuple[Any, ...], y: Any, m: int
    ) -> Any:
        """Boolean CSR pattern (m = f(x).size, x.size) of f's Jacobian at every x."""
        from diffinterface._sparse.tracing import trace_jacobian  # imports scipy

        args = self._args(contexts, y)
        return trace_jacobian(f, tuple(x.shape), x.dtype, args)

    def hessian_sparsity(self, f: Callable[..., Any], x: Any, contexts: tuple[Any, ...]) -> Any:
        """Symmetric boolean CSR pattern (x.size, x.size) of a scalar f's Hessian."""
        from diffinterface._sparse.tracing import trace_hessian  # imports scipy

        return trace_hessian(f, tuple(x.shape), x.dtype, self._args(contexts, None))


@dataclass(frozen=True)
class DenseSparsityDetector:
    """The nonzeros (``|entry| > atol``) of one dense Jacobian or Hessian at the prepared x.

    Works for any f the backend can differentiate, but the pattern is local: an entry that
    happens to be zero at this x is taken as zero everywhere.

    Args:
        backend: the backend (object or name) that computes the dense matrix.
        atol: entries with absolute value at most ``atol`` count as zeros.
    """

    backend: BackendLike = "finitediff"
    atol: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "backend", _dense(self.backend, "DenseSparsityDetector"))
        if not self.atol >= 0:
            raise InvalidArgumentError(
                f"DenseSparsityDetector(atol={self.atol!r}) must be a number ≥ 0."
            )

    @property
    def follows_mutation(self) -> bool:
        """Whether it can detect the pattern of a mutating f: when its backend can."""
        return adapter_for(self.backend).supports_mutation

    def _pattern(self, matrix: Any, rows: int, cols: int) -> Any:
        import scipy.sparse as sp

        dense = np.abs(np.asarray(_numpy(matrix), dtype=float).reshape(rows, cols)) > self.atol
        return sp.csr_array(dense)

    def jacobian_sparsity(
        self, f: Callable[..., Any], x: Any, contexts: tuple[Any, ...], y: Any, m: int
    ) -> Any:
        """Boolean CSR pattern (f(x).size, x.size) of f's Jacobian at x."""
        extra: dict[str, Any] = (
            {} if y is None else {"y": y.clone() if hasattr(y, "clone") else np.array(y)}
        )
        jac = jacobian(f, self.backend, x, *contexts, **extra)
        return self._pattern(jac, m, math.prod(tuple(x.shape)))

    def hessian_sparsity(self, f: Callable[..., Any], x: Any, contexts: tuple[Any, ...]) -> Any:
        """Symmetric boolean CSR pattern (x.size, x.size) of a scalar f's Hessian at x."""
        n = math.prod(tuple(x.shape))
        p = self._pattern(hessian(f, self.backend, x, *contexts), n, n)
        return (p + p.T).tocsr()


@dataclass(frozen=True, eq=False)
class KnownSparsityDetector:
    """A pattern you know: any 2-D array-like or scipy.sparse matrix whose nonzeros mark
    where the Jacobian (shape (f(x).size, x.size)) or Hessian (x.size, x.size) may be
    nonzero. Compared by identity, so that AutoSparse stays hashable."""

    pattern: Any

    def _checked(self, rows: int, cols: int, what: str) -> Any:
        import scipy.sparse as sp

        p = self.pattern
        p = sp.csr_array(p if sp.issparse(p) else np.asarray(_numpy(p)) != 0, dtype=bool)
        if p.shape != (rows, cols):
            raise InvalidArgumentError(
                f"KnownSparsityDetector: the pattern has shape {p.shape}, but the {what} "
                f"has shape ({rows}, {cols}) (flattened: f(x).size × x.size for a Jacobian, "
                "x.size × x.size for a Hessian)."
            )
        return p

    def jacobian_sparsity(
        self, f: Callable[..., Any], x: Any, contexts: tuple[Any, ...], y: Any, m: int
    ) -> Any:
        """The given pattern, checked against (f(x).size, x.size)."""
        return self._checked(m, math.prod(tuple(x.shape)), "Jacobian")

    def hessian_sparsity(self, f: Callable[..., Any], x: Any, contexts: tuple[Any, ...]) -> Any:
        """The given pattern (made symmetric), checked against (x.size, x.size)."""
        n = math.prod(tuple(x.shape))
        p = self._checked(n, n, "Hessian")
        return (p + p.T).tocsr()


SparsityDetector = TracerSparsityDetector | DenseSparsityDetector | KnownSparsityDetector


def _dense(b: Any, owner: str) -> Backend:
    resolved = resolve_backend(b)
    if not resolved.first_order:
        raise InvalidArgumentError(f"{owner} needs a dense backend, got {b!r}.")
    return resolved
