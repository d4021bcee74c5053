"""The hand-written native counterparts of the benchmark agree with diffinterface.

Each candidate of ``native_candidates`` computes the seed scenario's operator with the
framework's own API; its result must match both the scenario's analytic reference and
diffinterface's prepared result on the same inputs. A wrong native implementation or a
wrong diffinterface kernel fails here. No timing is asserted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optree
import pytest

import diffinterface as di
from diffinterface.testsuite import benchmark_differentiation, default_tolerance, seed_scenarios
from diffinterface.testsuite._expectations import unsupported_reason
from diffinterface.testsuite._native import in_native_kind, native_candidates, to_numpy
from diffinterface.testsuite._seeds import OVERHEAD_SCENARIO

from .conftest import BACKENDS

SEEDS = seed_scenarios(matrix=4, vector=20, features=12, samples=5, layer=6, rosenbrock_n=8)


def _close(actual: Any, expected: Any, rtol: float) -> None:
    for a, e in zip(optree.tree_leaves(actual), optree.tree_leaves(expected), strict=True):
        scale = max(float(np.max(np.abs(e))), 1e-300)
        np.testing.assert_allclose(np.asarray(a), e, rtol=0, atol=rtol * scale)


@pytest.mark.parametrize("backend", BACKENDS, ids=repr)
@pytest.mark.parametrize("sc", SEEDS, ids=lambda s: s.name)
def test_native_agrees_with_reference_and_diffinterface(backend: Any, sc: Any) -> None:
    candidates = native_candidates(backend, sc)
    if unsupported_reason(backend, sc) is not None:  # declared: CasADi and a 3-d x
        assert candidates == []
        with pytest.raises(di.UnsupportedError):
            sc.call(backend)
        return
    if getattr(backend, "step", None) == "adaptive":  # compared with scipy.differentiate
        assert candidates == []  # in benchmarks/finite_difference_accuracy.py instead
        return
    assert candidates, f"no native counterpart of {sc.name} for {backend!r}"
    scn = in_native_kind(sc, backend)
    ours = to_numpy(scn.call(backend, prep=scn.prepare(backend)))
    rtol = default_tolerance(backend, sc.dtype, sc.order)
    if isinstance(backend, di.AutoFiniteDiff):
        rtol *= 10  # scipy's steps go the other way for negative x: another rounding error
    for native in candidates:
        result = to_numpy(native.call())
        _close(result, sc.expected()[-1], rtol)
        _close(result, ours, 2 * rtol)


def test_no_native_counterpart_for_what_it_does_not_cover() -> None:
    sc = SEEDS[0]
    assert native_candidates(di.SecondOrder(di.AutoJAX(), di.AutoJAX()), sc) == []
    assert native_candidates(di.AutoSparse(di.AutoJAX()), sc) == []


def test_benchmark_records_native_comparison() -> None:
    overhead = [s for s in SEEDS if s.name == OVERHEAD_SCENARIO]
    records = benchmark_differentiation(
        [di.AutoTorch(), di.AutoFiniteDiff()], overhead, budget=0.005, unprepared=False
    )
    rows = records.to_dict("records") if hasattr(records, "to_dict") else records
    # the faster of torch's two candidates, whichever it was on this run
    assert rows[0]["native_method"] in ("torch.autograd.grad eager", "torch.func.grad(f)")
    assert rows[1]["native_method"] == "scipy approx_derivative(3-point)"
    for r in rows:
        assert r["native_s"] > 0 and r["paired_s"] > 0 and r["native_ratio"] > 0
        assert r["pairs"] >= 1
