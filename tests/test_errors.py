"""Every documented error: raised early, with a message naming the problem and the fix."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest

import diffinterface as di
from diffinterface import _adapter, _backend_registry
from diffinterface.testsuite._collections import energy as scalar_fn
from diffinterface.testsuite._collections import wave as vector_fn

X = np.linspace(-0.5, 0.8, 4)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        ([1.0, 2.0], "expected a NumPy array"),
        (np.arange(3), "real floating dtype"),
        (np.ones(3, dtype=complex), "real floating dtype"),
        (True, "bool"),
        ("1.0", "expected a NumPy array"),
    ],
)
def test_bad_x(x: Any, message: str) -> None:
    with pytest.raises(di.InvalidArgumentError, match=message):
        di.gradient(scalar_fn, "finitediff", x)


def test_operator_shape_rules() -> None:
    with pytest.raises(di.InvalidArgumentError, match=r"scalar .0-d. array.*Use jacobian"):
        di.gradient(vector_fn, "torch", X)
    with pytest.raises(di.InvalidArgumentError, match=r"needs a scalar .0-d. x"):
        di.derivative(vector_fn, "torch", X)
    with pytest.raises(di.InvalidArgumentError, match=r"tangent #0 .* must match x: shape \(4,\)"):
        di.pushforward(vector_fn, "jax", X, np.ones(3))
    with pytest.raises(di.InvalidArgumentError, match=r"cotangent #1 .*dtype float32"):
        di.pullback(vector_fn, "jax", X, (np.ones(4), np.ones(4, np.float32)))
    with pytest.raises(di.InvalidArgumentError, match="empty tuple"):
        di.hvp(scalar_fn, "autograd", X, ())


def test_bad_backends() -> None:
    with pytest.raises(di.InvalidArgumentError, match="Unknown backend name 'theano'"):
        di.gradient(scalar_fn, "theano", X)
    with pytest.raises(di.InvalidArgumentError, match=r"mode='sideways'.*choose one of"):
        di.AutoJAX(mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(di.InvalidArgumentError, match="rel_step"):
        di.AutoFiniteDiff(rel_step=-1.0)
    with pytest.raises(di.InvalidArgumentError, match="unexpected keyword"):
        di.backend("jax", speed="fast")
    with pytest.raises(di.InvalidArgumentError, match="Expected a backend"):
        di.gradient(scalar_fn, 42, X)  # type: ignore[arg-type]
    assert di.backend("finitediff", method="complex") == di.AutoFiniteDiff(method="complex")
    assert set(di.available_backends()) == {
        "jax",
        "torch",
        "tensorflow",
        "autograd",
        "finitediff",
        "casadi",
    }
    with pytest.raises(di.InvalidArgumentError, match=r"symbols=.SY.*choose one of"):
        di.AutoCasADi(symbols="SY")  # type: ignore[arg-type]


def test_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _backend_registry._REGISTRY["jax"]
    missing = type(entry)(entry.config, "jax_is_not_installed_here", "jax")
    monkeypatch.setitem(_backend_registry._REGISTRY, "jax", missing)
    _adapter.adapter_for.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install 'diffinterface\[jax\]'"):
            di.gradient(scalar_fn, di.AutoJAX(mode="forward"), X)
    finally:
        _adapter.adapter_for.cache_clear()


def test_bad_out() -> None:
    with pytest.raises(
        di.InvalidArgumentError, match=r"out= must be a NumPy array of shape \(4,\)"
    ):
        di.gradient(scalar_fn, "torch", X, out=np.zeros(3))
    with pytest.raises(di.InvalidArgumentError, match="dtype float64"):
        di.gradient(scalar_fn, "torch", X, out=np.zeros(4, np.float32))
    with pytest.raises(di.InvalidArgumentError, match="JAX arrays are immutable"):
        di.gradient(
            scalar_fn, "jax", jax.numpy.asarray(X, dtype=np.float32), out=jax.numpy.zeros(4)
        )
    with pytest.raises(di.InvalidArgumentError, match="tuple of 2 arrays"):
        di.hvp(scalar_fn, "jax", X, (X, X), out=np.zeros(4))


def test_bad_contexts_and_functions() -> None:
    with pytest.raises(di.InvalidArgumentError, match=r"Context #0 .* di\.Constant"):
        di.gradient(lambda x, c: scalar_fn(x), "torch", X, 2.0)  # type: ignore[arg-type]
    with pytest.raises(di.InvalidArgumentError, match="f must be callable"):
        di.gradient("f", "torch", X)  # type: ignore[arg-type]
    with pytest.raises(di.InvalidArgumentError, match=r"returned a tuple; gradient needs one"):
        di.gradient(lambda x: (x.sum(), x.sum()), "finitediff", X)
    with pytest.raises(di.InvalidArgumentError, match="must be passed with y="):
        di.jacobian(lambda x: None, "finitediff", X)


def test_errors_inside_f_say_where_they_happened() -> None:
    def broken(x: Any) -> Any:
        raise ZeroDivisionError("inside the model")

    with pytest.raises(ZeroDivisionError) as info:
        di.gradient(broken, "autograd", X)
    assert "gradient with AutoAutograd()" in "".join(info.value.__notes__)


def test_sparse_without_scipy_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(di.AutoSparse, "requires", ("scipy_is_not_installed_here", "sparse"))
    _adapter.adapter_for.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"pip install 'diffinterface\[sparse\]'"):
            di.jacobian(lambda x: x * x, di.AutoSparse("finitediff"), X)
    finally:
        _adapter.adapter_for.cache_clear()


@pytest.mark.parametrize("name", ["jax", "torch", "autograd", "finitediff"])
def test_an_error_estimate_from_a_backend_that_gives_none_names_one_that_does(name: str) -> None:
    with pytest.raises(di.UnsupportedError, match=r"no error estimate.*step='adaptive'"):
        di.gradient(scalar_fn, name, X, error=True)

    def square(x: Any) -> Any:
        return x * x

    prep = di.prepare_jacobian(square, name, X)
    with pytest.raises(di.UnsupportedError, match="no error estimate"):
        di.value_and_jacobian(square, name, X, prep=prep, error=True)


def test_an_error_estimate_through_distributed_names_the_direct_call() -> None:
    """Distributed does not carry the adaptive estimates of the backend it wraps: the refusal
    says so instead of recommending the backend it already wraps."""
    from concurrent.futures import ThreadPoolExecutor

    adaptive = di.AutoFiniteDiff(step="adaptive")
    with ThreadPoolExecutor(2) as pool:
        wrapped = di.Distributed(adaptive, workers=pool)
        with pytest.raises(di.UnsupportedError, match="when called directly") as info:
            di.jacobian(vector_fn, wrapped, X, error=True)
    assert repr(adaptive) in str(info.value)
    _, error = di.jacobian(vector_fn, adaptive, X, error=True)  # the direct call gives one
    assert np.all(np.asarray(error) >= 0)
