"""The example backend of docs/writing_a_backend.md passes the test suite on the default
scenarios, every operator included, and a misspelt kernel declaration fails at once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import diffinterface as di
from diffinterface import testsuite as ts
from diffinterface.extend import Adapter, kernel, register_backend
from examples.central_difference import AutoCentralDifference


def test_the_example_backend_passes_the_default_scenarios() -> None:
    scenarios = ts.default_scenarios(dtypes=(np.float64,))
    report = ts.test_differentiation([AutoCentralDifference()], scenarios, rtol=1e-5)
    assert report.ok, "\n".join(map(str, report.failures[:5]))
    assert len(report.results) > 30


def test_the_example_backend_is_known_by_its_name() -> None:
    register_backend(AutoCentralDifference, framework="numpy", extra="all")  # its module's line
    assert "central_difference" in di.available_backends()
    g = di.gradient(lambda x: di.array_namespace(x).sum(x**3), "central_difference", np.ones(3))
    np.testing.assert_allclose(g, 3.0, rtol=1e-6)


def test_a_misspelt_kernel_declaration_is_an_error() -> None:
    with pytest.raises(TypeError, match="'gradeint', which is not an operator"):

        class Misspelt(Adapter):
            @kernel("gradeint")
            def gradient(self, fn: Any, p: Any) -> Any:
                return fn
