"""The CasADi array namespace and tracer: array-API models traced into CasADi graphs.

Each model of the battery is written once with ``di.array_namespace``; it runs on NumPy for
the reference value and a Richardson-extrapolated central-difference Jacobian, and is traced
with SX and with MX symbols, whose CasADi value and ``casadi.jacobian`` must match. Then:
exact sparsity patterns, directional derivatives and their batches, the buffer call, C code
generation, and the refusals (control flow on values, > 2 dimensions, missing names,
writing into arrays) with their messages.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

casadi = pytest.importorskip("casadi")

import diffinterface as di  # noqa: E402
from diffinterface._errors import UnsupportedError  # noqa: E402
from diffinterface.backends._casadi_array import CasadiArray  # noqa: E402
from diffinterface.backends._casadi_namespace import NAMESPACE  # noqa: E402
from diffinterface.backends._casadi_tracing import Traced, trace  # noqa: E402

SYMBOLS = ["SX", "MX"]
RNG = np.random.default_rng(0)
A = RNG.normal(size=(3, 5))
B = RNG.normal(size=(3, 4))
X5 = np.array([0.3, -0.7, 1.1, 0.45, -0.2])
X23 = np.array([[0.3, -0.7, 1.1], [0.45, -0.2, 0.8]])


def _xp(x: Any) -> Any:
    return di.array_namespace(x)


# -- the battery: (f, x, contexts) --------------------------------------------------------
def elementwise(x: Any) -> Any:
    xp = _xp(x)
    return xp.sum(xp.exp(x) * xp.sin(x))


def unary(x: Any) -> Any:
    xp = _xp(x)
    parts = [
        xp.log1p(x**2), xp.expm1(x), xp.tanh(x), xp.sqrt(x**2 + 1), xp.cosh(x), xp.sinh(x),
        xp.atan(x), xp.asin(x / 2), xp.acos(x / 2), xp.tan(x), xp.log(xp.abs(x)),
        xp.square(x), -x, xp.exp(-x) / (1 + x**2), 2.0**x, xp.abs(x) ** 1.5,
        xp.asinh(x), xp.atanh(x / 2), xp.acosh(2 + x), xp.log2(3 + x), xp.log10(3 + x),
    ]  # fmt: skip
    return xp.concat(parts)


def binary(x: Any) -> Any:
    xp = _xp(x)
    a, b = x[:-1], x[1:]
    parts = [
        xp.atan2(a, b), xp.hypot(a, b), xp.maximum(a, b), xp.minimum(a, 0.1), a * b - b / (a + 3),
        xp.logaddexp(a, b), xp.pow(xp.abs(a) + 1, b), xp.clip(a, -0.5, 0.5),
    ]  # fmt: skip
    return xp.concat(parts)


def branches(x: Any) -> Any:
    xp = _xp(x)
    return xp.where(x > 0, xp.log(xp.where(x > 0, x, 1.0)), -(x**3)) + xp.where(x < 1, x, 0.0)


def reductions(x: Any) -> Any:
    xp = _xp(x)
    parts = [
        xp.sum(x, axis=0), xp.sum(x, axis=1), xp.mean(x, axis=-1), xp.prod(x, axis=0),
        xp.max(x, axis=1), xp.min(x, axis=0), xp.var(x, axis=1), xp.std(x, axis=0),
        xp.reshape(xp.sum(x, axis=0, keepdims=True), (-1,)),
        xp.stack([xp.sum(x), xp.prod(x), xp.max(x), xp.min(x), xp.mean(x), xp.var(x)]),
        xp.sum(x, axis=0) * x[1] + xp.max(x, axis=0) @ x.T[:, ::-1] @ x,
        xp.reshape(xp.sum(x, axis=(0, 1), keepdims=True) * x, (-1,)),
    ]  # fmt: skip
    return xp.concat(parts)


def rosenbrock(x: Any) -> Any:
    xp = _xp(x)
    return xp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def matmul_constants(x: Any) -> Any:
    xp = _xp(x)
    parts = [A @ x, x @ A.T, xp.matmul(A, xp.sin(x)), xp.reshape(x @ x, (1,))]
    parts.append(xp.reshape(xp.vecdot(x, x[::-1]), (1,)))
    norms = [xp.linalg.vector_norm(x, ord=o) for o in (1, 2, np.inf)]
    return xp.concat([*parts, xp.reshape(xp.outer(x[:2], x), (-1,)), xp.stack(norms)])


def matrix_products(x: Any) -> Any:  # x is 2×3
    xp = _xp(x)
    return xp.concat([
        xp.reshape(x @ B[:, :3].T @ x.T, (-1,)), xp.reshape(x.T @ x, (-1,)),
        x @ np.array([1.0, -2.0, 0.5]), np.array([0.5, 2.0]) @ x,
        xp.reshape(xp.exp(x) @ x.mT, (-1,)),
    ])  # fmt: skip


def indexing(x: Any) -> Any:  # x is 2×3
    xp = _xp(x)
    mask = np.array([[True, False, True], [False, True, True]])
    parts = [
        xp.reshape(x[1, 2] * x[0, 0], (1,)), x[:, 0], x[0], x[-1, ::-1],
        xp.reshape(x[1:, :-1], (-1,)),
        x[[0, 1], [2, 0]], x[mask], x[..., 1], xp.reshape(x[None, 0], (-1,)), x[:, 1][::2],
    ]  # fmt: skip
    return xp.concat(parts) ** 2


def joining(x: Any) -> Any:
    xp = _xp(x)
    s = xp.stack([x[0] * x[1], x[2] ** 2, xp.sum(x)])
    m = xp.stack([x[:2], x[2:4] ** 2], axis=1)
    c = xp.concat([m, xp.reshape(x[:4], (2, 2))], axis=1)
    return xp.concat([s, xp.reshape(c, (-1,)), xp.concat([x, x**2], axis=None)])


def reshaping(x: Any) -> Any:  # x has 6 elements
    xp = _xp(x)
    m = xp.reshape(x, (2, 3))
    parts = [
        xp.reshape(m @ A[:, :2] @ m, (-1,)), xp.reshape(m.T, (-1,)),
        xp.reshape(xp.permute_dims(m, (1, 0)) * 2, (-1,)), xp.flip(x), xp.roll(x, 2),
        xp.take(x, np.array([4, 0, 0])), xp.reshape(xp.expand_dims(x, axis=0), (-1,)),
        xp.squeeze(xp.reshape(x, (1, 6)), axis=0), xp.reshape(m, (-1,)),
        m.reshape(3, 2)[:, 1], xp.reshape(xp.tile(x[:2], 2), (-1,)), xp.repeat(x[:2], 2),
        xp.diff(x), xp.diff(m, axis=0)[0], xp.cumulative_sum(x), xp.reshape(m.flatten(), (-1,)),
    ]  # fmt: skip
    return xp.concat(parts)


def broadcasting(x: Any) -> Any:  # x is 2×3
    xp = _xp(x)
    row, col = xp.sin(x[0]), xp.cos(x[:, 0])
    parts = [
        x * row,
        x + xp.reshape(col, (2, 1)),
        x - 1.5,
        2 / (x + 3),
        xp.reshape(col, (2, 1)) * row,
    ]
    return xp.reshape(xp.stack([xp.reshape(p, (-1,)) for p in parts]), (-1,))


def numpy_mixing(x: Any) -> Any:
    return (
        np.concatenate([np.exp(x), np.ones(5) + x, A @ x, np.sin(x) * np.pi])
        if isinstance(x, np.ndarray)
        else _xp(x).concat([np.exp(x), np.ones(5) + x, A @ x, np.sin(x) * np.pi])
    )


def scalar_x(x: Any) -> Any:
    xp = _xp(x)
    return xp.stack([xp.sin(x), x**2, xp.exp(x) * x])


def constant_output(x: Any) -> Any:
    return _xp(x).asarray(A[0])


def with_contexts(x: Any, a: Any, k: int, scale: float) -> Any:
    xp = _xp(x)
    return scale * xp.exp(a @ x[:k]) + xp.sum(x**2)


CASES: dict[str, tuple[Callable[..., Any], np.ndarray, tuple[Any, ...]]] = {
    "elementwise": (elementwise, X5, ()),
    "unary": (unary, X5, ()),
    "binary": (binary, X5, ()),
    "where": (branches, X5, ()),
    "reductions": (reductions, X23, ()),
    "rosenbrock": (rosenbrock, X5, ()),
    "matmul_constants": (matmul_constants, X5, ()),
    "matrix_products": (matrix_products, X23, ()),
    "indexing": (indexing, X23, ()),
    "joining": (joining, X5, ()),
    "reshaping": (reshaping, np.linspace(-0.9, 0.8, 6), ()),
    "broadcasting": (broadcasting, X23, ()),
    "numpy_mixing": (numpy_mixing, X5, ()),
    "scalar_x": (scalar_x, np.array(0.7), ()),
    "constant_output": (constant_output, X5, ()),
    "contexts": (with_contexts, X5, (B[:, :3], 3, 0.5)),
}


def _value_and_jacobian(traced: Traced, x: Any, contexts: tuple[Any, ...]) -> tuple[Any, Any]:
    params = [symbol for _, symbol in traced.parameters]
    jac = casadi.jacobian(traced.y, traced.x)
    fn = casadi.Function("vj", [traced.x, *params], [traced.y, jac])
    y, j = fn(*traced.inputs(x, contexts))
    return y.full().reshape(traced.y_shape), j.full().reshape(traced.y_shape + traced.x_shape)


def _reference_jacobian(f: Callable[..., Any], x: np.ndarray, contexts: tuple[Any, ...]) -> Any:
    """Central differences with one Richardson step (error ~1e-10 for these smooth points)."""
    y = np.asarray(f(x, *contexts))
    jac = np.empty(y.shape + x.shape)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = 1.0

        def central(h: float, e: np.ndarray = e) -> Any:
            return (np.asarray(f(x + h * e, *contexts)) - np.asarray(f(x - h * e, *contexts))) / (
                2 * h
            )

        jac[(..., *i)] = (4 * central(5e-4) - central(1e-3)) / 3
    return jac


@pytest.mark.parametrize("symbols", SYMBOLS)
@pytest.mark.parametrize("name", list(CASES))
def test_value_and_jacobian_match_numpy(name: str, symbols: str) -> None:
    f, x, contexts = CASES[name]
    traced = trace(f, x.shape, x.dtype, contexts, symbols=symbols)
    value, jac = _value_and_jacobian(traced, x, contexts)
    expected = np.asarray(f(x, *contexts))
    assert traced.y_shape == expected.shape
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jac, _reference_jacobian(f, x, contexts), rtol=1e-7, atol=1e-8)


def test_analytic_jacobians() -> None:
    traced = trace(lambda x: A @ x, (5,))
    np.testing.assert_array_equal(_value_and_jacobian(traced, X5, ())[1], A)
    _, jac = _value_and_jacobian(trace(elementwise, (5,)), X5, ())
    np.testing.assert_allclose(jac, np.exp(X5) * (np.sin(X5) + np.cos(X5)), rtol=1e-14)
    # 2-d x and 2-d y: the Jacobian comes back as y.shape + x.shape in NumPy's order
    _, jac = _value_and_jacobian(trace(lambda x: x.T * 3, (2, 3)), X23, ())
    assert jac.shape == (3, 2, 2, 3)
    np.testing.assert_array_equal(jac, 3 * np.einsum("ad,bc->abcd", np.eye(3), np.eye(2)))


def test_contexts_are_parameters_or_static() -> None:
    f, x, contexts = CASES["contexts"]
    traced = trace(f, x.shape, x.dtype, contexts)
    assert [i for i, _ in traced.parameters] == [0, 2]
    assert traced.static == ((1, 3),)
    other = (B[:, 1:4] * 2, 3, -1.5)  # new parameter values, no new trace
    value, _ = _value_and_jacobian(traced, x, other)
    np.testing.assert_allclose(value, f(x, *other), rtol=1e-12)


def test_float32_x_traces_with_its_dtype_and_computes_in_double() -> None:
    x = X5.astype(np.float32)
    seen = []
    traced = trace(lambda x: seen.append(x.dtype) or x * 2.0, x.shape, x.dtype)
    assert seen == [np.float32]
    assert traced.dtype == np.float32
    value, _ = _value_and_jacobian(traced, x, ())
    assert value.dtype == np.float64  # the backend casts results back to x's dtype
    np.testing.assert_array_equal(value, x.astype(np.float64) * 2)


def test_array_namespace_and_array_attributes() -> None:
    x = trace(lambda x: x, (2, 3)).x
    seen: dict[str, Any] = {}

    def probe(x: Any) -> Any:
        seen.update(xp=di.array_namespace(x), mixed=di.array_namespace(x, 2.0), x=x)
        return x

    trace(probe, (2, 3))
    assert seen["xp"] is NAMESPACE and seen["mixed"] is NAMESPACE
    arr = seen["x"]
    assert isinstance(arr, CasadiArray) and x.shape == (6, 1)
    assert (arr.shape, arr.ndim, arr.size, arr.T.shape, arr.mT.shape) == (
        (2, 3),
        2,
        6,
        (3, 2),
        (3, 2),
    )
    assert len(arr) == 2 and [r.shape for r in arr] == [(3,), (3,)]
    assert arr.sum(axis=0).shape == (3,) and np.sum(arr).shape == () and np.mean(arr).shape == ()
    assert hasattr(NAMESPACE, "where") and not hasattr(NAMESPACE, "sort")


def test_constant_arrays_have_values() -> None:
    def f(x: Any) -> Any:
        xp = _xp(x)
        c = xp.asarray(A)
        if xp.sum(c[0]) > -100 and float(c[0, 0]) == A[0, 0]:  # no x: a value exists
            return x * int(xp.asarray(2))
        return x

    value, _ = _value_and_jacobian(trace(f, (5,)), X5, ())
    np.testing.assert_array_equal(value, 2 * X5)


# -- sparsity, directional derivatives, buffers, code generation --------------------------
@pytest.mark.parametrize("symbols", SYMBOLS)
def test_exact_sparsity_patterns(symbols: str) -> None:
    n = 8
    tridiagonal = np.diag(np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    traced = trace(lambda x: (tridiagonal * 2.5) @ x, (n,), symbols=symbols)
    pattern = casadi.jacobian_sparsity(traced.y, traced.x)
    np.testing.assert_array_equal(np.array(pattern), tridiagonal != 0)
    traced = trace(rosenbrock, (n,), symbols=symbols)
    hessian, _ = casadi.hessian(traced.y, traced.x)
    assert np.array_equal(np.array(hessian.sparsity()), tridiagonal != 0)


def test_directional_derivatives_and_batches() -> None:
    f, x, contexts = CASES["matmul_constants"]
    traced = trace(f, x.shape)
    fn = traced.function()
    _, jac = _value_and_jacobian(traced, x, contexts)
    tangents = RNG.normal(size=(x.size, 3))  # columns are tangents
    cotangents = RNG.normal(size=(jac.shape[0], 2))
    pushed = fn.forward(3)(x, 0, tangents).full()
    np.testing.assert_allclose(pushed, jac @ tangents, rtol=1e-12)
    pulled = fn.reverse(2)(x, 0, cotangents).full()
    np.testing.assert_allclose(pulled, jac.T @ cotangents, rtol=1e-12)
    jtimes = casadi.Function("jv", [traced.x], [casadi.jtimes(traced.y, traced.x, tangents[:, 0])])
    np.testing.assert_allclose(jtimes(x).full().ravel(), jac @ tangents[:, 0], rtol=1e-12)
    points = np.stack([x, x + 1, x - 1], axis=1)  # map: one column per point
    values = fn.map(3)(points).full()
    np.testing.assert_allclose(values[:, 1], f(x + 1), rtol=1e-12)


def test_buffer_writes_row_major_results_into_numpy_arrays() -> None:
    traced = trace(lambda x: x[:, ::-1] * x[0], (2, 3))
    jac = casadi.densify(casadi.jacobian(traced.y, traced.x))
    # J's transpose, stored column-major, is J in row-major order: a C-contiguous array.
    fn = casadi.Function("j", [traced.x], [traced.y, jac.T])
    buffer, evaluate = fn.buffer()
    x = np.ascontiguousarray(X23)
    y, j = np.empty(traced.y_shape), np.empty((6, 6))
    buffer.set_arg(0, memoryview(x))
    buffer.set_res(0, memoryview(y))
    buffer.set_res(1, memoryview(j))
    evaluate()
    np.testing.assert_array_equal(y, X23[:, ::-1] * X23[0])
    np.testing.assert_array_equal(j, _value_and_jacobian(traced, X23, ())[1].reshape(6, 6))


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_generated_c_matches(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    traced = trace(rosenbrock, (6,))
    grad = casadi.Function("rosen_grad", [traced.x], [casadi.gradient(traced.y, traced.x)])
    grad.generate("rosen_grad.c")
    compiled = casadi.external("rosen_grad", casadi.Importer("rosen_grad.c", "shell"))
    x = np.linspace(-1, 1, 6)
    np.testing.assert_allclose(compiled(x).full(), grad(x).full(), rtol=1e-15)


def test_traced_graph_is_as_small_as_hand_written() -> None:
    x = casadi.SX.sym("x", 50)
    hand = casadi.sum1(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    traced = trace(rosenbrock, (50,))
    by_hand = casadi.Function("h", [x], [casadi.gradient(hand, x)])
    ours = casadi.Function("t", [traced.x], [casadi.gradient(traced.y, traced.x)])
    assert ours.n_instructions() <= by_hand.n_instructions()
    np.testing.assert_allclose(ours(X5.repeat(10)).full(), by_hand(X5.repeat(10)).full())


# -- refusals -------------------------------------------------------------------------------
def _if_on_value(x: Any) -> Any:
    return x if x[0] > 0 else -x


def _while_on_value(x: Any) -> Any:
    while float(x[0]) < 10:
        x = x * 2
    return x


def _write(x: Any) -> Any:
    x[0] = 1.0
    return x


def _numpy_out(x: Any) -> Any:
    return np.exp(x, out=np.empty(5))


def _symbolic_index(x: Any) -> Any:
    return x[x[0]]


def _missing_name(x: Any) -> Any:
    return _xp(x).sort(x)


def _numpy_function(x: Any) -> Any:
    return np.fft.fft(x)


def _three_dims(x: Any) -> Any:
    return _xp(x).reshape(x, (1, 5, 1))


def _stack_matrices(x: Any) -> Any:
    m = _xp(x).reshape(x[:4], (2, 2))
    return _xp(x).stack([m, m])


REFUSALS = {
    "if": (_if_on_value, UnsupportedError, ["control flow", "xp.where", '"jax"', '"torch"']),
    "while": (_while_on_value, UnsupportedError, ["float()", "xp.where"]),
    "setitem": (_write, UnsupportedError, ["immutable", "item assignment", "xp.where"]),
    "out=": (_numpy_out, UnsupportedError, ["immutable", "out="]),
    "symbolic index": (_symbolic_index, UnsupportedError, ["indexing by an array"]),
    "missing name": (_missing_name, AttributeError, ["xp.sort", '"finitediff"']),
    "missing linalg": (lambda x: _xp(x).linalg.solve(x, x), UnsupportedError, ["xp.linalg.solve"]),
    "numpy function": (_numpy_function, UnsupportedError, ["converting an array to NumPy"]),
    "3-d reshape": (_three_dims, UnsupportedError, ["at most 2 dimensions", "(1, 5, 1)"]),
    "3-d stack": (_stack_matrices, UnsupportedError, ["xp.stack", "(2, 2, 2)"]),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals_name_the_op_and_the_way_out(name: str) -> None:
    f, error, phrases = REFUSALS[name]
    with pytest.raises(error) as info:
        trace(f, (5,))
    for phrase in phrases:
        assert phrase in str(info.value)


def test_missing_names_are_unsupported_and_attribute_errors() -> None:
    with pytest.raises(UnsupportedError, match=r"array attribute \.cumprod"):
        trace(lambda x: x.cumprod(), (5,))


def test_refused_inputs() -> None:
    with pytest.raises(UnsupportedError, match=r"x would have shape \(2, 2, 2\)"):
        trace(elementwise, (2, 2, 2))
    with pytest.raises(UnsupportedError, match=r"context 0 .* shape \(1, 2, 3\)"):
        trace(lambda x, c: x, (3,), np.float64, (np.ones((1, 2, 3)),))
    with pytest.raises(UnsupportedError, match="real floating-point x"):
        trace(elementwise, (3,), np.complex128)
    with pytest.raises(ValueError, match="'SX' or 'MX'"):
        trace(elementwise, (3,), symbols="DM")


def test_lists_of_arrays_stack_and_structured_outputs_are_refused() -> None:
    value, _ = _value_and_jacobian(
        trace(lambda x: _xp(x).asarray([x[0], [x[1], x[2]][1]]), (5,)), X5, ()
    )
    np.testing.assert_array_equal(value, X5[[0, 2]])
    with pytest.raises(UnsupportedError, match="returned a tuple"):
        trace(lambda x: (x, x), (5,))
