"""An exception raised in f surfaces once, with its own type, and f is not run again after
it: every backend and operator, prepared and unprepared, and through DifferentiateWith
(whose f JAX calls back from compiled code). Nothing catches the exception to retry."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import diffinterface as di
from tests.conftest import BACKENDS, COMPILING_BACKENDS, backend_id
from tests.test_evaluation_counts import CASES


class Boom(Exception):
    """f's own exception (not one of diffinterface's, nor a framework's)."""


class Exploding:
    """f that counts its calls and, once armed, raises Boom."""

    def __init__(self, f: Any, armed: bool = False) -> None:
        self.f, self.calls, self.armed = f, 0, armed

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.armed:
            raise Boom("raised by f")
        return self.f(*args)


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
@pytest.mark.parametrize("case", list(CASES))
def test_an_unprepared_call_runs_f_once_when_it_raises(backend: Any, case: str) -> None:
    f, _, call = CASES[case]
    exploding = Exploding(f, armed=True)
    with pytest.raises(Boom, match="raised by f"):
        call(exploding, backend, None)
    assert exploding.calls == 1


@pytest.mark.parametrize(
    "backend", [b for b in BACKENDS if b not in COMPILING_BACKENDS], ids=backend_id
)
@pytest.mark.parametrize("case", list(CASES))
def test_a_prepared_call_runs_f_once_when_it_raises(backend: Any, case: str) -> None:
    """(JAX's, TensorFlow's and CasADi's prepared calls run compiled code or an
    expression graph, not f: see the DifferentiateWith test.)"""
    f, prepare, call = CASES[case]
    exploding = Exploding(f)
    prep = prepare(exploding, backend)
    exploding.calls, exploding.armed = 0, True
    with pytest.raises(Boom, match="raised by f") as info:
        call(exploding, backend, prep)
    assert exploding.calls == 1
    assert any(repr(backend) in note for note in info.value.__notes__)  # names the backend


def _inner(x: Any) -> Any:
    return di.array_namespace(x).sin(x) * x


def _f_not_run(outer: str, inner: str) -> bool:
    """Whether a prepared gradient through g never runs f's Python code: in one compiling
    framework g is f, compiled into the kernel; TensorFlow's compiled gradient drops g's
    unused value, and a compiled inner pullback (JAX, TensorFlow) does not run f."""
    compiling = ("jax", "tensorflow")
    return outer in compiling and (outer == inner or (outer == "tensorflow" and inner in compiling))


@pytest.mark.parametrize("inner", ["jax", "torch", "tensorflow", "autograd", "finitediff"])
@pytest.mark.parametrize("outer", ["jax", "torch", "tensorflow", "autograd", "finitediff"])
@pytest.mark.parametrize("prepared", [False, True])
def test_differentiate_with_runs_f_once_when_it_raises(
    inner: str, outer: str, prepared: bool
) -> None:
    exploding = Exploding(_inner)
    g = di.DifferentiateWith(exploding, inner)

    def model(v: Any) -> Any:
        return di.array_namespace(v).sum(g(v))

    x = np.array([0.3, -0.7, 1.1])
    prep = di.prepare_gradient(model, outer, x) if prepared else None
    exploding.calls, exploding.armed = 0, True
    if prepared and _f_not_run(outer, inner):
        di.gradient(model, outer, x, prep=prep)
        assert exploding.calls == 0
        return
    with pytest.raises(Boom, match="raised by f"):
        di.gradient(model, outer, x, prep=prep)
    assert exploding.calls == 1
