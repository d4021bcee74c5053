"""Hand-written TensorFlow counterparts (see ``diffinterface.testsuite._native``).

What a careful TensorFlow user writes: the operator with ``tf.GradientTape`` (gradient,
``tape.jacobian`` in reverse mode, nested tapes for the Hessian) or
``tf.autodiff.ForwardAccumulator`` (forward-mode Jacobian columns vectorised by
``tf.vectorized_map``; the HVP forward over reverse), wrapped in
``tf.function(autograph=False)`` and traced once into a concrete function
(``get_concrete_function``), called with tensors through its public ``__call__``; with XLA
when the backend compiles with it (``jit_compile=True``).
"""

from __future__ import annotations

import math
from typing import Any

import diffinterface as di
from diffinterface.testsuite._native_inputs import Native, inputs, tf_converter
from diffinterface.testsuite._scenario import Scenario

__all__ = ["tensorflow_candidates"]


def tensorflow_candidates(backend: di.AutoTensorFlow, sc: Scenario) -> list[Native]:
    import tensorflow as tf

    f, args = inputs(sc, tf_converter)

    def grad(x: Any, *c: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = f(x, *c)
        return tape.gradient(y, x)

    def jacobian(x: Any, *c: Any) -> Any:
        if backend.mode == "forward":
            n = math.prod(x.shape)
            basis = tf.reshape(tf.eye(n, dtype=x.dtype), (n, *x.shape))

            def column(t: Any) -> Any:
                with tf.autodiff.ForwardAccumulator(x, t) as acc:
                    y = f(x, *c)
                return acc.jvp(y)

            columns = tf.vectorized_map(column, basis)
            y_shape = tuple(columns.shape[1:])
            m = math.prod(y_shape)
            return tf.reshape(tf.transpose(tf.reshape(columns, (n, m))), (*y_shape, *x.shape))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = f(x, *c)
        return tape.jacobian(y, x)

    def hvp(x: Any, t: Any, *c: Any) -> Any:
        with tf.autodiff.ForwardAccumulator(x, t) as acc:
            g = grad(x, *c)
        return acc.jvp(g)

    def hessian(x: Any, *c: Any) -> Any:
        with tf.GradientTape() as outer:
            outer.watch(x)
            g = grad(x, *c)
        return outer.jacobian(g, x)

    op, what = {
        "gradient": (grad, "GradientTape"),
        "jacobian": (
            jacobian,
            "ForwardAccumulator under vectorized_map"
            if backend.mode == "forward"
            else "tape.jacobian",
        ),
        "hvp": (hvp, "ForwardAccumulator over GradientTape"),
        "hessian": (hessian, "tape.jacobian of a GradientTape's gradient"),
    }[sc.operator]
    traced = tf.function(op, autograph=False, jit_compile=backend.jit_compile)
    specs = [tf.nest.map_structure(lambda a: tf.TensorSpec(a.shape, a.dtype), a) for a in args]
    concrete = traced.get_concrete_function(*specs)
    concrete(*args)  # the first call optimises the graph (XLA: compiles it)
    xla = ", XLA" if backend.jit_compile else ""
    return [Native(f"tf.function concrete function{xla}: {what}", lambda: concrete(*args))]
