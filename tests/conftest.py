"""Shared fixtures: the backends under test, array kinds, and tolerance rules."""

from __future__ import annotations

import os
from typing import Any

# TensorFlow reads these when it is first imported (by the TensorFlow backend, on first use):
# without them it prints its oneDNN and CPU-feature banners and a C++ warning for every
# failed op. An application sets them itself; diffinterface does not (see docs/backends.md).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import jax
import numpy as np
import pytest
import torch

from diffinterface.testsuite import backend_label, default_tolerance
from diffinterface.testsuite._collections import wave_derivatives
from diffinterface.testsuite._configurations import ALL_CONFIGURATIONS

#: every configuration, for the scenario suite (it hands a vectorised backend each
#: scenario's batch-accepting function)
ALL_BACKENDS = list(ALL_CONFIGURATIONS)
#: the configurations that call f on one point: the tests' own functions fit them
BACKENDS = [b for b in ALL_BACKENDS if not getattr(b, "vectorized", False)]
MUTATING_BACKENDS = [b for b in BACKENDS if b.name in ("torch", "finitediff")]
IMMUTABLE_BACKENDS = [b for b in BACKENDS if b.name in ("jax", "tensorflow", "autograd")]
#: backends whose prepared calls run compiled code or an expression graph, never f's Python code
COMPILING_BACKENDS = [b for b in BACKENDS if b.name in ("jax", "tensorflow", "casadi")]
KINDS = ["numpy", "torch", "jax"]
DTYPES = [np.float32, np.float64]


def backend_id(b: Any) -> str:
    return backend_label(b)


def as_kind(a: Any, kind: str) -> Any:
    """A NumPy array (or number) as an array of ``kind`` with the same dtype."""
    a = np.asarray(a)
    if kind == "torch":
        return torch.from_numpy(a.copy())
    if kind == "jax":
        if a.dtype == np.float64:
            with jax.enable_x64(True):
                return jax.device_put(a)
        return jax.device_put(a)
    return a


def to_numpy(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def tolerance(backend: Any, dtype: Any, order: int = 1) -> float:
    """The test suite's tolerance for this backend, dtype and derivative order."""
    return default_tolerance(backend, dtype, order)


def vector_jacobian(x: np.ndarray) -> np.ndarray:
    """Analytic Jacobian of the default scenarios' ``wave`` function."""
    return np.asarray(wave_derivatives(x)[1])


def assert_close(actual: Any, expected: Any, rtol: float) -> None:
    """Compare with a tolerance relative to the largest entry of ``expected``."""
    actual, expected = to_numpy(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    assert err <= rtol * scale, f"max error {err:.3g} > {rtol:.3g} × {scale:.3g}"


def assert_contract(result: Any, x: Any, shape: tuple[int, ...]) -> None:
    """Result in x's array type and dtype (a Python number counts as float64 NumPy)."""
    if isinstance(x, float):
        x = np.asarray(x)
    assert type(result) is type(x) or (
        isinstance(x, jax.Array) and isinstance(result, jax.Array)
    ), (type(result), type(x))
    assert result.dtype == x.dtype, (result.dtype, x.dtype)
    assert tuple(result.shape) == shape


@pytest.fixture(params=BACKENDS, ids=backend_id)
def backend(request: pytest.FixtureRequest) -> Any:
    return request.param


def shares_memory(a: Any, b: Any) -> bool:
    """Whether two results (NumPy arrays or torch tensors) may share memory."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return bool(a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr())
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.may_share_memory(a, b))
    return False


from diffinterface import _backend_registry as registry  # noqa: E402

#: the backends registered by diffinterface itself, before any test module is imported
_BUILT_IN = dict(registry._REGISTRY)


@pytest.fixture(autouse=True)
def _built_in_backends_only() -> Any:
    """Each test sees diffinterface's own backends only: a backend registered elsewhere
    (the example backend's module registers itself when imported) is forgotten."""
    registry._REGISTRY.clear()
    registry._REGISTRY.update(_BUILT_IN)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(_BUILT_IN)


@pytest.fixture(scope="session")
def process_pool() -> Any:
    """Two worker processes for di.Distributed, shared by the tests (spawned: the test
    process runs JAX, which must not be forked)."""
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    list(pool.map(time.sleep, [0.5, 0.5]))  # both processes started and idle
    yield pool
    pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="module")
def dask_client() -> Any:
    """A Dask cluster of two worker processes (one thread each) on this machine, for the
    tests of one module: its scheduler's thread in this process must not run on into other
    modules' tests (their allocation measurements count every thread)."""
    import logging

    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()
