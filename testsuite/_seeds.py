"""The seed scenarios: the classic problems AD libraries are compared on, with analytic
(hand-derived NumPy) references, at sizes the caller can scale."""

from __future__ import annotations

from typing import Any

import numpy as np

import diffinterface as di
from diffinterface.testsuite._scenario import Scenario

__all__ = ["OVERHEAD_SCENARIO", "seed_scenarios"]

#: the name of the dispatch-overhead scenario (gradient of x[0], n = 1)
OVERHEAD_SCENARIO = "gradient x[0] n=1 (overhead)"


def trace_product(x: Any) -> Any:
    """tr(X1 @ X2) for x = stack(X1, X2), as Σ X1 ⊙ X2ᵀ."""
    xp = di.array_namespace(x)
    return xp.sum(x[0] * xp.matrix_transpose(x[1]))


def sum_exp(x: Any) -> Any:
    """Σ exp(x) (over the last axis: a batch of points on leading axes gives one sum each)."""
    xp = di.array_namespace(x)
    return xp.sum(xp.exp(x), axis=-1)


def autoencoder_loss(params: Any, data: Any, hidden: int) -> Any:
    """Mean squared reconstruction error of a two-layer sigmoid autoencoder.

    ``params`` holds W1 (hidden × d) then W2 (d × hidden), flattened; ``data`` is d × N.
    """
    xp = di.array_namespace(params)
    d = data.shape[0]
    w1 = xp.reshape(params[: hidden * d], (hidden, d))
    w2 = xp.reshape(params[hidden * d :], (d, hidden))
    h = 1.0 / (1.0 + xp.exp(-xp.matmul(w1, data)))
    z = 1.0 / (1.0 + xp.exp(-xp.matmul(w2, h)))
    r = z - data
    return xp.sum(r * r) / data.shape[1]


def autoencoder_loss_of_weights(weights: Any, data: Any) -> Any:
    """:func:`autoencoder_loss` of the weights as a dict ``{"W1": ..., "W2": ...}``."""
    w1, w2 = weights["W1"], weights["W2"]
    xp = di.array_namespace(w1)
    flat = xp.concat([xp.reshape(w1, (-1,)), xp.reshape(w2, (-1,))])
    return autoencoder_loss(flat, data, w1.shape[0])


def dense_layer(x: Any, w: Any, b: Any) -> Any:
    """tanh(W @ x + b)."""
    xp = di.array_namespace(x)
    return xp.tanh(xp.matmul(w, x) + b)


def rosenbrock(x: Any) -> Any:
    """The chained Rosenbrock function Σ 100 (x[i+1] − x[i]²)² + (1 − x[i])² (over the last
    axis: a batch of points on leading axes gives one value each)."""
    xp = di.array_namespace(x)
    a, b = x[..., :-1], x[..., 1:]
    return xp.sum(100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2, axis=-1)


def first_entry(x: Any) -> Any:
    """x[0] (of the last axis): almost no work, so that timing it measures the fixed cost of
    a call."""
    return x[..., 0]


def _autoencoder_gradient(params: np.ndarray, data: np.ndarray, hidden: int) -> Any:
    d, n = data.shape
    w1 = params[: hidden * d].reshape(hidden, d)
    w2 = params[hidden * d :].reshape(d, hidden)
    h = 1 / (1 + np.exp(-w1 @ data))
    z = 1 / (1 + np.exp(-w2 @ h))
    r = z - data
    da2 = (2 * r / n) * z * (1 - z)
    dh = (w2.T @ da2) * h * (1 - h)
    grad = np.concatenate([(dh @ data.T).ravel(), (da2 @ h.T).ravel()])
    return np.sum(r * r) / n, grad


def _rosenbrock_derivatives(x: np.ndarray) -> tuple[Any, Any, Any]:
    a, b = x[:-1], x[1:]
    g = np.zeros_like(x)
    g[:-1] += -400 * a * (b - a * a) - 2 * (1 - a)
    g[1:] += 200 * (b - a * a)
    h = np.zeros((x.size, x.size))
    i = np.arange(x.size - 1)
    h[i, i] += 1200 * a * a - 400 * b + 2
    h[i + 1, i + 1] += 200
    h[i, i + 1] = h[i + 1, i] = -400 * a
    return float(rosenbrock(x)), g, h


def seed_scenarios(
    matrix: int = 30,
    vector: int = 1000,
    features: int = 784,
    samples: int = 10,
    hidden: int = 2,
    layer: int = 200,
    rosenbrock_n: int = 100,
) -> list[Scenario]:
    """The classic comparisons, float64, with analytic references.

    Args:
        matrix: size of X1, X2 for the gradient of tr(X1 @ X2).
        vector: n for the gradient of Σ exp(x).
        features: rows of the autoencoder's data matrix (features × samples).
        samples: columns of the autoencoder's data matrix.
        hidden: width of the autoencoder's hidden layer.
        layer: n for the Jacobian of tanh(W x + b) (W is n × n).
        rosenbrock_n: n for the Rosenbrock Hessian and HVP.

    The last scenario, the gradient of x[0] for n = 1, measures the fixed cost per call
    (dispatch overhead). Σ exp, Rosenbrock and x[0] take a batch of points on a leading axis
    too (``Scenario.batched``: a vectorised f, for ``AutoFiniteDiff(vectorized=True)``).
    """
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(2, matrix, matrix))
    grad_trace = np.stack([xs[1].T, xs[0].T])
    v = rng.normal(size=vector) / 4
    data = rng.uniform(size=(features, samples))
    params = rng.normal(size=2 * hidden * features) / np.sqrt(features)
    weights = {
        "W1": params[: hidden * features].reshape(hidden, features),
        "W2": params[hidden * features :].reshape(features, hidden),
    }
    loss, grad = _autoencoder_gradient(params, data, hidden)
    g_w1 = grad[: hidden * features].reshape(hidden, features)
    g_w2 = grad[hidden * features :].reshape(features, hidden)
    w, b, x = (
        rng.normal(size=(layer, layer)) / np.sqrt(layer),
        rng.normal(size=layer),
        rng.normal(size=layer),
    )
    layer_y = np.tanh(w @ x + b)
    r = np.linspace(-1.2, 1.2, rosenbrock_n)
    ry, rg, rh = _rosenbrock_derivatives(r)
    t = np.cos(np.arange(rosenbrock_n))
    return [
        Scenario(
            "gradient",
            trace_product,
            xs,
            reference=(np.trace(xs[0] @ xs[1]), grad_trace),
            name=f"gradient tr(X1 @ X2) {matrix}×{matrix}",
        ),
        Scenario(
            "gradient",
            sum_exp,
            v,
            reference=(np.sum(np.exp(v)), np.exp(v)),
            name=f"gradient Σexp(x) n={vector}",
            batched=sum_exp,
        ),
        Scenario(
            "gradient",
            autoencoder_loss,
            params,
            contexts=(di.Constant(data), di.Constant(hidden)),
            reference=_autoencoder_gradient(params, data, hidden),
            name=f"gradient autoencoder {features}×{samples} h={hidden}",
        ),
        Scenario(
            "gradient",
            autoencoder_loss_of_weights,
            weights,
            contexts=(di.Constant(data),),
            reference=(loss, {"W1": g_w1, "W2": g_w2}),
            name=f"gradient autoencoder {{W1, W2}} {features}×{samples} h={hidden}",
        ),
        Scenario(
            "jacobian",
            dense_layer,
            x,
            contexts=(di.Constant(w), di.Constant(b)),
            reference=(layer_y, (1 - layer_y**2)[:, None] * w),
            name=f"jacobian tanh(Wx+b) n={layer}",
        ),
        Scenario(
            "hessian",
            rosenbrock,
            r,
            reference=(ry, rg, rh),
            name=f"hessian rosenbrock n={rosenbrock_n}",
            batched=rosenbrock,
        ),
        Scenario(
            "hvp",
            rosenbrock,
            r,
            t,
            reference=(rg, rh @ t),
            name=f"hvp rosenbrock n={rosenbrock_n}",
            batched=rosenbrock,
        ),
        Scenario(
            "gradient",
            first_entry,
            np.array([0.5]),
            reference=(0.5, np.array([1.0])),
            name=OVERHEAD_SCENARIO,
            batched=first_entry,
        ),
    ]
