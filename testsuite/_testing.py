"""test_differentiation: every backend × scenario checked against the reference and the
contract, case by case, as a report or as pytest items.

For each case (one backend, one scenario) the checks run the operator unprepared, as its
value variant, prepared (twice: a compiling backend must not run f's Python code again)
and with ``out=``. A backend that declares it cannot run a scenario (mutation on immutable
arrays) must refuse it with ``di.UnsupportedError``: the case is then "unsupported", and a
backend that declares a refusal but computes anyway fails.

The comparisons are in ``_checks``, the tolerances and declared refusals in
``_expectations``, the result types in ``_report``; their public names are importable from
here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optree

import diffinterface as di
from diffinterface._adapter import adapter_for
from diffinterface._backend_types import Backend, BackendLike, resolve_backend
from diffinterface.testsuite._checks import (
    Checker,
    CountingFunction,
    out_like,
    same_objects,
    takes_out,
    with_function,
)
from diffinterface.testsuite._expectations import (
    SECOND_ORDER_OPERATORS,
    default_tolerance,
    dense_backend,
    for_backend,
    unsupported_reason,
)
from diffinterface.testsuite._report import CaseResult, Report, backend_label
from diffinterface.testsuite._scenario import Scenario

__all__ = [
    "SECOND_ORDER_OPERATORS",
    "Case",
    "CaseResult",
    "Report",
    "backend_label",
    "cases",
    "default_tolerance",
    "test_differentiation",
    "unsupported_reason",
]


@dataclass(frozen=True)
class Case:
    """One backend on one scenario; ``run()`` gives a :class:`CaseResult`, ``check()``
    raises AssertionError on failure (for pytest: one parametrised item per case)."""

    backend: Backend | di.AutoSparse
    scenario: Scenario

    @property
    def id(self) -> str:
        return f"{backend_label(self.backend)} | {self.scenario.name}"

    def __str__(self) -> str:
        return self.id

    def run(
        self,
        *,
        correctness: bool = True,
        contract: bool = True,
        preparation: bool = True,
        rtol: float | None = None,
    ) -> CaseResult:
        """Run every variant of the case and collect the problems found."""
        reason = unsupported_reason(self.backend, self.scenario)
        if reason is not None:
            return self._expect_refusal(reason)
        sc = for_backend(self.scenario, self.backend)
        tol = rtol if rtol is not None else default_tolerance(self.backend, sc.dtype, sc.order)
        if rtol is None and isinstance(dense_backend(self.backend), di.AutoFiniteDiff):
            # Rounding error of a difference quotient scales with |f(x)|, not |f'(x)|.
            tol *= max(1.0, float(np.max(np.abs(np.asarray(sc.expected()[0], dtype=float)))))
        checker = Checker(sc, tol, correctness, contract)
        try:
            checker.compare("unprepared", sc.call(self.backend), sc.expected()[-1])
            values = sc.call(self.backend, "value")
            for i, (got, want) in enumerate(zip(values, sc.expected(), strict=True)):
                last = i == len(values) - 1
                part_tol = (
                    tol if last or rtol is not None else default_tolerance(self.backend, sc.dtype)
                )
                checker.compare(f"value variant output #{i}", got, want, part_tol)
            self._check_prepared(checker, preparation)
            if takes_out(optree.tree_leaves(sc.x)[0]):
                out = out_like(sc.call(self.backend))
                got = sc.call(self.backend, out=out)
                if contract and not same_objects(got, out):
                    checker.problems.append("out=: the result is not the out= array")
                checker.compare("out=", out, sc.expected()[-1])
        except Exception as e:  # a crash is a failure of this case, reported with its type
            checker.problems.append(f"raised {type(e).__name__}: {e}")
        status = "fail" if checker.problems else "pass"
        return CaseResult(self.backend, self.scenario, status, "; ".join(checker.problems))

    def check(self, **options: Any) -> CaseResult:
        """:meth:`run`, raising AssertionError with the message when the case fails."""
        result = self.run(**options)
        if result.status == "fail":
            raise AssertionError(str(result))
        return result

    def _check_prepared(self, checker: Checker, preparation: bool) -> None:
        sc = for_backend(self.scenario, self.backend)
        counted = CountingFunction(sc.f)
        counted_sc = with_function(sc, counted)
        prep = counted_sc.prepare(self.backend)
        calls = counted.calls
        for attempt in ("prepared call", "second prepared call"):
            checker.compare(attempt, counted_sc.call(self.backend, prep=prep), sc.expected()[-1])
        compiles = adapter_for(resolve_backend(self.backend)).compiles
        if preparation and compiles and counted.calls != calls:
            checker.problems.append(
                f"prepared calls ran f {counted.calls - calls} times: the backend retraced"
            )

    def _expect_refusal(self, reason: str) -> CaseResult:
        try:
            self.scenario.call(self.backend)
        except di.UnsupportedError as e:
            return CaseResult(self.backend, self.scenario, "unsupported", str(e))
        except Exception as e:
            return CaseResult(
                self.backend,
                self.scenario,
                "fail",
                f"declared unsupported ({reason}) but raised {type(e).__name__}: {e}",
            )
        return CaseResult(
            self.backend,
            self.scenario,
            "fail",
            f"declared unsupported ({reason}) but computed a result instead of refusing",
        )


def cases(backends: Iterable[BackendLike], scenarios: Iterable[Scenario]) -> list[Case]:
    """Every backend × scenario, e.g. for ``pytest.mark.parametrize("case", ..., ids=str)``."""
    scenario_list = list(scenarios)
    return [Case(resolve_backend(b), s) for b in backends for s in scenario_list]


def test_differentiation(
    backends: Sequence[BackendLike],
    scenarios: Iterable[Scenario],
    *,
    correctness: bool = True,
    contract: bool = True,
    preparation: bool = True,
    rtol: float | None = None,
    progress: Any = None,
) -> Report:
    """Check every backend on every scenario; returns a :class:`Report`.

    Args:
        backends: backend objects or names.
        scenarios: e.g. ``default_scenarios()``.
        correctness: compare results with the scenario's reference.
        contract: check array type, dtype, device, shape and that ``out=`` is written.
        preparation: check that prepared calls do not retrace (compiling backends).
        rtol: relative tolerance; default: :func:`default_tolerance` per backend and order.
        progress: called with each :class:`CaseResult` as it is done (e.g. print).
    """
    report = Report()
    for case in cases(backends, scenarios):
        result = case.run(
            correctness=correctness, contract=contract, preparation=preparation, rtol=rtol
        )
        report.results.append(result)
        if progress is not None:
            progress(result)
    return report


test_differentiation.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
