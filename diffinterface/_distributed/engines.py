"""The engines that run the chunks: a ``concurrent.futures.Executor`` or a Dask ``Client``.

One small interface over both: how many workers there are (for the default chunk size),
submitting a chunk, and gathering the chunks' results in order. Gathering is where faults
surface: an exception raised by f on a worker is re-raised as it is (its own type and
message, once, the other chunks cancelled); a worker process that died is either recovered
by the engine (Dask recomputes the tasks of a lost worker on another one) or reported as
:class:`~diffinterface.WorkerError` — never a partial result. Nothing here imports Dask:
a Dask object is recognised through ``sys.modules``, as array-api-compat does.
"""

from __future__ import annotations

import concurrent.futures
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from diffinterface._errors import WorkerError

__all__ = ["Engine", "can_count", "is_engine"]

_LOST = (
    "A worker of {engine} died during the batch: chunk {index} of {total} has no result "
    "({error}), so nothing was assembled. {advice}"
)
_BROKEN_POOL = (
    "A process pool cannot replace a dead worker: it is broken now, so make a new executor "
    "(or use a Dask cluster, which recomputes the chunks of a lost worker on another one)."
)
_KILLED = (
    "Dask recomputed its chunk on other workers and lost them too (the scheduler's "
    "allowed-failures limit); look for what kills the workers (memory limits, crashes in f)."
)


def _dask_client_class() -> Any:
    module = sys.modules.get("distributed")
    return getattr(module, "Client", None)


def is_engine(workers: Any) -> bool:
    """Whether ``workers`` is something chunks can be submitted to."""
    client = _dask_client_class()
    return isinstance(workers, concurrent.futures.Executor) or (
        client is not None and isinstance(workers, client)
    )


def _count(workers: Any) -> int | None:
    """The number of workers (Dask: worker threads), if the engine says; read at each call,
    since a Dask cluster may scale."""
    client = _dask_client_class()
    if client is not None and isinstance(getattr(workers, "_client", None), client):
        workers = workers._client  # a Dask ClientExecutor
    if client is not None and isinstance(workers, client):
        return int(sum(workers.nthreads().values()))
    for attribute in ("num_workers", "_max_workers"):  # mpi4py; the stdlib pools and loky
        value = getattr(workers, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def can_count(workers: Any) -> bool:
    """Whether the default chunk size (one chunk per worker) can be worked out."""
    client = _dask_client_class()
    is_dask = client is not None and isinstance(getattr(workers, "_client", workers), client)
    return is_dask or _count(workers) is not None


class Engine:
    """Chunks submitted to ``workers`` and their results gathered in order."""

    def __init__(self, workers: Any) -> None:
        self.workers = workers
        client = _dask_client_class()
        self._dask = client is not None and isinstance(workers, client)

    def count(self) -> int:
        """The number of workers now (at least 1)."""
        return max(1, _count(self.workers) or 1)

    @contextmanager
    def running(
        self, run: Callable[[Any], Any], tasks: list[Any]
    ) -> Iterator[Callable[[], list[Any]]]:
        """Submit ``run(task)`` for each task; inside the block, the caller may work too,
        then call the yielded function for the results in order. Whatever leaves the block
        early (an exception from the caller's own work, or from a chunk) cancels the chunks
        not yet started.

        Raises:
            WorkerError: a worker died and the engine could not recompute its chunk.
            the exception f raised on a worker, with its own type and message.
        """
        if self._dask:  # one message to the scheduler for all the chunks
            futures = self.workers.map(run, tasks, pure=False)
        else:
            futures = [self.workers.submit(run, task) for task in tasks]
        try:
            yield lambda: self._results(futures)
        finally:
            pending = [future for future in futures if not future.done()]
            if self._dask and pending:
                self.workers.cancel(pending)
            elif pending:
                for future in pending:
                    future.cancel()

    def _results(self, futures: list[Any]) -> list[Any]:
        index = 0
        try:
            if self._dask:  # one round trip for all the results
                return list(self.workers.gather(futures))
            results = []
            for index, future in enumerate(futures):  # noqa: B007 (index: the failed chunk)
                results.append(future.result())
            return results
        except Exception as e:
            if self._dask:
                index = next((i for i, f in enumerate(futures) if f.status == "error"), 0)
            lost = isinstance(e, concurrent.futures.BrokenExecutor)
            killed = type(e).__name__ == "KilledWorker" and type(e).__module__.startswith(
                "distributed"
            )
            if lost or killed:
                advice = _BROKEN_POOL if lost else _KILLED
                raise WorkerError(self._lost(index, len(futures), e, advice)) from e
            e.add_note(
                f"(raised on a worker of di.Distributed, in chunk {index + 1} of {len(futures)})"
            )
            raise  # f's own exception, with the worker's traceback as its cause

    def _lost(self, index: int, total: int, error: BaseException, advice: str) -> str:
        engine = type(self.workers).__name__
        return _LOST.format(
            engine=engine,
            index=index + 1,
            total=total,
            error=str(error) or type(error).__name__,
            advice=advice,
        )
