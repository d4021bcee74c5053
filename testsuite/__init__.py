"""The cross-backend test and benchmark suite: scenarios, test_differentiation,
benchmark_differentiation (the counterpart of DifferentiationInterfaceTest.jl).

Example:
    >>> from diffinterface import testsuite as ts
    >>> report = ts.test_differentiation(["torch", "finitediff"], ts.default_scenarios())
    >>> report.ok
    True

Run ``python -m diffinterface.testsuite`` for the full cross-backend run with tables and a
plot.
"""

from diffinterface.testsuite._benchmark import benchmark_differentiation
from diffinterface.testsuite._collections import default_scenarios
from diffinterface.testsuite._scenario import OPERATORS, Scenario
from diffinterface.testsuite._seeds import seed_scenarios
from diffinterface.testsuite._sparse_scenarios import sparse_scenarios
from diffinterface.testsuite._testing import (
    SECOND_ORDER_OPERATORS,
    Case,
    CaseResult,
    Report,
    backend_label,
    cases,
    default_tolerance,
    test_differentiation,
    unsupported_reason,
)

__all__ = [
    "OPERATORS",
    "SECOND_ORDER_OPERATORS",
    "Case",
    "CaseResult",
    "Report",
    "Scenario",
    "backend_label",
    "benchmark_differentiation",
    "cases",
    "default_scenarios",
    "default_tolerance",
    "seed_scenarios",
    "sparse_scenarios",
    "test_differentiation",
    "unsupported_reason",
]
