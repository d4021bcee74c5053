"""di.Distributed on real engines: two spawned worker processes (ProcessPoolExecutor) and a
Dask LocalCluster of two worker processes, both started by the session's fixtures.

Every result is compared with the wrapped backend run serially: identical for finite
differences (each worker takes the same differences as the serial Jacobian, column by
column), equal to rounding for AD (XLA and torch may vectorise another batch size
differently), and within finite-difference accuracy for the Hessian of finite differences
(distributed, its columns are HVPs, serially second differences). The test suite's own
checks (prepared calls, value variants, out=) run too. Where the work ran is read from
files that f writes, one per evaluation, named after the process.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import optree
import pytest

import diffinterface as di
from diffinterface import testsuite as ts
from diffinterface.testsuite._collections import energy, wave
from diffinterface.testsuite._sparse_scenarios import tridiagonal
from tests.conftest import to_numpy

SCENARIOS = ts.default_scenarios()
#: the scenarios whose batch Distributed spreads for an AD backend, for vectors x (JAX
#: compiles each of them on each worker, which is the slow part)
SPREAD = [
    s
    for s in ts.default_scenarios(dtypes=(np.float64,))
    if (s.operator in ("jacobian", "hessian") or "batch" in s.name)
    and " 3 " in s.name
    and not s.mutates
]


def assert_same_as_serial(distributed: Any, scenarios: list[ts.Scenario]) -> None:
    """Each scenario's result with ``distributed`` against its wrapped backend's, serially."""
    inner = distributed.backend
    finite = isinstance(inner, di.AutoFiniteDiff)
    for sc in scenarios:
        if ts.unsupported_reason(inner, sc) is not None:
            continue
        got, want = sc.call(distributed), sc.call(inner)
        for g, w in zip(optree.tree_leaves(got), optree.tree_leaves(want), strict=True):
            g, w = to_numpy(g), to_numpy(w)
            assert g.dtype == w.dtype and g.shape == w.shape, sc.name
            if finite and sc.operator != "hessian":
                np.testing.assert_array_equal(g, w, err_msg=sc.name)
            else:
                rtol = ts.default_tolerance(inner, sc.dtype, sc.order) if finite else 0.0
                eps = float(np.finfo(sc.dtype).eps)
                scale = max(1.0, float(np.max(np.abs(w)))) if w.size else 1.0
                assert np.max(np.abs(g - w), initial=0.0) <= (rtol + 16 * eps) * scale, sc.name


def check_suite(distributed: Any, scenarios: list[ts.Scenario]) -> None:
    report = ts.test_differentiation([distributed], scenarios)
    failures = [str(r) for r in report.results if r.status == "fail"]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "inner",
    [
        di.AutoFiniteDiff(),
        di.AutoFiniteDiff(method="forward"),
        di.AutoFiniteDiff(method="complex"),
        di.AutoAutograd(),
        di.AutoTorch(),
        di.AutoTorch(mode="forward"),
    ],
    ids=ts.backend_label,
)
def test_default_scenarios_on_worker_processes(inner: Any, process_pool: Any) -> None:
    distributed = di.Distributed(inner, workers=process_pool)
    assert_same_as_serial(distributed, SCENARIOS)
    check_suite(distributed, SCENARIOS)


def test_default_scenarios_on_a_dask_cluster(dask_client: Any) -> None:
    """(float64 only: the same code as on worker processes, with Dask's slower round trip)"""
    distributed = di.Distributed(di.AutoFiniteDiff(), workers=dask_client)
    scenarios = ts.default_scenarios(dtypes=(np.float64,))
    assert_same_as_serial(distributed, scenarios)
    check_suite(distributed, scenarios)


@pytest.mark.parametrize(
    ("mode", "engine"), [("forward", "process_pool"), ("reverse", "dask_client")]
)
def test_jax_batches_on_workers(mode: str, engine: str, request: pytest.FixtureRequest) -> None:
    distributed = di.Distributed(di.AutoJAX(mode=mode), workers=request.getfixturevalue(engine))
    assert_same_as_serial(distributed, SPREAD)


def test_dask_executor_and_chunk_size(dask_client: Any) -> None:
    """A Client's executor is an engine too; chunk_size cuts the batch (the last chunk of
    the basis overlaps the one before)."""
    executor = dask_client.get_executor()
    for chunk_size in (None, 3):
        distributed = di.Distributed("finitediff", workers=executor, chunk_size=chunk_size)
        x = np.linspace(0.5, 2.0, 8)
        np.testing.assert_array_equal(
            di.jacobian(wave, distributed, x), di.jacobian(wave, "finitediff", x)
        )


# -- where the work runs ----------------------------------------------------------------


def recording(directory: Path, caller: int) -> Any:
    """A slow f that leaves one file per evaluation in ``directory``, named after the
    process ("caller" for the test's own)."""

    def f(x: Any) -> Any:
        import time

        who = "caller" if os.getpid() == caller else str(os.getpid())
        (directory / f"{who}-{uuid.uuid4().hex}").touch()
        time.sleep(0.02)
        return tridiagonal(x)

    return f


def evaluations(directory: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in directory.iterdir():
        who = path.name.split("-")[0]
        counts[who] = counts.get(who, 0) + 1
        path.unlink()
    return counts


@pytest.mark.parametrize("engine", ["process_pool", "dask_client"])
def test_the_columns_are_spread_over_the_workers(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    workers = request.getfixturevalue(engine)
    f = recording(tmp_path, os.getpid())
    x = np.linspace(0.5, 2.0, 8)
    distributed = di.Distributed(di.AutoFiniteDiff(), workers=workers)
    prep = di.prepare_jacobian(f, distributed, x)
    assert evaluations(tmp_path) == {"caller": 1}  # f(x)'s shape, at preparation
    jac = di.jacobian(f, distributed, x, prep=prep)
    counts = evaluations(tmp_path)
    # two chunks of 4 columns, each f(x) and 2 evaluations per column, one per worker
    assert "caller" not in counts and sorted(counts.values()) == [9, 9], counts
    np.testing.assert_array_equal(jac, di.jacobian(f, "finitediff", x))


def test_a_single_pushforward_runs_on_the_caller(process_pool: Any, tmp_path: Path) -> None:
    f = recording(tmp_path, os.getpid())
    x = np.linspace(0.5, 2.0, 4)
    distributed = di.Distributed(di.AutoFiniteDiff(), workers=process_pool)
    di.pushforward(f, distributed, x, np.ones(4))
    assert evaluations(tmp_path) == {"caller": 4}  # f(x) at preparation, then 3 for J·t
    di.pushforward(f, distributed, x, (np.ones(4), np.zeros(4), x))  # a batch: spread
    counts = evaluations(tmp_path)
    # chunks (1, 0) and (x, 0): f(x) and 2 evaluations per nonzero tangent in each
    assert counts.pop("caller") == 1 and sum(counts.values()) == 3 + 3, counts


def test_autosparse_colour_groups_are_spread(process_pool: Any, tmp_path: Path) -> None:
    f = recording(tmp_path, os.getpid())
    x = np.linspace(0.5, 2.0, 12)
    sparse = di.AutoSparse(di.Distributed(di.AutoFiniteDiff(), workers=process_pool))
    prep = di.prepare_jacobian(f, sparse, x)
    evaluations(tmp_path)
    jac = di.jacobian(f, sparse, x, prep=prep)
    counts = evaluations(tmp_path)
    assert "caller" not in counts and len(counts) == 2, counts  # 3 colours over 2 workers
    want = di.jacobian(f, di.AutoSparse(di.AutoFiniteDiff()), x)
    np.testing.assert_array_equal(jac.toarray(), want.toarray())
    hess = di.hessian(energy, di.AutoSparse(di.Distributed("autograd", workers=process_pool)), x)
    np.testing.assert_allclose(hess.toarray(), di.hessian(energy, "autograd", x), rtol=1e-13)


def test_each_worker_prepares_once_per_chunk_shape(dask_client: Any) -> None:
    def kernels() -> list[Any]:
        from diffinterface._distributed import worker

        return list(worker._kernels)

    before = dask_client.run(kernels)
    distributed = di.Distributed(di.AutoJAX(mode="forward"), workers=dask_client)
    x = np.linspace(0.5, 2.0, 6)
    prep = di.prepare_jacobian(wave, distributed, x)
    for _ in range(3):  # 6 chunks of 3 columns, on 2 workers
        di.jacobian(wave, distributed, x, prep=prep)
    new = {w: set(keys) - set(before.get(w, [])) for w, keys in dask_client.run(kernels).items()}
    assert sum(map(len, new.values())) >= 1 and all(len(k) <= 1 for k in new.values()), new
