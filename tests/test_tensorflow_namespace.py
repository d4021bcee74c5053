"""The array-API namespace over TensorFlow (``backends/_tensorflow_namespace.py``).

One battery of model functions, written once against ``xp``, runs on NumPy (through
``di.array_namespace``, the reference) and on TensorFlow through the namespace: eagerly,
inside GradientTape (the gradient against NumPy finite differences), inside ``tf.function``
(symbolic tensors, one trace per input signature), under ForwardAccumulator and
``tf.vectorized_map``. float32 and float64 inputs keep their dtype. ``di.array_namespace``
returns it for TensorFlow's tensors and variables, eager or symbolic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tensorflow as tf  # tests/conftest.py sets its log variables first

import diffinterface as di
from diffinterface.backends._tensorflow_arrays import mutation_error
from diffinterface.backends._tensorflow_namespace import NAMESPACE

N = 6
W = np.random.default_rng(0).standard_normal((3, N))


def xp_of(x: Any) -> Any:
    return di.array_namespace(x)


# --------------------------------------------------------------------------------------
# the battery: scalar functions of a vector x of N entries in (0.1, 1)


def sum_exp(x: Any) -> Any:
    xp = xp_of(x)
    return xp.sum(xp.exp(x))


def logs(x: Any) -> Any:
    xp = xp_of(x)
    return xp.sum(xp.log(x) + xp.log1p(x) + xp.log2(x) + xp.log10(x) + xp.expm1(x))


def trig(x: Any) -> Any:
    xp = xp_of(x)
    return xp.sum(xp.sin(x) * xp.cos(x) + xp.tanh(x) + xp.atan(x) + xp.sinh(x))


def roots_and_powers(x: Any) -> Any:
    xp = xp_of(x)
    return xp.sum(xp.sqrt(xp.abs(x) + 1.0) + xp.pow(x, 3.0) + xp.square(x) + x**0.5)


def matrices(x: Any) -> Any:
    xp = xp_of(x)
    a = xp.reshape(x, (2, 3))
    b = xp.matmul(a, xp.matrix_transpose(a))
    c = xp.permute_dims(xp.reshape(x, (1, 2, 3)), (2, 1, 0))[:, 0, 0]
    return xp.sum(b * b) + xp.sum(c * x[:3]) + xp.linalg.vector_norm(x)


def assembled(x: Any) -> Any:
    xp = xp_of(x)
    head = xp.stack([x[0] * x[1], x[2]])
    y = xp.concat([head, x[3:] ** 2])
    return xp.sum(y * xp.arange(5, dtype=x.dtype)) + xp.sum(xp.expand_dims(x, axis=0) ** 2)


def piecewise(x: Any) -> Any:
    xp = xp_of(x)
    y = xp.where(x > 0.5, x**2, -x) + xp.maximum(x, 0.3) + xp.minimum(x, 0.6)
    return xp.sum(y + xp.clip(x, 0.2, 0.8) * x)


def reductions(x: Any) -> Any:
    xp = xp_of(x)
    return xp.max(x) * xp.min(x) + xp.mean(x) + xp.prod(x[:3]) + xp.var(x) + xp.std(x)


def created(x: Any) -> Any:
    xp = xp_of(x)
    ones = xp.ones(x.shape, dtype=x.dtype) + xp.zeros_like(x)
    weights = xp.linspace(0.0, 1.0, N, dtype=x.dtype)
    eye = xp.eye(3, dtype=x.dtype)
    return xp.sum((x + ones) * xp.full_like(x, 2.0) * weights) + xp.sum(xp.matmul(eye, x[:3]))


def products(x: Any) -> Any:
    xp = xp_of(x)
    w = xp.asarray(W, dtype=x.dtype)
    h = 1.0 / (1.0 + xp.exp(-xp.matmul(w, x)))  # a sigmoid layer with constant weights
    return xp.vecdot(x, x) + xp.dot(x[:3], x[3:]) + xp.einsum("i,i->", x, x) + xp.sum(h)


def scans(x: Any) -> Any:
    xp = xp_of(x)
    return xp.sum(xp.cumulative_sum(x) * xp.flip(x)) + xp.sum(xp.roll(x, 1) * x)


def mixed(x: Any) -> Any:
    xp = xp_of(x)
    y = xp.logaddexp(x, 2.0 * x) + xp.take(x, xp.asarray([0, 2, 4, 1, 3, 5]))
    return xp.sum(y * xp.asarray(0.5, dtype=x.dtype)) + xp.squeeze(x[None, :1], axis=(0, 1))


BATTERY = [
    sum_exp, logs, trig, roots_and_powers, matrices, assembled, piecewise, reductions,
    created, products, scans, mixed,
]  # fmt: skip
DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 2e-4, np.float64: 1e-10}
FD_RTOL = 1e-7  # central differences, step eps^(1/3)


def x_numpy(dtype: Any = np.float64) -> np.ndarray:
    return np.linspace(0.15, 0.95, N).astype(dtype)


def tape_gradient(f: Callable[[Any], Any], x: Any) -> tuple[Any, Any]:
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    return y, tape.gradient(y, x)


def reference_gradient(f: Callable[[Any], Any]) -> np.ndarray:
    return np.asarray(di.gradient(f, di.AutoFiniteDiff(), x_numpy()))


def assert_close(actual: Any, expected: Any, rtol: float) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = max(1.0, float(np.max(np.abs(expected))))
    assert actual.shape == expected.shape
    assert float(np.max(np.abs(actual - expected))) <= rtol * scale


# --------------------------------------------------------------------------------------
# the battery, eager / tape / tf.function / forward mode / vectorized_map


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("f", BATTERY, ids=lambda f: f.__name__)
def test_eager_value_and_tape_gradient(f: Callable[[Any], Any], dtype: Any) -> None:
    x = tf.constant(x_numpy(dtype))
    y, g = tape_gradient(f, x)
    assert y.dtype == x.dtype and g.dtype == x.dtype and y.shape == ()
    assert_close(y, f(x_numpy()), RTOL[dtype])
    assert_close(g, reference_gradient(f), max(RTOL[dtype], FD_RTOL))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("f", BATTERY, ids=lambda f: f.__name__)
def test_inside_tf_function(f: Callable[[Any], Any], dtype: Any) -> None:
    traces = []

    def value_and_gradient(x: Any) -> Any:
        traces.append(type(x).__name__)
        return tape_gradient(f, x)

    spec = tf.TensorSpec([N], tf.as_dtype(dtype))
    for jit in (False, True):
        traces.clear()
        compiled = tf.function(value_and_gradient, jit_compile=jit, autograph=False)
        concrete = compiled.get_concrete_function(spec)
        for x in (x_numpy(dtype), 0.5 * x_numpy(dtype)):
            y, g = concrete(tf.constant(x))
            y_eager, g_eager = tape_gradient(f, tf.constant(x))
            assert y.dtype == g.dtype == tf.as_dtype(dtype)
            assert_close(y, y_eager, RTOL[dtype])
            assert_close(g, g_eager, RTOL[dtype])
        assert traces == ["SymbolicTensor"], traces  # traced once, on symbolic tensors


@pytest.mark.parametrize("f", [sum_exp, matrices, piecewise, products], ids=lambda f: f.__name__)
def test_forward_accumulator(f: Callable[[Any], Any]) -> None:
    x, v = tf.constant(x_numpy()), tf.constant(np.linspace(1.0, -1.0, N))
    with tf.autodiff.ForwardAccumulator(x, v) as acc:
        y = f(x)
    assert_close(acc.jvp(y), reference_gradient(f) @ v.numpy(), FD_RTOL)


def test_vectorized_map_jacobian() -> None:
    def layer(x: Any) -> Any:
        xp = xp_of(x)
        w = xp.asarray(W, dtype=x.dtype)
        return xp.concat([xp.tanh(xp.matmul(w, x)), xp.where(x > 0.5, x, 0.0)])

    x = tf.constant(x_numpy())

    @tf.function(autograph=False)
    def jacobian(x: Any) -> Any:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = layer(x)
        return tf.vectorized_map(
            lambda u: tape.gradient(y, x, output_gradients=u), tf.eye(9, dtype=x.dtype)
        )

    expected = di.jacobian(layer, di.AutoFiniteDiff(), x_numpy())
    assert_close(jacobian(x), expected, FD_RTOL)


def test_variables_are_arrays_too() -> None:
    v = tf.Variable(x_numpy())
    assert di.array_namespace(v) is NAMESPACE
    with tf.GradientTape() as tape:  # a trainable variable is watched without tape.watch
        y = sum_exp(v)
    assert_close(tape.gradient(y, v), np.exp(x_numpy()), 1e-12)


# --------------------------------------------------------------------------------------
# dtypes, names and errors


def test_dtype_rules() -> None:
    xp = NAMESPACE
    x32, x64 = tf.constant(x_numpy(np.float32)), tf.constant(x_numpy())
    # nothing to follow: NumPy's defaults, never TensorFlow's float32 / int32
    assert xp.asarray(1.0).dtype == tf.float64 and xp.asarray(1).dtype == tf.int64
    for make in (xp.zeros, xp.ones, xp.empty):
        assert make(3).dtype == tf.float64
    assert xp.eye(2).dtype == xp.linspace(0, 1, 3).dtype == xp.arange(0.0, 1.0).dtype == tf.float64
    assert xp.arange(3).dtype == tf.int64
    assert xp.asarray([x_numpy()[0], tf.constant(1.0, tf.float32)]).dtype == tf.float64
    assert xp.asarray([tf.constant(1.0, tf.float64)], dtype=xp.float32).dtype == tf.float32
    # the arrays' own dtype is kept; Python scalars follow it
    for x in (x32, x64):
        assert xp.zeros_like(x).dtype == xp.full_like(x, 2).dtype == x.dtype
        assert xp.multiply(x, 2.0).dtype == xp.where(x > 0.5, x, 0.0).dtype == x.dtype
        assert xp.asarray(x) is x and xp.clip(x, 0.2, 0.8).dtype == x.dtype
    # float32 with float64 promotes (TensorFlow's ops alone refuse)
    assert xp.add(x32, x64).dtype == xp.stack([x32, x64]).dtype == tf.float64
    assert xp.matmul(x32, x64).dtype == xp.concat([x32, x64]).dtype == tf.float64
    assert xp.astype(x64, xp.float32).dtype == tf.float32
    assert xp.isdtype(tf.float32, "real floating") and not xp.isdtype(tf.int32, "real floating")
    # no Python float passes through float32 on its way into a float64 computation
    exact = x_numpy()
    assert np.array_equal(xp.clip(x64, 0.2, 0.8).numpy(), np.clip(exact, 0.2, 0.8))
    assert np.array_equal(xp.maximum(x64, 0.3).numpy(), np.maximum(exact, 0.3))
    np.testing.assert_allclose(xp.log10(x64).numpy(), np.log10(exact), rtol=1e-15)
    for value in (xp.asarray(0.1), xp.full((), 0.1), xp.astype(0.1, xp.float64)):
        assert value.numpy() == 0.1
    assert xp.exp(0.1).numpy() == np.exp(0.1)


_DOCUMENTED = """
abs acos acosh add all any arange argmax argmin argsort asarray asin asinh astype atan atan2
atanh bool broadcast_to ceil clip complex128 complex64 concat conj cos cosh cumulative_sum
divide dot e einsum empty empty_like equal exp expand_dims expm1 eye finfo flip float32
float64 floor floor_divide full full_like greater greater_equal hypot iinfo imag inf int32
int64 isdtype isfinite isinf isnan less less_equal linalg linspace log log10 log1p log2
logaddexp logical_and logical_not logical_or logical_xor matmul matrix_transpose max maximum
mean meshgrid min minimum moveaxis multiply nan negative newaxis not_equal ones ones_like
outer permute_dims pi positive pow prod real remainder repeat reshape result_type roll round
sign sin sinh sort sqrt square squeeze stack std subtract sum take tan tanh tensordot tile
tril triu trunc unstack var vecdot where zeros zeros_like
"""
NAMES = _DOCUMENTED.split()
LINALG = "cholesky det diagonal inv matmul matrix_transpose outer solve tensordot trace vecdot"


def test_names_are_the_documented_ones() -> None:
    assert sorted(vars(NAMESPACE)) == sorted(NAMES)
    assert sorted(vars(NAMESPACE.linalg)) == sorted([*LINALG.split(), "vector_norm"])


def test_item_assignment_error_names_the_way_out() -> None:
    def f(x: Any) -> Any:
        x[0] = 1.0
        return x

    for call in (f, tf.function(f, autograph=False)):
        with pytest.raises(TypeError) as info:
            call(tf.constant(x_numpy()))
        error = mutation_error(info.value)
        assert isinstance(error, di.UnsupportedError)
        assert "immutable" in str(error) and "di.DifferentiateWith" in str(error)
    assert mutation_error(TypeError("unsupported operand")) is None


def test_di_array_namespace_returns_it() -> None:
    x = tf.constant(x_numpy())
    assert di.array_namespace(x) is di.array_namespace(tf.Variable(x)) is NAMESPACE
    with tf.GradientTape() as tape:
        tape.watch(x)
        assert di.array_namespace(x, 2.0) is NAMESPACE
    assert tf.function(lambda v: tf.constant(di.array_namespace(v) is NAMESPACE))(x).numpy()
