"""Hand-written native counterparts of diffinterface's operators, for side-by-side timing.

For a backend and a scenario, :func:`native_candidates` lists the ways a careful user would
compute the same operator directly with the framework's own API: ``jax.jit(jax.grad(f))``
and friends, eager ``torch.autograd`` or ``torch.func``, concrete functions of
``tf.function`` (``diffinterface.testsuite._native_tensorflow``), HIPS ``autograd.grad`` /
``jacobian`` / ``hessian`` / ``hessian_vector_product``, CasADi's own Functions
(``diffinterface.testsuite._native_casadi``), and scipy's ``approx_derivative``
for finite differences (same method and relative steps, except that scipy's complex step
is its default eps^½ where the backend's is eps, both exact to rounding). The benchmark
times the candidates and compares diffinterface with the fastest.

Each candidate works on the scenario's inputs converted once to the framework's array
type, returns the operator's plain result (the gradient, the Jacobian, H·t, ...) in that
type, and blocks until it is computed (JAX dispatches asynchronously). Covered: gradient,
jacobian, hessian and single-tangent hvp on out-of-place f; anything else has no
candidates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import optree

import diffinterface as di
from diffinterface.testsuite._expectations import unsupported_reason
from diffinterface.testsuite._native_autograd import autograd_candidates
from diffinterface.testsuite._native_casadi import casadi_candidates
from diffinterface.testsuite._native_inputs import (
    Native,
    inputs,
    jax_converter,
    needs_x64,
    tf_converter,
    torch_converter,
)
from diffinterface.testsuite._native_scipy import scipy_candidates
from diffinterface.testsuite._native_tensorflow import tensorflow_candidates
from diffinterface.testsuite._scenario import Scenario

__all__ = ["Native", "in_native_kind", "native_candidates", "native_kind", "to_numpy"]

_OPERATORS = ("gradient", "jacobian", "hessian", "hvp")


def native_kind(backend: Any) -> str:
    """The array kind the backend's framework computes in: ``"jax"``, ``"torch"``,
    ``"tensorflow"``, ``"numpy"``."""
    name = getattr(backend, "name", "")
    return name if name in ("jax", "torch", "tensorflow") else "numpy"


def native_candidates(backend: Any, sc: Scenario) -> list[Native]:
    """The hand-written ways to compute ``sc``'s operator with ``backend``'s framework.

    Empty when there is no counterpart: SecondOrder and AutoSparse backends, mutating f,
    Cache contexts, batches of tangents, operators other than gradient / jacobian /
    hessian / hvp, a structured x for anything but a gradient, or finite differences with
    adaptive steps (no hand-written counterpart of their accuracy: scipy.differentiate is
    compared in benchmarks/finite_difference_accuracy.py). A vectorised finite-difference
    backend is compared with scipy's one call per point.
    """
    if (
        sc.operator not in _OPERATORS
        or getattr(backend, "step", None) == "adaptive"
        or sc.mutates
        or isinstance(sc.tangents, tuple)
        or (sc.operator != "gradient" and isinstance(sc.x, dict | list | tuple))
        or not isinstance(
            backend,
            di.AutoJAX
            | di.AutoTorch
            | di.AutoTensorFlow
            | di.AutoAutograd
            | di.AutoFiniteDiff
            | di.AutoCasADi,
        )
    ):
        return []
    builders: dict[str, Callable[[Any, Scenario], list[Native]]] = {
        "jax": _jax,
        "torch": _torch,
        "tensorflow": tensorflow_candidates,
        "autograd": autograd_candidates,
        "finitediff": _finitediff,
        "casadi": _casadi,
    }
    return builders[backend.name](backend, sc)


def in_native_kind(sc: Scenario, backend: Any) -> Scenario:
    """``sc`` with x, tangents and array Constants in the backend's array type, as a user of
    that framework holds them (no conversion left for diffinterface to do per call)."""
    kind = native_kind(backend)
    if kind == "numpy":
        return sc
    if kind == "jax":
        convert = jax_converter(sc)
    else:
        convert = torch_converter if kind == "torch" else tf_converter
    contexts = tuple(
        di.Constant(convert(c.value))
        if isinstance(c, di.Constant) and isinstance(c.value, np.ndarray)
        else c
        for c in sc.contexts
    )
    return replace(sc.with_kind(kind), contexts=contexts)


def to_numpy(a: Any) -> Any:
    """A native result (array or structure of arrays) as NumPy."""
    return optree.tree_map(
        lambda v: v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v), a
    )


# -- JAX ----------------------------------------------------------------------------------


def _jax(backend: di.AutoJAX, sc: Scenario) -> list[Native]:
    import jax

    x64 = needs_x64(sc)
    f, args = inputs(sc, jax_converter(sc))
    jac = jax.jacfwd if backend.mode == "forward" else jax.jacrev
    if sc.operator == "hvp":

        def hvp(x: Any, t: Any, *c: Any) -> Any:
            return jax.jvp(lambda v: jax.grad(f)(v, *c), (x,), (t,))[1]

        op, method = hvp, "jax.jit(jax.jvp(jax.grad(f)))"
    else:
        op, method = {
            "gradient": (jax.grad(f), "jax.jit(jax.grad(f))"),
            "jacobian": (jac(f), f"jax.jit(jax.{jac.__name__}(f))"),
            "hessian": (jax.hessian(f), "jax.jit(jax.hessian(f))"),
        }[sc.operator]
    with jax.enable_x64(x64):
        compiled = jax.jit(op)
        jax.block_until_ready(compiled(*args))

    def call() -> Any:
        with jax.enable_x64(x64):
            return jax.block_until_ready(compiled(*args))

    return [Native(method + (" under jax.enable_x64" if x64 else ""), call)]


# -- torch --------------------------------------------------------------------------------


def _torch(backend: di.AutoTorch, sc: Scenario) -> list[Native]:
    import torch
    from torch import func

    f, args = inputs(sc, torch_converter)
    x, rest = args[0], args[1:]
    leaves, tree = optree.tree_flatten(x)
    tracked = [v.detach().requires_grad_(True) for v in leaves]
    xl = optree.tree_unflatten(tree, tracked)

    def grad(y: Any, create_graph: bool = False) -> Any:
        return torch.autograd.grad(y, tracked, create_graph=create_graph)

    if sc.operator == "gradient" and not isinstance(x, dict | list | tuple):
        (leaf,) = tracked

        def eager() -> Any:
            return torch.autograd.grad(f(leaf, *rest), leaf)[0]

        func_op: Any = func.grad(f)
    elif sc.operator == "gradient":

        def eager() -> Any:
            return optree.tree_unflatten(tree, list(grad(f(xl, *rest))))

        func_op = func.grad(f)
    elif sc.operator == "jacobian":
        jac = func.jacfwd if backend.mode == "forward" else func.jacrev
        jac_f = jac(f)
        return [Native(f"torch.func.{jac.__name__}(f)", lambda: jac_f(x, *rest))]
    elif sc.operator == "hvp":
        t, consts = rest[0], rest[1:]

        def eager() -> Any:
            (g,) = grad(f(xl, *consts), create_graph=True)
            return torch.autograd.grad(g, tracked, t)[0]

        def func_op(v: Any, t: Any, *c: Any) -> Any:
            return func.jvp(lambda w: func.grad(f)(w, *c), (v,), (t,))[1]

    else:
        n = math.prod(x.shape)
        basis = torch.eye(n, dtype=x.dtype).reshape((n, *x.shape))

        def eager() -> Any:
            (g,) = grad(f(xl, *rest), create_graph=True)
            h = torch.autograd.grad(g, tracked, basis, is_grads_batched=True)[0]
            return h.reshape(x.shape + x.shape)

        func_op = func.hessian(f)
    name = {"gradient": "grad(f)", "hvp": "jvp(torch.func.grad(f))", "hessian": "hessian(f)"}[
        sc.operator
    ]
    second = " (double backward)" if sc.operator in ("hvp", "hessian") else ""
    return [
        Native(f"torch.autograd.grad eager{second}", eager),
        Native(f"torch.func.{name}", lambda: func_op(*args)),
    ]


# -- CasADi (testsuite/_native_casadi.py) --------------------------------------------------


def _casadi(backend: di.AutoCasADi, sc: Scenario) -> list[Native]:
    if unsupported_reason(backend, sc) is not None:  # x of more than 2 dimensions
        return []
    f, args = inputs(sc, np.asarray)
    return [Native(m, c) for m, c in casadi_candidates(backend, sc.operator, f, args)]


# -- finite differences (testsuite/_native_scipy.py) ---------------------------------------


def _finitediff(backend: di.AutoFiniteDiff, sc: Scenario) -> list[Native]:
    f, args = inputs(sc, np.asarray)
    return [Native(m, c) for m, c in scipy_candidates(backend.method, sc.operator, f, args)]
