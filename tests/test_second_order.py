"""SecondOrder(outer, inner): second derivatives, HVPs and Hessians as outer differentiation
of inner differentiation, within one framework and across two, against the default
scenarios' analytic references; first-order operators are refused."""

from __future__ import annotations

import numpy as np
import pytest

import diffinterface as di
from diffinterface import testsuite as ts
from tests.conftest import assert_close

PAIRS = [
    # one framework: native composition
    di.SecondOrder(di.AutoJAX(mode="forward"), di.AutoJAX()),
    di.SecondOrder(di.AutoTorch(mode="forward"), di.AutoTorch()),
    di.SecondOrder(di.AutoTorch(), di.AutoTorch()),
    di.SecondOrder(di.AutoAutograd(), di.AutoAutograd()),
    # finite differences of any AD gradient
    di.SecondOrder(di.AutoFiniteDiff(), di.AutoJAX()),
    di.SecondOrder(di.AutoFiniteDiff(), di.AutoTorch()),
    di.SecondOrder(di.AutoFiniteDiff(), di.AutoAutograd()),
    # across frameworks, bridged by DifferentiateWith
    di.SecondOrder(di.AutoJAX(mode="forward"), di.AutoTorch()),
    di.SecondOrder(di.AutoTorch(), di.AutoJAX()),
    di.SecondOrder(di.AutoAutograd(), di.AutoTorch()),
    di.SecondOrder(di.AutoJAX(), di.AutoFiniteDiff()),
]
DEFAULT = ts.default_scenarios()
SECOND = [s for s in DEFAULT if s.operator in ts.SECOND_ORDER_OPERATORS]


@pytest.mark.parametrize("case", ts.cases(PAIRS, SECOND), ids=str)
def test_second_order_scenarios(case: ts.Case) -> None:
    case.check()


@pytest.mark.parametrize(
    ("kind", "pairs"),
    [("torch", [PAIRS[1], PAIRS[5]]), ("jax", [PAIRS[0], PAIRS[8]])],
    ids=["torch", "jax"],
)
def test_second_order_on_torch_and_jax_inputs(kind: str, pairs: list[di.SecondOrder]) -> None:
    scenarios = [s.with_kind(kind) for s in SECOND if s.x.ndim <= 1]
    report = ts.test_differentiation(pairs, scenarios)
    assert report.ok, str(report)


def test_first_order_operators_are_refused_with_the_backends_to_use() -> None:
    report = ts.test_differentiation(PAIRS[:1], [s for s in DEFAULT if s not in SECOND][:6])
    assert report.ok, str(report)
    assert {r.status for r in report.results} == {"unsupported"}
    b = di.SecondOrder("finitediff", "jax")
    with pytest.raises(di.UnsupportedError, match=r"first-order operators pass one of"):
        di.gradient(lambda x: (x * x).sum(), b, np.ones(3))


def test_hvp_strategy_follows_the_outer_mode() -> None:
    """Forward outer: a pushforward of the gradient; reverse outer: a pullback of it.
    Both give H·t (H is symmetric) — checked on an asymmetric-looking function."""

    def f(x: np.ndarray) -> np.ndarray:
        xp = di.array_namespace(x)
        return xp.sum(x[:-1] ** 2 * x[1:]) + xp.prod(xp.cos(x))

    x, t = np.array([0.4, -1.2, 0.7]), np.array([1.0, 0.5, -2.0])
    reference = di.hessian(f, di.AutoFiniteDiff(), x) @ t
    for outer in (di.AutoJAX(mode="forward"), di.AutoJAX(mode="reverse")):
        b = di.SecondOrder(outer, di.AutoTorch())
        prep = di.prepare_hvp(f, b, x, t)
        for _ in range(2):
            assert_close(di.hvp(f, b, x, t, prep=prep), reference, 1e-6)


def test_bad_second_order_backends() -> None:
    with pytest.raises(di.InvalidArgumentError, match="complex"):
        di.SecondOrder(di.AutoFiniteDiff(method="complex"), "jax")
    with pytest.raises(di.InvalidArgumentError, match="first-order backend"):
        di.SecondOrder(di.SecondOrder("jax", "jax"), "jax")  # type: ignore[arg-type]
    with pytest.raises(di.InvalidArgumentError, match="Unknown backend name"):
        di.SecondOrder("jaxx", "jax")  # type: ignore[arg-type]
    b = di.SecondOrder("torch", "jax")  # type: ignore[arg-type]
    assert b == di.SecondOrder(di.AutoTorch(), di.AutoJAX()) and hash(b) == hash(
        di.SecondOrder(di.AutoTorch(), di.AutoJAX())
    )
    assert ts.backend_label(b) == "torch∘jax"
