"""The torch backend's fast paths (direct autograd engine calls, a Hessian basis kept by the
preparation) give what torch.autograd.grad and analytic derivatives give, hand out no buffer
that the next call reuses, leave the caller's x alone, and step aside where they do not
apply (a ``__torch_function__`` mode)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import diffinterface as di
from diffinterface.backends import _torch_eager as torch_eager


def _sum_exp(x: Any) -> Any:
    return torch.exp(x).sum()


def _identity(x: Any) -> Any:
    return x


def _constant(x: Any) -> Any:
    return torch.tensor(2.0)


def _cubes(x: Any) -> Any:
    return (x**3).sum() / 6  # Hessian diag(x)


class _GradientIsX(torch.autograd.Function):
    """½ Σ x² whose backward hands back x itself (valid for the seed 1 of a gradient): the
    gradient is then x's own tensor, and a Hessian's basis comes back unchanged."""

    @staticmethod
    def forward(ctx: Any, x: Any) -> Any:
        ctx.save_for_backward(x)
        return (x * x).sum() / 2

    @staticmethod
    def backward(ctx: Any, gy: Any) -> Any:
        (x,) = ctx.saved_tensors
        return x


def _half_square_plain(x: Any) -> Any:
    return (x * x).sum() / 2


def _half_square(x: Any) -> Any:
    return _GradientIsX.apply(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_prepared_gradient_matches_the_analytic_one(dtype: torch.dtype) -> None:
    x = torch.linspace(-1.0, 1.0, 7, dtype=dtype)
    prep = di.prepare_gradient(_sum_exp, "torch", x)
    for _ in range(3):
        value, g = di.value_and_gradient(_sum_exp, "torch", x, prep=prep)
        assert g.dtype == dtype and g.shape == x.shape and not g.requires_grad
        torch.testing.assert_close(g, torch.exp(x))
        torch.testing.assert_close(value, torch.exp(x).sum())


def test_the_caller_x_is_left_alone_and_not_shared() -> None:
    x = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    before = x.clone()
    prep = di.prepare_gradient(_half_square_plain, "torch", x)
    g = di.gradient(_half_square_plain, "torch", x, prep=prep)
    g2 = di.gradient(_half_square_plain, "torch", x, prep=prep)
    assert not x.requires_grad and x.grad is None and x.grad_fn is None
    assert g.untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    g.add_(100.0)  # the result is the caller's to change
    torch.testing.assert_close(x, before)
    torch.testing.assert_close(g2, before)


def test_a_gradient_that_is_the_seed_itself_is_new_on_every_call() -> None:
    # f(x) = x: the engine hands back the seed (ones) itself as the gradient.
    x = torch.tensor(3.0, dtype=torch.float64)
    prep = di.prepare_gradient(_identity, "torch", x)
    g1 = di.gradient(_identity, "torch", x, prep=prep)
    g1.mul_(5.0)
    g2 = di.gradient(_identity, "torch", x, prep=prep)
    torch.testing.assert_close(g2, torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(x, torch.tensor(3.0, dtype=torch.float64))


def test_zeros_where_f_ignores_x() -> None:
    x = torch.ones(4, dtype=torch.float32)
    prep = di.prepare_gradient(_constant, "torch", x)
    g = di.gradient(_constant, "torch", x, prep=prep)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, torch.zeros(4))


@pytest.mark.parametrize("n", [3, torch_eager.KEPT_BASIS + 5])
def test_prepared_hessian_matches_the_analytic_one(n: int) -> None:
    x = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    prep = di.prepare_hessian(_cubes, "torch", x)
    for _ in range(2):
        value, g, h = di.value_gradient_and_hessian(_cubes, "torch", x, prep=prep)
        torch.testing.assert_close(h, torch.diag(x))
        torch.testing.assert_close(g, x * x / 2)
        torch.testing.assert_close(value, (x**3).sum() / 6)


def test_a_hessian_that_is_the_basis_itself_is_new_on_every_call() -> None:
    x = torch.linspace(-1.0, 1.0, 4, dtype=torch.float64)
    prep = di.prepare_hessian(_half_square, "torch", x)
    h1 = di.hessian(_half_square, "torch", x, prep=prep)
    torch.testing.assert_close(h1, torch.eye(4, dtype=torch.float64))
    h1.add_(1.0)
    h2 = di.hessian(_half_square, "torch", x, prep=prep)
    torch.testing.assert_close(h2, torch.eye(4, dtype=torch.float64))


def test_prepared_hvp_and_pullback_match_analytic_ones() -> None:
    x = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    t = torch.arange(5.0, dtype=torch.float64)
    prep = di.prepare_hvp(_cubes, "torch", x, t)
    for _ in range(2):
        torch.testing.assert_close(di.hvp(_cubes, "torch", x, t, prep=prep), x * t)
    w = torch.arange(15.0, dtype=torch.float64).reshape(3, 5) / 15

    def layer(v: Any) -> Any:
        return torch.tanh(w @ v)

    u = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    prep = di.prepare_pullback(layer, "torch", x, u)
    y, r = di.value_and_pullback(layer, "torch", x, u, prep=prep)
    torch.testing.assert_close(r, w.T @ (u * (1 - torch.tanh(w @ x) ** 2)))
    torch.testing.assert_close(y, torch.tanh(w @ x))
    assert not y.requires_grad and not r.requires_grad


class _Recording(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.seen.append(func)
        return func(*args, **(kwargs or {}))


def test_a_torch_function_mode_takes_the_public_path() -> None:
    x = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    prep = di.prepare_gradient(_sum_exp, "torch", x)
    with _Recording() as mode:
        g = di.gradient(_sum_exp, "torch", x, prep=prep)
    assert torch.autograd.grad in mode.seen
    torch.testing.assert_close(g, torch.exp(x))


def test_prepared_gradient_from_many_threads() -> None:
    xs = [torch.linspace(-1.0, 1.0, 6, dtype=torch.float64) * (k + 1) for k in range(4)]
    prep = di.prepare_gradient(_sum_exp, "torch", xs[0])
    errors: list[str] = []

    def work(x: Any) -> None:
        for _ in range(50):
            g = di.gradient(_sum_exp, "torch", x, prep=prep)
            if not torch.allclose(g, torch.exp(x)):
                errors.append(f"wrong gradient for x={x}")

    threads = [threading.Thread(target=work, args=(x,)) for x in xs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []


def test_numpy_x_gives_numpy_results() -> None:
    x = np.linspace(-1.0, 1.0, 5)
    g = di.gradient(_sum_exp_any, "torch", x)
    assert isinstance(g, np.ndarray) and g.dtype == np.float64
    np.testing.assert_allclose(g, np.exp(x))


def _sum_exp_any(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(xp.exp(x))


def _of_two_leaves(d: Any) -> Any:
    return (d["a"] ** 2).sum() + (d["a"].sum() * d["b"]).sum()  # ignores d["c"]


def test_structured_gradient_by_leaf_matches_the_analytic_one() -> None:
    x = {
        "a": torch.linspace(-1.0, 1.0, 4, dtype=torch.float64),
        "b": torch.tensor([2.0, 3.0], dtype=torch.float64),
        "c": torch.ones(3, dtype=torch.float64),
    }
    prep = di.prepare_gradient(_of_two_leaves, "torch", x)
    for _ in range(2):
        g = di.gradient(_of_two_leaves, "torch", x, prep=prep)
        torch.testing.assert_close(g["a"], 2 * x["a"] + x["b"].sum())
        torch.testing.assert_close(g["b"], x["a"].sum() * torch.ones(2, dtype=torch.float64))
        torch.testing.assert_close(g["c"], torch.zeros(3, dtype=torch.float64))
    assert not any(v.requires_grad for v in x.values())


def test_prepared_batched_hvp_matches_the_analytic_one() -> None:
    x = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    ts = tuple(torch.arange(5.0, dtype=torch.float64) * k for k in (1.0, -2.0, 0.5))
    prep = di.prepare_hvp(_cubes, "torch", x, ts)
    for _ in range(2):
        results = di.hvp(_cubes, "torch", x, ts, prep=prep)
        assert len(results) == len(ts)
        for r, t in zip(results, ts, strict=True):
            torch.testing.assert_close(r, x * t)
