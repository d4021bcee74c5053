"""Structured x (dicts, lists, tuples of arrays) on every backend, against analytic
derivatives of a small model: results in x's structure, Jacobian and Hessian blocks or flat
matrices, tangents and out= in x's structure, mismatch errors naming the differing key."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import optree
import pytest
import torch

import diffinterface as di
from tests._counting import CountingFunction
from tests.conftest import BACKENDS, as_kind, assert_close, backend_id, shares_memory, tolerance

RNG = np.random.default_rng(4)
PARAMS = {"w": RNG.normal(size=(2, 3)), "b": RNG.normal(size=2), "scale": [np.array(0.7)]}
DATA = RNG.normal(size=3)


def model(p: Any, data: Any) -> Any:
    """scale · Σ tanh(W d + b)² — a scalar of a params dict."""
    xp = di.array_namespace(p["w"])
    h = xp.tanh(xp.matmul(p["w"], data) + p["b"])
    return p["scale"][0] * xp.sum(h * h)


def outputs(p: Any, data: Any) -> Any:
    """tanh(W d + b) · scale — a vector of a params dict."""
    xp = di.array_namespace(p["w"])
    return xp.tanh(xp.matmul(p["w"], data) + p["b"]) * p["scale"][0]


def leaves(tree: Any) -> np.ndarray:
    """All entries of a structure, in optree's (sorted-key) order, as one vector."""
    return np.concatenate([np.ravel(to_np(a)) for a in optree.tree_leaves(tree)])


def to_np(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def flat_model(v: np.ndarray) -> Any:
    """model of the leaves vector (b, scale, w in optree order), for references."""
    return model({"b": v[:2], "scale": [v[2]], "w": v[3:].reshape(2, 3)}, DATA)


def reference() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient and Hessian of model by complex-step differences of an analytic gradient."""
    v = leaves(PARAMS)

    def grad(u: Any) -> Any:
        b, s, w = u[:2], u[2], u[3:].reshape(2, 3)
        z = w @ DATA + b
        h = np.tanh(z)
        dz = s * 2 * h * (1 - h * h)
        return np.concatenate([dz, [np.sum(h * h)], np.outer(dz, DATA).ravel()])

    hess = np.stack([np.imag(grad(v + 1e-30j * e)) / 1e-30 for e in np.eye(v.size)])
    return v, grad(v), hess


V, GRAD, HESS = reference()


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_gradient_hvp_and_hessian_of_a_params_dict(backend: Any) -> None:
    rtol, rtol2 = tolerance(backend, np.float64), tolerance(backend, np.float64, 2)
    data = di.Constant(DATA)
    prep = di.prepare_gradient(model, backend, PARAMS, data)
    for _ in range(2):
        value, g = di.value_and_gradient(model, backend, PARAMS, data, prep=prep)
        assert isinstance(g, dict) and isinstance(g["scale"], list)
        assert_close(leaves(g), GRAD, rtol)
        assert_close(value, flat_model(V), 1e-14)
    t = optree.tree_map(np.cos, PARAMS)
    _, hv = di.gradient_and_hvp(model, backend, PARAMS, t, data)
    assert_close(leaves(hv), HESS @ leaves(t), rtol2)
    hvs = di.hvp(model, backend, PARAMS, (t, PARAMS), data)
    assert_close(leaves(hvs[1]), HESS @ V, rtol2)
    assert_close(di.hessian(model, backend, PARAMS, data, flat=True), HESS, rtol2)
    blocks = di.hessian(model, backend, PARAMS, data)
    assert blocks["w"]["b"].shape == (2, 3, 2)
    assert_close(blocks["w"]["b"], HESS[3:, :2].reshape(2, 3, 2), rtol2)


@pytest.mark.parametrize("backend", BACKENDS, ids=backend_id)
def test_jacobian_pushforward_and_pullback_of_a_params_dict(backend: Any) -> None:
    rtol = tolerance(backend, np.float64)
    data = di.Constant(DATA)
    jac = di.jacobian(outputs, backend, PARAMS, data, flat=True)
    want = np.stack([np.imag(_outputs_flat(V + 1e-30j * e)) / 1e-30 for e in np.eye(V.size)]).T
    assert jac.shape == (2, V.size)
    assert_close(jac, want, rtol)
    blocks = di.jacobian(outputs, backend, PARAMS, data)
    assert blocks["w"].shape == (2, 2, 3) and blocks["scale"][0].shape == (2,)
    assert_close(
        leaves(optree.tree_map(lambda a: np.moveaxis(a, 0, -1), blocks)), want.T.ravel(), rtol
    )
    t = optree.tree_map(np.sin, PARAMS)
    assert_close(di.pushforward(outputs, backend, PARAMS, t, data), want @ leaves(t), rtol)
    u = np.array([1.0, -2.0])
    assert_close(leaves(di.pullback(outputs, backend, PARAMS, u, data)), u @ want, rtol)


def _outputs_flat(v: Any) -> Any:
    return np.tanh(v[3:].reshape(2, 3) @ DATA + v[:2]) * v[2]


@pytest.mark.parametrize("kind", ["torch", "jax"])
def test_leaves_of_torch_and_jax_come_back_as_such(kind: str) -> None:
    backend = "torch" if kind == "torch" else "jax"
    params = optree.tree_map(lambda a: as_kind(a, kind), PARAMS)
    g = di.gradient(model, backend, params, di.Constant(DATA))
    leaf = g["w"]
    assert isinstance(leaf, torch.Tensor if kind == "torch" else jax.Array)
    assert str(leaf.dtype).endswith("float64")
    assert_close(leaves(g), GRAD, 1e-12)


def _jax(tree: Any) -> Any:
    return optree.tree_map(lambda a: as_kind(a, "jax"), tree)


JAX_PARAMS = _jax(PARAMS)
JAC = np.stack([np.imag(_outputs_flat(V + 1e-30j * e)) / 1e-30 for e in np.eye(V.size)]).T
T = _jax(optree.tree_map(np.sin, PARAMS))
U = np.array([1.0, -2.0])

#: operator, f, arguments after x, the expected result (batches stacked), from references
JAX_LEAF_CALLS = {
    "gradient": ("gradient", model, (), GRAD),
    "pullback": ("pullback", outputs, (U,), U @ JAC),
    "pullback batch": ("pullback", outputs, ((U, 2 * U),), np.stack([U @ JAC, 2 * U @ JAC])),
    "pushforward": ("pushforward", outputs, (T,), JAC @ leaves(T)),
    "pushforward batch": (
        "pushforward",
        outputs,
        ((T, JAX_PARAMS),),
        np.stack([JAC @ leaves(T), JAC @ V]),
    ),
    "hvp": ("hvp", model, (T,), HESS @ leaves(T)),
    "hvp batch": ("hvp", model, ((T, JAX_PARAMS),), np.stack([HESS @ leaves(T), HESS @ V])),
    "jacobian": ("jacobian", outputs, (), JAC),
    "hessian": ("hessian", model, (), HESS),
}


#: the variant of each operator whose first output is the value (the gradient for hvp)
FIRST_OUTPUT = {
    "gradient": "value_and_gradient",
    "pullback": "value_and_pullback",
    "pushforward": "value_and_pushforward",
    "hvp": "gradient_and_hvp",
    "jacobian": "value_and_jacobian",
    "hessian": "value_gradient_and_hessian",
}


def blocks_of(matrix: np.ndarray, operator: str) -> np.ndarray:
    """The entries of a Jacobian (rows: outputs) or Hessian as ``stacked`` lists its blocks:
    leaf by leaf (b, scale, w), each block in row-major order (a Hessian's blocks row by
    row)."""
    cols = np.split(np.arange(V.size), [2, 3])  # the entries of b, scale, w
    if operator == "jacobian":
        return np.concatenate([matrix[:, c].ravel() for c in cols])
    return np.concatenate([matrix[np.ix_(r, c)].ravel() for r in cols for c in cols])


def stacked(r: Any) -> np.ndarray:
    """A result (a structure, an array, or a tuple of them for a batch) as a NumPy array."""
    if isinstance(r, tuple):
        return np.stack([stacked(a) for a in r])
    return leaves(r) if isinstance(r, dict) else to_np(r)


@pytest.mark.parametrize("mode", ["reverse", "forward"])
@pytest.mark.parametrize("case", sorted(JAX_LEAF_CALLS))
def test_prepared_jax_calls_on_jax_leaves(case: str, mode: str) -> None:
    """JAX leaves are flattened inside the compiled kernel: prepared calls give the
    reference results, in x's structure of JAX arrays, without tracing f again."""
    operator, f, args, want = JAX_LEAF_CALLS[case]
    backend, data = di.AutoJAX(mode=mode), di.Constant(DATA)
    counted = CountingFunction(f)
    prep = getattr(di, f"prepare_{operator}")(counted, backend, JAX_PARAMS, *args, data)
    traced = counted.calls
    flat = {"flat": True} if operator in ("jacobian", "hessian") else {}
    for params in (JAX_PARAMS, _jax(PARAMS)):  # the same values in new arrays
        got = getattr(di, operator)(counted, backend, params, *args, data, prep=prep, **flat)
        assert_close(stacked(got), want, 1e-10)
    if flat:  # and as blocks in x's structure, cut by compiled code
        got = getattr(di, operator)(counted, backend, JAX_PARAMS, *args, data, prep=prep)
        assert_close(stacked(got), blocks_of(want, operator), 1e-10)
    assert counted.calls == traced, "a prepared call traced f again"
    assert all(isinstance(a, jax.Array) for a in optree.tree_leaves(got))
    assert str(optree.tree_leaves(got)[0].dtype) == "float64"
    first = getattr(di, FIRST_OUTPUT[operator])(
        counted, backend, JAX_PARAMS, *args, data, prep=prep
    )
    want_first = GRAD if operator == "hvp" else f(PARAMS, DATA)
    assert_close(stacked(first[0]), want_first, 1e-12)


def test_prepared_jax_call_on_jax_leaves_checks_its_arguments() -> None:
    data = di.Constant(DATA)
    prep = di.prepare_hvp(model, "jax", JAX_PARAMS, T, data)
    wider = {**JAX_PARAMS, "b": as_kind(np.zeros(3), "jax")}
    with pytest.raises(di.PreparationMismatchError, match=r"x\['b'\] was prepared as jax"):
        di.hvp(model, "jax", wider, T, data, prep=prep)
    with pytest.raises(di.PreparationMismatchError, match="contexts"):
        di.hvp(model, "jax", JAX_PARAMS, T, di.Constant(DATA[:2]), prep=prep)
    with pytest.raises(di.PreparationMismatchError, match="tangents"):
        di.hvp(model, "jax", JAX_PARAMS, PARAMS, data, prep=prep)  # NumPy tangents
    gradient_prep = di.prepare_gradient(model, "jax", JAX_PARAMS, data)
    with pytest.raises(
        di.PreparationMismatchError, match="✗ operator: prepared 'gradient', called 'jacobian'"
    ):
        di.jacobian(model, "jax", JAX_PARAMS, data, prep=gradient_prep)
    with pytest.raises(
        di.PreparationMismatchError, match="✗ operator: prepared 'hvp', called 'gradient'"
    ):
        di.gradient(model, "jax", JAX_PARAMS, data, prep=prep)  # and on the NumPy-leaf path:
    numpy_prep = di.prepare_hvp(model, "finitediff", PARAMS, T, data)
    with pytest.raises(
        di.PreparationMismatchError, match="✗ operator: prepared 'hvp', called 'gradient'"
    ):
        di.gradient(model, "finitediff", PARAMS, data, prep=numpy_prep)


def test_numpy_leaves_under_jax_come_back_as_writable_numpy() -> None:
    """A prepared JAX gradient of a dict of NumPy float64 arrays: NumPy float64 results in
    x's key order, writable, sharing no memory with x or each other; the x64 mode it runs
    in is the call's alone."""
    rng = np.random.default_rng(0)
    x = {"b": rng.normal(size=(3, 3)), "a": rng.normal(size=(3, 3))}

    def f(p: Any) -> Any:
        return di.array_namespace(p["a"]).trace(p["a"] @ p["b"])

    prep = di.prepare_gradient(f, "jax", x)
    x64 = bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]
    for _ in range(2):
        g = di.gradient(f, "jax", x, prep=prep)
        assert list(g) == ["b", "a"]
        assert all(type(v) is np.ndarray and v.dtype == np.float64 for v in g.values())
        assert all(v.flags.writeable for v in g.values())
        assert not any(np.shares_memory(v, w) for v in g.values() for w in x.values())
        assert not np.shares_memory(g["a"], g["b"])
        np.testing.assert_allclose(g["a"], x["b"].T, rtol=1e-14)
        np.testing.assert_allclose(g["b"], x["a"].T, rtol=1e-14)
        g["a"][...] = 0.0  # the caller's to overwrite
    assert bool(jax.config.jax_enable_x64) is x64  # type: ignore[attr-defined]


def test_numpy_leaves_under_jax_joined_on_the_host() -> None:
    """A JAX gradient of three NumPy leaves or more joins them into one vector before the
    compiled call (see diffinterface._host_join): value and gradient match the analytic
    ones for a dict with a context and for di.Args, float32 leaves stay float32, and
    leaves of other shapes with the same number of entries in all are refused, not cut by
    the prepared shapes."""
    rng = np.random.default_rng(1)
    x = {"w": rng.normal(size=(2, 3)), "s": rng.normal(size=3), "b": rng.normal(size=2)}
    c = rng.normal(size=3)

    def f(p: Any, c: Any) -> Any:
        xp = di.array_namespace(p["w"])
        return xp.sum((p["w"] @ p["s"] + p["b"]) ** 2) + xp.sum(c * p["s"])

    r = x["w"] @ x["s"] + x["b"]
    want = {"w": 2 * np.outer(r, x["s"]), "s": 2 * x["w"].T @ r + c, "b": 2 * r}
    prep = di.prepare_gradient(f, "jax", x, di.Constant(c))
    for _ in range(2):
        value, g = di.value_and_gradient(f, "jax", x, di.Constant(c), prep=prep)
        np.testing.assert_allclose(value, np.sum(r**2) + c @ x["s"], rtol=1e-14)
        for got in (g, di.gradient(f, "jax", x, di.Constant(c), prep=prep)):
            assert list(got) == list(x) and all(type(v) is np.ndarray for v in got.values())
            assert all(v.flags.writeable for v in got.values())
            for k in x:
                np.testing.assert_allclose(got[k], want[k], rtol=1e-13)
    other_shapes = {**x, "w": rng.normal(size=(3, 2))}
    with pytest.raises(di.PreparationMismatchError, match=r"x\['w'\] was prepared as"):
        di.gradient(f, "jax", other_shapes, di.Constant(c), prep=prep)

    x32 = {k: v.astype(np.float32) for k, v in x.items()}
    g32 = di.gradient(f, "jax", x32, di.Constant(c.astype(np.float32)))
    assert all(v.dtype == np.float32 for v in g32.values())
    np.testing.assert_allclose(g32["s"], want["s"], rtol=1e-4)

    def product(a: Any, b: Any, e: Any) -> Any:
        return di.array_namespace(a).sum(a * b * e)

    a, b, e = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    for got, want_arg in zip(
        di.gradient(product, "jax", di.Args(a, b, e)), (b * e, a * e, a * b), strict=True
    ):
        np.testing.assert_allclose(got, want_arg, rtol=1e-15)


@pytest.mark.parametrize("kind", ["torch", "autograd"])
def test_gradient_by_leaf(kind: str) -> None:
    """Leaves of the backend's own array type (torch tensors; NumPy under HIPS autograd):
    the gradient taken by leaf matches the reference, gives zeros for a leaf f ignores,
    and never hands out the caller's own array as the value."""
    params = optree.tree_map(lambda a: as_kind(a, "torch"), PARAMS) if kind == "torch" else PARAMS
    data = di.Constant(DATA)
    prep = di.prepare_gradient(model, kind, params, data)
    for _ in range(2):
        value, g = di.value_and_gradient(model, kind, params, data, prep=prep)
        assert type(g["w"]) is type(params["w"]) and g["w"].dtype == params["w"].dtype
        assert_close(leaves(g), GRAD, 1e-12)
        assert_close(to_np(value), flat_model(V), 1e-14)
        assert_close(leaves(di.gradient(model, kind, params, data, prep=prep)), GRAD, 1e-12)

    def first_bias(p: Any) -> Any:
        return p["b"][0]

    value, g = di.value_and_gradient(first_bias, kind, params)
    assert_close(leaves(g), np.eye(V.size)[0], 0)
    scalar = {"s": as_kind(np.array(2.0), kind if kind == "torch" else "numpy"), "w": params["w"]}
    value, g = di.value_and_gradient(lambda p: p["s"], kind, scalar)
    assert not shares_memory(value, scalar["s"])  # a copy, not the caller's own array
    assert_close(to_np(g["s"]), 1.0, 0)


def test_lists_and_tuples_with_tuple_tangents() -> None:
    x = (np.array([1.0, 2.0]), np.array(3.0))

    def f(p: Any) -> Any:
        return p[0] * p[1]

    one = (np.array([1.0, 0.0]), np.array(0.0))
    assert_close(di.pushforward(f, "torch", x, one), [3.0, 0.0], 0.0)  # one tangent
    batch = di.pushforward(f, "torch", x, (one, (np.zeros(2), np.array(1.0))))
    assert isinstance(batch, tuple) and len(batch) == 2
    assert_close(batch[1], [1.0, 2.0], 0.0)
    g = di.gradient(lambda p: (p[0] ** 2).sum() * p[1], "jax", [np.ones(2), np.array(2.0)])
    assert isinstance(g, list)
    assert_close(g[0], [4.0, 4.0], 0.0)
    assert_close(g[1], 2.0, 0.0)


def test_out_in_x_structure() -> None:
    out = optree.tree_map(np.zeros_like, PARAMS)
    got = di.gradient(model, "autograd", PARAMS, di.Constant(DATA), out=out)
    assert got is out
    assert_close(leaves(out), GRAD, 1e-12)
    with pytest.raises(di.InvalidArgumentError, match="structure"):
        di.gradient(model, "autograd", PARAMS, di.Constant(DATA), out={"w": np.zeros((2, 3))})


def test_another_structure_names_the_key_that_differs() -> None:
    data = di.Constant(DATA)
    prep = di.prepare_gradient(model, "finitediff", PARAMS, data)
    wider = {**PARAMS, "b": np.zeros(3)}
    with pytest.raises(
        di.PreparationMismatchError, match=r"x\['b'\] was prepared as numpy float64\[2\]"
    ):
        di.gradient(model, "finitediff", wider, data, prep=prep)
    fewer = {"w": PARAMS["w"], "b": PARAMS["b"]}
    with pytest.raises(di.PreparationMismatchError, match=r"called without x\['scale'\]\[0\]"):
        di.gradient(model, "finitediff", fewer, data, prep=prep)
    with pytest.raises(di.PreparationMismatchError, match="structured x"):
        di.gradient(flat_model, "finitediff", V, prep=prep)


def test_bad_structures() -> None:
    with pytest.raises(di.InvalidArgumentError, match="share one array type, dtype"):
        di.gradient(
            model, "jax", {**PARAMS, "b": PARAMS["b"].astype(np.float32)}, di.Constant(DATA)
        )
    with pytest.raises(di.InvalidArgumentError, match="empty dict"):
        di.gradient(lambda p: 0.0, "jax", {})
    with pytest.raises(di.InvalidArgumentError, match="needs a scalar x"):
        di.derivative(lambda p: p["a"], "jax", {"a": np.array(1.0)})
    with pytest.raises(di.InvalidArgumentError, match="tangent"):
        di.hvp(model, "jax", PARAMS, {"w": np.ones((2, 3))}, di.Constant(DATA))


def test_differentiate_with_a_params_dict() -> None:
    g = di.DifferentiateWith(model, "finitediff")
    params = optree.tree_map(torch.from_numpy, PARAMS)
    for p in optree.tree_leaves(params):
        p.requires_grad_(True)
    g(params, torch.from_numpy(DATA)).backward()
    assert_close(leaves(optree.tree_map(lambda p: p.grad, params)), GRAD, 1e-7)


@pytest.mark.parametrize("operator", ["gradient", "value_and_gradient"])
@pytest.mark.parametrize("kind", ["jax", "torch", "autograd"])
def test_prepared_gradient_on_native_leaves_checks_each_call(kind: str, operator: str) -> None:
    """The quick paths of a prepared gradient and value_and_gradient (native leaves; on
    JAX the compiled kernel starts before the check) still refuse what the preparation was
    not made for, by name, and accept x's keys in another insertion order."""
    call = getattr(di, operator)
    native = "numpy" if kind == "autograd" else kind
    params = optree.tree_map(lambda a: as_kind(a, native), PARAMS)
    data = di.Constant(DATA)
    prep = di.prepare_gradient(model, kind, params, data)
    reordered = {"scale": params["scale"], "b": params["b"], "w": params["w"]}
    result = call(model, kind, reordered, data, prep=prep)
    if operator == "value_and_gradient":
        value, result = result
        assert_close([value], [model(PARAMS, DATA)], 1e-12)
    assert_close(leaves(result), GRAD, 1e-12)
    others = (
        ["torch", "numpy"] if kind == "jax" else ["jax", "numpy"] if kind == "torch" else ["jax"]
    )
    cases = {
        r"x\['b'\] was prepared as .*float32": {
            **params,
            "b": as_kind(PARAMS["b"].astype(np.float32), native),
        },
        r"called without x\['b'\]": {"w": params["w"], "scale": params["scale"]},
    }
    for other in others:  # another array type for one leaf
        cases[rf"x\['w'\] was prepared as {native}.*called as {other}"] = {
            **params,
            "w": as_kind(PARAMS["w"], other),
        }
    for message, x in cases.items():
        with pytest.raises(di.PreparationMismatchError, match=message):
            call(model, kind, x, data, prep=prep)
    with pytest.raises(di.PreparationMismatchError, match="✗ f"):
        call(outputs, kind, params, data, prep=prep)
    with pytest.raises(di.PreparationMismatchError, match="contexts"):
        call(model, kind, params, di.Constant(DATA[:2]), prep=prep)


def cubes(p: Any) -> Any:
    """Σ a³ + Σ b³, whose Hessian-vector product is 6·a·t_a, 6·b·t_b."""
    xp = di.array_namespace(p["a"])
    return xp.sum(p["a"] ** 3) + xp.sum(p["b"] ** 3)


def a_cubes(p: Any) -> Any:
    """Σ a³: ignores p["b"]."""
    return di.array_namespace(p["a"]).sum(p["a"] ** 3)


@pytest.mark.parametrize("kind", ["jax", "torch", "autograd"])
def test_prepared_hvp_on_native_leaves_checks_each_call(kind: str) -> None:
    """The quick path of a prepared hvp with one x-shaped tangent (native leaves, a fused
    kernel): H·t and the gradient against the analytic ones, and the refusals of a tangent
    the preparation was not made for."""
    x0 = {"a": np.array([0.5, -1.0, 2.0]), "b": np.array([1.5, 0.25])}
    t0 = {"a": np.array([1.0, 2.0, -1.0]), "b": np.array([0.5, 3.0])}
    native = "numpy" if kind == "autograd" else kind
    x, t = (optree.tree_map(lambda a: as_kind(a, native), tree) for tree in (x0, t0))
    prep = di.prepare_hvp(cubes, kind, x, t)
    want_hv = {k: 6 * x0[k] * t0[k] for k in x0}
    want_g = {k: 3 * x0[k] ** 2 for k in x0}
    for _ in range(2):  # the first call and a repeated one
        hv = di.hvp(cubes, kind, x, t, prep=prep)
        g, hv2 = di.gradient_and_hvp(cubes, kind, x, t, prep=prep)
        for k in x0:
            assert_close([hv[k], hv2[k], g[k]], [want_hv[k], want_hv[k], want_g[k]], 1e-12)
    batch = di.prepare_hvp(cubes, kind, x, (t, x))  # a stack of tangents per leaf on torch
    hvs = di.hvp(cubes, kind, x, (t, x), prep=batch)
    for k in x0:
        assert_close([hvs[0][k], hvs[1][k]], [want_hv[k], 6 * x0[k] ** 2], 1e-12)
    g, hv = di.gradient_and_hvp(a_cubes, kind, x, t, prep=di.prepare_hvp(a_cubes, kind, x, t))
    assert_close([g["a"], hv["a"]], [want_g["a"], want_hv["a"]], 1e-12)
    assert_close([g["b"], hv["b"]], [0 * t0["b"], 0 * t0["b"]], 1e-12)
    float32 = {**t, "b": as_kind(t0["b"].astype(np.float32), native)}
    with pytest.raises(di.PreparationMismatchError, match="tangents"):
        di.hvp(cubes, kind, x, float32, prep=prep)
    with pytest.raises(di.PreparationMismatchError, match="✗ tangents: prepared one"):
        di.hvp(cubes, kind, x, (t, t), prep=prep)
    with pytest.raises(di.PreparationMismatchError, match="✗ tangents: prepared one"):
        di.hvp(cubes, kind, x, {"a": t["a"]}, prep=prep)
