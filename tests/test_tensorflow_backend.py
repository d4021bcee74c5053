"""The TensorFlow backend beyond the shared scenarios: tensors in and out (dtype and device),
structured x, contexts and refusals, preparation without retracing, di operators inside
the caller's GradientTape and tf.function, XLA, threads. References: analytic derivatives
and the JAX backend."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import tensorflow as tf  # tests/conftest.py sets its log variables first

import diffinterface as di
from diffinterface.backends._tensorflow_compat import CALL_FLAT
from diffinterface.backends._tensorflow_namespace import NAMESPACE
from tests.conftest import assert_close

X = np.array([0.3, -0.8, 1.1, 0.5])
TF = [di.AutoTensorFlow(), di.AutoTensorFlow(mode="forward")]


def energy(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(x * x) * xp.sum(xp.sin(x))


def energy_gradient(x: np.ndarray) -> np.ndarray:
    return 2 * x * np.sum(np.sin(x)) + np.sum(x * x) * np.cos(x)


def wave(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sin(x) * xp.sum(x * x)


def wave_jacobian(x: np.ndarray) -> np.ndarray:
    return np.diag(np.cos(x) * np.sum(x * x)) + np.outer(np.sin(x), 2 * x)


@pytest.mark.parametrize("backend", TF, ids=lambda b: b.mode)
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64], ids=lambda d: d.name)
def test_tensors_in_tensors_out_dtype_and_device_kept(backend: Any, dtype: Any) -> None:
    with tf.device("/CPU:0"):
        x = tf.constant(X, dtype)
    rtol = 1e-5 if dtype == tf.float32 else 1e-13
    for result, want in (
        (di.gradient(energy, backend, x), energy_gradient(X)),
        (di.jacobian(wave, backend, x), wave_jacobian(X)),
        (di.pushforward(wave, backend, x, tf.ones_like(x)), wave_jacobian(X).sum(1)),
    ):
        assert type(result) is type(x) and result.dtype == dtype and result.device == x.device
        assert_close(result.numpy(), want, rtol)
    g = di.gradient(energy, backend, X.astype(dtype.as_numpy_dtype))  # NumPy in, NumPy out
    assert isinstance(g, np.ndarray) and g.dtype == dtype.as_numpy_dtype


def test_float64_is_computed_in_float64() -> None:
    x = np.array([0.1, 1e-9, 3.0])  # float32 would lose the 1e-9 against 0.1
    y, g = di.value_and_gradient(
        lambda v: di.array_namespace(v).sum(v * 0.1 + v * v), "tensorflow", x
    )
    assert y == np.sum(x * 0.1 + x * x) and np.array_equal(g, 0.1 + 2 * x)


@pytest.mark.parametrize("backend", TF, ids=lambda b: b.mode)
def test_structured_x_keeps_key_order_and_leaves(backend: Any) -> None:
    params = {"w": tf.constant(X), "b": tf.constant(X[:2])}

    def loss(p: Any) -> Any:
        return energy(p["w"]) * di.array_namespace(p["b"]).sum(p["b"] ** 2)

    prep = di.prepare_gradient(loss, backend, params)
    for g in (di.gradient(loss, backend, params), di.gradient(loss, backend, params, prep=prep)):
        assert list(g) == ["w", "b"] and all(type(v) is type(params["w"]) for v in g.values())
        assert_close(g["w"].numpy(), energy_gradient(X) * np.sum(X[:2] ** 2), 1e-13)
        assert_close(g["b"].numpy(), energy(X) * 2 * X[:2], 1e-13)
    h = di.hessian(loss, backend, params)
    want = di.hessian(loss, "jax", {k: v.numpy() for k, v in params.items()})
    for i in ("w", "b"):
        for j in ("w", "b"):
            assert_close(h[i][j].numpy(), want[i][j], 1e-12)


def test_contexts_constant_and_refused_cache() -> None:
    c = np.array([1.0, 2.0, 3.0, 4.0])

    def scaled(x: Any, c: Any, k: float) -> Any:
        return wave(x) * c * k

    prep = di.prepare_jacobian(scaled, "tensorflow", X, di.Constant(c), di.Constant(2.0))
    for scale in (c, 3 * c):  # an array Constant may change between calls
        got = di.jacobian(scaled, "tensorflow", X, di.Constant(scale), di.Constant(2.0), prep=prep)
        assert_close(got, 2 * np.asarray(scale)[:, None] * wave_jacobian(X), 1e-13)
    with pytest.raises(di.PreparationMismatchError):  # a static Constant is fixed
        di.jacobian(scaled, "tensorflow", X, di.Constant(c), di.Constant(3.0), prep=prep)
    with pytest.raises(di.UnsupportedError, match=r"immutable.*di\.Constant"):
        di.gradient(lambda x, tmp: energy(x), "tensorflow", X, di.Cache(X))
    with pytest.raises(di.UnsupportedError, match="immutable"):
        di.jacobian(lambda y, x: None, "tensorflow", X, y=np.zeros(4))


def test_writes_into_tensors_are_refused_naming_the_ways_out() -> None:
    cache = di.DiffCache(np.zeros(4))

    def with_buffer(x: Any) -> Any:
        tmp = di.get_tmp(cache, x)
        tmp[...] = x
        return tf.reduce_sum(tmp)

    with pytest.raises(di.UnsupportedError, match=r"TensorFlow.*immutable.*DifferentiateWith"):
        di.gradient(with_buffer, "tensorflow", X)

    def assigning(x: Any) -> Any:
        x[0] = 1.0
        return tf.reduce_sum(x)

    with pytest.raises(di.UnsupportedError, match=r"immutable.*DifferentiateWith") as info:
        di.gradient(assigning, "tensorflow", X)
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(di.InvalidArgumentError, match="TensorFlow arrays are immutable"):
        di.gradient(energy, "tensorflow", tf.constant(X), out=np.zeros(4))


def test_prepared_calls_do_not_retrace_and_other_shapes_are_refused() -> None:
    calls = []

    def counted(x: Any) -> Any:
        calls.append(1)
        return energy(x)

    prep = di.prepare_hessian(counted, "tensorflow", tf.constant(X))
    before = len(calls)
    for v in (X, 2 * X, -X):
        assert_close(di.hessian(counted, "tensorflow", tf.constant(v), prep=prep).numpy(),
                     di.hessian(energy, "jax", v), 1e-12)  # fmt: skip
    assert len(calls) == before
    for other in (tf.constant(X[:3]), tf.constant(X, tf.float32), X):
        with pytest.raises(di.PreparationMismatchError):
            di.hessian(counted, "tensorflow", other, prep=prep)
    assert CALL_FLAT  # the compatibility path is what the prepared calls take


def test_nested_in_the_callers_tape_and_tf_function() -> None:
    x = tf.constant(X)
    with tf.GradientTape() as tape:  # a di gradient inside a tape: TF differentiates it
        tape.watch(x)
        g = di.gradient(energy, "tensorflow", x)
        total = tf.reduce_sum(g)
    h = di.hessian(energy, "jax", X)
    assert_close(tape.gradient(total, x).numpy(), h.sum(0), 1e-12)

    @tf.function(autograph=False)
    def traced(v: Any) -> Any:
        assert di.array_namespace(v) is NAMESPACE
        return di.gradient(energy, "tensorflow", v), di.jacobian(wave, "tensorflow", v)

    g, j = traced(x)
    assert_close(g.numpy(), energy_gradient(X), 1e-13)
    assert_close(j.numpy(), wave_jacobian(X), 1e-13)
    with tf.GradientTape() as tape, pytest.raises(di.UnsupportedError, match="GradientTape"):
        tape.watch(x)  # another framework cannot give TensorFlow derivatives back
        di.gradient(energy, "jax", x)
    with pytest.raises(di.UnsupportedError, match=r"tf\.function"):
        tf.function(lambda v: di.gradient(energy, "torch", v), autograph=False)(x)


def test_options_xla_and_errors_while_tracing() -> None:
    with pytest.raises(di.InvalidArgumentError, match="mode"):
        di.AutoTensorFlow(mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(di.InvalidArgumentError, match="jit_compile"):
        di.AutoTensorFlow(jit_compile="yes")  # type: ignore[arg-type]
    xla = di.AutoTensorFlow(jit_compile=True)
    assert_close(di.gradient(energy, xla, X), energy_gradient(X), 1e-13)
    g = di.DifferentiateWith(wave, "finitediff")
    with pytest.raises(di.UnsupportedError, match="jit_compile=False"):
        di.gradient(lambda v: tf.reduce_sum(g(v)), xla, X)

    def branching(x: Any) -> Any:
        return tf.reduce_sum(x) if x[0] > 0 else -tf.reduce_sum(x)  # a Python if on a value

    with pytest.raises(TypeError) as info:
        di.gradient(branching, "tensorflow", X)
    assert any("xp.where" in note for note in info.value.__notes__)


def test_threads_share_a_preparation() -> None:
    prep = di.prepare_jacobian(wave, "tensorflow", X)
    points = [X * (1 + 0.1 * i) for i in range(8)]
    results: dict[int, Any] = {}

    def work(i: int) -> None:
        for _ in range(5):
            results[i] = di.jacobian(wave, "tensorflow", points[i], prep=prep)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(points))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, p in enumerate(points):
        assert_close(results[i], wave_jacobian(p), 1e-13)
