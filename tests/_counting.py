"""A wrapper that counts how often Python runs f: each JAX trace runs it once, so a
prepared call that neither retraces nor recompiles leaves the count unchanged."""

from __future__ import annotations

from typing import Any


class CountingFunction:
    """Wraps f and counts how often Python runs it (each JAX trace runs it once)."""

    def __init__(self, f: Any) -> None:
        self.f, self.calls = f, 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.f(*args)
