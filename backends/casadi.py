"""CasADi adapter: differentiate the expression of f, then evaluate the derivative's graph.

At preparation f is traced once with CasADi symbols (``di.array_namespace(x)`` is the
CasADi namespace, see ``diffinterface.backends._casadi_namespace``); every operator is a
declared kernel that differentiates the expression (``casadi.jacobian``, ``hessian``,
``jtimes`` for batches of directional derivatives) and builds one ``casadi.Function`` of
all its outputs, optionally compiled to C; a prepared call evaluates it through buffers on
NumPy arrays (``diffinterface.backends._casadi_calls``). f never runs on values.

The primitives, pushforward and pullback, serve what composes derivatives (SecondOrder,
DifferentiateWith, AutoSparse with a detector): on symbolic arrays, inside another trace,
they compute the derivative's expression (``_casadi_operators.symbolic``); on NumPy
arrays they trace f on their first call for each signature and evaluate a Function.
``AutoSparse(AutoCasADi())`` asks :meth:`CasadiAdapter.sparse_kernel` for CasADi's exact
sparse Jacobian or Hessian. Mutation (``y=``, ``di.Cache``) is refused: CasADi's
arrays are immutable.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from diffinterface._adapter import Fn, Kernel, NumpyAdapter, Problem, kernel
from diffinterface._arrays import signature
from diffinterface.backends._casadi_array import CasadiArray
from diffinterface.backends._casadi_calls import BUILDING, CasadiKernel, build_kernel
from diffinterface.backends._casadi_operators import symbolic
from diffinterface.backends._casadi_tracing import trace

__all__ = ["CasadiAdapter"]


class CasadiAdapter(NumpyAdapter):
    """Adapter for :class:`~diffinterface.AutoCasADi`: kernels of NumPy arrays."""

    native_kind: ClassVar[str] = "numpy"
    accepted_kinds: ClassVar[frozenset[str]] = frozenset({"numpy"})
    supports_mutation: ClassVar[bool] = False
    receives: ClassVar[str | None] = "casadi"
    max_ndim: ClassVar[int | None] = 2
    mutation_hint: ClassVar[str] = (
        "Use di.AutoTorch() or di.AutoFiniteDiff(), which differentiate code that writes "
        "into arrays (CasADi traces f with immutable symbolic arrays)"
    )

    # -- arrays -------------------------------------------------------------------------
    def output_template(self, fn: Fn, x: Any, consts: tuple[Any, ...]) -> Any:
        """f(x)'s shape and dtype, from a trace (f does not run on values)."""
        symbols = self.config.symbols  # type: ignore[attr-defined]
        with BUILDING:
            traced = trace(fn, tuple(x.shape), x.dtype, consts, symbols=symbols)
        return np.zeros(traced.y_shape, traced.y_dtype)

    # -- primitives: symbolic inside a trace, else a Function per signature ---------------
    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        return self._primitive("pushforward", fn, batched=False)

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        return self._primitive("pullback", fn, batched=False)

    def pushforward_batch(self, fn: Fn, mutates: bool) -> Kernel:
        return self._primitive("pushforward", fn, batched=True)

    def pullback_batch(self, fn: Fn, mutates: bool) -> Kernel:
        return self._primitive("pullback", fn, batched=True)

    def _primitive(self, operator: str, fn: Fn, batched: bool) -> Kernel:
        built: dict[Any, CasadiKernel] = {}
        config = self.config

        def primitive(x: Any, t: Any, *consts: Any) -> Any:
            batch = len(t) if batched else None
            if any(isinstance(a, CasadiArray) for a in (x, t, *consts)):
                return symbolic(operator, fn, x, t, consts, batch)
            key = (signature(x), np.shape(t), tuple(signature(c) for c in consts))
            run = built.get(key)
            if run is None:
                run = built[key] = build_kernel(operator, fn, x, consts, batch, config)
            return run(x, t, *consts)

        return primitive

    # -- the operators: one Function each -------------------------------------------------
    def _kernel(self, operator: str, fn: Fn, p: Problem) -> Kernel:
        return build_kernel(operator, fn, p.x, p.consts, p.batch, self.config, False, p.last_only)

    @kernel("pushforward", last_only=True)
    def pushforward_kernel(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, J·t)`` (a batch: J·T, one ``jtimes`` of all tangents as columns)."""
        return self._kernel("pushforward", fn, p)

    @kernel("pullback", last_only=True)
    def pullback_kernel(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, uᵀJ)`` (a batch: one reverse-mode ``jtimes`` of all cotangents)."""
        return self._kernel("pullback", fn, p)

    @kernel("derivative", last_only=True)
    def derivative(self, fn: Fn, p: Problem) -> Kernel:
        return self._kernel("derivative", fn, p)

    @kernel("gradient", last_only=True)
    def gradient(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, ∇f)``: ``casadi.gradient``, reverse mode in the expression graph."""
        return self._kernel("gradient", fn, p)

    @kernel("jacobian", last_only=True)
    def jacobian(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, J)``: ``casadi.jacobian``, which colours the exact pattern itself and
        chooses forward or reverse mode."""
        return self._kernel("jacobian", fn, p)

    @kernel("second_derivative", last_only=True)
    def second_derivative(self, fn: Fn, p: Problem) -> Kernel:
        return self._kernel("second_derivative", fn, p)

    @kernel("hvp", last_only=True)
    def hvp(self, fn: Fn, p: Problem) -> Kernel:
        """``(∇f, H·t)``: forward over reverse in the graph (``jtimes`` of the gradient)."""
        return self._kernel("hvp", fn, p)

    @kernel("hessian", last_only=True)
    def hessian(self, fn: Fn, p: Problem) -> Kernel:
        """``(y, ∇f, H)``: ``casadi.hessian`` (exact pattern, symmetric colouring)."""
        return self._kernel("hessian", fn, p)

    def sparse_kernel(self, operator: str, fn: Fn, p: Problem) -> Kernel:
        """``jacobian`` or ``hessian`` as a scipy.sparse CSR array of CasADi's exact
        pattern: the Function writes the nonzeros straight into the CSR data."""
        return build_kernel(operator, fn, p.x, p.consts, None, self.config, True, p.last_only)
