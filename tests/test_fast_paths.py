"""The fast paths of prepared calls do what they claim, checked by their effects (no timing).

* A compiling backend prepares two kernels, one without the value, and an unprepared call
  compiles only the one it needs; both give the reference.
* HIPS autograd builds a square Jacobian in reverse mode (f runs once per Jacobian, not once
  per column) and a Hessian reverse over reverse (f traced once).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import diffinterface as di
from tests._counting import CountingFunction


def _sum_exp(x: Any) -> Any:
    xp = di.array_namespace(x)
    return xp.sum(xp.exp(x))


def test_jax_prepares_a_kernel_without_the_value_and_both_are_right() -> None:
    x = np.linspace(-1.0, 1.0, 5)
    f = CountingFunction(_sum_exp)
    prep = di.prepare_gradient(f, "jax", x)
    assert f.calls == 3  # its output's shape, then one trace per kernel: two kernels
    np.testing.assert_allclose(di.gradient(f, "jax", x, prep=prep), np.exp(x))
    value, g = di.value_and_gradient(f, "jax", x, prep=prep)
    np.testing.assert_allclose(value, np.sum(np.exp(x)))
    np.testing.assert_allclose(g, np.exp(x))
    assert f.calls == 3  # prepared calls run compiled code


def test_an_unprepared_call_compiles_only_the_kernel_it_runs() -> None:
    x = np.linspace(-1.0, 1.0, 5)
    for call in (di.gradient, di.value_and_gradient):
        f = CountingFunction(_sum_exp)
        call(f, "jax", x)
        assert f.calls == 2  # its output's shape, then one trace for one kernel


class _Counted:
    def __init__(self, f: Any) -> None:
        self.f, self.calls = f, 0

    def __call__(self, x: Any, *args: Any) -> Any:
        self.calls += 1
        return self.f(x, *args)


def test_autograd_square_jacobian_runs_f_once() -> None:
    w = np.arange(36.0).reshape(6, 6) / 36
    f = _Counted(lambda x: di.array_namespace(x).tanh(w @ x))
    x = np.linspace(-1.0, 1.0, 6)
    prep = di.prepare_jacobian(f, "autograd", x)
    f.calls = 0
    jac = di.jacobian(f, "autograd", x, prep=prep)
    assert f.calls == 1
    np.testing.assert_allclose(jac, (1 - np.tanh(w @ x) ** 2)[:, None] * w, rtol=1e-12)


def test_autograd_jacobian_of_a_wide_output_is_forward() -> None:
    f = _Counted(lambda x: di.array_namespace(x).concat([x, x * x, x**3]))
    x = np.array([0.5, 2.0])
    prep = di.prepare_jacobian(f, "autograd", x)
    f.calls = 0
    jac = di.jacobian(f, "autograd", x, prep=prep)
    assert f.calls == x.size  # one pushforward per column: 2 calls, not 6 pullbacks
    expected = np.concatenate([np.eye(2), np.diag(2 * x), np.diag(3 * x**2)])
    np.testing.assert_allclose(jac, expected, rtol=1e-12)


def test_autograd_hessian_traces_f_once_for_all_rows() -> None:
    f = _Counted(lambda x: di.array_namespace(x).sum(x[:-1] ** 2 * x[1:]))
    x = np.array([1.0, 2.0, 3.0, 4.0])
    prep = di.prepare_hessian(f, "autograd", x)
    f.calls = 0
    h = di.hessian(f, "autograd", x, prep=prep)
    assert f.calls == 1  # one forward pass gives the value, the gradient and every row
    expected = np.zeros((4, 4))
    for i in range(3):
        expected[i, i] += 2 * x[i + 1]
        expected[i, i + 1] += 2 * x[i]
        expected[i + 1, i] += 2 * x[i]
    np.testing.assert_allclose(h, expected, rtol=1e-12)


def _layer(x: Any, w: Any) -> Any:
    return di.array_namespace(x).tanh(w @ x)


def test_finite_differences_write_the_jacobian_into_out_without_allocating_it() -> None:
    import tracemalloc

    rng = np.random.default_rng(0)
    n = 120
    w, x = rng.normal(size=(n, n)) / np.sqrt(n), rng.normal(size=n)
    exact = (1 - np.tanh(w @ x) ** 2)[:, None] * w
    prep = di.prepare_jacobian(_layer, "finitediff", x, di.Constant(w))
    out = np.empty((n, n))
    di.jacobian(_layer, "finitediff", x, di.Constant(w), prep=prep, out=out)  # warm-up
    tracemalloc.start()
    result = di.jacobian(_layer, "finitediff", x, di.Constant(w), prep=prep, out=out)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result is out
    np.testing.assert_allclose(out, exact, atol=1e-8)
    assert peak < out.nbytes / 4  # J (115 kB) is not allocated, only f's small outputs
    fresh = di.jacobian(_layer, "finitediff", x, di.Constant(w), prep=prep)
    assert fresh is not out and not np.shares_memory(fresh, out)
    np.testing.assert_allclose(fresh, out)


def test_finite_differences_never_write_into_an_out_that_f_reads() -> None:
    x = np.array([0.5, -1.0, 2.0])
    expected = np.exp(x)
    g = di.gradient(_sum_exp, "finitediff", x, out=x)  # out= is x itself
    assert g is x
    np.testing.assert_allclose(g, expected, rtol=1e-8)
