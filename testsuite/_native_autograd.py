"""Hand-written HIPS autograd counterparts (see ``diffinterface.testsuite._native``):
``autograd.grad`` / ``jacobian`` / ``hessian`` / ``hessian_vector_product`` of f."""

from __future__ import annotations

import numpy as np

import diffinterface as di
from diffinterface.testsuite._native_inputs import Native, inputs
from diffinterface.testsuite._scenario import Scenario

__all__ = ["autograd_candidates"]


def autograd_candidates(backend: di.AutoAutograd, sc: Scenario) -> list[Native]:
    import autograd

    f, args = inputs(sc, np.asarray)
    if sc.operator == "hvp":
        hvp = autograd.hessian_vector_product(f)
        x, t, consts = args[0], args[1], args[2:]
        return [Native("autograd.hessian_vector_product(f)", lambda: hvp(x, *consts, t))]
    name = "grad" if sc.operator == "gradient" else sc.operator
    op = getattr(autograd, name)(f)
    return [Native(f"autograd.{name}(f)", lambda: op(*args))]
