"""diffinterface: one API for automatic differentiation over JAX, PyTorch, TensorFlow, HIPS
autograd and NumPy finite differences, with the backend chosen at run time.

Example:
    >>> import numpy as np, diffinterface as di
    >>> def f(x):
    ...     xp = di.array_namespace(x)
    ...     return xp.sum(xp.exp(x))
    >>> di.gradient(f, "finitediff", np.zeros(3))  # or "jax", "torch", "autograd"
    array([1., 1., 1.])

This module only re-exports; importing it imports NumPy and no AD framework.
"""

from diffinterface._backend_types import (
    AutoAutograd,
    AutoCasADi,
    AutoFiniteDiff,
    AutoJAX,
    AutoTensorFlow,
    AutoTorch,
    SecondOrder,
    available_backends,
    backend,
)
from diffinterface._contexts import Cache, Constant
from diffinterface._diffcache import DiffCache, get_tmp
from diffinterface._differentiate_with import DifferentiateWith
from diffinterface._distributed.backend import Distributed
from diffinterface._errors import (
    DiffInterfaceError,
    InvalidArgumentError,
    PreparationMismatchError,
    UnsupportedError,
    WorkerError,
)
from diffinterface._namespace import array_namespace
from diffinterface._operators.derivative import (
    derivative,
    prepare_derivative,
    value_and_derivative,
)
from diffinterface._operators.gradient import gradient, prepare_gradient, value_and_gradient
from diffinterface._operators.hessian import hessian, prepare_hessian, value_gradient_and_hessian
from diffinterface._operators.hvp import gradient_and_hvp, hvp, prepare_hvp
from diffinterface._operators.jacobian import jacobian, prepare_jacobian, value_and_jacobian
from diffinterface._operators.pullback import prepare_pullback, pullback, value_and_pullback
from diffinterface._operators.pushforward import (
    prepare_pushforward,
    pushforward,
    value_and_pushforward,
)
from diffinterface._operators.second_derivative import (
    prepare_second_derivative,
    second_derivative,
    value_derivative_and_second_derivative,
)
from diffinterface._preparation import Prep
from diffinterface._sparse.backend import AutoSparse, GreedyColoring
from diffinterface._sparse.detectors import (
    DenseSparsityDetector,
    KnownSparsityDetector,
    TracerSparsityDetector,
)
from diffinterface._trees import Args

__all__ = [
    "Args",
    "AutoAutograd",
    "AutoCasADi",
    "AutoFiniteDiff",
    "AutoJAX",
    "AutoSparse",
    "AutoTensorFlow",
    "AutoTorch",
    "Cache",
    "Constant",
    "DenseSparsityDetector",
    "DiffCache",
    "DiffInterfaceError",
    "DifferentiateWith",
    "Distributed",
    "GreedyColoring",
    "InvalidArgumentError",
    "KnownSparsityDetector",
    "Prep",
    "PreparationMismatchError",
    "SecondOrder",
    "TracerSparsityDetector",
    "UnsupportedError",
    "WorkerError",
    "array_namespace",
    "available_backends",
    "backend",
    "derivative",
    "get_tmp",
    "gradient",
    "gradient_and_hvp",
    "hessian",
    "hvp",
    "jacobian",
    "prepare_derivative",
    "prepare_gradient",
    "prepare_hessian",
    "prepare_hvp",
    "prepare_jacobian",
    "prepare_pullback",
    "prepare_pushforward",
    "prepare_second_derivative",
    "pullback",
    "pushforward",
    "second_derivative",
    "value_and_derivative",
    "value_and_gradient",
    "value_and_jacobian",
    "value_and_pullback",
    "value_and_pushforward",
    "value_derivative_and_second_derivative",
    "value_gradient_and_hessian",
]
