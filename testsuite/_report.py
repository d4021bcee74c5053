"""The outcome of test_differentiation: one :class:`CaseResult` per case, gathered in a
:class:`Report` that summarises them by backend and operator, with backends named by
:func:`backend_label` (as the benchmark and capability tables name them too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import diffinterface as di
from diffinterface._backend_types import Backend, BackendLike, resolve_backend
from diffinterface.testsuite._scenario import Scenario

__all__ = ["CaseResult", "Report", "backend_label"]


def backend_label(b: BackendLike) -> str:
    """A short label: ``jax``, ``jax(forward)``, ``finitediff(complex)``, the options that
    differ from the defaults (``finitediff(adaptive,vectorized)``)."""
    b = resolve_backend(b)
    if isinstance(b, di.SecondOrder):
        return f"{backend_label(b.outer)}∘{backend_label(b.inner)}"
    if isinstance(b, di.AutoSparse):
        return f"sparse({backend_label(b.backend)})"
    if isinstance(b, di.Distributed):
        return f"distributed({backend_label(b.backend)})"
    default = vars(type(b)())
    options = [
        str(v) if isinstance(v, str) else k if v is True else f"{k}={v}"
        for k, v in vars(b).items()
        if v != default[k]
    ]
    return f"{b.name}({','.join(options)})" if options else b.name


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case: ``status`` is "pass", "fail" or "unsupported"."""

    backend: Backend | di.AutoSparse
    scenario: Scenario
    status: str
    message: str = ""

    def __str__(self) -> str:
        text = f"[{self.status}] {backend_label(self.backend)} | {self.scenario.name}"
        return text + (f": {self.message}" if self.message else "")


@dataclass
class Report:
    """All case results, with summaries by backend and operator."""

    results: list[CaseResult] = field(default_factory=list)

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def ok(self) -> bool:
        return not self.failures

    def table(self) -> str:
        """Backend × operator: passed/total, with "n/s" counts for unsupported cases."""
        backends = list(dict.fromkeys(backend_label(r.backend) for r in self.results))
        operators = list(dict.fromkeys(r.scenario.operator for r in self.results))
        cells: dict[tuple[str, str], list[str]] = {}
        for r in self.results:
            key = (backend_label(r.backend), r.scenario.operator)
            cells.setdefault(key, []).append(r.status)
        width = max([len(b) for b in backends] + [8])
        lines = [f"{'':<{width}}  " + "  ".join(f"{op[:17]:>17}" for op in operators)]
        for b in backends:
            row = [_cell(cells.get((b, op), [])) for op in operators]
            lines.append(f"{b:<{width}}  " + "  ".join(f"{c:>17}" for c in row))
        return "\n".join(lines)

    def __str__(self) -> str:
        counts = {
            s: sum(r.status == s for r in self.results) for s in ("pass", "fail", "unsupported")
        }
        head = ", ".join(f"{n} {s}" for s, n in counts.items())
        lines = [f"{len(self.results)} cases: {head}", self.table()]
        lines += [str(r) for r in self.failures]
        return "\n".join(lines)


def _cell(statuses: list[str]) -> str:
    if not statuses:
        return "-"
    passed = statuses.count("pass")
    unsupported = statuses.count("unsupported")
    text = f"{passed}/{len(statuses) - unsupported}"
    return text + (f" +{unsupported} n/s" if unsupported else "")
