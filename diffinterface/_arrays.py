"""Array kinds and the conversions between them — the one place that knows about all of them.

An array's *kind* is the library it belongs to: ``"numpy"``, ``"torch"`` or ``"jax"``.
Python numbers are treated as 0-d float64 NumPy arrays. The kind of an array is found from
its type's module, so nothing here imports a framework that the caller has not imported.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from diffinterface._errors import InvalidArgumentError

__all__ = [
    "check_dtype",
    "converter",
    "describe",
    "is_real_floating",
    "kind_of",
    "shares_memory",
    "signature",
    "to_input_array",
]

Kind = str
Signature = tuple[Any, ...]

_NUMBER_TYPES = (int, float, np.integer, np.floating)
_KIND_OF_TYPE: dict[type, Kind | None] = {np.ndarray: "numpy"}


def kind_of(a: object) -> Kind | None:
    """``"numpy"``, ``"torch"`` or ``"jax"`` for an array of that library, else ``None``."""
    t = type(a)
    try:
        return _KIND_OF_TYPE[t]
    except KeyError:
        pass
    module = t.__module__.split(".")[0]
    kind: Kind | None = None
    if module == "torch" and "torch" in sys.modules and isinstance(a, sys.modules["torch"].Tensor):
        kind = "torch"
    elif module in ("jax", "jaxlib") and "jax" in sys.modules:
        kind = "jax" if isinstance(a, sys.modules["jax"].Array) else None
    _KIND_OF_TYPE[t] = kind
    return kind


def signature(a: Any) -> Signature:
    """What a preparation remembers of an array: kind, shape, dtype and device."""
    if type(a) is np.ndarray:
        return ("numpy", a.shape, a.dtype)
    kind = kind_of(a)
    if kind == "torch":
        return (kind, tuple(a.shape), a.dtype, a.device)
    if kind is None:
        return ("object", type(a))
    return (kind, a.shape, a.dtype)


def shares_memory(a: Any, b: Any) -> bool:
    """Whether NumPy arrays or torch tensors ``a`` and ``b`` may share memory (else False)."""
    kinds = (kind_of(a), kind_of(b))
    if kinds == ("numpy", "numpy"):
        return bool(np.may_share_memory(a, b))
    if kinds == ("torch", "torch"):
        return bool(a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr())
    return False


def describe(sig: Signature) -> str:
    """A short readable form of a :func:`signature`, for error messages."""
    if sig[0] == "object":
        return sig[1].__name__
    text = f"{sig[0]} {sig[2]}{list(sig[1])}"
    return text + (f" on {sig[3]}" if len(sig) > 3 else "")


def to_input_array(x: Any, role: str) -> Any:
    """Check that ``x`` can be differentiated and return it as an array of its own kind.

    Python numbers become 0-d float64 NumPy arrays, NumPy scalars 0-d arrays of their own
    dtype; NumPy, torch and JAX arrays of a real floating dtype pass through unchanged.

    Raises:
        InvalidArgumentError: ``x`` is not an array, or its dtype is not real floating.
    """
    if isinstance(x, bool | np.bool_):
        raise InvalidArgumentError(
            f"{role} is the bool {x!r}; differentiation needs a real floating-point input. "
            "Pass a float, e.g. float(x)."
        )
    if isinstance(x, np.floating):  # a NumPy scalar keeps its dtype
        x = np.asarray(x)
    elif isinstance(x, _NUMBER_TYPES):  # a Python number (or NumPy integer) is float64
        return np.asarray(x, dtype=np.float64)
    kind = kind_of(x)
    if kind is None:
        raise InvalidArgumentError(
            f"{role} is a {type(x).__name__}; expected a NumPy array, a torch tensor, a JAX "
            "array or a Python number. Convert it first, e.g. np.asarray(x, dtype=float)."
        )
    if not is_real_floating(x, kind):
        raise InvalidArgumentError(
            f"{role} has dtype {x.dtype}; differentiation needs a real floating dtype "
            "(float32 or float64). Convert it first, e.g. x.astype(np.float64) or "
            "x.to(torch.float64)."
        )
    return x


#: the floating dtypes each array library holds (NumPy's longdouble is float128 or float96)
_FLOAT_DTYPES = {
    "numpy": frozenset({"float16", "float32", "float64", "float96", "float128"}),
    "torch": frozenset({"float16", "bfloat16", "float32", "float64"}),
    "jax": frozenset({"float16", "bfloat16", "float32", "float64"}),
}
_LIBRARY = {"numpy": "NumPy", "torch": "torch", "jax": "JAX"}


def check_dtype(a: Any, kind: Kind, target: Kind, role: str, backend: Any) -> None:
    """Check that ``a`` (an array of ``kind``) can be computed on in ``target``'s arrays,
    converted through NumPy when the kinds differ.

    Raises:
        InvalidArgumentError: naming the library that lacks the dtype and the fix.
    """
    name = str(a.dtype).removeprefix("torch.")
    path = [kind, *(["numpy"] if kind != target else []), target]
    lacking = next((k for k in path if name not in _FLOAT_DTYPES[k]), None)
    if lacking is None:
        return
    raise InvalidArgumentError(
        f"{role} has dtype {name}, which {backend!r} cannot compute in: {_LIBRARY[lacking]} "
        f"arrays have no {name}. Convert it to float32 or float64 first (e.g. "
        f"{'x.to(torch.float64)' if kind == 'torch' else 'x.astype(np.float64)'}), or "
        "choose a backend whose arrays hold this dtype."
    )


def is_real_floating(x: Any, kind: Kind | None) -> bool:
    """Whether ``x`` (an array of ``kind``, or anything with a NumPy dtype) is real floating."""
    if kind == "torch":
        return bool(x.dtype.is_floating_point)
    return np.issubdtype(np.dtype(x.dtype), np.floating)


def _torch_to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy()


def _numpy_to_torch(a: Any) -> Any:
    torch = sys.modules["torch"]
    a = np.asarray(a)
    if not a.flags.writeable or any(s < 0 for s in a.strides):
        a = np.array(a)
    return torch.from_numpy(a)


def _jax_to_numpy(a: Any) -> np.ndarray:
    return np.asarray(a)


def _numpy_to_jax(a: Any) -> Any:
    import jax

    if a.dtype == np.float64 and not getattr(jax.config, "jax_enable_x64"):  # noqa: B009
        # Without x64 mode JAX would silently store a float64 array as float32.
        with jax.enable_x64(True):
            return jax.device_put(a)
    return jax.device_put(a)


def _native_numpy_copy(a: Any) -> np.ndarray:
    return np.array(a)


def converter(src: Kind, dst: Kind, device: Any = None) -> Callable[[Any], Any]:
    """A function converting arrays of kind ``src`` to kind ``dst`` (and torch ``device``).

    Conversions go through NumPy on the CPU (zero-copy where the libraries allow); a torch
    result is moved to ``device`` when one is given.
    """
    if src == dst:
        if dst == "torch" and device is not None and device.type != "cpu":
            return lambda a: a.to(device)
        # NumPy scalars (np.float64(...)) become 0-d arrays, like every other result.
        return np.asarray if dst == "numpy" else _identity
    to_numpy: Callable[[Any], Any] = {
        "numpy": _identity,
        "torch": _torch_to_numpy,
        "jax": _jax_to_numpy,
    }[src]
    if dst == "numpy":
        # A JAX array viewed through NumPy is read-only: hand out a writable copy.
        return _native_numpy_copy if src == "jax" else to_numpy
    if dst == "torch":
        move = device is not None and device.type != "cpu"
        if move:
            return lambda a: _numpy_to_torch(to_numpy(a)).to(device)
        return lambda a: _numpy_to_torch(to_numpy(a))
    if dst == "jax":
        return lambda a: _numpy_to_jax(to_numpy(a))
    raise AssertionError(dst)


def _identity(a: Any) -> Any:
    return a
