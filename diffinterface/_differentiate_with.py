"""``DifferentiateWith``: differentiate one function with another backend, inside any framework.

``g = DifferentiateWith(f, backend)`` evaluates ``f(x, *args)``; when g is called inside the
differentiation of another framework, its derivative with respect to every argument that
framework differentiates is computed by ``backend`` and handed over at the boundary, where
arrays are converted (through NumPy on the CPU) to the inner backend's array type and back:

* JAX (arrays or tracers): ``diffinterface._bridges.jax`` — JAX primitives whose
  evaluation, pushforward and pullback call the inner backend on the host;
* torch tensors: ``diffinterface._bridges.torch`` — a ``torch.autograd.Function``;
* TensorFlow tensors: ``diffinterface._bridges.tensorflow`` — a ``tf.custom_gradient``
  (reverse mode only);
* HIPS autograd boxes: ``diffinterface._bridges.autograd`` — an autograd primitive;
* NumPy arrays and Python numbers (calls outside any AD, finite differences): f evaluated directly.

A dict / list / tuple argument of arrays is passed to the boundary as one vector and cut
back into its structure inside f. The inner calls are :class:`~diffinterface._inner_calls.
InnerCalls`: prepared once per (operator, differentiated arguments, signatures) and reused.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import optree

from diffinterface._arrays import kind, kind_of
from diffinterface._backend_types import BackendLike, resolve_backend
from diffinterface._errors import InvalidArgumentError
from diffinterface._inner_calls import InnerCalls
from diffinterface._namespace import array_namespace
from diffinterface._trees import Structure, is_structure

__all__ = ["DifferentiateWith"]

# The frameworks whose own differentiation composes natively with f when the inner backend
# is the same framework: g then simply calls f (no boundary, no copies).
_NATIVE_FRAMEWORKS = frozenset({"jax", "autograd"})


class DifferentiateWith:
    """``f`` whose derivatives are computed by ``backend``, wherever ``f`` is called.

    Args:
        f: ``f(x, *args) -> y``, written for the inner backend's arrays (NumPy for finite
            differences and autograd, torch tensors for torch, JAX arrays for JAX, TensorFlow
            tensors for TensorFlow); x and y are arrays or numbers, or dicts / lists / tuples
            of arrays (x and args).
        backend: the backend (object or name) that differentiates f.

    Calling ``g(x, *args)`` returns f's value as an array of x's type (dtype and device
    kept); when g is called inside jax.grad/vjp/jvp/jit/vmap, torch.autograd (also
    torch.func.grad/vjp/jvp/vmap), a TensorFlow GradientTape (reverse mode only), HIPS
    autograd, finite differences or any di operator, the derivative with respect to each
    positional argument that the outer framework differentiates (x, or any of ``args``) is
    computed by ``backend``: one inner call per outer pushforward or pullback, with the
    arguments differentiated together as ``di.Args`` (HIPS autograd and JAX hand over all
    of them at once; torch and TensorFlow too). The arguments that are not differentiated
    (NumPy arrays, numbers, strings, JAX arrays with no tangent, tensors that do not
    require grad or that no tape watches) are ``di.Constant`` for the inner backend and
    cost nothing extra.

    Raises:
        InvalidArgumentError: f is not callable, or backend is not a backend.

    Example:
        >>> import numpy as np, diffinterface as di
        >>> def f(x):  # NumPy code: only finite differences can differentiate it
        ...     return np.array([x[0] * x[1], np.sin(x[1])])
        >>> g = di.DifferentiateWith(f, "finitediff")
        >>> J = di.jacobian(g, "torch", np.array([1.0, 2.0]))
        >>> bool(np.allclose(J, [[2.0, 1.0], [0.0, np.cos(2.0)]]))
        True
    """

    __slots__ = ("__weakref__", "_structured", "backend", "f", "inner")

    def __init__(self, f: Callable[..., Any], backend: BackendLike) -> None:
        if not callable(f):
            raise InvalidArgumentError(
                f"di.DifferentiateWith(f, backend) needs a callable f; got a {type(f).__name__}."
            )
        self.f = f
        self.backend = resolve_backend(backend)
        self.inner = InnerCalls(f, self.backend)
        self._structured: dict[Any, DifferentiateWith] = {}

    def __repr__(self) -> str:
        name = getattr(self.f, "__qualname__", repr(self.f))
        return f"DifferentiateWith({name}, {self.backend!r})"

    def __call__(self, x: Any, *args: Any) -> Any:
        arguments = (x, *args)
        if any(map(_is_container, arguments)):
            return self._call_containers(arguments)
        _check_x(x)
        return self._call(arguments, next(filter(None, map(_framework_of, arguments)), None))

    def _call(self, arguments: tuple[Any, ...], framework: str | None) -> Any:
        """g on arrays (and other values) traced by ``framework``'s AD, if any."""
        if framework in _NATIVE_FRAMEWORKS and framework == self.backend.name:
            return self.f(*arguments)
        if framework is None:
            return self.inner.value(arguments)
        bridge = importlib.import_module(kind(framework).bridge)  # type: ignore[arg-type]
        return bridge.call(self.inner, arguments)

    def _call_containers(self, arguments: tuple[Any, ...]) -> Any:
        """g where some arguments are dicts / lists / tuples (or autograd's boxes of them)."""
        arguments = tuple(map(_open_autograd_containers, arguments))
        if not is_structure(arguments[0]):
            _check_x(arguments[0])
        framework = next(filter(None, map(_framework_in, arguments)), None)
        if framework in _NATIVE_FRAMEWORKS and framework == self.backend.name:
            return self.f(*arguments)
        flat = tuple(
            i
            for i, a in enumerate(arguments)
            if is_structure(a) and (i == 0 or (framework is not None and _all_arrays(a)))
        )
        if flat:
            return self._call_structured(arguments, flat)
        return self._call(arguments, framework)

    def _call_structured(self, arguments: tuple[Any, ...], flat: tuple[int, ...]) -> Any:
        """g with the structured arguments at positions ``flat`` (x, and any dict / list /
        tuple of arrays after it) each as one vector of its leaves, cut back inside f."""
        leaves = {i: optree.tree_flatten(arguments[i], none_is_leaf=True) for i in flat}
        key = tuple((i, d, tuple(np.shape(a) for a in ls)) for i, (ls, d) in leaves.items())
        g = self._structured.get(key)
        if g is None:
            structures = {i: Structure(arguments[i]) for i in flat}
            f = self.f

            def flat_f(*values: Any) -> Any:
                return f(
                    *(
                        structures[i].build(structures[i].cut(v)) if i in structures else v
                        for i, v in enumerate(values)
                    )
                )

            g = self._structured.setdefault(key, DifferentiateWith(flat_f, self.backend))
        vectors = {i: _vector(ls) for i, (ls, _) in leaves.items()}
        return g(*(vectors.get(i, a) for i, a in enumerate(arguments)))


def _vector(leaves: list[Any]) -> Any:
    xp = array_namespace(*leaves)
    return xp.concat([xp.reshape(a, (-1,)) for a in leaves])


def _framework_in(a: Any) -> str | None:
    """The first framework (with a DifferentiateWith boundary) among a's arrays, if any."""
    if is_structure(a):
        return next(filter(None, map(_framework_in, optree.tree_leaves(a))), None)
    return _framework_of(a)


def _framework_of(a: Any) -> str | None:
    """The framework of an array, if it has a DifferentiateWith boundary."""
    name = kind_of(a)
    return name if name is not None and kind(name).bridge is not None else None


def _all_arrays(a: Any) -> bool:
    """Whether the structure ``a`` holds arrays only (one vector at the boundary)."""
    leaves = optree.tree_leaves(a, none_is_leaf=True)
    return bool(leaves) and all(kind_of(leaf) is not None for leaf in leaves)


def _is_container(a: Any) -> bool:
    """A dict, list or tuple, or one that HIPS autograd traces as one box."""
    return is_structure(a) or _is_autograd_container(a)


def _is_autograd_box(a: Any) -> bool:
    return type(a).__module__.startswith("autograd.")


def _is_autograd_container(a: Any) -> bool:
    """A dict, list or tuple that HIPS autograd traces as one box (DictBox, SequenceBox)."""
    return _is_autograd_box(a) and is_structure(getattr(a, "_value", None))


def _open_autograd_containers(x: Any) -> Any:
    """x with autograd's container boxes replaced by containers of (boxed) entries."""
    if _is_autograd_container(x):
        value = x._value
        keys = list(value) if isinstance(value, dict) else range(len(value))
        entries = [_open_autograd_containers(x[k]) for k in keys]
        return (
            dict(zip(keys, entries, strict=True))
            if isinstance(value, dict)
            else (type(value)(entries))
        )
    if is_structure(x):
        return optree.tree_map(_open_autograd_containers, x, none_is_leaf=True)
    return x


def _check_x(x: Any) -> None:
    if kind_of(x) is None and not isinstance(x, int | float | complex | np.generic):
        raise InvalidArgumentError(
            f"A di.DifferentiateWith function was called with x of type {type(x).__name__}; "
            "x must be an array (NumPy, torch, JAX, or one traced by HIPS autograd) or a number."
        )
