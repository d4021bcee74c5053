"""Facts about TensorFlow that the coming TensorFlow bridge (issue 20) is designed around.

A prototype of the TF-outer side of DifferentiateWith: ``tf.custom_gradient`` around
``tf.numpy_function`` calling a NumPy "inner backend" (f, its pullback and pushforward written
by hand), with the pullback itself a ``custom_gradient`` of (x, dy) whose gradient refuses.
Pinned here: reverse mode through the boundary is right (eagerly, in ``tf.function``, under
``tape.jacobian``); second order and forward mode through it fail loudly; XLA refuses it; and,
without the refusal, TF's forward mode inside ``tf.function`` silently returns zeros even when
every derivative is supplied. If that last test starts failing, TF propagates tangents through
custom gradients now and the bridge may support forward mode (see
docs/_draft_tensorflow_notes.md, DifferentiateWith).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
tf = pytest.importorskip("tensorflow")

X = np.linspace(0.1, 1.0, 4)
V = np.linspace(1.0, -1.0, 4)


class Refused(Exception):
    """What the bridge raises for a derivative it cannot give (an UnsupportedError there)."""


def f_np(x: np.ndarray) -> np.ndarray:  # the inner function: sin(x) · Σx
    return np.sin(x) * np.sum(x)


def pullback_np(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return np.cos(x) * dy * np.sum(x) + np.sum(np.sin(x) * dy)


def pushforward_np(x: np.ndarray, dx: np.ndarray) -> np.ndarray:
    return np.cos(x) * dx * np.sum(x) + np.sin(x) * np.sum(dx)


def second_np(x: np.ndarray, dy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """∇ₓ ⟨Jᵀ(x)·dy, w⟩: what a complete pullback gradient needs from the inner backend."""
    return np.sum(w * dy * np.cos(x)) - np.sum(x) * w * dy * np.sin(x) + np.sum(w) * np.cos(x) * dy


JACOBIAN = np.diag(np.cos(X) * X.sum()) + np.sin(X)[:, None]


def _numpy_call(fn: Callable[..., np.ndarray], args: list[Any], like: Any) -> Any:
    out = tf.numpy_function(fn, args, like.dtype, stateful=False)
    out.set_shape(like.shape)  # numpy_function loses the static shape
    return out


def make_boundary(refuse: bool) -> Callable[[Any], Any]:
    @tf.custom_gradient
    def pullback(x: Any, dy: Any) -> Any:
        def grad(w: Any) -> Any:
            if refuse:
                raise Refused("second order or forward mode through a DifferentiateWith")
            return _numpy_call(second_np, [x, dy, w], x), _numpy_call(pushforward_np, [x, w], x)

        return _numpy_call(pullback_np, [x, dy], x), grad

    @tf.custom_gradient
    def boundary(x: Any) -> Any:
        return _numpy_call(f_np, [x], x), lambda dy: pullback(x, dy)

    return boundary


def jvp(boundary: Callable[[Any], Any], x: Any, v: Any) -> Any:
    with tf.autodiff.ForwardAccumulator(x, v) as acc:
        y = boundary(x)
    return acc.jvp(y)


def gradient(boundary: Callable[[Any], Any], x: Any) -> Any:
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(boundary(x) ** 2)
    return tape.gradient(y, x)


def hessian(boundary: Callable[[Any], Any], x: Any) -> Any:
    with tf.GradientTape() as outer:
        outer.watch(x)
        g = gradient(boundary, x)
    return outer.jacobian(g, x)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
def test_reverse_mode_through_the_boundary(compiled: bool) -> None:
    boundary = make_boundary(refuse=True)
    wrap = tf.function if compiled else (lambda fn: fn)
    x = tf.constant(X)
    g = wrap(lambda x: gradient(boundary, x))(x)
    np.testing.assert_allclose(g.numpy(), 2 * f_np(X) @ JACOBIAN, rtol=1e-12)

    def jacobian(x: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = boundary(x)
        return tape.jacobian(y, x)

    np.testing.assert_allclose(wrap(jacobian)(x).numpy(), JACOBIAN, rtol=1e-12)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
def test_second_order_and_forward_mode_fail_loudly(compiled: bool) -> None:
    boundary = make_boundary(refuse=True)
    wrap = tf.function if compiled else (lambda fn: fn)
    x, v = tf.constant(X), tf.constant(V)
    with pytest.raises(Refused):
        wrap(lambda x: hessian(boundary, x))(x)
    with pytest.raises(Refused):
        wrap(lambda x, v: jvp(boundary, x, v))(x, v)


def test_xla_refuses_the_boundary() -> None:
    boundary = make_boundary(refuse=True)
    compiled = tf.function(lambda x: gradient(boundary, x), jit_compile=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="unsupported operations"):
        compiled(tf.constant(X))


def test_tf_forward_mode_in_tf_function_silently_drops_custom_gradients() -> None:
    """Why the bridge refuses forward mode: with every derivative supplied it is right eagerly
    and zero inside tf.function. Second order, by contrast, is right in both."""
    boundary = make_boundary(refuse=False)
    x, v = tf.constant(X), tf.constant(V)
    np.testing.assert_allclose(jvp(boundary, x, v).numpy(), JACOBIAN @ V, rtol=1e-12)
    assert not np.any(tf.function(lambda x, v: jvp(boundary, x, v))(x, v).numpy())
    eager, compiled = hessian(boundary, x), tf.function(lambda x: hessian(boundary, x))(x)
    np.testing.assert_allclose(compiled.numpy(), eager.numpy(), rtol=1e-12)
    assert np.abs(eager.numpy() - 2 * JACOBIAN.T @ JACOBIAN).max() > 1e-3  # the x-term counts


def test_float64_traps() -> None:
    """tf.cast of a Python float goes through float32; tf.constant and operators do not."""
    assert tf.cast(0.1, tf.float64).numpy() != 0.1
    assert tf.constant(0.1, tf.float64).numpy() == 0.1
    assert (tf.constant([1.0], tf.float64) * 0.1).numpy()[0] == 0.1
    with pytest.raises(tf.errors.InvalidArgumentError):  # no promotion: an error, not a downcast
        tf.constant([1.0], tf.float32) + tf.constant([1.0], tf.float64)


def test_the_namespace_changes_nothing_globally() -> None:
    """Importing it does not switch on tf.experimental.numpy's NumPy behaviour."""
    from diffinterface.backends._tensorflow_namespace import NAMESPACE

    assert NAMESPACE.sum(tf.constant(X)).numpy() == pytest.approx(X.sum())
    assert not hasattr(tf.constant(X), "T") and not hasattr(tf.Tensor, "astype")
