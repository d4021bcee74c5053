"""The fast paths that rest on frameworks' private APIs are on at the versions in
constraints.txt: an upgrade that silently turns one off fails here instead of slowing
every prepared call (see backends/_jax_compat.py, backends/_torch_compat.py and
backends/_tensorflow_compat.py)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest
import tensorflow as tf
import torch
import torch.autograd.forward_ad as fwad

import diffinterface as di
from diffinterface.backends import _jax_compat, _tensorflow_compat, _torch_compat


def test_jax_kernels_are_called_through_their_cpp_callable() -> None:
    assert _jax_compat.FAST_CALL
    compiled = jax.jit(lambda v: 2 * v).lower(np.ones(3)).compile()
    call = _jax_compat.fast_call(compiled)
    assert call is not compiled and type(call).__name__ == "PjitFunction"
    np.testing.assert_array_equal(call(np.ones(3)), 2.0)


def test_jax_x64_mode_is_switched_per_call_through_its_thread_local_setting() -> None:
    assert _jax_compat.FAST_X64
    was = bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]
    seen: list[bool] = []

    def call(v: Any) -> Any:
        seen.append(bool(jax.config.jax_enable_x64))  # type: ignore[attr-defined]
        if v is None:
            raise KeyError("from the call")
        return v

    run = _jax_compat.in_x64(call)
    assert run.__name__ == "run_x64_fast"
    assert run(1.0) == 1.0
    with pytest.raises(KeyError, match="from the call"):
        run(None)
    assert seen == [True, True]
    assert bool(jax.config.jax_enable_x64) is was  # type: ignore[attr-defined]


def _count_public_grad(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    public = torch.autograd.grad

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return public(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counted)
    return calls


def test_torch_backward_passes_call_the_engine_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _torch_compat.ENGINE_BACKWARD and _torch_compat.BATCHED_BACKWARD
    x = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)

    def f(v: Any) -> Any:
        return (v**3).sum()

    preps = (di.prepare_gradient(f, "torch", x), di.prepare_hessian(f, "torch", x))
    calls = _count_public_grad(monkeypatch)
    g = di.gradient(f, "torch", x, prep=preps[0])
    h = di.hessian(f, "torch", x, prep=preps[1])
    assert not calls, "a backward pass went through torch.autograd.grad"
    torch.testing.assert_close(g, 3 * x**2)
    torch.testing.assert_close(h, torch.diag(6 * x))


def test_torch_forward_mode_knows_a_callers_open_level() -> None:
    assert _torch_compat.JVP_NESTING
    assert not _torch_compat.in_open_level()
    with fwad.dual_level():
        assert _torch_compat.in_open_level()
    seen: list[bool] = []

    def record(v: Any) -> Any:
        seen.append(_torch_compat.in_open_level())
        return v

    torch.func.jvp(record, (torch.ones(1),), (torch.ones(1),))
    assert seen == [False]  # inside torch.func.jvp its own level is open, and nests


def test_torch_knows_whether_a_torch_func_transform_runs() -> None:
    # the eager kernels ask it before they ask each leaf (tracked): None must mean "none runs"
    assert _torch_compat.functorch_level() is None
    levels: list[Any] = []

    def record(v: Any) -> Any:
        levels.append(_torch_compat.functorch_level())
        return v.sum()

    torch.func.grad(record)(torch.ones(2))
    torch.func.jvp(record, (torch.ones(1),), (torch.ones(1),))
    assert None not in levels and len(levels) == 2


def test_tensorflow_concrete_functions_are_called_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _tensorflow_compat.CALL_FLAT
    x = tf.constant([0.5, 1.0, 2.0], tf.float64)

    def f(v: Any) -> Any:
        return tf.reduce_sum(v**3)

    prep = di.prepare_gradient(f, "tensorflow", x)
    concrete = type(tf.function(f).get_concrete_function(tf.TensorSpec([3], tf.float64)))
    public: list[int] = []
    call = concrete.__call__

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        public.append(1)
        return call(self, *args, **kwargs)

    monkeypatch.setattr(concrete, "__call__", counted)
    g = di.gradient(f, "tensorflow", x, prep=prep)
    assert not public, "a prepared call went through ConcreteFunction.__call__"
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)


def test_tensorflow_knows_what_a_tape_or_accumulator_records() -> None:
    assert _tensorflow_compat.WATCHED
    x, other = tf.constant([1.0, 2.0]), tf.constant(3.0)
    assert not _tensorflow_compat.watched(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        assert _tensorflow_compat.watched(x) and not _tensorflow_compat.watched(other)
        assert not _tensorflow_compat.has_tangent(x)
    with tf.autodiff.ForwardAccumulator(x, tf.ones_like(x)):
        assert _tensorflow_compat.has_tangent(x) and _tensorflow_compat.watched(x)
        assert not _tensorflow_compat.has_tangent(other)
    seen: list[bool] = []

    @tf.function(autograph=False)
    def traced(v: Any) -> Any:
        with tf.autodiff.ForwardAccumulator(v, tf.ones_like(v)):
            seen.append(_tensorflow_compat.has_tangent(v))
        return v

    traced(x)
    assert seen == [True]  # also on the symbolic tensors of a function being traced
