"""The fast paths that rest on frameworks' private APIs are on at the versions in
constraints.txt: an upgrade that silently turns one off fails here instead of slowing
every prepared call (see backends/_jax_compat.py and backends/_torch_compat.py)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as fwad

import diffinterface as di
from diffinterface.backends import _jax_compat, _torch_compat


def test_jax_kernels_are_called_through_their_cpp_callable() -> None:
    assert _jax_compat.FAST_CALL
    compiled = jax.jit(lambda v: 2 * v).lower(np.ones(3)).compile()
    call = _jax_compat.fast_call(compiled)
    assert call is not compiled and type(call).__name__ == "PjitFunction"
    np.testing.assert_array_equal(call(np.ones(3)), 2.0)


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
