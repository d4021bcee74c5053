"""Property tests: random model functions, shapes, layouts, dtypes and array types; every
backend must agree with a high-accuracy finite-difference reference and, for AD backends,
with each other — for every operator, through its prepared ``value_and_…`` form.

Inputs cover 0-d and empty arrays, C and Fortran order, strided, transposed and reversed
views (NumPy and torch), float32 and float64, and NumPy, torch and JAX arrays. The number
of examples comes from the Hypothesis profile (``conftest.py``): print them with
``pytest tests/reliability --hypothesis-show-statistics``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import diffinterface as di
from diffinterface._arrays import kind_of
from tests.conftest import BACKENDS, as_kind, assert_close, assert_contract, to_numpy, tolerance
from tests.reliability._models import OPS, Model, reference_jacobian, reference_second

SECOND_ORDER_BACKENDS = [
    *BACKENDS,
    di.SecondOrder(di.AutoJAX(mode="forward"), di.AutoJAX()),
    di.SecondOrder(di.AutoFiniteDiff(), di.AutoTorch()),
]
SHAPES = [(), (0,), (1,), (4,), (2, 3), (3, 2), (2, 0)]
LAYOUTS = ["C", "F", "strided", "transposed", "reversed"]
#: the reference's own error, added to each backend's tolerance (float64; see _models.py)
REFERENCE_ERROR = {1: 1e-7, 2: 1e-5}


# --------------------------------------------------------------------------------------
# strategies


def _laid_out(values: np.ndarray, layout: str) -> np.ndarray:
    """``values`` copied into an array with the given memory layout (a view where asked)."""
    shape, dtype = values.shape, values.dtype
    if layout == "F":
        out = np.empty(shape, dtype, order="F")
    elif layout == "strided" and values.ndim:
        out = np.empty((*shape[:-1], 2 * shape[-1]), dtype)[..., ::2]
    elif layout == "transposed" and values.ndim:
        out = np.empty(shape[::-1], dtype).T
    elif layout == "reversed" and values.ndim:
        out = np.empty(shape, dtype)[::-1]
    else:
        out = np.empty(shape, dtype)
    out[...] = values
    return out


def _as_input(values: np.ndarray, layout: str, kind: str) -> Any:
    a = _laid_out(values, layout)
    if kind == "torch":
        if any(s < 0 for s in a.strides):
            return torch.from_numpy(a.copy())  # torch has no negative strides
        return torch.from_numpy(a)  # keeps Fortran, strided and transposed layouts
    return as_kind(a, kind)


@st.composite
def points(draw: st.DrawFn, shape: tuple[int, ...] | None = None, n: int = 1) -> Any:
    """(numpy float64 values, the same as the input array(s) under test): x, then n-1
    tangents of x's shape, dtype, kind and layout."""
    shape = draw(st.sampled_from(SHAPES)) if shape is None else shape
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    kind = draw(st.sampled_from(["numpy", "torch", "jax"]))
    layout = draw(st.sampled_from(LAYOUTS))
    elements = st.floats(-1.5, 1.5, width=32)
    out = []
    for _ in range(n):
        values = draw(hnp.arrays(dtype, shape, elements=elements))
        out.append((values.astype(np.float64), _as_input(values, layout, kind)))
    return out


models = st.builds(
    Model,
    ops=st.lists(st.sampled_from(sorted(OPS)), min_size=1, max_size=4).map(tuple),
    flatten=st.booleans(),
    out_shape=st.sampled_from([(), (0,), (3,), (2, 2)]),
)


# --------------------------------------------------------------------------------------
# checks


def _check(backend: Any, got: Any, expected: np.ndarray, x: Any, order: int) -> None:
    dtype = np.dtype(str(x.dtype).removeprefix("torch."))
    rtol = tolerance(backend, dtype, order) + REFERENCE_ERROR[order]
    assert_contract(got, x, expected.shape)
    assert_close(got, expected, rtol)


def _agree(results: dict[Any, Any], x: Any, order: int) -> None:
    """AD backends agree with each other to their own (rounding) tolerance."""
    ad = {b: r for b, r in results.items() if not _uses_differences(b)}
    first, *others = ad
    dtype = np.dtype(str(x.dtype).removeprefix("torch."))
    for b in others:
        rtol = max(tolerance(b, dtype, order), tolerance(first, dtype, order))
        assert_close(ad[b], to_numpy(ad[first]), rtol)


def _uses_differences(b: Any) -> bool:
    parts = (b.outer, b.inner) if isinstance(b, di.SecondOrder) else (b,)
    return any(isinstance(p, di.AutoFiniteDiff) for p in parts)


def _each_backend(backends: list[Any], run: Callable[[Any], Any]) -> dict[Any, Any]:
    """``{backend: run(backend)}``; a failure names the backend."""
    results = {}
    for b in backends:
        try:
            results[b] = run(b)
        except Exception as e:
            e.add_note(f"backend: {b!r}")
            raise
    return results


def _batch(tangents: list[Any], batched: bool) -> Any:
    return tuple(tangents) if batched else tangents[0]


def _stacked(results: Any, batched: bool) -> Any:
    if not batched:
        return results
    return np.stack([to_numpy(r) for r in results])


# --------------------------------------------------------------------------------------
# one test per operator

_tiny = np.full((), 5.79e-43, np.float32)  # subnormal
_subnormal = (_tiny.astype(np.float64), _tiny)


@given(model=models, pts=points(n=3), batched=st.booleans())
def test_pushforward(model: Model, pts: Any, batched: bool) -> None:
    (xv, x), *tangents = pts
    ts = [t for _, t in tangents[: 2 if batched else 1]]
    jac = reference_jacobian(model.vector, xv)
    m = math.prod(jac.shape[: jac.ndim - xv.ndim])
    expected = [
        (jac.reshape(m, xv.size) @ tv.reshape(-1)).reshape(jac.shape[: jac.ndim - xv.ndim])
        for tv, _ in tangents[: len(ts)]
    ]
    value = np.asarray(model.vector(xv))

    def run(b: Any) -> Any:
        prep = di.prepare_pushforward(model.vector, b, x, _batch(ts, batched))
        y, ty = di.value_and_pushforward(model.vector, b, x, _batch(ts, batched), prep=prep)
        _check(b, y, value, x, 1)
        for got, exp in zip(ty if batched else (ty,), expected, strict=True):
            _check(b, got, exp, x, 1)
        return _stacked(ty, batched)

    _agree(_each_backend(BACKENDS, run), x, 1)


@example(model=Model(("affine",)), pts=[(np.zeros(0), np.zeros(0))], seed=0, batched=True).via(
    "an empty batched pullback under finite differences failed to reshape"
)
@given(model=models, pts=points(n=1), seed=st.integers(0, 2**16), batched=st.booleans())
def test_pullback(model: Model, pts: Any, seed: int, batched: bool) -> None:
    ((xv, x),) = pts
    jac = reference_jacobian(model.vector, xv)
    value = np.asarray(model.vector(xv))
    rng = np.random.default_rng(seed)
    dtype = np.dtype(str(x.dtype).removeprefix("torch."))
    us = [rng.uniform(-1, 1, value.shape).astype(dtype) for _ in range(2 if batched else 1)]
    expected = [
        (u.astype(np.float64).reshape(-1) @ jac.reshape(value.size, xv.size)).reshape(xv.shape)
        for u in us
    ]
    ty = _batch([as_kind(u, kind_of(x) or "numpy") for u in us], batched)

    def run(b: Any) -> Any:
        prep = di.prepare_pullback(model.vector, b, x, ty)
        y, tx = di.value_and_pullback(model.vector, b, x, ty, prep=prep)
        _check(b, y, value, x, 1)
        for got, exp in zip(tx if batched else (tx,), expected, strict=True):
            _check(b, got, exp, x, 1)
        return _stacked(tx, batched)

    _agree(_each_backend(BACKENDS, run), x, 1)


def _value_and_first_derivative(operator: str, f: Any, pts: Any) -> None:
    """value_and_<operator> of f on every backend, against f and the reference Jacobian."""
    ((xv, x),) = pts
    value = np.asarray(f(xv))
    expected = reference_jacobian(f, xv)

    def run(b: Any) -> Any:
        prep = getattr(di, f"prepare_{operator}")(f, b, x)
        y, d = getattr(di, f"value_and_{operator}")(f, b, x, prep=prep)
        _check(b, y, value, x, 1)
        _check(b, d, expected, x, 1)
        return d

    _agree(_each_backend(BACKENDS, run), x, 1)


@given(model=models, pts=points(shape=()))
def test_derivative(model: Model, pts: Any) -> None:
    _value_and_first_derivative("derivative", model.of_scalar, pts)


@given(model=models, pts=points(n=1))
def test_gradient(model: Model, pts: Any) -> None:
    _value_and_first_derivative("gradient", model.scalar, pts)


@given(model=models, pts=points(n=1))
def test_jacobian(model: Model, pts: Any) -> None:
    _value_and_first_derivative("jacobian", model.vector, pts)


@given(model=models, pts=points(shape=()))
def test_second_derivative(model: Model, pts: Any) -> None:
    ((xv, x),) = pts
    value = np.asarray(model.of_scalar(xv))
    first = reference_jacobian(model.of_scalar, xv)
    expected = reference_second(model.of_scalar, xv)

    def run(b: Any) -> Any:
        prep = di.prepare_second_derivative(model.of_scalar, b, x)
        y, d, dd = di.value_derivative_and_second_derivative(model.of_scalar, b, x, prep=prep)
        _check(b, y, value, x, 1)
        _check(b, d, first, x, 1)
        _check(b, dd, expected, x, 2)
        return dd

    _agree(_each_backend(SECOND_ORDER_BACKENDS, run), x, 2)


@example(
    model=Model(("affine",)),
    pts=[
        (np.zeros(()), np.zeros((), np.float32)),
        _subnormal,
        (np.zeros(()), np.zeros((), np.float32)),
    ],
    batched=False,
).via("a subnormal tangent made the finite-difference step overflow to NaN")
@given(model=models, pts=points(n=3), batched=st.booleans())
def test_hvp(model: Model, pts: Any, batched: bool) -> None:
    (xv, x), *tangents = pts
    ts = [t for _, t in tangents[: 2 if batched else 1]]
    grad = reference_jacobian(model.scalar, xv)
    hess = reference_second(model.scalar, xv).reshape(xv.size, xv.size)
    expected = [(hess @ tv.reshape(-1)).reshape(xv.shape) for tv, _ in tangents[: len(ts)]]

    def run(b: Any) -> Any:
        prep = di.prepare_hvp(model.scalar, b, x, _batch(ts, batched))
        g, hv = di.gradient_and_hvp(model.scalar, b, x, _batch(ts, batched), prep=prep)
        _check(b, g, grad, x, 1)
        for got, exp in zip(hv if batched else (hv,), expected, strict=True):
            _check(b, got, exp, x, 2)
        return _stacked(hv, batched)

    _agree(_each_backend(SECOND_ORDER_BACKENDS, run), x, 2)


@given(model=models, pts=points(n=1))
def test_hessian(model: Model, pts: Any) -> None:
    ((xv, x),) = pts
    value = np.asarray(model.scalar(xv))
    grad = reference_jacobian(model.scalar, xv)
    expected = reference_second(model.scalar, xv)

    def run(b: Any) -> Any:
        prep = di.prepare_hessian(model.scalar, b, x)
        y, g, h = di.value_gradient_and_hessian(model.scalar, b, x, prep=prep)
        _check(b, y, value, x, 1)
        _check(b, g, grad, x, 1)
        _check(b, h, expected, x, 2)
        return h

    _agree(_each_backend(SECOND_ORDER_BACKENDS, run), x, 2)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts_reach_the_backends(layout: str) -> None:
    """The strategies really produce the layouts they claim (non-contiguous views)."""
    a = _laid_out(np.arange(6.0).reshape(2, 3), layout)
    contiguous = {"C": (True, False), "F": (False, True), "transposed": (False, True)}
    assert (a.flags.c_contiguous, a.flags.f_contiguous) == contiguous.get(layout, (False, False))
    assert (a.base is not None) == (layout in ("strided", "transposed", "reversed"))
    np.testing.assert_array_equal(a, np.arange(6.0).reshape(2, 3))
