"""The project's cross-backend tests, built on diffinterface.testsuite: every backend ×
every default and seed scenario (NumPy, torch and JAX inputs), each its own pytest item.

Adding a backend to conftest.BACKENDS or a scenario to a collection extends these tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import diffinterface as di
from diffinterface import testsuite as ts
from diffinterface.backends.finitediff import FiniteDiffAdapter
from tests.conftest import ALL_BACKENDS, assert_close

DEFAULT = ts.default_scenarios()
SCENARIOS = (
    DEFAULT
    + [s.with_kind("torch") for s in DEFAULT]
    + [s.with_kind("jax") for s in DEFAULT if s.y is None]  # y= cannot be a JAX array
)
# Seeds at reduced sizes: finite differences cost one f call per input (per pair, 2nd order).
SEEDS = ts.seed_scenarios(matrix=8, vector=50, features=20, samples=5, layer=20, rosenbrock_n=12)


@pytest.mark.parametrize("case", ts.cases(ALL_BACKENDS, SCENARIOS), ids=str)
def test_default_scenarios(case: ts.Case) -> None:
    case.check()


@pytest.mark.parametrize("case", ts.cases(ALL_BACKENDS, SEEDS), ids=str)
def test_seed_scenarios(case: ts.Case) -> None:
    case.check()


def test_unsupported_cases_are_verified_refusals() -> None:
    report = ts.test_differentiation(["jax", "autograd"], DEFAULT)
    refused = [r for r in report.results if r.status == "unsupported"]
    assert refused and all(r.scenario.mutates for r in refused)
    assert all("immutable" in r.message for r in refused)
    assert report.ok, str(report)


def test_a_planted_wrong_gradient_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = FiniteDiffAdapter.gradient

    def off_by_one_percent(self: Any, fn: Any, p: Any) -> Any:
        kernel = wrong(self, fn, p)
        return lambda x, *c, **k: (lambda y, g: (y, g * 1.01))(*kernel(x, *c, **k))

    monkeypatch.setattr(FiniteDiffAdapter, "gradient", off_by_one_percent)
    backend = di.AutoFiniteDiff(rel_step=1e-5)  # a fresh backend: no cached adapter state
    report = ts.test_differentiation([backend], [s for s in DEFAULT if s.operator == "gradient"])
    assert not report.ok
    failure = report.failures[0]
    assert failure.scenario.operator == "gradient"
    assert "max |got − expected|" in failure.message and "unprepared" in failure.message
    with pytest.raises(AssertionError, match="gradient energy"):
        ts.Case(backend, report.failures[0].scenario).check()


def test_a_backend_that_stops_refusing_mutation_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from diffinterface.backends.autograd import AutogradAdapter

    monkeypatch.setattr(AutogradAdapter, "supports_mutation", True)
    mutating = [s for s in DEFAULT if s.y is not None]
    monkeypatch.setattr(ts._testing, "unsupported_reason", lambda b, s: "declared for this test")
    report = ts.test_differentiation(["autograd"], mutating)
    assert not report.ok
    assert "declared unsupported" in report.failures[0].message


def test_float64_accuracy_under_jax_without_x64() -> None:
    import jax

    assert not jax.config.jax_enable_x64  # the default: JAX alone would compute in float32
    x = np.linspace(0.1, 1.0, 5)
    g = di.gradient(ts._collections.energy, "jax", x)
    assert g.dtype == np.float64
    assert_close(g, ts._collections.energy_derivatives(x)[1], 1e-13)


def test_benchmark_records(tmp_path: Any) -> None:
    csv = tmp_path / "bench.csv"
    table = ts.benchmark_differentiation(["jax", "autograd"], SEEDS[:2], budget=0.01, csv=csv)
    assert csv.read_text().count("\n") == 1 + len(table)
    records = table.to_dict("records")
    assert {r["backend"] for r in records} == {"jax", "autograd"}
    assert all(r["status"] == "ok" and r["prepared_s"] > 0 for r in records)
    for name in {r["scenario"] for r in records}:
        ratios = [r["ratio_to_fastest"] for r in records if r["scenario"] == name]
        assert min(ratios) == 1.0
