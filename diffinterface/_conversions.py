"""Arrays in, arrays out: the checks an input array passes and the conversions between
array kinds (through NumPy, see ``diffinterface._arrays``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from diffinterface._arrays import kind, kind_of
from diffinterface._errors import InvalidArgumentError, UnsupportedError

__all__ = ["check_dtype", "converter", "nested_error", "to_input_array"]


def to_input_array(x: Any, role: str) -> Any:
    """Check that ``x`` can be differentiated and return it as an array of its own kind.

    Python numbers (and NumPy integers) become 0-d float64 NumPy arrays, NumPy floating
    scalars 0-d arrays of their own dtype; arrays of a real floating dtype pass through.

    Raises:
        InvalidArgumentError: ``x`` is not an array, or its dtype is not real floating.
    """
    if isinstance(x, bool | np.bool_):
        raise InvalidArgumentError(
            f"{role} is the bool {x!r}; differentiation needs a real floating-point input. "
            "Pass a float, e.g. float(x)."
        )
    if isinstance(x, np.floating):
        x = np.asarray(x)
    elif isinstance(x, int | float | np.integer):
        return np.asarray(x, dtype=np.float64)
    name = kind_of(x)
    if name is None:
        raise InvalidArgumentError(
            f"{role} is a {type(x).__name__}; expected a NumPy array, a torch tensor, a JAX "
            "array or a Python number. Convert it first, e.g. np.asarray(x, dtype=float)."
        )
    if not kind(name).is_real_floating(x):
        raise InvalidArgumentError(
            f"{role} has dtype {kind(name).dtype_name(x)}; differentiation needs a real "
            "floating dtype (float32 or float64). Convert it first, e.g. x.astype(np.float64) "
            "or x.to(torch.float64)."
        )
    return x


def check_dtype(a: Any, src: str, target: str, role: str, backend: Any) -> None:
    """Check that ``a`` (an array of kind ``src``) can be computed on in ``target``'s arrays,
    converted through NumPy when the kinds differ.

    Raises:
        InvalidArgumentError: naming the library that lacks the dtype and the fix.
    """
    name = kind(src).dtype_name(a)
    path = [src, *(["numpy"] if src != target else []), target]
    lacking = next((k for k in path if name not in kind(k).float_dtypes), None)
    if lacking is None:
        return
    raise InvalidArgumentError(
        f"{role} has dtype {name}, which {backend!r} cannot compute in: "
        f"{kind(lacking).library} arrays have no {name}. Convert it to float32 or float64 "
        f"first (e.g. {'x.to(torch.float64)' if src == 'torch' else 'x.astype(np.float64)'}), or "
        "choose a backend whose arrays hold this dtype."
    )


def converter(src: str, dst: str, device: Any = None) -> Callable[[Any], Any]:
    """A function converting arrays of kind ``src`` to kind ``dst`` (on ``device``).

    Conversions go through NumPy on the CPU, zero-copy where the libraries allow; a result
    never shares memory with a read-only view (see :meth:`ArrayKind.to_writable_numpy`).
    """
    target = kind(dst)
    if src == dst or target.values_of == src:
        return target.to_device(device)
    if dst == "numpy":
        return kind(src).to_writable_numpy
    to_numpy = kind(src).to_numpy
    return lambda a: target.from_numpy(to_numpy(a), device)


def nested_error(what: str | None) -> UnsupportedError:
    """The error for an array that an enclosing differentiation traces, handed to a
    backend that cannot carry derivatives back to it."""
    return UnsupportedError(
        f"x is traced by {what}: this di call runs inside another differentiation, and a "
        "result computed by another framework cannot carry derivatives back to it. Call the "
        "operator with that framework's own backend (e.g. 'torch' inside a torch "
        "differentiation, 'jax' inside jax.grad or jax.jit), use di.SecondOrder(outer, "
        "inner) for second derivatives, or wrap the inner function in "
        "di.DifferentiateWith(f, backend)."
    )
