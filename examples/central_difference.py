"""A complete small backend in one module: central finite differences on NumPy arrays.

It shows what a backend is made of (docs/writing_a_backend.md): a frozen configuration, an
adapter with the two primitives (pushforward and pullback) and one declared kernel, and
one registration line. Every other operator, second order included, derives from the two
primitives. (diffinterface's own ``AutoFiniteDiff`` does this with more care.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from diffinterface.extend import Adapter, Backend, Fn, Kernel, Problem, kernel, register_backend


@dataclass(frozen=True)
class AutoCentralDifference(Backend):
    """Central differences, ``(f(x + h t) − f(x − h t)) / 2h`` with ``h = step·max(1, |x|)``."""

    step: float = 1e-4
    name: ClassVar[str] = "central_difference"
    adapter: ClassVar[str] = "examples.central_difference:CentralDifferenceAdapter"


class CentralDifferenceAdapter(Adapter):
    native_kind = "numpy"  # f receives NumPy arrays
    accepted_kinds = frozenset({"numpy"})  # inputs taken as they are
    supports_mutation = True  # f is only evaluated, so it may write into arrays
    plain_values = True  # f may return a Python number (math.sin(x[0]))

    def stack(self, arrays: list[Any]) -> Any:
        return np.stack(arrays)

    def eye(self, n: int, like: Any) -> Any:
        return np.eye(n, dtype=like.dtype)

    def ones(self, template: Any, like: Any) -> Any:
        return np.ones(np.shape(template), dtype=template.dtype)

    def _step(self, x: Any) -> float:
        return self.config.step * max(1.0, float(np.max(np.abs(x), initial=0.0)))  # type: ignore[attr-defined]

    def pushforward(self, fn: Fn, mutates: bool) -> Kernel:
        def push(x: Any, t: Any, *consts: Any) -> Any:
            h = self._step(x)
            y = np.asarray(fn(x, *consts))
            return y, (fn(x + h * t, *consts) - fn(x - h * t, *consts)) / (2 * h)

        return push

    def pullback(self, fn: Fn, mutates: bool) -> Kernel:
        jacobian = self.jacobian(fn, None)  # uᵀJ needs the whole Jacobian

        def pull(x: Any, u: Any, *consts: Any) -> Any:
            y, jac = jacobian(x, *consts)
            return y, (u.reshape(-1) @ jac.reshape(y.size, x.size)).reshape(x.shape)

        return pull

    @kernel("jacobian")  # faster than the generic one: f(x) once, not once per column
    def jacobian(self, fn: Fn, p: Problem | None) -> Kernel:
        def jacobian(x: Any, *consts: Any) -> Any:
            y, h = np.asarray(fn(x, *consts)), self._step(x)
            columns = []
            for e in np.eye(x.size, dtype=x.dtype).reshape((x.size, *x.shape)):
                columns.append((fn(x + h * e, *consts) - fn(x - h * e, *consts)) / (2 * h))
            jac = np.stack(columns, axis=-1) if columns else np.zeros((*y.shape, 0), y.dtype)
            return y, jac.reshape(y.shape + x.shape)

        return jacobian


register_backend(AutoCentralDifference, framework="numpy", extra="all")
