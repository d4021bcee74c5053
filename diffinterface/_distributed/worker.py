"""What runs on a worker of :class:`~diffinterface.Distributed`: one chunk of a batch,
computed by the wrapped backend.

A :class:`Task` carries the job (cloudpickled once, at preparation), the call's arguments
(pickled once per call) and its chunk: stacked tangents, or a :class:`Span` of the standard
basis (Jacobian columns or rows, Hessian columns) that the worker makes itself. Each worker
process keeps the kernels it built, keyed by the job's token and the signatures of its
arguments, so the wrapped backend is prepared (and compiled) once per chunk shape.
"""

from __future__ import annotations

import math
import pickle
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from diffinterface._adapter import Adapter, Fn, Kernel, Problem, adapter_for
from diffinterface._arrays import kind, kind_of
from diffinterface._backend_types import Backend
from diffinterface._conversions import converter
from diffinterface._derived import HVP, JACOBIAN
from diffinterface._namespace import array_namespace

__all__ = ["Job", "Span", "Task", "hvp_kernel", "jacobian_kernel", "run_chunk"]

JobKind = Literal["pushforward", "pullback", "hvp", "columns", "rows"]
_KEPT = 64  # kernels (and jobs) a worker process keeps


@dataclass(frozen=True)
class Job:
    """What the workers compute for one preparation: ``kind`` of products of ``fn`` by the
    wrapped ``backend``. ``"pushforward"``, ``"pullback"``, ``"hvp"``: products with the
    chunk's tangents; ``"columns"``, ``"rows"``: a block of the Jacobian. ``y`` is f's
    output as (shape, dtype name), for the jobs that need it."""

    backend: Backend
    kind: JobKind
    fn: Fn
    mutates: bool
    y: tuple[tuple[int, ...], str] | None = None


@dataclass(frozen=True)
class Span:
    """The chunk ``start, ..., start + size - 1`` of the standard basis."""

    start: int
    size: int


@dataclass(frozen=True)
class Task:
    """One chunk: the job (its token and cloudpickled payload), the call's arguments as
    pickled ``(x, consts, which consts are arrays)`` of NumPy arrays, and the chunk."""

    token: str
    payload: bytes
    arguments: bytes
    chunk: np.ndarray | Span


_lock = threading.Lock()
_jobs: OrderedDict[str, Job] = OrderedDict()
_kernels: OrderedDict[tuple[Any, ...], Kernel] = OrderedDict()


def run_chunk(task: Task) -> tuple[np.ndarray, np.ndarray]:
    """Compute one chunk on this worker: ``(first output, products)`` as NumPy arrays, the
    products stacked along the chunk (Jacobian columns along the last axis)."""
    job = _job(task)
    adapter = adapter_for(job.backend)
    native = converter("numpy", adapter.native_kind)
    x, consts, arrays = pickle.loads(task.arguments)
    x = native(x)
    consts = tuple(native(c) if is_array else c for c, is_array in zip(consts, arrays, strict=True))
    if isinstance(task.chunk, Span):
        span = task.chunk
        if job.kind in ("columns", "rows"):
            chunk = native(np.asarray(span.start, dtype=np.int32))
        else:  # HVPs along basis vectors: the worker makes them
            n = math.prod(x.shape)
            basis = np.eye(span.size, n, span.start, dtype=np.dtype(_dtype_name(x)))
            chunk = native(basis.reshape((span.size, *x.shape)))
        signature: Any = ("span", span.size)
    else:
        chunk = native(task.chunk)
        signature = ("tangents", task.chunk.shape)
    key = (task.token, signature, _signature(x), tuple(_signature(c) for c in consts))
    with _lock:
        kernel = _kernels.get(key)
        if kernel is None:
            kernel = _build(adapter, job, x, chunk, consts, signature)
        _keep(_kernels, key, kernel)
    first, products = kernel(x, chunk, *consts)
    to_numpy = kind(adapter.native_kind).to_numpy
    return np.asarray(to_numpy(first)), np.asarray(to_numpy(products))


def _job(task: Task) -> Job:
    with _lock:
        job = _jobs.get(task.token)
        if job is None:
            job = pickle.loads(task.payload)
        _keep(_jobs, task.token, job)
    return job


def _keep(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    """Keep ``value`` as the most recently used entry, forgetting the least recently used
    ones beyond ``_KEPT``."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _KEPT:
        cache.popitem(last=False)


def _signature(a: Any) -> Any:
    return (tuple(a.shape), str(a.dtype)) if kind_of(a) is not None else type(a).__name__


def _dtype_name(a: Any) -> str:
    """The NumPy name of an array's dtype (torch's too)."""
    return str(a.dtype).removeprefix("torch.")


def _build(
    adapter: Adapter, job: Job, x: Any, chunk: Any, consts: tuple[Any, ...], signature: Any
) -> Kernel:
    """The job's kernel for this chunk shape, compiled by the wrapped backend."""
    y = None
    if job.y is not None:
        shape, dtype = job.y
        y = converter("numpy", adapter.native_kind)(np.zeros(shape, dtype=dtype))
    if job.kind == "pushforward":
        raw = adapter.pushforward_batch(job.fn, job.mutates)
    elif job.kind == "pullback":
        raw = adapter.pullback_batch(job.fn, job.mutates)
    elif job.kind == "hvp":
        raw = hvp_kernel(adapter, job.fn, Problem(x, y, len(chunk), job.mutates))
    else:
        size = signature[1]
        block = _columns if job.kind == "columns" else _rows
        raw = block(adapter, job.fn, Problem(x, y, None, job.mutates), size)
    return adapter.compile(raw, (x, chunk, *consts))


def hvp_kernel(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """``(x, t, *consts) -> (∇f, H·t)``: the adapter's own HVP kernel if it declares one,
    else the generic one."""
    own = adapter.declared("hvp", False)
    return getattr(adapter, own.method)(fn, p) if own is not None else HVP.build(adapter, fn, p)


def jacobian_kernel(adapter: Adapter, fn: Fn, p: Problem) -> Kernel:
    """``(x, *consts) -> (y, J)``: the adapter's own Jacobian kernel if it declares one,
    else the generic one."""
    own = adapter.declared("jacobian", False)
    if own is not None:
        return getattr(adapter, own.method)(fn, p)
    return JACOBIAN.build(adapter, fn, p)


def _columns(adapter: Adapter, fn: Fn, p: Problem, size: int) -> Kernel:
    """``(x, start, *consts) -> (y, J[..., start:start + size])``: the wrapped backend's
    Jacobian of f restricted to those entries of x, the others held at x's values (the
    same differences or products as in the whole Jacobian, column by column)."""
    shape = tuple(p.x.shape)
    n = math.prod(shape)

    def restricted(z: Any, x: Any, start: Any, *consts: Any) -> Any:
        xp = array_namespace(z)
        at = xp.arange(n) - start  # entry i of x is entry i - start of z, if in the chunk
        picks = xp.where((at >= 0) & (at < size), at + n, xp.arange(n))
        v = xp.concat([xp.reshape(x, (-1,)), z])[picks]  # exactly x's and z's values
        return fn(xp.reshape(v, shape), *consts)

    z = p.x.reshape(-1)[:size]
    jac = jacobian_kernel(adapter, restricted, replace(p, x=z))

    def columns(x: Any, start: Any, *consts: Any) -> Any:
        xp = array_namespace(x)
        z = xp.reshape(x, (-1,))[start + xp.arange(size)]
        return jac(z, x, start, *consts)

    return columns


def _rows(adapter: Adapter, fn: Fn, p: Problem, size: int) -> Kernel:
    """``(x, start, *consts) -> (y[start:start + size], J[start:start + size])``, flat
    rows: the wrapped backend's Jacobian of those entries of f(x)."""

    def restricted(x: Any, start: Any, *consts: Any) -> Any:
        xp = array_namespace(x)
        return xp.reshape(fn(x, *consts), (-1,))[start + xp.arange(size)]

    y = p.y.reshape(-1)[:size]
    return jacobian_kernel(adapter, restricted, replace(p, y=y))
