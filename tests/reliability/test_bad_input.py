"""Bad input on every backend: a clear error naming the problem and the fix, raised by
diffinterface itself (not from deep inside a framework), or a documented result.

``tests/test_errors.py`` checks each message once; here every case runs on every backend,
for every array type where it matters.
"""

from __future__ import annotations

import math
import traceback
from typing import Any

import jax
import numpy as np
import pytest
import tensorflow as tf
import torch

import diffinterface as di
from tests.conftest import as_kind, to_numpy

NAMES = ["jax", "torch", "tensorflow", "autograd", "finitediff"]
X = np.array([0.3, -0.7, 1.1])


def total(x: Any) -> Any:
    return di.array_namespace(x).sum(x * x)


def square(x: Any) -> Any:
    return x * x


def _raised_by_diffinterface(info: pytest.ExceptionInfo[BaseException]) -> None:
    """The error was raised by diffinterface's own code, not inside a framework."""
    assert "diffinterface" in str(info.traceback[-1].path), info.traceback[-1]


# --------------------------------------------------------------------------------------
# x


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["numpy", "torch", "jax", "tensorflow"])
@pytest.mark.parametrize("dtype", ["int32", "int64", "bool", "complex64", "complex128"])
def test_non_floating_x_is_refused(name: str, kind: str, dtype: str) -> None:
    x = np.array([1, 0, 1]).astype(dtype)
    if kind == "torch":
        x = torch.from_numpy(x)
    elif kind == "jax":
        x = jax.numpy.asarray(x)
    elif kind == "tensorflow":
        x = tf.constant(x)
    with pytest.raises(di.InvalidArgumentError, match=r"real floating dtype.*Convert it") as info:
        di.gradient(total, name, x)
    _raised_by_diffinterface(info)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.array([1.0, 2.0], dtype=object), "dtype object"),
        ([1.0, 2.0], r"is a list of numbers; expected a NumPy array \(pass np.asarray"),
        (None, "is a NoneType"),
        (np.True_, "is the bool"),
    ],
)
def test_non_array_x_is_refused(name: str, x: Any, message: str) -> None:
    with pytest.raises(di.InvalidArgumentError, match=message) as info:
        di.gradient(total, name, x)
    _raised_by_diffinterface(info)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_of_an_array_input(name: str) -> None:
    for op in (di.derivative, di.second_derivative):
        with pytest.raises(di.InvalidArgumentError, match=r"scalar \(0-d\) x; got shape \(3,\)"):
            op(square, name, X)


# --------------------------------------------------------------------------------------
# tangents


@pytest.mark.parametrize("name", NAMES)
def test_tangents_of_the_wrong_shape_dtype_or_kind(name: str) -> None:
    with pytest.raises(di.InvalidArgumentError, match=r"tangent #0 .*shape \(2,\).*shape \(3,\)"):
        di.pushforward(square, name, X, np.ones(2))
    with pytest.raises(di.InvalidArgumentError, match=r"tangent #1 .*float32.*dtype float64"):
        di.hvp(total, name, X, (np.ones(3), np.ones(3, np.float32)))
    with pytest.raises(di.InvalidArgumentError, match=r"cotangent #0 .*must match f\(x\)"):
        di.pullback(lambda x: x[:2], name, X, np.ones(3))
    with pytest.raises(di.InvalidArgumentError, match=r"tangent #0 has dtype int64"):
        di.pushforward(square, name, X, np.ones(3, dtype=np.int64))
    with pytest.raises(di.InvalidArgumentError, match=r"a list of tangents.*as a tuple"):
        di.pushforward(square, name, X, [np.ones(3), np.ones(3)])
    with pytest.raises(di.InvalidArgumentError, match=r"tangent #0 is a str"):
        di.pushforward(square, name, X, "ones")


@pytest.mark.parametrize("name", NAMES)
def test_tangent_count_differs_from_the_preparation(name: str) -> None:
    prep = di.prepare_pushforward(square, name, X, (X, X))
    with pytest.raises(di.PreparationMismatchError, match=r"✗ tangents") as info:
        di.pushforward(square, name, X, (X, X, X), prep=prep)
    assert "✓ x" in str(info.value)
    with pytest.raises(di.PreparationMismatchError, match=r"✗ tangents"):
        di.pushforward(square, name, X, X, prep=prep)


# --------------------------------------------------------------------------------------
# what f returns


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("f", "message"),
    [
        (lambda x: [x[0], "label"], r"list holding a str.*pass has_aux=True"),
        (lambda x: {"y": x[0], "n": 3}, r"dict holding a int.*arrays only"),
        (lambda x: None, r"returned nothing \(None\)\. A mutating f\(y, x\) must be passed"),
        (lambda x: x > 0, r"dtype .*bool.*real floating output"),
    ],
)
def test_f_returning_no_array_is_refused_at_preparation(name: str, f: Any, message: str) -> None:
    with pytest.raises(di.InvalidArgumentError, match=message) as info:
        di.prepare_jacobian(f, name, X)
    _raised_by_diffinterface(info)


def test_a_bfloat16_output_is_refused_by_name() -> None:
    import jax.numpy as jnp

    with pytest.raises(di.InvalidArgumentError, match=r"dtype bfloat16.*bfloat16 is not supported"):
        di.prepare_gradient(lambda x: jnp.sum(x).astype(jnp.bfloat16), "jax", X)


@pytest.mark.parametrize("name", ["torch", "autograd"])
def test_f_returning_a_python_float_is_refused_by_ad(name: str) -> None:
    """float(...) cuts the derivative off: AD would return 0 where the truth is 2x. (Under
    JAX, float() of a tracer already fails inside f, with JAX's own concretization error.)"""
    with pytest.raises(di.InvalidArgumentError, match=r"Python float .* no derivative flows"):
        di.gradient(lambda x: float((x * x).sum()), name, X)


def test_f_returning_a_python_float_is_fine_for_finite_differences() -> None:
    d = di.derivative(lambda x: math.sin(x), "finitediff", 0.4)
    assert abs(float(d) - math.cos(0.4)) < 1e-9


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("returned", ["numpy", "torch", "jax"])
def test_f_returning_another_librarys_array(name: str, returned: str) -> None:
    def f(x: Any) -> Any:
        return as_kind(np.ones(3), returned)

    native = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}.get(name, "numpy")
    if returned == native or (name == "jax" and returned == "numpy"):
        # the backend's own type (or a NumPy constant under JAX): a constant function
        np.testing.assert_array_equal(to_numpy(di.jacobian(f, name, X)), np.zeros((3, 3)))
        return
    with pytest.raises(di.InvalidArgumentError, match=r"although it received .*array_namespace"):
        di.jacobian(f, name, X)


@pytest.mark.parametrize("name", NAMES)
def test_non_scalar_output_for_scalar_operators(name: str) -> None:
    for op, args in ((di.gradient, ()), (di.hessian, ()), (di.hvp, (X,))):
        with pytest.raises(di.InvalidArgumentError, match=r"scalar \(0-d\) array; f returned"):
            op(square, name, X, *args)


# --------------------------------------------------------------------------------------
# preparations and contexts


@pytest.mark.parametrize("name", NAMES)
def test_a_preparation_used_elsewhere(name: str) -> None:
    prep = di.prepare_gradient(total, name, X)
    with pytest.raises(di.PreparationMismatchError, match=r"✗ operator: prepared 'gradient'"):
        di.hessian(total, name, X, prep=prep)
    with pytest.raises(di.PreparationMismatchError, match=r"✗ backend"):
        di.gradient(total, "finitediff" if name != "finitediff" else "torch", X, prep=prep)
    with pytest.raises(di.PreparationMismatchError, match=r"✗ f"):
        di.gradient(lambda x: total(x), name, X, prep=prep)
    with pytest.raises(di.PreparationMismatchError, match=r"✗ x"):
        di.gradient(total, name, X.astype(np.float32), prep=prep)
    with pytest.raises(di.PreparationMismatchError, match="structured x"):
        di.gradient(
            total, name, X, prep=di.prepare_gradient(lambda d: total(d["a"]), name, {"a": X})
        )
    with pytest.raises(di.InvalidArgumentError, match=r"prep= must come from"):
        di.gradient(total, name, X, prep="prep")  # type: ignore[arg-type]


def test_a_bound_method_is_the_same_f_at_every_access() -> None:
    class Model:
        def loss(self, x: Any) -> Any:
            return total(x)

    model = Model()
    prep = di.prepare_gradient(model.loss, "torch", X)
    np.testing.assert_allclose(di.gradient(model.loss, "torch", X, prep=prep), 2 * X)
    with pytest.raises(di.PreparationMismatchError, match="✗ f"):
        di.gradient(Model().loss, "torch", X, prep=prep)


@pytest.mark.parametrize("name", NAMES)
def test_contexts_of_the_wrong_kind(name: str) -> None:
    def f(x: Any, c: Any) -> Any:
        return total(x)

    with pytest.raises(di.InvalidArgumentError, match=r"Context #0 is a ndarray.*di\.Constant"):
        di.gradient(f, name, X, np.ones(3))
    with pytest.raises(di.InvalidArgumentError, match=r"Context #0 is a DiffCache"):
        di.gradient(f, name, X, di.DiffCache(np.ones(3)))
    for value in ("abc", None, [1.0, 2.0]):
        with pytest.raises(di.InvalidArgumentError, match=r"di\.Cache\(.*\); a Cache needs an"):
            di.gradient(f, name, X, di.Cache(value))
    prep = di.prepare_gradient(f, name, X, di.Constant(np.ones(3)))
    with pytest.raises(di.PreparationMismatchError, match="✗ contexts"):
        di.gradient(f, name, X, di.Constant(np.ones(4)), prep=prep)
    with pytest.raises(di.InvalidArgumentError, match=r"Context #0 is a ndarray.*di\.Constant"):
        di.gradient(f, name, X, np.ones(3), prep=prep)  # prepared, the context not wrapped

    def g(p: Any, c: Any) -> Any:
        return total(p["x"])

    structured = di.prepare_gradient(g, name, {"x": X}, di.Constant(X))
    with pytest.raises(di.InvalidArgumentError, match=r"Context #0 is a ndarray.*di\.Constant"):
        di.gradient(g, name, {"x": X}, X, prep=structured)


# --------------------------------------------------------------------------------------
# NaN and inf


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_inf_in_x_propagate(name: str) -> None:
    x = np.array([0.5, np.nan, np.inf, 2.0])
    with np.errstate(all="ignore"):
        g = to_numpy(di.gradient(total, name, x))
        j = to_numpy(di.jacobian(square, name, x))
        h = to_numpy(di.hessian(lambda v: di.array_namespace(v).sum(v * v * v), name, x))
    for d in (g, np.diag(j), np.diag(h)):
        assert not np.isfinite(d[1:3]).any(), (name, d)


FD_BACKENDS = [di.AutoFiniteDiff(method=m) for m in ("central", "forward", "complex")]


@pytest.mark.parametrize("backend", FD_BACKENDS, ids=lambda b: b.method)
@pytest.mark.parametrize(
    ("f", "x"),
    [
        (lambda x: 1.0 / x, [0.0, -1.0, 2.0]),  # a pole: inf at 0, finite on either side
        (lambda x: di.array_namespace(x).log(x), [0.0, -1.0, 2.0]),
        (lambda x: di.array_namespace(x).sqrt(x), [-1.0, 2.0, 0.5]),
    ],
    ids=["pole", "log", "sqrt"],
)
def test_finite_differences_never_hide_a_non_finite_f(backend: Any, f: Any, x: Any) -> None:
    """Where f(x) is NaN or infinite, finite differences give NaN, never the finite number
    a difference across the pole would (AD backends follow their framework's rules: the
    derivative of log at -1 is -1, while the value log(-1) is NaN)."""
    x = np.array(x)
    with np.errstate(all="ignore"):
        bad = ~np.isfinite(f(x))
        jac = np.diag(di.jacobian(f, backend, x))
        d = np.array([float(di.derivative(f, backend, float(v))) for v in x])
        h = np.array([float(di.second_derivative(f, backend, float(v))) for v in x])
    assert bad.any()
    for result in (jac, d, h):
        assert np.isnan(result[bad]).all(), result
        assert np.isfinite(result[~bad]).all(), result


# --------------------------------------------------------------------------------------
# exceptions inside f


class ModelError(Exception):
    """An error of the caller's own."""


OPERATORS = {
    "pushforward": lambda f, b, x: di.pushforward(f, b, x, x),
    "pullback": lambda f, b, x: di.pullback(f, b, x, x),
    "derivative": lambda f, b, x: di.derivative(f, b, x[0]),
    "gradient": lambda f, b, x: di.gradient(f, b, x),
    "jacobian": lambda f, b, x: di.jacobian(f, b, x),
    "second_derivative": lambda f, b, x: di.second_derivative(f, b, x[0]),
    "hvp": lambda f, b, x: di.hvp(f, b, x, x),
    "hessian": lambda f, b, x: di.hessian(f, b, x),
}


def broken_model(x: Any) -> Any:
    raise ModelError("the caller's model failed")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_an_error_inside_f_keeps_its_type_and_traceback(name: str, operator: str) -> None:
    with pytest.raises(ModelError) as info:
        OPERATORS[operator](broken_model, name, X)
    frames = "".join(traceback.format_tb(info.value.__traceback__))
    assert "broken_model" in frames
    notes = "".join(getattr(info.value, "__notes__", []))
    assert f"prepared {operator} with {di.backend(name)!r}" in notes, notes


@pytest.mark.parametrize("name", ["torch", "autograd", "finitediff"])
def test_an_error_inside_f_during_a_prepared_call(name: str) -> None:
    """(A prepared JAX call runs compiled code, never f's Python: it cannot raise there.)"""
    fail = False

    def sometimes_broken(x: Any) -> Any:
        if fail:
            raise ModelError("failing now")
        return total(x)

    prep = di.prepare_gradient(sometimes_broken, name, X)
    fail = True
    with pytest.raises(ModelError) as info:
        di.gradient(sometimes_broken, name, X, prep=prep)
    assert "sometimes_broken" in "".join(traceback.format_tb(info.value.__traceback__))
    assert f"computed gradient with {di.backend(name)!r}" in "".join(info.value.__notes__)
