"""The caller's side of ``Distributed(backend, workers=...)``: batched kernels whose chunks
run on the workers.

At preparation each kernel cloudpickles its :class:`~diffinterface._distributed.worker.Job`
once (an unpicklable f or context is reported then, on the caller). Per call, x and the
contexts' values are pickled once, the batch is cut into chunks (one per worker unless
``chunk_size`` says otherwise), the chunks run on the workers, and their results are put
together in order on the caller, as NumPy arrays converted once to the backend's arrays.
Chunks of the standard basis (Jacobian columns or rows, Hessian columns) all have one size,
the last one overlapping the one before, so a worker compiles one kernel for them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from diffinterface._adapter import Adapter, Fn, Kernel, Problem
from diffinterface._arrays import kind, kind_of
from diffinterface._conversions import converter
from diffinterface._derived import uses_forward_mode
from diffinterface._distributed.backend import Distributed
from diffinterface._distributed.engines import Engine
from diffinterface._distributed.pickling import dumps
from diffinterface._distributed.worker import Job, JobKind, Span, Task, run_chunk
from diffinterface._errors import UnsupportedError

__all__ = ["Workers"]


_TRACED = (
    "{config!r} sends x to other processes, so it cannot run where {traced} traces its "
    "arguments: those processes compute plain values, no derivative or compiled program "
    "can follow them. Call the operator outside that transformation, or, with JAX, shard "
    "the batch over devices inside it: di.Distributed(di.AutoJAX(), devices=jax.devices())."
)


@dataclass(frozen=True)
class _Sent:
    """A job as the tasks carry it: its token and cloudpickled payload."""

    token: str
    payload: bytes


class Workers:
    """Batched kernels computed chunk by chunk on ``config.workers``."""

    compiles = False  # the kernels call the workers: the caller's framework cannot trace them

    def __init__(self, config: Distributed, inner: Adapter) -> None:
        self.config, self.inner = config, inner
        self.engine = Engine(config.workers)
        self.native = converter("numpy", inner.native_kind)
        self.to_numpy = kind(inner.native_kind).to_numpy

    def compile(self, kernel: Kernel, example_args: tuple[Any, ...]) -> Kernel:
        return kernel

    # -- kernels ------------------------------------------------------------------------
    def products(
        self, job_kind: JobKind, fn: Fn, mutates: bool, local: Kernel, y: Any = None
    ) -> Kernel:
        """``(x, T, *consts) -> (first output, stacked products)`` for tangents T stacked on
        axis 0, chunks of T on the workers (``local``, on the caller, for no tangents); ``y``:
        f's output template, for the jobs that need it (HVPs). The last chunk is padded with
        zero tangents (finite differences skip them) to the others' shape."""
        spec = None if y is None else _spec(y)
        sent = self._send(Job(self.config.backend, job_kind, fn, mutates, spec))

        def batched(x: Any, ts: Any, *consts: Any) -> Any:
            self._untraced(ts)
            k = int(ts.shape[0])
            if k == 0:
                return local(x, ts, *consts)
            t = np.asarray(self.to_numpy(ts))
            size = self._size(k)
            padding = -k % size  # zero tangents, so that every chunk has one shape
            if padding:
                t = np.concatenate([t, np.zeros((padding, *t.shape[1:]), dtype=t.dtype)])
            chunks = [t[a : a + size] for a in range(0, k, size)]
            with self._running(sent, x, consts, chunks) as results:
                done = results()
            products = np.concatenate([r[1] for r in done])[:k]
            return self.native(done[0][0]), self.native(products)

        return batched

    def jacobian(self, fn: Fn, p: Problem) -> Kernel:
        """``(x, *consts) -> (y, J)``: blocks of columns (forward mode, and finite
        differences, which difference column by column) or of rows (reverse mode), each a
        Jacobian of the wrapped backend's own."""
        x_shape, y_shape = tuple(p.x.shape), tuple(p.y.shape)
        n, m = math.prod(x_shape), math.prod(y_shape)
        by_columns = self.inner.plain_values or uses_forward_mode(self.inner, (n, m))
        job_kind: JobKind = "columns" if by_columns else "rows"
        sent = self._send(Job(self.config.backend, job_kind, fn, p.mutates, _spec(p.y)))
        self._arguments(p.x, p.consts)  # an unpicklable context is reported at preparation

        def jacobian(x: Any, *consts: Any) -> Any:
            if n == 0 or m == 0:
                y = self.inner.evaluate(fn, x, consts)
                return y, self.native(np.zeros(y_shape + x_shape, dtype=_spec(p.y)[1]))
            spans = self._spans(n if by_columns else m)
            with self._running(sent, x, consts, spans) as results:
                done = results()
            dtype = done[0][1].dtype
            jac = np.empty((m, n), dtype=dtype)
            if by_columns:
                y = done[0][0]
                for s, (_, block) in zip(spans, done, strict=True):
                    jac[:, s.start : s.start + s.size] = block.reshape(m, s.size)
            else:
                y = np.empty(m, dtype=done[0][0].dtype)
                for s, (rows_y, block) in zip(spans, done, strict=True):
                    y[s.start : s.start + s.size] = rows_y
                    jac[s.start : s.start + s.size] = block.reshape(s.size, n)
            y = y.reshape(y_shape)
            return self.native(y), self.native(jac.reshape(y_shape + x_shape))

        return jacobian

    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        """``(x, *consts) -> (y, ∇f, H)`` (H alone with ``p.last_only``): H's columns as
        chunks of HVPs along the standard basis, which the workers make themselves; f(x)
        is evaluated on the caller while they compute."""
        x_shape = tuple(p.x.shape)
        n = math.prod(x_shape)
        sent = self._send(Job(self.config.backend, "hvp", fn, p.mutates, _spec(p.y)))
        self._arguments(p.x, p.consts)

        def hessian(x: Any, *consts: Any) -> Any:
            if n == 0:  # an empty x: an empty gradient and Hessian
                g = self.native(np.zeros(x_shape, dtype=_spec(p.x)[1]))
                h = self.native(np.zeros(x_shape + x_shape, dtype=_spec(p.x)[1]))
                return h if p.last_only else (self.inner.evaluate(fn, x, consts), g, h)
            spans = self._spans(n)
            with self._running(sent, x, consts, spans) as results:
                y = None if p.last_only else self.inner.evaluate(fn, x, consts)
                done = results()
            h = np.empty((n, n), dtype=done[0][1].dtype)
            for s, (_, block) in zip(spans, done, strict=True):
                h[s.start : s.start + s.size] = block.reshape(s.size, n)
            h = self.native(h.reshape(x_shape + x_shape))
            return h if p.last_only else (y, self.native(done[0][0]), h)

        return hessian

    def check(self, p: Problem) -> None:
        """Report at preparation a context value that cannot be sent to the workers."""
        self._arguments(p.x, p.consts)

    # -- chunks -------------------------------------------------------------------------
    def _size(self, batch: int) -> int:
        """Tangents per chunk: ``chunk_size``, or the batch split evenly over the workers."""
        return min(batch, self.config.chunk_size or -(-batch // self.engine.count()))

    def _spans(self, batch: int) -> list[Span]:
        """Chunks of the standard basis of one size, the last overlapping the one before."""
        size = self._size(batch)
        starts = list(range(0, batch - size + 1, size))
        if starts[-1] + size < batch:
            starts.append(batch - size)
        return [Span(start, size) for start in starts]

    def _send(self, job: Job) -> _Sent:
        payload = dumps(job, "f")
        return _Sent(hashlib.blake2b(payload, digest_size=16).hexdigest(), payload)

    def _untraced(self, *arrays: Any) -> None:
        """Raise UnsupportedError if an enclosing differentiation or compilation traces one
        of the arrays: it cannot follow the computation to other processes."""
        for a in arrays:
            name = kind_of(a)
            traced = None if name is None else kind(name).traced_by(a)
            if traced is not None:
                raise UnsupportedError(_TRACED.format(config=self.config, traced=traced))

    def _arguments(self, x: Any, consts: tuple[Any, ...]) -> bytes:
        """x and the contexts' values as the tasks carry them (arrays as NumPy)."""
        self._untraced(x, *consts)
        arrays = tuple(kind_of(c) is not None for c in consts)
        values = tuple(
            np.asarray(kind(kind_of(c) or "numpy").to_numpy(c)) if is_array else c
            for c, is_array in zip(consts, arrays, strict=True)
        )
        return dumps((np.asarray(self.to_numpy(x)), values, arrays), "the contexts' values")

    @contextmanager
    def _running(
        self, sent: _Sent, x: Any, consts: tuple[Any, ...], chunks: list[Any]
    ) -> Iterator[Callable[[], list[Any]]]:
        arguments = self._arguments(x, consts)
        tasks = [Task(sent.token, sent.payload, arguments, chunk) for chunk in chunks]
        with self.engine.running(run_chunk, tasks) as results:
            yield results


def _spec(a: Any) -> tuple[tuple[int, ...], str]:
    """An array's (shape, NumPy dtype name); also for JAX's shape-and-dtype templates."""
    return tuple(a.shape), str(a.dtype).removeprefix("torch.")
