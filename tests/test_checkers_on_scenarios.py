"""Every backend's pushforward and pullback on the default scenarios' functions, judged by
the frameworks' own gradient checkers: each backend, in each of its modes, differentiates
the scenario's f inside a DifferentiateWith, which torch.autograd.gradcheck (reverse,
forward, batched) and jax.test_util.check_grads (forward and reverse, under jax.jit)
compare with numerical differences of that same function. The checkers are written by
the frameworks, not by this project."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import jax.test_util
import numpy as np
import pytest
import torch

import diffinterface as di
from diffinterface.testsuite import default_scenarios
from tests.conftest import BACKENDS, backend_id

#: the out-of-place default scenarios' functions (no contexts), one x each, float64
FUNCTIONS = {
    s.f.__name__: (s.f, np.asarray(s.x, dtype=np.float64))
    for s in default_scenarios(dtypes=(np.float64,))
    if not s.mutates and not s.contexts and isinstance(s.x, np.ndarray)
}


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_torch_gradcheck(backend: Any, name: str) -> None:
    f, x = FUNCTIONS[name]
    g = di.DifferentiateWith(f, backend)
    torch.autograd.gradcheck(
        g,
        (torch.tensor(x, requires_grad=True),),
        check_forward_ad=True,
        check_batched_grad=True,
        check_batched_forward_grad=x.ndim > 0,
        atol=1e-6,
        rtol=1e-4,
    )


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_jax_check_grads(backend: Any, name: str) -> None:
    f, x = FUNCTIONS[name]
    g = di.DifferentiateWith(f, backend)
    with jax.enable_x64(True):
        jax.test_util.check_grads(
            jax.jit(g), (jnp.asarray(x),), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-4
        )
