"""di.Distributed when things go wrong: an exception in f on a worker, a worker process
killed in the middle of a Jacobian, f or a context that cannot be pickled, and
configurations that cannot work. Results are either right or an error: never a partial
matrix."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import threading
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import diffinterface as di
from diffinterface.testsuite._collections import wave

X = np.linspace(0.5, 2.0, 8)


def failing_on_workers(caller: int) -> Any:
    """f that works on the caller (where preparation evaluates it) and raises on a worker."""

    def f(x: Any) -> Any:
        if os.getpid() != caller:
            raise KeyError(f"no table for x[0]={float(x[0]):.2f} in process {os.getpid()}")
        return wave(x)

    return f


def killing_a_worker_once(claim: Path, caller: int) -> Any:
    """f whose first evaluation on a worker kills that worker's process (SIGKILL), once:
    the worker that removes ``claim`` dies."""

    def f(x: Any) -> Any:
        if os.getpid() != caller:
            try:
                claim.unlink()
            except FileNotFoundError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return wave(x)

    return f


@pytest.mark.parametrize("engine", ["process_pool", "dask_client"])
def test_an_exception_in_f_on_a_worker_reaches_the_caller(
    engine: str, request: pytest.FixtureRequest
) -> None:
    distributed = di.Distributed("finitediff", workers=request.getfixturevalue(engine))
    f = failing_on_workers(os.getpid())
    with pytest.raises(KeyError, match="no table for x") as info:
        di.jacobian(f, distributed, X)
    assert type(info.value) is KeyError  # f's own exception, not a wrapper
    notes = getattr(info.value, "__notes__", [])
    # the chunk whose failure arrived first (with Dask, not necessarily the first one)
    assert any(re.search(r"in chunk [12] of 2", n) for n in notes), notes
    assert any("jacobian" in n and "Distributed" in n for n in notes), notes


def test_dask_recomputes_the_chunk_of_a_killed_worker(dask_client: Any, tmp_path: Path) -> None:
    claim = tmp_path / "kill-me"
    claim.touch()
    f = killing_a_worker_once(claim, os.getpid())
    jac = di.jacobian(f, di.Distributed("finitediff", workers=dask_client), X)
    assert not claim.exists()  # a worker did die
    np.testing.assert_array_equal(jac, di.jacobian(wave, "finitediff", X))


def test_a_killed_pool_worker_is_a_clear_error(tmp_path: Path) -> None:
    claim = tmp_path / "kill-me"
    claim.touch()
    f = killing_a_worker_once(claim, os.getpid())
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        distributed = di.Distributed("finitediff", workers=pool)
        with pytest.raises(di.WorkerError, match=r"died during the batch: chunk [12] of 2") as info:
            di.jacobian(f, distributed, X)
    assert "make a new executor" in str(info.value)
    assert not claim.exists()


def test_an_unpicklable_f_is_named_at_preparation() -> None:
    lock = threading.Lock()

    def model(x: Any) -> Any:
        with lock:
            return wave(x)

    pool = _NeverUsed()
    with pytest.raises(di.InvalidArgumentError, match="cloudpickle") as info:
        di.prepare_jacobian(model, di.Distributed("finitediff", workers=pool), X)
    message = str(info.value)
    assert "_thread.lock" in message and "'lock' captured by" in message and "model" in message
    assert not pool.submitted


def test_an_unpicklable_context_is_named_at_preparation() -> None:
    def scaled(x: Any, c: Any) -> Any:
        return wave(x) * c["scale"]

    pool = _NeverUsed()
    context = di.Constant({"scale": 2.0, "log": open(os.devnull, "w")})  # noqa: SIM115
    with context.value["log"], pytest.raises(di.InvalidArgumentError) as info:
        di.prepare_jacobian(scaled, di.Distributed("finitediff", workers=pool), X, context)
    assert "the contexts' values" in str(info.value) and "['log']" in str(info.value)
    assert not pool.submitted


class _NeverUsed(Executor):
    """An executor that records submissions (none are expected)."""

    _max_workers = 2

    def __init__(self) -> None:
        self.submitted: list[Any] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted.append(fn)
        raise AssertionError("nothing should be sent")


class _Sizeless(Executor):
    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        raise AssertionError("not used")


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({}, "exactly one of workers= .* and devices="),
        ({"workers": _NeverUsed(), "devices": ["cpu"]}, "exactly one"),
        ({"workers": 4}, r"takes a concurrent.futures.Executor"),
        ({"workers": _Sizeless()}, "pass chunk_size="),
        ({"workers": _NeverUsed(), "chunk_size": 0}, "positive int"),
        ({"devices": []}, "non-empty sequence of JAX devices"),
    ],
)
def test_configuration_errors(arguments: dict[str, Any], match: str) -> None:
    backend = di.AutoJAX() if "devices" in arguments and "workers" not in arguments else "torch"
    with pytest.raises(di.InvalidArgumentError, match=match):
        di.Distributed(backend, **arguments)


@pytest.mark.parametrize(
    ("backend", "match"),
    [
        (di.AutoSparse("finitediff"), r"di.AutoSparse\(di.Distributed"),
        (di.SecondOrder("jax", "jax"), "Hessians need no SecondOrder"),
        ("nonsense", "Unknown backend name"),
    ],
)
def test_wrapped_backend_errors(backend: Any, match: str) -> None:
    with pytest.raises(di.InvalidArgumentError, match=match):
        di.Distributed(backend, workers=_NeverUsed())


def test_workers_cannot_run_inside_a_jax_transformation() -> None:
    import jax

    distributed = di.Distributed("jax", workers=_NeverUsed())
    with pytest.raises(di.UnsupportedError, match="cannot run where a JAX transformation"):
        jax.jit(lambda x: di.jacobian(wave, distributed, x))(X)


def test_secondorder_does_not_take_it() -> None:
    with pytest.raises(di.InvalidArgumentError, match="give the first-order backend to"):
        di.SecondOrder(di.Distributed("finitediff", workers=_NeverUsed()), "jax")


def test_devices_need_jax() -> None:
    import jax

    with pytest.raises(di.InvalidArgumentError, match=r"must be di\.AutoJAX"):
        di.Distributed("torch", devices=jax.devices())


def test_configuration_is_a_frozen_hashable_value() -> None:
    pool = _NeverUsed()
    a, b = di.Distributed("finitediff", workers=pool), di.Distributed("finitediff", workers=pool)
    assert a == b and hash(a) == hash(b) and a.mode is None
    assert repr(a) == "Distributed(AutoFiniteDiff(method='central'), workers=_NeverUsed)"
    forward = di.Distributed(di.AutoTorch(mode="forward"), workers=pool, chunk_size=4)
    assert forward.mode == "forward" and repr(forward).endswith("chunk_size=4)")
    with pytest.raises(AttributeError):
        a.chunk_size = 3  # type: ignore[misc]
