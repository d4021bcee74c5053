"""Array kinds: what the core knows about each array library, in one registry.

An array's *kind* names the library it belongs to: ``"numpy"``, ``"torch"``, ``"jax"``,
``"autograd"`` (HIPS autograd's boxes), ... Everything the core does with arrays of a
library (type test, signature, conversion to and from NumPy, device, copies, buffers,
``array_namespace``, the DifferentiateWith boundary) goes through that library's
:class:`ArrayKind`. NumPy's kind is built in; the others are defined in their backend's
module, which registers the kind when it is imported: the first time an array of that
library is seen, the module named for the array type's top-level module is imported. So
nothing here imports a framework, and a new array library is one ``ArrayKind`` subclass
plus one :func:`register_kind_module` line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from diffinterface._errors import InvalidArgumentError

__all__ = [
    "NUMPY",
    "ArrayKind",
    "describe",
    "dtype_name",
    "identity",
    "kind",
    "kind_of",
    "matcher",
    "register_kind",
    "register_kind_module",
    "signature",
]

Signature = tuple[Any, ...]


class ArrayKind:
    """One array library. Methods have NumPy-like defaults; a library overrides what differs.

    Class attributes: ``name``; ``library``, its name for people; ``float_dtypes``, the
    floating dtypes its arrays hold (by NumPy-style name); ``bridge``, the module of the
    DifferentiateWith boundary for arrays its own AD may be tracing (None: plain values);
    ``values_of``, the kind of the plain values inside its arrays where they wrap another
    kind's (HIPS autograd's boxes hold NumPy arrays).
    """

    name: ClassVar[str]
    library: ClassVar[str]
    float_dtypes: ClassVar[frozenset[str]] = frozenset({"float16", "float32", "float64"})
    bridge: ClassVar[str | None] = None
    values_of: ClassVar[str | None] = None

    def is_array(self, a: Any) -> bool:
        """Whether ``a`` (of a type from this library's modules) is one of its arrays."""
        return True

    def signature(self, a: Any) -> Signature:
        """What a preparation remembers of an array: kind, shape, dtype (and device)."""
        return (self.name, tuple(a.shape), a.dtype)

    def matcher(self, sig: Signature) -> Callable[[Any], bool]:
        """``matches(a)``: whether ``signature(a) == sig``, for a signature of this kind (a
        library overrides it where comparing fields is faster than making a signature)."""
        return lambda a: signature(a) == sig

    def dtype_name(self, a: Any) -> str:
        return str(a.dtype)

    def describe_array(self, a: Any) -> str:
        """``a`` for an error message: "a JAX tracer", "a torch tensor", ..."""
        return f"a {self.library} array"

    def is_real_floating(self, a: Any) -> bool:
        return bool(np.issubdtype(np.dtype(a.dtype), np.floating))

    def to_numpy(self, a: Any) -> np.ndarray:
        """A NumPy array with a's values (zero-copy where possible; may be read-only)."""
        return np.asarray(a)

    def to_writable_numpy(self, a: Any) -> np.ndarray:
        """A writable NumPy array with a's values: a result handed to the caller. Zero-copy
        where the NumPy view is writable; a read-only view (a JAX array's) is copied."""
        values = self.to_numpy(a)
        return values if values.flags.writeable else np.array(values)

    def from_numpy(self, a: np.ndarray, device: Any = None) -> Any:
        """An array of this kind with a's values (on ``device`` where that applies)."""
        raise NotImplementedError

    def to_device(self, device: Any) -> Callable[[Any], Any]:
        """A function moving this kind's arrays to ``device`` (identity by default)."""
        return identity

    def device(self, a: Any) -> Any:
        return None

    def copy(self, a: Any) -> Any:
        """A copy that does not share memory with a (immutable arrays: a itself)."""
        return a

    def plain_value(self, a: Any) -> Any:
        """``a`` apart from any graph that records it (a torch tensor detached)."""
        return a

    def shares_memory(self, a: Any, b: Any) -> bool:
        return False

    def write(self, out: Any, value: Any, role: str) -> None:
        """Copy ``value``, one of this kind's arrays, into the caller's ``out``.

        Raises:
            InvalidArgumentError: ``out`` is not an array of this kind, shape and dtype, or
                this kind's arrays are immutable.
        """
        raise InvalidArgumentError(
            f"{role}= cannot be a {self.library} array: {self.library} arrays are "
            f"immutable. Call without {role}= and use the returned array."
        )

    def check_out(self, out: Any, value: Any, role: str) -> None:
        """Raise unless ``out`` is an array of this kind with value's shape and dtype."""
        if not (
            kind_of(out) == self.name
            and tuple(out.shape) == tuple(value.shape)
            and out.dtype == value.dtype
        ):
            raise InvalidArgumentError(
                f"{role}= must be a {self.library} array of shape {tuple(value.shape)} and "
                f"dtype {self.dtype_name(value)}; got {describe(signature(out))}."
            )

    def zeros(self, shape: tuple[int, ...], like: Any) -> Any:
        """A new writable zero array of ``shape`` with ``like``'s dtype (float64 for a
        non-floating like), device and AD transform (the output of a mutating f). Only
        asked of the arrays of backends that declare ``supports_mutation``."""
        raise AssertionError(
            f"no writable buffer for {self.library} arrays: a backend whose arrays are "
            "immutable declares supports_mutation"
        )

    def scratch(
        self, buffers: dict[Any, Any], shape: tuple[int, ...], like: Any, fallback: str
    ) -> Any:
        """A DiffCache buffer for ``like`` (see ``diffinterface._diffcache``), kept in
        ``buffers`` where it may be reused, of like's dtype (``fallback`` for a non-floating
        like); None where the arrays are immutable."""
        return None

    def buffer_key(self, a: Any) -> tuple[Any, ...] | None:
        """The key under which :meth:`scratch` would keep a buffer like ``a`` (so that a
        DiffCache hands out the caller's own array), or None where it must not."""
        return None

    def namespace(self, arrays: tuple[Any, ...]) -> Any:
        """The array namespace for these arrays (see ``di.array_namespace``)."""
        import array_api_compat

        return array_api_compat.array_namespace(*arrays)

    def traced_by(self, a: Any) -> str | None:
        """What differentiates or transforms ``a`` around the current call, if anything
        (a JAX tracer, a tensor of torch's running differentiation, ...); None for a plain
        value."""
        return None


class _NumPy(ArrayKind):
    name = "numpy"
    library = "NumPy"
    float_dtypes = frozenset({"float16", "float32", "float64", "float96", "float128"})

    def from_numpy(self, a: np.ndarray, device: Any = None) -> Any:
        return a

    def matcher(self, sig: Signature) -> Callable[[Any], bool]:
        _, shape, dtype = sig
        return lambda a: (
            a.shape == shape and a.dtype == dtype if type(a) is np.ndarray else signature(a) == sig
        )

    def to_device(self, device: Any) -> Callable[[Any], Any]:
        return np.asarray  # NumPy scalars (np.float64(...)) become 0-d arrays

    def copy(self, a: Any) -> Any:
        return np.array(a)

    def shares_memory(self, a: Any, b: Any) -> bool:
        return type(b) is np.ndarray and bool(np.may_share_memory(a, b))

    def write(self, out: Any, value: Any, role: str) -> None:
        self.check_out(out, value, role)
        np.copyto(out, value)

    def zeros(self, shape: tuple[int, ...], like: Any) -> Any:
        return np.zeros(shape, _floating(like.dtype, "float64"))

    def scratch(
        self, buffers: dict[Any, Any], shape: tuple[int, ...], like: Any, fallback: str
    ) -> Any:
        dtype = _floating(like.dtype, fallback)
        key = ("numpy", dtype)
        buf = buffers.get(key)
        if buf is None or buf.shape != shape:
            buf = buffers[key] = np.zeros(shape, dtype)
        return buf

    def buffer_key(self, a: Any) -> tuple[Any, ...] | None:
        return ("numpy", a.dtype) if a.flags.writeable else None


def _floating(dtype: Any, fallback: str) -> Any:
    """``dtype`` where it is floating or complex, else ``fallback`` (float64 if unknown)."""
    if np.issubdtype(dtype, np.inexact):
        return dtype
    return np.dtype(fallback) if fallback in np.sctypeDict else np.dtype(np.float64)


NUMPY = _NumPy()
_KINDS: dict[str, ArrayKind] = {"numpy": NUMPY}
#: module of an array type (full name or top-level package) → its kind
_BY_MODULE: dict[str, ArrayKind] = {"numpy": NUMPY}
#: top-level package of array types → the module that registers their kind
_KIND_MODULES: dict[str, str] = {}
_KIND_OF_TYPE: dict[type, str | None] = {np.ndarray: "numpy"}
#: an array type → its kind's signature method, found at its first signature
_SIGNATURE_OF_TYPE: dict[type, Callable[[Any], Signature]] = {}


def register_kind(array_kind: ArrayKind, modules: tuple[str, ...]) -> None:
    """Register ``array_kind`` for array types defined in ``modules`` (full module names or
    top-level packages)."""
    _KINDS[array_kind.name] = array_kind
    for module in modules:
        _BY_MODULE[module] = array_kind
    _KIND_OF_TYPE.clear()
    _KIND_OF_TYPE[np.ndarray] = "numpy"
    _SIGNATURE_OF_TYPE.clear()


def register_kind_module(package: str, module: str) -> None:
    """Arrays whose type comes from ``package`` have their kind registered by ``module``,
    imported the first time such an array is seen."""
    _KIND_MODULES[package] = module


def kind(name: str) -> ArrayKind:
    """The registered kind called ``name``."""
    return _KINDS[name]


def kind_of(a: object) -> str | None:
    """The kind of array ``a`` (``"numpy"``, ``"torch"``, ``"jax"``, ...), else ``None``."""
    t = type(a)
    try:
        return _KIND_OF_TYPE[t]
    except KeyError:
        pass
    module = t.__module__
    top = module.split(".")[0]
    found = _BY_MODULE.get(module) or _BY_MODULE.get(top)
    if found is None and top in _KIND_MODULES:
        importlib.import_module(_KIND_MODULES[top])  # registers the kind
        found = _BY_MODULE.get(module) or _BY_MODULE.get(top)
    name = found.name if found is not None and found.is_array(a) else None
    _KIND_OF_TYPE[t] = name
    return name


def signature(a: Any) -> Signature:
    """What a preparation remembers of an array: kind, shape, dtype (and device)."""
    t = type(a)
    if t is np.ndarray:
        return ("numpy", a.shape, a.dtype)
    try:  # every prepared call of an array library's kind
        return _SIGNATURE_OF_TYPE[t](a)
    except KeyError:
        pass
    name = kind_of(a)
    if name is None:
        return ("object", t)
    of_kind = _SIGNATURE_OF_TYPE[t] = _KINDS[name].signature
    return of_kind(a)


def matcher(sig: Signature) -> Callable[[Any], bool]:
    """``matches(a)``: whether ``signature(a) == sig`` (see :meth:`ArrayKind.matcher`)."""
    of_kind = _KINDS.get(sig[0])
    return of_kind.matcher(sig) if of_kind is not None else lambda a: signature(a) == sig


def dtype_name(a: Any) -> str:
    """The NumPy-style name of a's dtype (``"float64"``), whatever library a belongs to
    (its kind's :meth:`ArrayKind.dtype_name`; ``str(a.dtype)`` for other objects)."""
    name = kind_of(a)
    return _KINDS[name].dtype_name(a) if name is not None else _dtype_text(a.dtype)


def _dtype_text(dtype: Any) -> str:
    """A dtype object of any library (NumPy's, torch's, TensorFlow's) by its plain name."""
    name = getattr(dtype, "name", None)
    return name if isinstance(name, str) else str(dtype).removeprefix("torch.")


def describe(sig: Signature) -> str:
    """A short readable form of a :func:`signature`, for error messages."""
    if sig[0] == "object":
        return sig[1].__name__
    dtype = _dtype_text(sig[2])
    text = f"{sig[0]} {dtype}{list(sig[1])}"
    return text + (f" on {sig[3]}" if len(sig) > 3 else "")


def identity(a: Any) -> Any:
    return a
