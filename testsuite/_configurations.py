"""Every backend configuration the suite knows: each framework in each of its modes.

Finite differences also run with adaptive steps and with a vectorised f
(``vectorized=True``): the suite then gives the backend each scenario's batch-accepting
function (:meth:`Scenario.vectorized`).
"""

from __future__ import annotations

from typing import Any

import diffinterface as di

__all__ = ["ALL_CONFIGURATIONS", "CONFIGURATIONS"]

#: per framework name, its backend in every mode or method
CONFIGURATIONS: dict[str, tuple[Any, ...]] = {
    "jax": (di.AutoJAX(), di.AutoJAX(mode="forward")),
    "torch": (di.AutoTorch(), di.AutoTorch(mode="forward")),
    "tensorflow": (di.AutoTensorFlow(), di.AutoTensorFlow(mode="forward")),
    "autograd": (di.AutoAutograd(),),
    "finitediff": (
        di.AutoFiniteDiff(),
        di.AutoFiniteDiff(method="forward"),
        di.AutoFiniteDiff(method="complex"),
        di.AutoFiniteDiff(step="adaptive"),
        di.AutoFiniteDiff(vectorized=True),
    ),
    "casadi": (di.AutoCasADi(),),
}

#: all of them, framework by framework
ALL_CONFIGURATIONS: tuple[Any, ...] = tuple(b for bs in CONFIGURATIONS.values() for b in bs)
