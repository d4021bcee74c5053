"""Distributed: the configuration that spreads an operator's batch over workers or devices.

``Distributed(backend, workers=...)`` or ``Distributed(backend, devices=...)`` is a backend
like the others (frozen, hashable), accepted wherever a backend is. The batch of an
operator — Jacobian columns or rows, Hessian columns, batched tangents, AutoSparse's colour
groups, the perturbations of finite differences — is cut into chunks computed by the
wrapped backend on the workers (or sharded over JAX devices in one compiled call); operators
with no batch run on the caller. The machinery is in ``diffinterface._distributed.adapter``.
Importing this module imports neither Dask nor cloudpickle nor JAX.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from diffinterface._backend_types import Backend, backend
from diffinterface._distributed.engines import can_count, is_engine
from diffinterface._errors import InvalidArgumentError

__all__ = ["Distributed"]

_NOT_FIRST_ORDER = (
    "Distributed wraps a first-order backend such as di.AutoJAX() or its name; got {b!r}. {hint}"
)


@dataclass(frozen=True, repr=False)
class Distributed(Backend):
    """Spread the batch of an operator over worker processes or JAX devices.

    The batch of ``jacobian`` (columns, or rows in reverse mode), ``hessian`` (columns, as
    HVPs), batched ``pushforward``/``pullback``/``hvp``, AutoSparse's colour groups
    (``di.AutoSparse(di.Distributed(...))``) and the perturbations of finite differences is
    cut into chunks; each worker prepares the wrapped backend once per chunk shape and
    computes its chunks with it; the results come back in order. Operators with no batch (a
    single pushforward, pullback or HVP, ``derivative``, ``second_derivative``, and
    ``gradient`` for AD backends) run on the caller with the wrapped backend.

    Args:
        backend: the first-order backend (object or name) that computes every chunk.
        workers: a ``concurrent.futures.Executor`` (``ProcessPoolExecutor``, loky,
            mpi4py's ``MPIPoolExecutor``, a Dask ``Client.get_executor()``) or a
            ``dask.distributed.Client``. f, its contexts and the wrapped backend travel
            to the workers by cloudpickle, once per chunk.
        devices: JAX devices (``jax.devices()``) to shard the batch axis over, inside one
            compiled call; only with ``di.AutoJAX``.
        chunk_size: the number of tangents (columns, rows) per chunk; ``None``: the batch
            split evenly, one chunk per worker (per device for ``devices=``).

    Raises:
        InvalidArgumentError: not exactly one of ``workers`` and ``devices``, an executor
            whose size cannot be read without ``chunk_size``, ``devices`` with a backend
            other than JAX, or a backend that is not first-order.
    """

    backend: Backend
    workers: Any = None
    devices: tuple[Any, ...] | None = None
    chunk_size: int | None = None
    name: ClassVar[str] = "distributed"
    adapter: ClassVar[str] = "diffinterface._distributed.adapter:DistributedAdapter"
    #: a wrapper: AutoSparse takes it (and spreads its colour groups), SecondOrder does not
    first_order: ClassVar[bool] = False
    requires: ClassVar[tuple[str, str] | None] = ("cloudpickle", "distributed")

    def __init__(
        self,
        backend: Backend | str,
        workers: Any = None,
        devices: Sequence[Any] | None = None,
        chunk_size: int | None = None,
    ) -> None:
        inner = _resolve_inner(backend)
        if (workers is None) == (devices is None):
            raise InvalidArgumentError(
                "Distributed needs exactly one of workers= (an executor or a Dask Client) and "
                "devices= (JAX devices), e.g. di.Distributed(di.AutoFiniteDiff(), "
                f"workers=ProcessPoolExecutor(4)); got workers={workers!r}, devices={devices!r}."
            )
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
        ):
            raise InvalidArgumentError(
                f"Distributed(chunk_size={chunk_size!r}) must be a positive int or None."
            )
        if workers is not None:
            _check_workers(workers, chunk_size)
        if devices is not None:
            devices = _checked_devices(inner, devices)
        object.__setattr__(self, "backend", inner)
        object.__setattr__(self, "workers", workers)
        object.__setattr__(self, "devices", devices)
        object.__setattr__(self, "chunk_size", chunk_size)

    @property
    def mode(self) -> str | None:
        """The wrapped backend's mode (forward or reverse), which chooses Jacobian columns
        or rows and AutoSparse's colouring; None for backends without one."""
        return getattr(self.backend, "mode", None)

    def __repr__(self) -> str:
        where = (
            f"workers={type(self.workers).__name__}"
            if self.workers is not None
            else f"devices={len(self.devices or ())}×{self.devices[0].platform}"  # type: ignore[index]
        )
        chunks = "" if self.chunk_size is None else f", chunk_size={self.chunk_size}"
        return f"Distributed({self.backend!r}, {where}{chunks})"


def _resolve_inner(b: Any) -> Backend:
    if isinstance(b, str):
        return backend(b)
    if isinstance(b, Distributed):
        raise InvalidArgumentError(
            _NOT_FIRST_ORDER.format(b=b, hint="Distributed(Distributed(...)) is not meaningful.")
        )
    if isinstance(b, Backend) and b.first_order:
        return b
    hint = ""
    if b.__class__.__name__ == "AutoSparse":
        hint = (
            "To spread AutoSparse's colour groups, wrap the other way round: "
            "di.AutoSparse(di.Distributed(backend, workers=...))."
        )
    elif isinstance(b, Backend):
        hint = (
            "Hessians need no SecondOrder here: Distributed(backend) computes their columns "
            "as a batch of the backend's Hessian-vector products."
        )
    raise InvalidArgumentError(_NOT_FIRST_ORDER.format(b=b, hint=hint))


def _check_workers(workers: Any, chunk_size: int | None) -> None:
    if not is_engine(workers):
        raise InvalidArgumentError(
            f"Distributed(workers=...) takes a concurrent.futures.Executor (e.g. "
            f"ProcessPoolExecutor(4)) or a dask.distributed.Client; got {workers!r}."
        )
    if chunk_size is None and not can_count(workers):
        raise InvalidArgumentError(
            f"Distributed cannot tell how many workers {type(workers).__name__} has; pass "
            "chunk_size= (the number of tangents per chunk), e.g. chunk_size=8."
        )


def _checked_devices(inner: Backend, devices: Sequence[Any]) -> tuple[Any, ...]:
    if inner.name != "jax":
        raise InvalidArgumentError(
            f"Distributed(devices=...) shards a compiled JAX computation; the backend must be "
            f"di.AutoJAX(...), got {inner!r}. Use workers= for other backends."
        )
    found = tuple(devices) if isinstance(devices, Sequence) else ()
    if not found or not all(type(d).__module__.startswith("jax") for d in found):
        raise InvalidArgumentError(
            f"Distributed(devices=...) takes a non-empty sequence of JAX devices, e.g. "
            f"jax.devices(); got {devices!r}."
        )
    return found
