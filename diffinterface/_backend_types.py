"""Backend objects: small frozen configurations that name an AD framework and its options.

A backend object only says *which* framework and *how*; the code that talks to the
framework (its adapter, see ``diffinterface._adapter``) lives in the module that the
configuration's ``adapter`` names and is imported the first time the backend is used.
A backend is registered by name with one :func:`register_backend` line. Importing this
module imports no framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from diffinterface._backend_registry import (
    Backend,
    BackendLike,
    available_backends,
    backend,
    framework_of,
    register_backend,
    resolve_backend,
)
from diffinterface._errors import InvalidArgumentError

__all__ = [
    "AutoAutograd",
    "AutoCasADi",
    "AutoFiniteDiff",
    "AutoJAX",
    "AutoTensorFlow",
    "AutoTorch",
    "Backend",
    "BackendLike",
    "SecondOrder",
    "available_backends",
    "backend",
    "framework_of",
    "register_backend",
    "resolve_backend",
]

Mode = Literal["reverse", "forward"]


@dataclass(frozen=True)
class AutoJAX(Backend):
    """Differentiate with JAX; every prepared operator is ``jax.jit``-compiled ahead of time.

    Args:
        mode: ``"reverse"`` (jacobians by vmapped VJPs) or ``"forward"`` (by vmapped JVPs).
    """

    mode: Mode = "reverse"
    name: ClassVar[str] = "jax"
    adapter: ClassVar[str] = "diffinterface.backends.jax:JaxAdapter"

    def __post_init__(self) -> None:
        self._check_choice("mode", ("reverse", "forward"))


@dataclass(frozen=True)
class AutoTorch(Backend):
    """Differentiate with PyTorch: eager ``torch.autograd`` or ``torch.func``, per operator.

    Gradients, HVPs and Hessians use eager autograd (the fastest way on CPU); pushforwards
    and batched Jacobians use ``torch.func`` (jvp/vjp under vmap). Mutating functions and
    :class:`~diffinterface.Cache` contexts always go through eager autograd.

    Args:
        mode: ``"reverse"`` (jacobians by vmapped VJPs) or ``"forward"`` (by vmapped JVPs).
    """

    mode: Mode = "reverse"
    name: ClassVar[str] = "torch"
    adapter: ClassVar[str] = "diffinterface.backends.torch:TorchAdapter"

    def __post_init__(self) -> None:
        self._check_choice("mode", ("reverse", "forward"))


@dataclass(frozen=True)
class AutoAutograd(Backend):
    """Differentiate with HIPS autograd (make_vjp for reverse, make_jvp for forward products)."""

    name: ClassVar[str] = "autograd"
    adapter: ClassVar[str] = "diffinterface.backends.autograd:AutogradAdapter"


@dataclass(frozen=True, repr=False)
class AutoFiniteDiff(Backend):
    """Finite differences on NumPy: for code no AD framework can trace.

    Args:
        method: ``"central"`` (error O(h²)), ``"forward"`` (O(h), half the evaluations, f
            evaluated on one side of x) or ``"complex"`` (complex step: exact to rounding for
            first derivatives; f must be real-analytic and let complex inputs through).
        step: ``None``: one relative step, the usual optimum for the method and dtype
            (eps^(1/3) central, eps^(1/2) forward, eps complex, eps^(1/4) for second
            differences), ``h_i = step · max(1, |x_i|)``; a number: that relative step;
            ``"adaptive"``: steps ``0.25 · s(x_i) / 3^k`` extrapolated by Richardson, with
            an error estimate per entry (``error=True`` on any operator).
        vectorized: f takes a batch of points on a leading axis, ``(b,) + x.shape``, and
            returns ``(b,) + y.shape``: all the points of a call go through f at once (or
            ``chunk_size`` at a time).
        order: with ``"adaptive"``, the order after extrapolation (default 8; even for
            central and complex).
        num_steps: with ``"adaptive"``, at most this many steps (default 8; it stops
            earlier once every entry's error estimate is below √eps relative).
        chunk_size: with ``vectorized=True``, at most this many points per call of f
            (default: as many as fit in 512 KiB, so that f's temporaries stay in cache).
        rel_step: the older name of ``step=<number>`` (both give the same backend).

    Raises:
        InvalidArgumentError: an unknown method, a step that is not None, a positive number
            or "adaptive", or an option given without the setting it belongs to.
    """

    method: Literal["central", "forward", "complex"] = "central"
    step: float | Literal["adaptive"] | None = None
    vectorized: bool = False
    order: int | None = None
    num_steps: int | None = None
    chunk_size: int | None = None
    rel_step: float | None = None
    name: ClassVar[str] = "finitediff"
    adapter: ClassVar[str] = "diffinterface.backends.finitediff:FiniteDiffAdapter"

    def __post_init__(self) -> None:
        self._check_choice("method", ("central", "forward", "complex"))
        self._check_choice("vectorized", (False, True))
        rel = self.rel_step
        if rel is not None and (not _positive(rel) or self.step not in (None, rel)):
            raise InvalidArgumentError(
                f"AutoFiniteDiff(rel_step={rel!r}) is the older name of step=<a positive "
                "number>: give one of them, a positive number or None."
            )
        step = self.step if rel is None else rel
        if not (step is None or step == "adaptive" or _positive(step)):
            raise InvalidArgumentError(
                f"AutoFiniteDiff(step={step!r}) must be None (a fixed step chosen for the "
                "method and dtype), a positive number (a relative step) or 'adaptive'."
            )
        object.__setattr__(self, "rel_step", None)  # one backend, however spelt
        if isinstance(step, int | float):  # a relative step, stored as a float
            object.__setattr__(self, "step", float(step))
        base, every = (1, 1) if self.method == "forward" else (2, 2)
        self._check_count("order", "step='adaptive'", self.step == "adaptive", base, every)
        self._check_count("num_steps", "step='adaptive'", self.step == "adaptive", 1, 1)
        self._check_count("chunk_size", "vectorized=True", self.vectorized, 1, 1)

    def _check_count(self, option: str, needs: str, given: bool, least: int, every: int) -> None:
        value = getattr(self, option)
        if value is not None and not given:
            raise InvalidArgumentError(
                f"AutoFiniteDiff({option}={value!r}) applies with {needs}; add it, or leave "
                f"{option} out."
            )
        if value is not None and not (
            _positive(value) and value == int(value) >= least and (value - least) % every == 0
        ):
            even = ", even" if every == 2 else ""
            raise InvalidArgumentError(
                f"AutoFiniteDiff({option}={value!r}) must be an integer ≥ {least}{even} "
                f"(method={self.method!r})."
            )

    def __repr__(self) -> str:  # the method, and the options that differ from the defaults
        fields = AutoFiniteDiff.__dataclass_fields__
        shown = [f"{k}={v!r}" for k, v in vars(self).items() if v != fields[k].default]
        method = [] if self.method != "central" else ["method='central'"]
        return f"AutoFiniteDiff({', '.join(method + shown)})"


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class AutoCasADi(Backend):
    """Differentiate the expression: CasADi traces f once with symbols at preparation,
    differentiates the expression graph and evaluates the derivative's own graph per call.

    f must be traceable: written with ``xp = di.array_namespace(x)`` (or operators,
    indexing and NumPy ufuncs), no Python control flow on values (use ``xp.where``), arrays
    of at most 2 dimensions, no writing into arrays. ``AutoSparse(AutoCasADi())`` returns
    CasADi's exact sparse Jacobians and Hessians, with no detection pass nor colouring.

    Args:
        symbols: ``"SX"`` (a graph of scalar operations: the fastest evaluation of scalar
            code, exact sparsity, flat generated C) or ``"MX"`` (a graph of matrix
            operations: vector operations stay whole, cheaper to trace for large
            vectorized f).
        codegen: compile each prepared derivative to C with the system compiler (gcc)
            at preparation: 0.2 s to seconds per preparation, calls 2-10× faster (SX);
            it pays off after some 10⁴ calls.
    """

    symbols: Literal["SX", "MX"] = "SX"
    codegen: bool = False
    name: ClassVar[str] = "casadi"
    adapter: ClassVar[str] = "diffinterface.backends.casadi:CasadiAdapter"
    exact_sparsity: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self._check_choice("symbols", ("SX", "MX"))
        self._check_choice("codegen", (False, True))


@dataclass(frozen=True)
class AutoTensorFlow(Backend):
    """Differentiate with TensorFlow; every prepared operator is a ``tf.function`` traced
    into a concrete function ahead of time (one per kernel, run once at preparation).

    Reverse products use ``tf.GradientTape``, forward products
    ``tf.autodiff.ForwardAccumulator``, batches of them ``tf.vectorized_map``; Jacobians in
    reverse mode and Hessians use ``tape.jacobian``.

    Args:
        mode: ``"reverse"`` (Jacobians by ``tape.jacobian``) or ``"forward"`` (by a
            vectorised batch of JVPs).
        jit_compile: compile every kernel with XLA as well (``tf.function(jit_compile=True)``):
            about half the fixed cost of a call and faster element-wise code, for 50-200 ms
            more per preparation. XLA refuses some operations (``tf.numpy_function``, hence a
            DifferentiateWith inside f, string operations, some dynamic shapes); preparation
            then raises an error naming ``jit_compile=False``, the default that runs any f.
    """

    mode: Mode = "reverse"
    jit_compile: bool = False
    name: ClassVar[str] = "tensorflow"
    adapter: ClassVar[str] = "diffinterface.backends.tensorflow:TensorFlowAdapter"

    def __post_init__(self) -> None:
        self._check_choice("mode", ("reverse", "forward"))
        if not isinstance(self.jit_compile, bool):
            raise InvalidArgumentError(
                f"AutoTensorFlow(jit_compile={self.jit_compile!r}) must be True or False."
            )


@dataclass(frozen=True)
class SecondOrder(Backend):
    """Second derivatives as ``outer`` differentiation of ``inner`` differentiation.

    For ``second_derivative``, ``hvp``, ``hessian`` and their variants: the inner backend
    computes the derivative (or gradient) function, the outer backend differentiates it:
    a pushforward if the outer backend is in forward mode (or finite differences), else a
    pullback (Hessians are symmetric). Within one framework the two compose natively (e.g.
    forward-over-reverse: ``SecondOrder(AutoJAX(mode="forward"), AutoJAX())``); across two
    frameworks the inner derivative function is bridged into the outer framework by
    :class:`~diffinterface.DifferentiateWith`.

    Args:
        outer: backend object or name that differentiates the derivative function.
        inner: backend object or name that computes the derivative function.

    Raises:
        InvalidArgumentError: a backend is not a first-order backend, or the outer one
            takes complex steps (AD gradients are not complex-analytic functions).
    """

    outer: Backend
    inner: Backend
    name: ClassVar[str] = "second_order"
    adapter: ClassVar[str] = "diffinterface._second_order:SecondOrderAdapter"
    first_order: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for role in ("outer", "inner"):
            b = getattr(self, role)
            if isinstance(b, str):
                object.__setattr__(self, role, backend(b))
            elif not (isinstance(b, Backend) and b.first_order):
                hint = (
                    " For sparse or distributed Hessians, give the first-order backend to "
                    "di.AutoSparse(...) or di.Distributed(...): they compute Hessians from "
                    "its Hessian-vector products."
                    if isinstance(b, Backend)
                    else ""
                )
                raise InvalidArgumentError(
                    f"SecondOrder({role}=...) must be a first-order backend such as "
                    f"di.AutoJAX() or its name; got {b!r}.{hint}"
                )
        if getattr(self.outer, "method", None) == "complex":
            raise InvalidArgumentError(
                "SecondOrder(outer=AutoFiniteDiff(method='complex')) would pass complex "
                "points to the inner backend's gradient; use method='central' outside."
            )
        if getattr(self.outer, "vectorized", False):
            raise InvalidArgumentError(
                "SecondOrder(outer=AutoFiniteDiff(vectorized=True)) would pass batches of points "
                "to the inner backend's gradient; AutoFiniteDiff(vectorized=True) alone takes "
                "second differences of your vectorised f."
            )


register_backend(AutoJAX, framework="jax", extra="jax", arrays=("jax", "jaxlib"))
register_backend(AutoTorch, framework="torch", extra="torch", arrays=("torch",))
register_backend(AutoTensorFlow, framework="tensorflow", extra="tensorflow", arrays=("tensorflow",))
register_backend(AutoAutograd, framework="autograd", extra="autograd", arrays=("autograd",))
register_backend(AutoFiniteDiff, framework="numpy", extra="all")
register_backend(AutoCasADi, framework="casadi", extra="casadi")
