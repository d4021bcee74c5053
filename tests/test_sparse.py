"""AutoSparse: sparse Jacobians and Hessians against dense analytic references on every
backend; the tracer's patterns against the nonzeros of dense JAX derivatives; colourings
checked by exact recovery of random matrices; colour and product counts; errors."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import diffinterface as di
from diffinterface._sparse.colorings import column_coloring, row_coloring, star_coloring
from diffinterface._sparse.compressed import _star_gather
from diffinterface.testsuite import cases, default_scenarios, sparse_scenarios, test_differentiation
from diffinterface.testsuite._sparse_scenarios import rosenbrock, tridiagonal

from .conftest import ALL_BACKENDS, BACKENDS, backend_id, tolerance

SPARSE = [di.AutoSparse(b) for b in ALL_BACKENDS]
X = np.linspace(-0.8, 0.9, 12)


# -- values and patterns against the dense references, every backend -------------------


@pytest.mark.parametrize("case", cases(SPARSE, sparse_scenarios()), ids=str)
def test_sparse_scenarios(case: Any) -> None:
    case.check()


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_sparse_equals_dense_result_of_the_same_backend(backend: Any) -> None:
    """Same backend, sparse and dense: the same numbers (compression loses nothing beyond
    the backend's own error), and the dense result vanishes (to the backend's tolerance)
    outside the pattern."""
    for sc in sparse_scenarios(n=7, grid=3):
        dense = np.asarray(sc.call(backend))
        sparse = sc.call(di.AutoSparse(backend))
        as_dense = sparse.toarray().reshape(dense.shape)
        tol = tolerance(backend, np.float64, sc.order)
        scale = max(1.0, float(np.max(np.abs(dense))))
        assert float(np.max(np.abs(as_dense - dense))) <= tol * scale, sc.name
        outside = np.ones(sparse.shape, dtype=bool)
        outside[sparse.nonzero()] = False
        assert np.all(np.abs(dense.reshape(sparse.shape)[outside]) <= tol * scale), sc.name


KIND_CASES = [
    (b, sc.with_kind(kind))
    for kind in ("torch", "jax")
    for b in (di.AutoSparse("torch"), di.AutoSparse(di.AutoJAX(mode="forward")))
    for sc in sparse_scenarios(n=6, grid=3, dtypes=(np.float32, np.float64))
    if sc.f in (tridiagonal, rosenbrock)
]


@pytest.mark.parametrize(("backend", "scenario"), KIND_CASES, ids=str)
def test_array_kinds_and_dtypes(backend: Any, scenario: Any) -> None:
    """x as torch or JAX arrays, float32 and float64: the values y (and gradient) come back
    in x's kind; the sparse matrix holds x's dtype."""
    cases([backend], [scenario])[0].check()


def test_dense_backend_and_sparse_agree_elementwise() -> None:
    dense = di.jacobian(tridiagonal, "torch", torch.from_numpy(X))
    value, jac = di.value_and_jacobian(tridiagonal, di.AutoSparse("jax"), X)
    assert isinstance(jac, sp.csr_array) and jac.shape == (12, 12) and jac.nnz == 3 * 12 - 2
    np.testing.assert_allclose(jac.toarray(), dense.numpy(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(value, tridiagonal(X), rtol=1e-15)


# -- colourings ------------------------------------------------------------------------


def tridiagonal_pattern(n: int) -> Any:
    return sp.csr_array(
        sp.diags_array([np.ones(n - 1), np.ones(n), np.ones(n - 1)], offsets=[-1, 0, 1]) != 0
    )


@pytest.mark.parametrize("order", ["natural", "largest_first", "smallest_last"])
def test_banded_and_block_colour_counts(order: str) -> None:
    tri = tridiagonal_pattern(200)
    assert column_coloring(tri, order).max() + 1 == 3
    assert row_coloring(tri, order).max() + 1 == 3
    assert star_coloring(tri, order).max() + 1 == 3
    blocks = sp.block_diag([np.ones((4, 4))] * 25, format="csr") != 0
    assert column_coloring(blocks, order).max() + 1 == 4
    assert star_coloring(blocks, order).max() + 1 == 4
    arrow = np.eye(30, dtype=bool)
    arrow[0], arrow[:, 0] = True, True
    assert star_coloring(arrow, order).max() + 1 == 2  # a star: the centre, then the leaves
    assert column_coloring(arrow, order).max() + 1 == 30  # a dense row: no two columns share


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(1, 30), st.floats(0.02, 0.5), st.integers(0, 2**31))
def test_colourings_recover_random_matrices(m: int, n: int, density: float, seed: int) -> None:
    """Compress a random matrix with the colouring's seeds, decompress, get it back exactly."""
    rng = np.random.default_rng(seed)
    a = sp.random_array((m, n), density=density, rng=rng, format="csr")
    pattern = a != 0
    for order in ("natural", "largest_first", "smallest_last"):
        cols = column_coloring(pattern, order)
        compressed = a @ (cols[:, None] == np.arange(cols.max() + 1)).astype(float)
        rows, idx = np.nonzero(pattern.toarray())
        np.testing.assert_array_equal(compressed[rows, cols[idx]], a.toarray()[rows, idx])
        rcols = row_coloring(pattern, order)
        rcompressed = (rcols[None, :] == np.arange(rcols.max() + 1)[:, None]).astype(float) @ a
        np.testing.assert_array_equal(rcompressed[rcols[rows], idx], a.toarray()[rows, idx])
    sym = a[:, :m] if n >= m else sp.random_array((m, m), density=density, rng=rng)
    sym = sp.csr_array(sym + sym.T + sp.eye_array(m))
    colors = star_coloring(sym != 0)
    k = int(colors.max()) + 1
    b = (sym @ (colors[:, None] == np.arange(k)).astype(float)).T  # B[c, i]
    pattern_s = sp.csr_array(sym != 0)
    pattern_s.sort_indices()
    gather = _star_gather(pattern_s, colors, k)
    recovered = sp.csr_array(
        (b.reshape(-1)[gather], pattern_s.indices, pattern_s.indptr), shape=(m, m)
    )
    np.testing.assert_allclose(recovered.toarray(), sym.toarray(), rtol=1e-12, atol=1e-12)


class CountingFunction:
    def __init__(self, f: Any) -> None:
        self.f, self.calls, self.__name__ = f, 0, f.__name__

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.f(*args)


@pytest.mark.parametrize("n", [20, 200])
def test_products_per_call_follow_colours_not_size(n: int) -> None:
    """Central differences with 3 colours: f(x) and 2 evaluations per colour, whatever n."""
    f = CountingFunction(tridiagonal)
    x = np.linspace(0.1, 0.9, n)
    backend = di.AutoSparse(di.AutoFiniteDiff())
    prep = di.prepare_jacobian(f, backend, x)
    before = f.calls
    jac = di.jacobian(f, backend, x, prep=prep)
    assert f.calls - before == 1 + 2 * 3
    dense = di.jacobian(tridiagonal, "jax", x)
    np.testing.assert_allclose(jac.toarray(), dense, rtol=1e-8, atol=1e-8)


# -- the tracer's patterns against dense derivatives -------------------------------------


def _m(x: Any) -> Any:
    return x.reshape(4, 3)


A = np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 3.0, 1.0], [0.5, 0.0, 0.0, 0.0]])
JACOBIAN_FUNCTIONS = {
    "index-and-slices": lambda x: di.array_namespace(x).stack([x[0] * x[5], x[::-2].sum(), x[-1]]),
    "fancy-index": lambda x: di.array_namespace(x).exp(x[np.array([3, 3, 0, 7])]),
    "reshape-transpose": lambda x: di.array_namespace(x).sin(_m(x).T).reshape(-1)[:5],
    "matmul-constant-left": lambda x: A @ di.array_namespace(x).tanh(_m(x)),
    "matmul-constant-right": lambda x: _m(x).T @ A.T,
    "matmul-traced": lambda x: _m(x)[:2] @ _m(x)[2:].T,
    "divide-pow": lambda x: x[:6] / (1.0 + x[6:] ** 2) + x[:6] ** 3.0,
    "axis-sum-broadcast": lambda x: _m(x) * di.array_namespace(x).sum(_m(x), axis=0),
    "concat-flip-roll": lambda x: di.array_namespace(x).concat(
        [x[:3], di.array_namespace(x).flip(x[3:6]), di.array_namespace(x).roll(x[6:], 2)]
    ),
    "prod-abs": lambda x: di.array_namespace(x).stack(
        [di.array_namespace(x).prod(x[:3]), abs(x[7]), di.array_namespace(x).abs(x[8])]
    ),
    "expand-squeeze": lambda x: (
        di.array_namespace(x).squeeze(di.array_namespace(x).expand_dims(x[2:5], axis=0), axis=0)
        * x[1]
    ),
    "cumsum-diff": lambda x: di.array_namespace(x).concat(
        [di.array_namespace(x).cumsum(x[:4] ** 2), di.array_namespace(x).diff(_m(x), axis=0)[1]]
    ),
    "numpy-ufuncs": lambda x: np.sin(x[:4]) * np.exp(x[4:8]) + np.arctan2(x[8:], 1.0),
}


@pytest.mark.parametrize("name", list(JACOBIAN_FUNCTIONS))
def test_tracer_jacobian_pattern_equals_dense_nonzeros(name: str) -> None:
    f = JACOBIAN_FUNCTIONS[name]
    x = np.random.default_rng(1).uniform(0.2, 1.0, 12)
    if name == "numpy-ufuncs":  # NumPy functions cannot see JAX tracers: difference quotients
        dense = di.jacobian(f, "finitediff", x)
    else:
        with jax.enable_x64(True):
            dense = np.asarray(jax.jacfwd(f)(jnp.asarray(x)))
    dense = dense.reshape(-1, 12) != 0
    pattern = di.TracerSparsityDetector().jacobian_sparsity(f, x, (), None, dense.shape[0])
    np.testing.assert_array_equal(pattern.toarray(), dense)


HESSIAN_FUNCTIONS = {
    "product-chain": lambda x: (x[:-1] * x[1:]).sum() + (x[:3] ** 2).sum(),
    "quotient": lambda x: (x[:4] / x[4:8]).sum() + x[9] * 3.0,
    "nonlinear-of-sum": lambda x: (
        di.array_namespace(x).exp(x[0] + x[5]) + di.array_namespace(x).sin(x[2:4]).sum()
    ),
    "quadratic-form": lambda x: x[:4] @ (A.T @ A) @ x[:4] + x[10] * x[11],
    "linear-only": lambda x: (x * 2.0).sum(),
}


@pytest.mark.parametrize("name", list(HESSIAN_FUNCTIONS))
def test_tracer_hessian_pattern_equals_dense_nonzeros(name: str) -> None:
    f = HESSIAN_FUNCTIONS[name]
    x = np.random.default_rng(2).uniform(0.2, 1.0, 12)
    with jax.enable_x64(True):
        dense = np.asarray(jax.hessian(f)(jnp.asarray(x))) != 0
    pattern = di.TracerSparsityDetector().hessian_sparsity(f, x, ())
    np.testing.assert_array_equal(pattern.toarray(), dense)


def test_where_and_max_follow_every_branch() -> None:
    """The global pattern holds at every x: both branches of where, every entry of a max."""

    def f(x: Any) -> Any:
        xp = di.array_namespace(x)
        condition = (x[:3] > 0.5) & ~(x[:3] == x[1:4])
        return xp.where(condition, x[3:6] ** 2, x[6:9]) + xp.max(x[9:]) * 0.0

    pattern = di.TracerSparsityDetector().jacobian_sparsity(f, X, (), None, 3).toarray()
    expected = np.zeros((3, 12), dtype=bool)
    expected[np.arange(3), np.arange(3, 6)] = expected[np.arange(3), np.arange(6, 9)] = True
    expected[:, 9:] = True
    np.testing.assert_array_equal(pattern, expected)


# -- detectors -------------------------------------------------------------------------


def test_dense_and_known_detectors() -> None:
    def branchy(x: Any) -> Any:  # control flow on values: the tracer cannot follow it
        return tridiagonal(x) if x[0] > 0 else -tridiagonal(x)

    dense = di.AutoSparse(
        "torch", sparsity_detector=di.DenseSparsityDetector("finitediff", atol=1e-8)
    )
    reference = di.jacobian(tridiagonal, "jax", X)
    jac = di.jacobian(branchy, dense, X)  # X[0] < 0: the second branch
    assert jac.nnz == 3 * 12 - 2
    np.testing.assert_allclose(jac.toarray(), -reference, rtol=1e-12, atol=1e-12)
    known = di.AutoSparse("torch", sparsity_detector=di.KnownSparsityDetector(reference != 0))
    np.testing.assert_allclose(
        di.jacobian(tridiagonal, known, X).toarray(), reference, rtol=1e-12, atol=1e-12
    )
    with pytest.raises(di.UnsupportedError, match=r"control flow.*DenseSparsityDetector"):
        di.jacobian(branchy, di.AutoSparse("torch"), X)
    hess = di.hessian(rosenbrock, di.AutoSparse("torch", di.DenseSparsityDetector("jax")), X)
    np.testing.assert_allclose(hess.toarray(), di.hessian(rosenbrock, "jax", X), rtol=1e-12)


def test_mutating_function_with_dense_detector() -> None:
    def f(y: Any, x: Any) -> None:
        y[:] = tridiagonal(x)

    with pytest.raises(di.UnsupportedError, match="writes into arrays"):
        di.jacobian(f, di.AutoSparse("torch"), X, y=np.zeros(12))
    backend = di.AutoSparse(di.AutoTorch(mode="forward"), di.DenseSparsityDetector("finitediff"))
    y = np.zeros(12)
    jac = di.jacobian(f, backend, X, y=y)
    np.testing.assert_allclose(jac.toarray(), di.jacobian(tridiagonal, "jax", X), rtol=1e-12)
    np.testing.assert_allclose(y, tridiagonal(X), rtol=1e-15)


# -- the rest of the contract ----------------------------------------------------------


@pytest.mark.parametrize("backend", SPARSE[::2], ids=backend_id)
def test_other_operators_use_the_dense_backend(backend: Any) -> None:
    g = di.gradient(rosenbrock, backend, X)
    np.testing.assert_allclose(g, di.gradient(rosenbrock, backend.backend, X), rtol=1e-13)
    pushed = di.pushforward(tridiagonal, backend, X, np.ones(12))
    reference = di.jacobian(tridiagonal, "jax", X) @ np.ones(12)
    np.testing.assert_allclose(pushed, reference, rtol=1e-6, atol=1e-6)


def test_backend_object() -> None:
    a = di.AutoSparse("jax")
    assert a == di.AutoSparse(di.AutoJAX()) and hash(a) == hash(di.AutoSparse(di.AutoJAX()))
    assert a != di.AutoSparse("jax", coloring=di.GreedyColoring("natural"))
    assert "AutoSparse(backend=AutoJAX(mode='reverse')" in repr(a)


def test_errors() -> None:
    with pytest.raises(di.InvalidArgumentError, match="dense backend"):
        di.AutoSparse(di.AutoSparse("jax"))  # type: ignore[arg-type]
    with pytest.raises(di.InvalidArgumentError, match="Unknown backend name"):
        di.AutoSparse("theano")
    with pytest.raises(di.InvalidArgumentError, match="sparsity_detector must be"):
        di.AutoSparse("jax", sparsity_detector="tracer")
    with pytest.raises(di.InvalidArgumentError, match="GreedyColoring"):
        di.AutoSparse("jax", coloring="greedy")  # type: ignore[arg-type]
    with pytest.raises(di.InvalidArgumentError, match="order='random'"):
        di.GreedyColoring("random")
    with pytest.raises(di.InvalidArgumentError, match=r"pattern has shape \(3, 3\)"):
        di.jacobian(tridiagonal, di.AutoSparse("jax", di.KnownSparsityDetector(np.eye(3))), X)

    def sorts(x: Any) -> Any:
        return di.array_namespace(x).sort(x)

    with pytest.raises(di.UnsupportedError, match=r"xp\.sort.*DenseSparsityDetector"):
        di.jacobian(sorts, di.AutoSparse("jax"), X)

    backend = di.AutoSparse("jax")
    prep = di.prepare_jacobian(tridiagonal, backend, X)
    with pytest.raises(di.PreparationMismatchError, match="✗ backend"):
        di.jacobian(
            tridiagonal, di.AutoSparse("jax", coloring=di.GreedyColoring("natural")), X, prep=prep
        )
    with pytest.raises(
        di.InvalidArgumentError, match=r"out= for a sparse result must be a scipy\.sparse CSR"
    ):
        di.jacobian(tridiagonal, backend, X, prep=prep, out=np.zeros((12, 12)))
    out = di.jacobian(tridiagonal, backend, X, prep=prep)
    out.data[:] = 0
    assert di.jacobian(tridiagonal, backend, X, prep=prep, out=out) is out
    assert np.count_nonzero(out.data) == out.nnz


def test_default_scenarios_under_autosparse() -> None:
    """Every operator of the default collection: sparse Jacobians and Hessians, the rest on
    the dense backend; the tracer declares (and makes) its refusal of mutating f."""
    scenarios = default_scenarios(dtypes=(np.float64,))
    tracer, dense = di.AutoSparse("torch"), di.AutoSparse("torch", di.DenseSparsityDetector())
    report = test_differentiation([tracer, dense], scenarios)
    assert report.ok, str(report)
    refused = [r for r in report.results if r.status == "unsupported"]
    assert [(r.backend, r.scenario.operator, r.scenario.mutates) for r in refused] == [
        (tracer, "jacobian", True)
    ]
