"""Threads: one preparation used from 8 threads at once gives, in every thread, exactly the
result it gives alone — on every backend, for every operator, also for mutating functions
and Cache contexts. The interpreter's switch interval is shortened so that threads
interleave inside the computations rather than between calls.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import diffinterface as di
from tests.conftest import BACKENDS, MUTATING_BACKENDS, backend_id, to_numpy

THREADS = 8
CALLS_PER_THREAD = 12
POINTS = [np.linspace(-1.0, 1.0, 5) * (1 + k / 4) for k in range(THREADS)]
T = np.linspace(0.5, 1.5, 5)


def vector(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sin(x) + x * xp.sum(x)


def scalar(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(xp.sin(x) * x * x) + x[0] * x[-1]


def of_scalar(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.stack([xp.sin(x), x * x, xp.exp(x)])


def mutating(y: Any, x: Any) -> None:
    y[...] = x * x[0]
    y[1:] = y[1:] + x[:-1]


def with_scratch(x: Any, scratch: Any) -> Any:
    scratch[...] = x * x
    return di.array_namespace(x).sum(scratch * x)


#: name → (prepare(backend, x), call(backend, x, prep)); x is a point from POINTS
CASES: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "pushforward": (
        lambda b, x: di.prepare_pushforward(vector, b, x, T),
        lambda b, x, p: di.pushforward(vector, b, x, T, prep=p),
    ),
    "pushforward batch": (
        lambda b, x: di.prepare_pushforward(vector, b, x, (T, x)),
        lambda b, x, p: np.stack(
            [to_numpy(r) for r in di.pushforward(vector, b, x, (T, x), prep=p)]
        ),
    ),
    "pullback": (
        lambda b, x: di.prepare_pullback(vector, b, x, T),
        lambda b, x, p: di.pullback(vector, b, x, T, prep=p),
    ),
    "derivative": (
        lambda b, x: di.prepare_derivative(of_scalar, b, x[0]),
        lambda b, x, p: di.derivative(of_scalar, b, x[0], prep=p),
    ),
    "gradient": (
        lambda b, x: di.prepare_gradient(scalar, b, x),
        lambda b, x, p: di.gradient(scalar, b, x, prep=p),
    ),
    "jacobian": (
        lambda b, x: di.prepare_jacobian(vector, b, x),
        lambda b, x, p: di.jacobian(vector, b, x, prep=p),
    ),
    "second_derivative": (
        lambda b, x: di.prepare_second_derivative(of_scalar, b, x[0]),
        lambda b, x, p: di.second_derivative(of_scalar, b, x[0], prep=p),
    ),
    "hvp": (
        lambda b, x: di.prepare_hvp(scalar, b, x, T),
        lambda b, x, p: di.hvp(scalar, b, x, T, prep=p),
    ),
    "hessian": (
        lambda b, x: di.prepare_hessian(scalar, b, x),
        lambda b, x, p: di.hessian(scalar, b, x, prep=p),
    ),
}
MUTATING_CASES: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "jacobian of f(y, x)": (
        lambda b, x: di.prepare_jacobian(mutating, b, x, y=np.zeros(5)),
        lambda b, x, p: di.jacobian(mutating, b, x, prep=p, y=np.zeros(5)),
    ),
    "pushforward of f(y, x)": (
        lambda b, x: di.prepare_pushforward(mutating, b, x, T, y=np.zeros(5)),
        lambda b, x, p: di.pushforward(mutating, b, x, T, prep=p, y=np.zeros(5)),
    ),
    "gradient with a Cache": (
        lambda b, x: di.prepare_gradient(with_scratch, b, x, di.Cache(np.zeros(5))),
        lambda b, x, p: di.gradient(with_scratch, b, x, di.Cache(np.zeros(5)), prep=p),
    ),
}


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def _hammer(backend: Any, prepare: Callable[..., Any], call: Callable[..., Any]) -> None:
    """Each thread computes every point in turn; each result must equal the lone one."""
    prep = prepare(backend, POINTS[0])
    alone = [to_numpy(call(backend, x, prep)) for x in POINTS]
    start = threading.Barrier(THREADS)
    wrong: list[str] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            start.wait()
            for k in range(CALLS_PER_THREAD):
                j = (i + k) % len(POINTS)
                got = to_numpy(call(backend, POINTS[j], prep))
                if not np.array_equal(got, alone[j], equal_nan=True):
                    wrong.append(f"thread {i}, point {j}: {got} != {alone[j]}")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    assert not wrong, f"{len(wrong)} wrong results, e.g. {wrong[0]}"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_one_preparation_from_eight_threads(backend: Any, case: str) -> None:
    _hammer(backend, *CASES[case])


@pytest.mark.parametrize("case", sorted(MUTATING_CASES))
@pytest.mark.parametrize("backend", MUTATING_BACKENDS, ids=backend_id)
def test_mutating_functions_and_caches_from_eight_threads(backend: Any, case: str) -> None:
    _hammer(backend, *MUTATING_CASES[case])


def test_second_order_from_eight_threads() -> None:
    for backend in (
        di.SecondOrder(di.AutoTorch(mode="forward"), di.AutoTorch()),
        di.SecondOrder(di.AutoJAX(mode="forward"), di.AutoAutograd()),
    ):
        _hammer(backend, *CASES["hvp"])
