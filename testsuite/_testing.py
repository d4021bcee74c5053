"""test_differentiation: every backend × scenario checked against the reference and the
contract, case by case, as a report or as pytest items.

For each case (one backend, one scenario) the checks run the operator unprepared, as its
value variant, prepared (twice: a compiling backend must not run f's Python code again)
and with ``out=``. A backend that declares it cannot run a scenario (mutation on immutable
arrays) must refuse it with ``di.UnsupportedError``: the case is then "unsupported", and a
backend that declares a refusal but computes anyway fails.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optree

import diffinterface as di
from diffinterface._adapter import adapter_for
from diffinterface._backend_types import Backend, BackendLike, resolve_backend
from diffinterface.testsuite._scenario import Scenario

__all__ = ["Case", "CaseResult", "Report", "cases", "default_tolerance", "test_differentiation"]


SECOND_ORDER_OPERATORS = frozenset({"second_derivative", "hvp", "hessian"})


def default_tolerance(backend: BackendLike, dtype: Any, order: int = 1) -> float:
    """Relative tolerance that fits the backend's error: rounding for AD, truncation for FD."""
    b = _dense(resolve_backend(backend))
    eps = float(np.finfo(dtype).eps)
    if isinstance(b, di.SecondOrder):
        steps = [s for s in (b.outer, b.inner) if isinstance(s, di.AutoFiniteDiff)]
        if isinstance(b.inner, di.AutoFiniteDiff) and order == 2:
            # differences of a finite-difference gradient, whoever differentiates it
            return 1e-4 if eps < 1e-10 else 0.05
        if steps and order == 2:  # differences of an AD gradient
            return default_tolerance(steps[0], dtype, 1)
        return default_tolerance(b.inner, dtype, order)
    if not isinstance(b, di.AutoFiniteDiff):
        return 200 * eps
    if order == 2:
        return 50 * eps**0.5 if eps < 1e-10 else 0.05
    if b.method == "complex":
        return 200 * eps
    return 50 * eps ** (1 / 2 if b.method == "forward" else 2 / 3)


def backend_label(b: BackendLike) -> str:
    """A short label: ``jax``, ``jax(forward)``, ``finitediff(complex)``."""
    b = resolve_backend(b)
    if isinstance(b, di.SecondOrder):
        return f"{backend_label(b.outer)}∘{backend_label(b.inner)}"
    if isinstance(b, di.AutoSparse):
        return f"sparse({backend_label(b.backend)})"
    options = [str(v) for k, v in vars(b).items() if v is not None and k != "rel_step"]
    default = type(b)()
    if vars(b) == vars(default):
        return b.name
    return f"{b.name}({','.join(options)})"


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


@dataclass(frozen=True)
class Case:
    """One backend on one scenario; ``run()`` gives a :class:`CaseResult`, ``check()``
    raises AssertionError on failure (for pytest: one parametrised item per case)."""

    backend: Backend | di.AutoSparse
    scenario: Scenario

    @property
    def id(self) -> str:
        return f"{backend_label(self.backend)} | {self.scenario.name}"

    def __str__(self) -> str:
        return self.id

    def run(
        self,
        *,
        correctness: bool = True,
        contract: bool = True,
        preparation: bool = True,
        rtol: float | None = None,
    ) -> CaseResult:
        """Run every variant of the case and collect the problems found."""
        reason = unsupported_reason(self.backend, self.scenario)
        if reason is not None:
            return self._expect_refusal(reason)
        sc = self.scenario
        tol = rtol if rtol is not None else default_tolerance(self.backend, sc.dtype, sc.order)
        if rtol is None and isinstance(_dense(self.backend), di.AutoFiniteDiff):
            # Rounding error of a difference quotient scales with |f(x)|, not |f'(x)|.
            tol *= max(1.0, float(np.max(np.abs(np.asarray(sc.expected()[0], dtype=float)))))
        checker = _Checker(sc, tol, correctness, contract)
        try:
            checker.compare("unprepared", sc.call(self.backend), sc.expected()[-1])
            values = sc.call(self.backend, "value")
            for i, (got, want) in enumerate(zip(values, sc.expected(), strict=True)):
                part_tol = (
                    tol if i == len(values) - 1 else default_tolerance(self.backend, sc.dtype)
                )
                checker.compare(f"value variant output #{i}", got, want, part_tol)
            self._check_prepared(checker, preparation)
            if not _is_jax(optree.tree_leaves(sc.x)[0]):
                out = _out_like(sc.call(self.backend))
                got = sc.call(self.backend, out=out)
                if contract and not _same_objects(got, out):
                    checker.problems.append("out=: the result is not the out= array")
                checker.compare("out=", out, sc.expected()[-1])
        except Exception as e:  # a crash is a failure of this case, reported with its type
            checker.problems.append(f"raised {type(e).__name__}: {e}")
        status = "fail" if checker.problems else "pass"
        return CaseResult(self.backend, sc, status, "; ".join(checker.problems))

    def check(self, **options: Any) -> CaseResult:
        """:meth:`run`, raising AssertionError with the message when the case fails."""
        result = self.run(**options)
        if result.status == "fail":
            raise AssertionError(str(result))
        return result

    def _check_prepared(self, checker: _Checker, preparation: bool) -> None:
        sc = self.scenario
        counted = _CountingFunction(sc.f)
        counted_sc = _with_function(sc, counted)
        prep = counted_sc.prepare(self.backend)
        calls = counted.calls
        for attempt in ("prepared call", "second prepared call"):
            checker.compare(attempt, counted_sc.call(self.backend, prep=prep), sc.expected()[-1])
        compiles = adapter_for(resolve_backend(self.backend)).compiles
        if preparation and compiles and counted.calls != calls:
            checker.problems.append(
                f"prepared calls ran f {counted.calls - calls} times: the backend retraced"
            )

    def _expect_refusal(self, reason: str) -> CaseResult:
        try:
            self.scenario.call(self.backend)
        except di.UnsupportedError as e:
            return CaseResult(self.backend, self.scenario, "unsupported", str(e))
        except Exception as e:
            return CaseResult(
                self.backend,
                self.scenario,
                "fail",
                f"declared unsupported ({reason}) but raised {type(e).__name__}: {e}",
            )
        return CaseResult(
            self.backend,
            self.scenario,
            "fail",
            f"declared unsupported ({reason}) but computed a result instead of refusing",
        )


def unsupported_reason(backend: BackendLike, scenario: Scenario) -> str | None:
    """Why ``backend`` cannot run ``scenario``, from the backend's own declarations."""
    b = resolve_backend(backend)
    if isinstance(b, di.SecondOrder) and scenario.operator not in SECOND_ORDER_OPERATORS:
        return "SecondOrder is for second-order operators (second_derivative, hvp, hessian)"
    adapter = adapter_for(b)
    if scenario.mutates and not adapter.supports_mutation:
        return "its arrays are immutable, so it cannot differentiate mutation"
    if (
        isinstance(b, di.AutoSparse)
        and scenario.mutates
        and scenario.operator in ("jacobian", "hessian")
        and not getattr(b.sparsity_detector, "follows_mutation", True)
    ):
        return "its sparsity detector cannot follow writes into arrays"
    return None


def cases(backends: Iterable[BackendLike], scenarios: Iterable[Scenario]) -> list[Case]:
    """Every backend × scenario, e.g. for ``pytest.mark.parametrize("case", ..., ids=str)``."""
    scenario_list = list(scenarios)
    return [Case(resolve_backend(b), s) for b in backends for s in scenario_list]


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


def test_differentiation(
    backends: Sequence[BackendLike],
    scenarios: Iterable[Scenario],
    *,
    correctness: bool = True,
    contract: bool = True,
    preparation: bool = True,
    rtol: float | None = None,
    progress: Any = None,
) -> Report:
    """Check every backend on every scenario; returns a :class:`Report`.

    Args:
        backends: backend objects or names.
        scenarios: e.g. ``default_scenarios()``.
        correctness: compare results with the scenario's reference.
        contract: check array type, dtype, device, shape and that ``out=`` is written.
        preparation: check that prepared calls do not retrace (compiling backends).
        rtol: relative tolerance; default: :func:`default_tolerance` per backend and order.
        progress: called with each :class:`CaseResult` as it is done (e.g. print).
    """
    report = Report()
    for case in cases(backends, scenarios):
        result = case.run(
            correctness=correctness, contract=contract, preparation=preparation, rtol=rtol
        )
        report.results.append(result)
        if progress is not None:
            progress(result)
    return report


test_differentiation.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# -- helpers ---------------------------------------------------------------------------


class _Checker:
    def __init__(self, scenario: Scenario, rtol: float, correctness: bool, contract: bool):
        self.scenario, self.rtol = scenario, rtol
        self.correctness, self.contract = correctness, contract
        self.problems: list[str] = []

    def compare(self, what: str, got: Any, want: Any, rtol: float | None = None) -> None:
        if isinstance(want, dict | list):  # a result in the structure of a structured x
            if optree.tree_structure(got) != optree.tree_structure(want):
                self.problems.append(
                    f"{what}: structure {optree.tree_structure(got)}, expected "
                    f"{optree.tree_structure(want)}"
                )
                return
            paths, leaves, _ = optree.tree_flatten_with_path(want)
            for path, g, w in zip(paths, optree.tree_leaves(got), leaves, strict=True):
                self.compare(f"{what}{''.join(f'[{k!r}]' for k in path)}", g, w, rtol)
            return
        if isinstance(want, tuple):
            if not isinstance(got, tuple) or len(got) != len(want):
                self.problems.append(f"{what}: expected a tuple of {len(want)} results")
                return
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                self.compare(f"{what}[{i}]", g, w, rtol)
            return
        if _is_sparse(got):  # AutoSparse: a scipy.sparse matrix of the flattened result
            got = self._sparse_as_dense(what, got, np.shape(want))
            if got is None:
                return
        elif self.contract:
            problem = _contract_problem(got, self.scenario.x, np.shape(want))
            if problem:
                self.problems.append(f"{what}: {problem}")
                return
        if self.correctness:
            problem = _value_problem(got, want, self.rtol if rtol is None else rtol)
            if problem:
                self.problems.append(f"{what}: {problem}")

    def _sparse_as_dense(self, what: str, got: Any, shape: tuple[int, ...]) -> Any:
        x_shape = tuple(np.shape(self.scenario.x))
        rows = math.prod(shape[: len(shape) - len(x_shape)])
        expected = (rows, math.prod(x_shape))
        dtype = np.dtype(_dtype_name(self.scenario.x))
        if self.contract and (tuple(got.shape) != expected or got.dtype != dtype):
            self.problems.append(
                f"{what}: sparse result of shape {got.shape} and dtype {got.dtype}, expected "
                f"{expected} and {dtype}"
            )
            return None
        return got.toarray().reshape(shape)


def _dense(b: Any) -> Any:
    """The backend that computes the products: AutoSparse's inner backend, else b."""
    return b.backend if isinstance(b, di.AutoSparse) else b


def _is_sparse(a: Any) -> bool:
    return type(a).__module__.startswith("scipy.sparse")


def _dtype_name(x: Any) -> str:
    return "float64" if isinstance(x, int | float) else str(x.dtype).removeprefix("torch.")


def _contract_problem(result: Any, x: Any, shape: tuple[int, ...]) -> str | None:
    x = optree.tree_leaves(x)[0]  # a structured x: its leaves share type, dtype, device
    if isinstance(x, int | float):
        x = np.asarray(x, dtype=np.float64)
    if type(result) is not type(x) and not (_is_jax(x) and _is_jax(result)):
        return f"array type {type(result).__name__}, expected {type(x).__name__} (x's type)"
    if result.dtype != x.dtype:
        return f"dtype {result.dtype}, expected {x.dtype} (x's dtype)"
    if getattr(result, "device", None) != getattr(x, "device", None):
        return f"device {result.device}, expected {x.device} (x's device)"
    if tuple(result.shape) != tuple(shape):
        return f"shape {tuple(result.shape)}, expected {tuple(shape)}"
    return None


def _value_problem(got: Any, want: Any, rtol: float) -> str | None:
    g = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        return f"shape {g.shape}, expected {w.shape}"
    if w.size == 0:
        return None
    scale = max(1.0, float(np.max(np.abs(w))))
    err = np.abs(g - w)
    worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
    if not np.isfinite(err).all() or float(err.max()) > rtol * scale:
        return (
            f"max |got − expected| = {float(err.max()):.3g} at {worst} "
            f"(got {g[worst]:.10g}, expected {w[worst]:.10g}) > {rtol:.2g} × {scale:.3g}"
        )
    return None


class _CountingFunction:
    """f that counts how often its Python code runs (once per trace under JAX)."""

    def __init__(self, f: Any) -> None:
        self.f, self.calls = f, 0
        self.__name__ = getattr(f, "__name__", "f")

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.f(*args)


def _with_function(sc: Scenario, f: Any) -> Scenario:
    from dataclasses import replace

    return replace(sc, f=f, name=sc.name, reference=sc.expected(), _resolved=None)


def _is_jax(a: Any) -> bool:
    return type(a).__module__.split(".")[0] in ("jax", "jaxlib")


def _out_like(result: Any) -> Any:
    return optree.tree_map(_zeros_like, result)


def _zeros_like(r: Any) -> Any:
    if _is_sparse(r):
        out = r.copy()
        out.data[...] = 0
        return out
    return r.clone() * 0 if hasattr(r, "clone") else np.zeros_like(r)


def _same_objects(got: Any, out: Any) -> bool:
    if isinstance(out, dict | list | tuple):
        return (
            isinstance(got, type(out))
            and optree.tree_structure(got) == optree.tree_structure(out)
            and all(
                g is o
                for g, o in zip(optree.tree_leaves(got), optree.tree_leaves(out), strict=True)
            )
        )
    return got is out


def _cell(statuses: list[str]) -> str:
    if not statuses:
        return "-"
    passed = statuses.count("pass")
    unsupported = statuses.count("unsupported")
    text = f"{passed}/{len(statuses) - unsupported}"
    return text + (f" +{unsupported} n/s" if unsupported else "")
