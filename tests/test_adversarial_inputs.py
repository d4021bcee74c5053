"""Inputs that new users pass and nobody on the project thought of: batches of scalar
tangents, NumPy scalars, dtypes a backend's arrays lack, torch's inference mode. Each case
either computes the right number (checked against an analytic reference) or raises a
diffinterface error that names the problem and the fix."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import diffinterface as di
from tests.conftest import BACKENDS, backend_id, to_numpy


def total_cube(x: Any) -> Any:
    return di.array_namespace(x).sum(x**3)


def cube(x: Any) -> Any:
    return x**3


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
@pytest.mark.parametrize("tangents", [(1.0, 2.0), (np.float64(1.0), np.float64(2.0))])
def test_a_tuple_of_scalar_tangents_is_a_batch(backend: Any, tangents: tuple[Any, ...]) -> None:
    x, rtol = 0.3, 1e-5
    # d/dx x³ = 3x², d²/dx² = 6x; a scalar-valued f of a vector x pulls back a scalar
    pushed = di.pushforward(cube, backend, x, tangents)
    assert [float(p) for p in pushed] == pytest.approx([3 * x**2, 6 * x**2], rel=rtol)
    if backend.name != "finitediff" or backend.method != "forward":
        hv = di.hvp(cube, backend, x, tangents)
        assert [float(h) for h in hv] == pytest.approx([6 * x, 12 * x], rel=1e-4)
    v = np.array([0.5, -1.0])
    pulled = di.pullback(total_cube, backend, v, tangents)
    for factor, p in zip((1.0, 2.0), pulled, strict=True):
        np.testing.assert_allclose(p, factor * 3 * v**2, rtol=rtol)


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_scalar_tangents_take_the_dtype_of_x(backend: Any) -> None:
    x = np.float32(0.5)
    pushed = di.pushforward(cube, backend, x, (1.0, 2.0))
    assert [p.dtype for p in pushed] == [np.float32, np.float32]
    assert float(pushed[1]) == pytest.approx(6 * 0.25, rel=1e-2)


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_a_numpy_scalar_keeps_its_dtype(backend: Any) -> None:
    d = di.derivative(cube, backend, np.float32(0.3))
    assert d.dtype == np.float32
    assert float(d) == pytest.approx(0.27, rel=1e-2)
    assert di.derivative(cube, backend, 0.3).dtype == np.float64  # a Python number


@pytest.mark.parametrize("name", ["jax", "autograd", "finitediff"])
def test_torch_bfloat16_on_a_numpy_based_backend_names_the_fix(name: str) -> None:
    x = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    with pytest.raises(di.InvalidArgumentError, match=r"bfloat16.*NumPy.*x\.to\(torch\.float"):
        di.gradient(total_cube, name, x)


@pytest.mark.parametrize("name", ["jax", "torch"])
def test_numpy_longdouble_on_a_backend_without_it_names_the_fix(name: str) -> None:
    x = np.array([1.0, 2.0], dtype=np.longdouble)
    with pytest.raises(di.InvalidArgumentError, match=r"float(96|128).*astype\(np\.float64\)"):
        di.gradient(total_cube, name, x)


@pytest.mark.parametrize("name", ["autograd", "finitediff"])
def test_numpy_longdouble_is_computed_where_numpy_computes(name: str) -> None:
    x = np.array([1.0, 2.0], dtype=np.longdouble)
    g = di.gradient(total_cube, name, x)
    assert g.dtype == np.longdouble
    np.testing.assert_allclose(g.astype(np.float64), 3 * np.array([1.0, 4.0]), rtol=1e-6)


# --------------------------------------------------------------------------------------
# torch's inference mode

TORCH = [b for b in BACKENDS if b.name == "torch"]
X = np.array([0.1, 0.2, 0.3])
OPERATORS = {  # operator → (call, analytic result at X) for f = Σx³ or x³
    "gradient": (lambda b, x: di.gradient(total_cube, b, x), 3 * X**2),
    "pullback": (lambda b, x: di.pullback(cube, b, x, np.ones(3)), 3 * X**2),
    "pushforward": (lambda b, x: di.pushforward(cube, b, x, np.ones(3)), 3 * X**2),
    "jacobian": (lambda b, x: di.jacobian(cube, b, x), np.diag(3 * X**2)),
    "hvp": (lambda b, x: di.hvp(total_cube, b, x, np.ones(3)), 6 * X),
    "hessian": (lambda b, x: di.hessian(total_cube, b, x), np.diag(6 * X)),
    "second_derivative": (lambda b, x: di.second_derivative(cube, b, 0.3), 1.8),
}


@pytest.mark.parametrize("backend", TORCH, ids=backend_id)
@pytest.mark.parametrize("operator", list(OPERATORS))
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_torch_inside_inference_mode_computes_derivatives(
    backend: Any, operator: str, kind: str
) -> None:
    call, expected = OPERATORS[operator]
    with torch.inference_mode():
        x = torch.from_numpy(X.copy()) if kind == "torch" else X
        result = call(backend, x)
    np.testing.assert_allclose(to_numpy(result), expected, rtol=1e-12)


@pytest.mark.parametrize("backend", TORCH, ids=backend_id)
@pytest.mark.parametrize("operator", list(OPERATORS))
def test_an_inference_tensor_outside_inference_mode_is_differentiated(
    backend: Any, operator: str
) -> None:
    with torch.inference_mode():
        x = torch.from_numpy(X.copy()) * 1.0  # an inference tensor
    assert x.is_inference()
    call, expected = OPERATORS[operator]
    np.testing.assert_allclose(to_numpy(call(backend, x)), expected, rtol=1e-12)
