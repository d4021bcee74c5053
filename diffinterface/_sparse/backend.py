"""AutoSparse and GreedyColoring: the configuration of sparse Jacobians and Hessians.

``AutoSparse(backend, sparsity_detector=..., coloring=...)`` is a backend like the others
(frozen, hashable). ``jacobian`` and ``hessian`` (and their value variants and preparations)
with it detect the pattern and colour it at preparation, then compute one batched product
per colour and return a ``scipy.sparse`` CSR array; every other operator runs on the dense
inner backend. The machinery is in ``diffinterface._sparse.compressed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from diffinterface._backend_types import Backend, backend
from diffinterface._distributed.backend import Distributed
from diffinterface._errors import InvalidArgumentError
from diffinterface._sparse.detectors import TracerSparsityDetector

__all__ = ["AutoSparse", "GreedyColoring"]

_ORDERS = ("largest_first", "smallest_last", "natural")


@dataclass(frozen=True)
class GreedyColoring:
    """Greedy colouring of the pattern: columns (forward mode), rows (reverse mode), or a
    star colouring of the symmetric Hessian pattern.

    Args:
        order: the vertex order of the greedy pass: ``"largest_first"`` (by degree),
            ``"smallest_last"`` or ``"natural"`` (index order; optimal for banded patterns).
    """

    order: str = "largest_first"

    def __post_init__(self) -> None:
        if self.order not in _ORDERS:
            raise InvalidArgumentError(
                f"GreedyColoring(order={self.order!r}) is not a valid option; choose one of "
                f"{_ORDERS}."
            )


@dataclass(frozen=True)
class AutoSparse(Backend):
    """Sparse Jacobians and Hessians with a dense ``backend`` doing the products.

    Args:
        backend: the dense backend (object or name). Its ``mode`` chooses column colouring
            with pushforwards (``"forward"``; also autograd and finite differences) or row
            colouring with pullbacks (``"reverse"``). Hessians use batched HVPs.
        sparsity_detector: finds the pattern at preparation:
            :class:`~diffinterface.TracerSparsityDetector` (default),
            :class:`~diffinterface.DenseSparsityDetector` or
            :class:`~diffinterface.KnownSparsityDetector`. For a backend that knows the
            exact pattern itself (:class:`~diffinterface.AutoCasADi`) the default is
            ``None``: no detection and no colouring, the backend computes the sparse
            matrix (give a detector to colour its pattern instead).
        coloring: a :class:`~diffinterface.GreedyColoring`.

    Raises:
        InvalidArgumentError: an unknown backend, a nested AutoSparse, or a detector or
            colouring of the wrong type.
    """

    backend: Backend
    sparsity_detector: Any = field(default_factory=TracerSparsityDetector)  # or None
    coloring: GreedyColoring = field(default_factory=GreedyColoring)
    name: ClassVar[str] = "sparse"
    adapter: ClassVar[str] = "diffinterface._sparse.adapter:SparseAdapter"
    first_order: ClassVar[bool] = False
    requires: ClassVar[tuple[str, str] | None] = ("scipy", "sparse")

    def __init__(
        self,
        backend: Backend | str,
        sparsity_detector: Any = None,
        coloring: GreedyColoring | None = None,
    ) -> None:
        inner = _resolve_inner(backend)
        detector = sparsity_detector
        if detector is None and not inner.exact_sparsity:
            detector = TracerSparsityDetector()
        if detector is not None and (
            not all(hasattr(detector, m) for m in ("jacobian_sparsity", "hessian_sparsity"))
            or isinstance(detector, type)
        ):
            raise InvalidArgumentError(
                f"sparsity_detector must be a detector object such as "
                f"di.TracerSparsityDetector(), got {detector!r}."
            )
        coloring = GreedyColoring() if coloring is None else coloring
        if not isinstance(coloring, GreedyColoring):
            raise InvalidArgumentError(
                f"coloring must be a di.GreedyColoring(...), got {coloring!r}."
            )
        object.__setattr__(self, "backend", inner)
        object.__setattr__(self, "sparsity_detector", detector)
        object.__setattr__(self, "coloring", coloring)


def _resolve_inner(b: Any) -> Backend:
    if isinstance(b, AutoSparse):
        raise InvalidArgumentError(
            "AutoSparse(AutoSparse(...)) is not meaningful: pass the dense backend, "
            "e.g. di.AutoSparse(di.AutoJAX(mode='forward'))."
        )
    if isinstance(b, str):
        return backend(b)
    if (isinstance(b, Backend) and b.first_order) or isinstance(b, Distributed):
        return b  # a Distributed backend: the colour groups are spread over its workers
    raise InvalidArgumentError(
        f"AutoSparse needs a dense backend such as di.AutoJAX(mode='forward') or a backend "
        f"name, got {b!r} of type {type(b).__name__}."
    )
