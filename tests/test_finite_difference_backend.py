"""AutoFiniteDiff with adaptive steps and a vectorised f, through the public operators:
every operator against hand-written derivatives, error estimates that bound the true error,
a vectorised f giving the same numbers as one call per point, dtypes, ``error=`` on every
operator and variant (structured x, batches, ``out=``), threads sharing a preparation,
evaluation counts, and the configuration's errors."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import diffinterface as di

ADAPTIVE = di.AutoFiniteDiff(step="adaptive")
VECTORIZED = di.AutoFiniteDiff(step="adaptive", vectorized=True)
X = np.array([0.3, -0.7, 1.1, 0.5])
T = np.array([1.0, -0.5, 0.25, 2.0])


# f and its derivatives by hand; each f takes one point or a batch on leading axes
def energy(x: Any) -> Any:  # Σ x² sin x
    return np.sum(x * x * np.sin(x), axis=-1)


def energy_gradient(x: np.ndarray) -> np.ndarray:
    return 2 * x * np.sin(x) + x * x * np.cos(x)


def energy_hessian(x: np.ndarray) -> np.ndarray:
    return np.diag(2 * np.sin(x) + 4 * x * np.cos(x) - x * x * np.sin(x))


def coupled(x: Any) -> Any:  # (x0 x1 eˣ², sin(x0 + x3), x1² x2)
    x0, x1, x2, x3 = (x[..., i] for i in range(4))
    return np.stack([x0 * x1 * np.exp(x2), np.sin(x0 + x3), x1 * x1 * x2], axis=-1)


def coupled_jacobian(x: np.ndarray) -> np.ndarray:
    x0, x1, x2, x3 = x
    e, c = np.exp(x2), np.cos(x0 + x3)
    return np.array([[x1 * e, x0 * e, x0 * x1 * e, 0], [c, 0, 0, c], [0, 2 * x1 * x2, x1 * x1, 0]])


def curve(t: Any) -> Any:  # t ↦ (sin t, t³ eᵗ)
    return np.stack([np.sin(t), t**3 * np.exp(t)], axis=-1)


def curve_derivatives(t: float) -> tuple[np.ndarray, np.ndarray]:
    e = np.exp(t)
    first = np.array([np.cos(t), (3 * t**2 + t**3) * e])
    second = np.array([-np.sin(t), (6 * t + 6 * t**2 + t**3) * e])
    return first, second


#: operator -> (f, arguments after f and the backend, the exact result)
CASES: dict[str, tuple[Callable[..., Any], tuple[Any, ...], Any]] = {
    "pushforward": (coupled, (X, T), coupled_jacobian(X) @ T),
    "pullback": (
        coupled,
        (X, np.array([1.0, -2.0, 0.5])),
        np.array([1.0, -2.0, 0.5]) @ coupled_jacobian(X),
    ),
    "derivative": (curve, (0.4,), curve_derivatives(0.4)[0]),
    "gradient": (energy, (X,), energy_gradient(X)),
    "jacobian": (coupled, (X,), coupled_jacobian(X)),
    "second_derivative": (curve, (0.4,), curve_derivatives(0.4)[1]),
    "hvp": (energy, (X, T), energy_hessian(X) @ T),
    "hessian": (energy, (X,), energy_hessian(X)),
}
VALUE_VARIANTS = {
    "pushforward": "value_and_pushforward",
    "pullback": "value_and_pullback",
    "derivative": "value_and_derivative",
    "gradient": "value_and_gradient",
    "jacobian": "value_and_jacobian",
    "second_derivative": "value_derivative_and_second_derivative",
    "hvp": "gradient_and_hvp",
    "hessian": "value_gradient_and_hessian",
}


@pytest.mark.parametrize("operator", list(CASES))
def test_every_operator_is_accurate_and_its_error_estimate_bounds_the_error(
    operator: str,
) -> None:
    f, args, exact = CASES[operator]
    result, error = getattr(di, operator)(f, ADAPTIVE, *args, error=True)
    true_error = np.abs(result - exact)
    scale = max(1.0, float(np.max(np.abs(exact))))
    second = operator in ("second_derivative", "hvp", "hessian")
    assert float(np.max(true_error)) <= (1e-9 if second else 1e-12) * scale
    assert error.shape == np.shape(result) and error.dtype == np.float64
    assert np.all(error >= true_error)  # the estimate bounds the error ...
    assert float(np.max(error)) <= (1e-6 if second else 1e-9) * scale  # ... and says much


@pytest.mark.parametrize("operator", list(CASES))
def test_value_variants_put_the_error_estimate_of_the_last_result_last(operator: str) -> None:
    f, args, exact = CASES[operator]
    results = getattr(di, VALUE_VARIANTS[operator])(f, ADAPTIVE, *args, error=True)
    plain = getattr(di, VALUE_VARIANTS[operator])(f, ADAPTIVE, *args)
    assert len(results) == len(plain) + 1
    for got, want in zip(results[:-1], plain, strict=True):
        np.testing.assert_array_equal(got, want)
    assert results[-1].shape == np.shape(exact)
    assert np.all(results[-1] >= np.abs(results[-2] - exact))


@pytest.mark.parametrize("operator", list(CASES))
@pytest.mark.parametrize("step", [None, "adaptive"])
def test_a_vectorised_f_gives_what_one_call_per_point_gives(operator: str, step: Any) -> None:
    """The same configuration with vectorized=True and False: the same numbers (the same
    engine, the same points; fixed first-order steps of one f call per point go through the
    lean kernels, which take nominal rather than exact steps: equal to rounding there)."""
    f, args, _ = CASES[operator]
    looped, vectorised = di.AutoFiniteDiff(step=step), di.AutoFiniteDiff(step=step, vectorized=True)
    one_point = lambda x: f(x)  # noqa: E731  # the same f, called on one point at a time
    variant = getattr(di, VALUE_VARIANTS[operator])
    a, b = variant(one_point, looped, *args), variant(f, vectorised, *args)
    same_engine = step == "adaptive" or operator == "hessian"
    for got, want in zip(b, a, strict=True):
        if same_engine:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    if step == "adaptive":
        e1 = getattr(di, operator)(one_point, looped, *args, error=True)[1]
        e2 = getattr(di, operator)(f, vectorised, *args, error=True)[1]
        np.testing.assert_array_equal(e1, e2)


@pytest.mark.parametrize("backend", [ADAPTIVE, VECTORIZED], ids=["looped", "vectorized"])
def test_float32_stays_float32_and_float64_is_not_downcast(backend: Any) -> None:
    x32 = X.astype(np.float32)
    g, e = di.gradient(energy, backend, x32, error=True)
    assert g.dtype == e.dtype == np.float32
    np.testing.assert_allclose(g, energy_gradient(X), rtol=1e-4)
    h, e = di.hessian(energy, backend, x32, error=True)
    assert h.dtype == e.dtype == np.float32
    np.testing.assert_allclose(h, energy_hessian(X), atol=2e-3)
    g64 = di.gradient(energy, backend, X)
    assert g64.dtype == np.float64
    np.testing.assert_allclose(g64, energy_gradient(X), rtol=1e-12)


def test_error_estimates_of_structured_x_and_batches_have_their_shapes() -> None:
    def f(p: Any) -> Any:
        return energy(p["a"]) * np.sum(p["b"], axis=-1)

    p = {"a": X[:2], "b": X[2:]}
    exact = {"a": energy_gradient(X[:2]) * np.sum(X[2:]), "b": np.full(2, energy(X[:2]))}
    for backend in (ADAPTIVE, VECTORIZED):
        g, e = di.gradient(f, backend, p, error=True)
        assert list(e) == ["a", "b"]
        for key in ("a", "b"):
            assert e[key].shape == g[key].shape
            assert np.all(e[key] >= np.abs(g[key] - exact[key]))
    tangents = (T, 2 * T)
    results, errors = di.hvp(energy, ADAPTIVE, X, tangents, error=True)
    assert isinstance(errors, tuple) and len(errors) == 2
    for r, e, t in zip(results, errors, tangents, strict=True):
        assert e.shape == r.shape and np.all(e >= np.abs(r - energy_hessian(X) @ t))
    _, results, errors = di.gradient_and_hvp(energy, VECTORIZED, X, tangents, error=True)
    assert len(results) == len(errors) == 2


def test_an_error_estimate_with_a_fixed_step_is_refused() -> None:
    with pytest.raises(di.UnsupportedError, match="step='adaptive'"):
        di.hessian(energy, di.AutoFiniteDiff(vectorized=True), X, error=True)


def test_threads_sharing_one_preparation_each_get_their_own_estimate() -> None:
    prep = di.prepare_jacobian(coupled, ADAPTIVE, X)
    points = [X + 0.1 * k for k in range(4)]
    expected = [di.jacobian(coupled, ADAPTIVE, x, prep=prep, error=True) for x in points]
    got: dict[int, list[Any]] = {k: [] for k in range(4)}

    def work(k: int) -> None:
        for _ in range(20):
            got[k].append(di.jacobian(coupled, ADAPTIVE, points[k], prep=prep, error=True))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for k in range(4):
        assert len(got[k]) == 20
        for jac, err in got[k]:
            np.testing.assert_array_equal(jac, expected[k][0])
            np.testing.assert_array_equal(err, expected[k][1])


@pytest.mark.parametrize("vectorized", [False, True])
def test_out_and_error_arrays_are_written_without_allocating_their_size(vectorized: bool) -> None:
    rng = np.random.default_rng(0)
    n = 400
    w, x = rng.normal(size=(n, n)) / np.sqrt(n), rng.normal(size=n)
    exact = (1 - np.tanh(w @ x) ** 2)[:, None] * w

    def layer(v: Any, w: Any) -> Any:  # one point or a batch of them
        return np.tanh(v @ w.T)

    backend = di.AutoFiniteDiff(step="adaptive", vectorized=vectorized)
    if vectorized:  # f's own outputs are as large as its batch: small batches here
        backend = di.AutoFiniteDiff(step="adaptive", vectorized=True, chunk_size=20)
    prep = di.prepare_jacobian(layer, backend, x, di.Constant(w))
    out, err = np.empty((n, n)), np.empty((n, n))
    di.jacobian(layer, backend, x, di.Constant(w), prep=prep, out=out, error=err)  # warm-up
    tracemalloc.start()
    result = di.jacobian(layer, backend, x, di.Constant(w), prep=prep, out=out, error=err)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result[0] is out and result[1] is err
    # J and its error (1.3 MB each) are not allocated; the margin leaves room for chunks and
    # for what other threads of the test process allocate meanwhile
    assert peak < out.nbytes / 2
    true_error = np.abs(out - exact)
    assert float(np.max(true_error)) <= 1e-12
    # at the rounding floor (f's sums of 400 products round more than eps·|f|) the estimate
    # bounds most entries, and the largest error
    assert np.mean(err >= true_error) >= 0.95 and np.max(err) >= np.max(true_error)


#: operator -> the calls of a vectorised f in one prepared call (fixed steps, adaptive)
VECTORISED_CALLS = {
    "jacobian": (1, 1),  # every column's points in one batch
    "hessian": (1, 1),  # f(x) rides in the batch of second differences
    "value_gradient_and_hessian": (2, 1),  # fixed: the gradient by its own step
    "hvp": (1, 1),
    "second_derivative": (1, 1),
}


@pytest.mark.parametrize("operator", list(VECTORISED_CALLS))
def test_a_vectorised_f_is_called_once_per_call(operator: str) -> None:
    calls: list[int] = []

    def f(x: Any) -> Any:
        calls.append(len(x))
        return coupled(x) if operator == "jacobian" else energy(x)

    def g(t: Any) -> Any:  # scalar x
        calls.append(len(t))
        return np.exp(t) * np.sin(t)

    args = {"hvp": (X, T), "second_derivative": (0.4,)}.get(operator, (X,))
    for backend, expected in zip(
        (di.AutoFiniteDiff(vectorized=True), VECTORIZED), VECTORISED_CALLS[operator], strict=True
    ):
        fn = g if operator == "second_derivative" else f
        prep = getattr(di, "prepare_" + operator.removeprefix("value_gradient_and_"))(
            fn, backend, *args
        )
        calls.clear()
        getattr(di, operator)(fn, backend, *args, prep=prep)
        assert len(calls) == expected, (backend, calls)


def test_sparse_colour_groups_go_through_a_vectorised_f_in_one_batch() -> None:
    calls: list[int] = []

    def f(x: Any) -> Any:  # a tridiagonal Jacobian: 3 colours
        calls.append(len(x))
        xp = di.array_namespace(x)  # the sparsity detector traces f with its own arrays
        zero = 0 * x[..., :1]
        left = xp.concat([zero, x[..., :-1]], axis=-1)
        right = xp.concat([x[..., 1:], zero], axis=-1)
        return x**3 - left + 2 * right

    x = np.linspace(-1, 1, 30)
    backend = di.AutoSparse(di.AutoFiniteDiff(vectorized=True))
    prep = di.prepare_jacobian(f, backend, x)
    calls.clear()
    jac = di.jacobian(f, backend, x, prep=prep)
    assert calls == [1 + 2 * 3]  # one call: f(x) and both sides of 3 colours
    expected = np.diag(3 * x**2) - np.eye(30, k=-1) + 2 * np.eye(30, k=1)
    np.testing.assert_allclose(jac.toarray(), expected, atol=1e-8)


def test_a_vectorised_f_that_is_not_vectorised_is_told_how_to_fix_it() -> None:
    with pytest.raises(di.InvalidArgumentError, match=r"one output per point.*x\[\.\.\., i\]"):
        di.gradient(lambda x: np.sum(x * x), di.AutoFiniteDiff(vectorized=True), X)


def test_a_vectorised_f_cannot_write_into_y_or_caches() -> None:
    def f(y: Any, x: Any) -> None:
        y[...] = x * x

    with pytest.raises(di.UnsupportedError, match=r"vectorized=True.*vectorized=False"):
        di.jacobian(f, di.AutoFiniteDiff(vectorized=True), X, y=np.zeros(4))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"step": 0}, "positive number"),
        ({"step": "small"}, "'adaptive'"),
        ({"order": 4}, "applies with step='adaptive'"),
        ({"step": "adaptive", "order": 3}, "even"),
        ({"step": "adaptive", "num_steps": 0}, "integer ≥ 1"),
        ({"chunk_size": 64}, "applies with vectorized=True"),
        ({"step": 1e-4, "rel_step": 1e-5}, "older name"),
    ],
)
def test_bad_options_name_the_problem(options: dict[str, Any], message: str) -> None:
    with pytest.raises(di.InvalidArgumentError, match=message):
        di.AutoFiniteDiff(**options)


def test_options_and_their_spellings() -> None:
    assert di.AutoFiniteDiff(rel_step=1e-5) == di.AutoFiniteDiff(step=1e-5)
    assert di.AutoFiniteDiff() == di.backend("finitediff")
    assert repr(di.AutoFiniteDiff()) == "AutoFiniteDiff(method='central')"
    assert repr(VECTORIZED) == "AutoFiniteDiff(method='central', step='adaptive', vectorized=True)"
    custom = di.AutoFiniteDiff(step="adaptive", order=4, num_steps=3)  # 3 steps, one level
    g, e = di.gradient(energy, custom, X, error=True)
    assert np.all(e >= np.abs(g - energy_gradient(X))) and np.max(e) < 1e-4
    with pytest.raises(di.InvalidArgumentError, match="vectorized=True"):
        di.SecondOrder(di.AutoFiniteDiff(vectorized=True), "jax")
