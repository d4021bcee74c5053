"""``DifferentiateWith``: differentiate one function with another backend, inside any framework.

``g = DifferentiateWith(f, backend)`` evaluates ``f(x, *args)``; when g is called inside the
differentiation of another framework, its derivative is computed by ``backend`` and handed
over at the boundary, where arrays are converted (through NumPy on the CPU) to the inner
backend's array type and back:

* JAX (arrays or tracers): ``diffinterface._bridges.jax`` — JAX primitives whose
  evaluation, pushforward and pullback call the inner backend on the host;
* torch tensors: ``diffinterface._bridges.torch`` — a ``torch.autograd.Function``;
* TensorFlow tensors: ``diffinterface._bridges.tensorflow`` — a ``tf.custom_gradient``
  (reverse mode only);
* HIPS autograd boxes: ``diffinterface._bridges.autograd`` — an autograd primitive;
* NumPy arrays and Python numbers (calls outside any AD, finite differences): f evaluated directly.

Only ``x`` is differentiated: further arguments are constants (di.Constant for the inner
backend). The inner preparations are made once per argument signature and reused.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import optree

from diffinterface._adapter import adapter_for
from diffinterface._arrays import kind, kind_of, signature
from diffinterface._backend_types import BackendLike, resolve_backend
from diffinterface._contexts import Constant, is_static
from diffinterface._conversions import converter
from diffinterface._errors import InvalidArgumentError
from diffinterface._namespace import array_namespace
from diffinterface._operators.pullback import prepare_pullback, pullback
from diffinterface._operators.pushforward import prepare_pushforward, pushforward
from diffinterface._trees import Structure, is_structure

__all__ = ["DifferentiateWith", "InnerCalls"]

# The frameworks whose own differentiation composes natively with f when the inner backend
# is the same framework: g then simply calls f (no boundary, no copies).
_NATIVE_FRAMEWORKS = frozenset({"jax", "autograd"})


class DifferentiateWith:
    """``f`` whose derivatives are computed by ``backend``, wherever ``f`` is called.

    Args:
        f: ``f(x, *args) -> y``, written for the inner backend's arrays (NumPy for finite
            differences and autograd, torch tensors for torch, JAX arrays for JAX, TensorFlow
            tensors for TensorFlow); x and y are arrays or numbers.
        backend: the backend (object or name) that differentiates f.

    Calling ``g(x, *args)`` returns f's value as an array of x's type (dtype and device
    kept); when g is called inside jax.grad/vjp/jvp/jit/vmap, torch.autograd (also
    torch.func.grad/vjp/jvp/vmap), a TensorFlow GradientTape (reverse mode only), HIPS
    autograd, finite differences or any di operator, the derivative with respect to x is
    computed by ``backend``. ``args`` are held
    constant: their derivative is zero.

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
        if is_structure(x) or _is_autograd_container(x):
            return self._call_structured(_open_autograd_containers(x), args)
        framework = _framework_of(x) or next(
            (fw for fw in map(_framework_of_arg, args) if fw is not None), None
        )
        if framework is None:
            return self.inner.value(x, args)
        if framework in _NATIVE_FRAMEWORKS and framework == self.backend.name:
            return self.f(x, *args)
        bridge = importlib.import_module(kind(framework).bridge)  # type: ignore[arg-type]
        return bridge.call(self.inner, x, args)

    def _call_structured(self, x: Any, args: tuple[Any, ...]) -> Any:
        """g on a dict / list / tuple x: its leaves as one vector, cut back inside f."""
        leaves, treedef = optree.tree_flatten(x, none_is_leaf=True)
        key = (treedef, tuple(tuple(np.shape(a)) for a in leaves))
        g = self._structured.get(key)
        if g is None:
            structure = Structure(x)
            g = self._structured[key] = DifferentiateWith(
                lambda v, *a: self.f(structure.build(structure.cut(v)), *a), self.backend
            )
        xp = array_namespace(*leaves)
        return g(xp.concat([xp.reshape(a, (-1,)) for a in leaves]), *args)


def _framework_of_arg(a: Any) -> str | None:
    """The framework of an argument after x: its arrays may be traced too."""
    return _framework_of(a) if kind_of(a) else None


def _is_autograd_box(a: Any) -> bool:
    return type(a).__module__.split(".")[0] == "autograd"


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


def _framework_of(x: Any) -> str | None:
    """The kind of x whose framework's AD may be tracing it ("jax", "torch", "autograd",
    ...: a kind with a DifferentiateWith boundary), or None for plain values."""
    name = kind_of(x)
    if name is not None and kind(name).bridge is not None:
        return name
    if name is not None or isinstance(x, int | float | complex | np.generic):
        return None
    raise InvalidArgumentError(
        f"A di.DifferentiateWith function was called with x of type {type(x).__name__}; "
        "x must be an array (NumPy, torch, JAX, or one traced by HIPS autograd) or a number."
    )


def _to(target: str, a: Any) -> Any:
    """An array as an array of kind ``target``; anything else unchanged."""
    src = kind_of(a)
    return a if src is None else converter(src, target)(a)


class InnerCalls:
    """f's value, pushforward and pullback by the inner backend, on arrays of one kind.

    Inputs are NumPy or torch arrays (the bridges pass host NumPy arrays for JAX and
    autograd); results come back as arrays of x's kind, dtype and device. Preparations are
    made on first use per (operator, argument signature) and kept.
    """

    def __init__(self, f: Callable[..., Any], backend: BackendLike) -> None:
        self.f = f
        self.backend = backend
        self._preps: dict[tuple[Any, ...], Any] = {}
        #: what the bridges remember per argument signature (e.g. f's output shape)
        self.memo: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def value(self, x: Any, args: tuple[Any, ...]) -> Any:
        """f(x, *args) evaluated on the inner backend's arrays, returned as x's kind."""
        adapter = adapter_for(self.backend)
        src = kind_of(x) or "numpy"
        native = adapter.native_kind
        inner_args = tuple(_to(native, a) for a in args)
        y = adapter.evaluate(
            self.f, _to(native, np.asarray(x) if src == "numpy" else x), inner_args
        )
        kind = kind_of(y)
        if kind is None:  # a Python or NumPy number
            y, kind = np.asarray(y), "numpy"
        return converter(kind, src, getattr(x, "device", None))(y)

    def pushforward(self, x: Any, tx: Any, args: tuple[Any, ...]) -> Any:
        """J(x)·tx (tx one tangent, or a tuple of tangents computed as one batch)."""
        contexts = tuple(Constant(a) for a in args)
        prep = self._prep("pushforward", prepare_pushforward, x, tx, contexts)
        return pushforward(self.f, self.backend, x, tx, *contexts, prep=prep)

    def pullback(self, x: Any, ty: Any, args: tuple[Any, ...]) -> Any:
        """tyᵀ·J(x) (ty one cotangent, or a tuple of cotangents computed as one batch)."""
        contexts = tuple(Constant(a) for a in args)
        prep = self._prep("pullback", prepare_pullback, x, ty, contexts)
        return pullback(self.f, self.backend, x, ty, *contexts, prep=prep)

    def _prep(
        self,
        operator: str,
        prepare: Callable[..., Any],
        x: Any,
        t: Any,
        contexts: tuple[Constant, ...],
    ) -> Any:
        ts = t if isinstance(t, tuple) else (t,)
        key = (
            operator,
            signature(x),
            isinstance(t, tuple),
            tuple(signature(s) for s in ts),
            tuple(c.value if is_static(c.value) else signature(c.value) for c in contexts),
        )
        prep = self._preps.get(key)
        if prep is None:
            with self._lock:
                prep = self._preps.get(key)
                if prep is None:
                    prep = self._preps[key] = prepare(self.f, self.backend, x, t, *contexts)
        return prep
