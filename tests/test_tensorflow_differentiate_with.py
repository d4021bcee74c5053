"""DifferentiateWith with TensorFlow outside (``diffinterface._bridges.tensorflow``): what the
boundary refuses loudly (forward mode and second order through it, differentiating another
argument than x, XLA), dtypes, and an exception of f surfacing as itself, eagerly and from
a compiled di operator. The 5 × 5 matrix against analytic derivatives is in
test_differentiate_with.py; TensorFlow's own checker in test_differentiate_with_checkers.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tensorflow as tf  # tests/conftest.py sets its log variables first

import diffinterface as di
from diffinterface._bridges.tensorflow import original_error
from tests.conftest import assert_close

INNERS = ["jax", "torch", "autograd", "finitediff"]  # TensorFlow inside TensorFlow: native
X = np.array([0.3, -0.8, 1.1, 0.5])


def wave(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sin(x) * xp.sum(x * x)


def wave_jacobian(x: np.ndarray) -> np.ndarray:
    return np.diag(np.cos(x) * np.sum(x * x)) + np.outer(np.sin(x), 2 * x)


def total(g: Any) -> Any:
    return lambda v: tf.reduce_sum(g(v))


@pytest.mark.parametrize("inner", INNERS)
def test_forward_mode_and_second_order_through_the_boundary_are_refused(inner: str) -> None:
    g = di.DifferentiateWith(wave, inner)
    x, t = tf.constant(X), tf.ones(4, tf.float64)
    forward = "Forward-mode derivatives and second derivatives"
    with pytest.raises(di.UnsupportedError, match=forward), tf.autodiff.ForwardAccumulator(x, t):
        g(x)

    def jvp(v: Any, w: Any) -> Any:
        with tf.autodiff.ForwardAccumulator(v, w) as acc:
            y = g(v)
        return acc.jvp(y)

    with pytest.raises(di.UnsupportedError, match=forward):
        tf.function(jvp)(x, t)

    def hessian(v: Any) -> Any:
        with tf.GradientTape() as outer:
            outer.watch(v)
            with tf.GradientTape() as inner_tape:
                inner_tape.watch(v)
                y = tf.reduce_sum(g(v))
            grad = inner_tape.gradient(y, v)
        return outer.jacobian(grad, v)

    for run in (hessian, tf.function(hessian)):
        with pytest.raises(di.UnsupportedError, match=forward):
            run(x)
    for operator, args in (("pushforward", (X,)), ("hvp", (X,)), ("hessian", ())):
        f = g if operator == "pushforward" else total(g)
        with pytest.raises(di.UnsupportedError, match=forward):
            getattr(di, operator)(f, "tensorflow", X, *args)


def test_later_arguments_a_tape_records_are_differentiated() -> None:
    """a·v: a watched tensor, a trainable variable read under the tape, and a tape outside a
    tf.function (which asks later for every floating argument); an unwatched tensor is a
    constant that the finite differences do not perturb (2 evaluations per entry of x)."""
    calls: list[int] = []

    def f(v: Any, a: Any) -> Any:
        calls.append(1)
        return a * v

    g = di.DifferentiateWith(f, "finitediff")
    want = (np.full(4, 2.0), np.sum(X))
    traced = tf.function(lambda x, a: tf.reduce_sum(g(x, a)), autograph=False)
    for a in (tf.constant(2.0, tf.float64), tf.Variable(2.0, dtype=tf.float64)):
        for run in (lambda x, a: tf.reduce_sum(g(x, a)), traced):
            with tf.GradientTape() as tape:
                x = tf.constant(X)
                tape.watch([x, a])
                y = run(x, a)
            gx, ga = tape.gradient(y, [x, a])
            assert_close(gx.numpy(), want[0], 1e-7)
            assert_close(ga.numpy(), want[1], 1e-7)
    for _ in range(2):  # prepared on the first call, counted on the second
        calls.clear()
        with tf.GradientTape() as tape:
            x = tf.constant(X)
            tape.watch(x)
            y = tf.reduce_sum(g(x, tf.constant(2.0, tf.float64)))
        assert_close(tape.gradient(y, x).numpy(), want[0], 1e-7)
    assert len(calls) <= 1 + 2 * X.size + 1


def test_float32_static_and_tensor_constants() -> None:
    g = di.DifferentiateWith(lambda v, m, k: k * (m @ v), "finitediff")
    m = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    x = tf.constant(X, tf.float32)
    for constant in (m, tf.constant(m)):

        @tf.function(autograph=False)
        def jacobian(v: Any, c: Any = constant) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(v)
                y = g(v, c, 3.0)
            return y, tape.jacobian(y, v)

        for y, jac in (jacobian(x), jacobian.python_function(x)):  # traced and eager
            assert y.dtype == jac.dtype == tf.float32 and tuple(y.shape) == (3,)
            assert_close(jac.numpy(), 3.0 * m, 2e-3)


class Boom(Exception):
    """f's own exception."""


@pytest.mark.parametrize("prepared", [False, True])
def test_an_exception_of_f_surfaces_as_itself(prepared: bool) -> None:
    armed = [False]

    def exploding(x: Any) -> Any:
        if armed[0]:
            raise Boom("raised by f")
        return wave(x)

    g = di.DifferentiateWith(exploding, "torch")
    loss = total(g)
    prep = di.prepare_gradient(loss, "tensorflow", X) if prepared else None
    armed[0] = True
    with pytest.raises(Boom, match="raised by f"):  # from a compiled kernel when prepared
        di.gradient(loss, "tensorflow", X, prep=prep)
    with pytest.raises(Boom, match="raised by f"):  # eager
        g(tf.constant(X))
    if prepared:  # f's output shape is known: the caller's own tf.function runs the boundary
        with pytest.raises(tf.errors.UnknownError, match="Boom: raised by f") as info:
            tf.function(g)(tf.constant(X))
        assert isinstance(original_error(info.value), Boom)  # found again, once
        assert original_error(info.value) is None
